#include "ca/authority.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/file.h"
#include "crypto/random.h"
#include "tests/test_util.h"

namespace e2eid::ca {
namespace {

using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

mode_t Mode(const std::string& p) {
  struct stat st;
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

std::string Text(const std::string& cert_path) {
  auto r = RunCommand("openssl x509 -noout -text -in " + ShellQuote(cert_path));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

class AuthorityTest : public ::testing::Test {
 protected:
  Result<InitResult> Init(const std::string& dir, std::string domain = "example.com",
                          crypto::KeySpec spec = {}, std::optional<std::string> pass = {}) {
    InitOptions o;
    o.dir = dir;
    o.domain = std::move(domain);
    o.key_spec = spec;
    o.passphrase = std::move(pass);
    return InitCa(o, clock_, random_);
  }
  SystemClock clock_;
  crypto::SecureRandom random_;
  TempDir tmp_;
};

TEST_F(AuthorityTest, InitCreatesAHierarchyThatOpensslVerifies) {
  auto r = Init(tmp_ / "ca");
  ASSERT_TRUE(r) << r.error().ToString();
  const CaPaths& p = r->paths;
  EXPECT_EQ(Mode(p.root_key), 0600u);
  EXPECT_EQ(Mode(p.intermediate_key), 0600u);
  EXPECT_EQ(Mode(tmp_ / "ca"), 0700u);
  EXPECT_EQ(r->root_fingerprint.size(), 64u);

  auto v = RunCommand("openssl verify -CAfile " + ShellQuote(p.root_cert) + " " +
                      ShellQuote(p.intermediate_cert));
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_NE(v.output.find(": OK"), std::string::npos) << v.output;

  const std::string root = Text(p.root_cert);
  EXPECT_NE(root.find("X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:1"),
            std::string::npos)
      << root;
  EXPECT_NE(root.find("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
            std::string::npos);
  EXPECT_NE(root.find("X509v3 Subject Key Identifier"), std::string::npos);
  EXPECT_NE(root.find("ecdsa-with-SHA256"), std::string::npos);

  const std::string inter = Text(p.intermediate_cert);
  EXPECT_NE(inter.find("X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0"),
            std::string::npos)
      << inter;
  EXPECT_NE(inter.find("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
            std::string::npos);
  EXPECT_NE(inter.find("X509v3 Authority Key Identifier"), std::string::npos);
  EXPECT_NE(inter.find("X509v3 Subject Key Identifier"), std::string::npos);
  EXPECT_NE(inter.find("X509v3 Name Constraints: critical\n                Permitted:\n"
                       "                  URI:example.com"),
            std::string::npos)
      << inter;

  // The chain file is the intermediate followed by the root.
  EXPECT_EQ(*ReadFile(p.chain), *ReadFile(p.intermediate_cert) + *ReadFile(p.root_cert));
}

TEST_F(AuthorityTest, WithoutDomainThereAreNoNameConstraints) {
  auto r = Init(tmp_ / "ca", "");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Text(r->paths.intermediate_cert).find("Name Constraints"), std::string::npos);
}

TEST_F(AuthorityTest, InitTwiceRefusesAndKeepsTheOldCa) {
  auto first = Init(tmp_ / "ca");
  ASSERT_TRUE(first);
  const std::string old_key = *ReadFile(first->paths.intermediate_key);
  auto second = Init(tmp_ / "ca");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(second.error().detail().find("root.pem already exists"), std::string::npos)
      << second.error().detail();
  EXPECT_EQ(*ReadFile(first->paths.intermediate_key), old_key);
}

TEST_F(AuthorityTest, EveryKeyTypeVerifies) {
  for (const char* name : {"p384", "p521", "ed25519", "rsa2048"}) {
    const std::string dir = tmp_ / name;
    auto r = Init(dir, "example.com", *crypto::ParseKeySpec(name));
    ASSERT_TRUE(r) << name << ": " << r.error().ToString();
    auto v = RunCommand("openssl verify -CAfile " + ShellQuote(r->paths.root_cert) + " " +
                        ShellQuote(r->paths.intermediate_cert));
    EXPECT_EQ(v.exit_code, 0) << name << ": " << v.output;
    ASSERT_TRUE(CertificateAuthority::Load(r->paths, std::nullopt)) << name;
  }
}

TEST_F(AuthorityTest, PassphraseEncryptsKeysAndIsRequiredToLoad) {
  auto r = Init(tmp_ / "ca", "example.com", {}, "correct horse battery staple");
  ASSERT_TRUE(r);
  EXPECT_NE(ReadFile(r->paths.root_key)
                ->find("BEGIN ENCRYPTED PRIVATE"
                       " KEY"),
            std::string::npos);
  EXPECT_NE(ReadFile(r->paths.intermediate_key)
                ->find("BEGIN ENCRYPTED PRIVATE"
                       " KEY"),
            std::string::npos);
  EXPECT_TRUE(CertificateAuthority::Load(r->paths, "correct horse battery staple"));
  auto wrong = CertificateAuthority::Load(r->paths, "wrong");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(wrong.error().detail().find("intermediate.key"), std::string::npos);
  auto none = CertificateAuthority::Load(r->paths, std::nullopt);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kInvalidArgument);
  // The openssl CLI decrypts it with the same passphrase (standard PKCS#8).
  auto cli = RunCommand("openssl pkey -noout -in " + ShellQuote(r->paths.root_key) +
                        " -passin pass:" + ShellQuote("correct horse battery staple"));
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
}

TEST_F(AuthorityTest, RejectsBadOptionsBeforeWritingAnything) {
  for (const char* domain : {"Example.com", "exa mple.com", "-bad.com", "a..b", "x,URI:evil.com"}) {
    auto r = Init(tmp_ / "bad", domain);
    ASSERT_FALSE(r) << domain;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << domain;
  }
  EXPECT_EQ(Init(tmp_ / "bad", "example.com", {}, std::string()).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(PathExists(tmp_ / "bad"));
}

TEST_F(AuthorityTest, LoadDetectsInconsistentFiles) {
  auto a = Init(tmp_ / "a");
  auto b = Init(tmp_ / "b");
  ASSERT_TRUE(a && b);
  // Intermediate key from another CA.
  CaPaths mixed = a->paths;
  mixed.intermediate_key = b->paths.intermediate_key;
  auto r1 = CertificateAuthority::Load(mixed, std::nullopt);
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r1.error().detail().find("does not match"), std::string::npos);
  // Intermediate signed by another root.
  mixed = a->paths;
  mixed.root_cert = b->paths.root_cert;
  auto r2 = CertificateAuthority::Load(mixed, std::nullopt);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().detail().find("is not signed by"), std::string::npos);
  // Garbage PEM and a missing file.
  ASSERT_TRUE(WriteNewFile(tmp_ / "garbage.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n", 0644));
  mixed = a->paths;
  mixed.root_cert = tmp_ / "garbage.pem";
  EXPECT_EQ(CertificateAuthority::Load(mixed, std::nullopt).error().code(), ErrorCode::kMalformed);
  mixed.root_cert = tmp_ / "missing.pem";
  EXPECT_EQ(CertificateAuthority::Load(mixed, std::nullopt).error().code(), ErrorCode::kNotFound);
}

TEST_F(AuthorityTest, LoadedChainIsIntermediateThenRoot) {
  auto r = Init(tmp_ / "ca");
  ASSERT_TRUE(r);
  auto ca = CertificateAuthority::Load(r->paths, std::nullopt);
  ASSERT_TRUE(ca) << ca.error().ToString();
  EXPECT_EQ(ca->chain_pem(), *ReadFile(r->paths.chain));
  EXPECT_GT(ca->intermediate_not_after(), SystemClock().Now() + std::chrono::hours(24 * 365));
}

TEST(RandomSerialTest, SixteenBytesNeverZero) {
  crypto::SecureRandom random;
  auto s = RandomSerial(random);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->size(), 16u);
}

}  // namespace
}  // namespace e2eid::ca
