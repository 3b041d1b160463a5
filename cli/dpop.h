// DPoP proofs the enrolment client signs with its client key:
// - RFC 9449 proofs for the identity provider's token endpoint (binding the tokens to the key);
// - Wire's device-authority proof for the wire-dpop-01 challenge (the RFC 9449 shape plus the
//   ACME and Wire claims "chal", "handle", "team", "name", "sub", "aud", "nbf", "exp").
//
// Both are compact JWS with the header {"alg", "typ":"dpop+jwt", "jwk": <public JWK>}; "alg" is
// the key's default JOSE algorithm (crypto::DefaultJwsAlg). "jti" is 16 random bytes, base64url.
//
// Thread-safe (pure functions over their arguments; the RandomSource must be thread-safe).
#ifndef E2EID_CLI_DPOP_H_
#define E2EID_CLI_DPOP_H_

#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/random.h"
#include "crypto/key.h"

namespace e2eid::cli {

// base64url(SHA-256(access token)): the "ath" claim.
std::string AccessTokenHash(std::string_view access_token);

// The "htu" form of a URL: without query and fragment (RFC 9449 §4.2).
std::string DpopHtu(std::string_view url);

// The protected header {"typ":"dpop+jwt","jwk":...} (the signer adds "alg").
// Errors: kCrypto when the public key cannot be exported.
Result<Json> DpopHeader(const crypto::PrivateKey& key);

struct DpopProofClaims {
  std::string htm;                   // "POST"
  std::string htu;                   // the request URL (query/fragment are dropped)
  std::optional<std::string> nonce;  // the server's DPoP-Nonce, when it asked for one
  // When set, "ath" = AccessTokenHash(*access_token) (proofs that present an access token).
  std::optional<std::string> access_token;
};

// An RFC 9449 proof: claims {"jti","htm","htu","iat"[,"nonce"][,"ath"]}.
// Errors: kCrypto (signing), those of rng.
Result<std::string> MakeDpopProof(const crypto::PrivateKey& key, const DpopProofClaims& claims,
                                  TimePoint now, RandomSource& rng);

struct WireDeviceProofClaims {
  std::string client_id_uri;    // "sub": wireapp://{user}!{device}@{domain}
  std::string challenge_url;    // "aud": the wire-dpop-01 challenge URL
  std::string nonce;            // the device authority's nonce
  std::string target;           // "htu": the challenge's target (the access-token URL)
  std::string challenge_token;  // "chal"
  std::string handle_uri;       // "handle": wireapp://%40{handle}@{domain}
  std::string display_name;     // "name"
  std::string team = "wire";    // "team"
  std::string access_token;     // the IdP access token: "ath" (omitted when empty)
  std::chrono::seconds lifetime{300};
};

// Wire's device proof: claims {"jti","iat","nbf","exp","sub","aud","nonce","htm":"POST","htu",
// "chal","handle","team","name"[,"ath"]} with exp = iat + lifetime.
Result<std::string> MakeWireDeviceProof(const crypto::PrivateKey& key,
                                        const WireDeviceProofClaims& claims, TimePoint now,
                                        RandomSource& rng);

}  // namespace e2eid::cli

#endif  // E2EID_CLI_DPOP_H_
