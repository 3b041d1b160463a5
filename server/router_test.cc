#include "server/router.h"

#include <gtest/gtest.h>

#include <string>

#include "core/json.h"

namespace e2eid::server {
namespace {

HttpRequest Request(std::string method, std::string path) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = path;
  r.target = std::move(path);
  return r;
}

RouteHandler Echo(const std::string& tag) {
  return [tag](const HttpRequest& req, const RouteParams& params) {
    std::string body = tag + " " + req.method;
    for (const auto& [k, v] : params) body += " " + k + "=" + v;
    return HttpResponse::Text(200, body);
  };
}

TEST(RouterTest, MatchesLiteralAndParameterSegments) {
  Router router;
  ASSERT_TRUE(router.Get("/healthz", Echo("health")));
  ASSERT_TRUE(router.Post("/acme/order/{id}/finalize", Echo("finalize")));
  ASSERT_TRUE(router.Get("/acme/cert/{account}/{serial}", Echo("cert")));

  HttpResponse r = router.Handle(Request("GET", "/healthz"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "health GET");

  r = router.Handle(Request("POST", "/acme/order/abc_1-2/finalize"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "finalize POST id=abc_1-2");

  r = router.Handle(Request("GET", "/acme/cert/acc/42"));
  EXPECT_EQ(r.body, "cert GET account=acc serial=42");
}

TEST(RouterTest, UnknownPathIs404Problem) {
  Router router;
  ASSERT_TRUE(router.Get("/a/{id}", Echo("a")));
  for (const char* path : {"/b", "/a", "/a/", "/a/x/y", "/a//", "", "a/x"}) {
    const HttpResponse r = router.Handle(Request("GET", path));
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json") << path;
  }
}

TEST(RouterTest, ParameterDoesNotMatchEmptySegment) {
  Router router;
  ASSERT_TRUE(router.Get("/a/{id}/b", Echo("a")));
  EXPECT_EQ(router.Handle(Request("GET", "/a//b")).status, 404);
  EXPECT_EQ(router.Handle(Request("GET", "/a/x/b")).status, 200);
}

TEST(RouterTest, WrongMethodIs405WithAllow) {
  Router router;
  ASSERT_TRUE(router.Get("/acme/directory", Echo("dir"), {.head = true}));
  ASSERT_TRUE(router.Post("/acme/new-nonce", Echo("nonce-post")));
  ASSERT_TRUE(router.Get("/acme/new-nonce", Echo("nonce-get"), {.head = true}));
  ASSERT_TRUE(router.Add("DELETE", "/acme/new-nonce", Echo("nonce-delete")));

  HttpResponse r = router.Handle(Request("PUT", "/acme/new-nonce"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "DELETE, GET, HEAD, POST");
  auto doc = ParseJson(r.body);
  ASSERT_TRUE(doc);
  EXPECT_EQ((*doc)["status"], 405);

  r = router.Handle(Request("POST", "/acme/directory"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("allow"), "GET, HEAD");
}

TEST(RouterTest, HeadServedOnlyWhenGetRouteAllowsIt) {
  Router router;
  ASSERT_TRUE(router.Get("/with-head", Echo("w"), {.head = true}));
  ASSERT_TRUE(router.Get("/without-head", Echo("wo")));

  HttpResponse r = router.Handle(Request("HEAD", "/with-head"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  // The GET handler ran (it saw method HEAD) and its body length is reported.
  EXPECT_EQ(r.Header("Content-Length"), std::to_string(std::string("w HEAD").size()));
  EXPECT_EQ(r.Header("Content-Type"), "text/plain; charset=utf-8");

  r = router.Handle(Request("HEAD", "/without-head"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "GET");
}

TEST(RouterTest, ExplicitHeadRouteWins) {
  Router router;
  ASSERT_TRUE(router.Get("/x", Echo("get"), {.head = true}));
  ASSERT_TRUE(router.Add("HEAD", "/x", [](const HttpRequest&, const RouteParams&) {
    HttpResponse r = HttpResponse::Empty(204);
    r.SetHeader("X-Explicit", "1");
    return r;
  }));
  const HttpResponse r = router.Handle(Request("HEAD", "/x"));
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.Header("X-Explicit"), "1");
}

TEST(RouterTest, LiteralBeatsParameter) {
  Router router;
  ASSERT_TRUE(router.Get("/acme/{kind}/{id}", Echo("param")));
  ASSERT_TRUE(router.Get("/acme/order/{id}", Echo("order")));
  ASSERT_TRUE(router.Get("/acme/order/latest", Echo("latest")));
  EXPECT_EQ(router.Handle(Request("GET", "/acme/order/latest")).body, "latest GET");
  EXPECT_EQ(router.Handle(Request("GET", "/acme/order/7")).body, "order GET id=7");
  EXPECT_EQ(router.Handle(Request("GET", "/acme/authz/7")).body, "param GET id=7 kind=authz");
}

TEST(RouterTest, MethodFirstThenSpecificity) {
  Router router;
  ASSERT_TRUE(router.Get("/a/{id}", Echo("get-param")));
  ASSERT_TRUE(router.Post("/a/new", Echo("post-new")));
  // GET /a/new is served by the parameter route rather than refused by the literal POST route.
  EXPECT_EQ(router.Handle(Request("GET", "/a/new")).body, "get-param GET id=new");
  EXPECT_EQ(router.Handle(Request("POST", "/a/new")).body, "post-new POST");
}

TEST(RouterTest, RejectsInvalidRegistrations) {
  Router router;
  const RouteHandler h = Echo("h");
  EXPECT_EQ(router.Add("", "/a", h).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(router.Add("G ET", "/a", h));
  EXPECT_FALSE(router.Add("GET", "a", h));
  EXPECT_FALSE(router.Add("GET", "", h));
  EXPECT_FALSE(router.Add("GET", "/a/{}", h));
  EXPECT_FALSE(router.Add("GET", "/a/x{id}", h));
  EXPECT_FALSE(router.Add("GET", "/a/{i-d}", h));
  EXPECT_FALSE(router.Add("GET", "/a/{id}/{id}", h));
  EXPECT_FALSE(router.Add("POST", "/a", h, {.head = true}));
  EXPECT_FALSE(router.Add("GET", "/a", RouteHandler()));
  ASSERT_TRUE(router.Add("GET", "/a/{id}", h));
  const Status dup = router.Add("GET", "/a/{other}", h);
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().detail().find("GET /a/{id}"), std::string::npos) << dup.error().detail();
  EXPECT_TRUE(router.Add("POST", "/a/{id}", h));
}

TEST(RouterTest, ThrowingHandlerIs500WithoutDetails) {
  Router router;
  ASSERT_TRUE(router.Get("/boom", [](const HttpRequest&, const RouteParams&) -> HttpResponse {
    throw std::runtime_error("secret internal state");
  }));
  const HttpResponse r = router.Handle(Request("GET", "/boom"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
}

TEST(RouterTest, AsHandlerDispatches) {
  Router router;
  ASSERT_TRUE(router.Get("/healthz", [](const HttpRequest&, const RouteParams&) {
    return HttpResponse::Text(200, "ok");
  }));
  const HttpHandler handler = router.AsHandler();
  EXPECT_EQ(handler(Request("GET", "/healthz")).body, "ok");
  EXPECT_EQ(handler(Request("GET", "/nope")).status, 404);
}

TEST(RouterTest, ReportsTheMatchedPattern) {
  Router router;
  ASSERT_TRUE(router.Get("/acme/order/{id}", Echo("order"), {.head = true}));
  std::string pattern = "stale";
  EXPECT_EQ(router.Handle(Request("GET", "/acme/order/abc"), &pattern).status, 200);
  EXPECT_EQ(pattern, "/acme/order/{id}");
  EXPECT_EQ(router.Handle(Request("HEAD", "/acme/order/abc"), &pattern).status, 200);
  EXPECT_EQ(pattern, "/acme/order/{id}");
  EXPECT_EQ(router.Handle(Request("POST", "/acme/order/abc"), &pattern).status, 405);
  EXPECT_EQ(pattern, "");
  pattern = "stale";
  EXPECT_EQ(router.Handle(Request("GET", "/elsewhere"), &pattern).status, 404);
  EXPECT_EQ(pattern, "");
}

}  // namespace
}  // namespace e2eid::server
