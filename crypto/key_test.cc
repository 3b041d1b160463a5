#include "crypto/key.h"

#include <gtest/gtest.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include <algorithm>

#include "crypto/digest.h"
#include "crypto/test_util.h"

namespace e2eid::crypto {
namespace {

using testing::ReadOrEmpty;
using testing::RunOpenssl;
using testing::TempDir;

Bytes Concat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

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

// ---- the SPKI fast path (crypto/der.h instead of OpenSSL's decoder) ----

// DER of i2d_PUBKEY: what ToDer() returned before it cached the encoding.
Bytes I2dPubkey(const EVP_PKEY* pkey) {
  unsigned char* raw = nullptr;
  const int len = i2d_PUBKEY(pkey, &raw);
  OpenSslBufferPtr owned(raw);
  EXPECT_GT(len, 0);
  return len > 0 ? Bytes(raw, raw + len) : Bytes();
}

// The X509_PUBKEY of a fresh certificate set with SetX509Pubkey, re-encoded.
Bytes ViaX509Pubkey(const PublicKey& key) {
  X509Ptr cert(X509_new());
  EXPECT_TRUE(cert);
  auto set = key.SetX509Pubkey(X509_get_X509_PUBKEY(cert.get()));
  EXPECT_TRUE(set) << set.error().ToString();
  unsigned char* raw = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &raw);
  OpenSslBufferPtr owned(raw);
  EXPECT_GT(len, 0);
  return len > 0 ? Bytes(raw, raw + len) : Bytes();
}

TEST(PublicKeyFastPathTest, MatchesTheOpensslCliForEveryKeyType) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const char* const algorithms[] = {
      "-algorithm ed25519",
      "-algorithm EC -pkeyopt ec_paramgen_curve:P-256",
      "-algorithm EC -pkeyopt ec_paramgen_curve:P-384",
      "-algorithm EC -pkeyopt ec_paramgen_curve:P-521",
      "-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
      "-algorithm RSA -pkeyopt rsa_keygen_bits:3072 -pkeyopt rsa_keygen_pubexp:4294967295",
  };
  int i = 0;
  for (const char* alg : algorithms) {
    SCOPED_TRACE(alg);
    const std::string name = "k" + std::to_string(i++);
    OpensslKey(dir, name + ".pem", alg);
    ASSERT_EQ(RunOpenssl("pkey -in " + dir.Path(name + ".pem") + " -pubout -out " +
                         dir.Path(name + ".pub")),
              0);
    ASSERT_EQ(RunOpenssl("pkey -pubin -in " + dir.Path(name + ".pub") + " -outform DER -out " +
                         dir.Path(name + ".der")),
              0);
    const std::string cli = ReadOrEmpty(dir.Path(name + ".der"));
    ASSERT_FALSE(cli.empty());
    const Bytes cli_der(cli.begin(), cli.end());

    auto from_der = PublicKey::FromDer(cli_der);
    ASSERT_TRUE(from_der) << from_der.error().ToString();
    EXPECT_EQ(*from_der->ToDer(), cli_der);
    EXPECT_EQ(I2dPubkey(from_der->get()), cli_der);
    EXPECT_EQ(*from_der->SpkiSha256(), Sha256(cli_der));
    EXPECT_EQ(ViaX509Pubkey(*from_der), cli_der);
    // ToPem() is what the CLI (PEM_write_bio_PUBKEY) writes.
    EXPECT_EQ(*from_der->ToPem(), ReadOrEmpty(dir.Path(name + ".pub")));

    auto priv = PrivateKey::FromPem(ReadOrEmpty(dir.Path(name + ".pem")));
    ASSERT_TRUE(priv) << priv.error().ToString();
    auto from_priv = priv->public_key();
    ASSERT_TRUE(from_priv) << from_priv.error().ToString();
    EXPECT_EQ(*from_priv->ToDer(), cli_der);
    EXPECT_EQ(from_priv->type(), from_der->type());
    EXPECT_TRUE(from_priv->Equals(*from_der));
    EXPECT_EQ(from_priv->bits(), priv->bits());

    auto from_evp = PublicKey::FromEvpPkey(from_der->get());
    ASSERT_TRUE(from_evp) << from_evp.error().ToString();
    EXPECT_EQ(*from_evp->ToDer(), cli_der);
    EXPECT_NE(from_evp->get(), from_der->get());

    PublicKey clone = from_der->Clone();
    EXPECT_EQ(*clone.ToDer(), cli_der);
  }
}

TEST(PublicKeyFastPathTest, PublicKeyOfAPrivateKeyHoldsNoPrivateMaterial) {
  for (KeyType t : kAllTypes) {
    SCOPED_TRACE(std::string(KeyTypeName(t)));
    PrivateKey key = MustGenerate(t);
    auto pub = key.public_key();
    ASSERT_TRUE(pub);
    EXPECT_NE(pub->get(), key.get());
    EXPECT_EQ(*pub->ToDer(), I2dPubkey(key.get()));
    size_t len = 0;
    EXPECT_NE(EVP_PKEY_get_raw_private_key(pub->get(), nullptr, &len), 1);
    for (const char* param : {OSSL_PKEY_PARAM_PRIV_KEY, OSSL_PKEY_PARAM_RSA_D}) {
      BIGNUM* priv = nullptr;
      EXPECT_NE(EVP_PKEY_get_bn_param(pub->get(), param, &priv), 1) << param;
      BN_clear_free(priv);
    }
    ClearOpenSslErrors();
    // Something that needs the private key fails with the copy.
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pub->get(), nullptr));
    ASSERT_TRUE(ctx);
    EXPECT_NE(EVP_PKEY_private_check(ctx.get()), 1);
    ClearOpenSslErrors();
  }
}

TEST(PublicKeyFastPathTest, RefusesPointsOffTheCurve) {
  for (KeyType t : {KeyType::kP256, KeyType::kP384, KeyType::kP521}) {
    SCOPED_TRACE(std::string(KeyTypeName(t)));
    auto pub = MustGenerate(t).public_key();
    ASSERT_TRUE(pub);
    const Bytes good = *pub->ToDer();
    ASSERT_TRUE(PublicKey::FromDer(good));

    Bytes off = good;
    off.back() ^= 0x01;  // y changes: the point leaves the curve
    auto r = PublicKey::FromDer(off);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kBadPublicKey) << r.error().ToString();

    // x = y = 0xff..ff: coordinates not below the field prime.
    Bytes big = good;
    const size_t coords = (pub->bits() + 7) / 8 * 2;
    std::fill(big.end() - static_cast<std::ptrdiff_t>(coords), big.end(), 0xff);
    auto b = PublicKey::FromDer(big);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().code(), ErrorCode::kBadPublicKey) << b.error().ToString();

    // The point at infinity cannot even be written in uncompressed form; 0x00 alone is refused.
  }
}

TEST(PublicKeyFastPathTest, AppliesThePolicyToRsa) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  OpensslKey(dir, "rsa1024.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024");
  ASSERT_EQ(RunOpenssl("pkey -in " + dir.Path("rsa1024.pem") + " -pubout -outform DER -out " +
                       dir.Path("rsa1024.der")),
            0);
  const std::string der = ReadOrEmpty(dir.Path("rsa1024.der"));
  auto r = PublicKey::FromDer(AsBytes(der));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadPublicKey);
  EXPECT_EQ(r.error().detail(), "RSA key too small: 1024 bits, at least 2048 required");

  // An even modulus and e = 3 built by hand are refused too.
  auto rsa = MustGenerate(KeyType::kRsa).public_key();
  ASSERT_TRUE(rsa);
  Bytes even = *rsa->ToDer();
  // ... 02 03 01 00 01 at the end is e = 65537; the byte before the exponent ends n.
  ASSERT_EQ((Bytes(even.end() - 5, even.end())), (Bytes{0x02, 0x03, 0x01, 0x00, 0x01}));
  even[even.size() - 6] ^= 0x01;
  auto e = PublicKey::FromDer(even);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().detail(), "RSA modulus is even");
  Bytes three = *rsa->ToDer();
  three[three.size() - 1] = 0x03;
  three[three.size() - 3] = 0x00;  // e = 0x000003: not minimal, so the decoder path decides
  auto t = PublicKey::FromDer(three);
  EXPECT_FALSE(t);
}

// SEQUENCE { SEQUENCE { alg..., }, BIT STRING key } from parts, for hand-made variants.
Bytes Spki(const Bytes& algorithm_contents, const Bytes& key_bits) {
  Bytes alg = {0x30, static_cast<uint8_t>(algorithm_contents.size())};
  alg.insert(alg.end(), algorithm_contents.begin(), algorithm_contents.end());
  Bytes bits = {0x03};
  const size_t bits_len = key_bits.size() + 1;
  if (bits_len >= 0x80) {
    bits.push_back(0x82);
    bits.push_back(static_cast<uint8_t>(bits_len >> 8));
  }
  bits.push_back(static_cast<uint8_t>(bits_len & 0xff));
  bits.push_back(0x00);
  bits.insert(bits.end(), key_bits.begin(), key_bits.end());
  Bytes body = alg;
  body.insert(body.end(), bits.begin(), bits.end());
  Bytes out = {0x30};
  if (body.size() >= 0x80) {
    out.push_back(0x82);
    out.push_back(static_cast<uint8_t>(body.size() >> 8));
  }
  out.push_back(static_cast<uint8_t>(body.size() & 0xff));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

TEST(PublicKeyFastPathTest, NonCanonicalFormsTakeTheDecoderPath) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // A compressed P-256 point: accepted as before, and ToDer() keeps the compressed form (what
  // i2d_PUBKEY writes for such a key).
  OpensslKey(dir, "ec.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256");
  ASSERT_EQ(RunOpenssl("ec -in " + dir.Path("ec.pem") +
                       " -pubout -conv_form compressed -outform DER -out " + dir.Path("c.der")),
            0);
  const std::string compressed = ReadOrEmpty(dir.Path("c.der"));
  ASSERT_EQ(compressed.size(), 59u);  // 26-byte prefix + 02/03 || x
  auto c = PublicKey::FromDer(AsBytes(compressed));
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->type(), KeyType::kP256);
  EXPECT_EQ(*c->ToDer(), Bytes(compressed.begin(), compressed.end()));
  EXPECT_EQ(I2dPubkey(c->get()), *c->ToDer());
  EXPECT_EQ(ViaX509Pubkey(*c), *c->ToDer());
  auto c2 = PublicKey::FromEvpPkey(c->get());
  ASSERT_TRUE(c2);
  EXPECT_EQ(*c2->ToDer(), *c->ToDer());
  auto full = PrivateKey::FromPem(ReadOrEmpty(dir.Path("ec.pem")));
  ASSERT_TRUE(full);
  EXPECT_TRUE(c->Equals(*full->public_key()));

  // rsaEncryption without the NULL parameters: OpenSSL's decoder accepts it; ToDer() is the
  // canonical encoding with NULL.
  auto rsa = MustGenerate(KeyType::kRsa).public_key();
  ASSERT_TRUE(rsa);
  const Bytes canonical = *rsa->ToDer();
  auto bits = [&] {
    // The BIT STRING contents: after "03 82 01 0f 00" in a 2048-bit SPKI.
    const Bytes marker = {0x03, 0x82, 0x01, 0x0f, 0x00};
    auto it = std::search(canonical.begin(), canonical.end(), marker.begin(), marker.end());
    EXPECT_NE(it, canonical.end());
    return Bytes(it + static_cast<std::ptrdiff_t>(marker.size()), canonical.end());
  }();
  const Bytes rsa_oid = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
  ASSERT_EQ(Spki(Concat(rsa_oid, {0x05, 0x00}), bits), canonical);
  auto no_null = PublicKey::FromDer(Spki(rsa_oid, bits));
  ASSERT_TRUE(no_null) << no_null.error().ToString();
  EXPECT_EQ(*no_null->ToDer(), canonical);
  EXPECT_TRUE(no_null->Equals(*rsa));

  // Ed25519 with (forbidden) NULL parameters: refused, as OpenSSL's decoder does.
  auto ed = MustGenerate(KeyType::kEd25519).public_key();
  ASSERT_TRUE(ed);
  const Bytes ed_der = *ed->ToDer();
  const Bytes ed_key(ed_der.end() - 32, ed_der.end());
  const Bytes ed_oid = {0x06, 0x03, 0x2b, 0x65, 0x70};
  ASSERT_EQ(Spki(ed_oid, ed_key), ed_der);
  EXPECT_FALSE(PublicKey::FromDer(Spki(Concat(ed_oid, {0x05, 0x00}), ed_key)));
  // Wrong key lengths are refused.
  EXPECT_FALSE(PublicKey::FromDer(Spki(ed_oid, Bytes(31, 0x01))));
  EXPECT_FALSE(PublicKey::FromDer(Spki(ed_oid, Bytes(33, 0x01))));
}

TEST(PublicKeyFastPathTest, FromEvpPkeyRefusesExplicitCurveParameters) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(RunOpenssl("ecparam -name prime256v1 -param_enc explicit -genkey -noout -out " +
                       dir.Path("explicit.pem")),
            0);
  const std::string pem = ReadOrEmpty(dir.Path("explicit.pem"));
  auto bio = MemBioOver(pem);
  ASSERT_TRUE(bio);
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio->get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(pkey);
  auto r = PublicKey::FromEvpPkey(pkey.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadPublicKey);
  EXPECT_NE(r.error().detail().find("explicit"), std::string::npos) << r.error().detail();
}

}  // namespace
}  // namespace e2eid::crypto
