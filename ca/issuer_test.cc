#include "ca/issuer.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <mutex>
#include <set>
#include <thread>

#include "ca/x509.h"
#include "core/file.h"
#include "crypto/random.h"
#include "tests/test_util.h"

namespace e2eid::ca {
namespace {

using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

// A registry in memory that can also be told to refuse the next N reservations.
class MemorySerials final : public SerialRegistry {
 public:
  Status Reserve(const std::string& serial_hex) override {
    std::lock_guard lock(mu_);
    ++calls_;
    if (refuse_next_ > 0) {
      --refuse_next_;
      return Fail(Error(refuse_code_, "refused by test"));
    }
    if (!used_.insert(serial_hex).second) return Fail(Error::AlreadyExists("serial used"));
    return Ok();
  }
  void RefuseNext(int n, ErrorCode code) {
    refuse_next_ = n;
    refuse_code_ = code;
  }
  std::set<std::string> used() {
    std::lock_guard lock(mu_);
    return used_;
  }
  int calls() const { return calls_; }

 private:
  std::mutex mu_;
  std::set<std::string> used_;
  int refuse_next_ = 0;
  ErrorCode refuse_code_ = ErrorCode::kAlreadyExists;
  int calls_ = 0;
};

class IssuerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InitOptions o;
    o.dir = tmp_ / "ca";
    o.domain = "example.com";
    auto r = InitCa(o, clock_, random_);
    ASSERT_TRUE(r) << r.error().ToString();
    paths_ = r->paths;
    auto ca = CertificateAuthority::Load(paths_, std::nullopt);
    ASSERT_TRUE(ca) << ca.error().ToString();
    ca_.emplace(std::move(*ca));
    issuer_.emplace(*ca_, ValidityPolicy{},
                    IssuerUrls{"http://ca.example.com/crl", "http://ca.example.com/ocsp", ""},
                    serials_, clock_, random_);
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
    ASSERT_TRUE(key);
    key_.emplace(std::move(*key));
    auto pub = key_->public_key();
    ASSERT_TRUE(pub);
    pub_.emplace(std::move(*pub));
  }

  LeafRequest Request() const {
    LeafRequest r;
    r.public_key = &*pub_;
    r.subject = {{"O", "example.com"}, {"CN", "Alice Smith"}};
    r.uris = {"https://example.com/devices/1", "https://example.com/users/alice"};
    r.dns_names = {"device1.example.com"};
    return r;
  }

  // Writes the leaf and verifies it against the hierarchy with the openssl CLI.
  testing::CommandResult Verify(const IssuedCertificate& cert, const std::string& extra = "") {
    const std::string leaf = tmp_ / ("leaf-" + cert.serial_hex + ".pem");
    EXPECT_TRUE(WriteFileAtomic(leaf, cert.pem, 0644));
    return RunCommand("openssl verify " + extra + " -CAfile " + ShellQuote(paths_.root_cert) +
                      " -untrusted " + ShellQuote(paths_.intermediate_cert) + " " +
                      ShellQuote(leaf));
  }

  std::string Text(const IssuedCertificate& cert) {
    const std::string leaf = tmp_ / ("text-" + cert.serial_hex + ".pem");
    EXPECT_TRUE(WriteFileAtomic(leaf, cert.pem, 0644));
    return RunCommand("openssl x509 -noout -text -in " + ShellQuote(leaf)).output;
  }

  TempDir tmp_;
  SystemClock clock_;
  crypto::SecureRandom random_;
  MemorySerials serials_;
  CaPaths paths_;
  std::optional<CertificateAuthority> ca_;
  std::optional<Issuer> issuer_;
  std::optional<crypto::PrivateKey> key_;
  std::optional<crypto::PublicKey> pub_;
};

// The names in a certificate's subjectAltName, as "DNS:x" / "URI:y", in order.
std::vector<std::string> SanOf(const std::string& pem) {
  std::vector<std::string> out;
  auto cert = CertificateFromPem(pem);
  if (!cert) return out;
  crypto::GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    int type = 0;
    const auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(gn, &type));
    std::string s(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                  ASN1_STRING_length(value));
    out.push_back((type == GEN_DNS ? "DNS:" : type == GEN_URI ? "URI:" : "?:") + s);
  }
  return out;
}

TEST_F(IssuerTest, LeafVerifiesWithOpensslAndCarriesExactlyTheRequestedNames) {
  auto cert = issuer_->Issue(Request());
  ASSERT_TRUE(cert) << cert.error().ToString();
  auto v = Verify(*cert);
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_EQ(SanOf(cert->pem), (std::vector<std::string>{"DNS:device1.example.com",
                                                        "URI:https://example.com/devices/1",
                                                        "URI:https://example.com/users/alice"}));
  const std::string text = Text(*cert);
  EXPECT_NE(text.find("Subject: O = example.com, CN = Alice Smith"), std::string::npos) << text;
  EXPECT_NE(text.find("X509v3 Key Usage: critical\n                Digital Signature\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("X509v3 Extended Key Usage: \n                TLS Web Client Authentication\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("X509v3 Basic Constraints: critical\n                CA:FALSE"),
            std::string::npos);
  EXPECT_NE(text.find("URI:http://ca.example.com/crl"), std::string::npos);
  EXPECT_NE(text.find("OCSP - URI:http://ca.example.com/ocsp"), std::string::npos);
  EXPECT_NE(text.find("X509v3 Subject Key Identifier"), std::string::npos);
  EXPECT_NE(text.find("X509v3 Authority Key Identifier"), std::string::npos);
  // The chain is leaf, intermediate, root.
  EXPECT_EQ(cert->chain_pem, cert->pem + ca_->chain_pem());
  auto chain_verify = RunCommand("openssl verify -CAfile " + ShellQuote(paths_.root_cert) +
                                 " -untrusted " + ShellQuote(paths_.chain) + " " +
                                 ShellQuote(tmp_ / ("leaf-" + cert->serial_hex + ".pem")));
  EXPECT_EQ(chain_verify.exit_code, 0) << chain_verify.output;
}

TEST_F(IssuerTest, NameConstraintsRejectUrisOfOtherHosts) {
  LeafRequest r = Request();
  r.uris = {"https://evil.org/devices/1"};
  auto cert = issuer_->Issue(r);
  ASSERT_TRUE(cert);
  auto v = Verify(*cert);
  EXPECT_NE(v.exit_code, 0);
  EXPECT_NE(v.output.find("permitted subtree violation"), std::string::npos) << v.output;
}

TEST_F(IssuerTest, ValidityBeyondMaxIsClamped) {
  LeafRequest r = Request();
  const TimePoint now = clock_.Now();
  r.not_before = now;
  r.not_after = now + std::chrono::hours(24 * 90);
  auto cert = issuer_->Issue(r);
  ASSERT_TRUE(cert);
  EXPECT_EQ(cert->not_after - cert->not_before, std::chrono::hours(24 * 7));
  // The certificate itself says so, not only the returned struct.
  auto parsed = CertificateFromPem(cert->pem);
  ASSERT_TRUE(parsed);
  auto nb = crypto::Asn1TimeToTimePoint(X509_get0_notBefore(parsed->get()));
  auto na = crypto::Asn1TimeToTimePoint(X509_get0_notAfter(parsed->get()));
  ASSERT_TRUE(nb && na);
  EXPECT_EQ(*na - *nb, std::chrono::hours(24 * 7));
  EXPECT_LE(std::chrono::abs(*nb - now), std::chrono::seconds(5));
}

TEST_F(IssuerTest, SerialsAreRandomPositiveAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    auto cert = issuer_->Issue(Request());
    ASSERT_TRUE(cert);
    EXPECT_TRUE(seen.insert(cert->serial_hex).second);
    EXPECT_GE(cert->serial_hex.size(), 16u);
    EXPECT_LE(cert->serial_hex.size(), 32u);
    auto parsed = CertificateFromPem(cert->pem);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*SerialHex(parsed->get()), cert->serial_hex);
    EXPECT_EQ(ASN1_STRING_type(X509_get0_serialNumber(parsed->get())), V_ASN1_INTEGER);
  }
  EXPECT_EQ(serials_.used(), seen);
}

TEST_F(IssuerTest, SerialCollisionDrawsAnotherAndOtherErrorsAbort) {
  serials_.RefuseNext(2, ErrorCode::kAlreadyExists);
  auto ok = issuer_->Issue(Request());
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(serials_.calls(), 3);

  serials_.RefuseNext(10, ErrorCode::kAlreadyExists);
  auto exhausted = issuer_->Issue(Request());
  ASSERT_FALSE(exhausted);
  EXPECT_EQ(exhausted.error().code(), ErrorCode::kAlreadyExists);

  serials_.RefuseNext(1, ErrorCode::kStore);
  auto store_down = issuer_->Issue(Request());
  ASSERT_FALSE(store_down);
  EXPECT_EQ(store_down.error().code(), ErrorCode::kStore);
}

TEST_F(IssuerTest, ConcurrentIssuanceNeverReusesASerial) {
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> serials;
  int failures = 0;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto cert = issuer_->Issue(Request());
        std::lock_guard lock(mu);
        if (!cert)
          ++failures;
        else
          serials.insert(cert->serial_hex);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(serials.size(), 80u);
}

TEST_F(IssuerTest, EverySupportedSubjectKeyType) {
  for (auto type : {crypto::KeyType::kEd25519, crypto::KeyType::kP384, crypto::KeyType::kP521,
                    crypto::KeyType::kRsa}) {
    auto key = crypto::PrivateKey::Generate(type, 2048);
    ASSERT_TRUE(key);
    auto pub = key->public_key();
    ASSERT_TRUE(pub);
    LeafRequest r = Request();
    r.public_key = &*pub;
    r.profile = Profile::kTlsServer;
    auto cert = issuer_->Issue(r);
    ASSERT_TRUE(cert) << crypto::KeyTypeName(type) << ": " << cert.error().ToString();
    auto v = Verify(*cert, "-purpose sslserver");
    EXPECT_EQ(v.exit_code, 0) << crypto::KeyTypeName(type) << ": " << v.output;
  }
}

TEST_F(IssuerTest, OcspResponderProfile) {
  LeafRequest r;
  r.public_key = &*pub_;
  r.subject = {{"O", "example.com"}, {"CN", "e2eid OCSP responder"}};
  r.profile = Profile::kOcspResponder;
  auto cert = issuer_->Issue(r);
  ASSERT_TRUE(cert) << cert.error().ToString();
  const std::string text = Text(*cert);
  EXPECT_NE(text.find("OCSP Signing"), std::string::npos) << text;
  EXPECT_NE(text.find("OCSP No Check"), std::string::npos) << text;
  EXPECT_EQ(text.find("CRL Distribution"), std::string::npos);
  EXPECT_EQ(Verify(*cert, "-purpose ocsphelper").exit_code, 0);
}

TEST_F(IssuerTest, RejectsBadRequests) {
  LeafRequest none = Request();
  none.public_key = nullptr;
  EXPECT_EQ(issuer_->Issue(none).error().code(), ErrorCode::kInvalidArgument);

  LeafRequest no_names = Request();
  no_names.uris.clear();
  no_names.dns_names.clear();
  EXPECT_EQ(issuer_->Issue(no_names).error().code(), ErrorCode::kInvalidArgument);

  LeafRequest space = Request();
  space.uris = {"https://example.com/a b"};
  EXPECT_EQ(issuer_->Issue(space).error().code(), ErrorCode::kMalformed);

  LeafRequest non_ascii = Request();
  non_ascii.dns_names = {"bücher.example.com"};
  EXPECT_EQ(issuer_->Issue(non_ascii).error().code(), ErrorCode::kMalformed);

  LeafRequest long_cn = Request();
  long_cn.subject = {{"CN", std::string(65, 'a')}};
  EXPECT_EQ(issuer_->Issue(long_cn).error().code(), ErrorCode::kMalformed);

  LeafRequest bad_attr = Request();
  bad_attr.subject = {{"emailAddress", "a@example.com"}};
  EXPECT_EQ(issuer_->Issue(bad_attr).error().code(), ErrorCode::kMalformed);

  LeafRequest inverted = Request();
  inverted.not_before = clock_.Now() + std::chrono::hours(2);
  inverted.not_after = clock_.Now() + std::chrono::hours(1);
  EXPECT_EQ(issuer_->Issue(inverted).error().code(), ErrorCode::kMalformed);
  // None of the refused requests used a serial.
  EXPECT_TRUE(serials_.used().empty());
}

TEST_F(IssuerTest, EmptySubjectMakesSanCritical) {
  LeafRequest r = Request();
  r.subject.clear();
  auto cert = issuer_->Issue(r);
  ASSERT_TRUE(cert);
  EXPECT_NE(Text(*cert).find("X509v3 Subject Alternative Name: critical"), std::string::npos);
  EXPECT_EQ(Verify(*cert).exit_code, 0);
}

TEST_F(IssuerTest, DisplayNameAttribute) {
  auto name = BuildName({{"O", "example.com"}, {"displayName", "Alice Smith"}});
  ASSERT_TRUE(name) << name.error().ToString();
  EXPECT_EQ(X509_NAME_entry_count(name->get()), 2);
}

TEST_F(IssuerTest, LeafCarriesTheKeyAndTheIssuerKeyId) {
  // Every key type, plus a P-256 key kept with a compressed point (the decoder path of FromDer).
  std::vector<crypto::PublicKey> keys;
  for (auto type : {crypto::KeyType::kEd25519, crypto::KeyType::kP256, crypto::KeyType::kP384,
                    crypto::KeyType::kP521, crypto::KeyType::kRsa}) {
    auto key = crypto::PrivateKey::Generate(type, 2048);
    ASSERT_TRUE(key);
    auto pub = key->public_key();
    ASSERT_TRUE(pub);
    keys.push_back(std::move(*pub));
  }
  {
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
    ASSERT_TRUE(key);
    unsigned char* raw = nullptr;
    EVP_PKEY_set_utf8_string_param(key->get(), "point-format", "compressed");
    const int len = i2d_PUBKEY(key->get(), &raw);
    crypto::OpenSslBufferPtr owned(raw);
    ASSERT_EQ(len, 59);  // compressed
    auto pub = crypto::PublicKey::FromDer(std::span<const uint8_t>(raw, static_cast<size_t>(len)));
    ASSERT_TRUE(pub) << pub.error().ToString();
    keys.push_back(std::move(*pub));
  }
  const ASN1_OCTET_STRING* inter_skid = X509_get0_subject_key_id(ca_->intermediate());
  ASSERT_NE(inter_skid, nullptr);
  const std::string inter_skid_hex = HexEncode(std::span<const uint8_t>(
      ASN1_STRING_get0_data(inter_skid), static_cast<size_t>(ASN1_STRING_length(inter_skid))));
  for (const auto& pub : keys) {
    SCOPED_TRACE(std::string(crypto::KeyTypeName(pub.type())));
    LeafRequest r = Request();
    r.public_key = &pub;
    r.profile = Profile::kTlsServer;
    auto cert = issuer_->Issue(r);
    ASSERT_TRUE(cert) << cert.error().ToString();
    EXPECT_EQ(cert->issuer_key_id_hex, inter_skid_hex);
    EXPECT_EQ(cert->spki_sha256_hex, HexEncode(*pub.SpkiSha256()));
    auto parsed = CertificateFromDer(cert->der);
    ASSERT_TRUE(parsed);
    // The leaf's SubjectPublicKeyInfo is the key's DER, and it decodes to the same key.
    unsigned char* raw = nullptr;
    const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(parsed->get()), &raw);
    crypto::OpenSslBufferPtr owned(raw);
    ASSERT_GT(len, 0);
    EXPECT_EQ(Bytes(raw, raw + len), *pub.ToDer());
    EVP_PKEY* leaf_key = X509_get0_pubkey(parsed->get());
    ASSERT_NE(leaf_key, nullptr);
    EXPECT_EQ(EVP_PKEY_eq(leaf_key, pub.get()), 1);
    // AKI = the intermediate's SKI; SKI = SHA-1 of the subjectPublicKey bits (RFC 5280 method 1).
    const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(parsed->get());
    ASSERT_NE(aki, nullptr);
    EXPECT_EQ(HexEncode(std::span<const uint8_t>(ASN1_STRING_get0_data(aki),
                                                 static_cast<size_t>(ASN1_STRING_length(aki)))),
              cert->issuer_key_id_hex);
    const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(parsed->get());
    unsigned char sha1[20];
    ASSERT_NE(
        SHA1(ASN1_STRING_get0_data(bits), static_cast<size_t>(ASN1_STRING_length(bits)), sha1),
        nullptr);
    const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(parsed->get());
    ASSERT_NE(skid, nullptr);
    EXPECT_EQ(
        Bytes(ASN1_STRING_get0_data(skid), ASN1_STRING_get0_data(skid) + ASN1_STRING_length(skid)),
        Bytes(sha1, sha1 + 20));
    auto v = Verify(*cert, "-purpose sslserver");
    EXPECT_EQ(v.exit_code, 0) << v.output;
  }
}

// SetBasics with a PublicKey (cached SPKI) makes the same certificate, byte for byte, as
// SetBasics with an EVP_PKEY (X509_set_pubkey). Ed25519 signatures are deterministic, so two
// signed certificates can be compared whole.
TEST(SetBasicsTest, CachedSpkiMakesTheSameCertificateAsX509SetPubkey) {
  auto signer = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_TRUE(signer);
  auto name = BuildName({{"O", "example.com"}, {"CN", "Test"}});
  ASSERT_TRUE(name);
  const uint8_t serial[] = {0x01, 0x02, 0x03};
  const TimePoint now = FromUnix(1'700'000'000);
  for (auto type : {crypto::KeyType::kEd25519, crypto::KeyType::kP256, crypto::KeyType::kP384,
                    crypto::KeyType::kP521, crypto::KeyType::kRsa}) {
    SCOPED_TRACE(std::string(crypto::KeyTypeName(type)));
    auto key = crypto::PrivateKey::Generate(type, 2048);
    ASSERT_TRUE(key);
    auto pub = key->public_key();
    ASSERT_TRUE(pub);
    auto make = [&](bool cached) -> Bytes {
      crypto::X509Ptr cert(X509_new());
      EXPECT_TRUE(cert);
      auto set = cached ? SetBasics(cert.get(), serial, name->get(), name->get(), now,
                                    now + std::chrono::hours(1), *pub)
                        : SetBasics(cert.get(), serial, name->get(), name->get(), now,
                                    now + std::chrono::hours(1), pub->get());
      EXPECT_TRUE(set) << set.error().ToString();
      EXPECT_TRUE(AddConfExtension(cert.get(), nullptr, NID_subject_key_identifier, "hash"));
      EXPECT_TRUE(SignCertificate(cert.get(), *signer));
      auto der = CertificateToDer(cert.get());
      EXPECT_TRUE(der);
      return der ? *der : Bytes();
    };
    const Bytes cached = make(true);
    ASSERT_FALSE(cached.empty());
    EXPECT_EQ(cached, make(false));
  }
}

}  // namespace
}  // namespace e2eid::ca
