#include "server/acme_routes.h"

#include <gtest/gtest.h>

#include <memory>

#include "acme/serial_registry.h"
#include "ca/authority.h"
#include "ca/issuer.h"
#include "core/log.h"
#include "crypto/random.h"
#include "store/sqlite_store.h"
#include "tests/test_util.h"

namespace e2eid::server {
namespace {

Json Body(const HttpResponse& r) {
  auto j = ParseJson(r.body);
  EXPECT_TRUE(j) << r.body;
  return j ? *j : Json();
}

TEST(RenderAcmeReplyTest, SuccessKeepsTheResponseAndAddsTheHeaders) {
  HttpResponse ok = HttpResponse::Json(201, R"({"status":"valid"})");
  ok.SetHeader("Location", "https://ca.test/acme/acct/1");
  const HttpResponse r =
      RenderAcmeReply({std::move(ok), {{"Replay-Nonce", "n1"}, {"Link", "<x>;rel=\"index\""}}});
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, R"({"status":"valid"})");
  EXPECT_EQ(r.Header("Location"), "https://ca.test/acme/acct/1");
  EXPECT_EQ(r.Header("Replay-Nonce"), "n1");
  EXPECT_EQ(r.Header("Link"), "<x>;rel=\"index\"");
}

TEST(RenderAcmeReplyTest, ErrorsBecomeProblemDocumentsWithTheHeaders) {
  const HttpResponse r =
      RenderAcmeReply({Fail(Error::BadNonce("the nonce was already used")),
                       {{"Replay-Nonce", "fresh"}, {"Link", "<d>;rel=\"index\""}}},
                      "req-1");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Header("Content-Type"), "application/problem+json");
  EXPECT_EQ(r.Header("Replay-Nonce"), "fresh");
  EXPECT_EQ(r.Header("Link"), "<d>;rel=\"index\"");
  EXPECT_EQ(Body(r)["type"], "urn:ietf:params:acme:error:badNonce");
  EXPECT_EQ(Body(r)["detail"], "the nonce was already used");
}

TEST(AcmeProblemDocumentTest, MatchesProblemResponseAndHidesInternalDetail) {
  const Json doc =
      AcmeProblemDocument(Error(ErrorCode::kIncorrectResponse, "expected the key authorization"));
  EXPECT_EQ(doc["type"], "urn:ietf:params:acme:error:incorrectResponse");
  EXPECT_EQ(doc["detail"], "expected the key authorization");
  EXPECT_EQ(doc["status"], 400);
  SetLogSink([](std::string_view) {});
  const Json internal = AcmeProblemDocument(Error::Store("disk I/O error at page 7"));
  SetLogSink({});
  EXPECT_EQ(internal["type"], "urn:ietf:params:acme:error:serverInternal");
  EXPECT_EQ(internal["detail"].get<std::string>().find("disk"), std::string::npos);
}

// The routes on a real engine: directory, nonces, method and media-type errors.
TEST(AcmeRoutesTest, RegistersTheEndpoints) {
  testing::TempDir tmp;
  SystemClock clock;
  crypto::SecureRandom random;
  ca::InitOptions init;
  init.dir = tmp / "ca";
  ASSERT_TRUE(ca::InitCa(init, clock, random));
  auto authority = ca::CertificateAuthority::Load(ca::CaPaths::In(init.dir), std::nullopt);
  ASSERT_TRUE(authority);
  auto store = store::OpenSqliteStore({.path = tmp / "e2eid.db", .synchronous_full = false});
  ASSERT_TRUE(store);
  acme::StoreSerialRegistry serials(**store, clock);
  ca::Issuer issuer(*authority, ca::ValidityPolicy{}, {}, serials, clock, random);
  acme::EngineOptions options;
  options.base_url = "https://ca.test";
  acme::Engine engine(options, {.store = **store,
                                .issuer = issuer,
                                .clock = clock,
                                .random = random,
                                .jobs =
                                    [](std::function<void()> job) {
                                      job();
                                      return Ok();
                                    },
                                .validators = {},
                                .render_problem = AcmeProblemDocument});
  Router router;
  ASSERT_TRUE(AddAcmeRoutes(router, engine));
  EXPECT_FALSE(AddAcmeRoutes(router, engine));  // already registered

  auto request = [](std::string method, std::string path, std::string body = "",
                    std::string content_type = "") {
    HttpRequest r;
    r.method = std::move(method);
    r.target = r.path = std::move(path);
    r.body = std::move(body);
    if (!content_type.empty()) r.headers.emplace_back("Content-Type", content_type);
    return r;
  };
  const HttpResponse dir = router.Handle(request("GET", "/acme/directory"));
  ASSERT_EQ(dir.status, 200);
  EXPECT_EQ(Body(dir)["newOrder"], "https://ca.test/acme/new-order");
  EXPECT_EQ(router.Handle(request("HEAD", "/acme/directory")).status, 200);

  const HttpResponse head = router.Handle(request("HEAD", "/acme/new-nonce"));
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.Header("Replay-Nonce").has_value());
  EXPECT_EQ(head.Header("Link"), "<https://ca.test/acme/directory>;rel=\"index\"");
  EXPECT_EQ(router.Handle(request("GET", "/acme/new-nonce")).status, 204);

  // A POST with the wrong media type: 415 problem, still with a fresh nonce.
  const HttpResponse wrong = router.Handle(request("POST", "/acme/new-order", "{}", "text/plain"));
  EXPECT_EQ(wrong.status, 415);
  EXPECT_EQ(wrong.Header("Content-Type"), "application/problem+json");
  EXPECT_TRUE(wrong.Header("Replay-Nonce").has_value());
  // Resources are read with POST-as-GET, not GET.
  EXPECT_EQ(router.Handle(request("GET", "/acme/order/abc")).status, 405);
  EXPECT_EQ(router.Handle(request("POST", "/acme/nowhere", "{}", "application/jose+json")).status,
            404);
  // renewalInfo is a plain GET; a malformed certificate id is a 400 problem.
  EXPECT_EQ(router.Handle(request("GET", "/acme/renewal-info/x.y")).status, 400);
}

}  // namespace
}  // namespace e2eid::server
