// Engine: the ACME server (RFC 8555, with RFC 9773 renewal information), transport-neutral.
//
// The engine answers core/http.h requests; it knows no sockets and no HTTP library. The HTTP glue
// (server/acme_routes.h) registers one route per handler below, renders failed results as RFC 8555
// problem documents (server::ProblemResponse) and adds AcmeReply::headers to every response,
// successful or not.
//
// Resources live under EngineOptions::base_url at the paths below (the directory announces
// them).
//
// Request authentication (every POST): the body must be a flattened JWS (crypto/jws.h) sent as
// "application/jose+json" (else 415) and at most EngineOptions::max_request_bytes long (else
// 413). The protected header names exactly one of "jwk" (newAccount; revokeCert signed by the
// certificate's key) or "kid" (everything else; it must be an account URL of this server), a
// "nonce" and a "url" that must equal base_url + the request target exactly. Checks, in order:
//   1. Content-Type, size, JWS syntax (alg allow-list, no "crit", no "b64":false, no unprotected
//      header), "url" and "nonce" present, jwk/kid rule                  -> 415/413/malformed/
//                                                                          badSignatureAlgorithm/
//                                                                          badNonce
//   2. the key: the "jwk" (key policy: badPublicKey) or the "kid" account (accountDoesNotExist)
//   3. the signature                                                       -> malformed
//   4. the nonce is consumed from the store (single use, expiring)         -> badNonce
//   5. "url" equals the request URL                                        -> unauthorized
//   6. the account is valid (not deactivated/revoked)                      -> unauthorized
//   7. the payload: empty for POST-as-GET (a body there is malformed), else a JSON object
//      (duplicate members are malformed)
// Nonce rule (as Boulder does): a request whose signature verified has consumed its nonce even
// when it fails later; a request that fails before its signature is verified leaves the nonce
// unused. Apart from that consumed nonce and the fresh nonce sent in Replay-Nonce, a failed
// request leaves the store unchanged.
//
// Response headers: every POST reply and newNonce carry a fresh Replay-Nonce (errors too; a
// badNonce answer carries one so the client can retry). Every reply carries
// Link: <directory>;rel="index". newAccount/newOrder/finalize carry Location; challenge replies
// carry Link: <authorization>;rel="up".
//
// State machine (RFC 8555 §7.1.6): challenges pending -> processing -> valid | invalid;
// authorizations pending -> valid | invalid | deactivated, and "expired" once `expires` passes;
// orders pending -> ready (all authorizations valid) -> processing (finalize) -> valid |
// invalid, and invalid as soon as one authorization is invalid/deactivated/expired or the order
// expires. Stored states move only by compare-and-set, so concurrent requests on one account stay
// consistent (e.g. of several concurrent finalize calls on a ready order exactly one issues; the
// others get orderNotReady). Expiry is applied when a resource is read or acted on. Each
// authorization belongs to exactly one order: a validated challenge only ever makes its own order
// ready (authorizations are never reused across orders).
//
// End-to-end identity (EngineOptions::wire): an order with Wire identifiers has exactly one
// "wireapp-user" and one "wireapp-device" identifier (acme/wire.h) naming the same person in the
// configured domain; a device or user that an administrator blocked/disabled is refused
// (unauthorized). Their challenges (wire-oidc-01, wire-dpop-01) carry a "target". Finalize checks
// the CSR with CheckWireCsr and issues a Profile::kDevice certificate (CN = name, O = domain, the
// two URIs); the certificate, the user and the device are recorded in the same transaction.
//
// Challenge validation: synchronous validators (ChallengeValidator::synchronous) run while the
// challenge POST is answered; a failure is that reply's problem document (and makes the challenge,
// authorization and order invalid, as below). Otherwise: POST {} to a pending challenge sets it
// "processing" and hands a job to the JobRunner; the job calls the ChallengeValidator registered
// for the challenge type (which may block) and records the outcome. An authorization offers the
// challenge types of EngineOptions::challenge_types for its identifier type that have a validator.
// When the JobRunner refuses the job (queue full: kUnavailable, 503) the challenge goes back to
// "pending" so the client can retry. A validation failure makes the challenge, its authorization
// and its order invalid, with the validator's error as the problem document in "error".
//
// Thread safety: all handlers are const-safe and may run concurrently from any number of threads.
// The collaborators (store, issuer, clock, random source, validators, job runner) must be
// thread-safe and outlive the engine; jobs handed to the JobRunner reference the engine, so the
// runner must have finished every job (server::WorkQueue::Shutdown) before the engine is
// destroyed.
#ifndef E2EID_ACME_ENGINE_H_
#define E2EID_ACME_ENGINE_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "acme/identifiers.h"
#include "acme/validation.h"
#include "ca/issuer.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/http.h"
#include "core/json.h"
#include "core/random.h"
#include "crypto/jws.h"
#include "crypto/key.h"
#include "revocation/service.h"
#include "store/store.h"

namespace e2eid::acme {

// Resource paths, relative to EngineOptions::base_url. "{id}" segments are filled by the engine.
inline constexpr std::string_view kDirectoryPath = "/acme/directory";
inline constexpr std::string_view kNewNoncePath = "/acme/new-nonce";
inline constexpr std::string_view kNewAccountPath = "/acme/new-account";
inline constexpr std::string_view kAccountPathPrefix = "/acme/acct/";  // {id}, {id}/orders
inline constexpr std::string_view kNewOrderPath = "/acme/new-order";
inline constexpr std::string_view kOrderPathPrefix = "/acme/order/";  // {id}, {id}/finalize
inline constexpr std::string_view kAuthzPathPrefix = "/acme/authz/";
inline constexpr std::string_view kChallengePathPrefix = "/acme/chall/";
inline constexpr std::string_view kCertificatePathPrefix = "/acme/cert/";  // {serial hex}
inline constexpr std::string_view kRevokeCertPath = "/acme/revoke-cert";
inline constexpr std::string_view kKeyChangePath = "/acme/key-change";
inline constexpr std::string_view kRenewalInfoPath = "/acme/renewal-info";  // + "/{cert id}"

inline constexpr std::string_view kJoseContentType = "application/jose+json";
inline constexpr std::string_view kPemChainContentType = "application/pem-certificate-chain";

// What a handler returns. `headers` go on the response whether `result` holds a response or an
// error (Replay-Nonce, Link, Location for a 409 keyChange, ...); the HTTP glue renders an error
// with server::ProblemResponse and then appends these headers.
struct AcmeReply {
  Result<HttpResponse> result;
  HttpHeaders headers;
};

// Challenge type -> validator. The validators must outlive the engine.
using ValidatorMap = std::map<std::string, ChallengeValidator*, std::less<>>;

// Turns an Error into an RFC 8555 problem document (JSON object) for embedding in a challenge's or
// an order's "error". Supplied by the HTTP layer (server::AcmeProblemDocument) so that the one
// mapping table stays in server/problem.cc.
using ProblemRenderer = std::function<Json(const Error&)>;

struct EngineOptions {
  // The external base URL, e.g. "https://ca.example.com:8443": scheme and authority, no path, no
  // trailing slash. Every URL the engine prints or checks starts with it.
  std::string base_url;
  std::chrono::seconds nonce_lifetime{std::chrono::hours(1)};
  std::chrono::seconds order_lifetime{std::chrono::hours(24)};
  std::chrono::seconds authorization_lifetime{std::chrono::hours(24)};
  IdentifierPolicy identifiers;
  // Challenge types offered per identifier type, in this order, when a validator is registered.
  std::map<std::string, std::vector<std::string>, std::less<>> challenge_types = {
      {"dns", {"http-01", "tls-alpn-01"}},
      {"wireapp-user", {"wire-oidc-01"}},
      {"wireapp-device", {"wire-dpop-01"}}};
  // End-to-end identity (Wire's identifiers). When unset, wireapp-* identifiers are refused.
  struct Wire {
    std::string domain;  // the only domain identifiers may name
    // "target" of wire-oidc-01 challenges: the IdP issuer URL plus "?client_id=...".
    std::string oidc_target;
    // "target" of wire-dpop-01 challenges: the device authority's access-token URL, with
    // "{device_id}" replaced by the device id of the client-id.
    std::string dpop_target_template;
  };
  std::optional<Wire> wire;
  // JWS bodies longer than this are refused with 413 (the HTTP server has its own, larger limit).
  size_t max_request_bytes = 64 * 1024;
  size_t max_contacts = 10;
  // Directory "meta". An empty terms URL means no terms to agree to.
  std::string terms_of_service_url;
  std::string website_url;
  std::vector<std::string> caa_identities;
  // Retry-After of renewalInfo responses (RFC 9773 §4.2).
  std::chrono::seconds renewal_info_retry_after{std::chrono::hours(6)};
  // Orders listed per page of an account's "orders" resource.
  int orders_page_size = 100;
};

class Engine {
 public:
  struct Deps {
    store::Store& store;
    const ca::Issuer& issuer;
    const Clock& clock;
    RandomSource& random;
    JobRunner jobs;
    ValidatorMap validators;
    ProblemRenderer render_problem;
    // The one revocation path (shared with the admin API; it tells the CRL and OCSP caches).
    // When null the engine uses a service of its own over `store` (tests).
    revocation::RevocationService* revocations = nullptr;
  };

  // Errors are reported by the handlers; construction does not fail. `options.base_url` must be
  // set (an empty one makes every request fail with serverInternal).
  Engine(EngineOptions options, Deps deps);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- GET / HEAD resources ----
  // GET kDirectoryPath: the directory with "meta" (externalAccountRequired: false).
  AcmeReply HandleDirectory(const HttpRequest& request) const;
  // HEAD -> 200, GET -> 204; Replay-Nonce and Cache-Control: no-store.
  AcmeReply HandleNewNonce(const HttpRequest& request) const;
  // GET kRenewalInfoPath/{cert_id}: {"suggestedWindow": {...}} and Retry-After. notFound for a
  // certificate this CA did not issue; malformed for a bad identifier.
  AcmeReply HandleRenewalInfo(const HttpRequest& request, std::string_view cert_id) const;

  // ---- POST resources (JWS-authenticated) ----
  // payload {contact?, termsOfServiceAgreed?, onlyReturnExisting?, externalAccountBinding?
  // (ignored)}: 201 + Location for a new account, 200 + Location for the key's existing one.
  AcmeReply HandleNewAccount(const HttpRequest& request) const;
  // POST-as-GET, {"contact": [...]} or {"status": "deactivated"} on the signer's own account.
  AcmeReply HandleAccount(const HttpRequest& request, std::string_view account_id) const;
  // POST-as-GET: {"orders": [urls]}, paged with ?cursor= and Link rel="next".
  AcmeReply HandleAccountOrders(const HttpRequest& request, std::string_view account_id) const;
  // payload {identifiers, notBefore?, notAfter?, replaces?}: 201 + Location.
  AcmeReply HandleNewOrder(const HttpRequest& request) const;
  // POST-as-GET.
  AcmeReply HandleOrder(const HttpRequest& request, std::string_view order_id) const;
  // payload {csr}: issues synchronously; 200 with the (valid) order + Location.
  AcmeReply HandleFinalize(const HttpRequest& request, std::string_view order_id) const;
  // POST-as-GET or {"status": "deactivated"}.
  AcmeReply HandleAuthorization(const HttpRequest& request, std::string_view authz_id) const;
  // POST-as-GET, or a JSON object (normally {}) to start validation.
  AcmeReply HandleChallenge(const HttpRequest& request, std::string_view challenge_id) const;
  // POST-as-GET: application/pem-certificate-chain, leaf + intermediate + root.
  AcmeReply HandleCertificate(const HttpRequest& request, std::string_view serial) const;
  // payload {certificate, reason?}, signed by the owning account (kid) or the certificate's key
  // (jwk). Allowed reasons: kAllowedRevocationReasons.
  AcmeReply HandleRevokeCert(const HttpRequest& request) const;
  // RFC 8555 §7.3.5 key rollover.
  AcmeReply HandleKeyChange(const HttpRequest& request) const;

  const EngineOptions& options() const { return options_; }
  // The absolute URL of a path, e.g. Url(kDirectoryPath).
  std::string Url(std::string_view path) const { return options_.base_url + std::string(path); }

 private:
  enum class KeyMode { kKid, kJwk, kJwkOrKid };
  enum class PayloadMode { kPostAsGet, kJsonObject, kEither };
  struct Authenticated;

  Result<Authenticated> Authenticate(const HttpRequest& request, KeyMode key_mode,
                                     PayloadMode payload_mode) const;
  // Adds Link rel="index" and, when `nonce`, a fresh Replay-Nonce.
  AcmeReply Finish(Result<HttpResponse> result, bool nonce, HttpHeaders headers = {}) const;
  Result<std::string> NewNonce() const;
  Result<std::string> NewId(size_t bytes = 16) const;
  // Runs the validator and records the outcome; returns the validator's outcome. With
  // `keep_pending_on_transient`, a kUnavailable/kConnection outcome returns the challenge to
  // pending instead of failing it.
  Status RunValidation(const std::string& challenge_id, const ValidationRequest& request,
                       ChallengeValidator* validator, bool keep_pending_on_transient) const;
  Result<HttpResponse> DoNewAccount(const HttpRequest& request) const;
  Result<HttpResponse> DoAccount(const HttpRequest& request, std::string_view account_id) const;
  Result<HttpResponse> DoAccountOrders(const HttpRequest& request,
                                       std::string_view account_id) const;
  Result<HttpResponse> DoNewOrder(const HttpRequest& request) const;
  Result<HttpResponse> DoOrder(const HttpRequest& request, std::string_view order_id) const;
  Result<HttpResponse> DoFinalize(const HttpRequest& request, std::string_view order_id) const;
  Result<HttpResponse> DoAuthorization(const HttpRequest& request, std::string_view authz_id) const;
  Result<HttpResponse> DoChallenge(const HttpRequest& request, std::string_view challenge_id,
                                   HttpHeaders* headers) const;
  Result<HttpResponse> DoCertificate(const HttpRequest& request, std::string_view serial) const;
  Result<HttpResponse> DoRevokeCert(const HttpRequest& request) const;
  Result<HttpResponse> DoKeyChange(const HttpRequest& request, HttpHeaders* headers) const;
  Result<HttpResponse> DoRenewalInfo(std::string_view cert_id) const;

  // JSON objects of the resources.
  Json AccountJson(const store::Account& account) const;
  Result<Json> OrderJson(store::Transaction& tx, const store::Order& order) const;
  Result<Json> AuthorizationJson(store::Transaction& tx, const store::Authorization& authz) const;
  Json ChallengeJson(const store::Challenge& challenge) const;
  std::string ErrorJsonText(const Error& error) const;

  const EngineOptions options_;
  store::Store& store_;
  const ca::Issuer& issuer_;
  const Clock& clock_;
  RandomSource& random_;
  const JobRunner jobs_;
  const ValidatorMap validators_;
  const ProblemRenderer render_problem_;
  std::unique_ptr<revocation::RevocationService> own_revocations_;
  revocation::RevocationService& revocations_;
  mutable std::atomic<uint64_t> nonces_issued_{0};

  // Parsed account keys by account id. Importing a key through OpenSSL 3's provider machinery
  // costs several times one ECDSA verification, and every kid request needs the key. An entry is
  // used only while the stored JWK text is byte-for-byte the one it was parsed from, so keyChange
  // (which rewrites the JWK) never leaves a stale key in use. Bounded by kKeyCacheEntries.
  struct CachedKey {
    std::string jwk;
    std::shared_ptr<const crypto::PublicKey> key;
  };
  static constexpr size_t kKeyCacheEntries = 4096;
  Result<std::shared_ptr<const crypto::PublicKey>> AccountKey(const store::Account& account) const;
  mutable std::mutex key_cache_mu_;
  mutable std::unordered_map<std::string, CachedKey> key_cache_;
};

// RFC 5280 CRLReason codes a subscriber may give in revokeCert: unspecified (0), keyCompromise
// (1), affiliationChanged (3), superseded (4), cessationOfOperation (5). The others
// (cACompromise, certificateHold, removeFromCRL, privilegeWithdrawn, aACompromise) are for the CA
// only: badRevocationReason.
inline constexpr int kAllowedRevocationReasons[] = {0, 1, 3, 4, 5};

}  // namespace e2eid::acme

#endif  // E2EID_ACME_ENGINE_H_
