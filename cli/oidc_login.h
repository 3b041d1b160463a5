// Logging in at the organisation's OpenID Connect provider from the enrolment client:
// - authorization code + PKCE S256 (RFC 7636) with a loopback redirect (RFC 8252), state and
//   nonce; the browser is the user's (the URL is printed);
// - the device authorization grant (RFC 8628);
// - the refresh grant (silent renewal).
// Every token request carries a DPoP proof (RFC 9449) signed by the client key, so the IdP binds
// the tokens to that key; a `use_dpop_nonce` answer is retried with the DPoP-Nonce it names.
//
// Thread safety: OidcLogin is not thread-safe (it remembers the IdP's DPoP nonce); the free
// functions are. LoopbackListener is move-only and owns its socket.
#ifndef E2EID_CLI_OIDC_LOGIN_H_
#define E2EID_CLI_OIDC_LOGIN_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/enrol_util.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/random.h"
#include "crypto/key.h"
#include "oidc/discovery.h"
#include "oidc/http_client.h"

namespace e2eid::cli {

inline constexpr std::string_view kDefaultScope = "openid profile email offline_access";

// ---- PKCE (RFC 7636) ----
struct Pkce {
  std::string verifier;   // 43 characters: base64url of 32 random bytes
  std::string challenge;  // PkceS256(verifier)
};
// base64url(SHA-256(ASCII(verifier))).
std::string PkceS256(std::string_view verifier);
Result<Pkce> NewPkce(RandomSource& rng);

// ---- URL and form encoding ----
using FormFields = std::vector<std::pair<std::string, std::string>>;
// Percent-encodes every byte except the unreserved characters A-Z a-z 0-9 - . _ ~.
std::string UrlEncode(std::string_view s);
// application/x-www-form-urlencoded (with UrlEncode for names and values).
std::string FormEncode(const FormFields& fields);
// Splits and percent-decodes a query string ('+' is a space). Errors: kMalformed for a bad
// escape.
Result<FormFields> ParseQuery(std::string_view query);
// The value of the first field called `name`.
std::optional<std::string> FindField(const FormFields& fields, std::string_view name);

// The claims of a JWT, decoded WITHOUT verifying its signature: only for tokens that came straight
// from the token endpoint over TLS. Errors: kMalformed when it is not a compact JWS with a JSON
// object payload.
Result<Json> DecodeJwtClaims(std::string_view jwt);

// Checks an ID token's claims as received from the token endpoint: "iss" equals `issuer` (one
// trailing '/' ignored), "aud" (string or array) contains `client_id`, and, when `nonce` is
// given, "nonce" equals it (constant time). Errors: kUnauthorized naming the claim.
Status CheckIdTokenClaims(const Json& claims, std::string_view issuer, std::string_view client_id,
                          const std::optional<std::string>& nonce);

// The SHA-256 JWK thumbprint in "cnf.jkt" of a JWT access token; nullopt when the token is not a
// JWT or has none (opaque or Bearer tokens).
std::optional<std::string> AccessTokenJkt(std::string_view access_token);

// ---- the loopback redirect listener ----
class LoopbackListener {
 public:
  // Listens on 127.0.0.1 on an ephemeral port. Errors: kIo naming the socket call.
  static Result<LoopbackListener> Start();
  LoopbackListener(LoopbackListener&& other) noexcept;
  LoopbackListener& operator=(LoopbackListener&& other) noexcept;
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  ~LoopbackListener();

  uint16_t port() const { return port_; }
  // http://127.0.0.1:{port}/callback
  std::string redirect_uri() const;

  // Serves requests until one for /callback arrives (other paths get 404 and are ignored) and
  // answers it with a small HTML page. Returns the callback's query fields when its "state"
  // equals `expected_state` (constant time) and it carries a "code".
  // Errors: kUnauthorized "... state mismatch ..." (answered with 400) when the state differs or
  // is missing; kUnauthorized naming the IdP's "error"/"error_description" when the IdP refused
  // the login; kUnavailable when `timeout` passes without a callback; kIo for socket errors.
  Result<FormFields> WaitForCallback(std::string_view expected_state,
                                     std::chrono::milliseconds timeout);

 private:
  LoopbackListener(int fd, uint16_t port) : fd_(fd), port_(port) {}
  int fd_ = -1;
  uint16_t port_ = 0;
};

// ---- tokens ----
struct TokenSet {
  std::string access_token;
  std::string token_type;  // "DPoP" or "Bearer" as the IdP said
  std::string id_token;    // may be empty (refresh grant without a new ID token)
  std::string refresh_token;
  int64_t expires_in = 0;
};

struct LoginOptions {
  // The OIDC "claims" request parameter (e.g. Wire's keyauth / acme_aud), or none.
  std::optional<Json> claims;
  // The OIDC nonce to send (browser flow only); a random one when unset. The device flow refuses
  // a set nonce (RFC 8628 has no nonce parameter).
  std::optional<std::string> nonce;
  // For the browser flow: how long to wait for the redirect; for the device flow: a cap on top
  // of the device code's own lifetime.
  std::chrono::seconds timeout{300};
  // Where the user-facing lines go ("Open this URL to log in: ..."); default stderr.
  std::function<void(const std::string&)> print;
};

class OidcLogin {
 public:
  // All references must outlive the object.
  OidcLogin(oidc::HttpClient& http, oidc::Discovery discovery, std::string client_id,
            const crypto::PrivateKey& dpop_key, const Clock& clock, RandomSource& rng,
            Sleeper sleep, std::string scope = std::string(kDefaultScope));
  OidcLogin(const OidcLogin&) = delete;
  OidcLogin& operator=(const OidcLogin&) = delete;

  // The authorization request URL (exposed for tests).
  std::string AuthorizationUrl(const std::string& redirect_uri, const std::string& state,
                               const std::string& nonce, const std::string& code_challenge,
                               const std::optional<Json>& claims,
                               const std::string& dpop_jkt) const;

  // Authorization code + PKCE through the loopback listener. Prints
  // "Open this URL to log in: <url>". The ID token's iss/aud/nonce are checked.
  // Errors: those of LoopbackListener::WaitForCallback and of the token request.
  Result<TokenSet> LoginWithBrowser(const LoginOptions& options);

  // RFC 8628. Prints "Visit <verification_uri_complete> (code <user_code>)".
  // Errors: kUnavailable when the IdP has no device endpoint or the code expires;
  // kUnauthorized when the user denies.
  Result<TokenSet> LoginWithDeviceCode(const LoginOptions& options);

  // The refresh grant. A refresh token that is not returned again stays valid (kept by the
  // caller). Errors: kForbidden "the identity provider refused the refresh token
  // (invalid_grant: ...); run e2eid enrol again" when the IdP answers invalid_grant (user
  // disabled, session revoked, token expired); other token endpoint errors as kUnauthorized;
  // transport errors as the HttpClient reports them.
  Result<TokenSet> Refresh(const std::string& refresh_token);

  const oidc::Discovery& discovery() const { return discovery_; }

 private:
  struct TokenReply {
    int status = 0;
    std::optional<TokenSet> tokens;
    std::string error;
    std::string error_description;
  };
  // POSTs `form` to the token endpoint with a DPoP proof; retries use_dpop_nonce.
  Result<TokenReply> TokenRequest(const FormFields& form);
  void Print(const LoginOptions& options, const std::string& line) const;

  oidc::HttpClient& http_;
  const oidc::Discovery discovery_;
  const std::string client_id_;
  const crypto::PrivateKey& key_;
  const Clock& clock_;
  RandomSource& rng_;
  Sleeper sleep_;
  const std::string scope_;
  std::string dpop_nonce_;
};

}  // namespace e2eid::cli

#endif  // E2EID_CLI_OIDC_LOGIN_H_
