#include "cli/enrol_cert.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <set>

#include "acme/ari.h"
#include "ca/x509.h"
#include "core/json.h"

namespace e2eid::cli {
namespace {

using crypto::OpenSslError;

// Adds one URI to a GENERAL_NAMES stack.
Status PushUri(GENERAL_NAMES* names, const std::string& uri) {
  E2EID_CHECK_OK(ca::CheckIa5Name(uri));
  crypto::GeneralNamePtr gn(GENERAL_NAME_new());
  if (!gn) return Fail(OpenSslError("GENERAL_NAME_new"));
  crypto::Asn1StringPtr ia5(ASN1_IA5STRING_new());
  if (!ia5) return Fail(OpenSslError("ASN1_IA5STRING_new"));
  if (ASN1_STRING_set(ia5.get(), uri.data(), static_cast<int>(uri.size())) != 1) {
    return Fail(OpenSslError("ASN1_STRING_set"));
  }
  GENERAL_NAME_set0_value(gn.get(), GEN_URI, ia5.release());
  if (sk_GENERAL_NAME_push(names, gn.get()) == 0) return Fail(OpenSslError("sk_push"));
  (void)gn.release();  // owned by `names` now
  return Ok();
}

std::string NormaliseClientId(std::string uri) {
  // Some CAs (Go's URL printer) write the '!' of the client-id as "%21".
  for (size_t pos = uri.find("%21"); pos != std::string::npos; pos = uri.find("%21", pos + 1)) {
    uri.replace(pos, 3, "!");
  }
  return uri;
}

}  // namespace

Result<Bytes> BuildDeviceCsr(const crypto::PrivateKey& device_key, const WireIdentity& id) {
  if (device_key.type() == crypto::KeyType::kRsa) {
    return Fail(Error::InvalidArgument("device keys must be ed25519, p256, p384 or p521"));
  }
  crypto::X509ReqPtr req(X509_REQ_new());
  if (!req) return Fail(OpenSslError("X509_REQ_new"));
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1) {
    return Fail(OpenSslError("X509_REQ_set_version"));
  }
  E2EID_TRY(subject, ca::BuildName({{"O", id.domain}, {"displayName", id.display_name}}));
  if (X509_REQ_set_subject_name(req.get(), subject.get()) != 1) {
    return Fail(OpenSslError("X509_REQ_set_subject_name"));
  }
  if (X509_REQ_set_pubkey(req.get(), device_key.get()) != 1) {
    return Fail(OpenSslError("X509_REQ_set_pubkey"));
  }
  crypto::GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) return Fail(OpenSslError("GENERAL_NAMES_new"));
  E2EID_CHECK_OK(PushUri(names.get(), id.ClientIdUri()));
  E2EID_CHECK_OK(PushUri(names.get(), id.HandleUri()));
  crypto::X509ExtensionPtr san(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
  if (!san) return Fail(OpenSslError("X509V3_EXT_i2d(subjectAltName)"));
  crypto::X509ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
  if (!exts) return Fail(OpenSslError("sk_X509_EXTENSION_new_null"));
  if (sk_X509_EXTENSION_push(exts.get(), san.get()) == 0) return Fail(OpenSslError("sk_push"));
  (void)san.release();  // owned by `exts` now
  if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
    return Fail(OpenSslError("X509_REQ_add_extensions"));
  }
  if (X509_REQ_sign(req.get(), device_key.get(), crypto::SignatureDigest(device_key.type())) <= 0) {
    return Fail(OpenSslError("X509_REQ_sign"));
  }
  unsigned char* raw = nullptr;
  const int len = i2d_X509_REQ(req.get(), &raw);
  crypto::OpenSslBufferPtr owned(raw);
  if (len <= 0) return Fail(OpenSslError("i2d_X509_REQ"));
  return Bytes(raw, raw + len);
}

Result<std::vector<crypto::X509Ptr>> ParsePemChain(std::string_view pem) {
  std::vector<crypto::X509Ptr> certs;
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  size_t pos = 0;
  while ((pos = pem.find(kBegin, pos)) != std::string_view::npos) {
    const size_t end = pem.find(kEnd, pos);
    if (end == std::string_view::npos) {
      return Fail(Error::Malformed("truncated PEM certificate in the chain"));
    }
    const std::string_view block = pem.substr(pos, end + kEnd.size() - pos);
    auto cert = ca::CertificateFromPem(block);
    if (!cert) {
      return Fail(Error::Malformed("certificate " + std::to_string(certs.size() + 1) +
                                   " of the chain does not parse"));
    }
    certs.push_back(std::move(*cert));
    pos = end + kEnd.size();
  }
  if (certs.empty()) return Fail(Error::Malformed("no PEM certificate in the response"));
  return certs;
}

Result<std::string> AriCertId(X509* cert) { return acme::AriCertIdOf(cert); }

Result<IssuedCertificate> DescribeCertificate(std::string_view pem) {
  E2EID_TRY(chain, ParsePemChain(pem));
  X509* leaf = chain.front().get();
  IssuedCertificate out;
  E2EID_TRY(leaf_pem, ca::CertificateToPem(leaf));
  out.leaf_pem = std::move(leaf_pem);
  out.chain_pem = std::string(pem);
  E2EID_TRY(serial, ca::SerialHex(leaf));
  out.serial_hex = std::move(serial);
  E2EID_TRY(nb, crypto::Asn1TimeToTimePoint(X509_get0_notBefore(leaf)));
  E2EID_TRY(na, crypto::Asn1TimeToTimePoint(X509_get0_notAfter(leaf)));
  out.not_before = nb;
  out.not_after = na;
  if (auto id = AriCertId(leaf)) out.ari_cert_id = std::move(*id);
  return out;
}

Result<IssuedCertificate> CheckIssuedChain(std::string_view pem_chain,
                                           const crypto::PublicKey& device_key,
                                           const WireIdentity& id) {
  E2EID_TRY(chain, ParsePemChain(pem_chain));
  X509* leaf = chain.front().get();
  auto leaf_key = crypto::PublicKey::FromEvpPkey(X509_get0_pubkey(leaf));
  if (!leaf_key || !leaf_key->Equals(device_key)) {
    return Fail(Error::BadPublicKey("the issued certificate is not for the device key"));
  }
  crypto::GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) {
    crypto::ClearOpenSslErrors();
    return Fail(Error::RejectedIdentifier("the issued certificate has no subjectAltName"));
  }
  std::multiset<std::string> got;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_URI) {
      return Fail(Error::RejectedIdentifier(
          "the issued certificate's subjectAltName holds a name that is not a URI"));
    }
    const ASN1_IA5STRING* s = gn->d.uniformResourceIdentifier;
    got.insert(NormaliseClientId(std::string(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s))));
  }
  const std::multiset<std::string> want = {id.ClientIdUri(), id.HandleUri()};
  if (got != want) {
    std::string list;
    for (const auto& u : got) list += (list.empty() ? "" : ", ") + u;
    return Fail(Error::RejectedIdentifier("the issued certificate names [" + list + "], expected " +
                                          id.ClientIdUri() + " and " + id.HandleUri()));
  }
  return DescribeCertificate(pem_chain);
}

Result<SuggestedWindow> ParseRenewalInfo(std::string_view body) {
  E2EID_TRY(json, ParseJson(body, "renewalInfo"));
  if (!json.is_object() || !json.contains("suggestedWindow") ||
      !json["suggestedWindow"].is_object()) {
    return Fail(Error::Malformed("renewalInfo: member 'suggestedWindow' is missing"));
  }
  const Json& w = json["suggestedWindow"];
  E2EID_TRY(start_text, GetString(w, "start", "renewalInfo suggestedWindow"));
  E2EID_TRY(end_text, GetString(w, "end", "renewalInfo suggestedWindow"));
  E2EID_TRY(start, ParseRfc3339(start_text));
  E2EID_TRY(end, ParseRfc3339(end_text));
  if (end < start) return Fail(Error::Malformed("renewalInfo: the window ends before it starts"));
  return SuggestedWindow{start, end};
}

RenewalDecision DecideRenewal(TimePoint now, TimePoint not_before, TimePoint not_after,
                              const std::optional<SuggestedWindow>& ari, bool force) {
  const auto lifetime = not_after - not_before;
  const TimePoint two_thirds = not_before + lifetime * 2 / 3;
  RenewalDecision d;
  d.renew_at = two_thirds;
  if (ari && ari->start < d.renew_at) d.renew_at = ari->start;
  if (force) {
    d.due = true;
    d.reason = "forced";
  } else if (ari && now >= ari->start) {
    d.due = true;
    d.reason = "the CA's renewal window (ARI) has started";
  } else if (now >= two_thirds) {
    d.due = true;
    d.reason = "two thirds of the certificate's lifetime have passed";
  } else {
    d.reason = "not due yet";
  }
  return d;
}

}  // namespace e2eid::cli
