// `e2eid enrol` / `e2eid renew` as commands: help text, usage errors, exit codes, and the daemon's
// clean stop on SIGTERM. In process (the commands are functions of their arguments).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <thread>

#include "cli/commands.h"
#include "core/file.h"
#include "tests/test_util.h"

namespace e2eid::cli {
namespace {

using e2eid::testing::TempDir;

TEST(EnrolCommandTest, HelpDocumentsEveryFlag) {
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(RunEnrol({"--help"}), 0);
  const std::string help = ::testing::internal::GetCapturedStdout();
  for (const char* flag :
       {"--state-dir DIR", "--server URL", "--issuer URL", "--client-id ID", "--domain DOMAIN",
        "--key-type TYPE", "--rotate-key", "--login MODE", "--login-timeout SECONDS",
        "--oidc-mode MODE", "--access-token FILE", "--id-token FILE", "--validity DURATION",
        "--ca-file PEM", "--device-authority URL", "--help"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag << "\n" << help;
  }
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(RunRenew({"--help"}), 0);
  const std::string renew_help = ::testing::internal::GetCapturedStdout();
  for (const char* flag :
       {"--state-dir DIR", "--force", "--rotate-key", "--daemon", "--ca-file PEM", "--help"}) {
    EXPECT_NE(renew_help.find(flag), std::string::npos) << flag << "\n" << renew_help;
  }
  EXPECT_NE(renew_help.find("3 the identity"), std::string::npos) << renew_help;
}

TEST(EnrolCommandTest, UsageErrorsExitWithTwo) {
  TempDir tmp;
  const std::string dir = tmp / "state";
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"--state-dir", dir, "--bogus"},
      {"--state-dir", dir, "--login", "carrier-pigeon"},
      {"--state-dir", dir, "--oidc-mode", "magic"},
      {"--state-dir", dir, "--key-type", "rsa"},
      {"--state-dir", dir, "--validity", "ten days"},
      {"--state-dir", dir, "--id-token", "f"},
      {"--state-dir", dir, "--login", "device", "--access-token", "f"},
      {"--state-dir", dir, "--login", "device", "--oidc-mode", "nonce"},
      // first enrolment without the server settings
      {"--state-dir", dir, "--server", "https://ca/acme/directory"},
  };
  for (const auto& argv : cases) {
    ::testing::internal::CaptureStderr();
    const int code = RunEnrol(argv);
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(code, 2) << err;
    EXPECT_EQ(err.rfind("e2eid enrol: ", 0), 0u) << err;
  }
  EXPECT_FALSE(PathExists(dir + "/device.key"));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunRenew({"--state-dir", dir, "--force", "--daemon"}), 2);
  EXPECT_EQ(RunRenew({}), 2);
  ::testing::internal::GetCapturedStderr();
}

TEST(EnrolCommandTest, RenewWithoutEnrolmentFails) {
  TempDir tmp;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunRenew({"--state-dir", tmp / "nothing"}), 1);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("run e2eid enrol first"), std::string::npos) << err;
}

TEST(EnrolCommandTest, DaemonStopsCleanlyOnSigterm) {
  TempDir tmp;
  // SIGTERM is blocked in this thread and so in the daemon thread (masks are inherited): it can
  // only be collected by the daemon's sigtimedwait, never kill the test.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
  int code = -1;
  ::testing::internal::CaptureStderr();
  std::thread daemon([&] { code = RunRenew({"--state-dir", tmp / "nothing", "--daemon"}); });
  // The first attempt fails (no enrolment) and the daemon backs off for at least 15 s; the
  // pending signal ends that wait at once.
  ASSERT_EQ(pthread_kill(daemon.native_handle(), SIGTERM), 0);
  daemon.join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &old, nullptr), 0);
  EXPECT_EQ(code, 0) << err;
  EXPECT_NE(err.find("daemon started"), std::string::npos) << err;
  EXPECT_NE(err.find("stopping"), std::string::npos) << err;
}

}  // namespace
}  // namespace e2eid::cli
