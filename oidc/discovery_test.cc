#include "oidc/discovery.h"

#include <gtest/gtest.h>

#include <string>

#include "oidc/fake_http_client.h"

namespace e2eid::oidc {
namespace {

using testing::FakeHttpClient;

constexpr char kIssuer[] = "https://idp.example/realms/acme";
constexpr char kDiscoveryUrl[] = "https://idp.example/realms/acme/.well-known/openid-configuration";

Json GoodDocument() {
  return Json{
      {"issuer", kIssuer},
      {"authorization_endpoint", "https://idp.example/realms/acme/protocol/openid-connect/auth"},
      {"token_endpoint", "https://idp.example/realms/acme/protocol/openid-connect/token"},
      {"jwks_uri", "https://idp.example/realms/acme/protocol/openid-connect/certs"},
      {"userinfo_endpoint", "https://idp.example/realms/acme/protocol/openid-connect/userinfo"},
      {"device_authorization_endpoint",
       "https://idp.example/realms/acme/protocol/openid-connect/auth/device"},
      {"end_session_endpoint", "https://idp.example/realms/acme/protocol/openid-connect/logout"},
      {"id_token_signing_alg_values_supported", {"RS256", "ES256"}},
      {"dpop_signing_alg_values_supported", {"ES256", "EdDSA"}},
      {"response_types_supported", {"code"}},
  };
}

TEST(DiscoveryTest, DiscoveryUrlRemovesOneTrailingSlash) {
  EXPECT_EQ(DiscoveryUrl("https://a.example/r"),
            "https://a.example/r/.well-known/openid-configuration");
  EXPECT_EQ(DiscoveryUrl("https://a.example/r/"),
            "https://a.example/r/.well-known/openid-configuration");
}

TEST(DiscoveryTest, FetchesAndParsesAllMembers) {
  FakeHttpClient http;
  http.Serve(kDiscoveryUrl, 200, GoodDocument().dump());
  auto d = FetchDiscovery(http, kIssuer);
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->issuer, kIssuer);
  EXPECT_EQ(d->jwks_uri, "https://idp.example/realms/acme/protocol/openid-connect/certs");
  EXPECT_EQ(d->token_endpoint, "https://idp.example/realms/acme/protocol/openid-connect/token");
  EXPECT_EQ(d->device_authorization_endpoint,
            "https://idp.example/realms/acme/protocol/openid-connect/auth/device");
  EXPECT_EQ(d->end_session_endpoint,
            "https://idp.example/realms/acme/protocol/openid-connect/logout");
  EXPECT_EQ(d->id_token_signing_alg_values_supported, (std::vector<std::string>{"RS256", "ES256"}));
  EXPECT_EQ(d->dpop_signing_alg_values_supported, (std::vector<std::string>{"ES256", "EdDSA"}));
  EXPECT_EQ(http.Count(kDiscoveryUrl), 1);
}

TEST(DiscoveryTest, OptionalMembersMayBeAbsent) {
  Json doc = GoodDocument();
  doc.erase("userinfo_endpoint");
  doc.erase("device_authorization_endpoint");
  doc.erase("end_session_endpoint");
  doc.erase("dpop_signing_alg_values_supported");
  FakeHttpClient http;
  auto d = ParseDiscovery(doc.dump(), kIssuer, http);
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_TRUE(d->userinfo_endpoint.empty());
  EXPECT_TRUE(d->device_authorization_endpoint.empty());
  EXPECT_TRUE(d->dpop_signing_alg_values_supported.empty());
}

TEST(DiscoveryTest, TrailingSlashOnEitherSideIsAccepted) {
  FakeHttpClient http;
  Json doc = GoodDocument();
  doc["issuer"] = std::string(kIssuer) + "/";
  EXPECT_TRUE(ParseDiscovery(doc.dump(), kIssuer, http));
  EXPECT_TRUE(ParseDiscovery(GoodDocument().dump(), std::string(kIssuer) + "/", http));
}

TEST(DiscoveryTest, LoopbackHttpEndpointsFollowTheClientPolicy) {
  Json doc = GoodDocument();
  doc["issuer"] = "http://127.0.0.1:8080/realms/acme";
  doc["jwks_uri"] = "http://127.0.0.1:8080/realms/acme/certs";
  FakeHttpClient http;  // default policy: http allowed on loopback
  EXPECT_TRUE(ParseDiscovery(doc.dump(), "http://127.0.0.1:8080/realms/acme", http));
}

struct BadCase {
  std::string name;
  std::function<void(Json&)> mutate;
  std::string expected;  // a substring of the error detail
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class DiscoveryBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(DiscoveryBadTest, NamesTheMember) {
  Json doc = GoodDocument();
  GetParam().mutate(doc);
  FakeHttpClient http;
  auto d = ParseDiscovery(doc.dump(), kIssuer, http);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kMalformed) << d.error().ToString();
  EXPECT_NE(d.error().detail().find(GetParam().expected), std::string::npos)
      << d.error().ToString();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DiscoveryBadTest,
    ::testing::Values(
        BadCase{"IssuerMismatch", [](Json& d) { d["issuer"] = "https://evil.example/realms/acme"; },
                "member \"issuer\""},
        BadCase{"IssuerMissing", [](Json& d) { d.erase("issuer"); },
                "member \"issuer\" is missing"},
        BadCase{"IssuerNotString", [](Json& d) { d["issuer"] = 5; }, "member \"issuer\""},
        BadCase{"JwksUriMissing", [](Json& d) { d.erase("jwks_uri"); },
                "member \"jwks_uri\" is missing"},
        BadCase{"JwksUriPlainHttp",
                [](Json& d) { d["jwks_uri"] = "http://idp.example/realms/acme/certs"; },
                "member \"jwks_uri\""},
        BadCase{"TokenEndpointMissing", [](Json& d) { d.erase("token_endpoint"); },
                "member \"token_endpoint\" is missing"},
        BadCase{"AuthorizationEndpointNotUrl",
                [](Json& d) { d["authorization_endpoint"] = "not a url"; },
                "member \"authorization_endpoint\""},
        BadCase{"UserinfoFileScheme",
                [](Json& d) { d["userinfo_endpoint"] = "file:///etc/passwd"; },
                "member \"userinfo_endpoint\""},
        BadCase{"DeviceEndpointNotString",
                [](Json& d) { d["device_authorization_endpoint"] = true; },
                "member \"device_authorization_endpoint\" must be a string"},
        BadCase{"AlgsNotArray",
                [](Json& d) { d["id_token_signing_alg_values_supported"] = "RS256"; },
                "member \"id_token_signing_alg_values_supported\""},
        BadCase{"DpopAlgsNotStrings",
                [](Json& d) {
                  d["dpop_signing_alg_values_supported"] = {"ES256", 1};
                },
                "member \"dpop_signing_alg_values_supported\""},
        BadCase{"NotAnObject", [](Json& d) { d = Json::array(); }, "not a JSON object"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(DiscoveryTest, DuplicateMembersAreRefused) {
  FakeHttpClient http;
  const std::string body = R"({"issuer":"https://idp.example/realms/acme","issuer":"x"})";
  auto d = ParseDiscovery(body, kIssuer, http);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kMalformed);
}

TEST(DiscoveryTest, HttpErrorStatusIsUnavailable) {
  FakeHttpClient http;
  http.Serve(kDiscoveryUrl, 503, "down");
  auto d = FetchDiscovery(http, kIssuer);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(d.error().detail().find("503"), std::string::npos);
}

TEST(DiscoveryTest, ConnectionFailureIsKept) {
  FakeHttpClient http;
  http.SetDown(true);
  auto d = FetchDiscovery(http, kIssuer);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kConnection);
}

TEST(DiscoveryTest, FetchReportsWhichDocumentWasWrong) {
  FakeHttpClient http;
  Json doc = GoodDocument();
  doc["issuer"] = "https://other.example";
  http.Serve(kDiscoveryUrl, 200, doc.dump());
  auto d = FetchDiscovery(http, kIssuer);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(d.error().detail().find(kDiscoveryUrl), std::string::npos) << d.error().detail();
  EXPECT_NE(d.error().detail().find("\"issuer\""), std::string::npos) << d.error().detail();
}

}  // namespace
}  // namespace e2eid::oidc
