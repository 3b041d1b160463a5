// Internal helper of the oidc module: quoting untrusted text (claims, JWKS and discovery members)
// for error details. Thread-safe (a pure function).
#ifndef E2EID_OIDC_QUOTE_H_
#define E2EID_OIDC_QUOTE_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace e2eid::oidc {

// `s` in double quotes with '"', '\\' and bytes outside printable ASCII escaped (\" \\ \xNN), cut
// after `max_chars` input characters with "..." appended. E.g. Quote("a\"b") == "\"a\\\"b\"".
std::string Quote(std::string_view s, size_t max_chars = 100);

}  // namespace e2eid::oidc

#endif  // E2EID_OIDC_QUOTE_H_
