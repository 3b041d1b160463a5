// Certificate profiles and the validity policy of the issuing CA.
//
// A profile fixes every extension of a leaf certificate. Nothing is ever copied from a CSR: callers
// extract the public key and names from a validated CSR and pass only those (Boulder's rule).
#ifndef E2EID_CA_PROFILE_H_
#define E2EID_CA_PROFILE_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"

namespace e2eid::ca {

enum class Profile {
  // End-to-end identity device certificate (Wire's template): keyUsage digitalSignature (critical),
  // extKeyUsage clientAuth.
  kDevice,
  // TLS server certificate for ACME clients such as certbot and lego: keyUsage digitalSignature
  // (plus keyEncipherment for RSA keys), extKeyUsage serverAuth + clientAuth.
  kTlsServer,
  // Delegated OCSP responder (RFC 6960 §4.2.2.2): keyUsage digitalSignature, extKeyUsage
  // OCSPSigning, id-pkix-ocsp-nocheck.
  kOcspResponder,
};

std::string_view ProfileName(Profile p);
// "device", "tls-server", "ocsp-responder". Errors: kInvalidArgument naming the accepted values.
Result<Profile> ParseProfile(std::string_view name);

// How long certificates live. Defaults follow the product: short-lived device certificates.
struct ValidityPolicy {
  std::chrono::seconds default_validity = std::chrono::hours(24);
  std::chrono::seconds max_validity = std::chrono::hours(24 * 7);
  std::chrono::seconds min_validity = std::chrono::minutes(5);
  // notBefore is set this far before the effective start, to tolerate relying parties whose clocks
  // run slightly behind. It does not count towards max_validity.
  std::chrono::seconds backdate = std::chrono::seconds(0);
  // A requested notBefore may lie at most this far in the future.
  std::chrono::seconds max_future_start = std::chrono::hours(24);

  // Errors: kConfig when min > default, default > max, min <= 0 or backdate < 0.
  Status Validate() const;
};

struct Validity {
  TimePoint not_before;  // as written in the certificate (start - backdate)
  TimePoint not_after;
};

// Clamps a requested window to the policy:
//   start = requested_not_before (or now), but never before now nor after now + max_future_start;
//   end   = requested_not_after (or start + default_validity);
//   the length end - start is clamped into [min_validity, max_validity];
//   end never exceeds `ca_not_after` (the issuing CA's own expiry).
// Errors: kMalformed when requested_not_after <= requested_not_before, or the requested start is
// beyond max_future_start; kInternal when the CA expires within min_validity (it cannot issue).
Result<Validity> ClampValidity(const ValidityPolicy& policy, TimePoint now,
                               std::optional<TimePoint> requested_not_before,
                               std::optional<TimePoint> requested_not_after,
                               TimePoint ca_not_after);

}  // namespace e2eid::ca

#endif  // E2EID_CA_PROFILE_H_
