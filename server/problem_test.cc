#include "server/problem.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/json.h"
#include "core/log.h"

namespace e2eid::server {
namespace {

Json Body(const HttpResponse& r) {
  auto j = ParseJson(r.body);
  EXPECT_TRUE(j) << r.body;
  return j ? *j : Json();
}

TEST(ProblemTest, AcmeCodesKeepTypeAndDetail) {
  const HttpResponse r = ProblemResponse(Error::BadNonce("nonce was already used"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.Header("Content-Type"), "application/problem+json");
  const Json doc = Body(r);
  EXPECT_EQ(doc["type"], "urn:ietf:params:acme:error:badNonce");
  EXPECT_EQ(doc["detail"], "nonce was already used");
  EXPECT_EQ(doc["status"], 400);
}

TEST(ProblemTest, StatusMapping) {
  EXPECT_EQ(HttpStatusFor(ErrorCode::kMalformed), 400);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnauthorized), 403);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kAlreadyReplaced), 409);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kPayloadTooLarge), 413);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnsupportedMediaType), 415);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kRateLimited), 429);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kServerInternal), 500);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kStore), 500);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kUnavailable), 503);
  EXPECT_EQ(ProblemTypeFor(ErrorCode::kBadCsr), "urn:ietf:params:acme:error:badCSR");
  EXPECT_EQ(ProblemTypeFor(ErrorCode::kNotFound), "urn:ietf:params:acme:error:malformed");
  EXPECT_EQ(ProblemTypeFor(ErrorCode::kForbidden), "urn:ietf:params:acme:error:unauthorized");
  EXPECT_EQ(ProblemTypeFor(ErrorCode::kCrypto), "urn:ietf:params:acme:error:serverInternal");
}

TEST(ProblemTest, InternalDetailIsLoggedNotSent) {
  std::vector<std::string> lines;
  SetLogSink([&](std::string_view l) { lines.emplace_back(l); });
  const HttpResponse r =
      ProblemResponse(Error::Store("sqlite: database is locked at /var/lib/e2eid"), "req-1");
  SetLogSink(nullptr);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("sqlite"), std::string::npos);
  EXPECT_EQ(Body(r)["type"], "urn:ietf:params:acme:error:serverInternal");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("database is locked"), std::string::npos);
  EXPECT_NE(lines[0].find("req-1"), std::string::npos);
}

TEST(ProblemTest, SubproblemsAndRetryAfter) {
  Error e(ErrorCode::kRejectedIdentifier, "some identifiers were rejected");
  e.WithSubproblem({ErrorCode::kRejectedIdentifier, "not allowed", "dns", "evil.example"});
  e.WithSubproblem({ErrorCode::kIo, "disk full", "", ""});
  const HttpResponse r = ProblemResponse(e);
  const Json doc = Body(r);
  ASSERT_EQ(doc["subproblems"].size(), 2u);
  EXPECT_EQ(doc["subproblems"][0]["identifier"]["value"], "evil.example");
  EXPECT_EQ(doc["subproblems"][0]["detail"], "not allowed");
  EXPECT_FALSE(doc["subproblems"][1].contains("identifier"));
  EXPECT_EQ(doc["subproblems"][1]["detail"], "internal server error");

  const HttpResponse limited = ProblemResponse(
      Error(ErrorCode::kRateLimited, "too many orders").WithRetryAfter(std::chrono::seconds(30)));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.Header("Retry-After"), "30");
  EXPECT_FALSE(ProblemResponse(Error::Malformed("x")).Header("Retry-After"));
}

TEST(ProblemTest, ExplicitStatus) {
  const HttpResponse r = ProblemResponse(431, "about:blank", "headers too large");
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(Body(r)["detail"], "headers too large");
}

}  // namespace
}  // namespace e2eid::server
