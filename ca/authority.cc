#include "ca/authority.h"

#include <algorithm>

#include "ca/x509.h"
#include "core/file.h"

namespace e2eid::ca {

using crypto::OpenSslError;

CaPaths CaPaths::In(const std::string& dir) {
  const std::string d = dir.empty() ? "." : dir;
  return CaPaths{d + "/root.pem", d + "/root.key", d + "/intermediate.pem", d + "/intermediate.key",
                 d + "/chain.pem"};
}

Result<Bytes> RandomSerial(RandomSource& random) {
  Bytes serial(16);
  do {
    E2EID_CHECK_OK(random.Fill(serial));
  } while (std::all_of(serial.begin(), serial.end(), [](uint8_t b) { return b == 0; }));
  return serial;
}

namespace {

// A domain for the name constraint: lowercase LDH labels separated by dots.
Status CheckDomain(std::string_view domain) {
  if (domain.size() > 253)
    return Fail(Error::InvalidArgument("domain is longer than 253 characters"));
  size_t label = 0;
  for (size_t i = 0; i <= domain.size(); ++i) {
    if (i == domain.size() || domain[i] == '.') {
      if (label == 0 || label > 63) {
        return Fail(Error::InvalidArgument("domain '" + std::string(domain) +
                                           "' has an empty or over-long label"));
      }
      if (domain[i - 1] == '-' || domain[i - label] == '-') {
        return Fail(Error::InvalidArgument("domain '" + std::string(domain) +
                                           "' has a label that starts or ends with '-'"));
      }
      label = 0;
      continue;
    }
    const char c = domain[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return Fail(Error::InvalidArgument("domain '" + std::string(domain) +
                                         "' must be lowercase letters, digits, '-' and '.'"));
    }
    ++label;
  }
  return Ok();
}

Result<crypto::X509Ptr> MakeCaCertificate(const crypto::PrivateKey& subject_key, X509_NAME* subject,
                                          const crypto::PrivateKey& signer, X509* issuer_cert,
                                          TimePoint not_before, TimePoint not_after, int pathlen,
                                          const std::string& domain, RandomSource& random) {
  crypto::X509Ptr cert(X509_new());
  if (!cert) return Fail(OpenSslError("X509_new"));
  E2EID_TRY(serial, RandomSerial(random));
  E2EID_TRY(pub, subject_key.public_key());
  X509_NAME* issuer_name = issuer_cert != nullptr ? X509_get_subject_name(issuer_cert) : subject;
  E2EID_CHECK_OK(SetBasics(cert.get(), serial, subject, issuer_name, not_before, not_after, pub));
  const std::string bc = "critical,CA:TRUE,pathlen:" + std::to_string(pathlen);
  E2EID_CHECK_OK(AddConfExtension(cert.get(), issuer_cert, NID_basic_constraints, bc.c_str()));
  E2EID_CHECK_OK(
      AddConfExtension(cert.get(), issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign"));
  E2EID_CHECK_OK(AddConfExtension(cert.get(), issuer_cert, NID_subject_key_identifier, "hash"));
  if (issuer_cert != nullptr) {
    E2EID_CHECK_OK(
        AddConfExtension(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always"));
    if (!domain.empty()) E2EID_CHECK_OK(AddUriNameConstraints(cert.get(), {domain}));
  }
  E2EID_CHECK_OK(SignCertificate(cert.get(), signer));
  return cert;
}

}  // namespace

Result<InitResult> InitCa(const InitOptions& options, const Clock& clock, RandomSource& random) {
  if (!options.domain.empty()) E2EID_CHECK_OK(CheckDomain(options.domain));
  if (options.passphrase && options.passphrase->empty()) {
    return Fail(Error::InvalidArgument("the passphrase is empty"));
  }
  const CaPaths paths = CaPaths::In(options.dir);
  // Refuse before creating anything when any file is already there.
  for (const auto* p : {&paths.root_cert, &paths.root_key, &paths.intermediate_cert,
                        &paths.intermediate_key, &paths.chain}) {
    if (PathExists(*p)) {
      return Fail(Error::AlreadyExists(*p + " already exists; refusing to overwrite an existing CA "
                                            "(choose another --dir or remove the old CA first)"));
    }
  }
  E2EID_CHECK_OK(MakeDirs(options.dir.empty() ? "." : options.dir, 0700));

  E2EID_TRY(root_key, crypto::PrivateKey::Generate(options.key_spec));
  E2EID_TRY(inter_key, crypto::PrivateKey::Generate(options.key_spec));
  const std::string org = options.domain.empty() ? "e2eid" : options.domain;
  E2EID_TRY(root_name, BuildName({{"O", org}, {"CN", "e2eid Root CA"}}));
  E2EID_TRY(inter_name, BuildName({{"O", org}, {"CN", "e2eid Intermediate CA"}}));

  const TimePoint now = clock.Now();
  E2EID_TRY(root, MakeCaCertificate(root_key, root_name.get(), root_key, nullptr, now,
                                    now + options.root_validity, 1, "", random));
  const TimePoint inter_end =
      std::min(now + options.intermediate_validity, now + options.root_validity);
  E2EID_TRY(inter,
            MakeCaCertificate(inter_key, inter_name.get(), root_key, root.get(), now, inter_end, 0,
                              options.name_constraints ? options.domain : std::string(), random));

  std::optional<std::string_view> pass;
  if (options.passphrase) pass = *options.passphrase;
  E2EID_TRY(root_key_pem, root_key.ToPem(pass));
  E2EID_TRY(inter_key_pem, inter_key.ToPem(pass));
  E2EID_TRY(root_pem, CertificateToPem(root.get()));
  E2EID_TRY(inter_pem, CertificateToPem(inter.get()));

  E2EID_CHECK_OK(WriteNewFile(paths.root_key, root_key_pem, 0600));
  E2EID_CHECK_OK(WriteNewFile(paths.intermediate_key, inter_key_pem, 0600));
  E2EID_CHECK_OK(WriteNewFile(paths.root_cert, root_pem, 0644));
  E2EID_CHECK_OK(WriteNewFile(paths.intermediate_cert, inter_pem, 0644));
  E2EID_CHECK_OK(WriteNewFile(paths.chain, inter_pem + root_pem, 0644));

  InitResult result{paths, "", ""};
  E2EID_TRY(rf, CertificateFingerprint(root.get()));
  E2EID_TRY(inf, CertificateFingerprint(inter.get()));
  result.root_fingerprint = std::move(rf);
  result.intermediate_fingerprint = std::move(inf);
  return result;
}

Result<CertificateAuthority> CertificateAuthority::Load(
    const CaPaths& paths, std::optional<std::string_view> passphrase) {
  E2EID_TRY(root_pem, ReadFile(paths.root_cert));
  E2EID_TRY(inter_pem, ReadFile(paths.intermediate_cert));
  E2EID_TRY(key_pem, ReadFile(paths.intermediate_key));
  auto root = CertificateFromPem(root_pem);
  if (!root) return Fail(std::move(root.error()).Context(paths.root_cert));
  auto inter = CertificateFromPem(inter_pem);
  if (!inter) return Fail(std::move(inter.error()).Context(paths.intermediate_cert));
  auto key = crypto::PrivateKey::FromPem(key_pem, passphrase);
  if (!key) return Fail(std::move(key.error()).Context(paths.intermediate_key));

  if (X509_check_private_key(inter->get(), key->get()) != 1) {
    crypto::ClearOpenSslErrors();
    return Fail(Error::InvalidArgument(paths.intermediate_key + " does not match " +
                                       paths.intermediate_cert));
  }
  if (X509_check_ca(root->get()) != 1 || X509_check_ca(inter->get()) != 1) {
    return Fail(Error::InvalidArgument("root or intermediate certificate is not a CA"));
  }
  EVP_PKEY* root_pub = X509_get0_pubkey(root->get());
  if (root_pub == nullptr || X509_verify(root->get(), root_pub) != 1) {
    crypto::ClearOpenSslErrors();
    return Fail(Error::InvalidArgument(paths.root_cert + " is not a self-signed root"));
  }
  if (X509_verify(inter->get(), root_pub) != 1) {
    crypto::ClearOpenSslErrors();
    return Fail(
        Error::InvalidArgument(paths.intermediate_cert + " is not signed by " + paths.root_cert));
  }
  CertificateAuthority ca(std::move(*root), std::move(*inter), std::move(*key));
  E2EID_TRY(inter_out, CertificateToPem(ca.intermediate_.get()));
  E2EID_TRY(root_out, CertificateToPem(ca.root_.get()));
  ca.chain_pem_ = inter_out + root_out;
  ca.root_pem_ = root_out;
  E2EID_TRY(na, crypto::Asn1TimeToTimePoint(X509_get0_notAfter(ca.intermediate_.get())));
  ca.intermediate_not_after_ = na;
  return ca;
}

}  // namespace e2eid::ca
