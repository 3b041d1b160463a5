// Helpers shared by e2eid's tests: temporary directories, running external commands (the
// `openssl` CLI, clients under test) and child processes, free loopback ports. Header-only; test
// code only.
#ifndef E2EID_TESTS_TEST_UTIL_H_
#define E2EID_TESTS_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace e2eid::testing {

// A fresh directory under /tmp, removed with its contents when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/e2eid-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh, capturing stdout and stderr.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Quotes a string for /bin/sh.
inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// A child process whose stdout and stderr go to a file. Killed (SIGKILL) if still running when the
// object goes away.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_path,
          const std::vector<std::string>& env = {})
      : log_path_(log_path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Waits until the log contains `needle` (true) or the process exits or `limit` passes (false).
  bool WaitForLog(const std::string& needle,
                  std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (Log().find(needle) != std::string::npos) return true;
      int status;
      if (!exited_ && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        exit_status_ = status;
      }
      if (exited_) return Log().find(needle) != std::string::npos;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // True once the process has exited (reaps it).
  bool Exited() {
    int status;
    if (!exited_ && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_status_ = status;
    }
    return exited_;
  }
  // Sends `sig` (0: none, just wait) and waits for the exit; returns the exit code (-1 when
  // killed by a signal).
  int SignalAndWait(int sig) {
    if (!exited_) {
      if (sig != 0) ::kill(pid_, sig);
      ::waitpid(pid_, &exit_status_, 0);
      exited_ = true;
    }
    return WIFEXITED(exit_status_) ? WEXITSTATUS(exit_status_) : -1;
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_status_ = 0;
};

#ifdef E2EID_SOURCE_DIR
// The path of `rel` in the source tree (e.g. "tests/idp/server.js").
inline std::string Src(const std::string& rel) { return std::string(E2EID_SOURCE_DIR) + "/" + rel; }
#endif

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice); 0 on failure.
inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// The rest of the line after `prefix` once a complete such line is in the process log; "" when
// it does not appear within `limit` (or the process exits first).
inline std::string WaitForLine(Process& p, const std::string& prefix,
                               std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  if (!p.WaitForLog(prefix, limit)) return "";
  for (int i = 0; i < 50; ++i) {
    const std::string log = p.Log();
    const size_t at = log.find(prefix) + prefix.size();
    const size_t end = log.find('\n', at);
    if (end != std::string::npos) return log.substr(at, end - at);
    p.WaitForLog("\x01never", std::chrono::milliseconds(100));  // the line is being written
  }
  return "";
}

#if defined(E2EID_SOURCE_DIR) && defined(E2EID_BINARY)
// The test identity provider (tests/idp/server.js, a Keycloak-like realm `realm`) on a free port;
// *idp owns the process, which logs to `log`. Returns the issuer URL; "" when it did not start
// (its log says why).
inline std::string StartTestIdp(std::unique_ptr<Process>* idp, const std::string& log,
                                const std::string& realm, bool test_control = false) {
  std::vector<std::string> argv = {
      "/usr/bin/env", "node", Src("tests/idp/server.js"), "--port", std::to_string(FreePort()),
      "--realm",      realm};
  if (test_control) argv.push_back("--test-control");
  *idp = std::make_unique<Process>(argv, log);
  return WaitForLine(**idp, "IDP READY ");
}

// `e2eid init` for `domain` in dir/ca (no name constraints), then `e2eid serve` with dir/e2eid.toml
// on a free port: the store dir/e2eid.db, validity 24h (max 7d), [identity] for `issuer` with the
// client e2eid-device plus the lines `identity_extra`, [admin] with the client e2eid-admin-cli.
// Returns the base URL https://localhost:PORT with *server running; "" with *error set otherwise.
inline std::string StartIdentityServer(const TempDir& dir, const std::string& domain,
                                       const std::string& issuer, const std::string& identity_extra,
                                       std::unique_ptr<Process>* server, std::string* error) {
  auto init = RunCommand(std::string(E2EID_BINARY) + " init --dir " + ShellQuote(dir / "ca") +
                         " --domain " + domain + " --no-name-constraints");
  if (init.exit_code != 0) {
    *error = "init failed: " + init.output;
    return "";
  }
  const int port = FreePort();
  const std::string config = dir / "e2eid.toml";
  std::ofstream(config) << "[server]\nlisten = \"127.0.0.1:" << port << "\"\n"
                        << "[ca]\ndir = \"ca\"\n[store]\npath = \"e2eid.db\"\n"
                        << "[validity]\ndefault = \"24h\"\nmax = \"7d\"\n"
                        << "[identity]\ndomain = \"" << domain << "\"\n"
                        << "oidc_issuer = \"" << issuer << "\"\n"
                        << "oidc_client_id = \"e2eid-device\"\n"
                        << identity_extra << "[admin]\nclient_id = \"e2eid-admin-cli\"\n";
  *server = std::make_unique<Process>(
      std::vector<std::string>{E2EID_BINARY, "serve", "--config", config}, dir / "serve.log");
  if (!(*server)->WaitForLog("e2eid is serving")) {
    *error = "e2eid serve did not start: " + (*server)->Log();
    return "";
  }
  return "https://localhost:" + std::to_string(port);
}
#endif

}  // namespace e2eid::testing

#endif  // E2EID_TESTS_TEST_UTIL_H_
