// HTTP glue for the ACME engine (acme/engine.h): registers its endpoints on a Router and renders
// its replies. Errors become RFC 8555 problem documents through ProblemResponse (server/problem.h),
// and the reply's headers (Replay-Nonce, Link, Location) are added to successful and failed
// responses alike.
//
// Routes (paths from acme/engine.h):
//   GET (+HEAD) /acme/directory             GET, HEAD /acme/new-nonce
//   POST /acme/new-account                  POST /acme/acct/{id}, /acme/acct/{id}/orders
//   POST /acme/new-order                    POST /acme/order/{id}, /acme/order/{id}/finalize
//   POST /acme/authz/{id}                   POST /acme/chall/{id}
//   POST /acme/cert/{serial}                POST /acme/revoke-cert, /acme/key-change
//   GET  /acme/renewal-info/{cert id}
//
// Thread-safe as the engine is: the registered handlers may run concurrently.
#ifndef E2EID_SERVER_ACME_ROUTES_H_
#define E2EID_SERVER_ACME_ROUTES_H_

#include <string_view>

#include "acme/device_authority.h"
#include "acme/engine.h"
#include "core/error.h"
#include "core/http.h"
#include "core/json.h"
#include "server/router.h"

namespace e2eid::server {

// Registers every ACME route. `engine` must outlive `router`. Errors: those of Router::Add (a
// route already registered).
Status AddAcmeRoutes(Router& router, const acme::Engine& engine);

// Registers the built-in device authority (acme/device_authority.h):
//   GET, HEAD /clients/{device}/nonce      POST /clients/{device}/access-token
// Errors render as problem documents. `authority` must outlive `router`.
Status AddDeviceAuthorityRoutes(Router& router, const acme::DeviceAuthority& authority);

// The HTTP response for a reply: the handler's response, or ProblemResponse(error, request_id);
// then the reply's headers are appended.
HttpResponse RenderAcmeReply(acme::AcmeReply reply, std::string_view request_id = {});

// The problem document ProblemResponse would send for `error`, as a JSON object: the
// acme::ProblemRenderer to pass to the engine.
Json AcmeProblemDocument(const Error& error);

}  // namespace e2eid::server

#endif  // E2EID_SERVER_ACME_ROUTES_H_
