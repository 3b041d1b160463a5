#include "ca/issuer.h"

#include "ca/x509.h"

namespace e2eid::ca {

using crypto::OpenSslError;

namespace {

constexpr int kSerialAttempts = 4;

Status AddProfileExtensions(X509* cert, X509* issuer, Profile profile, crypto::KeyType key_type) {
  E2EID_CHECK_OK(AddConfExtension(cert, issuer, NID_basic_constraints, "critical,CA:FALSE"));
  switch (profile) {
    case Profile::kDevice:
      E2EID_CHECK_OK(AddConfExtension(cert, issuer, NID_key_usage, "critical,digitalSignature"));
      E2EID_CHECK_OK(AddConfExtension(cert, issuer, NID_ext_key_usage, "clientAuth"));
      break;
    case Profile::kTlsServer:
      E2EID_CHECK_OK(AddConfExtension(cert, issuer, NID_key_usage,
                                      key_type == crypto::KeyType::kRsa
                                          ? "critical,digitalSignature,keyEncipherment"
                                          : "critical,digitalSignature"));
      E2EID_CHECK_OK(AddConfExtension(cert, issuer, NID_ext_key_usage, "serverAuth,clientAuth"));
      break;
    case Profile::kOcspResponder:
      E2EID_CHECK_OK(AddConfExtension(cert, issuer, NID_key_usage, "critical,digitalSignature"));
      E2EID_CHECK_OK(AddConfExtension(cert, issuer, NID_ext_key_usage, "OCSPSigning"));
      E2EID_CHECK_OK(AddOcspNoCheck(cert));
      break;
  }
  E2EID_CHECK_OK(AddConfExtension(cert, issuer, NID_subject_key_identifier, "hash"));
  E2EID_CHECK_OK(AddConfExtension(cert, issuer, NID_authority_key_identifier, "keyid:always"));
  return Ok();
}

}  // namespace

Issuer::Issuer(const CertificateAuthority& ca, ValidityPolicy policy, IssuerUrls urls,
               SerialRegistry& serials, const Clock& clock, RandomSource& random)
    : ca_(ca),
      policy_(policy),
      urls_(std::move(urls)),
      serials_(serials),
      clock_(clock),
      random_(random) {}

Result<IssuedCertificate> Issuer::Issue(const LeafRequest& request) const {
  if (request.public_key == nullptr) return Fail(Error::InvalidArgument("no public key given"));
  E2EID_CHECK_OK(crypto::CheckKeyPolicy(request.public_key->get()));
  const bool has_names = !request.dns_names.empty() || !request.uris.empty();
  if (!has_names && request.profile != Profile::kOcspResponder) {
    return Fail(Error::InvalidArgument("a leaf certificate needs at least one DNS name or URI"));
  }
  if (!has_names && request.subject.empty()) {
    return Fail(Error::InvalidArgument("a certificate needs a subject or names"));
  }
  E2EID_TRY(validity, ClampValidity(policy_, clock_.Now(), request.not_before, request.not_after,
                                    ca_.intermediate_not_after()));
  E2EID_TRY(subject, BuildName(request.subject));
  // Refuse bad names before a serial is spent on them.
  for (const auto* names : {&request.dns_names, &request.uris}) {
    for (const auto& n : *names) E2EID_CHECK_OK(CheckIa5Name(n));
  }

  // Reserve a fresh serial before signing anything with it.
  Bytes serial;
  std::string serial_hex;
  for (int attempt = 0;; ++attempt) {
    E2EID_TRY(candidate, RandomSerial(random_));
    std::string hex = HexEncode(candidate);
    hex.erase(0, std::min(hex.find_first_not_of('0'), hex.size() - 1));
    auto reserved = serials_.Reserve(hex);
    if (reserved) {
      serial = std::move(candidate);
      serial_hex = std::move(hex);
      break;
    }
    if (reserved.error().code() != ErrorCode::kAlreadyExists || attempt + 1 >= kSerialAttempts) {
      return Fail(std::move(reserved.error()).Context("reserving a serial number"));
    }
  }

  X509* issuer = ca_.intermediate();
  crypto::X509Ptr cert(X509_new());
  if (!cert) return Fail(OpenSslError("X509_new"));
  E2EID_CHECK_OK(SetBasics(cert.get(), serial, subject.get(), X509_get_subject_name(issuer),
                           validity.not_before, validity.not_after, *request.public_key));
  E2EID_CHECK_OK(
      AddProfileExtensions(cert.get(), issuer, request.profile, request.public_key->type()));
  if (has_names) {
    E2EID_CHECK_OK(AddSubjectAltName(cert.get(), request.dns_names, request.uris,
                                     /*critical=*/request.subject.empty()));
  }
  if (request.profile != Profile::kOcspResponder) {
    if (!urls_.crl_url.empty()) E2EID_CHECK_OK(AddCrlDistributionPoint(cert.get(), urls_.crl_url));
    E2EID_CHECK_OK(AddAuthorityInfoAccess(cert.get(), urls_.ocsp_url, urls_.ca_issuers_url));
  }
  E2EID_CHECK_OK(SignCertificate(cert.get(), ca_.intermediate_key()));

  IssuedCertificate out;
  out.serial_hex = std::move(serial_hex);
  E2EID_TRY(der, CertificateToDer(cert.get()));
  E2EID_TRY(pem, CertificateToPem(cert.get()));
  E2EID_TRY(spki, request.public_key->SpkiSha256());
  // "keyid:always" copied the intermediate's subjectKeyIdentifier into the leaf's AKI.
  if (const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(issuer); skid != nullptr) {
    out.issuer_key_id_hex = HexEncode(std::span<const uint8_t>(
        ASN1_STRING_get0_data(skid), static_cast<size_t>(ASN1_STRING_length(skid))));
  }
  out.der = std::move(der);
  out.pem = std::move(pem);
  out.chain_pem = out.pem + ca_.chain_pem();
  out.not_before = validity.not_before;
  out.not_after = validity.not_after;
  out.spki_sha256_hex = HexEncode(spki);
  return out;
}

}  // namespace e2eid::ca
