#include "crypto/jwk.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>

namespace e2eid::crypto {
namespace {

// RFC 7638 §3.1.
constexpr const char* kRfc7638N =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
    "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368Q"
    "QMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
    "bFTWhAI4vMQFh6WeZu0fM4lFd2N"
    "cRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
constexpr const char* kRfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

// RFC 8037 Appendix A.2 / A.3.
constexpr const char* kRfc8037X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
constexpr const char* kRfc8037Thumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

// RFC 7515 Appendix A.3 P-256 public key.
constexpr const char* kRfc7515X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
constexpr const char* kRfc7515Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

Json EcJwk(const std::string& x, const std::string& y, const std::string& crv = "P-256") {
  return Json{{"kty", "EC"}, {"crv", crv}, {"x", x}, {"y", y}};
}

void ExpectCode(const Result<PublicKey>& r, ErrorCode code, const std::string& what,
                const std::string& in_detail = "") {
  ASSERT_FALSE(r) << what;
  EXPECT_EQ(r.error().code(), code) << what << ": " << r.error().ToString();
  if (!in_detail.empty()) {
    EXPECT_NE(r.error().detail().find(in_detail), std::string::npos)
        << what << ": " << r.error().detail();
  }
}

TEST(JwkTest, Rfc7638RsaThumbprint) {
  const Json jwk = {
      {"kty", "RSA"}, {"n", kRfc7638N}, {"e", "AQAB"}, {"alg", "RS256"}, {"kid", "2011-04-29"}};
  auto t = JwkThumbprint(jwk);
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(*t, kRfc7638Thumbprint);
  auto key = PublicKeyFromJwk(jwk);
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(key->type(), KeyType::kRsa);
  EXPECT_EQ(key->bits(), 2048);
  auto again = JwkThumbprint(*key);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, kRfc7638Thumbprint);
  // Re-encoding gives back exactly the required members.
  auto out = PublicKeyToJwk(*key);
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, (Json{{"kty", "RSA"}, {"n", kRfc7638N}, {"e", "AQAB"}}));
}

TEST(JwkTest, Rfc8037Ed25519Thumbprint) {
  const Json jwk = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", kRfc8037X}};
  auto t = JwkThumbprint(jwk);
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(*t, kRfc8037Thumbprint);
  auto key = PublicKeyFromJwk(jwk);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->type(), KeyType::kEd25519);
  auto out = PublicKeyToJwk(*key);
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, jwk);
}

TEST(JwkTest, ThumbprintDependsOnKeyOnly) {
  Json a = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", kRfc8037X}, {"kid", "one"}, {"use", "sig"}};
  auto ta = JwkThumbprint(a);
  ASSERT_TRUE(ta);
  EXPECT_EQ(*ta, kRfc8037Thumbprint);
  // A different key has a different thumbprint.
  auto other =
      PublicKeyFromJwk(Json{{"kty", "EC"}, {"crv", "P-256"}, {"x", kRfc7515X}, {"y", kRfc7515Y}});
  ASSERT_TRUE(other) << other.error().ToString();
  EXPECT_NE(*JwkThumbprint(*other), kRfc8037Thumbprint);
}

TEST(JwkTest, Rfc7515EcKeyParses) {
  auto key = PublicKeyFromJwk(EcJwk(kRfc7515X, kRfc7515Y));
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(key->type(), KeyType::kP256);
  auto out = PublicKeyToJwk(*key);
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, EcJwk(kRfc7515X, kRfc7515Y));
}

TEST(JwkTest, RoundTripEveryKeyType) {
  for (KeyType t :
       {KeyType::kEd25519, KeyType::kP256, KeyType::kP384, KeyType::kP521, KeyType::kRsa}) {
    SCOPED_TRACE(std::string(KeyTypeName(t)));
    // Several keys per curve so that some coordinates start with a zero byte.
    for (int i = 0; i < (t == KeyType::kRsa ? 1 : 8); ++i) {
      auto priv = PrivateKey::Generate(t, 2048);
      ASSERT_TRUE(priv);
      auto pub = priv->public_key();
      ASSERT_TRUE(pub);
      auto jwk = PublicKeyToJwk(*pub);
      ASSERT_TRUE(jwk);
      if (t == KeyType::kP256 || t == KeyType::kP384 || t == KeyType::kP521) {
        const size_t size = t == KeyType::kP256 ? 32 : t == KeyType::kP384 ? 48 : 66;
        EXPECT_EQ(Base64UrlDecode((*jwk)["x"].get<std::string>())->size(), size);
        EXPECT_EQ(Base64UrlDecode((*jwk)["y"].get<std::string>())->size(), size);
      }
      auto back = PublicKeyFromJwk(*jwk);
      ASSERT_TRUE(back) << back.error().ToString() << " " << jwk->dump();
      EXPECT_TRUE(back->Equals(*pub));
      EXPECT_EQ(*JwkThumbprint(*jwk), *JwkThumbprint(*pub));
    }
  }
}

TEST(JwkTest, RejectsPointNotOnCurve) {
  Bytes y = *Base64UrlDecode(kRfc7515Y);
  y[31] ^= 0x01;
  ExpectCode(PublicKeyFromJwk(EcJwk(kRfc7515X, Base64UrlEncode(y))), ErrorCode::kBadPublicKey,
             "off-curve", "not on curve P-256");
  // The same coordinates claimed for another curve have the wrong length.
  ExpectCode(PublicKeyFromJwk(EcJwk(kRfc7515X, kRfc7515Y, "P-384")), ErrorCode::kBadPublicKey,
             "wrong curve", "48 bytes");
  const std::string zero = Base64UrlEncode(Bytes(32, 0));
  ExpectCode(PublicKeyFromJwk(EcJwk(zero, zero)), ErrorCode::kBadPublicKey, "(0,0)");
  const std::string ff = Base64UrlEncode(Bytes(32, 0xff));
  ExpectCode(PublicKeyFromJwk(EcJwk(ff, kRfc7515Y)), ErrorCode::kBadPublicKey, "x >= p");
}

TEST(JwkTest, RejectsWrongCoordinateLength) {
  Bytes x = *Base64UrlDecode(kRfc7515X);
  Bytes short_x(x.begin() + 1, x.end());
  ExpectCode(PublicKeyFromJwk(EcJwk(Base64UrlEncode(short_x), kRfc7515Y)), ErrorCode::kBadPublicKey,
             "short x", "32 bytes");
  Bytes long_x = x;
  long_x.insert(long_x.begin(), 0);
  ExpectCode(PublicKeyFromJwk(EcJwk(Base64UrlEncode(long_x), kRfc7515Y)), ErrorCode::kBadPublicKey,
             "long x", "32 bytes");
  ExpectCode(PublicKeyFromJwk(
                 Json{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", Base64UrlEncode(Bytes(31, 1))}}),
             ErrorCode::kBadPublicKey, "short Ed25519", "32 bytes");
}

TEST(JwkTest, RejectsMalformedMembers) {
  ExpectCode(PublicKeyFromJwk(Json::array()), ErrorCode::kMalformed, "array");
  ExpectCode(PublicKeyFromJwk(Json("EC")), ErrorCode::kMalformed, "string");
  ExpectCode(PublicKeyFromJwk(Json{{"crv", "P-256"}, {"x", kRfc7515X}, {"y", kRfc7515Y}}),
             ErrorCode::kMalformed, "no kty", "'kty'");
  ExpectCode(PublicKeyFromJwk(Json{{"kty", 1}}), ErrorCode::kMalformed, "kty not string", "'kty'");
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "EC"}, {"x", kRfc7515X}, {"y", kRfc7515Y}}),
             ErrorCode::kMalformed, "no crv", "'crv'");
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "EC"}, {"crv", "P-256"}, {"x", kRfc7515X}}),
             ErrorCode::kMalformed, "no y", "'y'");
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "EC"}, {"crv", "P-256"}, {"x", 5}, {"y", kRfc7515Y}}),
             ErrorCode::kMalformed, "x number", "'x'");
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "RSA"}, {"e", "AQAB"}}), ErrorCode::kMalformed, "no n",
             "'n'");
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "OKP"}, {"crv", "Ed25519"}}), ErrorCode::kMalformed,
             "no x", "'x'");
}

TEST(JwkTest, RejectsNonStrictBase64Url) {
  // RFC 8037 x is 43 characters; with padding it would be 44.
  ExpectCode(PublicKeyFromJwk(
                 Json{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", std::string(kRfc8037X) + "="}}),
             ErrorCode::kMalformed, "padding", "base64url");
  ExpectCode(PublicKeyFromJwk(EcJwk(std::string(kRfc7515X) + "=", kRfc7515Y)),
             ErrorCode::kMalformed, "EC padding", "'x'");
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "RSA"}, {"n", kRfc7638N}, {"e", "AQAB="}}),
             ErrorCode::kMalformed, "RSA e padding", "'e'");
  std::string std_alphabet = kRfc7638N;
  for (char& c : std_alphabet) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "RSA"}, {"n", std_alphabet}, {"e", "AQAB"}}),
             ErrorCode::kMalformed, "standard alphabet", "'n'");
  std::string spaced = std::string(kRfc8037X);
  spaced.insert(10, " ");
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", spaced}}),
             ErrorCode::kMalformed, "white space");
}

TEST(JwkTest, RejectsPrivateMembers) {
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    Json jwk = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", kRfc8037X}};
    jwk[member] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    ExpectCode(PublicKeyFromJwk(jwk), ErrorCode::kBadPublicKey, member,
               "private key member '" + std::string(member) + "'");
    EXPECT_FALSE(JwkThumbprint(jwk)) << member;
  }
}

TEST(JwkTest, RejectsUnsupportedTypesAndCurves) {
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "oct"}, {"x", "AAAA"}}), ErrorCode::kBadPublicKey, "oct",
             "'oct'");
  ExpectCode(PublicKeyFromJwk(Json{{"kty", "ec"}}), ErrorCode::kBadPublicKey, "lower-case kty");
  for (const char* crv : {"P-192", "secp256k1", "p-256", "Ed448", "X25519"}) {
    const bool okp = std::string(crv) == "Ed448" || std::string(crv) == "X25519";
    Json jwk = okp ? Json{{"kty", "OKP"}, {"crv", crv}, {"x", kRfc8037X}}
                   : EcJwk(kRfc7515X, kRfc7515Y, crv);
    ExpectCode(PublicKeyFromJwk(jwk), ErrorCode::kBadPublicKey, crv, crv);
  }
}

// The n and e of an RSA key generated without the e2eid policy.
Json RawRsaJwk(int bits, unsigned int e) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EXPECT_TRUE(ctx);
  EXPECT_EQ(EVP_PKEY_keygen_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), bits), 1);
  BignumPtr bn_e(BN_new());
  BN_set_word(bn_e.get(), e);
  EXPECT_EQ(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx.get(), bn_e.get()), 1);
  EVP_PKEY* raw = nullptr;
  EXPECT_EQ(EVP_PKEY_keygen(ctx.get(), &raw), 1);
  EvpPkeyPtr pkey(raw);
  BIGNUM* n = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_N, &n), 1);
  BignumPtr bn_n(n);
  Bytes nb(static_cast<size_t>(BN_num_bytes(n)));
  BN_bn2bin(n, nb.data());
  Bytes eb(static_cast<size_t>(BN_num_bytes(bn_e.get())));
  BN_bn2bin(bn_e.get(), eb.data());
  return Json{{"kty", "RSA"}, {"n", Base64UrlEncode(nb)}, {"e", Base64UrlEncode(eb)}};
}

TEST(JwkTest, RsaLimits) {
  ExpectCode(PublicKeyFromJwk(RawRsaJwk(1024, 65537)), ErrorCode::kBadPublicKey, "RSA 1024",
             "RSA key too small: 1024 bits");
  ExpectCode(PublicKeyFromJwk(RawRsaJwk(2048, 3)), ErrorCode::kBadPublicKey, "e=3",
             "public exponent");
  const Json good = {{"kty", "RSA"}, {"n", kRfc7638N}, {"e", "AQAB"}};
  ASSERT_TRUE(PublicKeyFromJwk(good));
  for (const char* e : {"AQAA" /* 65536, even */, "AQ" /* 1 */, "AAEAAQ" /* leading zero */,
                        "AQAAAAE" /* 2^32 + 1 */}) {
    Json j = good;
    j["e"] = e;
    ExpectCode(PublicKeyFromJwk(j), ErrorCode::kBadPublicKey, std::string("e=") + e);
  }
  Bytes n = *Base64UrlDecode(kRfc7638N);
  n.insert(n.begin(), 0);
  Json leading = good;
  leading["n"] = Base64UrlEncode(n);
  ExpectCode(PublicKeyFromJwk(leading), ErrorCode::kBadPublicKey, "n leading zero", "minimal");
  Bytes even = *Base64UrlDecode(kRfc7638N);
  even.back() &= 0xfe;
  Json even_n = good;
  even_n["n"] = Base64UrlEncode(even);
  ExpectCode(PublicKeyFromJwk(even_n), ErrorCode::kBadPublicKey, "even n", "even");
}

}  // namespace
}  // namespace e2eid::crypto
