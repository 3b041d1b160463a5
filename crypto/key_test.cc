#include "crypto/key.h"

#include <gtest/gtest.h>

#include "crypto/digest.h"
#include "crypto/test_util.h"

namespace e2eid::crypto {
namespace {

using testing::ReadOrEmpty;
using testing::RunOpenssl;
using testing::TempDir;

constexpr KeyType kAllTypes[] = {KeyType::kEd25519, KeyType::kP256, KeyType::kP384, KeyType::kP521,
                                 KeyType::kRsa};

PrivateKey MustGenerate(KeyType type, int rsa_bits = 2048) {
  auto k = PrivateKey::Generate(type, rsa_bits);
  EXPECT_TRUE(k) << k.error().ToString();
  return std::move(*k);
}

// Generates a key with `openssl genpkey <args>` into dir/name and returns the PEM ("" on failure).
std::string OpensslKey(const TempDir& dir, const std::string& name, const std::string& args) {
  const std::string path = dir.Path(name);
  EXPECT_EQ(RunOpenssl("genpkey " + args + " -out " + path), 0) << args;
  return ReadOrEmpty(path);
}

TEST(KeyTest, ParseKeyType) {
  for (KeyType t : kAllTypes) {
    auto parsed = ParseKeyType(KeyTypeName(t));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, t);
  }
  for (const char* bad : {"", "P256", "ed448", "secp256k1", "rsa2048", "dsa"}) {
    auto r = ParseKeyType(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().detail().find("accepted: ed25519, p256, p384, p521, rsa"),
              std::string::npos);
  }
}

TEST(KeyTest, ParseKeySpec) {
  struct Case {
    const char* name;
    KeyType type;
    int bits;
  };
  for (const Case& c : {Case{"ed25519", KeyType::kEd25519, 0}, Case{"p256", KeyType::kP256, 0},
                        Case{"p384", KeyType::kP384, 0}, Case{"p521", KeyType::kP521, 0},
                        Case{"rsa2048", KeyType::kRsa, 2048}, Case{"rsa3072", KeyType::kRsa, 3072},
                        Case{"rsa4096", KeyType::kRsa, 4096}}) {
    auto s = ParseKeySpec(c.name);
    ASSERT_TRUE(s) << c.name;
    EXPECT_EQ(s->type, c.type);
    EXPECT_EQ(s->rsa_bits, c.bits);
    EXPECT_EQ(KeySpecName(*s), c.name);
  }
  for (const char* bad : {"rsa", "rsa1024", "rsa2047", "ed448", ""}) {
    auto r = ParseKeySpec(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().detail().find("rsa4096"), std::string::npos);
  }
}

TEST(KeyTest, SignatureDigest) {
  EXPECT_EQ(SignatureDigest(KeyType::kEd25519), nullptr);
  EXPECT_EQ(EVP_MD_get_type(SignatureDigest(KeyType::kP256)), NID_sha256);
  EXPECT_EQ(EVP_MD_get_type(SignatureDigest(KeyType::kP384)), NID_sha384);
  EXPECT_EQ(EVP_MD_get_type(SignatureDigest(KeyType::kP521)), NID_sha512);
  EXPECT_EQ(EVP_MD_get_type(SignatureDigest(KeyType::kRsa)), NID_sha256);
}

TEST(KeyTest, GenerateEveryTypeAndRoundTripPem) {
  for (KeyType t : kAllTypes) {
    SCOPED_TRACE(std::string(KeyTypeName(t)));
    PrivateKey key = MustGenerate(t);
    EXPECT_EQ(key.type(), t);
    auto pem = key.ToPem();
    ASSERT_TRUE(pem) << pem.error().ToString();
    EXPECT_EQ(pem->rfind("-----BEGIN PRIVATE"
                         " KEY-----",
                         0),
              0u);
    auto back = PrivateKey::FromPem(*pem);
    ASSERT_TRUE(back) << back.error().ToString();
    EXPECT_EQ(back->type(), t);
    EXPECT_EQ(back->bits(), key.bits());
    EXPECT_EQ(EVP_PKEY_eq(back->get(), key.get()), 1);

    auto pub = key.public_key();
    ASSERT_TRUE(pub) << pub.error().ToString();
    EXPECT_EQ(pub->type(), t);
    auto der = pub->ToDer();
    ASSERT_TRUE(der);
    auto from_der = PublicKey::FromDer(*der);
    ASSERT_TRUE(from_der) << from_der.error().ToString();
    EXPECT_TRUE(from_der->Equals(*pub));
    auto pub_pem = pub->ToPem();
    ASSERT_TRUE(pub_pem);
    auto from_pem = PublicKey::FromPem(*pub_pem);
    ASSERT_TRUE(from_pem) << from_pem.error().ToString();
    EXPECT_TRUE(from_pem->Equals(*pub));
    auto pin = pub->SpkiSha256();
    ASSERT_TRUE(pin);
    EXPECT_EQ(*pin, Sha256(*der));

    PublicKey clone = pub->Clone();
    EXPECT_TRUE(clone.Equals(*pub));
    EXPECT_EQ(clone.type(), t);
  }
}

TEST(KeyTest, KeySizes) {
  EXPECT_EQ(MustGenerate(KeyType::kEd25519).bits(), 256);
  EXPECT_EQ(MustGenerate(KeyType::kP256).bits(), 256);
  EXPECT_EQ(MustGenerate(KeyType::kP384).bits(), 384);
  EXPECT_EQ(MustGenerate(KeyType::kP521).bits(), 521);
  EXPECT_EQ(MustGenerate(KeyType::kRsa, 2048).bits(), 2048);
}

TEST(KeyTest, DifferentKeysAreNotEqual) {
  auto a = MustGenerate(KeyType::kP256).public_key();
  auto b = MustGenerate(KeyType::kP256).public_key();
  auto c = MustGenerate(KeyType::kEd25519).public_key();
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(a->Equals(*b));
  EXPECT_FALSE(a->Equals(*c));
  EXPECT_NE(*a->SpkiSha256(), *b->SpkiSha256());
}

TEST(KeyTest, GenerateRejectsBadRsaSizes) {
  for (int bits : {1024, 2047, 8193}) {
    auto k = PrivateKey::Generate(KeyType::kRsa, bits);
    ASSERT_FALSE(k) << bits;
    EXPECT_EQ(k.error().code(), ErrorCode::kInvalidArgument);
  }
}

// PBKDF2 with 600000 iterations is slow under the sanitizers, so one test covers the whole
// encrypted round trip with as few key derivations as possible.
TEST(KeyTest, EncryptedPemRoundTripAndFormat) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  PrivateKey key = MustGenerate(KeyType::kP256);
  auto pem = key.ToPem("correct horse");
  ASSERT_TRUE(pem) << pem.error().ToString();
  EXPECT_EQ(pem->rfind("-----BEGIN ENCRYPTED PRIVATE"
                       " KEY-----",
                       0),
            0u);
  EXPECT_EQ(pem->find("BEGIN PRIVATE"
                      " KEY"),
            std::string::npos);

  auto ok = PrivateKey::FromPem(*pem, "correct horse");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(EVP_PKEY_eq(ok->get(), key.get()), 1);

  auto wrong = PrivateKey::FromPem(*pem, "correct horsf");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(wrong.error().detail(), "wrong passphrase or corrupt encrypted private key");

  auto missing = PrivateKey::FromPem(*pem);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(missing.error().detail(), "private key is encrypted but no passphrase was given");

  // Format: PBES2, PBKDF2 with HMAC-SHA256 and 600000 (0x927C0) iterations, AES-256-CBC.
  testing::WriteOrFail(dir.Path("enc.pem"), *pem);
  ASSERT_EQ(std::system(("openssl asn1parse -in " + dir.Path("enc.pem") + " > " +
                         dir.Path("asn1.txt") + " 2>/dev/null")
                            .c_str()),
            0);
  const std::string dump = ReadOrEmpty(dir.Path("asn1.txt"));
  EXPECT_NE(dump.find("PBES2"), std::string::npos) << dump;
  EXPECT_NE(dump.find("PBKDF2"), std::string::npos) << dump;
  EXPECT_NE(dump.find("hmacWithSHA256"), std::string::npos) << dump;
  EXPECT_NE(dump.find("aes-256-cbc"), std::string::npos) << dump;
  EXPECT_NE(dump.find(":0927C0"), std::string::npos) << dump;
  // The openssl CLI decrypts it with the same passphrase and refuses a wrong one.
  EXPECT_EQ(RunOpenssl("pkey -in " + dir.Path("enc.pem") + " -passin pass:'correct horse' -noout"),
            0);
  EXPECT_NE(RunOpenssl("pkey -in " + dir.Path("enc.pem") + " -passin pass:wrong -noout"), 0);
}

TEST(KeyTest, ToPemRejectsEmptyPassphrase) {
  auto r = MustGenerate(KeyType::kP256).ToPem("");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST(KeyTest, PassphraseIgnoredForUnencryptedKey) {
  PrivateKey key = MustGenerate(KeyType::kP384);
  auto pem = key.ToPem();
  ASSERT_TRUE(pem);
  auto back = PrivateKey::FromPem(*pem, "unused");
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->type(), KeyType::kP384);
}

TEST(KeyTest, MalformedPrivatePem) {
  PrivateKey key = MustGenerate(KeyType::kP256);
  const std::string pem = *key.ToPem();

  struct Case {
    std::string name;
    std::string input;
  };
  const std::string header =
      "-----BEGIN PRIVATE"
      " KEY-----\n";
  const std::string footer =
      "-----END PRIVATE"
      " KEY-----\n";
  const Case cases[] = {
      {"empty", ""},
      {"not pem", "hello world"},
      {"truncated", pem.substr(0, pem.size() / 2)},
      {"no end line", pem.substr(0, pem.find("-----END"))},
      {"bad base64", header + "!!!!not base64!!!!\n" + footer},
      {"valid base64, not DER", header + "aGVsbG8gd29ybGQ=\n" + footer},
      {"only a certificate-ish block",
       "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
  };
  for (const Case& c : cases) {
    auto r = PrivateKey::FromPem(c.input);
    ASSERT_FALSE(r) << c.name;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << c.name << ": " << r.error().ToString();
  }
}

TEST(KeyTest, PublicKeyPemIsNotAPrivateKey) {
  auto pub = MustGenerate(KeyType::kP256).public_key();
  ASSERT_TRUE(pub);
  auto r = PrivateKey::FromPem(*pub->ToPem());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
}

TEST(KeyTest, FromEvpPkeyRequiresPrivatePart) {
  auto pub = MustGenerate(KeyType::kP256).public_key();
  ASSERT_TRUE(pub);
  ASSERT_EQ(EVP_PKEY_up_ref(pub->get()), 1);
  auto r = PrivateKey::FromEvpPkey(EvpPkeyPtr(pub->get()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(PrivateKey::FromEvpPkey(nullptr));
  EXPECT_FALSE(PublicKey::FromEvpPkey(nullptr));
}

// ---- interop with keys made by the openssl CLI ----

TEST(KeyOpensslTest, LoadsKeysFromGenpkey) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  struct Case {
    const char* args;
    KeyType type;
  };
  const Case cases[] = {
      {"-algorithm ed25519", KeyType::kEd25519},
      {"-algorithm EC -pkeyopt ec_paramgen_curve:P-256", KeyType::kP256},
      {"-algorithm EC -pkeyopt ec_paramgen_curve:P-384", KeyType::kP384},
      {"-algorithm EC -pkeyopt ec_paramgen_curve:P-521", KeyType::kP521},
      {"-algorithm RSA -pkeyopt rsa_keygen_bits:2048", KeyType::kRsa},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string name = "k" + std::to_string(i++) + ".pem";
    const std::string pem = OpensslKey(dir, name, c.args);
    auto key = PrivateKey::FromPem(pem);
    ASSERT_TRUE(key) << c.args << ": " << key.error().ToString();
    EXPECT_EQ(key->type(), c.type) << c.args;
    // Our public key equals the one the CLI derives.
    const std::string pub_path = dir.Path(name + ".pub");
    ASSERT_EQ(RunOpenssl("pkey -in " + dir.Path(name) + " -pubout -out " + pub_path), 0);
    auto pub = PublicKey::FromPem(ReadOrEmpty(pub_path));
    ASSERT_TRUE(pub) << pub.error().ToString();
    auto ours = key->public_key();
    ASSERT_TRUE(ours);
    EXPECT_TRUE(pub->Equals(*ours)) << c.args;
  }
}

TEST(KeyOpensslTest, LoadsEncryptedGenpkeyKey) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string pem = OpensslKey(
      dir, "enc.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass pass:hunter2");
  ASSERT_NE(pem.find("ENCRYPTED PRIVATE"
                     " KEY"),
            std::string::npos);
  auto ok = PrivateKey::FromPem(pem, "hunter2");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->type(), KeyType::kP256);

  auto wrong = PrivateKey::FromPem(pem, "hunter3");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kInvalidArgument);
  auto missing = PrivateKey::FromPem(pem);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kInvalidArgument);
}

TEST(KeyOpensslTest, LoadsTraditionalEncryptedKey) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  OpensslKey(dir, "plain.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384");
  ASSERT_EQ(RunOpenssl("pkey -in " + dir.Path("plain.pem") +
                       " -traditional -aes256 -passout pass:trad -out " + dir.Path("trad.pem")),
            0);
  const std::string pem = ReadOrEmpty(dir.Path("trad.pem"));
  ASSERT_NE(pem.find("Proc-Type: 4,ENCRYPTED"), std::string::npos) << pem;
  auto ok = PrivateKey::FromPem(pem, "trad");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->type(), KeyType::kP384);
  auto wrong = PrivateKey::FromPem(pem, "nope");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kInvalidArgument);
  auto missing = PrivateKey::FromPem(pem);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kInvalidArgument);
}

TEST(KeyOpensslTest, SkipsEcParametersBlock) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(RunOpenssl("ecparam -name prime256v1 -genkey -out " + dir.Path("k.pem")), 0);
  const std::string pem = ReadOrEmpty(dir.Path("k.pem"));
  ASSERT_NE(pem.find("EC PARAMETERS"), std::string::npos);
  auto key = PrivateKey::FromPem(pem);
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(key->type(), KeyType::kP256);
}

TEST(KeyOpensslTest, RejectsUnsupportedKeyTypes) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  struct Case {
    const char* args;
    const char* expect_in_detail;
  };
  const Case cases[] = {
      {"-algorithm ed448", "ED448"},
      {"-algorithm x25519", "X25519"},
      {"-algorithm EC -pkeyopt ec_paramgen_curve:secp256k1", "secp256k1"},
      {"-algorithm EC -pkeyopt ec_paramgen_curve:brainpoolP256r1", "brainpoolP256r1"},
      {"-algorithm RSA -pkeyopt rsa_keygen_bits:1024", "RSA key too small: 1024 bits"},
      {"-algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048", "RSA-PSS"},
      {"-algorithm RSA -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_keygen_pubexp:3",
       "RSA public exponent"},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string name = "u" + std::to_string(i++) + ".pem";
    const std::string pem = OpensslKey(dir, name, c.args);
    ASSERT_FALSE(pem.empty()) << c.args;
    auto key = PrivateKey::FromPem(pem);
    ASSERT_FALSE(key) << c.args;
    EXPECT_EQ(key.error().code(), ErrorCode::kBadPublicKey) << c.args;
    EXPECT_NE(key.error().detail().find(c.expect_in_detail), std::string::npos)
        << c.args << ": " << key.error().detail();
    // The public half is refused the same way.
    const std::string pub_path = dir.Path(name + ".pub");
    ASSERT_EQ(RunOpenssl("pkey -in " + dir.Path(name) + " -pubout -out " + pub_path), 0);
    auto pub = PublicKey::FromPem(ReadOrEmpty(pub_path));
    ASSERT_FALSE(pub) << c.args;
    EXPECT_EQ(pub.error().code(), ErrorCode::kBadPublicKey) << c.args;
  }
}

TEST(KeyOpensslTest, RejectsDsaAndExplicitCurveParameters) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(RunOpenssl("genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:1024 -out " +
                       dir.Path("dsa.param")),
            0);
  const std::string dsa = OpensslKey(dir, "dsa.pem", "-paramfile " + dir.Path("dsa.param"));
  auto d = PrivateKey::FromPem(dsa);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kBadPublicKey);
  EXPECT_NE(d.error().detail().find("unsupported key type DSA"), std::string::npos)
      << d.error().detail();

  ASSERT_EQ(RunOpenssl("ecparam -name prime256v1 -param_enc explicit -genkey -noout -out " +
                       dir.Path("explicit.pem")),
            0);
  auto e = PrivateKey::FromPem(ReadOrEmpty(dir.Path("explicit.pem")));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), ErrorCode::kBadPublicKey);
  EXPECT_NE(e.error().detail().find("explicit"), std::string::npos) << e.error().detail();
}

// ---- public key parsing ----

TEST(PublicKeyTest, RejectsOffCurvePoint) {
  auto pub = MustGenerate(KeyType::kP256).public_key();
  ASSERT_TRUE(pub);
  Bytes der = *pub->ToDer();
  ASSERT_EQ(der.size(), 91u);  // 26-byte P-256 SPKI prefix + 04 || x || y
  der.back() ^= 0x01;          // y changes: the point leaves the curve
  auto r = PublicKey::FromDer(der);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadPublicKey) << r.error().ToString();
}

TEST(PublicKeyTest, RejectsMalformedDer) {
  auto pub = MustGenerate(KeyType::kEd25519).public_key();
  ASSERT_TRUE(pub);
  Bytes der = *pub->ToDer();

  Bytes trailing = der;
  trailing.push_back(0);
  auto t = PublicKey::FromDer(trailing);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), ErrorCode::kMalformed);

  Bytes truncated(der.begin(), der.end() - 1);
  auto tr = PublicKey::FromDer(truncated);
  ASSERT_FALSE(tr);
  EXPECT_EQ(tr.error().code(), ErrorCode::kMalformed);

  auto empty = PublicKey::FromDer({});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kMalformed);

  const Bytes garbage = {0x30, 0x03, 0x02, 0x01, 0x00};
  auto g = PublicKey::FromDer(garbage);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), ErrorCode::kMalformed);
}

TEST(PublicKeyTest, RejectsMalformedPem) {
  auto none = PublicKey::FromPem("no pem here");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kMalformed);
  auto bad = PublicKey::FromPem("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kMalformed);
  // A private key PEM holds no PUBLIC KEY block.
  auto priv = PublicKey::FromPem(*MustGenerate(KeyType::kP256).ToPem());
  ASSERT_FALSE(priv);
  EXPECT_EQ(priv.error().code(), ErrorCode::kMalformed);
}

TEST(PublicKeyTest, FromEvpPkeyCopiesOnlyThePublicPart) {
  PrivateKey key = MustGenerate(KeyType::kP256);
  auto pub = PublicKey::FromEvpPkey(key.get());
  ASSERT_TRUE(pub);
  EXPECT_NE(pub->get(), key.get());
  BIGNUM* priv = nullptr;
  EXPECT_NE(EVP_PKEY_get_bn_param(pub->get(), "priv", &priv), 1);
  BN_clear_free(priv);
  ClearOpenSslErrors();
}

}  // namespace
}  // namespace e2eid::crypto
