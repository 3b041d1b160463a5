// The built-in device authority: issues the access tokens that wire-dpop-01 challenges take, for
// organisations without a messaging backend that does it (Wire's shapes, see
// ../shared/reference/wire-e2ei-protocol.md). Transport-neutral like the engine.
//
//   GET|HEAD {base}/clients/{deviceId}/nonce
//       -> 200, Replay-Nonce: <nonce> (the body holds the same nonce), Cache-Control: no-store.
//          Nonces are single-use, expire after nonce_lifetime and live in the store (so several
//          instances share them).
//   POST {base}/clients/{deviceId}/access-token
//       Authorization: Bearer <IdP access token>   (or "DPoP <token>" for a DPoP-bound token)
//       DPoP: <proof>   (compact JWT; also accepted base64-encoded once more, as Wire clients send)
//       -> 200 {"expires_in": N, "token": <at+jwt>, "type": "DPoP"}, Cache-Control: no-store.
//
// Checks of the access-token request, in order (every refusal names what failed):
//   1. the IdP access token verifies (oidc::TokenVerifier, including the role/email policy)
//        -> 401 unauthenticated
//      a DPoP-bound token ("cnf"."jkt") must come with the "DPoP" scheme, its "cnf"."jkt" must be
//      the proof key's thumbprint and the proof's "ath" the token's hash (RFC 9449 §7)
//   2. the proof: typ "dpop+jwt", "jwk" an allowed public key (ES256/384/512, EdDSA), signature by
//      it, "htm" == "POST", "htu" == this URL, "iat" within max_proof_age (and not in the future),
//      "exp" (when present) after now and at most 1 h ahead, "jti", "chal" and "aud" present,
//      "nonce" a nonce of this authority (consumed: a replayed proof fails) -> 401 / badNonce
//   3. the identity: "sub" parses as a client-id of the configured domain whose device id is the
//      path's {deviceId} and whose user id is base64url(UUID bytes of the IdP token's "sub");
//      "handle" == wireapp://%40{preferred_username}@{domain}; "name" (when present) == the
//      token's name -> 403 forbidden ("device of another user")
//   4. the registry, in one transaction: the user must not be disabled, the device not blocked
//      or removed; a new device is refused when the user already has max_devices_per_user
//      active devices; otherwise the device is created or its last_seen and key thumbprint are
//      refreshed, and the user likewise -> 403 forbidden
// The token: header {"alg", "typ": "at+jwt", "jwk": <authority public key>}; claims iss = htu,
// sub = client_id = the client-id, aud = the proof's "aud" (the challenge URL), chal, nonce (the
// proof's), cnf {"kid": proof key thumbprint}, proof (the proof as received), api_version 5,
// scope "wire_client_id", jti, iat, nbf, exp = now + token_lifetime.
// Refusals are audited ("enrolment.refuse"); a new device is audited ("device.register").
//
// Thread safety: all methods may be called concurrently; collaborators must be thread-safe and
// outlive the authority.
#ifndef E2EID_ACME_DEVICE_AUTHORITY_H_
#define E2EID_ACME_DEVICE_AUTHORITY_H_

#include <chrono>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/http.h"
#include "core/random.h"
#include "crypto/key.h"
#include "oidc/verifier.h"
#include "store/store.h"

namespace e2eid::acme {

inline constexpr std::string_view kClientsPathPrefix = "/clients/";

struct DeviceAuthorityOptions {
  std::string base_url;  // like EngineOptions::base_url
  std::string domain;
  size_t max_devices_per_user = 10;
  std::chrono::seconds token_lifetime{300};
  std::chrono::seconds nonce_lifetime{300};
  std::chrono::seconds max_proof_age{300};
  std::chrono::seconds leeway{60};
  std::string name_claim = "name";
  std::string handle_claim = "preferred_username";
};

class DeviceAuthority {
 public:
  struct Deps {
    store::Store& store;
    oidc::TokenVerifier& verifier;
    const crypto::PrivateKey& signing_key;  // Ed25519 or an EC key
    const Clock& clock;
    RandomSource& random;
  };
  DeviceAuthority(DeviceAuthorityOptions options, Deps deps);
  DeviceAuthority(const DeviceAuthority&) = delete;
  DeviceAuthority& operator=(const DeviceAuthority&) = delete;

  Result<HttpResponse> HandleNonce(const HttpRequest& request, std::string_view device_id) const;
  Result<HttpResponse> HandleAccessToken(const HttpRequest& request,
                                         std::string_view device_id) const;

  // {base}/clients/{device_id}/access-token, and the same with "{device_id}" literally (the
  // engine's dpop_target_template).
  std::string AccessTokenUrl(std::string_view device_id) const;
  std::string TargetTemplate() const { return AccessTokenUrl("{device_id}"); }

 private:
  Result<HttpResponse> Issue(const HttpRequest& request, std::string_view device_id,
                             std::string* refused_client) const;
  Status AuditRefusal(const HttpRequest& request, std::string_view device_id,
                      const Error& error) const;

  const DeviceAuthorityOptions options_;
  store::Store& store_;
  oidc::TokenVerifier& verifier_;
  const crypto::PrivateKey& key_;
  const Clock& clock_;
  RandomSource& random_;
};

}  // namespace e2eid::acme

#endif  // E2EID_ACME_DEVICE_AUTHORITY_H_
