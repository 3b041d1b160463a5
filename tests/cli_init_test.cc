// `e2eid init` as a user runs it, checked with the openssl CLI.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/file.h"
#include "tests/test_util.h"

namespace e2eid {
namespace {

using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

std::string E2eid(const std::string& args) { return std::string(E2EID_BINARY) + " " + args; }

mode_t Mode(const std::string& p) {
  struct stat st;
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST(CliInitTest, CreatesAVerifiableHierarchy) {
  TempDir tmp;
  const std::string dir = tmp / "ca";
  auto r = RunCommand(E2eid("init --dir " + ShellQuote(dir) + " --domain example.org"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("root SHA-256 fingerprint"), std::string::npos) << r.output;
  EXPECT_EQ(Mode(dir + "/root.key"), 0600u);
  EXPECT_EQ(Mode(dir + "/intermediate.key"), 0600u);

  auto v = RunCommand("openssl verify -CAfile " + ShellQuote(dir + "/root.pem") + " " +
                      ShellQuote(dir + "/intermediate.pem"));
  EXPECT_EQ(v.exit_code, 0) << v.output;
  auto text = RunCommand("openssl x509 -noout -text -in " + ShellQuote(dir + "/intermediate.pem"));
  EXPECT_NE(text.output.find("CA:TRUE, pathlen:0"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("Name Constraints: critical"), std::string::npos);
  EXPECT_NE(text.output.find("URI:example.org"), std::string::npos);
  auto root = RunCommand("openssl x509 -noout -text -in " + ShellQuote(dir + "/root.pem"));
  EXPECT_NE(root.output.find("CA:TRUE, pathlen:1"), std::string::npos) << root.output;
}

TEST(CliInitTest, RefusesToOverwriteAndSaysWhy) {
  TempDir tmp;
  const std::string dir = tmp / "ca";
  ASSERT_EQ(RunCommand(E2eid("init --dir " + ShellQuote(dir))).exit_code, 0);
  const std::string key_before = *ReadFile(dir + "/intermediate.key");
  auto again = RunCommand(E2eid("init --dir " + ShellQuote(dir)));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("already exists; refusing to overwrite an existing CA"),
            std::string::npos)
      << again.output;
  EXPECT_EQ(*ReadFile(dir + "/intermediate.key"), key_before);
}

TEST(CliInitTest, PassphraseFileAndKeyTypes) {
  TempDir tmp;
  ASSERT_TRUE(WriteNewFile(tmp / "pass", "s3cret passphrase\n", 0600));
  auto r = RunCommand(E2eid("init --dir " + ShellQuote(tmp / "ca") + " --key-type ed25519" +
                            " --passphrase-file " + ShellQuote(tmp / "pass")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(ReadFile(tmp / "ca/intermediate.key")->find("ENCRYPTED PRIVATE KEY"),
            std::string::npos);
  // The trailing newline is not part of the passphrase.
  auto dec = RunCommand("openssl pkey -noout -in " + ShellQuote(tmp / "ca/intermediate.key") +
                        " -passin pass:" + ShellQuote("s3cret passphrase"));
  EXPECT_EQ(dec.exit_code, 0) << dec.output;
  auto text = RunCommand("openssl x509 -noout -text -in " + ShellQuote(tmp / "ca/root.pem"));
  EXPECT_NE(text.output.find("ED25519"), std::string::npos) << text.output;
}

TEST(CliInitTest, ClearErrorsForBadUsage) {
  TempDir tmp;
  struct Case {
    std::string args;
    int exit_code;
    const char* message;
  };
  const Case cases[] = {
      {"init", 2, "e2eid init: missing required option --dir"},
      {"init --dir " + tmp / "a" + " --key-type dsa", 2, "unsupported key type 'dsa'"},
      {"init --dir " + tmp / "b" + " --passphrase-file " + tmp / "none", 2,
       "--passphrase-file: no such file"},
      {"init --dir " + tmp / "c" + " --domain Bad_Domain", 1, "domain 'Bad_Domain'"},
      {"init --dir " + tmp / "d" + " --bogus", 2, "unknown option --bogus"},
      {"frobnicate", 2, "unknown command 'frobnicate'"},
  };
  for (const auto& c : cases) {
    auto r = RunCommand(E2eid(c.args));
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
  }
  EXPECT_FALSE(PathExists(tmp / "a"));
  EXPECT_FALSE(PathExists(tmp / "c"));
}

}  // namespace
}  // namespace e2eid
