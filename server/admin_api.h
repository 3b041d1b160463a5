// The admin API (/admin/v1, JSON): revocation, listings of certificates, devices, users,
// revocation events and the audit trail, device block/unblock, and the users' self-service
// ("remove a lost phone"). Transport-neutral like server/acme_routes.h: AddAdminRoutes registers
// the handlers on a Router.
//
// Authorization: every request carries an access token issued by the organisation's IdP and
// verified with TokenVerifier::VerifyAccessToken (issuer, signature, expiry, audience/azp = the
// verifier's client id; the verifier's own role policy is not applied):
//   - an unbound token as `Authorization: Bearer <token>`;
//   - a DPoP-bound token (claim "cnf"."jkt", RFC 9449 §7) as `Authorization: DPoP <token>` with
//     exactly one `DPoP` header holding a proof: typ "dpop+jwt", a public "jwk" whose RFC 7638
//     thumbprint is "cnf"."jkt" and that verifies the signature, "htm" = the request method,
//     "htu" = options.base_url + the request path (query and fragment ignored; only the path is
//     compared when base_url is empty), "iat" within dpop_max_age (+ leeway) and not in the
//     future, "ath" = base64url(SHA-256(token)), and a "jti" not seen before (kept in the store's
//     nonce table until the proof is too old anyway, so instances sharing a store share it).
//     A bound token presented as Bearer is refused: without the proof it is a stolen bearer
//     token as far as the API can tell.
//   - no token, another scheme, a token the verifier refuses (bad signature, expired, another
//     issuer, another client), one without "sub", a bound token without a valid proof, or the
//     DPoP scheme with an unbound token: 401, problem type unauthorized naming the check, header
//     `WWW-Authenticate: Bearer realm="e2eid"` (plus `error="invalid_token"` when a token was
//     sent; `DPoP realm="e2eid", error="invalid_token"|"invalid_dpop_proof", algs="..."` for the
//     DPoP cases);
//   - a valid token without `admin_role` in the claim at `roles_claim` on an admin route: 403;
//   - the IdP cannot be reached to verify the token: 503.
// Every refused attempt is appended to the audit trail (action "admin.login", outcome "denied"
// or, for 503, "failure"; actor "anonymous" or "user:<sub>"; details {reason, route}) and
// nothing else changes. Revocations, blocks, unblocks, user disable/enable and self-service
// removals are audited by the RevocationService (actor "admin:<sub>" or "user:<sub>"); a
// self-service attempt on a device that is not the caller's is audited here ("device.remove",
// outcome "denied"). Reads are not audited, except the full audit export ("audit.export").
//
// Routes (admin role required unless marked "self"; JSON bodies; errors are problem documents
// from server/problem.h; every response has Cache-Control: no-store):
//   POST /admin/v1/revocations          {"scope":"certificate|device|user|key|before",
//                                        "value":"...", "reason": 1 | "keyCompromise",
//                                        "comment":"..."} -> {"affected":N,"event":id}
//   GET  /admin/v1/revocations?cursor=&limit=            the revocation events
//   GET  /admin/v1/certificates?user=&device=&spki=&issued_before=&status=&cursor=&limit=
//   GET  /admin/v1/certificates/{serial}
//   GET  /admin/v1/devices?user=&status=&cursor=&limit=
//   GET  /admin/v1/devices/{device}                      the device and its certificates
//   POST /admin/v1/devices/{device}/block   {"reason":"..."} (body optional) -> the device
//   POST /admin/v1/devices/{device}/unblock                                   -> the device
//   GET  /admin/v1/users?cursor=&limit=
//   GET  /admin/v1/users/{id}                            the user and their devices
//   POST /admin/v1/users/{id}/disable       {"reason":"..."} (body optional) -> the user
//   POST /admin/v1/users/{id}/enable                                          -> the user
//        (a disabled user cannot enrol; certificates are revoked only by a "user" revocation)
//   GET  /admin/v1/audit?cursor=&limit=
//   GET  /admin/v1/audit/export      application/x-ndjson, one audit event per line, every event
//   GET  /admin/v1/me/devices                      (self) the caller's devices
//   POST /admin/v1/me/devices/{device}/remove      (self) -> {"affected":N,"event":id}
// Listings answer {"items":[...],"next":"<cursor>"} ("next" is "" on the last page). A listing
// with several certificate filters queries by the most selective one (device, user, spki,
// issued_before) and filters the rest, so a page may hold fewer than `limit` items while "next"
// is not empty.
//
// Values: device ids are Wire client-id URIs, percent-encoded in paths and queries (a malformed
// encoding is refused with 400); they are canonicalised ("%21" -> "!"). User ids are Wire user
// ids; an IdP subject UUID is accepted too and mapped with acme::WireUserIdFromUuid. Serials
// are hex, case-insensitive, with or without ':' separators and leading zeros. Reasons are RFC
// 5280 CRLReason codes or names; certificateHold (6) and removeFromCRL (8) are refused, because
// an e2eid revocation is final. Times are RFC 3339. Body members other than those listed are
// refused (400).
//
// Self-service maps the token's "sub" (a UUID) to the Wire user id; a token whose "sub" is not a
// UUID gets 403 there. A device that does not exist or belongs to someone else gets the same
// 403, so the route does not reveal which devices exist.
//
// Thread safety: the handlers are const and may run concurrently; the dependencies must be
// thread-safe (Store, RevocationService and TokenVerifier are) and outlive the AdminApi, which
// must outlive the Router.
#ifndef E2EID_SERVER_ADMIN_API_H_
#define E2EID_SERVER_ADMIN_API_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/http.h"
#include "core/json.h"
#include "oidc/verifier.h"
#include "revocation/service.h"
#include "server/router.h"
#include "store/store.h"

namespace e2eid::server {

inline constexpr std::string_view kAdminPathPrefix = "/admin/v1";

struct AdminApiOptions {
  std::string roles_claim = "realm_access.roles";  // dot path in the access token
  std::string admin_role = "e2eid-admin";
  int default_page_size = 100;
  int max_page_size = 1000;  // at most store::kMaxPageLimit
  // The service's external URL (scheme://host[:port], no trailing slash): DPoP proofs must name
  // base_url + path as "htu". Empty: only the path of "htu" is compared.
  std::string base_url;
  std::chrono::seconds dpop_max_age{300};  // how old a DPoP proof's "iat" may be
  std::chrono::seconds leeway{60};         // clock skew allowed for "iat"
};

class AdminApi {
 public:
  struct Deps {
    store::Store& store;
    revocation::RevocationService& revocations;
    oidc::TokenVerifier& verifier;
    const Clock& clock;
  };

  AdminApi(AdminApiOptions options, Deps deps);
  AdminApi(const AdminApi&) = delete;
  AdminApi& operator=(const AdminApi&) = delete;

  // Registers the routes (see AddAdminRoutes).
  friend Status AddAdminRoutes(Router& router, const AdminApi& api);

 private:
  // Who sent a request (the verified token).
  struct Caller {
    std::string sub;
    std::string user_id;  // Wire user id of `sub` (self-service routes only)
    bool admin = false;
  };
  enum class Access { kAdmin, kSelf };

  // Authenticates `request` for a route (`route` names it in the audit trail, e.g.
  // "GET /admin/v1/devices"). On refusal returns the 401/403/503 response, after auditing it.
  Result<Caller> Authenticate(const HttpRequest& request, std::string_view route, Access access,
                              HttpResponse* refusal) const;
  // The RFC 9449 proof of possession for a token bound to `jkt` (see the header comment).
  // Errors: kUnauthenticated naming the failed check; the store's errors.
  Status CheckDpopProof(const HttpRequest& request, std::string_view token,
                        std::string_view jkt) const;

  // The handlers, after authentication. Errors become problem documents in the route wrapper.
  Result<HttpResponse> Revoke(const HttpRequest& r, const Caller& c) const;
  Result<HttpResponse> ListRevocations(const HttpRequest& r) const;
  Result<HttpResponse> ListCertificates(const HttpRequest& r) const;
  Result<HttpResponse> GetCertificate(std::string_view serial) const;
  Result<HttpResponse> ListDevices(const HttpRequest& r) const;
  Result<HttpResponse> GetDevice(std::string_view device) const;
  // The device `id` (canonical) with its certificates.
  Result<HttpResponse> DeviceResponse(const std::string& id) const;
  Result<HttpResponse> BlockDevice(const HttpRequest& r, const Caller& c,
                                   std::string_view device) const;
  Result<HttpResponse> UnblockDevice(const HttpRequest& r, const Caller& c,
                                     std::string_view device) const;
  Result<HttpResponse> ListUsers(const HttpRequest& r) const;
  Result<HttpResponse> GetUser(std::string_view id) const;
  Result<HttpResponse> SetUserStatus(const HttpRequest& r, const Caller& c, std::string_view id,
                                     bool disable) const;
  Result<HttpResponse> ListAudit(const HttpRequest& r) const;
  Result<HttpResponse> ExportAudit(const HttpRequest& r, const Caller& c) const;
  Result<HttpResponse> MyDevices(const Caller& c) const;
  Result<HttpResponse> RemoveMyDevice(const HttpRequest& r, const Caller& c,
                                      std::string_view device) const;

  // Appends one audit event in its own transaction; a failure is logged (the answer to the
  // request does not change).
  void Audit(const HttpRequest& r, std::string actor, std::string action, std::string target,
             std::string outcome, const Json& details) const;
  // The page a listing asks for ("cursor", "limit").
  Result<store::PageRequest> Paging(const std::optional<std::string>& cursor,
                                    const std::optional<std::string>& limit) const;

  const AdminApiOptions options_;
  Deps deps_;
};

// Registers every admin route; `api` must outlive `router`. Errors: those of Router::Add (a route
// already registered).
Status AddAdminRoutes(Router& router, const AdminApi& api);

// Helpers, exposed for tests and the CLI.
// Strict percent-decoding: "%" must be followed by two hex digits. Errors: kMalformed.
Result<std::string> PercentDecode(std::string_view s);
// A serial as the store keys it: separators ':' removed, lowercase, no leading zeros.
// Errors: kMalformed when it is not 1..40 hex digits.
Result<std::string> CanonicalSerial(std::string_view s);

}  // namespace e2eid::server

#endif  // E2EID_SERVER_ADMIN_API_H_
