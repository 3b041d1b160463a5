#include "crypto/jws.h"

#include <gtest/gtest.h>

#include "crypto/jwk.h"
#include "crypto/test_util.h"

namespace e2eid::crypto {
namespace {

using testing::ReadOrEmpty;
using testing::RunOpenssl;
using testing::TempDir;
using testing::WriteOrFail;

constexpr KeyType kAllTypes[] = {KeyType::kEd25519, KeyType::kP256, KeyType::kP384, KeyType::kP521,
                                 KeyType::kRsa};

PrivateKey MustGenerate(KeyType type) {
  auto k = PrivateKey::Generate(type, 2048);
  EXPECT_TRUE(k) << k.error().ToString();
  return std::move(*k);
}

PublicKey MustPublic(const PrivateKey& k) {
  auto p = k.public_key();
  EXPECT_TRUE(p) << p.error().ToString();
  return std::move(*p);
}

std::string B64(std::string_view s) { return Base64UrlEncode(s); }

// A flattened JWS body from raw parts, for hand-made (often invalid) inputs.
std::string Body(const std::string& protected_json, const std::string& payload,
                 const std::string& sig_b64 = "AAAA") {
  return DumpJson(
      Json{{"protected", B64(protected_json)}, {"payload", B64(payload)}, {"signature", sig_b64}});
}

void ExpectCode(const auto& r, ErrorCode code, const std::string& what,
                const std::string& in_detail = "") {
  ASSERT_FALSE(r) << what;
  EXPECT_EQ(r.error().code(), code) << what << ": " << r.error().ToString();
  if (!in_detail.empty()) {
    EXPECT_NE(r.error().detail().find(in_detail), std::string::npos)
        << what << ": " << r.error().detail();
  }
}

// ---- algorithms ----

TEST(JwsAlgTest, AllowList) {
  for (JwsAlg a :
       {JwsAlg::kES256, JwsAlg::kES384, JwsAlg::kES512, JwsAlg::kEdDSA, JwsAlg::kRS256}) {
    auto parsed = ParseJwsAlg(JwsAlgName(a));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, a);
  }
  ExpectCode(ParseJwsAlg("none"), ErrorCode::kBadSignatureAlgorithm, "none", "'none'");
  ExpectCode(ParseJwsAlg("HS256"), ErrorCode::kBadSignatureAlgorithm, "HS256", "HMAC");
  ExpectCode(ParseJwsAlg("HS512"), ErrorCode::kBadSignatureAlgorithm, "HS512", "HMAC");
  for (const char* bad : {"PS256", "RS384", "RS512", "ES256K", "Ed25519", "es256", "NONE"}) {
    ExpectCode(ParseJwsAlg(bad), ErrorCode::kBadSignatureAlgorithm, bad,
               "unsupported JWS algorithm '" + std::string(bad) + "'");
  }
  ExpectCode(ParseJwsAlg(""), ErrorCode::kBadSignatureAlgorithm, "empty", "empty");
}

TEST(JwsAlgTest, AlgMatchesKey) {
  for (KeyType t : kAllTypes) {
    for (JwsAlg a :
         {JwsAlg::kES256, JwsAlg::kES384, JwsAlg::kES512, JwsAlg::kEdDSA, JwsAlg::kRS256}) {
      const bool match = DefaultJwsAlg(t) == a;
      auto s = CheckAlgMatchesKey(a, t);
      EXPECT_EQ(static_cast<bool>(s), match) << JwsAlgName(a) << " " << KeyTypeName(t);
      if (!match) {
        EXPECT_EQ(s.error().code(), ErrorCode::kBadSignatureAlgorithm);
      }
    }
  }
  EXPECT_EQ(DefaultJwsAlg(KeyType::kP256), JwsAlg::kES256);
  EXPECT_EQ(DefaultJwsAlg(KeyType::kP384), JwsAlg::kES384);
  EXPECT_EQ(DefaultJwsAlg(KeyType::kP521), JwsAlg::kES512);
  EXPECT_EQ(DefaultJwsAlg(KeyType::kEd25519), JwsAlg::kEdDSA);
  EXPECT_EQ(DefaultJwsAlg(KeyType::kRsa), JwsAlg::kRS256);
}

// ---- raw JOSE signatures ----

TEST(JoseSignatureTest, SignVerifyEveryType) {
  const std::string data = "header.payload";
  for (KeyType t : kAllTypes) {
    SCOPED_TRACE(std::string(KeyTypeName(t)));
    PrivateKey key = MustGenerate(t);
    PublicKey pub = MustPublic(key);
    const JwsAlg alg = DefaultJwsAlg(t);
    auto sig = SignJose(key, alg, AsBytes(data));
    ASSERT_TRUE(sig) << sig.error().ToString();
    const size_t expected = t == KeyType::kP256   ? 64
                            : t == KeyType::kP384 ? 96
                            : t == KeyType::kP521 ? 132
                            : t == KeyType::kRsa  ? 256
                                                  : 64;
    EXPECT_EQ(sig->size(), expected);
    EXPECT_TRUE(VerifyJose(pub, alg, AsBytes(data), *sig));

    auto tampered = VerifyJose(pub, alg, AsBytes(data + "x"), *sig);
    ExpectCode(tampered, ErrorCode::kMalformed, "tampered data", "verification failed");
    Bytes flipped = *sig;
    flipped[flipped.size() / 2] ^= 0x40;
    ExpectCode(VerifyJose(pub, alg, AsBytes(data), flipped), ErrorCode::kMalformed,
               "flipped signature");
    PublicKey other = MustPublic(MustGenerate(t));
    ExpectCode(VerifyJose(other, alg, AsBytes(data), *sig), ErrorCode::kMalformed, "other key");

    // Wrong lengths are rejected before any verification.
    Bytes longer = *sig;
    longer.push_back(0);
    ExpectCode(VerifyJose(pub, alg, AsBytes(data), longer), ErrorCode::kMalformed, "too long",
               "has length " + std::to_string(expected + 1));
    Bytes shorter(sig->begin(), sig->end() - 1);
    ExpectCode(VerifyJose(pub, alg, AsBytes(data), shorter), ErrorCode::kMalformed, "too short",
               "expected " + std::to_string(expected));
    ExpectCode(VerifyJose(pub, alg, AsBytes(data), Bytes{}), ErrorCode::kMalformed, "empty");
  }
}

TEST(JoseSignatureTest, EcdsaDerSignatureIsNotAccepted) {
  // A DER ECDSA signature (what OpenSSL produces natively) is not a JOSE signature.
  PrivateKey key = MustGenerate(KeyType::kP256);
  auto sig = SignJose(key, JwsAlg::kES256, AsBytes("x"));
  ASSERT_TRUE(sig);
  auto der = EcdsaJoseToDer(*sig, KeyType::kP256);
  ASSERT_TRUE(der);
  ExpectCode(VerifyJose(MustPublic(key), JwsAlg::kES256, AsBytes("x"), *der), ErrorCode::kMalformed,
             "DER signature", "length");
}

TEST(JoseSignatureTest, ZeroEcdsaSignatureFails) {
  PublicKey pub = MustPublic(MustGenerate(KeyType::kP256));
  ExpectCode(VerifyJose(pub, JwsAlg::kES256, AsBytes("x"), Bytes(64, 0)), ErrorCode::kMalformed,
             "r = s = 0", "verification failed");
}

TEST(JoseSignatureTest, AlgKeyMismatch) {
  PrivateKey p256 = MustGenerate(KeyType::kP256);
  ExpectCode(SignJose(p256, JwsAlg::kES384, AsBytes("x")), ErrorCode::kBadSignatureAlgorithm,
             "sign ES384 with P-256", "does not match the key type p256");
  auto sig = SignJose(p256, JwsAlg::kES256, AsBytes("x"));
  ASSERT_TRUE(sig);
  ExpectCode(VerifyJose(MustPublic(p256), JwsAlg::kRS256, AsBytes("x"), *sig),
             ErrorCode::kBadSignatureAlgorithm, "verify RS256 with P-256");
}

TEST(JoseSignatureTest, EcdsaFormatConversion) {
  const Bytes jose = [] {
    Bytes b(64);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i + 1);
    b[0] = 0;      // r with a leading zero byte: DER drops it, JOSE keeps the fixed width
    b[32] = 0x80;  // s with the high bit set: DER adds a zero byte
    return b;
  }();
  auto der = EcdsaJoseToDer(jose, KeyType::kP256);
  ASSERT_TRUE(der);
  auto back = EcdsaDerToJose(*der, KeyType::kP256);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, jose);

  ExpectCode(EcdsaJoseToDer(Bytes(63), KeyType::kP256), ErrorCode::kMalformed, "short jose");
  ExpectCode(EcdsaJoseToDer(Bytes(64), KeyType::kEd25519), ErrorCode::kInvalidArgument, "ed");
  ExpectCode(EcdsaDerToJose(Bytes{0x30, 0x00}, KeyType::kP256), ErrorCode::kMalformed, "empty seq");
  Bytes trailing = *der;
  trailing.push_back(0);
  ExpectCode(EcdsaDerToJose(trailing, KeyType::kP256), ErrorCode::kMalformed, "trailing");
  // A P-384-sized integer does not fit P-256.
  auto big = EcdsaJoseToDer(Bytes(96, 0x7f), KeyType::kP384);
  ASSERT_TRUE(big);
  ExpectCode(EcdsaDerToJose(*big, KeyType::kP256), ErrorCode::kMalformed, "too big", "fit");
}

// RFC 8037 Appendix A.4: Ed25519 signing is deterministic, so the exact JWS is known.
TEST(JoseSignatureTest, Rfc8037Ed25519Example) {
  const Bytes d = *Base64UrlDecode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
  EvpPkeyPtr raw(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, d.data(), d.size()));
  ASSERT_TRUE(raw);
  auto key = PrivateKey::FromEvpPkey(std::move(raw));
  ASSERT_TRUE(key) << key.error().ToString();
  const std::string expected =
      "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
      "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
  auto token = SignCompactJws(*key, JwsAlg::kEdDSA, Json::object(), "Example of Ed25519 signing");
  ASSERT_TRUE(token) << token.error().ToString();
  EXPECT_EQ(*token, expected);

  auto pub = PublicKeyFromJwk(Json{
      {"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}});
  ASSERT_TRUE(pub);
  auto jws = ParseCompactJws(expected);
  ASSERT_TRUE(jws) << jws.error().ToString();
  EXPECT_EQ(jws->alg, JwsAlg::kEdDSA);
  EXPECT_EQ(AsString(jws->payload), "Example of Ed25519 signing");
  EXPECT_TRUE(VerifyJws(*jws, *pub));
}

// ---- interop with the openssl CLI ----

TEST(JoseOpensslTest, Es256SignatureVerifiesWithOpensslDgst) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  PrivateKey key = MustGenerate(KeyType::kP256);
  const std::string data = "eyJhbGciOiJFUzI1NiJ9.eyJoZWxsbyI6IndvcmxkIn0";
  auto sig = SignJose(key, JwsAlg::kES256, AsBytes(data));
  ASSERT_TRUE(sig);
  auto der = EcdsaJoseToDer(*sig, KeyType::kP256);
  ASSERT_TRUE(der);
  WriteOrFail(dir.Path("data"), data);
  WriteOrFail(dir.Path("sig.der"), AsString(*der));
  WriteOrFail(dir.Path("pub.pem"), *MustPublic(key).ToPem());
  EXPECT_EQ(RunOpenssl("dgst -sha256 -verify " + dir.Path("pub.pem") + " -signature " +
                       dir.Path("sig.der") + " " + dir.Path("data")),
            0);
  WriteOrFail(dir.Path("other"), data + ".");
  EXPECT_NE(RunOpenssl("dgst -sha256 -verify " + dir.Path("pub.pem") + " -signature " +
                       dir.Path("sig.der") + " " + dir.Path("other")),
            0);
}

TEST(JoseOpensslTest, VerifiesSignaturesMadeByOpenssl) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string data = "signing input made by the openssl CLI";
  WriteOrFail(dir.Path("data"), data);
  struct Case {
    const char* genpkey;
    const char* sign;  // openssl command, {key} {data} {sig} substituted below
    JwsAlg alg;
    bool der_ecdsa;
  };
  const Case cases[] = {
      {"-algorithm EC -pkeyopt ec_paramgen_curve:P-256", "dgst -sha256 -sign", JwsAlg::kES256,
       true},
      {"-algorithm EC -pkeyopt ec_paramgen_curve:P-384", "dgst -sha384 -sign", JwsAlg::kES384,
       true},
      {"-algorithm EC -pkeyopt ec_paramgen_curve:P-521", "dgst -sha512 -sign", JwsAlg::kES512,
       true},
      {"-algorithm RSA -pkeyopt rsa_keygen_bits:2048", "dgst -sha256 -sign", JwsAlg::kRS256, false},
      {"-algorithm ed25519", "pkeyutl -sign -rawin -inkey", JwsAlg::kEdDSA, false},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.genpkey);
    const std::string k = dir.Path("k" + std::to_string(i) + ".pem");
    const std::string s = dir.Path("s" + std::to_string(i++));
    ASSERT_EQ(RunOpenssl(std::string("genpkey ") + c.genpkey + " -out " + k), 0);
    const std::string sign_cmd =
        std::string(c.sign) + " " + k +
        (std::string(c.sign).rfind("pkeyutl", 0) == 0 ? " -in " : " -out " + s + " ") +
        dir.Path("data") + (std::string(c.sign).rfind("pkeyutl", 0) == 0 ? " -out " + s : "");
    ASSERT_EQ(RunOpenssl(sign_cmd), 0) << sign_cmd;
    auto key = PrivateKey::FromPem(ReadOrEmpty(k));
    ASSERT_TRUE(key) << key.error().ToString();
    PublicKey pub = MustPublic(*key);
    const std::string raw_sig = ReadOrEmpty(s);
    ASSERT_FALSE(raw_sig.empty());
    Bytes sig(raw_sig.begin(), raw_sig.end());
    if (c.der_ecdsa) {
      auto jose = EcdsaDerToJose(sig, pub.type());
      ASSERT_TRUE(jose) << jose.error().ToString();
      sig = *jose;
    }
    EXPECT_TRUE(VerifyJose(pub, c.alg, AsBytes(data), sig));
    EXPECT_FALSE(VerifyJose(pub, c.alg, AsBytes(data + "!"), sig));
  }
}

// ---- flattened JWS ----

TEST(FlattenedJwsTest, SignParseVerify) {
  for (KeyType t : kAllTypes) {
    SCOPED_TRACE(std::string(KeyTypeName(t)));
    PrivateKey key = MustGenerate(t);
    PublicKey pub = MustPublic(key);
    const Json header = {{"nonce", "abc"}, {"url", "https://ca.example/acme/new-order"}};
    const std::string payload = R"({"identifiers":[]})";
    auto body = SignFlattenedJws(key, DefaultJwsAlg(t), header, payload);
    ASSERT_TRUE(body) << body.error().ToString();
    auto jws = ParseFlattenedJws(*body);
    ASSERT_TRUE(jws) << jws.error().ToString();
    EXPECT_EQ(jws->alg, DefaultJwsAlg(t));
    EXPECT_EQ(jws->header["alg"], JwsAlgName(DefaultJwsAlg(t)));
    EXPECT_EQ(jws->header["nonce"], "abc");
    EXPECT_EQ(AsString(jws->payload), payload);
    EXPECT_EQ(jws->payload_b64, B64(payload));
    EXPECT_TRUE(VerifyJws(*jws, pub));
  }
}

TEST(FlattenedJwsTest, PostAsGetEmptyPayload) {
  PrivateKey key = MustGenerate(KeyType::kP256);
  auto body = SignFlattenedJws(key, JwsAlg::kES256, Json{{"kid", "acct/1"}}, "");
  ASSERT_TRUE(body);
  auto parsed = ParseJson(*body);
  ASSERT_TRUE(parsed);
  EXPECT_EQ((*parsed)["payload"], "");
  auto jws = ParseFlattenedJws(*body);
  ASSERT_TRUE(jws) << jws.error().ToString();
  EXPECT_TRUE(jws->payload.empty());
  EXPECT_TRUE(VerifyJws(*jws, MustPublic(key)));
}

TEST(FlattenedJwsTest, TamperedPayloadOrHeaderFails) {
  PrivateKey key = MustGenerate(KeyType::kP256);
  PublicKey pub = MustPublic(key);
  auto body = SignFlattenedJws(key, JwsAlg::kES256, Json{{"nonce", "n1"}}, R"({"a":1})");
  ASSERT_TRUE(body);
  Json obj = *ParseJson(*body);

  Json tampered_payload = obj;
  tampered_payload["payload"] = B64(R"({"a":2})");
  auto p = ParseFlattenedJws(DumpJson(tampered_payload));
  ASSERT_TRUE(p);
  ExpectCode(VerifyJws(*p, pub), ErrorCode::kMalformed, "payload", "verification failed");

  Json tampered_header = obj;
  tampered_header["protected"] = B64(R"({"alg":"ES256","nonce":"n2"})");
  auto h = ParseFlattenedJws(DumpJson(tampered_header));
  ASSERT_TRUE(h);
  ExpectCode(VerifyJws(*h, pub), ErrorCode::kMalformed, "header", "verification failed");

  // Verification uses the received encodings verbatim: an equivalent re-encoding of the same
  // header JSON (with white space) is a different signing input.
  const std::string original_header(
      AsString(*Base64UrlDecode(obj["protected"].get<std::string>())));
  Json respaced = obj;
  respaced["protected"] = B64(" " + original_header);
  auto r = ParseFlattenedJws(DumpJson(respaced));
  ASSERT_TRUE(r);
  EXPECT_FALSE(VerifyJws(*r, pub));
}

TEST(FlattenedJwsTest, AlgNoneAndHmacRejected) {
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"none"})", "{}", "")), ErrorCode::kMalformed,
             "none with empty signature");
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"none"})", "{}")), ErrorCode::kBadSignatureAlgorithm,
             "none", "'none'");
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"HS256"})", "{}")), ErrorCode::kBadSignatureAlgorithm,
             "HS256", "HMAC");
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"PS256"})", "{}")), ErrorCode::kBadSignatureAlgorithm,
             "PS256", "PS256");
  ExpectCode(ParseFlattenedJws(Body(R"({"nonce":"x"})", "{}")), ErrorCode::kMalformed, "no alg",
             "'alg'");
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":256})", "{}")), ErrorCode::kMalformed,
             "alg not string", "'alg'");
}

TEST(FlattenedJwsTest, AlgKeyMismatchRejected) {
  PrivateKey p256 = MustGenerate(KeyType::kP256);
  auto body = SignFlattenedJws(p256, JwsAlg::kES256, Json::object(), "{}");
  ASSERT_TRUE(body);
  auto jws = ParseFlattenedJws(*body);
  ASSERT_TRUE(jws);
  ExpectCode(VerifyJws(*jws, MustPublic(MustGenerate(KeyType::kP384))),
             ErrorCode::kBadSignatureAlgorithm, "P-384 key", "does not match");
  ExpectCode(VerifyJws(*jws, MustPublic(MustGenerate(KeyType::kRsa))),
             ErrorCode::kBadSignatureAlgorithm, "RSA key", "does not match");
  // A header claiming RS256 over an EC key (algorithm confusion).
  Json obj = *ParseJson(*body);
  obj["protected"] = B64(R"({"alg":"RS256"})");
  auto confused = ParseFlattenedJws(DumpJson(obj));
  ASSERT_TRUE(confused);
  ExpectCode(VerifyJws(*confused, MustPublic(p256)), ErrorCode::kBadSignatureAlgorithm,
             "RS256 header, EC key");
  // A Jws whose alg field disagrees with its header.
  Jws edited = *jws;
  edited.alg = JwsAlg::kES384;
  ExpectCode(VerifyJws(edited, MustPublic(p256)), ErrorCode::kMalformed, "edited alg");
}

TEST(FlattenedJwsTest, DuplicateKeysRejected) {
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"ES256","alg":"none"})", "{}")),
             ErrorCode::kMalformed, "duplicate header member", "duplicate member 'alg'");
  const std::string p = B64(R"({"alg":"ES256"})");
  const std::string dup_body =
      R"({"protected":")" + p + R"(","payload":"","signature":"AAAA","payload":"e30"})";
  ExpectCode(ParseFlattenedJws(dup_body), ErrorCode::kMalformed, "duplicate body member",
             "duplicate member 'payload'");
}

TEST(FlattenedJwsTest, MembersMustBeExactlyTheThree) {
  const std::string p = B64(R"({"alg":"ES256"})");
  Json base = {{"protected", p}, {"payload", ""}, {"signature", "AAAA"}};

  Json with_header = base;
  with_header["header"] = Json{{"kid", "x"}};
  ExpectCode(ParseFlattenedJws(DumpJson(with_header)), ErrorCode::kMalformed, "header",
             "unprotected header");

  Json general = {{"payload", ""},
                  {"signatures", Json::array({Json{{"protected", p}, {"signature", "AAAA"}}})}};
  ExpectCode(ParseFlattenedJws(DumpJson(general)), ErrorCode::kMalformed, "general",
             "general serialization");

  Json extra = base;
  extra["foo"] = 1;
  ExpectCode(ParseFlattenedJws(DumpJson(extra)), ErrorCode::kMalformed, "extra",
             "unexpected member 'foo'");

  for (const char* member : {"protected", "payload", "signature"}) {
    Json missing = base;
    missing.erase(member);
    ExpectCode(ParseFlattenedJws(DumpJson(missing)), ErrorCode::kMalformed,
               std::string("missing ") + member, member);
    Json wrong_type = base;
    wrong_type[member] = 7;
    ExpectCode(ParseFlattenedJws(DumpJson(wrong_type)), ErrorCode::kMalformed,
               std::string("non-string ") + member, member);
  }
  ExpectCode(ParseFlattenedJws("[]"), ErrorCode::kMalformed, "array");
  ExpectCode(ParseFlattenedJws("not json"), ErrorCode::kMalformed, "not json");
  ExpectCode(ParseFlattenedJws(""), ErrorCode::kMalformed, "empty body");
}

TEST(FlattenedJwsTest, BadEncodingsRejected) {
  const std::string p = B64(R"({"alg":"ES256"})");
  ExpectCode(ParseFlattenedJws(
                 DumpJson(Json{{"protected", p + "="}, {"payload", ""}, {"signature", "AAAA"}})),
             ErrorCode::kMalformed, "padded header", "protected header is not valid base64url");
  ExpectCode(ParseFlattenedJws(
                 DumpJson(Json{{"protected", p}, {"payload", "e30="}, {"signature", "AAAA"}})),
             ErrorCode::kMalformed, "padded payload", "payload is not valid base64url");
  ExpectCode(
      ParseFlattenedJws(DumpJson(Json{{"protected", p}, {"payload", ""}, {"signature", "AA+A"}})),
      ErrorCode::kMalformed, "std alphabet signature", "signature is not valid base64url");
  ExpectCode(
      ParseFlattenedJws(DumpJson(Json{{"protected", ""}, {"payload", ""}, {"signature", "AAAA"}})),
      ErrorCode::kMalformed, "empty header");
  ExpectCode(ParseFlattenedJws(Body("[1]", "")), ErrorCode::kMalformed, "header array",
             "JSON object");
  ExpectCode(ParseFlattenedJws(Body("{not json", "")), ErrorCode::kMalformed, "header not json");
}

TEST(FlattenedJwsTest, CritAndB64) {
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"ES256","crit":["exp"],"exp":1})", "")),
             ErrorCode::kMalformed, "crit", "critical header parameter(s) 'exp'");
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"ES256","crit":[]})", "")), ErrorCode::kMalformed,
             "empty crit", "crit");
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"ES256","b64":false,"crit":["b64"]})", "")),
             ErrorCode::kMalformed, "b64 false with crit");
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"ES256","b64":false})", "")), ErrorCode::kMalformed,
             "b64 false", "b64: false");
  ExpectCode(ParseFlattenedJws(Body(R"({"alg":"ES256","b64":"false"})", "")), ErrorCode::kMalformed,
             "b64 string", "boolean");
  EXPECT_TRUE(ParseFlattenedJws(Body(R"({"alg":"ES256","b64":true})", "")));
}

TEST(FlattenedJwsTest, WrongLengthEcdsaSignature) {
  PrivateKey key = MustGenerate(KeyType::kP256);
  auto body = SignFlattenedJws(key, JwsAlg::kES256, Json::object(), "{}");
  ASSERT_TRUE(body);
  Json obj = *ParseJson(*body);
  Bytes sig = *Base64UrlDecode(obj["signature"].get<std::string>());
  ASSERT_EQ(sig.size(), 64u);
  sig.pop_back();
  obj["signature"] = Base64UrlEncode(sig);
  auto jws = ParseFlattenedJws(DumpJson(obj));
  ASSERT_TRUE(jws);
  ExpectCode(VerifyJws(*jws, MustPublic(key)), ErrorCode::kMalformed, "63-byte signature",
             "has length 63, expected 64");
}

TEST(FlattenedJwsTest, SignRejectsBadHeaders) {
  PrivateKey key = MustGenerate(KeyType::kP256);
  ExpectCode(SignFlattenedJws(key, JwsAlg::kES256, Json::array(), ""), ErrorCode::kInvalidArgument,
             "array header");
  ExpectCode(SignFlattenedJws(key, JwsAlg::kES256, Json{{"alg", "ES384"}}, ""),
             ErrorCode::kInvalidArgument, "conflicting alg", "differs");
  EXPECT_TRUE(SignFlattenedJws(key, JwsAlg::kES256, Json{{"alg", "ES256"}}, ""));
  ExpectCode(SignCompactJws(key, JwsAlg::kEdDSA, Json::object(), ""),
             ErrorCode::kBadSignatureAlgorithm, "EdDSA with P-256");
}

// ---- compact JWS ----

TEST(CompactJwsTest, SignParseVerify) {
  PrivateKey key = MustGenerate(KeyType::kP256);
  auto token = SignCompactJws(key, JwsAlg::kES256, Json{{"typ", "dpop+jwt"}}, R"({"htm":"POST"})");
  ASSERT_TRUE(token);
  auto jws = ParseCompactJws(*token);
  ASSERT_TRUE(jws) << jws.error().ToString();
  EXPECT_EQ(jws->header["typ"], "dpop+jwt");
  EXPECT_EQ(AsString(jws->payload), R"({"htm":"POST"})");
  EXPECT_TRUE(VerifyJws(*jws, MustPublic(key)));
}

TEST(CompactJwsTest, Structure) {
  const std::string h = B64(R"({"alg":"ES256"})");
  ExpectCode(ParseCompactJws(h + ".e30"), ErrorCode::kMalformed, "two parts", "three");
  ExpectCode(ParseCompactJws(h + ".e30.AAAA.AAAA"), ErrorCode::kMalformed, "four parts", "three");
  ExpectCode(ParseCompactJws(""), ErrorCode::kMalformed, "empty");
  ExpectCode(ParseCompactJws(h + ".e30."), ErrorCode::kMalformed, "empty signature", "empty");
  ExpectCode(ParseCompactJws(B64(R"({"alg":"none"})") + ".e30.AAAA"),
             ErrorCode::kBadSignatureAlgorithm, "none");
  ExpectCode(ParseCompactJws(B64(R"({"alg":"HS256"})") + ".e30.AAAA"),
             ErrorCode::kBadSignatureAlgorithm, "HS256");
  ExpectCode(ParseCompactJws(B64(R"({"alg":"ES256","alg":"ES256"})") + ".e30.AAAA"),
             ErrorCode::kMalformed, "duplicate", "duplicate");
  auto empty_payload = ParseCompactJws(h + "..AAAA");
  ASSERT_TRUE(empty_payload) << empty_payload.error().ToString();
  EXPECT_TRUE(empty_payload->payload.empty());
}

}  // namespace
}  // namespace e2eid::crypto
