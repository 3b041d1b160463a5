#include "ca/profile.h"

#include <algorithm>

namespace e2eid::ca {

std::string_view ProfileName(Profile p) {
  switch (p) {
    case Profile::kDevice:
      return "device";
    case Profile::kTlsServer:
      return "tls-server";
    case Profile::kOcspResponder:
      return "ocsp-responder";
  }
  return "device";
}

Result<Profile> ParseProfile(std::string_view name) {
  if (name == "device") return Profile::kDevice;
  if (name == "tls-server") return Profile::kTlsServer;
  if (name == "ocsp-responder") return Profile::kOcspResponder;
  return Fail(Error::InvalidArgument("unknown certificate profile '" + std::string(name) +
                                     "' (accepted: device, tls-server, ocsp-responder)"));
}

Status ValidityPolicy::Validate() const {
  using std::chrono::seconds;
  if (min_validity <= seconds(0)) return Fail(Error::Config("min validity must be positive"));
  if (min_validity > default_validity) {
    return Fail(Error::Config("min validity is longer than the default validity"));
  }
  if (default_validity > max_validity) {
    return Fail(Error::Config("default validity is longer than the max validity"));
  }
  if (backdate < seconds(0)) return Fail(Error::Config("backdate must not be negative"));
  if (max_future_start < seconds(0)) {
    return Fail(Error::Config("max future start must not be negative"));
  }
  return Ok();
}

Result<Validity> ClampValidity(const ValidityPolicy& policy, TimePoint now,
                               std::optional<TimePoint> requested_not_before,
                               std::optional<TimePoint> requested_not_after,
                               TimePoint ca_not_after) {
  if (requested_not_before && requested_not_after &&
      *requested_not_after <= *requested_not_before) {
    return Fail(Error::Malformed("notAfter must be later than notBefore"));
  }
  if (requested_not_before && *requested_not_before > now + policy.max_future_start) {
    return Fail(Error::Malformed("notBefore " + FormatRfc3339(*requested_not_before) +
                                 " is too far in the future (at most " +
                                 std::to_string(policy.max_future_start.count()) + " s ahead)"));
  }
  const TimePoint start = std::max(requested_not_before.value_or(now), now);
  TimePoint end = requested_not_after.value_or(start + policy.default_validity);
  auto length =
      std::clamp<std::chrono::seconds>(end - start, policy.min_validity, policy.max_validity);
  end = std::min(start + length, ca_not_after);
  if (end - start < policy.min_validity) {
    return Fail(Error::Internal("the issuing CA expires at " + FormatRfc3339(ca_not_after) +
                                ", too soon to issue a certificate of the minimum validity"));
  }
  return Validity{start - policy.backdate, end};
}

}  // namespace e2eid::ca
