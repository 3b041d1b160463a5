// Small HTTP helpers shared by the CRL and OCSP handlers (internal to revocation/).
// All functions are pure and thread-safe.
#ifndef E2EID_REVOCATION_HTTP_UTIL_H_
#define E2EID_REVOCATION_HTTP_UTIL_H_

#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/http.h"

namespace e2eid::revocation {

// IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string HttpDate(TimePoint t);

// Percent-decodes (RFC 3986 §2.1). '+' is kept as is (it is a base64 character in an OCSP GET
// path). Errors: kMalformed for a '%' not followed by two hex digits.
Result<std::string> PercentDecode(std::string_view text);

// The value of `name` in an application/x-www-form-urlencoded style query ("a=1&b=2"), not decoded;
// "" for a name without '='; nullopt when absent.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);

// True when an If-None-Match header value lists `etag` (a quoted entity tag) or is "*". Weak
// validators (W/"...") compare by their opaque part (RFC 9110 §13.1.2 weak comparison).
bool IfNoneMatchHits(const std::optional<std::string>& header, std::string_view etag);

// A 405 response naming the allowed methods.
HttpResponse MethodNotAllowed(std::string_view allow);

}  // namespace e2eid::revocation

#endif  // E2EID_REVOCATION_HTTP_UTIL_H_
