// Certificates in the enrolment client: the device CSR, the local checks of an issued chain, the
// ARI certificate id (RFC 9773) and the renewal decision of `e2eid renew`.
//
// Pure functions over their arguments: thread-safe.
#ifndef E2EID_CLI_ENROL_CERT_H_
#define E2EID_CLI_ENROL_CERT_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/enrol_identity.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/error.h"
#include "crypto/key.h"
#include "crypto/openssl.h"

namespace e2eid::cli {

// A PKCS#10 request (DER) signed by `device_key`: subject O={domain} plus displayName
// (2.16.840.1.113730.3.1.241, UTF8String) = display name, no CN; one subjectAltName extension
// request with exactly URI:{client-id} and URI:{handle URI}, in that order.
// Errors: kInvalidArgument for an RSA key (Wire devices use Ed25519 or ECDSA); kMalformed for
// names OpenSSL refuses; kCrypto when OpenSSL fails.
Result<Bytes> BuildDeviceCsr(const crypto::PrivateKey& device_key, const WireIdentity& id);

// Every certificate of a PEM bundle, in order. Errors: kMalformed when there is none or a block
// does not parse.
Result<std::vector<crypto::X509Ptr>> ParsePemChain(std::string_view pem);

// What the client keeps about an issued certificate.
struct IssuedCertificate {
  std::string leaf_pem;    // the first certificate, PEM
  std::string chain_pem;   // the chain as served (leaf first)
  std::string serial_hex;  // lowercase, no leading zeros
  TimePoint not_before;
  TimePoint not_after;
  std::string ari_cert_id;  // RFC 9773 certificate id; empty when the leaf has no AKI
};

// Checks a served chain before anything is written: at least one certificate; the leaf's public
// key equals `device_key`'s; the leaf's subjectAltName holds exactly the two URIs of `id` (the
// client-id's '!' may be written "%21") and nothing else. Errors: kMalformed for an unparsable
// chain, kBadPublicKey for another key, kRejectedIdentifier for other names.
Result<IssuedCertificate> CheckIssuedChain(std::string_view pem_chain,
                                           const crypto::PublicKey& device_key,
                                           const WireIdentity& id);

// Reads not_before/not_after/serial/ARI id of a PEM certificate (the first of the bundle).
Result<IssuedCertificate> DescribeCertificate(std::string_view pem);

// RFC 9773 certificate id: base64url(AKI keyIdentifier) "." base64url(DER serial content octets).
// Errors: kMalformed when the certificate has no AKI keyIdentifier.
Result<std::string> AriCertId(X509* cert);

// An ARI suggested window.
struct SuggestedWindow {
  TimePoint start;
  TimePoint end;
};
// Parses a renewalInfo response body {"suggestedWindow":{"start":...,"end":...}, ...}.
// Errors: kMalformed when the shape is wrong or end < start.
Result<SuggestedWindow> ParseRenewalInfo(std::string_view body);

struct RenewalDecision {
  bool due = false;
  TimePoint renew_at;  // when renewal is (or was) due
  std::string reason;  // "forced", "two thirds of the lifetime have passed", "ARI window", ...
};

// Renewal is due when `force`, when now >= not_before + 2/3 of the lifetime, or when an ARI
// window was given and now >= its start. renew_at is the earlier of the two thresholds.
RenewalDecision DecideRenewal(TimePoint now, TimePoint not_before, TimePoint not_after,
                              const std::optional<SuggestedWindow>& ari, bool force);

}  // namespace e2eid::cli

#endif  // E2EID_CLI_ENROL_CERT_H_
