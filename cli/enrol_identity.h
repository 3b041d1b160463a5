// The identity a device enrols for in Wire's end-to-end identity protocol, as the enrolment client
// (`e2eid enrol` / `e2eid renew`) builds it: the user id from the IdP's `sub`, the device id, the
// client-id and handle URIs, and the two ACME identifiers of the newOrder request (see
// ../shared/reference/wire-e2ei-protocol.md).
//
// Pure functions (except NewDeviceId, which draws from the given RandomSource): thread-safe.
#ifndef E2EID_CLI_ENROL_IDENTITY_H_
#define E2EID_CLI_ENROL_IDENTITY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/random.h"

namespace e2eid::cli {

inline constexpr std::string_view kWireUserIdentifier = "wireapp-user";
inline constexpr std::string_view kWireDeviceIdentifier = "wireapp-device";

struct WireIdentity {
  std::string display_name;  // the IdP's "name" claim, e.g. "Alice Smith"
  std::string domain;        // e.g. "example.com"
  std::string handle;        // the bare handle (IdP "preferred_username"), e.g. "alice"
  std::string user_id;       // base64url (no padding) of the 16 bytes of the `sub` UUID
  std::string device_id;     // 64-bit number, lowercase hex without leading zeros

  // wireapp://%40{handle}@{domain}
  std::string HandleUri() const;
  // wireapp://{user_id}!{device_id}@{domain}
  std::string ClientIdUri() const;
};

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex digits of either case) -> base64url of its 16
// bytes (22 characters). Errors: kInvalidArgument for anything that is not such a UUID.
Result<std::string> UserIdFromUuid(std::string_view uuid);

// Lowercase hex without leading zeros ("0" for zero, which NewDeviceId never returns).
std::string FormatDeviceId(uint64_t id);
// A random non-zero 64-bit device id, formatted. Errors: those of rng.Fill().
Result<std::string> NewDeviceId(RandomSource& rng);
// True for 1..16 lowercase hex digits without a leading zero.
bool IsValidDeviceId(std::string_view id);

// True for a Wire handle: 1..256 characters of [a-z0-9_.-].
bool IsValidHandle(std::string_view handle);

// Builds the identity from the claims of the login's ID token (or JWT access token): "sub" (a
// UUID), "name" and "preferred_username". Errors: kInvalidArgument naming the claim that is
// missing, not a string, or not acceptable (sub not a UUID, handle outside Wire's alphabet, empty
// name); also for an empty domain or an invalid device id.
Result<WireIdentity> IdentityFromClaims(const Json& claims, std::string_view domain,
                                        std::string_view device_id);

// The identifier values (JSON objects serialised into strings), members in this order:
//   wireapp-user   {"name":...,"domain":...,"handle":"wireapp://%40{handle}@{domain}"}
//   wireapp-device the same plus "client-id":"wireapp://{user_id}!{device_id}@{domain}"
std::string UserIdentifierValue(const WireIdentity& id);
std::string DeviceIdentifierValue(const WireIdentity& id);

// The newOrder payload: {"identifiers":[device, user], "notBefore"?, "notAfter"?, "replaces"?}.
// Times are RFC 3339; `replaces` (an ARI certificate id) is omitted when empty.
Json NewOrderPayload(const WireIdentity& id, std::optional<TimePoint> not_before,
                     std::optional<TimePoint> not_after, std::string_view replaces = {});

}  // namespace e2eid::cli

#endif  // E2EID_CLI_ENROL_IDENTITY_H_
