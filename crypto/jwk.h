// JSON Web Keys (RFC 7517/7518/8037) for public keys, and JWK thumbprints (RFC 7638).
//
// Thread-safe (pure functions).
#ifndef E2EID_CRYPTO_JWK_H_
#define E2EID_CRYPTO_JWK_H_

#include <string>

#include "core/error.h"
#include "core/json.h"
#include "crypto/key.h"

namespace e2eid::crypto {

// The public JWK of `key`, with only the required members:
//   EC:  {"kty":"EC","crv":"P-256"|"P-384"|"P-521","x":...,"y":...} with x and y left-padded to
//        the field size (32/48/66 bytes);
//   OKP: {"kty":"OKP","crv":"Ed25519","x":...};
//   RSA: {"kty":"RSA","n":...,"e":...} as minimal big-endian integers.
// Errors: kCrypto when OpenSSL fails.
Result<Json> PublicKeyToJwk(const PublicKey& key);

// Parses a public JWK strictly. Members other than the ones read here ("use", "alg", "kid", ...)
// are ignored, as RFC 7517 requires.
// Errors:
//   kMalformed    not an object; "kty"/"crv"/"x"/"y"/"n"/"e" missing or not a string; a value
//                 that is not strict base64url (padding, white space, bad characters);
//   kBadPublicKey unsupported kty ("oct", ...) or crv ("Ed448", "X25519", "secp256k1", ...);
//                 a private member present ("d", "p", "q", "dp", "dq", "qi", "oth", "k");
//                 a coordinate not exactly the curve's length; an EC point not on the curve;
//                 an Ed25519 key that is not 32 bytes; RSA n or e with a leading zero byte,
//                 n outside 2048..8192 bits, e even, < 65537 or >= 2^32; anything else the key
//                 policy in crypto/key.h refuses.
Result<PublicKey> PublicKeyFromJwk(const Json& jwk);

// RFC 7638 thumbprint: base64url(SHA-256(canonical JSON of the required members in lexicographic
// order)). The Json overload validates `jwk` with PublicKeyFromJwk first (same errors), so only
// acceptable keys have thumbprints, and a key has exactly one thumbprint.
Result<std::string> JwkThumbprint(const Json& jwk);
Result<std::string> JwkThumbprint(const PublicKey& key);

}  // namespace e2eid::crypto

#endif  // E2EID_CRYPTO_JWK_H_
