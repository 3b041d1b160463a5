// ACME identifiers and contacts: parsing and the server's policy for them (RFC 8555 §7.1.3,
// §7.1.4, §7.3).
//
// Pure functions: thread-safe.
#ifndef E2EID_ACME_IDENTIFIERS_H_
#define E2EID_ACME_IDENTIFIERS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"

namespace e2eid::acme {

struct Identifier {
  std::string type;  // "dns" (the identity flow adds "wireapp-user", "wireapp-device")
  std::string value;

  friend bool operator==(const Identifier&, const Identifier&) = default;
  friend auto operator<=>(const Identifier&, const Identifier&) = default;
};

// {"type": ..., "value": ...}
Json IdentifierToJson(const Identifier& id);
// A JSON array of identifier objects (the form orders are stored in).
Json IdentifiersToJson(const std::vector<Identifier>& ids);

// Parses the shape only: `json` must be an array of objects with string members "type" and
// "value" (other members are ignored). Errors: kMalformed naming the element and member.
Result<std::vector<Identifier>> ParseIdentifiers(const Json& json);

struct IdentifierPolicy {
  // DNS names this CA issues for: a name is allowed when it equals one of these suffixes or ends
  // with "." + suffix. The default allows "localhost" and every name under it ("a.localhost").
  std::vector<std::string> dns_suffixes = {"localhost"};
  // At most this many identifiers per order.
  size_t max_identifiers = 100;
};

// Checks one "dns" identifier value and returns its canonical form (ASCII lower case).
// Errors:
//   kRejectedIdentifier  an IP address literal, a wildcard ("*." names are not supported), a name
//                        outside the dns_suffixes allow-list;
//   kMalformed           not a syntactically valid DNS name: empty, longer than 253 characters, a
//                        trailing dot, an empty label, a label over 63 characters, a character
//                        other than [A-Za-z0-9-], a label starting or ending with '-'.
Result<std::string> CheckDnsIdentifier(std::string_view value, const IdentifierPolicy& policy);

// True when `name` (canonical, lower case) equals `suffix` or ends with "." + suffix.
bool DnsNameUnderSuffix(std::string_view name, std::string_view suffix);

// The Wire clients' placeholder contact, accepted without "mailto:".
inline constexpr std::string_view kAnonymousContact = "anonymous@anonymous.invalid";

// Checks one account contact URL. Accepted: "mailto:" with exactly one syntactically valid
// address and no header fields, and kAnonymousContact as is.
// Errors: kUnsupportedContact for another scheme; kInvalidContact for a malformed address
// (several addresses, "?hfields", bad local part or domain).
Status CheckContact(std::string_view contact);

}  // namespace e2eid::acme

#endif  // E2EID_ACME_IDENTIFIERS_H_
