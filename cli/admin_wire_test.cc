// `e2eid admin` over real HTTP: the CLI (RunAdmin, libcurl) against the admin API on an in-process
// plain-HTTP server on loopback, with a real SQLite store and RevocationService and a fake token
// verifier. Shows that percent-encoded client ids survive the trip and that refusals reach the
// user as "error: <detail>" with exit code 1.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <memory>
#include <sstream>

#include "acme/wire.h"
#include "cli/admin_client.h"
#include "cli/commands.h"
#include "core/log.h"
#include "revocation/service.h"
#include "server/admin_api.h"
#include "server/http_server.h"
#include "server/router.h"
#include "store/sqlite_store.h"
#include "tests/test_util.h"

namespace e2eid::cli {
namespace {

constexpr std::string_view kAdminSub = "9ad31a1e-4e7f-4d2a-b6c3-ad3100000003";
constexpr std::string_view kAliceSub = "6c1f6a3e-8b1d-4c55-9b3e-a11ce0000001";
const TimePoint kT0 = FromUnix(1767225600);

class TokenTable final : public oidc::TokenVerifier {
 public:
  explicit TokenTable(std::map<std::string, Json> tokens) : tokens_(std::move(tokens)) {}
  Result<Json> VerifyIdToken(std::string_view, const oidc::VerifyOptions&) override {
    return Fail(Error::Unauthorized("not used"));
  }
  Result<Json> VerifyAccessToken(std::string_view jwt, const oidc::VerifyOptions&) override {
    auto it = tokens_.find(std::string(jwt));
    if (it == tokens_.end()) return Fail(Error::Unauthorized("access token: bad signature"));
    return it->second;
  }
  const std::string& issuer() const override { return issuer_; }
  const std::string& client_id() const override { return client_; }

 private:
  const std::map<std::string, Json> tokens_;
  const std::string issuer_ = "https://idp.test";
  const std::string client_ = "e2eid-admin-cli";
};

struct Output {
  int code;
  std::string out;
  std::string err;
};

class AdminWireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([](std::string_view) {});
    auto s = store::OpenSqliteStore({.path = tmp_ / "e2eid.db", .synchronous_full = false});
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
    alice_ = *acme::WireUserIdFromUuid(kAliceSub);
    device_ = "wireapp://" + alice_ + "!c0ffee@example.com";
    ASSERT_TRUE(store_->InTransaction([&](store::Transaction& tx) -> Status {
      store::User u{.id = alice_, .handle = "alice", .display_name = "Alice Smith"};
      u.first_seen = u.last_seen = kT0;
      E2EID_CHECK_OK(tx.InsertUser(u));
      store::Device d{.id = device_, .user_id = alice_, .display_name = "Alice Smith"};
      d.handle = "alice";
      d.first_seen = d.last_seen = kT0;
      E2EID_CHECK_OK(tx.InsertDevice(d));
      E2EID_CHECK_OK(tx.ReserveSerial("1a2b", kT0));
      store::Certificate c;
      c.serial = "1a2b";
      c.user_id = alice_;
      c.device_id = device_;
      c.spki_sha256 = std::string(64, 'c');
      c.issued_at = c.not_before = kT0;
      c.not_after = kT0 + std::chrono::seconds(86400);
      c.der = {0x30, 0x00};
      return tx.InsertCertificate(c);
    }));
    revocations_ = std::make_unique<revocation::RevocationService>(*store_, clock_);
    api_ = std::make_unique<server::AdminApi>(
        server::AdminApiOptions{},
        server::AdminApi::Deps{
            .store = *store_, .revocations = *revocations_, .verifier = tokens_, .clock = clock_});
    ASSERT_TRUE(server::AddAdminRoutes(router_, *api_));
    server::HttpServer::Options options;
    options.threads = 2;
    server_ = std::make_unique<server::HttpServer>(options, router_.AsHandler());
    ASSERT_TRUE(server_->Start());
    url_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    server_->Stop();
    ::unsetenv(kAdminTokenEnv);
    SetLogSink({});
  }

  Output Run(const std::string& token, std::vector<std::string> argv) {
    ::setenv(kAdminTokenEnv, token.c_str(), 1);
    argv.insert(argv.begin(), {"--server", url_});
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    const int code = RunAdmin(argv);
    Output o{code, ::testing::internal::GetCapturedStdout(),
             ::testing::internal::GetCapturedStderr()};
    return o;
  }

  testing::TempDir tmp_;
  FakeClock clock_{kT0 + std::chrono::seconds(3600)};
  TokenTable tokens_{
      {{"admin-token", Json{{"sub", kAdminSub}, {"realm_access", {{"roles", {"e2eid-admin"}}}}}},
       {"alice-token", Json{{"sub", kAliceSub}}}}};
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<revocation::RevocationService> revocations_;
  std::unique_ptr<server::AdminApi> api_;
  server::Router router_;
  std::unique_ptr<server::HttpServer> server_;
  std::string url_;
  std::string alice_;
  std::string device_;
};

TEST_F(AdminWireTest, AdminCommandsOverHttp) {
  Output o = Run("admin-token", {"devices"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find(device_ + "  " + alice_ + "  active"), std::string::npos) << o.out;

  o = Run("admin-token", {"block", device_, "--reason", "reported lost"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "device " + device_ + " (user " + alice_ + "): blocked (reported lost)\n");

  o = Run("admin-token", {"--json", "devices", "--status", "blocked"});
  ASSERT_EQ(o.code, 0) << o.err;
  auto j = ParseJson(o.out);
  ASSERT_TRUE(j) << o.out;
  ASSERT_EQ((*j)["items"].size(), 1u);
  EXPECT_EQ((*j)["items"][0]["id"], device_);

  o = Run("admin-token", {"unblock", device_});
  ASSERT_EQ(o.code, 0) << o.err;
  o = Run("admin-token",
          {"revoke", "--scope", "device", "--value", device_, "--reason", "keyCompromise"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out.rfind("revoked: 1 certificate(s) revoked (event ", 0), 0u) << o.out;
  o = Run("admin-token",
          {"revoke", "--scope", "device", "--value", device_, "--reason", "keyCompromise"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out.rfind("revoked: 0 certificate(s)", 0), 0u) << o.out;

  o = Run("admin-token", {"certificate", "1A:2B"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("keyCompromise"), std::string::npos) << o.out;

  o = Run("admin-token", {"revoke", "--scope", "device", "--value", device_, "--reason", "7"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err.rfind("error: ", 0), 0u) << o.err;

  o = Run("admin-token", {"audit", "--export"});
  ASSERT_EQ(o.code, 0) << o.err;
  std::istringstream lines(o.out);
  std::string line;
  std::vector<std::string> actions;
  while (std::getline(lines, line)) {
    auto event = ParseJson(line);
    ASSERT_TRUE(event) << line;
    actions.push_back((*event)["action"]);
    EXPECT_EQ((*event)["actor"], "admin:" + std::string(kAdminSub));
  }
  // The refused reason 7 was not stored: invalid requests change nothing.
  EXPECT_EQ(actions, (std::vector<std::string>{"device.block", "device.unblock", "device.revoke",
                                               "device.revoke"}));
}

TEST_F(AdminWireTest, RefusalsAreErrorsWithExitCodeOne) {
  Output o = Run("alice-token", {"users"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "error: the token does not carry the role 'e2eid-admin'\n");
  o = Run("forged", {"users"});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err.rfind("error: invalid access token", 0), 0u) << o.err;

  // Self-service with the user's own token.
  o = Run("alice-token", {"me", "devices"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find(device_), std::string::npos) << o.out;
  o = Run("alice-token", {"me", "remove", device_});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "removed device " + device_ + ": 1 certificate(s) revoked (event 1)\n");
  o = Run("admin-token", {"me", "remove", device_});
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.err, "error: device '" + device_ + "' is not one of your devices\n");
}

}  // namespace
}  // namespace e2eid::cli
