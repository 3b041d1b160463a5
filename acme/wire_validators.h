// Validators of Wire's identity challenges (see ../shared/reference/wire-e2ei-protocol.md).
//
// Both only check what the client posts, so they are synchronous (ChallengeValidator::synchronous):
// the engine runs them while answering the challenge POST, and the problem of a failure names
// the claim or check that failed.
//
// wire-oidc-01 (the user, identifier "wireapp-user"): the client posts one of
//   {"id_token": <ID token of the organisation's IdP>}
//     signature, "iss", "aud", lifetimes (oidc::TokenVerifier); then the binding to this challenge
//     and this ACME account:
//       OidcBinding::kClaims  "keyauth" == token "." thumbprint(account key) and "acme_aud" == this
//                             challenge's URL (Wire's way; Keycloak needs two claims-parameter
//                             mappers);
//       OidcBinding::kNonce   "nonce" == base64url(SHA-256(keyauth)) (stock IdPs that cannot echo
//                             custom claims: the client sends that value as the OIDC nonce).
//   {"access_token": <JWT access token of the IdP>}   (silent renewal; only when
//     accept_bound_access_token) the access token must be DPoP-bound (RFC 9449) to the ACME
//     account key: "cnf"."jkt" == thumbprint(account key). The challenge POST itself is a JWS of
//     that key over this challenge URL with a single-use ACME nonce, which is the proof of
//     possession. The token must be fresh ("iat" within max_access_token_age), so the IdP has
//     just accepted the client's refresh token: a user disabled in the IdP cannot get one.
// Then the claims are mapped and must equal the identifier: claim `name_claim` == "name" and
// wireapp://%40{claim `handle_claim`}@{domain} == "handle".
//
// wire-dpop-01 (the device, identifier "wireapp-device"): the client posts
//   {"access_token": <at+jwt of the device authority>}. Checks (the public implementation's list,
//   bound to this challenge rather than to the account's latest order): one signature by a
//   configured authority key (header "typ" "at+jwt"); "iss" == the challenge's target; "aud" ==
//   this challenge's URL; "sub" and "client_id" == the identifier's client-id; "chal" == this
//   challenge's token; "cnf"."kid" == thumbprint(account key); "scope" == "wire_client_id";
//   "exp" in the future and at most max_lifetime ahead; "iat"/"nbf" not in the future; "nonce"
//   and "jti" present. The embedded "proof" (typ "dpop+jwt") has a "jwk" whose thumbprint is the
//   account key's and a valid signature by it; "htm" POST; "htu" == target; "aud" == this
//   challenge's URL; "sub" == client-id; "chal" and "nonce" equal the access token's; "handle"
//   and "name" (when present) equal the identifier's; "exp" at most max_lifetime ahead.
//
// Errors: kMalformed (payload shape), kUnauthorized (a check failed; the detail names it),
// kRejectedIdentifier (the identifier is not a valid Wire identifier), kUnavailable/kConnection
// (the IdP cannot be reached; transient).
//
// Thread safety: Validate may be called concurrently.
#ifndef E2EID_ACME_WIRE_VALIDATORS_H_
#define E2EID_ACME_WIRE_VALIDATORS_H_

#include <chrono>
#include <string>
#include <vector>

#include "acme/validation.h"
#include "core/clock.h"
#include "crypto/key.h"
#include "oidc/verifier.h"

namespace e2eid::acme {

enum class OidcBinding { kClaims, kNonce };
// "claims" / "nonce". Errors: kInvalidArgument naming the accepted values.
Result<OidcBinding> ParseOidcBinding(std::string_view name);

struct WireOidcOptions {
  std::string domain;
  OidcBinding binding = OidcBinding::kClaims;
  bool accept_bound_access_token = true;
  std::chrono::seconds max_access_token_age{300};
  std::string name_claim = "name";
  std::string handle_claim = "preferred_username";
};

class WireOidcValidator final : public ChallengeValidator {
 public:
  // `verifier` must outlive the validator.
  WireOidcValidator(oidc::TokenVerifier& verifier, WireOidcOptions options);
  WireOidcValidator(const WireOidcValidator&) = delete;
  WireOidcValidator& operator=(const WireOidcValidator&) = delete;

  Status Validate(const ValidationRequest& request) override;
  Result<Json> ValidateWithClaims(const ValidationRequest& request) override;
  bool synchronous() const override { return true; }

  // The challenge target announced to clients: "{issuer}?client_id={client id}".
  std::string Target() const;

 private:
  oidc::TokenVerifier& verifier_;
  const WireOidcOptions options_;
};

struct WireDpopOptions {
  std::string domain;
  std::chrono::seconds leeway{60};
  std::chrono::seconds max_lifetime{3600};
};

class WireDpopValidator final : public ChallengeValidator {
 public:
  // `authority_keys`: the device authority's public keys (the built-in authority's key, or the
  // configured key(s) of an external one). `clock` must outlive the validator.
  WireDpopValidator(std::vector<crypto::PublicKey> authority_keys, WireDpopOptions options,
                    const Clock& clock);
  WireDpopValidator(const WireDpopValidator&) = delete;
  WireDpopValidator& operator=(const WireDpopValidator&) = delete;

  Status Validate(const ValidationRequest& request) override;
  Result<Json> ValidateWithClaims(const ValidationRequest& request) override;
  bool synchronous() const override { return true; }

 private:
  const std::vector<crypto::PublicKey> keys_;
  const WireDpopOptions options_;
  const Clock& clock_;
};

}  // namespace e2eid::acme

#endif  // E2EID_ACME_WIRE_VALIDATORS_H_
