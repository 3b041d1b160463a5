#include "cli/dpop.h"

#include "core/encoding.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/random.h"

namespace e2eid::cli {
namespace {

Result<std::string> Sign(const crypto::PrivateKey& key, const Json& claims) {
  E2EID_TRY(header, DpopHeader(key));
  return crypto::SignCompactJws(key, crypto::DefaultJwsAlg(key.type()), header, DumpJson(claims));
}

}  // namespace

std::string AccessTokenHash(std::string_view access_token) {
  return Base64UrlEncode(crypto::Sha256(access_token));
}

std::string DpopHtu(std::string_view url) {
  const size_t cut = url.find_first_of("?#");
  return std::string(url.substr(0, cut));
}

Result<Json> DpopHeader(const crypto::PrivateKey& key) {
  E2EID_TRY(pub, key.public_key());
  E2EID_TRY(jwk, crypto::PublicKeyToJwk(pub));
  return Json{{"typ", "dpop+jwt"}, {"jwk", std::move(jwk)}};
}

Result<std::string> MakeDpopProof(const crypto::PrivateKey& key, const DpopProofClaims& claims,
                                  TimePoint now, RandomSource& rng) {
  E2EID_TRY(jti, crypto::RandomToken(rng, 16));
  Json c = {{"jti", jti}, {"htm", claims.htm}, {"htu", DpopHtu(claims.htu)}, {"iat", ToUnix(now)}};
  if (claims.nonce) c["nonce"] = *claims.nonce;
  if (claims.access_token) c["ath"] = AccessTokenHash(*claims.access_token);
  return Sign(key, c);
}

Result<std::string> MakeWireDeviceProof(const crypto::PrivateKey& key,
                                        const WireDeviceProofClaims& claims, TimePoint now,
                                        RandomSource& rng) {
  E2EID_TRY(jti, crypto::RandomToken(rng, 16));
  Json c = {
      {"jti", jti},
      {"iat", ToUnix(now)},
      {"nbf", ToUnix(now)},
      {"exp", ToUnix(now + claims.lifetime)},
      {"sub", claims.client_id_uri},
      {"aud", claims.challenge_url},
      {"nonce", claims.nonce},
      {"htm", "POST"},
      {"htu", claims.target},
      {"chal", claims.challenge_token},
      {"handle", claims.handle_uri},
      {"team", claims.team},
      {"name", claims.display_name},
  };
  if (!claims.access_token.empty()) c["ath"] = AccessTokenHash(claims.access_token);
  return Sign(key, c);
}

}  // namespace e2eid::cli
