// `e2eid admin` without a server: argument parsing, the requests the subcommands send, the
// tables, token loading, and the client's handling of problem documents (fake HTTP client).
#include "cli/admin_client.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "core/encoding.h"
#include "core/file.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/random.h"
#include "oidc/fake_http_client.h"
#include "tests/test_util.h"

namespace e2eid::cli {
namespace {

const std::string kServer = "https://ca.test:8443";
const std::string kDevice = "wireapp://bGljZS1hbGljZS1hbGljZQ!1f@example.com";
const std::string kDeviceEncoded = "wireapp%3A%2F%2FbGljZS1hbGljZS1hbGljZQ%211f%40example.com";

AdminCommand Parse(std::vector<std::string> argv) {
  auto c = ParseAdminCommand(argv);
  EXPECT_TRUE(c) << c.error().detail();
  return c ? std::move(*c) : AdminCommand{};
}

AdminRequest Build(std::vector<std::string> argv) {
  auto r = BuildAdminRequest(Parse(std::move(argv)));
  EXPECT_TRUE(r) << r.error().detail();
  return r ? std::move(*r) : AdminRequest{};
}

// Sets an environment variable for the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// ---- parsing ----------------------------------------------------------------------------------

TEST(AdminCommandTest, ParsesGlobalOptionsOnEitherSideOfTheSubcommand) {
  AdminCommand c = Parse({"--server", kServer, "--json", "devices", "--user", "u1",
                          "--token-file=/t", "--limit", "5"});
  EXPECT_EQ(c.name, "devices");
  EXPECT_EQ(c.args.Get("server"), kServer);
  EXPECT_TRUE(c.args.Has("json"));
  EXPECT_EQ(c.args.Get("token-file"), "/t");
  EXPECT_EQ(c.args.Get("user"), "u1");
  EXPECT_EQ(c.args.Get("limit"), "5");
  EXPECT_TRUE(c.operands.empty());

  c = Parse({"block", kDevice, "--reason", "lost", "--server", kServer});
  EXPECT_EQ(c.name, "block");
  EXPECT_EQ(c.operands, std::vector<std::string>{kDevice});
  EXPECT_EQ(c.args.Get("reason"), "lost");

  c = Parse({"--server", kServer, "me", "remove", kDevice});
  EXPECT_EQ(c.name, "me remove");
  EXPECT_EQ(c.operands, std::vector<std::string>{kDevice});
  EXPECT_EQ(Parse({"--server", kServer, "me", "devices"}).name, "me devices");

  c = Parse({"login", "--issuer", "https://idp", "--client-id", "admin-cli", "--out", "/tmp/t"});
  EXPECT_EQ(c.name, "login");  // no --server needed
  EXPECT_EQ(Parse({"revoke", "--help"}).name, "help");
  EXPECT_EQ(Parse({"--help"}).name, "help");
}

TEST(AdminCommandTest, UsageErrorsNameTheProblem) {
  struct Case {
    std::vector<std::string> argv;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{}, "missing subcommand"},
      {{"--server", kServer}, "missing subcommand"},
      {{"--server", kServer, "explode"}, "unknown subcommand 'explode'"},
      {{"--server", kServer, "me"}, "'me' needs a subcommand"},
      {{"--server", kServer, "me", "dance"}, "unknown subcommand 'me dance'"},
      {{"--server", kServer, "devices", "--colour", "red"}, "unknown option --colour"},
      {{"--server", kServer, "users", "--user", "u"}, "unknown option --user"},
      {{"--server", kServer, "block"}, "block needs DEVICE"},
      {{"--server", kServer, "block", "a", "b"}, "block needs DEVICE"},
      {{"--server", kServer, "users", "extra"}, "unexpected argument 'extra'"},
      {{"--server", kServer, "revoke", "--scope", "device", "--value", "v"},
       "missing required option --reason"},
      {{"devices"}, "missing --server"},
      {{"login", "--issuer", "https://idp", "--client-id", "c"}, "missing required option --out"},
      {{"--server", kServer, "devices", "--token", "secret"}, "unknown option --token"},
  };
  for (const auto& c : cases) {
    auto r = ParseAdminCommand(c.argv);
    ASSERT_FALSE(r) << c.expected;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().detail().rfind("e2eid admin", 0), 0u) << r.error().detail();
    EXPECT_NE(r.error().detail().find(c.expected), std::string::npos) << r.error().detail();
  }
}

TEST(AdminCommandTest, HelpDocumentsEverySubcommandAndOption) {
  const std::string help = AdminUsage();
  for (const char* s : {"login",
                        "revoke",
                        "certificates",
                        "certificate SERIAL",
                        "devices",
                        "device DEVICE",
                        "block DEVICE",
                        "unblock DEVICE",
                        "users",
                        "user USER",
                        "disable-user USER",
                        "enable-user USER",
                        "revocations",
                        "audit",
                        "me devices",
                        "me remove DEVICE",
                        "--server URL",
                        "--ca-file PEM",
                        "--token-file FILE",
                        "--json",
                        "E2EID_ADMIN_TOKEN",
                        "--issuer URL",
                        "--client-id ID",
                        "--login MODE",
                        "--out FILE",
                        "--scope SCOPE",
                        "--value VALUE",
                        "--reason REASON",
                        "--comment TEXT",
                        "--user USER",
                        "--device DEVICE",
                        "--spki HEX",
                        "--issued-before TIME",
                        "--status STATUS",
                        "--limit N",
                        "--cursor CURSOR",
                        "--export",
                        "Exit status"}) {
    EXPECT_NE(help.find(s), std::string::npos) << s;
  }
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(RunAdmin({"--help"}), 0);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), help);
}

// ---- requests ---------------------------------------------------------------------------------

TEST(AdminCommandTest, BuildsTheRequestOfEachSubcommand) {
  AdminRequest r = Build({"--server", kServer, "revoke", "--scope", "device", "--value", kDevice,
                          "--reason", "keyCompromise", "--comment", "stolen"});
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/admin/v1/revocations");
  ASSERT_TRUE(r.body);
  EXPECT_EQ(*r.body, (Json{{"scope", "device"},
                           {"value", kDevice},
                           {"reason", "keyCompromise"},
                           {"comment", "stolen"}}));
  r = Build({"--server", kServer, "revoke", "--scope", "certificate", "--value", "0a:1b",
             "--reason", "1"});
  EXPECT_EQ((*r.body)["reason"], 1);
  EXPECT_FALSE(r.body->contains("comment"));

  r = Build({"--server", kServer, "certificates", "--user", "u 1", "--device", kDevice,
             "--issued-before", "2026-01-01T00:00:00Z", "--status", "good", "--limit", "10",
             "--cursor", "17:ab"});
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/admin/v1/certificates?user=u%201&device=" + kDeviceEncoded +
                        "&issued_before=2026-01-01T00%3A00%3A00Z&status=good&limit=10&cursor=17%"
                        "3Aab");
  EXPECT_FALSE(r.body);
  EXPECT_EQ(Build({"--server", kServer, "certificate", "0A:1B"}).path,
            "/admin/v1/certificates/0A%3A1B");
  EXPECT_EQ(Build({"--server", kServer, "devices"}).path, "/admin/v1/devices");
  EXPECT_EQ(Build({"--server", kServer, "devices", "--status", "blocked"}).path,
            "/admin/v1/devices?status=blocked");
  EXPECT_EQ(Build({"--server", kServer, "device", kDevice}).path,
            "/admin/v1/devices/" + kDeviceEncoded);

  r = Build({"--server", kServer, "block", kDevice, "--reason", "lost"});
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/admin/v1/devices/" + kDeviceEncoded + "/block");
  EXPECT_EQ(*r.body, (Json{{"reason", "lost"}}));
  r = Build({"--server", kServer, "unblock", kDevice});
  EXPECT_EQ(r.path, "/admin/v1/devices/" + kDeviceEncoded + "/unblock");
  EXPECT_FALSE(r.body);

  EXPECT_EQ(Build({"--server", kServer, "users", "--limit", "2"}).path, "/admin/v1/users?limit=2");
  EXPECT_EQ(Build({"--server", kServer, "user", "u1"}).path, "/admin/v1/users/u1");
  EXPECT_EQ(Build({"--server", kServer, "disable-user", "u1", "--reason", "left"}).path,
            "/admin/v1/users/u1/disable");
  EXPECT_EQ(Build({"--server", kServer, "enable-user", "u1"}).path, "/admin/v1/users/u1/enable");
  EXPECT_EQ(Build({"--server", kServer, "revocations"}).path, "/admin/v1/revocations");
  r = Build({"--server", kServer, "audit"});
  EXPECT_EQ(r.path, "/admin/v1/audit");
  EXPECT_FALSE(r.raw);
  r = Build({"--server", kServer, "audit", "--export"});
  EXPECT_EQ(r.path, "/admin/v1/audit/export");
  EXPECT_TRUE(r.raw);
  EXPECT_FALSE(
      BuildAdminRequest(Parse({"--server", kServer, "audit", "--export", "--limit", "3"})));
  EXPECT_EQ(Build({"--server", kServer, "me", "devices"}).path, "/admin/v1/me/devices");
  r = Build({"--server", kServer, "me", "remove", kDevice});
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/admin/v1/me/devices/" + kDeviceEncoded + "/remove");
}

// ---- rendering --------------------------------------------------------------------------------

TEST(AdminCommandTest, RendersAlignedTablesWithoutControlCharacters) {
  EXPECT_EQ(RenderTable({"A", "LONG HEADER", "C"}, {{"x", "y", "z"}, {"wider", "", "last"}}),
            "A      LONG HEADER  C\n"
            "x      y            z\n"
            "wider               last\n");
  EXPECT_EQ(RenderTable({"NAME"}, {{"evil\x1b[2Jname\n"}}), "NAME\nevil?[2Jname?\n");
}

TEST(AdminCommandTest, RendersListingsAndActions) {
  const Json certs = {{"items",
                       {{{"serial", "a1"},
                         {"status", "revoked"},
                         {"user_id", "u1"},
                         {"device_id", kDevice},
                         {"not_after", "2026-04-01T00:00:00Z"},
                         {"revoked_at", "2026-01-02T00:00:00Z"},
                         {"reason_name", "keyCompromise"}},
                        {{"serial", "b2"},
                         {"status", "good"},
                         {"user_id", "u2"},
                         {"device_id", nullptr},
                         {"not_after", "2026-04-02T00:00:00Z"},
                         {"revoked_at", nullptr},
                         {"reason_name", nullptr}}}},
                      {"next", "17:b2"}};
  const std::string text = RenderAdminReply(Parse({"--server", kServer, "certificates"}), certs);
  const std::string header = text.substr(0, text.find('\n'));
  EXPECT_EQ(header.rfind("SERIAL  STATUS   USER  DEVICE  ", 0), 0u) << header;
  EXPECT_NE(header.find(std::string(kDevice.size() - 6, ' ') + "  NOT AFTER "), std::string::npos)
      << header;
  EXPECT_TRUE(header.ends_with("REVOKED AT            REASON")) << header;
  EXPECT_NE(text.find("a1      revoked  u1    " + kDevice), std::string::npos) << text;
  EXPECT_NE(text.find("keyCompromise\n"), std::string::npos) << text;
  EXPECT_NE(text.find("b2      good     u2"), std::string::npos) << text;
  EXPECT_NE(text.find("more: --cursor 17:b2\n"), std::string::npos) << text;

  EXPECT_EQ(RenderAdminReply(Parse({"--server", kServer, "revoke", "--scope", "user", "--value",
                                    "u1", "--reason", "1"}),
                             Json{{"affected", 3}, {"event", 9}}),
            "revoked: 3 certificate(s) revoked (event 9)\n");
  EXPECT_EQ(RenderAdminReply(Parse({"--server", kServer, "block", kDevice}),
                             Json{{"id", kDevice},
                                  {"user_id", "u1"},
                                  {"status", "blocked"},
                                  {"blocked_reason", "lost"}}),
            "device " + kDevice + " (user u1): blocked (lost)\n");
  const std::string devices = RenderAdminReply(
      Parse({"--server", kServer, "me", "devices"}),
      Json{{"items", {{{"id", kDevice}, {"user_id", "u1"}, {"status", "active"}}}}, {"next", ""}});
  EXPECT_EQ(devices.find("more:"), std::string::npos);
  EXPECT_NE(devices.find(kDevice + "  u1    active"), std::string::npos) << devices;
}

// ---- token ------------------------------------------------------------------------------------

TEST(AdminCommandTest, LoadsTheTokenFromAFileOrTheEnvironment) {
  testing::TempDir tmp;
  ASSERT_TRUE(WriteNewFile(tmp / "token", "eyJ.token.sig\nignored\n", 0600));
  ScopedEnv env(kAdminTokenEnv, "from-env");
  EXPECT_EQ(LoadAdminToken(tmp / "token"), "eyJ.token.sig");
  EXPECT_EQ(LoadAdminToken(std::nullopt), "from-env");
  auto missing = LoadAdminToken(tmp / "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(WriteNewFile(tmp / "empty", "\n", 0600));
  EXPECT_FALSE(LoadAdminToken(tmp / "empty"));
  ScopedEnv unset(kAdminTokenEnv, nullptr);
  auto none = LoadAdminToken(std::nullopt);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kInvalidArgument);
}

// ---- the client -------------------------------------------------------------------------------

TEST(AdminClientTest, SendsTheBearerTokenAndTurnsProblemsIntoErrors) {
  oidc::testing::FakeHttpClient http;
  AdminClient client(http, kServer + "/", "tok");
  http.Serve(kServer + "/admin/v1/revocations", 200, R"({"affected":1,"event":2})");
  AdminRequest revoke{.method = "POST",
                      .path = "/admin/v1/revocations",
                      .body = Json{{"scope", "certificate"}, {"value", "a1"}, {"reason", 1}}};
  auto body = client.Send(revoke);
  ASSERT_TRUE(body) << body.error().ToString();
  EXPECT_EQ(*body, R"({"affected":1,"event":2})");
  const auto requests = http.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].url, kServer + "/admin/v1/revocations");
  EXPECT_EQ(FindHeader(requests[0].headers, "Authorization"), "Bearer tok");
  EXPECT_EQ(FindHeader(requests[0].headers, "Content-Type"), "application/json");
  EXPECT_EQ(ParseJson(requests[0].body).value(), *revoke.body);

  struct Case {
    int status;
    ErrorCode code;
  };
  for (const Case c : {Case{400, ErrorCode::kInvalidArgument},
                       {401, ErrorCode::kUnauthenticated},
                       {403, ErrorCode::kForbidden},
                       {404, ErrorCode::kNotFound},
                       {409, ErrorCode::kConflict},
                       {503, ErrorCode::kUnavailable},
                       {500, ErrorCode::kIo}}) {
    http.Serve(kServer + "/admin/v1/users", c.status,
               R"({"type":"urn:ietf:params:acme:error:unauthorized","detail":"no way","status":)" +
                   std::to_string(c.status) + "}",
               {{"Content-Type", "application/problem+json"}});
    auto r = client.Send({.method = "GET", .path = "/admin/v1/users"});
    ASSERT_FALSE(r) << c.status;
    EXPECT_EQ(r.error().code(), c.code) << c.status;
    EXPECT_EQ(r.error().detail(), "no way");
  }
  http.Serve(kServer + "/admin/v1/users", 502, "<html>bad gateway</html>");
  auto r = client.Send({.method = "GET", .path = "/admin/v1/users"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail().find("HTTP 502"), std::string::npos);
}

// A JWT-shaped access token (unsigned: the client only reads "cnf.jkt") bound to `key`.
std::string BoundToken(const crypto::PrivateKey& key) {
  const Json claims = {{"sub", "admin"},
                       {"cnf", {{"jkt", *crypto::JwkThumbprint(*key.public_key())}}}};
  return Base64UrlEncode(std::string(R"({"alg":"RS256","typ":"at+jwt"})")) + "." +
         Base64UrlEncode(DumpJson(claims)) + ".c2ln";
}

TEST(AdminClientTest, SendsADpopProofForABoundToken) {
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
  ASSERT_TRUE(key);
  const std::string token = BoundToken(*key);
  oidc::testing::FakeHttpClient http;
  FakeClock clock(FromUnix(1767225600));
  crypto::SecureRandom rng;
  AdminClient client(http, kServer, token);
  client.UseDpop(*key, clock, rng);
  http.Serve(kServer + "/admin/v1/devices?limit=2", 200, R"({"items":[],"next":""})");
  ASSERT_TRUE(client.Send({.method = "GET", .path = "/admin/v1/devices?limit=2"}));
  ASSERT_TRUE(client.Send({.method = "GET", .path = "/admin/v1/devices?limit=2"}));
  const auto requests = http.Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(FindHeader(requests[0].headers, "Authorization"), "DPoP " + token);
  const std::string proof = FindHeader(requests[0].headers, "DPoP").value_or("");
  auto jws = crypto::ParseCompactJws(proof);
  ASSERT_TRUE(jws) << proof;
  EXPECT_EQ(jws->header["typ"], "dpop+jwt");
  auto jwk_key = crypto::PublicKeyFromJwk(jws->header["jwk"]);
  ASSERT_TRUE(jwk_key);
  EXPECT_TRUE(crypto::VerifyJws(*jws, *jwk_key));
  EXPECT_EQ(*crypto::JwkThumbprint(*jwk_key), *crypto::JwkThumbprint(*key->public_key()));
  const Json claims = *ParseJson(AsString(jws->payload));
  EXPECT_EQ(claims["htm"], "GET");
  EXPECT_EQ(claims["htu"], kServer + "/admin/v1/devices");  // without the query
  EXPECT_EQ(claims["ath"], Base64UrlEncode(crypto::Sha256(token)));
  EXPECT_EQ(claims["iat"], 1767225600);
  // A fresh proof (jti) per request.
  EXPECT_NE(FindHeader(requests[1].headers, "DPoP"), proof);
}

TEST(AdminClientTest, LoadsTheDpopKeyOfABoundToken) {
  testing::TempDir tmp;
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
  auto other = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
  ASSERT_TRUE(key && other);
  const std::string token = BoundToken(*key);
  const std::string token_file = tmp / "admin.token";
  ScopedEnv unset(kAdminDpopKeyEnv, nullptr);
  EXPECT_EQ(AdminDpopKeyPath(token_file), token_file + ".key");
  // An unbound token needs no key.
  auto unbound = LoadAdminDpopKey(std::nullopt, token_file, "opaque-token");
  ASSERT_TRUE(unbound);
  EXPECT_FALSE(unbound->has_value());
  // A bound one without its key: a clear error.
  auto missing = LoadAdminDpopKey(std::nullopt, token_file, token);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(missing.error().detail().find("DPoP-bound"), std::string::npos);
  // Next to the token file (as admin login writes it), from --dpop-key, from the environment.
  ASSERT_TRUE(WriteNewFile(AdminDpopKeyPath(token_file), *key->ToPem(), 0600));
  auto beside = LoadAdminDpopKey(std::nullopt, token_file, token);
  ASSERT_TRUE(beside) << beside.error().ToString();
  ASSERT_TRUE(beside->has_value());
  ASSERT_TRUE(WriteNewFile(tmp / "other.key", *other->ToPem(), 0600));
  auto wrong = LoadAdminDpopKey(tmp / "other.key", token_file, token);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().detail().find("not the key the admin token is bound to"),
            std::string::npos);
  ScopedEnv env(kAdminDpopKeyEnv, (tmp / "other.key").c_str());
  EXPECT_FALSE(LoadAdminDpopKey(std::nullopt, token_file, token));
  EXPECT_TRUE(LoadAdminDpopKey(AdminDpopKeyPath(token_file), std::nullopt, token));
}

TEST(AdminCommandTest, ExitCodes) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunAdmin({"--server", kServer, "explode"}), 2);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("unknown subcommand"), std::string::npos);

  ScopedEnv unset(kAdminTokenEnv, nullptr);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunAdmin({"--server", kServer, "users"}), 2);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("no admin token"), std::string::npos);

  // Nothing listens on port 1: the request fails, exit code 1, "error: ...".
  ScopedEnv token(kAdminTokenEnv, "tok");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunAdmin({"--server", "http://127.0.0.1:1", "users"}), 1);
  EXPECT_EQ(::testing::internal::GetCapturedStderr().rfind("error: ", 0), 0u);
}

}  // namespace
}  // namespace e2eid::cli
