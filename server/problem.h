// The one mapping from e2eid's ErrorCode to an HTTP status and an RFC 7807 problem document
// (RFC 8555 §6.7 problem types). Handler code turns a failed Result into a response with
// ProblemResponse(error) and never writes its own status numbers for errors.
//
// Internal codes (kInternal, kIo, kStore, kCrypto, kConfig, kUnavailable) never reach the client:
// their detail is logged (level error, with the request id when one is given) and the client gets
// a generic "serverInternal" problem.
//
// Pure functions, no state besides the log: thread-safe.
#ifndef E2EID_SERVER_PROBLEM_H_
#define E2EID_SERVER_PROBLEM_H_

#include <string>
#include <string_view>

#include "core/error.h"
#include "core/http.h"

namespace e2eid::server {

inline constexpr std::string_view kProblemContentType = "application/problem+json";

// HTTP status for a code: 400 for most ACME errors, 403 unauthorized/caa/orderNotReady/
// userActionRequired/forbidden, 404 notFound, 409 conflict/alreadyExists/alreadyReplaced,
// 413 payloadTooLarge, 415 unsupportedMediaType, 429 rateLimited, 503 unavailable, 500 otherwise.
int HttpStatusFor(ErrorCode code);

// "urn:ietf:params:acme:error:<name>" for RFC 8555 codes. Codes that are not ACME types map to the
// closest ACME type (notFound, conflict, invalidArgument, alreadyExists, payloadTooLarge and
// unsupportedMediaType to "malformed", forbidden to "unauthorized"); internal codes to
// "serverInternal".
std::string ProblemTypeFor(ErrorCode code);

// An application/problem+json response for `error`: {"type","detail","status"} plus
// "subproblems" (each with "type", "detail" and, when set, "identifier":{"type","value"}) and a
// Retry-After header when the error carries one. Internal codes are replaced as described above.
HttpResponse ProblemResponse(const Error& error, std::string_view request_id = {});

// A problem response with an explicit status and type, for transport-level failures that have no
// ErrorCode (431, 405, ...). `type` is used verbatim ("about:blank" is fine).
HttpResponse ProblemResponse(int status, std::string_view type, std::string_view detail);

}  // namespace e2eid::server

#endif  // E2EID_SERVER_PROBLEM_H_
