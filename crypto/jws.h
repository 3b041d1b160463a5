// JOSE signatures (RFC 7515/7518/8037) and JWS framing.
//
// The ACME server reads the flattened JSON serialization (RFC 8555 §6.2); JWTs and DPoP proofs use
// the compact serialization. Only these algorithms exist here: ES256, ES384, ES512, EdDSA
// (Ed25519) and RS256. "none", HMAC (HS*), RSA-PSS (PS*) and everything else are refused with
// kBadSignatureAlgorithm.
//
// Error convention for a signature that does not verify: kMalformed "JWS signature verification
// failed" (what RFC 8555 servers answer for a bad JWS). Callers verifying bearer tokens (JWTs,
// DPoP proofs) usually turn it into kUnauthorized.
//
// Thread-safe (pure functions; keys are used read-only).
#ifndef E2EID_CRYPTO_JWS_H_
#define E2EID_CRYPTO_JWS_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "crypto/key.h"

namespace e2eid::crypto {

enum class JwsAlg { kES256, kES384, kES512, kEdDSA, kRS256 };

// "ES256", "ES384", "ES512", "EdDSA", "RS256".
std::string_view JwsAlgName(JwsAlg alg);

// Case-sensitive allow-list of the names above. Errors: kBadSignatureAlgorithm with a precise
// detail, e.g. "JWS algorithm 'none' is not allowed", "HMAC JWS algorithm 'HS256' is not
// allowed", "unsupported JWS algorithm 'PS256' (supported: ES256, ES384, ES512, EdDSA, RS256)".
Result<JwsAlg> ParseJwsAlg(std::string_view name);

// The algorithm a key of this type signs with: ES256 for P-256, ES384 for P-384, ES512 for P-521,
// EdDSA for Ed25519, RS256 for RSA.
JwsAlg DefaultJwsAlg(KeyType type);

// ES256 <=> P-256, ES384 <=> P-384, ES512 <=> P-521, EdDSA <=> Ed25519, RS256 <=> RSA (the key
// policy already guarantees >= 2048 bits). Errors: kBadSignatureAlgorithm "JWS algorithm ES256
// does not match the key type p384".
Status CheckAlgMatchesKey(JwsAlg alg, KeyType type);
inline Status CheckAlgMatchesKey(JwsAlg alg, const PublicKey& key) {
  return CheckAlgMatchesKey(alg, key.type());
}

// Signs `data` (the JWS signing input). ECDSA signatures are the fixed-size R || S of RFC 7518
// §3.4 (64/96/132 bytes), Ed25519 signatures are 64 bytes, RS256 is RSASSA-PKCS1-v1_5 with
// SHA-256. Errors: kBadSignatureAlgorithm when alg does not match the key; kCrypto when OpenSSL
// fails.
Result<Bytes> SignJose(const PrivateKey& key, JwsAlg alg, std::span<const uint8_t> data);

// Verifies a JOSE signature over `data`. Errors: kBadSignatureAlgorithm when alg does not match
// the key; kMalformed "JWS signature has length N, expected M" for ECDSA/EdDSA signatures of the
// wrong size (and RSA signatures not exactly the modulus size); kMalformed "JWS signature
// verification failed" when it does not verify.
Status VerifyJose(const PublicKey& key, JwsAlg alg, std::span<const uint8_t> data,
                  std::span<const uint8_t> signature);

// ECDSA signature format conversion between JOSE R || S and the DER ECDSA-Sig-Value that X.509
// and `openssl dgst` use. `type` must be an EC key type (kInvalidArgument otherwise).
// Errors: kMalformed for a wrong length, bad DER, or integers too large for the curve.
Result<Bytes> EcdsaJoseToDer(std::span<const uint8_t> jose, KeyType type);
Result<Bytes> EcdsaDerToJose(std::span<const uint8_t> der, KeyType type);

// A parsed (not yet verified) JWS.
struct Jws {
  std::string protected_b64;    // exactly as received: the signing input uses it verbatim
  std::string payload_b64;      // exactly as received; "" for POST-as-GET
  Json header;                  // the decoded protected header (a JSON object)
  JwsAlg alg = JwsAlg::kES256;  // header "alg", already through ParseJwsAlg
  Bytes payload;                // decoded payload
  Bytes signature;              // decoded signature
};

// Both parsers check, and fail with kMalformed naming the problem, unless noted:
//   - every part is strict base64url (core/encoding.h);
//   - the protected header is a JSON object parsed with ParseJson (duplicate members rejected);
//   - "alg" is present, a string, and allowed by ParseJwsAlg (kBadSignatureAlgorithm otherwise);
//   - "crit" is absent (e2eid understands no extension; any "crit" is rejected);
//   - "b64", if present, is the boolean true (RFC 7797 unencoded payloads are rejected).
// They do not look at any other header member ("nonce", "url", "jwk", "kid", "typ", ...):
// that is the caller's job.
//
// Flattened JSON serialization: `body` must be a JSON object (ParseJson, duplicates rejected)
// with exactly the members "protected", "payload" and "signature", all strings. An unprotected
// "header", the general serialization ("signatures") and any other member are rejected.
// "payload" may be "" (POST-as-GET).
Result<Jws> ParseFlattenedJws(std::string_view body);
// Compact serialization: exactly three '.'-separated parts; the payload part may be empty.
Result<Jws> ParseCompactJws(std::string_view token);

// Verifies jws.signature over protected_b64 + "." + payload_b64 with `key`, taking the algorithm
// from jws.header["alg"] (ParseJwsAlg, then CheckAlgMatchesKey). Errors: those of ParseJwsAlg,
// CheckAlgMatchesKey and VerifyJose; kMalformed when jws.alg disagrees with the header.
Status VerifyJws(const Jws& jws, const PublicKey& key);

// Builds and signs a JWS. `protected_header` must be a JSON object; its "alg" is set to alg's name
// (kInvalidArgument if it already holds a different value). `payload` is the raw payload (empty
// for POST-as-GET). SignFlattenedJws returns the JSON body
// {"protected":...,"payload":...,"signature":...}; SignCompactJws returns "h.p.s".
// Errors: those of SignJose; kInvalidArgument for a header that is not an object.
Result<std::string> SignFlattenedJws(const PrivateKey& key, JwsAlg alg,
                                     const Json& protected_header, std::string_view payload);
Result<std::string> SignCompactJws(const PrivateKey& key, JwsAlg alg, const Json& protected_header,
                                   std::string_view payload);

}  // namespace e2eid::crypto

#endif  // E2EID_CRYPTO_JWS_H_
