// `e2eid serve` as an operator runs it: from a configuration file, over HTTPS with a certificate
// issued by its own CA, stopping cleanly on SIGTERM.
#include <gtest/gtest.h>

#include <regex>

#include "core/file.h"
#include "tests/test_util.h"

namespace e2eid {
namespace {

using testing::Process;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

class CliServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = RunCommand(std::string(E2EID_BINARY) + " init --dir " + ShellQuote(tmp_ / "ca"));
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }
  void WriteConfig(const std::string& extra = "") {
    ASSERT_TRUE(WriteFileAtomic(tmp_ / "e2eid.toml",
                                "[server]\nlisten = \"127.0.0.1:0\"\n" + extra +
                                    "[ca]\ndir = \"ca\"\n[store]\npath = \"e2eid.db\"\n",
                                0600));
  }
  // The port the service logged as bound.
  static int PortOf(const std::string& log) {
    std::smatch m;
    static const std::regex kRe(R"re("listen":"127\.0\.0\.1:(\d+)")re");
    if (!std::regex_search(log, m, kRe)) return -1;
    return std::stoi(m[1]);
  }
  TempDir tmp_;
};

TEST_F(CliServeTest, ServesHealthOverHttpsAndStopsOnSigterm) {
  WriteConfig();
  Process p({E2EID_BINARY, "serve", "--config", tmp_ / "e2eid.toml"}, tmp_ / "serve.log");
  ASSERT_TRUE(p.WaitForLog("e2eid is serving")) << p.Log();
  const int port = PortOf(p.Log());
  ASSERT_GT(port, 0) << p.Log();

  // curl trusts only our root: the chain the service presents must lead to it, for "localhost".
  auto health = RunCommand("curl -sS --fail --cacert " + ShellQuote(tmp_ / "ca/root.pem") +
                           " https://localhost:" + std::to_string(port) + "/healthz");
  EXPECT_EQ(health.exit_code, 0) << health.output;
  EXPECT_EQ(health.output, R"({"status":"ok"})");
  // Unknown paths are 404, not a crash.
  auto missing = RunCommand("curl -sS -o /dev/null -w '%{http_code}' --cacert " +
                            ShellQuote(tmp_ / "ca/root.pem") +
                            " https://localhost:" + std::to_string(port) + "/nope");
  EXPECT_EQ(missing.output, "404");

  EXPECT_EQ(p.SignalAndWait(SIGTERM), 0) << p.Log();
  EXPECT_NE(p.Log().find("\"msg\":\"stopped\""), std::string::npos) << p.Log();
  // The store was created private to the service.
  EXPECT_TRUE(PathExists(tmp_ / "e2eid.db"));
}

TEST_F(CliServeTest, BadConfigurationStopsStartWithFileKeyAndReason) {
  WriteConfig("threads = \"many\"\n");
  auto r =
      RunCommand(std::string(E2EID_BINARY) + " serve --config " + ShellQuote(tmp_ / "e2eid.toml"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(tmp_ / "e2eid.toml" + ": server.threads: expected an integer"),
            std::string::npos)
      << r.output;
}

TEST_F(CliServeTest, MissingCaIsExplained) {
  WriteConfig();
  ASSERT_TRUE(WriteFileAtomic(
      tmp_ / "other.toml", "[server]\nlisten = \"127.0.0.1:0\"\n[ca]\ndir = \"nowhere\"\n", 0600));
  Process p({E2EID_BINARY, "serve", "--config", tmp_ / "other.toml"}, tmp_ / "serve.log");
  EXPECT_TRUE(p.WaitForLog("cannot load the CA")) << p.Log();
  EXPECT_EQ(p.SignalAndWait(0), 1);
}

}  // namespace
}  // namespace e2eid
