// Observability of a running `e2eid serve` (issue 6): /metrics moves after a real enrolment
// (tests/idp/server.js as the OpenID provider, tests/idp/browser.py as the person at the browser)
// and an admin revocation; /readyz follows the identity provider; log lines carry request ids; and
// `e2eid check-config` accepts the served configuration.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

#include "core/file.h"
#include "tests/test_util.h"

namespace e2eid::testing {
namespace {

constexpr const char* kDomain = "wire.example.com";

// Runs `argv` (enrol or admin login); each login URL it prints is completed by browser.py as
// `user`. Returns the exit code, -2 when the browser failed.
int RunWithBrowserLogin(const std::vector<std::string>& argv, const std::string& log_path,
                        const std::string& user, const std::string& password, std::string* log) {
  Process p(argv, log_path);
  const std::string prefix = "Open this URL to log in: ";
  for (size_t handled = 0;;) {
    std::string url;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (url.empty() && !p.Exited() && std::chrono::steady_clock::now() < end) {
      const std::string text = p.Log();
      size_t at = 0;
      for (size_t seen = 0; (at = text.find(prefix, at)) != std::string::npos; ++seen) {
        if (seen == handled) {
          const size_t eol = text.find('\n', at);
          if (eol != std::string::npos) {
            url = text.substr(at + prefix.size(), eol - at - prefix.size());
          }
          break;
        }
        at += prefix.size();
      }
      if (url.empty()) p.WaitForLog("\x01never", std::chrono::milliseconds(100));
    }
    if (url.empty()) break;
    ++handled;
    auto browser =
        RunCommand("python3 " + ShellQuote(Src("tests/idp/browser.py")) + " login --url " +
                   ShellQuote(url) + " --user " + user + " --password " + ShellQuote(password));
    if (browser.exit_code != 0) {
      *log = "browser.py failed: " + browser.output + "\n" + p.Log();
      p.SignalAndWait(SIGTERM);
      return -2;
    }
  }
  const int code = p.SignalAndWait(0);
  *log = p.Log();
  return code;
}

// The value of the sample `series` (name plus label text exactly as exposed), or -1 when absent.
double Sample(const std::string& metrics, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const size_t at = ("\n" + metrics).find(needle);
  if (at == std::string::npos) return -1;
  const size_t start = at + needle.size() - 1;
  return std::stod(metrics.substr(start, metrics.find('\n', start) - start));
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    issuer_ = StartTestIdp(&idp_, dir_ / "idp.log", "e2eid");
    ASSERT_FALSE(issuer_.empty()) << idp_->Log();
    std::string error;
    base_ = StartIdentityServer(dir_, kDomain, issuer_, "", &server_, &error);
    ASSERT_FALSE(base_.empty()) << error;
    config_ = dir_ / "e2eid.toml";
  }

  // curl against the service; "-w" appends the status code after a newline.
  CommandResult Curl(const std::string& path, const std::string& extra = "") {
    return RunCommand("curl -sS --cacert " + ShellQuote(dir_ / "ca/root.pem") + " " + extra +
                      " -w '\\n%{http_code}' " + ShellQuote(base_ + path));
  }
  std::string Metrics() {
    auto r = Curl("/metrics");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(r.output.ends_with("\n200")) << r.output;
    return r.output;
  }

  TempDir dir_;
  std::unique_ptr<Process> idp_;
  std::unique_ptr<Process> server_;
  std::string issuer_;
  std::string config_;
  std::string base_;
};

TEST_F(ObservabilityTest, MetricsMoveAfterEnrolmentAndRevocationReadyzFollowsTheIdp) {
  // ---- ready, and the metrics before anything happened ----
  auto ready = Curl("/readyz");
  EXPECT_EQ(ready.output, "{\"status\":\"ready\"}\n200") << ready.output;
  auto head = RunCommand("curl -sS -I --cacert " + ShellQuote(dir_ / "ca/root.pem") + " " +
                         ShellQuote(base_ + "/metrics"));
  EXPECT_NE(head.output.find("text/plain; version=0.0.4"), std::string::npos) << head.output;
  const std::string before = Metrics();
  EXPECT_NE(before.find("# TYPE e2eid_http_requests_total counter\n"), std::string::npos);
  EXPECT_NE(before.find("# TYPE e2eid_http_request_duration_seconds histogram\n"),
            std::string::npos);
  EXPECT_EQ(Sample(before, "e2eid_certificates_issued_total{profile=\"device\"}"), -1) << before;
  EXPECT_EQ(Sample(before, "e2eid_certificates_revoked_total"), 0) << before;
  EXPECT_EQ(Sample(before, "e2eid_crl_number"), 1) << before;
  EXPECT_GE(Sample(before, "e2eid_crl_age_seconds"), 0) << before;
  EXPECT_EQ(Sample(before,
                   "e2eid_http_requests_total{route=\"/readyz\",method=\"GET\","
                   "status=\"200\"}"),
            1)
      << before;

  // ---- a real enrolment ----
  const std::string state = dir_ / "alice-laptop";
  std::string log;
  ASSERT_EQ(RunWithBrowserLogin(
                {E2EID_BINARY, "enrol", "--state-dir", state, "--server", base_ + "/acme/directory",
                 "--issuer", issuer_, "--client-id", "e2eid-device", "--domain", kDomain,
                 "--ca-file", dir_ / "ca/root.pem", "--login", "browser", "--login-timeout", "60"},
                state + ".log", "alice", "alice-password", &log),
            0)
      << log;
  const std::string enrolled = Metrics();
  EXPECT_EQ(Sample(enrolled, "e2eid_certificates_issued_total{profile=\"device\"}"), 1) << enrolled;
  EXPECT_EQ(Sample(enrolled,
                   "e2eid_http_requests_total{route=\"/acme/order/{id}/finalize\","
                   "method=\"POST\",status=\"200\"}"),
            1)
      << enrolled;
  EXPECT_GE(Sample(enrolled,
                   "e2eid_http_requests_total{route=\"/acme/new-order\","
                   "method=\"POST\",status=\"201\"}"),
            1)
      << enrolled;
  EXPECT_GE(
      Sample(enrolled, "e2eid_http_request_duration_seconds_count{route=\"/acme/new-order\"}"), 1)
      << enrolled;
  EXPECT_GE(Sample(enrolled, "e2eid_jwks_fetches_total{outcome=\"success\"}"), 1) << enrolled;
  EXPECT_GT(Sample(enrolled, "e2eid_store_transaction_duration_seconds_count{kind=\"write\"}"),
            Sample(before, "e2eid_store_transaction_duration_seconds_count{kind=\"write\"}"))
      << enrolled;
  // Log lines emitted while handling a request carry its id, not only the access log line.
  EXPECT_TRUE(std::regex_search(
      server_->Log(),
      std::regex(R"(\{"request_id":"[0-9a-f]{32}",[^\n]*"msg":"certificate issued")")))
      << server_->Log();

  // ---- an admin revocation of the device ----
  const std::string token = dir_ / "admin.token";
  ASSERT_EQ(RunWithBrowserLogin(
                {E2EID_BINARY, "admin", "login", "--issuer", issuer_, "--client-id",
                 "e2eid-admin-cli", "--login", "browser", "--login-timeout", "60", "--out", token},
                token + ".log", "admin", "admin-password", &log),
            0)
      << log;
  auto cert = RunCommand("openssl x509 -in " + ShellQuote(state + "/cert.pem") + " -noout -ext " +
                         "subjectAltName");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      cert.output, m, std::regex("URI:(wireapp://[A-Za-z0-9_-]{22}![0-9a-f]{1,16}@[a-z.]+)")))
      << cert.output;
  auto revoke = RunCommand(std::string(E2EID_BINARY) + " admin --server " + base_ + " --ca-file " +
                           ShellQuote(dir_ / "ca/root.pem") + " --token-file " + ShellQuote(token) +
                           " revoke --scope device --value " + ShellQuote(m[1].str()) +
                           " --reason keyCompromise --json");
  ASSERT_EQ(revoke.exit_code, 0) << revoke.output;
  const std::string revoked = Metrics();
  EXPECT_EQ(Sample(revoked, "e2eid_revocations_total{scope=\"device\"}"), 1) << revoked;
  EXPECT_EQ(Sample(revoked, "e2eid_certificates_revoked_total"), 1) << revoked;
  EXPECT_EQ(Sample(revoked, "e2eid_certificates_issued_total{profile=\"device\"}"), 1) << revoked;

  // ---- a client's X-Request-Id is used when it is a safe token ----
  auto with_id =
      RunCommand("curl -sS -D - -o /dev/null --cacert " + ShellQuote(dir_ / "ca/root.pem") +
                 " -H 'X-Request-Id: obs-test.42' " + ShellQuote(base_ + "/healthz"));
  EXPECT_NE(with_id.output.find("obs-test.42"), std::string::npos) << with_id.output;
  EXPECT_TRUE(server_->WaitForLog("\"request_id\":\"obs-test.42\""));

  // ---- the identity provider goes away: not ready, and the body says why ----
  idp_->SignalAndWait(SIGTERM);
  std::string not_ready;
  for (int i = 0; i < 100 && !not_ready.ends_with("\n503"); ++i) {
    not_ready = Curl("/readyz").output;
    if (!not_ready.ends_with("\n503")) {
      server_->WaitForLog("\x01never", std::chrono::milliseconds(200));
    }
  }
  EXPECT_TRUE(not_ready.ends_with("\n503")) << not_ready;
  EXPECT_NE(not_ready.find("\"identity_provider\""), std::string::npos) << not_ready;
  EXPECT_NE(Curl("/healthz").output.find("\n200"), std::string::npos);  // still alive

  EXPECT_EQ(server_->SignalAndWait(SIGTERM), 0) << server_->Log();
}

TEST(CheckConfigCommandTest, ValidAndInvalidConfigurations) {
  TempDir dir;
  auto init = RunCommand(std::string(E2EID_BINARY) + " init --dir " + ShellQuote(dir / "ca"));
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_TRUE(WriteFileAtomic(dir / "ok.toml", "[server]\nlisten = \"127.0.0.1:9443\"\n", 0600));
  auto ok = RunCommand(std::string(E2EID_BINARY) + " check-config " + ShellQuote(dir / "ok.toml"));
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("[server]\nlisten = \"127.0.0.1:9443\"\n"), std::string::npos)
      << ok.output;
  EXPECT_NE(ok.output.find("external_url = \"https://localhost:9443\"\n"), std::string::npos)
      << ok.output;
  EXPECT_NE(ok.output.find("[revocation]\ncrl_lifetime = \"1h\"\n"), std::string::npos)
      << ok.output;

  ASSERT_TRUE(WriteFileAtomic(dir / "bad.toml", "[ca]\ndir = \"elsewhere\"\n", 0600));
  auto bad =
      RunCommand(std::string(E2EID_BINARY) + " check-config " + ShellQuote(dir / "bad.toml"));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find(dir / "bad.toml" + ": ca.dir: cannot load the CA"), std::string::npos)
      << bad.output;

  auto missing =
      RunCommand(std::string(E2EID_BINARY) + " check-config " + ShellQuote(dir / "absent.toml"));
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
}

}  // namespace
}  // namespace e2eid::testing
