#include "cli/acme_client.h"

#include <gtest/gtest.h>

#include <deque>

#include "cli/enrol_test_util.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"

namespace e2eid::cli {
namespace {

using testing::FakeHttpClient;
using testing::JsonResponse;

constexpr char kBase[] = "https://ca.test";
const TimePoint kNow = FromUnix(1'700'000'000);

Json Directory() {
  return {{"newNonce", std::string(kBase) + "/acme/new-nonce"},
          {"newAccount", std::string(kBase) + "/acme/new-account"},
          {"newOrder", std::string(kBase) + "/acme/new-order"},
          {"renewalInfo", std::string(kBase) + "/acme/renewal-info"}};
}

Json Problem(const std::string& type, const std::string& detail) {
  return {{"type", "urn:ietf:params:acme:error:" + type}, {"detail", detail}};
}

// A scripted ACME server: answers GET directory and HEAD new-nonce itself, and POSTs from a queue
// of canned responses (each gets a fresh Replay-Nonce). Every POST is parsed and checked.
class AcmeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
    ASSERT_TRUE(key);
    key_.emplace(std::move(*key));
  }

  Result<oidc::FetchResponse> Handle(const oidc::FetchRequest& r) {
    const std::string nonce = "nonce-" + std::to_string(++nonces_);
    if (r.method == "GET" && r.url == std::string(kBase) + "/acme/directory") {
      return JsonResponse(200, Directory());
    }
    if (r.method == "HEAD" && r.url.ends_with("/new-nonce")) {
      oidc::FetchResponse resp;
      resp.status = 200;
      resp.headers = {{"Replay-Nonce", nonce}};
      return resp;
    }
    if (r.method == "GET" && !gets_.empty()) {
      auto resp = gets_.front();
      gets_.pop_front();
      return resp;
    }
    if (r.method != "POST" || posts_.empty()) {
      ADD_FAILURE() << "unexpected " << r.method << " " << r.url;
      return JsonResponse(500, Problem("serverInternal", "unexpected"));
    }
    EXPECT_EQ(FindHeader(r.headers, "Content-Type"), "application/jose+json");
    auto jws = crypto::ParseFlattenedJws(r.body);
    EXPECT_TRUE(jws);
    if (jws) {
      seen_.push_back(jws->header);
      payloads_.push_back(std::string(AsString(jws->payload)));
      EXPECT_EQ(jws->header["url"], r.url);
      auto pub = key_->public_key();
      EXPECT_TRUE(crypto::VerifyJws(*jws, *pub));
    }
    auto resp = posts_.front();
    posts_.pop_front();
    resp.headers.emplace_back("Replay-Nonce", nonce);
    return resp;
  }

  AcmeClient MakeClient(std::chrono::seconds budget = std::chrono::seconds(60)) {
    AcmeClientOptions o;
    o.directory_url = std::string(kBase) + "/acme/directory";
    o.poll_budget = budget;
    return AcmeClient(
        http_, *key_, clock_, [this](std::chrono::milliseconds d) { sleeps_.push_back(d.count()); },
        o);
  }

  static oidc::FetchResponse WithHeader(oidc::FetchResponse r, std::string name,
                                        std::string value) {
    r.headers.emplace_back(std::move(name), std::move(value));
    return r;
  }

  std::optional<crypto::PrivateKey> key_;
  FakeClock clock_{kNow};
  std::deque<oidc::FetchResponse> posts_;
  std::deque<oidc::FetchResponse> gets_;
  std::vector<Json> seen_;
  std::vector<std::string> payloads_;
  std::vector<int64_t> sleeps_;
  int nonces_ = 0;
  FakeHttpClient http_{[this](const oidc::FetchRequest& r) { return Handle(r); }};
};

TEST_F(AcmeClientTest, NewAccountUsesJwkThenKid) {
  AcmeClient acme = MakeClient();
  ASSERT_TRUE(acme.LoadDirectory());
  posts_.push_back(WithHeader(JsonResponse(201, {{"status", "valid"}}), "Location",
                              std::string(kBase) + "/acme/acct/7"));
  posts_.push_back(JsonResponse(200, {{"status", "pending"}}));
  auto account = acme.NewAccount();
  ASSERT_TRUE(account) << account.error().ToString();
  EXPECT_EQ(*account, std::string(kBase) + "/acme/acct/7");
  auto r = acme.PostAsGet(std::string(kBase) + "/acme/order/1");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->json["status"], "pending");

  ASSERT_EQ(seen_.size(), 2u);
  // newAccount: jwk (the public key), no kid, the nonce from HEAD newNonce.
  EXPECT_TRUE(seen_[0].contains("jwk"));
  EXPECT_FALSE(seen_[0].contains("kid"));
  EXPECT_FALSE(seen_[0]["jwk"].contains("d"));
  EXPECT_EQ(seen_[0]["nonce"], "nonce-2");
  EXPECT_EQ(ParseJson(payloads_[0]).value(),
            (Json{{"termsOfServiceAgreed", true}, {"contact", Json::array()}}));
  // Then kid, and the nonce from the previous response (no extra HEAD).
  EXPECT_EQ(seen_[1]["kid"], std::string(kBase) + "/acme/acct/7");
  EXPECT_FALSE(seen_[1].contains("jwk"));
  EXPECT_EQ(seen_[1]["nonce"], "nonce-3");
  EXPECT_EQ(payloads_[1], "");  // POST-as-GET
}

TEST_F(AcmeClientTest, BadNonceIsRetriedOnceWithTheFreshNonce) {
  AcmeClient acme = MakeClient();
  ASSERT_TRUE(acme.LoadDirectory());
  posts_.push_back(JsonResponse(400, Problem("badNonce", "stale")));
  posts_.push_back(WithHeader(JsonResponse(201, {{"status", "valid"}}), "Location", "acct-url"));
  ASSERT_TRUE(acme.NewAccount());
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_EQ(seen_[0]["nonce"], "nonce-2");
  EXPECT_EQ(seen_[1]["nonce"], "nonce-3");  // the Replay-Nonce of the badNonce answer

  posts_.push_back(JsonResponse(400, Problem("badNonce", "stale")));
  posts_.push_back(JsonResponse(400, Problem("badNonce", "stale again")));
  auto r = acme.PostAsGet("https://ca.test/acme/order/1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadNonce);
  EXPECT_EQ(seen_.size(), 4u);  // exactly one retry
}

TEST_F(AcmeClientTest, ProblemDocumentsBecomeErrorsWithTypeAndDetail) {
  AcmeClient acme = MakeClient();
  ASSERT_TRUE(acme.LoadDirectory());
  Json problem = Problem("rejectedIdentifier", "handle not allowed");
  problem["subproblems"] =
      Json::array({{{"type", "urn:ietf:params:acme:error:rejectedIdentifier"},
                    {"detail", "bad handle"},
                    {"identifier", {{"type", "wireapp-user"}, {"value", "{}"}}}}});
  posts_.push_back(WithHeader(JsonResponse(400, problem), "Retry-After", "30"));
  auto r = acme.NewAccount();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRejectedIdentifier);
  const std::string& d = r.error().detail();
  EXPECT_NE(d.find("urn:ietf:params:acme:error:rejectedIdentifier: handle not allowed"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("bad handle (wireapp-user)"), std::string::npos) << d;
  EXPECT_NE(d.find("HTTP 400"), std::string::npos) << d;
  ASSERT_EQ(r.error().subproblems().size(), 1u);
  EXPECT_EQ(r.error().subproblems()[0].identifier_type, "wireapp-user");
  EXPECT_EQ(r.error().retry_after(), std::chrono::seconds(30));

  oidc::FetchResponse plain;
  plain.status = 503;
  plain.body = "down";
  posts_.push_back(plain);
  auto down = acme.NewAccount();
  ASSERT_FALSE(down);
  EXPECT_NE(down.error().detail().find("HTTP 503"), std::string::npos);
}

TEST_F(AcmeClientTest, DirectoryMustNameTheCoreResources) {
  FakeHttpClient bad([](const oidc::FetchRequest&) -> Result<oidc::FetchResponse> {
    return JsonResponse(200, Json{{"newNonce", "x"}});
  });
  AcmeClient acme(bad, *key_, clock_, nullptr, AcmeClientOptions{.directory_url = "https://x/d"});
  auto s = acme.LoadDirectory();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kMalformed);
}

TEST_F(AcmeClientTest, PollOrderHonoursRetryAfterUntilReady) {
  AcmeClient acme = MakeClient();
  ASSERT_TRUE(acme.LoadDirectory());
  posts_.push_back(WithHeader(JsonResponse(201, {}), "Location", "acct"));
  ASSERT_TRUE(acme.NewAccount());
  posts_.push_back(WithHeader(JsonResponse(200, {{"status", "pending"}}), "Retry-After", "3"));
  posts_.push_back(JsonResponse(200, {{"status", "processing"}}));  // default interval: 1 s
  posts_.push_back(WithHeader(JsonResponse(200, {{"status", "pending"}}), "Retry-After", "3600"));
  posts_.push_back(JsonResponse(200, {{"status", "ready"}, {"finalize", "f"}}));
  auto order = acme.PollOrder("https://ca.test/acme/order/1", "ready");
  ASSERT_TRUE(order) << order.error().ToString();
  EXPECT_EQ((*order)["finalize"], "f");
  EXPECT_EQ(sleeps_, (std::vector<int64_t>{3000, 1000, 10000}));  // one wait capped at 10 s
}

TEST_F(AcmeClientTest, PollOrderGivesUpAfterTheBudget) {
  AcmeClient acme = MakeClient(std::chrono::seconds(5));
  ASSERT_TRUE(acme.LoadDirectory());
  posts_.push_back(WithHeader(JsonResponse(201, {}), "Location", "acct"));
  ASSERT_TRUE(acme.NewAccount());
  for (int i = 0; i < 10; ++i) {
    posts_.push_back(WithHeader(JsonResponse(200, {{"status", "pending"}}), "Retry-After", "2"));
  }
  auto order = acme.PollOrder("https://ca.test/acme/order/1", "ready");
  ASSERT_FALSE(order);
  EXPECT_EQ(order.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(order.error().detail().find("still 'pending'"), std::string::npos);
  EXPECT_EQ(sleeps_, (std::vector<int64_t>{2000, 2000, 1000}));  // 5 s in all
}

TEST_F(AcmeClientTest, PollOrderReportsTheOrderError) {
  AcmeClient acme = MakeClient();
  ASSERT_TRUE(acme.LoadDirectory());
  posts_.push_back(WithHeader(JsonResponse(201, {}), "Location", "acct"));
  ASSERT_TRUE(acme.NewAccount());
  posts_.push_back(JsonResponse(
      200, {{"status", "invalid"}, {"error", Problem("unauthorized", "keyauth mismatch")}}));
  auto order = acme.PollOrder("https://ca.test/acme/order/1", "ready");
  ASSERT_FALSE(order);
  EXPECT_EQ(order.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(order.error().detail().find("keyauth mismatch"), std::string::npos);
}

TEST_F(AcmeClientTest, NewOrderAndCertificateDownload) {
  AcmeClient acme = MakeClient();
  ASSERT_TRUE(acme.LoadDirectory());
  posts_.push_back(WithHeader(JsonResponse(201, {}), "Location", "acct"));
  ASSERT_TRUE(acme.NewAccount());
  posts_.push_back(WithHeader(JsonResponse(201, {{"status", "pending"}}), "Location", "order-1"));
  std::string url;
  auto order = acme.NewOrder(Json{{"identifiers", Json::array()}}, &url);
  ASSERT_TRUE(order);
  EXPECT_EQ(url, "order-1");
  EXPECT_EQ(ParseJson(payloads_.back()).value(), (Json{{"identifiers", Json::array()}}));

  oidc::FetchResponse pem;
  pem.status = 200;
  pem.headers = {{"Content-Type", "application/pem-certificate-chain"}};
  pem.body = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
  posts_.push_back(pem);
  auto chain = acme.DownloadCertificate("https://ca.test/acme/cert/1");
  ASSERT_TRUE(chain);
  EXPECT_EQ(*chain, pem.body);
  EXPECT_EQ(FindHeader(http_.requests().back().headers, "Accept"),
            "application/pem-certificate-chain");
}

TEST_F(AcmeClientTest, RenewalInfo) {
  AcmeClient acme = MakeClient();
  ASSERT_TRUE(acme.LoadDirectory());
  gets_.push_back(JsonResponse(
      200,
      {{"suggestedWindow", {{"start", "2025-01-02T00:00:00Z"}, {"end", "2025-01-03T00:00:00Z"}}}}));
  auto w = acme.RenewalInfo("aki.serial");
  ASSERT_TRUE(w) << w.error().ToString();
  ASSERT_TRUE(w->has_value());
  EXPECT_EQ(FormatRfc3339((*w)->start), "2025-01-02T00:00:00Z");
  EXPECT_EQ(http_.requests().back().url, "https://ca.test/acme/renewal-info/aki.serial");
  gets_.push_back(JsonResponse(404, Problem("malformed", "unknown certificate")));
  EXPECT_FALSE(acme.RenewalInfo("aki.other"));
}

TEST(RetryAfterTest, SecondsAndHttpDates) {
  const TimePoint now = FromUnix(784'111'777);  // 1994-11-06T08:49:37Z
  EXPECT_EQ(ParseRetryAfter("120", now), std::chrono::seconds(120));
  EXPECT_EQ(ParseRetryAfter("0", now), std::chrono::seconds(0));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:47 GMT", now), std::chrono::seconds(10));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now), std::chrono::seconds(0));
  EXPECT_EQ(ParseRetryAfter(std::nullopt, now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
}

}  // namespace
}  // namespace e2eid::cli
