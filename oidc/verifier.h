// Verification of tokens issued by the organisation's OpenID Connect provider (Keycloak first).
//
// A Provider knows one issuer: it fetches the discovery document
// ({issuer}/.well-known/openid-configuration) and the JWKS it names, keeps the keys in a cache, and
// verifies ID tokens and JWT access tokens against them.
//
// JWKS cache (key rotation must never cause an outage):
// - keys are cached for the response's Cache-Control max-age (bounded to
//   [jwks_min_cache, jwks_max_cache]; jwks_default_cache when the header is absent);
// - a token whose "kid" is not in the cache triggers a refetch, at most once per
//   jwks_refetch_interval (so a flood of tokens with random kids cannot hammer the IdP); while the
//   IdP is unreachable the old keys keep working until they are older than jwks_max_stale, and a
//   failed fetch is retried at most once per jwks_refetch_interval;
// - fetches are serialised: concurrent verifications wait for one fetch instead of each fetching.
//
// Token checks, in order (the error names the check that failed; see Errors below):
//   1. compact JWS syntax; header "alg" in allowed_algs (never "none", never HS*); header "kid"
//      present unless the JWKS has exactly one key; "typ", when checked, as the caller asks;
//   2. the signature, with the JWKS key of that "kid" (and that key's "alg"/"use" when given);
//   3. "iss" == issuer exactly (discovery's issuer must equal the configured one too);
//   4. "exp" present and now <= exp + leeway; "nbf" (when present) <= now + leeway; "iat" present
//      and <= now + leeway; when max_age is given, now - iat <= max_age + leeway;
//   5. ID token: "aud" (string or array) contains client_id; when "aud" has several values,
//      "azp" == client_id; "azp", when present, == client_id; "sub" is a non-empty string.
//      Access token: "azp" == client_id or "aud" contains client_id;
//   6. optional policy: email_verified == true (require_email_verified); at least one of
//      required_roles in the claim at roles_claim_path (dot path, e.g. "realm_access.roles" or
//      "groups"; the value must be an array of strings).
// RS256/384/512 and ES256/384/512 are verified with cpp-jwt; EdDSA (Ed25519) with OpenSSL.
// RSA keys under 2048 bits are refused.
//
// Errors: kUnauthorized for every token that fails a check (the message names the check and the
// claim, e.g. "id token: claim \"aud\" does not contain client id \"e2eid\""); kConnection /
// kUnavailable when the IdP cannot be reached and no usable keys are cached.
//
// Thread safety: all methods may be called concurrently.
#ifndef E2EID_OIDC_VERIFIER_H_
#define E2EID_OIDC_VERIFIER_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "oidc/http_client.h"

namespace e2eid::oidc {

struct ProviderOptions {
  std::string issuer;     // e.g. "https://kc.example.com/realms/acme"; no trailing slash needed
  std::string client_id;  // the e2eid client (audience of ID tokens)
  std::vector<std::string> allowed_algs = {"RS256", "ES256", "ES384", "EdDSA"};
  std::chrono::seconds leeway{60};
  std::chrono::seconds jwks_default_cache{300};
  std::chrono::seconds jwks_min_cache{30};
  std::chrono::seconds jwks_max_cache{24 * 3600};
  std::chrono::seconds jwks_refetch_interval{10};
  std::chrono::seconds jwks_max_stale{24 * 3600};
  bool require_email_verified = false;
  std::string roles_claim_path;             // empty: no role check
  std::vector<std::string> required_roles;  // any one of them suffices
};

struct VerifyOptions {
  // When set, now - iat must not exceed this (e.g. a fresh token for the silent renewal path).
  std::optional<std::chrono::seconds> max_age;
  // When set, the header "typ" must equal this (case-insensitive), e.g. "JWT" or "at+jwt".
  std::optional<std::string> typ;
  // Whether to apply the role/email policy of ProviderOptions (admin checks pass false and do
  // their own role check with HasRole).
  bool apply_policy = true;
};

// The interface the ACME challenges and the device authority use; tests can fake it.
class TokenVerifier {
 public:
  virtual ~TokenVerifier() = default;
  // The verified claims (a JSON object).
  virtual Result<Json> VerifyIdToken(std::string_view jwt, const VerifyOptions& options) = 0;
  virtual Result<Json> VerifyAccessToken(std::string_view jwt, const VerifyOptions& options) = 0;
  virtual const std::string& issuer() const = 0;
  virtual const std::string& client_id() const = 0;
};

// The claim at a dot path ("realm_access.roles"), or nullptr when any step is missing.
const Json* FindClaim(const Json& claims, std::string_view dot_path);
// True when the claim at dot_path is an array of strings containing `role`.
bool HasRole(const Json& claims, std::string_view dot_path, std::string_view role);

class Provider;
// Does not contact the IdP (discovery happens on first use, so e2eid can start while the IdP is
// down). `http` and `clock` must outlive the provider. Errors: kConfig for an empty issuer/client
// id, an issuer URL `http` refuses, an unknown algorithm name (or "none"/HS*), negative durations,
// jwks_min_cache > jwks_max_cache, or only one of roles_claim_path / required_roles set.
Result<std::unique_ptr<TokenVerifier>> MakeProvider(ProviderOptions options, HttpClient& http,
                                                    const Clock& clock);

}  // namespace e2eid::oidc

#endif  // E2EID_OIDC_VERIFIER_H_
