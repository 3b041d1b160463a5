#include "cli/enrol_cert.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli/enrol_test_util.h"
#include "core/file.h"
#include "tests/test_util.h"

namespace e2eid::cli {
namespace {

using e2eid::testing::RunCommand;
using e2eid::testing::ShellQuote;
using e2eid::testing::TempDir;

WireIdentity Alice() {
  return WireIdentity{"Alice Smith", "example.com", "alice", "bxwt3FqLSiudng8eLTxLWg", "abc123"};
}

std::string Asn1Text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     ASN1_STRING_length(s));
}

class CsrTest : public ::testing::TestWithParam<crypto::KeyType> {};

TEST_P(CsrTest, SubjectSanAndSignature) {
  auto key = crypto::PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key);
  auto der = BuildDeviceCsr(*key, Alice());
  ASSERT_TRUE(der) << der.error().ToString();

  const unsigned char* p = der->data();
  crypto::X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size())));
  ASSERT_TRUE(req);
  EXPECT_EQ(p, der->data() + der->size());
  // Signed by the device key.
  EXPECT_EQ(X509_REQ_verify(req.get(), key->get()), 1);
  auto pub = key->public_key();
  ASSERT_TRUE(pub);
  auto req_pub = crypto::PublicKey::FromEvpPkey(X509_REQ_get0_pubkey(req.get()));
  ASSERT_TRUE(req_pub);
  EXPECT_TRUE(req_pub->Equals(*pub));

  // Subject: exactly O and displayName (UTF8String), no CN.
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  ASSERT_EQ(X509_NAME_entry_count(subject), 2);
  EXPECT_EQ(X509_NAME_get_index_by_NID(subject, NID_commonName, -1), -1);
  const int o = X509_NAME_get_index_by_NID(subject, NID_organizationName, -1);
  ASSERT_GE(o, 0);
  EXPECT_EQ(Asn1Text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, o))), "example.com");
  crypto::Asn1ObjectPtr display(OBJ_txt2obj("2.16.840.1.113730.3.1.241", 1));
  const int d = X509_NAME_get_index_by_OBJ(subject, display.get(), -1);
  ASSERT_GE(d, 0);
  const ASN1_STRING* dn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, d));
  EXPECT_EQ(ASN1_STRING_type(dn), V_ASN1_UTF8STRING);
  EXPECT_EQ(Asn1Text(dn), "Alice Smith");

  // Exactly one requested extension: the SAN with the two URIs, in order.
  crypto::X509ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
  ASSERT_TRUE(exts);
  ASSERT_EQ(sk_X509_EXTENSION_num(exts.get()), 1);
  crypto::GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts.get(), 0))));
  ASSERT_TRUE(names);
  ASSERT_EQ(sk_GENERAL_NAME_num(names.get()), 2);
  std::vector<std::string> uris;
  for (int i = 0; i < 2; ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    ASSERT_EQ(gn->type, GEN_URI);
    uris.push_back(Asn1Text(gn->d.uniformResourceIdentifier));
  }
  EXPECT_EQ(uris, (std::vector<std::string>{"wireapp://bxwt3FqLSiudng8eLTxLWg!abc123@example.com",
                                            "wireapp://%40alice@example.com"}));
}

TEST_P(CsrTest, OpensslCliVerifiesAndShowsTheNames) {
  auto key = crypto::PrivateKey::Generate(GetParam());
  ASSERT_TRUE(key);
  auto der = BuildDeviceCsr(*key, Alice());
  ASSERT_TRUE(der);
  TempDir tmp;
  ASSERT_TRUE(WriteNewFile(tmp / "csr.der", AsString(*der), 0600));
  const auto r = RunCommand("openssl req -inform DER -in " + ShellQuote(tmp / "csr.der") +
                            " -noout -text -verify");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("verify OK"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("O = example.com"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("URI:wireapp://bxwt3FqLSiudng8eLTxLWg!abc123@example.com, "
                          "URI:wireapp://%40alice@example.com"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("CN ="), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, CsrTest,
                         ::testing::Values(crypto::KeyType::kP256, crypto::KeyType::kP384,
                                           crypto::KeyType::kP521, crypto::KeyType::kEd25519),
                         [](const auto& info) {
                           return std::string(crypto::KeyTypeName(info.param));
                         });

TEST(EnrolCertTest, CsrRefusesRsaKeys) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kRsa, 2048);
  ASSERT_TRUE(key);
  auto der = BuildDeviceCsr(*key, Alice());
  ASSERT_FALSE(der);
  EXPECT_EQ(der.error().code(), ErrorCode::kInvalidArgument);
}

class IssuedChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
    ASSERT_TRUE(key);
    device_.emplace(std::move(*key));
    auto pub = device_->public_key();
    ASSERT_TRUE(pub);
    device_pub_.emplace(std::move(*pub));
  }
  std::string Issue(const std::vector<std::string>& uris, EVP_PKEY* key = nullptr) {
    const uint8_t serial[] = {0x8f, 0x01, 0x02};
    return testing::IssueLeafPem(ca_, key != nullptr ? key : device_->get(), uris, serial, nb_,
                                 nb_ + std::chrono::hours(90 * 24));
  }
  testing::TestCa ca_ = testing::MakeTestCa();
  std::optional<crypto::PrivateKey> device_;
  std::optional<crypto::PublicKey> device_pub_;
  const TimePoint nb_ = FromUnix(1'700'000'000);
  const WireIdentity id_ = Alice();
};

TEST_F(IssuedChainTest, AcceptsTheExpectedLeafAndDescribesIt) {
  const std::string pem = Issue({id_.ClientIdUri(), id_.HandleUri()});
  auto issued = CheckIssuedChain(pem, *device_pub_, id_);
  ASSERT_TRUE(issued) << issued.error().ToString();
  EXPECT_EQ(issued->serial_hex, "8f0102");
  EXPECT_EQ(issued->not_before, nb_);
  EXPECT_EQ(issued->not_after, nb_ + std::chrono::hours(90 * 24));
  EXPECT_EQ(issued->chain_pem, pem);
  EXPECT_EQ(pem.find(issued->leaf_pem), 0u);
  EXPECT_LT(issued->leaf_pem.size(), pem.size());
  // ARI id: base64url(AKI keyid) "." base64url(00 8f 01 02) (DER needs the leading zero).
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(ca_.cert.get());
  ASSERT_NE(ski, nullptr);
  const Bytes aki(ASN1_STRING_get0_data(ski), ASN1_STRING_get0_data(ski) + ASN1_STRING_length(ski));
  EXPECT_EQ(issued->ari_cert_id, Base64UrlEncode(aki) + ".AI8BAg");
}

TEST_F(IssuedChainTest, AcceptsPercentEncodedBang) {
  std::string client = id_.ClientIdUri();
  client.replace(client.find('!'), 1, "%21");
  EXPECT_TRUE(CheckIssuedChain(Issue({id_.HandleUri(), client}), *device_pub_, id_));
}

TEST_F(IssuedChainTest, RefusesOtherKeysAndNames) {
  auto other = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
  ASSERT_TRUE(other);
  auto wrong_key = CheckIssuedChain(Issue({id_.ClientIdUri(), id_.HandleUri()}, other->get()),
                                    *device_pub_, id_);
  ASSERT_FALSE(wrong_key);
  EXPECT_EQ(wrong_key.error().code(), ErrorCode::kBadPublicKey);

  for (const auto& uris : std::vector<std::vector<std::string>>{
           {id_.ClientIdUri()},
           {id_.ClientIdUri(), id_.HandleUri(), "wireapp://%40mallory@example.com"},
           {id_.ClientIdUri(), "wireapp://%40mallory@example.com"},
           {"wireapp://bxwt3FqLSiudng8eLTxLWg!ffff@example.com", id_.HandleUri()}}) {
    auto r = CheckIssuedChain(Issue(uris), *device_pub_, id_);
    ASSERT_FALSE(r) << uris.size();
    EXPECT_EQ(r.error().code(), ErrorCode::kRejectedIdentifier);
  }
  auto garbage = CheckIssuedChain("not a chain", *device_pub_, id_);
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code(), ErrorCode::kMalformed);
}

TEST(EnrolCertTest, ParsePemChainReadsEveryCertificate) {
  testing::TestCa ca = testing::MakeTestCa();
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_TRUE(key);
  const uint8_t serial[] = {0x05};
  const std::string pem =
      testing::IssueLeafPem(ca, key->get(), {"wireapp://x"}, serial, FromUnix(0), FromUnix(100));
  auto chain = ParsePemChain(pem);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->size(), 2u);
  EXPECT_FALSE(ParsePemChain(""));
  EXPECT_FALSE(ParsePemChain("-----BEGIN CERTIFICATE-----\nAAAA\n"));
}

TEST(EnrolCertTest, ParseRenewalInfo) {
  auto w = ParseRenewalInfo(
      R"({"suggestedWindow":{"start":"2025-01-02T00:00:00Z","end":"2025-01-03T00:00:00Z"},)"
      R"("explanationURL":"https://example.com/why"})");
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_EQ(FormatRfc3339(w->start), "2025-01-02T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(w->end), "2025-01-03T00:00:00Z");
  for (const char* bad : {"{}", "[]", R"({"suggestedWindow":{"start":"x","end":"y"}})",
                          R"({"suggestedWindow":{"start":"2025-01-03T00:00:00Z",)"
                          R"("end":"2025-01-02T00:00:00Z"}})"}) {
    EXPECT_FALSE(ParseRenewalInfo(bad)) << bad;
  }
}

TEST(EnrolCertTest, RenewalIsDueAtTwoThirdsOrInTheAriWindowOrWhenForced) {
  const TimePoint nb = FromUnix(0);
  const TimePoint na = FromUnix(90);  // 2/3 at 60
  auto at = [&](int64_t now, std::optional<SuggestedWindow> ari = std::nullopt,
                bool force = false) { return DecideRenewal(FromUnix(now), nb, na, ari, force); };
  EXPECT_FALSE(at(59).due);
  EXPECT_EQ(at(59).renew_at, FromUnix(60));
  EXPECT_TRUE(at(60).due);
  EXPECT_TRUE(at(89).due);
  EXPECT_TRUE(at(200).due);  // expired
  EXPECT_TRUE(at(0, std::nullopt, true).due);
  EXPECT_EQ(at(0, std::nullopt, true).reason, "forced");
  // An ARI window that starts earlier (e.g. revocation) makes it due earlier.
  const SuggestedWindow early{FromUnix(10), FromUnix(20)};
  EXPECT_FALSE(at(9, early).due);
  EXPECT_EQ(at(9, early).renew_at, FromUnix(10));
  EXPECT_TRUE(at(10, early).due);
  EXPECT_NE(at(10, early).reason.find("ARI"), std::string::npos);
  // A later ARI window does not postpone the two-thirds rule.
  const SuggestedWindow late{FromUnix(75), FromUnix(80)};
  EXPECT_TRUE(at(60, late).due);
  EXPECT_EQ(at(0, late).renew_at, FromUnix(60));
}

}  // namespace
}  // namespace e2eid::cli
