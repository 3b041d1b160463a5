#include "oidc/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace e2eid::oidc {
namespace {

using std::chrono::milliseconds;

// A socket bound to 127.0.0.1:<ephemeral>, listening when `listen_too`. Closed on destruction.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listen_too) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        (listen_too && ::listen(fd_, 16) != 0) ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;

  int fd() const { return fd_; }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A tiny HTTP/1.1 server in a thread: one connection at a time, the handler maps the request
// (its first line, e.g. "GET /ok HTTP/1.1", and the whole request text) to raw response bytes.
class TinyServer {
 public:
  using Handler =
      std::function<std::string(const std::string& request_line, const std::string& request)>;

  explicit TinyServer(Handler handler) : socket_(true), handler_(std::move(handler)) {
    if (socket_.fd() < 0 || ::pipe2(wake_, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "cannot start the test server";
      return;
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~TinyServer() {
    if (thread_.joinable()) {
      const char c = 'x';
      (void)!::write(wake_[1], &c, 1);
      thread_.join();
    }
    for (int fd : wake_) {
      if (fd >= 0) ::close(fd);
    }
  }
  TinyServer(const TinyServer&) = delete;
  TinyServer& operator=(const TinyServer&) = delete;

  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(socket_.port()) + std::string(path);
  }
  uint16_t port() const { return socket_.port(); }
  int requests() const { return requests_.load(); }

 private:
  // Waits until `fd` is readable; false when the server is stopping or after 5 s.
  bool WaitReadable(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, 5000) <= 0) return false;
    return (fds[1].revents & POLLIN) == 0;
  }

  void Run() {
    while (WaitReadable(socket_.fd())) {
      const int conn = ::accept4(socket_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      std::string request;
      size_t need = std::string::npos;  // total bytes of head + body, once known
      char buf[4096];
      while (request.size() < need && WaitReadable(conn)) {
        const ssize_t n = ::recv(conn, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
        if (request[0] == '\x16') break;  // a TLS ClientHello: answer (in plain text) at once
        const size_t head_end = request.find("\r\n\r\n");
        if (need == std::string::npos && head_end != std::string::npos) {
          size_t body = 0;
          const size_t cl = request.find("Content-Length: ");
          if (cl != std::string::npos && cl < head_end) body = std::stoul(request.substr(cl + 16));
          need = head_end + 4 + body;
        }
      }
      ++requests_;
      const std::string line = request.substr(0, request.find("\r\n"));
      const std::string response = handler_(line, request);
      size_t sent = 0;
      while (sent < response.size()) {
        const ssize_t n =
            ::send(conn, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      ::close(conn);
    }
  }

  LoopbackSocket socket_;
  Handler handler_;
  int wake_[2] = {-1, -1};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string Response(std::string_view status, std::string_view headers, std::string_view body,
                     bool content_length = true) {
  std::string r = "HTTP/1.1 " + std::string(status) + "\r\n" + std::string(headers);
  if (content_length) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Connection: close\r\n\r\n";
  r += body;
  return r;
}

std::string Route(const std::string& line, const std::string& request) {
  if (line == "GET /ok HTTP/1.1") {
    return Response("200 OK", "Content-Type: application/json\r\nCache-Control: max-age=60\r\n",
                    R"({"hello":"world"})");
  }
  if (line == "GET /big-content-length HTTP/1.1") {
    return Response("200 OK", "", std::string(5000, 'a'));
  }
  if (line == "GET /big-until-close HTTP/1.1") {
    return Response("200 OK", "", std::string(5000, 'a'), /*content_length=*/false);
  }
  if (line == "GET /small HTTP/1.1") return Response("200 OK", "", std::string(1000, 'a'));
  if (line == "GET /redirect HTTP/1.1") {
    return Response("302 Found", "Location: /ok\r\n", "");
  }
  if (line == "GET /interim HTTP/1.1") {
    return "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n" +
           Response("200 OK", "X-Final: yes\r\n", "done");
  }
  if (line.starts_with("POST /echo ") || line.starts_with("PUT /echo ")) {
    return Response("200 OK", "Content-Type: text/plain\r\n", request);
  }
  return Response("404 Not Found", "", "nope");
}

class CurlClientTest : public ::testing::Test {
 protected:
  CurlClientTest() : server_(&Route) {}

  Result<FetchResponse> Get(const std::string& url, HttpClientOptions options = {}) {
    auto client = MakeCurlHttpClient(std::move(options));
    FetchRequest request;
    request.url = url;
    return client->Send(request);
  }

  TinyServer server_;
};

TEST_F(CurlClientTest, GetWorks) {
  auto r = Get(server_.Url("/ok"));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"hello":"world"})");
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(r->Header("CACHE-CONTROL"), "max-age=60");
  EXPECT_EQ(server_.requests(), 1);
}

TEST_F(CurlClientTest, ErrorStatusIsNotAnError) {
  auto r = Get(server_.Url("/missing"));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "nope");
}

TEST_F(CurlClientTest, RedirectIsNotFollowed) {
  auto r = Get(server_.Url("/redirect"));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(r->Header("Location"), "/ok");
  EXPECT_EQ(server_.requests(), 1);
}

TEST_F(CurlClientTest, InterimResponseHeadersAreDropped) {
  auto r = Get(server_.Url("/interim"));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "done");
  EXPECT_EQ(r->Header("X-Final"), "yes");
  EXPECT_FALSE(r->Header("X-Interim").has_value());
}

TEST_F(CurlClientTest, BodyLimitIsEnforced) {
  HttpClientOptions options;
  options.max_response_bytes = 1000;
  for (const char* path : {"/big-content-length", "/big-until-close"}) {
    auto r = Get(server_.Url(path), options);
    ASSERT_FALSE(r) << path;
    EXPECT_EQ(r.error().code(), ErrorCode::kIo) << r.error().ToString();
    EXPECT_NE(r.error().detail().find("larger than 1000 bytes"), std::string::npos)
        << r.error().detail();
  }
  auto exact = Get(server_.Url("/small"), options);  // exactly at the limit
  ASSERT_TRUE(exact) << exact.error().ToString();
  EXPECT_EQ(exact->body.size(), 1000u);
}

TEST_F(CurlClientTest, PostSendsBodyAndHeaders) {
  auto client = MakeCurlHttpClient({});
  FetchRequest request;
  request.method = "POST";
  request.url = server_.Url("/echo");
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"X-Test", "1"}};
  request.body = "grant_type=client_credentials&scope=openid";
  auto r = client->Send(request);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.starts_with("POST /echo HTTP/1.1\r\n")) << r->body;
  EXPECT_NE(r->body.find("Content-Type: application/x-www-form-urlencoded\r\n"), std::string::npos);
  EXPECT_NE(r->body.find("X-Test: 1\r\n"), std::string::npos);
  EXPECT_NE(r->body.find("User-Agent: e2eid\r\n"), std::string::npos);
  EXPECT_EQ(r->body.find("Expect:"), std::string::npos);
  EXPECT_TRUE(r->body.ends_with("\r\n\r\ngrant_type=client_credentials&scope=openid")) << r->body;
}

TEST_F(CurlClientTest, OtherMethodsWithBody) {
  auto client = MakeCurlHttpClient({});
  FetchRequest request;
  request.method = "PUT";
  request.url = server_.Url("/echo");
  request.headers = {{"Content-Type", "application/json"}};
  request.body = "{}";
  auto r = client->Send(request);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->body.starts_with("PUT /echo HTTP/1.1\r\n")) << r->body;
  EXPECT_TRUE(r->body.ends_with("\r\n\r\n{}")) << r->body;
}

TEST_F(CurlClientTest, RequestsThatCannotBeSentSafelyAreRefused) {
  auto client = MakeCurlHttpClient({});
  FetchRequest injected;
  injected.url = server_.Url("/ok");
  injected.headers = {{"X-Test", "a\r\nX-Injected: 1"}};
  auto r = client->Send(injected);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);

  FetchRequest bad_method;
  bad_method.method = "GE T";
  bad_method.url = server_.Url("/ok");
  ASSERT_FALSE(client->Send(bad_method));

  FetchRequest get_with_body;
  get_with_body.url = server_.Url("/ok");
  get_with_body.body = "x";
  ASSERT_FALSE(client->Send(get_with_body));
  EXPECT_EQ(server_.requests(), 0);
}

TEST(CurlClientNetTest, ConnectionRefused) {
  LoopbackSocket bound(/*listen_too=*/false);  // holds the port, never accepts connections
  ASSERT_GE(bound.fd(), 0);
  auto client = MakeCurlHttpClient({});
  FetchRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(bound.port()) + "/x";
  auto r = client->Send(request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kConnection) << r.error().ToString();
  EXPECT_NE(r.error().detail().find(request.url), std::string::npos) << r.error().detail();
}

TEST(CurlClientNetTest, TotalTimeoutIsHonoured) {
  // The kernel completes the TCP handshake for a listening socket, but nobody ever answers.
  LoopbackSocket silent(/*listen_too=*/true);
  ASSERT_GE(silent.fd(), 0);
  HttpClientOptions options;
  options.total_timeout = milliseconds(300);
  auto client = MakeCurlHttpClient(options);
  FetchRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/never";
  const auto start = std::chrono::steady_clock::now();
  auto r = client->Send(request);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kConnection) << r.error().ToString();
  EXPECT_NE(r.error().detail().find("total timeout 300 ms"), std::string::npos)
      << r.error().detail();
  // Generous bound: the point is that the 15 s default did not apply.
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST(CurlClientNetTest, TlsToAPlainServerFailsWithConnection) {
  TinyServer server(&Route);
  auto client = MakeCurlHttpClient({});
  FetchRequest request;
  request.url = "https://127.0.0.1:" + std::to_string(server.port()) + "/ok";
  auto r = client->Send(request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kConnection) << r.error().ToString();
}

TEST(CurlClientNetTest, PlainHttpToNonLoopbackIsRefusedWithoutConnecting) {
  auto client = MakeCurlHttpClient({});
  FetchRequest request;
  request.url = "http://idp.example.com/realms/acme";
  auto r = client->Send(request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().detail().find("plain http"), std::string::npos) << r.error().detail();
  EXPECT_TRUE(client->CheckUrl("https://idp.example.com/realms/acme"));
}

TEST(CurlClientNetTest, PlainHttpToLoopbackCanBeDisallowed) {
  TinyServer server(&Route);
  HttpClientOptions options;
  options.allow_plain_http_loopback = false;
  auto client = MakeCurlHttpClient(options);
  FetchRequest request;
  request.url = server.Url("/ok");
  auto r = client->Send(request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(server.requests(), 0);
}

struct UrlCase {
  std::string url;
  bool allowed;
};

TEST(CheckUrlAllowedTest, DefaultPolicy) {
  const HttpClientOptions defaults;
  for (const UrlCase& c : std::vector<UrlCase>{
           {"https://idp.example/realms/acme", true},
           {"https://idp.example:8443/x?y=1#z", true},
           {"HTTPS://IDP.EXAMPLE/", true},
           {"http://127.0.0.1:8080/realms/acme", true},
           {"http://localhost:8080/", true},
           {"http://LOCALHOST/", true},
           {"http://[::1]:8080/", true},
           {"http://idp.example/", false},
           {"http://127.0.0.2/", false},
           {"http://localhost.evil.example/", false},
           {"ftp://idp.example/", false},
           {"file:///etc/passwd", false},
           {"https://user:secret@idp.example/", false},
           {"https://idp.example/a b", false},
           {"https://idp.example/\r\nX: y", false},
           {"idp.example/realms", false},
           {"", false},
           {"https://", false},
       }) {
    auto s = CheckUrlAllowed(c.url, defaults);
    EXPECT_EQ(s.has_value(), c.allowed) << c.url;
    if (!s) {
      EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument) << c.url;
    }
  }
}

TEST(CheckUrlAllowedTest, PlainHttpSwitches) {
  HttpClientOptions all;
  all.allow_plain_http = true;
  EXPECT_TRUE(CheckUrlAllowed("http://idp.example/", all));
  HttpClientOptions none;
  none.allow_plain_http_loopback = false;
  EXPECT_FALSE(CheckUrlAllowed("http://127.0.0.1/", none));
  EXPECT_TRUE(CheckUrlAllowed("https://127.0.0.1/", none));
}

}  // namespace
}  // namespace e2eid::oidc
