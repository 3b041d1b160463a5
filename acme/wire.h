// Wire's end-to-end identity wire format: the "wireapp-user" / "wireapp-device" identifiers, their
// URIs, and the certificate signing request a device sends (see
// ../shared/reference/wire-e2ei-protocol.md).
//
// Identifier values are JSON objects serialised into a string:
//   wireapp-user   {"name": "Alice Smith", "domain": "example.com",
//                   "handle": "wireapp://%40alice@example.com"}
//   wireapp-device the same plus "client-id": "wireapp://{userId}!{deviceId}@example.com"
// userId is base64url (no padding) of the 16 bytes of a UUID (22 characters); deviceId is a 64-bit
// number in lowercase hex without leading zeros. In URIs the '!' may be written "%21".
//
// Pure functions: thread-safe.
#ifndef E2EID_ACME_WIRE_H_
#define E2EID_ACME_WIRE_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"
#include "crypto/key.h"

namespace e2eid::acme {

inline constexpr std::string_view kWireUserType = "wireapp-user";
inline constexpr std::string_view kWireDeviceType = "wireapp-device";
inline constexpr std::string_view kWireOidcChallenge = "wire-oidc-01";
inline constexpr std::string_view kWireDpopChallenge = "wire-dpop-01";

// A parsed client-id URI: wireapp://{user_id}!{device_id}@{domain}.
struct WireClientId {
  std::string user_id;    // base64url of 16 bytes (22 characters)
  std::string device_id;  // lowercase hex, no leading zeros, at most 16 digits
  std::string domain;
  // The canonical URI (with a literal '!').
  std::string Uri() const { return "wireapp://" + user_id + "!" + device_id + "@" + domain; }
};

// The identity an order asks for: both identifiers, checked against each other.
struct WireIdentity {
  std::string display_name;  // "name"
  std::string domain;
  std::string handle;      // the bare handle, e.g. "alice"
  std::string handle_uri;  // wireapp://%40alice@example.com
  WireClientId client;     // empty for a user-only parse
};

// Errors: kMalformed naming the part that is wrong. Accepts "!" or "%21" between the ids.
Result<WireClientId> ParseWireClientId(std::string_view uri);
// wireapp://%40{handle}@{domain} -> {handle, domain}. The handle: 1..256 characters of
// [a-z0-9_.-] (Wire's handle alphabet; IdP usernames in that alphabet).
Result<std::pair<std::string, std::string>> ParseWireHandleUri(std::string_view uri);
std::string WireHandleUri(std::string_view handle, std::string_view domain);

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (any hex case) -> base64url of the 16 bytes.
// Errors: kInvalidArgument for anything that is not a UUID.
Result<std::string> WireUserIdFromUuid(std::string_view uuid);

// Parses one identifier value (the JSON text) of type kWireUserType or kWireDeviceType. The domain
// must equal `domain`; every member must be a non-empty string; unknown members are refused;
// for a device the client-id's domain must equal "domain". Errors: kMalformed (shape),
// kRejectedIdentifier (another domain).
Result<WireIdentity> ParseWireIdentifier(std::string_view type, std::string_view value,
                                         std::string_view domain);

// Checks that an order's user and device identifiers describe the same person (name, handle,
// domain). Errors: kRejectedIdentifier naming the member that differs.
Result<WireIdentity> MatchWireIdentifiers(const WireIdentity& user, const WireIdentity& device);

// A device CSR, parsed and checked against the order's identity: DER PKCS#10 with a valid
// self-signature; key Ed25519, P-256, P-384 or P-521; subject O == domain and displayName
// (2.16.840.1.113730.3.1.241) == display name (a CN, when present, must equal it too; no other
// subject attributes); exactly one subjectAltName holding exactly the two URIs (client-id, with
// '!' or "%21", and the handle) and nothing else. Errors: kBadCsr naming what is wrong.
Result<crypto::PublicKey> CheckWireCsr(std::span<const uint8_t> der, const WireIdentity& identity);

}  // namespace e2eid::acme

#endif  // E2EID_ACME_WIRE_H_
