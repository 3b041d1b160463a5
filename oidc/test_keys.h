// Test-only: keys generated once per test binary, their JWKs, a deliberately weak RSA-1024 key
// (which crypto::PrivateKey refuses to create) and signing helpers for JWTs.
#ifndef E2EID_OIDC_TEST_KEYS_H_
#define E2EID_OIDC_TEST_KEYS_H_

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/json.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/key.h"
#include "crypto/openssl.h"

namespace e2eid::oidc::testing {

inline crypto::PrivateKey MustGenerate(crypto::KeyType type, int rsa_bits = 2048) {
  auto key = crypto::PrivateKey::Generate(type, rsa_bits);
  if (!key) {
    ADD_FAILURE() << key.error().ToString();
    std::abort();
  }
  return std::move(*key);
}

// Keys shared by all tests (RSA generation is slow in Debug builds).
struct TestKeys {
  crypto::PrivateKey rsa = MustGenerate(crypto::KeyType::kRsa);
  crypto::PrivateKey rsa2 = MustGenerate(crypto::KeyType::kRsa);
  crypto::PrivateKey p256 = MustGenerate(crypto::KeyType::kP256);
  crypto::PrivateKey p256b = MustGenerate(crypto::KeyType::kP256);
  crypto::PrivateKey p384 = MustGenerate(crypto::KeyType::kP384);
  crypto::PrivateKey p521 = MustGenerate(crypto::KeyType::kP521);
  crypto::PrivateKey ed25519 = MustGenerate(crypto::KeyType::kEd25519);
  crypto::PrivateKey ed25519b = MustGenerate(crypto::KeyType::kEd25519);
  crypto::EvpPkeyPtr rsa1024{EVP_RSA_gen(1024)};

  static const TestKeys& Get() {
    static const TestKeys* keys = new TestKeys();  // never destroyed: shared by every test
    return *keys;
  }
};

// The public JWK of `key` plus "kid" (and "alg"/"use" when non-empty).
inline Json JwkOf(const crypto::PrivateKey& key, std::string_view kid, std::string_view alg = "",
                  std::string_view use = "sig") {
  auto pub = key.public_key();
  EXPECT_TRUE(pub) << pub.error().ToString();
  if (!pub) return Json::object();
  auto jwk = crypto::PublicKeyToJwk(*pub);
  EXPECT_TRUE(jwk) << jwk.error().ToString();
  if (!jwk) return Json::object();
  (*jwk)["kid"] = kid;
  if (!alg.empty()) (*jwk)["alg"] = alg;
  if (!use.empty()) (*jwk)["use"] = use;
  return *jwk;
}

// The JWK of an RSA EVP_PKEY built by hand (for keys crypto::PublicKey refuses, like RSA-1024).
inline Json RawRsaJwk(EVP_PKEY* pkey, std::string_view kid) {
  BIGNUM* n_raw = nullptr;
  BIGNUM* e_raw = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n_raw), 1);
  crypto::BignumPtr n(n_raw);
  EXPECT_EQ(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e_raw), 1);
  crypto::BignumPtr e(e_raw);
  auto encode = [](const BIGNUM* bn) {
    Bytes bytes(static_cast<size_t>(BN_num_bytes(bn)));
    BN_bn2bin(bn, bytes.data());
    return Base64UrlEncode(bytes);
  };
  return Json{
      {"kty", "RSA"}, {"kid", kid}, {"use", "sig"}, {"n", encode(n.get())}, {"e", encode(e.get())}};
}

// RSASSA-PKCS1-v1_5 over `data` with `md` (for RS384/RS512, which crypto/jws.h does not sign, and
// for keys crypto::PrivateKey refuses).
inline Bytes RawRsaSign(EVP_PKEY* pkey, const EVP_MD* md, std::string_view data) {
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, pkey) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, AsBytes(data).data(), data.size()) != 1) {
    ADD_FAILURE() << "EVP_DigestSign setup failed";
    return {};
  }
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, AsBytes(data).data(), data.size()) != 1) {
    ADD_FAILURE() << "EVP_DigestSign failed";
    return {};
  }
  sig.resize(len);
  return sig;
}

// A compact JWS with the given header and claims, signed with crypto/jws.h (alg set from `alg`).
inline std::string SignJwt(const crypto::PrivateKey& key, crypto::JwsAlg alg, const Json& header,
                           const Json& claims) {
  auto token = crypto::SignCompactJws(key, alg, header, claims.dump());
  EXPECT_TRUE(token) << token.error().ToString();
  return token ? *token : std::string();
}

// A compact JWS signed with RSASSA-PKCS1-v1_5 and `md` by hand; `header` must hold "alg".
inline std::string SignJwtRawRsa(EVP_PKEY* pkey, const EVP_MD* md, const Json& header,
                                 const Json& claims) {
  const std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  return input + "." + Base64UrlEncode(RawRsaSign(pkey, md, input));
}

// A compact token with an arbitrary header and signature bytes (for "none", HS256, ...).
inline std::string UnsignedJwt(const Json& header, const Json& claims, std::string_view signature) {
  return Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump()) + "." +
         Base64UrlEncode(signature);
}

}  // namespace e2eid::oidc::testing

#endif  // E2EID_OIDC_TEST_KEYS_H_
