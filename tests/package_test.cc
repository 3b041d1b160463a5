// The Debian package as an operator gets it: cpack builds e2eid_<version>_<arch>.deb from the CMake
// build directory this test was built in, dpkg-deb shows its files and metadata, and the package is
// installed — with `dpkg -i` when the test runs as root with dpkg (then removed and purged again),
// otherwise extracted with `dpkg -x` into a temporary root — and the installed binary serves
// /healthz with the installed configuration.
//
// Set E2EID_PACKAGE_TEST_EXTRACT=1 to force the extraction even as root. The test never touches an
// e2eid package that was installed before it ran (it extracts instead).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>

#include "core/file.h"
#include "tests/test_util.h"

namespace e2eid {
namespace {

using testing::Process;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

constexpr const char* kLogPrefix = "[package_test] ";

bool HasTool(const std::string& tool) {
  return RunCommand("command -v " + ShellQuote(tool)).exit_code == 0;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The files e2eid_*.deb must hold (as `dpkg-deb -c` names them).
const std::vector<std::string>& ExpectedFiles() {
  static const std::vector<std::string> kFiles = {
      "./usr/bin/e2eid",
      "./lib/systemd/system/e2eid.service",
      "./etc/e2eid/e2eid.toml",
      "./usr/share/doc/e2eid/README.md",
      "./usr/share/doc/e2eid/identity.md",
      "./usr/share/doc/e2eid/keycloak.md",
      "./usr/share/doc/e2eid/operations.md",
      "./usr/share/doc/e2eid/examples/e2eid.example.toml",
      "./usr/share/doc/e2eid/examples/realm-e2eid.json",
  };
  return kFiles;
}

// What the package installed on this system, undone when the object goes away (also when an
// assertion ends the test early): the package is purged, and the user e2eid and /var/lib/e2eid
// are removed when they did not exist before the test.
class DpkgInstallation {
 public:
  DpkgInstallation()
      : had_user_(RunCommand("getent passwd e2eid").exit_code == 0),
        had_state_dir_(std::filesystem::exists("/var/lib/e2eid")) {}
  ~DpkgInstallation() {
    if (!installed_) return;
    RunCommand("dpkg --purge e2eid");
    if (!had_user_) RunCommand("(userdel e2eid; getent group e2eid && groupdel e2eid) >/dev/null");
    if (!had_state_dir_) {
      std::error_code ec;
      std::filesystem::remove_all("/var/lib/e2eid", ec);
    }
  }
  DpkgInstallation(const DpkgInstallation&) = delete;
  DpkgInstallation& operator=(const DpkgInstallation&) = delete;

  testing::CommandResult Install(const std::string& deb) {
    installed_ = true;  // a failed dpkg -i can leave a half-installed package: purge it too
    return RunCommand("dpkg -i " + ShellQuote(deb));
  }

 private:
  bool had_user_;
  bool had_state_dir_;
  bool installed_ = false;
};

int PortOf(const std::string& log) {
  std::smatch m;
  static const std::regex kRe(R"re("listen":"127\.0\.0\.1:(\d+)")re");
  if (!std::regex_search(log, m, kRe)) return -1;
  return std::stoi(m[1]);
}

mode_t Mode(const std::string& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(PackageTest, DebBuildsInstallsAndServesHealth) {
  for (const char* tool : {"cpack", "dpkg-deb", "dpkg-shlibdeps", "file", "curl"}) {
    if (!HasTool(tool)) GTEST_SKIP() << tool << " is not installed (Debian packaging tools needed)";
  }
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - start)
                              .count()) +
           " ms";
  };
  TempDir tmp;

  // ---- build the package from this test's build directory ----
  const std::string build_dir = E2EID_BINARY_DIR;
  auto cpack = RunCommand("cpack -G DEB --config " + ShellQuote(build_dir + "/CPackConfig.cmake") +
                          " -B " + ShellQuote(tmp / "out"));
  ASSERT_EQ(cpack.exit_code, 0) << cpack.output;
  auto version_run = RunCommand(std::string(E2EID_BINARY) + " version");
  ASSERT_EQ(version_run.exit_code, 0) << version_run.output;
  std::smatch vm;
  const std::string version_text = version_run.output;
  ASSERT_TRUE(std::regex_search(version_text, vm, std::regex(R"(e2eid (\S+))")))
      << version_run.output;
  const std::string version = vm[1];
  const std::string arch = Trim(RunCommand("dpkg --print-architecture").output);
  const std::string deb = tmp / ("out/e2eid_" + version + "_" + arch + ".deb");
  ASSERT_TRUE(PathExists(deb)) << "expected " << deb << "\n" << cpack.output;
  std::cout << kLogPrefix << "built " << std::filesystem::path(deb).filename().string() << " ("
            << std::filesystem::file_size(deb) / 1024 << " KiB) in " << elapsed() << "\n";

  // ---- contents ----
  auto contents = RunCommand("dpkg-deb -c " + ShellQuote(deb));
  ASSERT_EQ(contents.exit_code, 0) << contents.output;
  for (const auto& f : ExpectedFiles()) {
    EXPECT_NE(contents.output.find(" " + f + "\n"), std::string::npos) << "missing " << f << " in\n"
                                                                       << contents.output;
  }
  // The binary is executable, the unit and the configuration are not; all owned by root.
  EXPECT_TRUE(std::regex_search(
      contents.output, std::regex(R"(-rwxr-xr-x root/root +\d+ \S+ \S+ \./usr/bin/e2eid)")))
      << contents.output;
  EXPECT_TRUE(std::regex_search(
      contents.output, std::regex(R"(-rw-r--r-- root/root +\d+ \S+ \S+ \./etc/e2eid/e2eid.toml)")))
      << contents.output;
  // Nothing but the binary, the unit, the configuration and the documentation: no state, no
  // headers or static libraries.
  std::istringstream lines(contents.output);
  for (std::string line; std::getline(lines, line);) {
    const auto at = line.find(" ./");
    ASSERT_NE(at, std::string::npos) << line;
    const std::string path = line.substr(at + 1);
    const bool allowed = path == "./" || path.starts_with("./usr/") || path.starts_with("./lib/") ||
                         path.starts_with("./etc/");
    EXPECT_TRUE(allowed) << "unexpected path in the package: " << path;
    EXPECT_EQ(path.find("/include/"), std::string::npos) << path;
    EXPECT_FALSE(path.ends_with(".a")) << path;
  }

  // ---- metadata ----
  auto info = RunCommand("dpkg-deb -I " + ShellQuote(deb));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find(" Package: e2eid\n"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find(" Version: " + version + "\n"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find(" Architecture: " + arch + "\n"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find(" Maintainer: "), std::string::npos) << info.output;
  EXPECT_NE(info.output.find(" Description: "), std::string::npos) << info.output;
  // The control archive holds the maintainer scripts and the conffile list.
  for (const char* member : {"conffiles", "postinst", "postrm", "md5sums"}) {
    EXPECT_TRUE(std::regex_search(info.output, std::regex(std::string(" ") + member + "\\s")))
        << member << "\n"
        << info.output;
  }

  auto depends = RunCommand("dpkg-deb -f " + ShellQuote(deb) + " Depends");
  ASSERT_EQ(depends.exit_code, 0) << depends.output;
  // adduser for the postinst; the rest comes from dpkg-shlibdeps (the libraries e2eid links).
  std::vector<std::string> depends_names;  // "libc6 (>= 2.34), adduser" -> libc6, adduser
  {
    std::istringstream in(Trim(depends.output));
    for (std::string item; std::getline(in, item, ',');) {
      const auto first = item.find_first_not_of(' ');
      if (first == std::string::npos) continue;
      depends_names.push_back(item.substr(first, item.find_first_of(" (", first) - first));
    }
  }
  for (const char* dep :
       {"adduser", "libc6", "libssl3", "libsqlite3-0", "libcurl4", "libstdc++6"}) {
    EXPECT_NE(std::find(depends_names.begin(), depends_names.end(), dep), depends_names.end())
        << dep << " not in Depends: " << depends.output;
  }
  auto conffiles =
      RunCommand("dpkg-deb --ctrl-tarfile " + ShellQuote(deb) + " | tar -xOf - ./conffiles");
  EXPECT_EQ(Trim(conffiles.output), "/etc/e2eid/e2eid.toml") << conffiles.output;

  // ---- install ----
  std::string root;  // where the package's files are: "" (the system) or the extraction root
  std::string mode_reason;
  DpkgInstallation installation;
  const bool preinstalled =
      RunCommand("dpkg-query -W -f='${Status}' e2eid 2>/dev/null | grep -q 'ok installed'")
          .exit_code == 0;
  const char* force_extract = std::getenv("E2EID_PACKAGE_TEST_EXTRACT");
  bool use_dpkg = ::geteuid() == 0 && HasTool("dpkg") && !preinstalled &&
                  !(force_extract != nullptr && std::string(force_extract) == "1");
  if (use_dpkg) {
    auto install = installation.Install(deb);
    if (install.exit_code != 0 && install.output.find("lock") != std::string::npos) {
      // Someone else (apt) holds the dpkg lock: the package cannot be installed now.
      use_dpkg = false;
      mode_reason = "dpkg is locked by another process: " + Trim(install.output);
    } else {
      ASSERT_EQ(install.exit_code, 0) << install.output;
      mode_reason = "running as root with dpkg";
    }
  } else if (::geteuid() != 0) {
    mode_reason = "not running as root";
  } else if (preinstalled) {
    mode_reason = "an e2eid package is already installed on this system; it is left alone";
  } else {
    mode_reason = "E2EID_PACKAGE_TEST_EXTRACT=1";
  }
  if (use_dpkg) {
    std::cout << kLogPrefix << "installed with dpkg -i (" << mode_reason << ")\n";
    // postinst: the system user and its private state directory.
    auto user = RunCommand("getent passwd e2eid");
    EXPECT_EQ(user.exit_code, 0) << "postinst did not create the user e2eid";
    EXPECT_NE(user.output.find(":/var/lib/e2eid:"), std::string::npos) << user.output;
    EXPECT_EQ(Mode("/var/lib/e2eid"), 0700u);
    auto owner = RunCommand("stat -c %U /var/lib/e2eid");
    EXPECT_EQ(Trim(owner.output), "e2eid");
    auto status = RunCommand("dpkg-query -W -f='${Status}\\n${Conffiles}' e2eid");
    EXPECT_NE(status.output.find("install ok installed"), std::string::npos) << status.output;
    EXPECT_NE(status.output.find("/etc/e2eid/e2eid.toml "), std::string::npos) << status.output;
    if (HasTool("systemd-analyze")) {
      auto verify = RunCommand("systemd-analyze verify /lib/systemd/system/e2eid.service");
      EXPECT_EQ(verify.exit_code, 0) << verify.output;
    }
  } else {
    root = tmp / "root";
    auto extract = RunCommand("dpkg-deb -x " + ShellQuote(deb) + " " + ShellQuote(root));
    ASSERT_EQ(extract.exit_code, 0) << extract.output;
    std::cout << kLogPrefix << "extracted with dpkg-deb -x into a temporary root (" << mode_reason
              << ")\n";
  }
  const std::string binary = root + "/usr/bin/e2eid";
  ASSERT_TRUE(PathExists(binary));
  ASSERT_TRUE(PathExists(root + "/etc/e2eid/e2eid.toml"));
  // The packaged configuration keeps the state in the unit's StateDirectory.
  auto packaged = ReadFile(root + "/etc/e2eid/e2eid.toml");
  ASSERT_TRUE(packaged.has_value());
  EXPECT_NE(packaged->find("\ndir = \"/var/lib/e2eid/ca\"\n"), std::string::npos);
  EXPECT_NE(packaged->find("\npath = \"/var/lib/e2eid/e2eid.db\"\n"), std::string::npos);

  // ---- run the installed binary with the installed configuration ----
  const std::string conf_dir = tmp / "etc";
  std::filesystem::create_directories(conf_dir);
  std::filesystem::copy_file(root + "/etc/e2eid/e2eid.toml", conf_dir + "/e2eid.toml");
  auto init = RunCommand(ShellQuote(binary) + " init --dir " + ShellQuote(tmp / "state/ca"));
  ASSERT_EQ(init.exit_code, 0) << init.output;
  // The state paths and the listen address are overridden the documented way (environment), so
  // the configuration file is used exactly as installed.
  Process serve({binary, "serve", "--config", conf_dir + "/e2eid.toml"}, tmp / "serve.log",
                {"E2EID_SERVER_LISTEN=127.0.0.1:0", "E2EID_CA_DIR=" + (tmp / "state/ca"),
                 "E2EID_STORE_PATH=" + (tmp / "state/e2eid.db")});
  ASSERT_TRUE(serve.WaitForLog("e2eid is serving")) << serve.Log();
  const int port = PortOf(serve.Log());
  ASSERT_GT(port, 0) << serve.Log();
  auto health =
      RunCommand("curl -sS --fail --max-time 10 --cacert " + ShellQuote(tmp / "state/ca/root.pem") +
                 " https://localhost:" + std::to_string(port) + "/healthz");
  EXPECT_EQ(health.exit_code, 0) << health.output;
  EXPECT_EQ(health.output, R"({"status":"ok"})");
  EXPECT_EQ(serve.SignalAndWait(SIGTERM), 0) << serve.Log();
  std::cout << kLogPrefix << "the installed binary served /healthz on port " << port << " ("
            << elapsed() << ")\n";

  // ---- remove: the binary goes, the conffile stays until purge ----
  if (use_dpkg) {
    auto remove = RunCommand("dpkg -r e2eid");
    ASSERT_EQ(remove.exit_code, 0) << remove.output;
    EXPECT_FALSE(PathExists("/usr/bin/e2eid"));
    EXPECT_FALSE(PathExists("/lib/systemd/system/e2eid.service"));
    EXPECT_TRUE(PathExists("/etc/e2eid/e2eid.toml"));
    auto purge = RunCommand("dpkg --purge e2eid");
    ASSERT_EQ(purge.exit_code, 0) << purge.output;
    EXPECT_FALSE(PathExists("/etc/e2eid/e2eid.toml"));
    std::cout << kLogPrefix << "removed and purged with dpkg (" << elapsed() << ")\n";
  }
}

}  // namespace
}  // namespace e2eid
