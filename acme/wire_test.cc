// Wire identifiers, URIs and device CSRs. The identifier shapes are those of Wire's published
// captured enrolment sessions (wireapp/rusty-jwt-tools e2e-identity/README.md); the CSRs are made
// by the openssl CLI, as a client would make them.
#include "acme/wire.h"

#include <gtest/gtest.h>

#include "core/file.h"
#include "core/json.h"
#include "crypto/test_util.h"
#include "tests/test_util.h"

namespace e2eid::acme {
namespace {

using e2eid::testing::ShellQuote;
using e2eid::testing::TempDir;

constexpr std::string_view kDomain = "wire.example.com";
// userId = base64url of the UUID 4a8fda1e-3e2d-4b5a-9c6e-7f1d2c3b4a59.
constexpr std::string_view kUserId = "So_aHj4tS1qcbn8dLDtKWQ";
constexpr std::string_view kClientId =
    "wireapp://So_aHj4tS1qcbn8dLDtKWQ!7f39900830740008@wire.example.com";
constexpr std::string_view kHandle = "wireapp://%40alice_wire@wire.example.com";

std::string UserValue(std::string name = "Alice Smith", std::string handle = std::string(kHandle),
                      std::string domain = std::string(kDomain)) {
  return DumpJson(Json{{"name", name}, {"domain", domain}, {"handle", handle}});
}
std::string DeviceValue(std::string client = std::string(kClientId),
                        std::string name = "Alice Smith") {
  return DumpJson(Json{{"client-id", client},
                       {"handle", std::string(kHandle)},
                       {"name", name},
                       {"domain", std::string(kDomain)}});
}

TEST(WireTest, UserIdFromUuid) {
  auto id = WireUserIdFromUuid("4a8fda1e-3e2d-4b5a-9c6e-7f1d2c3b4a59");
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(*id, kUserId);
  EXPECT_EQ(*WireUserIdFromUuid("4A8FDA1E-3E2D-4B5A-9C6E-7F1D2C3B4A59"), kUserId);
  for (std::string_view bad :
       {"", "4a8fda1e3e2d4b5a9c6e7f1d2c3b4a59", "4a8fda1e-3e2d-4b5a-9c6e-7f1d2c3b4a5",
        "4a8fda1e-3e2d-4b5a-9c6e-7f1d2c3b4a5g", "alice"}) {
    EXPECT_FALSE(WireUserIdFromUuid(bad)) << bad;
  }
}

TEST(WireTest, ClientIdParsesWithBangOrPercent21) {
  auto a = ParseWireClientId(kClientId);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->user_id, kUserId);
  EXPECT_EQ(a->device_id, "7f39900830740008");
  EXPECT_EQ(a->domain, kDomain);
  EXPECT_EQ(a->Uri(), kClientId);
  auto b =
      ParseWireClientId("wireapp://So_aHj4tS1qcbn8dLDtKWQ%217f39900830740008@wire.example.com");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->Uri(), kClientId);
}

TEST(WireTest, MalformedClientIdsAreRefused) {
  const std::vector<std::string> bad = {
      "",
      "https://So_aHj4tS1qcbn8dLDtKWQ!7f39900830740008@wire.example.com",
      "wireapp://So_aHj4tS1qcbn8dLDtKWQ7f39900830740008@wire.example.com",    // no '!'
      "wireapp://So_aHj4tS1qcbn8dLDtKW!7f39900830740008@wire.example.com",    // 21-char user id
      "wireapp://So_aHj4tS1qcbn8dLDtKWQ!07f3990083074000@wire.example.com",   // leading zero
      "wireapp://So_aHj4tS1qcbn8dLDtKWQ!7F39900830740008@wire.example.com",   // upper-case hex
      "wireapp://So_aHj4tS1qcbn8dLDtKWQ!7f399008307400081@wire.example.com",  // 17 digits
      "wireapp://So_aHj4tS1qcbn8dLDtKWQ!7f39900830740008",                    // no domain
      "wireapp://So_aHj4tS1qcbn8dLDtKWQ!7f39900830740008@a@b",                // two '@'
      "wireapp://So_aHj4tS1qcbn8dLDtKWQ!7f39900830740008@Wire.Example.com",   // upper case domain
      "wireapp://So_aHj4tS1qcbn8dLDtKWQ!@wire.example.com",                   // empty device
  };
  for (const auto& uri : bad) {
    auto r = ParseWireClientId(uri);
    ASSERT_FALSE(r) << uri;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << uri;
  }
}

TEST(WireTest, HandleUri) {
  auto h = ParseWireHandleUri(kHandle);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->first, "alice_wire");
  EXPECT_EQ(h->second, kDomain);
  EXPECT_EQ(WireHandleUri("alice_wire", kDomain), kHandle);
  for (std::string_view bad :
       {"wireapp://alice_wire@wire.example.com", "wireapp://%40@wire.example.com",
        "wireapp://%40Alice@wire.example.com", "wireapp://%40al ice@wire.example.com",
        "im:wireapp=alice_wire@wire.example.com", "wireapp://%40alice"}) {
    EXPECT_FALSE(ParseWireHandleUri(bad)) << bad;
  }
}

TEST(WireTest, CapturedSessionIdentifiersParse) {
  auto user = ParseWireIdentifier(kWireUserType, UserValue(), kDomain);
  ASSERT_TRUE(user) << user.error().ToString();
  auto device = ParseWireIdentifier(kWireDeviceType, DeviceValue(), kDomain);
  ASSERT_TRUE(device) << device.error().ToString();
  EXPECT_EQ(device->client.Uri(), kClientId);
  EXPECT_EQ(device->handle, "alice_wire");
  auto both = MatchWireIdentifiers(*user, *device);
  ASSERT_TRUE(both);
  EXPECT_EQ(both->display_name, "Alice Smith");
}

TEST(WireTest, BadIdentifiersAreRefusedPrecisely) {
  struct Case {
    std::string type;
    std::string value;
    ErrorCode code;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"wireapp-user", "not json", ErrorCode::kMalformed, "JSON object"},
      {"wireapp-user", "[]", ErrorCode::kMalformed, "JSON object"},
      {"wireapp-user", R"({"name":"A","domain":"wire.example.com"})", ErrorCode::kMalformed,
       "'handle' is missing"},
      {"wireapp-user", UserValue("", std::string(kHandle)), ErrorCode::kMalformed, "non-empty"},
      {"wireapp-user",
       R"({"name":"A","domain":"wire.example.com","handle":"wireapp://%40a@wire.example.com","x":"y"})",
       ErrorCode::kMalformed, "unknown member 'x'"},
      {"wireapp-user", UserValue("A", "wireapp://%40a@other.example.com", "other.example.com"),
       ErrorCode::kRejectedIdentifier, "not this CA's domain"},
      {"wireapp-user", UserValue("A", "wireapp://%40a@other.example.com"),
       ErrorCode::kRejectedIdentifier, "handle's domain"},
      {"wireapp-user", UserValue("A", "wireapp://a@wire.example.com"), ErrorCode::kMalformed,
       "wireapp://%40"},
      {"wireapp-user",
       R"({"name":5,"domain":"wire.example.com","handle":"wireapp://%40a@wire.example.com"})",
       ErrorCode::kMalformed, "'name' must be a non-empty string"},
      {"wireapp-device", UserValue(), ErrorCode::kMalformed, "'client-id' is missing"},
      {"wireapp-device",
       DeviceValue("wireapp://So_aHj4tS1qcbn8dLDtKWQ!7f39900830740008@other.example.com"),
       ErrorCode::kRejectedIdentifier, "client-id's domain"},
      {"wireapp-device", DeviceValue("wireapp://bad@wire.example.com"), ErrorCode::kMalformed,
       "client-id"},
      {"dns", UserValue(), ErrorCode::kUnsupportedIdentifier, "not a Wire identifier"},
  };
  for (const auto& c : cases) {
    auto r = ParseWireIdentifier(c.type, c.value, kDomain);
    ASSERT_FALSE(r) << c.value;
    EXPECT_EQ(r.error().code(), c.code) << c.value << " -> " << r.error().ToString();
    EXPECT_NE(r.error().detail().find(c.needle), std::string::npos)
        << c.value << " -> " << r.error().detail();
  }
}

TEST(WireTest, UserAndDeviceMustDescribeOnePerson) {
  auto user = *ParseWireIdentifier(kWireUserType, UserValue("Alice Smith"), kDomain);
  auto device =
      *ParseWireIdentifier(kWireDeviceType, DeviceValue(std::string(kClientId), "Bob"), kDomain);
  auto r = MatchWireIdentifiers(user, device);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRejectedIdentifier);
  EXPECT_NE(r.error().detail().find("'name'"), std::string::npos);
  auto other_handle = *ParseWireIdentifier(
      kWireUserType, UserValue("Alice Smith", "wireapp://%40mallory@wire.example.com"), kDomain);
  auto r2 = MatchWireIdentifiers(other_handle,
                                 *ParseWireIdentifier(kWireDeviceType, DeviceValue(), kDomain));
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().detail().find("'handle'"), std::string::npos);
}

// ---- CSRs made by the openssl CLI --------------------------------------------------------------

class WireCsrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    identity_ = *ParseWireIdentifier(kWireDeviceType, DeviceValue(), kDomain);
  }

  // Makes a key of `algorithm` (openssl genpkey syntax) and a CSR with `subject` and `san`
  // (openssl -addext syntax; empty for none). Returns the DER.
  Bytes Csr(const std::string& algorithm, const std::string& subject, const std::string& san) {
    const std::string key = dir_ / "key.pem";
    const std::string csr = dir_ / "csr.der";
    std::remove(key.c_str());
    EXPECT_EQ(crypto::testing::RunOpenssl("genpkey " + algorithm + " -out " + ShellQuote(key)), 0);
    const std::string config = dir_ / "oid.cnf";
    if (!PathExists(config)) {
      // The openssl CLI knows displayName only when the configuration names its OID.
      EXPECT_TRUE(WriteFileAtomic(
          config,
          "oid_section=new_oids\n[new_oids]\ndisplayName=2.16.840.1.113730.3.1.241\n"
          "[req]\ndistinguished_name=dn\n[dn]\n",
          0644));
    }
    std::string cmd = "req -new -config " + ShellQuote(config) + " -key " + ShellQuote(key) +
                      " -outform DER -out " + ShellQuote(csr) + " -subj " + ShellQuote(subject);
    if (!san.empty()) cmd += " -addext " + ShellQuote("subjectAltName=" + san);
    EXPECT_EQ(crypto::testing::RunOpenssl(cmd), 0) << cmd;
    auto der = ReadFile(csr);
    EXPECT_TRUE(der);
    return der ? Bytes(der->begin(), der->end()) : Bytes();
  }

  static std::string GoodSan() {
    return "URI:" + std::string(kClientId) + ",URI:" + std::string(kHandle);
  }

  TempDir dir_;
  WireIdentity identity_;
};

constexpr const char* kEd25519 = "-algorithm ed25519";
constexpr const char* kP256 = "-algorithm EC -pkeyopt ec_paramgen_curve:P-256";

TEST_F(WireCsrTest, WireShapedCsrsAreAccepted) {
  for (const char* alg : {kEd25519, kP256, "-algorithm EC -pkeyopt ec_paramgen_curve:P-384",
                          "-algorithm EC -pkeyopt ec_paramgen_curve:P-521"}) {
    auto key =
        CheckWireCsr(Csr(alg, "/O=wire.example.com/displayName=Alice Smith", GoodSan()), identity_);
    EXPECT_TRUE(key) << alg << ": " << key.error().ToString();
  }
  // "%21" instead of '!' (Go's encoding) and a CN equal to the name are accepted too.
  auto key = CheckWireCsr(
      Csr(kEd25519, "/O=wire.example.com/CN=Alice Smith/displayName=Alice Smith",
          "URI:wireapp://So_aHj4tS1qcbn8dLDtKWQ%217f39900830740008@wire.example.com,URI:" +
              std::string(kHandle)),
      identity_);
  EXPECT_TRUE(key) << key.error().ToString();
}

TEST_F(WireCsrTest, BadCsrsAreRefusedPrecisely) {
  const std::string good_subject = "/O=wire.example.com/displayName=Alice Smith";
  struct Case {
    std::string alg;
    std::string subject;
    std::string san;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"-algorithm RSA -pkeyopt rsa_keygen_bits:2048", good_subject, GoodSan(), "not RSA"},
      {kEd25519, "/displayName=Alice Smith", GoodSan(), "no O"},
      {kEd25519, "/O=other.example.com/displayName=Alice Smith", GoodSan(),
       "subject O must be the domain"},
      {kEd25519, "/O=wire.example.com", GoodSan(), "no displayName"},
      {kEd25519, "/O=wire.example.com/displayName=Mallory", GoodSan(), "displayName must be"},
      {kEd25519, good_subject + "/CN=Mallory", GoodSan(), "CN, when present"},
      {kEd25519, good_subject + "/OU=sales", GoodSan(), "other than O"},
      {kEd25519, good_subject, "", "no subjectAltName"},
      {kEd25519, good_subject, "URI:" + std::string(kClientId), "exactly two URIs"},
      {kEd25519, good_subject, GoodSan() + ",URI:wireapp://%40bob@wire.example.com",
       "exactly two URIs"},
      {kEd25519, good_subject, GoodSan() + ",DNS:alice.example.com", "not a URI"},
      {kEd25519, good_subject,
       "URI:wireapp://So_aHj4tS1qcbn8dLDtKWQ!1234@wire.example.com,URI:" + std::string(kHandle),
       "not an identifier of the order"},
      {kEd25519, good_subject,
       "URI:" + std::string(kClientId) + ",URI:wireapp://%40mallory@wire.example.com",
       "not an identifier of the order"},
  };
  for (const auto& c : cases) {
    auto r = CheckWireCsr(Csr(c.alg, c.subject, c.san), identity_);
    ASSERT_FALSE(r) << c.subject << " " << c.san;
    EXPECT_EQ(r.error().code(), ErrorCode::kBadCsr);
    EXPECT_NE(r.error().detail().find(c.needle), std::string::npos)
        << c.subject << " " << c.san << " -> " << r.error().detail();
  }
}

TEST_F(WireCsrTest, GarbageAndTamperedCsrsAreRefused) {
  EXPECT_FALSE(CheckWireCsr(Bytes{}, identity_));
  EXPECT_FALSE(CheckWireCsr(Bytes{0x30, 0x03, 0x02, 0x01, 0x00}, identity_));
  Bytes der = Csr(kEd25519, "/O=wire.example.com/displayName=Alice Smith", GoodSan());
  ASSERT_GT(der.size(), 10u);
  der[der.size() - 5] ^= 0x01;  // inside the signature
  auto r = CheckWireCsr(der, identity_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail().find("signature"), std::string::npos) << r.error().detail();
}

}  // namespace
}  // namespace e2eid::acme
