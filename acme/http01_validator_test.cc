#include "acme/http01_validator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace e2eid::acme {
namespace {

constexpr char kToken[] = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
constexpr char kKeyAuthorization[] =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";
constexpr char kChallengePath[] = "/.well-known/acme-challenge/";

// Binds a TCP socket to an ephemeral port on 127.0.0.1 (or ::1 when `ipv6`) and, when `listen_too`,
// listens on it. Returns the socket and sets *port, or returns -1.
int BindLoopback(bool ipv6, bool listen_too, uint16_t* port) {
  const int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  socklen_t len = 0;
  if (ipv6) {
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_loopback;
    len = sizeof *v6;
  } else {
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *v4;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      (listen_too && ::listen(fd, 64) != 0) ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(ipv6 ? v6->sin6_port : v4->sin_port);
  return fd;
}

// What the test server answers to one request.
struct Reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool hang = false;  // read the request, then never answer (until the server stops)
};

struct SeenRequest {
  std::string host;  // Host header without the port
  std::string path;
};

// A tiny HTTP/1.1 server on 127.0.0.1:<ephemeral> running in a thread. It serves one connection at
// a time (Connection: close) and records every request.
class TestHttpServer {
 public:
  using Handler = std::function<Reply(const SeenRequest&)>;

  // With `ipv6` the server listens on ::1; ok() is false when that is not possible.
  explicit TestHttpServer(Handler handler, bool ipv6 = false) : handler_(std::move(handler)) {
    listen_fd_ = BindLoopback(ipv6, /*listen_too=*/true, &port_);
    if (listen_fd_ < 0 || ::pipe2(wake_, O_CLOEXEC) != 0) {
      if (!ipv6) ADD_FAILURE() << "cannot start the test HTTP server";
      return;
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~TestHttpServer() {
    if (thread_.joinable()) {
      (void)!::write(wake_[1], "x", 1);
      thread_.join();
    }
    for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  bool ok() const { return thread_.joinable(); }
  uint16_t port() const { return port_; }
  std::vector<SeenRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  // True when `fd` is readable; false when the server is stopping.
  bool WaitReadable(int fd) {
    pollfd p[2] = {{wake_[0], POLLIN, 0}, {fd, POLLIN, 0}};
    while (true) {
      const int n = ::poll(p, fd >= 0 ? 2 : 1, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || p[0].revents != 0) return false;
      return true;
    }
  }

  void Run() {
    sigset_t pipe_set;  // a client that goes away must not kill the test with SIGPIPE
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
    while (WaitReadable(listen_fd_)) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      Serve(client);
      ::close(client);
    }
  }

  void Serve(int client) {
    std::string request;
    while (request.find("\r\n\r\n") == std::string::npos) {
      if (request.size() > 65536 || !WaitReadable(client)) return;
      char buf[4096];
      const ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<size_t>(n));
    }
    SeenRequest seen;
    const size_t sp1 = request.find(' ');
    const size_t sp2 = request.find(' ', sp1 + 1);
    if (sp1 != std::string::npos && sp2 != std::string::npos) {
      seen.path = request.substr(sp1 + 1, sp2 - sp1 - 1);
    }
    std::string lower = request;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (const size_t h = lower.find("\r\nhost: "); h != std::string::npos) {
      const size_t start = h + 8;
      seen.host = lower.substr(start, lower.find("\r\n", start) - start);
      seen.host = seen.host.substr(0, seen.host.find(':'));
    }
    {
      std::lock_guard lock(mu_);
      requests_.push_back(seen);
    }
    const Reply reply = handler_(seen);
    if (reply.hang) {
      WaitReadable(-1);  // until the server stops
      return;
    }
    std::string out = "HTTP/1.1 " + std::to_string(reply.status) +
                      " Test\r\nContent-Length: " + std::to_string(reply.body.size()) +
                      "\r\nConnection: close\r\n";
    for (const auto& [name, value] : reply.headers) out += name + ": " + value + "\r\n";
    out += "\r\n" + reply.body;
    size_t sent = 0;
    while (sent < out.size()) {
      const ssize_t n = ::send(client, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<SeenRequest> requests_;
};

// A port on 127.0.0.1 where nothing listens: the socket is bound (so nobody else gets the port) but
// never listens, so connections are refused.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = BindLoopback(/*ipv6=*/false, /*listen_too=*/false, &port_);
    if (fd_ < 0) ADD_FAILURE() << "cannot bind a port";
  }
  ~ClosedPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

ValidationRequest Request(std::string host = "anything.localhost") {
  ValidationRequest r;
  r.challenge_type = "http-01";
  r.identifier_type = "dns";
  r.identifier_value = std::move(host);
  r.token = kToken;
  r.key_authorization = kKeyAuthorization;
  return r;
}

std::unique_ptr<Http01Validator> MakeValidator(
    uint16_t port, const std::function<void(Http01Options&)>& tweak = nullptr) {
  Http01Options o;
  o.port = port;
  o.resolver_overrides = {{"*.localhost", "127.0.0.1"}};
  if (tweak) tweak(o);
  auto v = Http01Validator::Create(std::move(o));
  EXPECT_TRUE(v) << v.error().ToString();
  return v ? std::move(*v) : nullptr;
}

Reply Body(std::string body) {
  Reply r;
  r.body = std::move(body);
  return r;
}

Reply RedirectTo(std::string location, int status = 302) {
  Reply r;
  r.status = status;
  r.headers.emplace_back("Location", std::move(location));
  return r;
}

// Asserts `s` failed with `code` and returns the detail.
std::string ExpectError(const Status& s, ErrorCode code) {
  EXPECT_FALSE(s);
  if (s) return "";
  EXPECT_EQ(s.error().code(), code) << s.error().ToString();
  return s.error().detail();
}

// ---- the happy paths ----

TEST(Http01ValidatorTest, CorrectBodyIsOk) {
  TestHttpServer server([](const SeenRequest&) { return Body(kKeyAuthorization); });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  auto s = v->Validate(Request());
  EXPECT_TRUE(s) << s.error().ToString();
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].host, "anything.localhost");
  EXPECT_EQ(seen[0].path, std::string(kChallengePath) + kToken);
}

TEST(Http01ValidatorTest, TrailingWhitespaceIsTrimmed) {
  TestHttpServer server(
      [](const SeenRequest&) { return Body(std::string(kKeyAuthorization) + "\n"); });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  auto s = v->Validate(Request());
  EXPECT_TRUE(s) << s.error().ToString();

  TestHttpServer server2(
      [](const SeenRequest&) { return Body(std::string(kKeyAuthorization) + " \t\r\n\r\n"); });
  auto v2 = MakeValidator(server2.port());
  ASSERT_TRUE(v2);
  auto s2 = v2->Validate(Request());
  EXPECT_TRUE(s2) << s2.error().ToString();
}

TEST(Http01ValidatorTest, ExactOverrideNameAndUpperCaseIdentifier) {
  TestHttpServer server([](const SeenRequest&) { return Body(kKeyAuthorization); });
  auto v = MakeValidator(server.port(), [](Http01Options& o) {
    o.resolver_overrides = {{"host.example", "127.0.0.1"}};
  });
  ASSERT_TRUE(v);
  auto s = v->Validate(Request("Host.Example"));
  EXPECT_TRUE(s) << s.error().ToString();
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].host, "host.example");
}

TEST(Http01ValidatorTest, Ipv6OverrideAddress) {
  TestHttpServer server([](const SeenRequest&) { return Body(kKeyAuthorization); },
                        /*ipv6=*/true);
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  auto v = MakeValidator(server.port(), [](Http01Options& o) {
    o.resolver_overrides = {{"*.localhost", "::1"}};
  });
  ASSERT_TRUE(v);
  auto s = v->Validate(Request());
  EXPECT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(Http01ValidatorTest, EnvironmentProxyIsIgnored) {
  TestHttpServer server([](const SeenRequest&) { return Body(kKeyAuthorization); });
  ClosedPort dead_proxy;
  const std::string proxy = "http://127.0.0.1:" + std::to_string(dead_proxy.port());
  ::setenv("http_proxy", proxy.c_str(), 1);
  ::setenv("all_proxy", proxy.c_str(), 1);
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  auto s = v->Validate(Request());
  ::unsetenv("http_proxy");
  ::unsetenv("all_proxy");
  EXPECT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(Http01ValidatorTest, ManyThreadsAtOnce) {
  TestHttpServer server([](const SeenRequest&) { return Body(kKeyAuthorization); });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        if (v->Validate(Request())) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 24);
  EXPECT_EQ(server.requests().size(), 24u);
}

// ---- wrong answers ----

TEST(Http01ValidatorTest, WrongBodyIsIncorrectResponse) {
  TestHttpServer server([](const SeenRequest&) { return Body("not-the-key-authorization\n"); });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("not-the-key-authorization"), std::string::npos) << detail;
  EXPECT_EQ(detail.find(kKeyAuthorization), std::string::npos) << detail;
}

TEST(Http01ValidatorTest, LeadingWhitespaceIsNotTrimmed) {
  TestHttpServer server(
      [](const SeenRequest&) { return Body(std::string(" ") + kKeyAuthorization); });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  ExpectError(v->Validate(Request()), ErrorCode::kIncorrectResponse);
}

TEST(Http01ValidatorTest, NotFoundIsIncorrectResponse) {
  TestHttpServer server([](const SeenRequest&) {
    Reply r = Body("no such file\x01");
    r.status = 404;
    return r;
  });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("HTTP 404"), std::string::npos) << detail;
  EXPECT_NE(detail.find("no such file\\x01"), std::string::npos) << detail;
}

TEST(Http01ValidatorTest, OnlyStatus200IsAccepted) {
  TestHttpServer server([](const SeenRequest&) {
    Reply r = Body(kKeyAuthorization);
    r.status = 201;
    return r;
  });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("HTTP 201"), std::string::npos) << detail;
}

TEST(Http01ValidatorTest, OversizeBodyIsRefusedWithoutEchoingIt) {
  const std::string huge = std::string(kKeyAuthorization) + std::string(20000, 'A');
  TestHttpServer server([&](const SeenRequest&) { return Body(huge); });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("larger than 8192 bytes"), std::string::npos) << detail;
  EXPECT_LT(detail.size(), 400u);
}

TEST(Http01ValidatorTest, BodyLimitBoundary) {
  // Exactly max_body_bytes (key authorization padded with trailing newlines) is read; one more
  // byte is refused.
  const size_t limit = 8192;
  const std::string at_limit =
      kKeyAuthorization + std::string(limit - std::string(kKeyAuthorization).size(), '\n');
  ASSERT_EQ(at_limit.size(), limit);
  TestHttpServer server([&](const SeenRequest& r) {
    return Body(r.path.ends_with("x") ? at_limit + "\n" : at_limit);
  });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  auto s = v->Validate(Request());
  EXPECT_TRUE(s) << s.error().ToString();
  ValidationRequest over = Request();
  over.token += "x";
  ExpectError(v->Validate(over), ErrorCode::kIncorrectResponse);
}

// ---- network failures ----

TEST(Http01ValidatorTest, NothingListeningIsConnectionError) {
  ClosedPort closed;
  auto v = MakeValidator(closed.port());
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kConnection);
  EXPECT_NE(detail.find("anything.localhost:" + std::to_string(closed.port())), std::string::npos)
      << detail;
}

TEST(Http01ValidatorTest, UnresolvableNameIsDnsError) {
  auto v = MakeValidator(80, [](Http01Options& o) { o.resolver_overrides.clear(); });
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request("nope.invalid")), ErrorCode::kDns);
  EXPECT_NE(detail.find("nope.invalid"), std::string::npos) << detail;
}

TEST(Http01ValidatorTest, ServerThatNeverAnswersTimesOut) {
  TestHttpServer server([](const SeenRequest&) {
    Reply r;
    r.hang = true;
    return r;
  });
  auto v = MakeValidator(server.port(), [](Http01Options& o) {
    o.connect_timeout = std::chrono::milliseconds(300);
    o.total_timeout = std::chrono::milliseconds(300);
  });
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kConnection);
  EXPECT_NE(detail.find("timed out"), std::string::npos) << detail;
}

// ---- redirects ----

TEST(Http01ValidatorTest, RedirectChainWithinLimitIsOk) {
  // 10 redirects (the default limit), alternating host names, relative and absolute, several
  // status codes; all on the configured port.
  uint16_t port = 0;
  TestHttpServer server([&](const SeenRequest& r) {
    static const int kCodes[] = {301, 302, 303, 307, 308};
    if (r.path.starts_with(kChallengePath)) return RedirectTo("/hop/1", 301);
    const int n = std::stoi(r.path.substr(5));
    if (n == 10) return Body(kKeyAuthorization);
    const std::string next = "/hop/" + std::to_string(n + 1);
    if (n % 2 == 1) {
      return RedirectTo(
          "http://b" + std::to_string(n) + ".localhost:" + std::to_string(port) + next,
          kCodes[n % 5]);
    }
    return RedirectTo(next, kCodes[n % 5]);
  });
  port = server.port();
  auto v = MakeValidator(port);
  ASSERT_TRUE(v);
  auto s = v->Validate(Request());
  EXPECT_TRUE(s) << s.error().ToString();
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 11u);
  EXPECT_EQ(seen[0].host, "anything.localhost");
  EXPECT_EQ(seen[2].host, "b1.localhost");
  EXPECT_EQ(seen[10].path, "/hop/10");
}

TEST(Http01ValidatorTest, TooManyRedirectsAreRefused) {
  TestHttpServer server([](const SeenRequest& r) {
    if (r.path.starts_with(kChallengePath)) return RedirectTo("/hop/1");
    const int n = std::stoi(r.path.substr(5));
    if (n == 11) return Body(kKeyAuthorization);
    return RedirectTo("/hop/" + std::to_string(n + 1));
  });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kConnection);
  EXPECT_NE(detail.find("too many redirects"), std::string::npos) << detail;
  EXPECT_EQ(server.requests().size(), 11u);  // the 11th redirect is not followed

  // With a limit of 11, the same chain passes.
  auto lenient = MakeValidator(server.port(), [](Http01Options& o) { o.max_redirects = 11; });
  ASSERT_TRUE(lenient);
  auto s = lenient->Validate(Request());
  EXPECT_TRUE(s) << s.error().ToString();
}

TEST(Http01ValidatorTest, RedirectToDisallowedPortIsRefused) {
  // `other` would serve the right answer, but its port is neither 80, 443 nor the configured one.
  TestHttpServer other([](const SeenRequest&) { return Body(kKeyAuthorization); });
  const std::string location =
      "http://b.localhost:" + std::to_string(other.port()) + kChallengePath + kToken;
  TestHttpServer server([&](const SeenRequest&) { return RedirectTo(location); });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kConnection);
  EXPECT_NE(detail.find("port " + std::to_string(other.port()) + " is not allowed"),
            std::string::npos)
      << detail;
  EXPECT_TRUE(other.requests().empty());
}

TEST(Http01ValidatorTest, RedirectToIpAddressIsRefused) {
  uint16_t port = 0;
  TestHttpServer server([&](const SeenRequest& r) {
    if (r.path == "/final") return Body(kKeyAuthorization);
    return RedirectTo("http://127.0.0.1:" + std::to_string(port) + "/final");
  });
  port = server.port();
  auto v = MakeValidator(port);
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kConnection);
  EXPECT_NE(detail.find("IP address"), std::string::npos) << detail;
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(Http01ValidatorTest, RedirectToOtherSchemeIsRefused) {
  TestHttpServer server([](const SeenRequest&) {
    return RedirectTo("ftp://anything.localhost/.well-known/acme-challenge/x");
  });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kConnection);
  EXPECT_NE(detail.find("only http and https"), std::string::npos) << detail;
}

TEST(Http01ValidatorTest, RedirectWithoutLocationIsIncorrectResponse) {
  TestHttpServer server([](const SeenRequest&) {
    Reply r;
    r.status = 302;
    return r;
  });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  ExpectError(v->Validate(Request()), ErrorCode::kIncorrectResponse);
}

// ---- requests that cannot be validated ----

TEST(Http01ValidatorTest, RefusesWhatHttp01CannotValidate) {
  TestHttpServer server([](const SeenRequest&) { return Body(kKeyAuthorization); });
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  std::vector<ValidationRequest> bad;
  bad.push_back(Request("127.0.0.1"));
  bad.push_back(Request("[::1]"));
  bad.push_back(Request("127.1"));
  bad.push_back(Request("bad_name.localhost"));
  bad.push_back(Request("*.localhost"));
  bad.push_back(Request("a..localhost"));
  bad.push_back(Request("anything.localhost/evil"));
  bad.push_back(Request(""));
  bad.push_back(Request());
  bad.back().identifier_type = "ip";
  bad.push_back(Request());
  bad.back().challenge_type = "tls-alpn-01";
  bad.push_back(Request());
  bad.back().token = "../../etc/passwd";
  bad.push_back(Request());
  bad.back().token = "";
  bad.push_back(Request());
  bad.back().key_authorization = "";
  for (const auto& r : bad) {
    SCOPED_TRACE(r.identifier_type + " " + r.identifier_value + " " + r.token);
    ExpectError(v->Validate(r), ErrorCode::kMalformed);
  }
  EXPECT_TRUE(server.requests().empty());
}

TEST(Http01ValidatorTest, CreateChecksOptions) {
  auto bad = [](const std::function<void(Http01Options&)>& tweak) {
    Http01Options o;
    tweak(o);
    auto v = Http01Validator::Create(std::move(o));
    EXPECT_FALSE(v);
    if (!v) {
      EXPECT_EQ(v.error().code(), ErrorCode::kConfig) << v.error().ToString();
    }
  };
  bad([](Http01Options& o) { o.port = 0; });
  bad([](Http01Options& o) { o.total_timeout = std::chrono::milliseconds(0); });
  bad([](Http01Options& o) { o.connect_timeout = std::chrono::seconds(20); });
  bad([](Http01Options& o) { o.max_body_bytes = 0; });
  bad([](Http01Options& o) { o.max_redirects = 21; });
  bad([](Http01Options& o) { o.resolver_overrides = {{"a.*.localhost", "127.0.0.1"}}; });
  EXPECT_TRUE(Http01Validator::Create(Http01Options{}));
}

// ---- shared helpers ----

TEST(ResolverOverridesTest, LookupRules) {
  auto o = ResolverOverrides::Create({{"*.localhost", "127.0.0.1"},
                                      {"*.b.localhost", "127.0.0.2"},
                                      {"x.b.localhost", "127.0.0.3"},
                                      {"Host.Example", "10.0.0.1"},
                                      {"v6.example", "::1"}});
  ASSERT_TRUE(o) << o.error().ToString();
  EXPECT_EQ(o->Lookup("a.localhost"), "127.0.0.1");
  EXPECT_EQ(o->Lookup("a.c.localhost"), "127.0.0.1");
  EXPECT_EQ(o->Lookup("A.LOCALHOST"), "127.0.0.1");
  EXPECT_EQ(o->Lookup("y.b.localhost"), "127.0.0.2");  // the longer wildcard wins
  EXPECT_EQ(o->Lookup("x.b.localhost"), "127.0.0.3");  // an exact entry wins
  EXPECT_EQ(o->Lookup("b.localhost"), "127.0.0.1");
  EXPECT_EQ(o->Lookup("host.example"), "10.0.0.1");
  EXPECT_EQ(o->Lookup("v6.example"), "::1");
  EXPECT_EQ(o->Lookup("localhost"), std::nullopt);  // the wildcard needs a label in front
  EXPECT_EQ(o->Lookup("sub.host.example"), std::nullopt);
  EXPECT_EQ(o->Lookup("notlocalhost"), std::nullopt);
  EXPECT_FALSE(o->empty());
  EXPECT_TRUE(ResolverOverrides().empty());
}

TEST(ResolverOverridesTest, RejectsBadEntries) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"a.*.localhost", "127.0.0.1"}, {"*", "127.0.0.1"},           {"**.localhost", "127.0.0.1"},
      {"*x.localhost", "127.0.0.1"},  {"a.localhost", "localhost"}, {"a.localhost", "[::1]"},
      {"a.localhost", "127.1"},       {"bad_name", "127.0.0.1"},    {"", "127.0.0.1"}};
  for (const auto& [name, address] : bad) {
    SCOPED_TRACE(name + " -> " + address);
    auto o = ResolverOverrides::Create({{name, address}});
    ASSERT_FALSE(o);
    EXPECT_EQ(o.error().code(), ErrorCode::kConfig);
  }
  auto dup = ResolverOverrides::Create({{"A.example", "10.0.0.1"}, {"a.example", "10.0.0.2"}});
  EXPECT_FALSE(dup);
}

TEST(CheckDnsNameTest, AcceptsHostNamesOnly) {
  EXPECT_EQ(CheckDnsName("Sub.Example.COM"), "sub.example.com");
  EXPECT_EQ(CheckDnsName("xn--bcher-kva.example"), "xn--bcher-kva.example");
  EXPECT_EQ(CheckDnsName("localhost"), "localhost");
  const std::vector<std::string> bad_names = {"",
                                              "1.2.3.4",
                                              "127.1",
                                              "0x7f000001",
                                              "::1",
                                              "[::1]",
                                              "a.123",
                                              "-a.example",
                                              "a-.example",
                                              "a..example",
                                              "a.example.",
                                              ".a.example",
                                              "a b.example",
                                              "a_b.example",
                                              "*.example",
                                              "é.example",
                                              std::string(64, 'a') + ".example",
                                              std::string("a\0b.example", 11)};
  for (const std::string& bad : bad_names) {
    SCOPED_TRACE(bad);
    auto r = CheckDnsName(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  }
  std::string long_name;
  for (int i = 0; i < 4; ++i) long_name += std::string(63, 'a') + ".";
  long_name += "b";  // 257 characters
  EXPECT_FALSE(CheckDnsName(long_name));
}

TEST(EscapeForDetailTest, EscapesAndTruncates) {
  EXPECT_EQ(EscapeForDetail("abc"), "abc");
  EXPECT_EQ(EscapeForDetail(std::string("a\"\\\n\r\t\x01\xff", 8)), "a\\\"\\\\\\n\\r\\t\\x01\\xff");
  EXPECT_EQ(EscapeForDetail("abcdef", 3), "abc... (6 bytes)");
}

}  // namespace
}  // namespace e2eid::acme
