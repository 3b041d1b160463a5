#include "server/http_server.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "server/router.h"
#include "server/signals.h"
#include "server/work_queue.h"

namespace e2eid::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Response = http::response<http::string_body>;

// Generous bound on every client operation so that a broken server fails the test instead of
// hanging it. Never reached when the server behaves.
constexpr std::chrono::seconds kClientTimeout{20};

std::string Str(beast::string_view s) { return std::string(s.data(), s.size()); }

struct ClientTls {
  std::string ca_pem;
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  bool allow_legacy = false;  // security level 0 and every cipher, so TLS 1.0/1.1 can be offered
};

// A small blocking client over Beast's async API (so every operation has a timeout).
class TestClient {
 public:
  explicit TestClient(uint16_t port, std::optional<ClientTls> tls = std::nullopt) : port_(port) {
    if (!tls.has_value()) {
      plain_.emplace(ioc_);
      return;
    }
    ctx_.emplace(ssl::context::tls_client);
    SSL_CTX* native = ctx_->native_handle();
    if (tls->allow_legacy) {
      SSL_CTX_set_security_level(native, 0);
      EXPECT_EQ(SSL_CTX_set_cipher_list(native, "ALL:@SECLEVEL=0"), 1);
    }
    EXPECT_EQ(SSL_CTX_set_min_proto_version(native, tls->min_version), 1);
    EXPECT_EQ(SSL_CTX_set_max_proto_version(native, tls->max_version), 1);
    beast::error_code ec;
    EXPECT_FALSE(ctx_->add_certificate_authority(net::buffer(tls->ca_pem), ec)) << ec.message();
    ctx_->set_verify_mode(ssl::verify_peer);
    tls_.emplace(ioc_, *ctx_);
    tls_->set_verify_callback(ssl::host_name_verification("127.0.0.1"));
  }

  beast::error_code Connect() {
    beast::error_code result;
    Lowest().expires_after(kClientTimeout);
    Lowest().async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_),
                           [&](beast::error_code ec) { result = ec; });
    Run();
    if (result || !tls_.has_value()) return result;
    Lowest().expires_after(kClientTimeout);
    tls_->async_handshake(ssl::stream_base::client, [&](beast::error_code ec) { result = ec; });
    Run();
    return result;
  }

  beast::error_code WriteRaw(const std::string& data) {
    beast::error_code result;
    Lowest().expires_after(kClientTimeout);
    WithStream([&](auto& s) {
      net::async_write(s, net::buffer(data), [&](beast::error_code ec, size_t) { result = ec; });
    });
    Run();
    return result;
  }

  beast::error_code Write(http::request<http::string_body> req) {
    beast::error_code result;
    Lowest().expires_after(kClientTimeout);
    WithStream([&](auto& s) {
      http::async_write(s, req, [&](beast::error_code ec, size_t) { result = ec; });
    });
    Run();
    return result;
  }

  beast::error_code Read(Response* out, bool head = false) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(uint64_t{16} << 20);
    if (head) parser.skip(true);
    beast::error_code result;
    Lowest().expires_after(kClientTimeout);
    WithStream([&](auto& s) {
      http::async_read(s, buffer_, parser, [&](beast::error_code ec, size_t) { result = ec; });
    });
    Run();
    if (!result) *out = parser.release();
    return result;
  }

  // Reads up to and including the next empty line, e.g. an interim "100 Continue" response;
  // bytes after it stay buffered for the next Read().
  beast::error_code ReadHeaderBlock(std::string* out) {
    beast::error_code result;
    size_t end = std::string::npos;
    while (!result &&
           (end = beast::buffers_to_string(buffer_.data()).find("\r\n\r\n")) == std::string::npos) {
      Lowest().expires_after(kClientTimeout);
      WithStream([&](auto& s) {
        s.async_read_some(buffer_.prepare(4096), [&](beast::error_code ec, size_t n) {
          buffer_.commit(n);
          result = ec;
        });
      });
      Run();
    }
    if (result) return result;
    *out = beast::buffers_to_string(buffer_.data()).substr(0, end + 4);
    buffer_.consume(end + 4);
    return result;
  }

  // One request/response exchange; status 0 when it failed (the failure is reported).
  Response Request(http::verb verb, const std::string& target, const std::string& body = "",
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    Response res;
    res.result(0);
    beast::error_code ec = Write(std::move(req));
    EXPECT_FALSE(ec) << "writing " << target << ": " << ec.message();
    if (ec) return res;
    ec = Read(&res, verb == http::verb::head);
    EXPECT_FALSE(ec) << "reading the response to " << target << ": " << ec.message();
    return res;
  }

  // Reads until the connection ends and returns what ended it: eof / reset / truncated mean the
  // server closed it; kClientTimeout expiring gives beast::error::timeout.
  beast::error_code ReadUntilClosed() {
    beast::error_code result;
    while (!result) {
      Lowest().expires_after(kClientTimeout);
      WithStream([&](auto& s) {
        s.async_read_some(buffer_.prepare(4096), [&](beast::error_code ec, size_t n) {
          buffer_.commit(n);
          result = ec;
        });
      });
      Run();
    }
    return result;
  }

  SSL* native_ssl() { return tls_->native_handle(); }

 private:
  beast::tcp_stream& Lowest() {
    return tls_.has_value() ? beast::get_lowest_layer(*tls_) : *plain_;
  }
  template <class F>
  void WithStream(F&& f) {
    if (tls_.has_value()) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }
  void Run() {
    ioc_.restart();
    ioc_.run();
  }

  const uint16_t port_;
  net::io_context ioc_;
  std::optional<ssl::context> ctx_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
};

bool ClosedByServer(const beast::error_code& ec) {
  return ec == net::error::eof || ec == net::error::connection_reset ||
         ec == ssl::error::stream_truncated;
}

// Captures log lines while alive.
class LogCapture {
 public:
  LogCapture() {
    SetLogSink([this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { SetLogSink(nullptr); }
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir_template[] = "/tmp/e2eid_server_test_XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    const std::string dir = dir_template;
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1"
        " -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
        " -keyout " +
        dir + "/key.pem -out " + dir + "/cert.pem 2>/dev/null";
    const int rc = std::system(cmd.c_str());
    auto cert = ReadFile(dir + "/cert.pem");
    auto key = ReadFile(dir + "/key.pem");
    std::filesystem::remove_all(dir);
    ASSERT_EQ(rc, 0) << cmd;
    ASSERT_TRUE(cert) << cert.error().ToString();
    ASSERT_TRUE(key) << key.error().ToString();
    cert_pem_ = new std::string(*cert);
    key_pem_ = new std::string(*key);
  }
  static void TearDownTestSuite() {
    delete cert_pem_;
    delete key_pem_;
    cert_pem_ = key_pem_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cert_pem_, nullptr);
    SetLogLevel(LogLevel::kWarn);
    // /healthz is an ordinary route registered by the caller, not built into the server.
    ASSERT_TRUE(router_.Get(
        "/healthz",
        [](const HttpRequest&, const RouteParams&) { return HttpResponse::Text(200, "ok"); },
        {.head = true}));
    ASSERT_TRUE(router_.Post("/echo", [](const HttpRequest& req, const RouteParams&) {
      return HttpResponse::Text(200, req.body);
    }));
    ASSERT_TRUE(router_.Get("/id", [](const HttpRequest& req, const RouteParams&) {
      return HttpResponse::Text(200, req.request_id);
    }));
    ASSERT_TRUE(router_.Get("/items/{item}", [](const HttpRequest& req, const RouteParams& p) {
      return HttpResponse::Text(200, p.at("item") + "|" + req.query + "|" + req.remote_address);
    }));
  }
  void TearDown() override { SetLogLevel(LogLevel::kInfo); }

  static HttpServer::Options Plain() {
    HttpServer::Options o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.threads = 2;
    return o;
  }
  static HttpServer::Options Tls() {
    HttpServer::Options o = Plain();
    o.tls = TlsOptions{*cert_pem_, *key_pem_};
    return o;
  }
  static ClientTls ClientTlsConfig() { return ClientTls{.ca_pem = *cert_pem_}; }

  std::unique_ptr<HttpServer> StartServer(HttpServer::Options options) {
    auto server = std::make_unique<HttpServer>(std::move(options), router_.AsHandler());
    const Status started = server->Start();
    EXPECT_TRUE(started) << started.error().ToString();
    EXPECT_NE(server->port(), 0);
    return server;
  }

  static std::string* cert_pem_;
  static std::string* key_pem_;
  Router router_;
};

std::string* HttpServerTest::cert_pem_ = nullptr;
std::string* HttpServerTest::key_pem_ = nullptr;

TEST_F(HttpServerTest, PlainRoundTrip) {
  auto server = StartServer(Plain());
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  const Response res = client.Request(http::verb::get, "/healthz");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "ok");
  EXPECT_EQ(Str(res[http::field::content_length]), "2");
  EXPECT_EQ(Str(res[http::field::content_type]), "text/plain; charset=utf-8");
  EXPECT_EQ(res.find(http::field::server), res.end());
  EXPECT_NE(res.find(http::field::date), res.end());
  EXPECT_EQ(res["X-Request-Id"].size(), 32u);

  const Response items = client.Request(http::verb::get, "/items/abc?x=1&y=2");
  EXPECT_EQ(items.body(), "abc|x=1&y=2|127.0.0.1");

  const Response missing = client.Request(http::verb::get, "/nope");
  EXPECT_EQ(missing.result_int(), 404u);
  EXPECT_EQ(Str(missing[http::field::content_type]), "application/problem+json");
  EXPECT_EQ(Str(missing[http::field::content_length]), std::to_string(missing.body().size()));
}

TEST_F(HttpServerTest, HeadSendsLengthButNoBody) {
  auto server = StartServer(Plain());
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  const Response head = client.Request(http::verb::head, "/healthz");
  EXPECT_EQ(head.result_int(), 200u);
  EXPECT_EQ(Str(head[http::field::content_length]), "2");
  EXPECT_TRUE(head.body().empty());
  // The connection is still in sync: had the server sent a body, this would misparse.
  const Response get = client.Request(http::verb::get, "/healthz");
  EXPECT_EQ(get.result_int(), 200u);
  EXPECT_EQ(get.body(), "ok");
}

TEST_F(HttpServerTest, TlsRoundTripNegotiatesTls13) {
  auto server = StartServer(Tls());
  TestClient client(server->port(), ClientTlsConfig());
  const beast::error_code ec = client.Connect();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(SSL_version(client.native_ssl()), TLS1_3_VERSION);
  const Response res = client.Request(http::verb::post, "/echo", "over tls");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "over tls");
}

TEST_F(HttpServerTest, TlsRoundTripOverTls12UsesEcdheAead) {
  auto server = StartServer(Tls());
  ClientTls config = ClientTlsConfig();
  config.max_version = TLS1_2_VERSION;
  TestClient client(server->port(), config);
  const beast::error_code ec = client.Connect();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(SSL_version(client.native_ssl()), TLS1_2_VERSION);
  const std::string cipher = SSL_get_cipher_name(client.native_ssl());
  EXPECT_EQ(cipher.rfind("ECDHE-", 0), 0u) << cipher;
  EXPECT_TRUE(cipher.find("GCM") != std::string::npos ||
              cipher.find("CHACHA20") != std::string::npos)
      << cipher;
  EXPECT_EQ(client.Request(http::verb::get, "/healthz").body(), "ok");
}

TEST_F(HttpServerTest, Tls11IsRefused) {
  auto server = StartServer(Tls());
  ClientTls legacy = ClientTlsConfig();
  legacy.allow_legacy = true;
  legacy.min_version = TLS1_VERSION;

  // Control: this client configuration does connect when it may use TLS 1.2...
  legacy.max_version = TLS1_2_VERSION;
  TestClient control(server->port(), legacy);
  ASSERT_FALSE(control.Connect());

  // ...but not when it is limited to TLS 1.1.
  legacy.max_version = TLS1_1_VERSION;
  TestClient old(server->port(), legacy);
  EXPECT_TRUE(old.Connect());
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  auto server = StartServer(Plain());
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  const Response first = client.Request(http::verb::post, "/echo", "one");
  EXPECT_EQ(first.body(), "one");
  EXPECT_TRUE(first.keep_alive());
  EXPECT_EQ(server->active_connections(), 1u);
  const Response second = client.Request(http::verb::post, "/echo", "two");
  EXPECT_EQ(second.body(), "two");
  EXPECT_EQ(server->active_connections(), 1u);

  // Pipelined: two requests in one write, answered in order.
  ASSERT_FALSE(
      client.WriteRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nA"
                      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nB"));
  Response a, b;
  ASSERT_FALSE(client.Read(&a));
  ASSERT_FALSE(client.Read(&b));
  EXPECT_EQ(a.body(), "A");
  EXPECT_EQ(b.body(), "B");
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  auto server = StartServer(Plain());
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  const Response res = client.Request(http::verb::get, "/healthz", "", {{"Connection", "close"}});
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(ClosedByServer(client.ReadUntilClosed()));
}

TEST_F(HttpServerTest, BodyOverLimitIs413BeforeItIsRead) {
  HttpServer::Options options = Plain();
  options.max_body_bytes = 1024;
  auto server = StartServer(options);

  // At the limit: fine.
  {
    TestClient client(server->port());
    ASSERT_FALSE(client.Connect());
    EXPECT_EQ(client.Request(http::verb::post, "/echo", std::string(1024, 'x')).body().size(),
              1024u);
  }
  // Declared length over the limit: answered after the header, without waiting for the body.
  {
    TestClient client(server->port());
    ASSERT_FALSE(client.Connect());
    ASSERT_FALSE(
        client.WriteRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" +
                        std::string(100, 'x')));
    Response res;
    ASSERT_FALSE(client.Read(&res));
    EXPECT_EQ(res.result_int(), 413u);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(ClosedByServer(client.ReadUntilClosed()));
  }
  // Chunked body that grows over the limit.
  {
    TestClient client(server->port());
    ASSERT_FALSE(client.Connect());
    std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 4; ++i) req += "200\r\n" + std::string(512, 'y') + "\r\n";
    req += "0\r\n\r\n";
    ASSERT_FALSE(client.WriteRaw(req));
    Response res;
    ASSERT_FALSE(client.Read(&res));
    EXPECT_EQ(res.result_int(), 413u);
  }
}

TEST_F(HttpServerTest, HeaderOverLimitIs431) {
  auto server = StartServer(Plain());  // 8 KiB default
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  ASSERT_FALSE(client.WriteRaw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                               std::string(size_t{10} << 10, 'a') + "\r\n\r\n"));
  Response res;
  ASSERT_FALSE(client.Read(&res));
  EXPECT_EQ(res.result_int(), 431u);
  EXPECT_TRUE(ClosedByServer(client.ReadUntilClosed()));

  // Just under the limit is accepted.
  TestClient ok(server->port());
  ASSERT_FALSE(ok.Connect());
  EXPECT_EQ(
      ok.Request(http::verb::get, "/healthz", "", {{"X-Big", std::string(7000, 'a')}}).result_int(),
      200u);
}

// The start of a TLS ClientHello (with NUL bytes) sent to a plain HTTP port.
constexpr char kTlsClientHelloStart[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";

TEST_F(HttpServerTest, GarbageIs400AndClosed) {
  auto server = StartServer(Plain());
  for (const std::string& garbage :
       {std::string("HELLO THERE\r\n\r\n"), std::string("GET / HTTP/9.9\r\n\r\n"),
        std::string(kTlsClientHelloStart, sizeof kTlsClientHelloStart - 1)}) {
    TestClient client(server->port());
    ASSERT_FALSE(client.Connect());
    ASSERT_FALSE(client.WriteRaw(garbage));
    Response res;
    ASSERT_FALSE(client.Read(&res));
    EXPECT_EQ(res.result_int(), 400u);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(ClosedByServer(client.ReadUntilClosed()));
  }
  // HTTP/1.1 without Host, a target that is not a path, and framing that could smuggle a
  // request (Content-Length with chunked, conflicting Content-Lengths).
  for (const std::string& bad :
       {std::string("GET /healthz HTTP/1.1\r\n\r\n"),
        std::string("GET healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
        std::string("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        std::string("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                    "Content-Length: 2\r\n\r\nab")}) {
    TestClient client(server->port());
    ASSERT_FALSE(client.Connect());
    ASSERT_FALSE(client.WriteRaw(bad));
    Response res;
    ASSERT_FALSE(client.Read(&res));
    EXPECT_EQ(res.result_int(), 400u) << bad;
  }
}

TEST_F(HttpServerTest, SilentClientIsDisconnectedAfterReadTimeout) {
  HttpServer::Options options = Plain();
  options.read_timeout = std::chrono::seconds(1);
  auto server = StartServer(options);
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  const beast::error_code ec = client.ReadUntilClosed();
  EXPECT_TRUE(ClosedByServer(ec)) << ec.message();
}

TEST_F(HttpServerTest, SilentClientIsDisconnectedBeforeTlsHandshake) {
  HttpServer::Options options = Tls();
  options.read_timeout = std::chrono::seconds(1);
  auto server = StartServer(options);
  TestClient client(server->port());  // plain TCP: never starts the handshake
  ASSERT_FALSE(client.Connect());
  const beast::error_code ec = client.ReadUntilClosed();
  EXPECT_TRUE(ClosedByServer(ec)) << ec.message();
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  HttpServer::Options options = Plain();
  options.idle_timeout = std::chrono::seconds(1);
  auto server = StartServer(options);
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  EXPECT_EQ(client.Request(http::verb::get, "/healthz").result_int(), 200u);
  const beast::error_code ec = client.ReadUntilClosed();
  EXPECT_TRUE(ClosedByServer(ec)) << ec.message();
}

TEST_F(HttpServerTest, Expect100Continue) {
  auto server = StartServer(Plain());
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  ASSERT_FALSE(client.WriteRaw(
      "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  std::string interim;
  ASSERT_FALSE(client.ReadHeaderBlock(&interim));
  EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << interim;
  ASSERT_FALSE(client.WriteRaw("hello"));
  Response res;
  ASSERT_FALSE(client.Read(&res));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "hello");
}

TEST_F(HttpServerTest, RequestIdIsEchoedOrGenerated) {
  auto server = StartServer(Plain());
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());

  Response res = client.Request(http::verb::get, "/id", "", {{"X-Request-Id", "trace-42.a_b"}});
  EXPECT_EQ(Str(res["X-Request-Id"]), "trace-42.a_b");
  EXPECT_EQ(res.body(), "trace-42.a_b");  // the handler saw the same id

  for (const std::string& bad :
       {std::string("has space"), std::string(65, 'a'), std::string("semi;colon")}) {
    res = client.Request(http::verb::get, "/id", "", {{"X-Request-Id", bad}});
    EXPECT_NE(Str(res["X-Request-Id"]), bad);
    EXPECT_EQ(res["X-Request-Id"].size(), 32u);
    EXPECT_EQ(res.body(), Str(res["X-Request-Id"]));
  }
  const Response r1 = client.Request(http::verb::get, "/id");
  const Response r2 = client.Request(http::verb::get, "/id");
  EXPECT_EQ(r1.body(), Str(r1["X-Request-Id"]));
  EXPECT_NE(r1.body(), r2.body());
}

TEST_F(HttpServerTest, AccessLogLineHasFieldsButNoSecrets) {
  SetLogLevel(LogLevel::kInfo);
  auto capture = std::make_unique<LogCapture>();
  auto server = StartServer(Plain());
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  const Response res =
      client.Request(http::verb::post, "/echo?token=query-secret", "body-secret",
                     {{"Authorization", "Bearer header-secret"}, {"X-Request-Id", "log-test-1"}});
  EXPECT_EQ(res.result_int(), 200u);
  server->Stop();
  const std::vector<std::string> lines = capture->lines();
  capture.reset();

  int access_lines = 0;
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find("secret"), std::string::npos) << line;
    if (line.find("log-test-1") == std::string::npos) continue;
    ++access_lines;
    auto doc = ParseJson(line);
    ASSERT_TRUE(doc) << line;
    EXPECT_EQ((*doc)["msg"], "http request");
    EXPECT_EQ((*doc)["method"], "POST");
    EXPECT_EQ((*doc)["path"], "/echo");
    EXPECT_EQ((*doc)["status"], 200);
    EXPECT_EQ((*doc)["bytes"], 11);
    EXPECT_EQ((*doc)["remote"], "127.0.0.1");
    EXPECT_TRUE((*doc)["latency_us"].is_number_integer());
  }
  EXPECT_EQ(access_lines, 1);
}

TEST_F(HttpServerTest, HandlerHeadersAreSanitised) {
  ASSERT_TRUE(router_.Get("/weird", [](const HttpRequest&, const RouteParams&) {
    HttpResponse r = HttpResponse::Text(201, "abc");
    r.SetHeader("Server", "leaky/1.0");
    r.SetHeader("Content-Length", "999");
    r.SetHeader("X-Injected", "a\r\nSet-Cookie: evil=1");
    r.SetHeader("Bad Name", "x");
    r.SetHeader("Location", "/weird/1");
    return r;
  }));
  ASSERT_TRUE(router_.Get("/throws", [](const HttpRequest&, const RouteParams&) -> HttpResponse {
    throw std::runtime_error("oops");
  }));
  ASSERT_TRUE(router_.Get("/bad-status", [](const HttpRequest&, const RouteParams&) {
    return HttpResponse::Empty(42);
  }));
  ASSERT_TRUE(router_.Get("/nocontent", [](const HttpRequest&, const RouteParams&) {
    return HttpResponse::Empty(204);
  }));
  auto server = StartServer(Plain());
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());

  const Response res = client.Request(http::verb::get, "/weird");
  EXPECT_EQ(res.result_int(), 201u);
  EXPECT_EQ(res.body(), "abc");
  EXPECT_EQ(Str(res[http::field::content_length]), "3");
  EXPECT_EQ(res.find(http::field::server), res.end());
  EXPECT_EQ(res.find("X-Injected"), res.end());
  EXPECT_EQ(res.find(http::field::set_cookie), res.end());
  EXPECT_EQ(Str(res[http::field::location]), "/weird/1");

  EXPECT_EQ(client.Request(http::verb::get, "/throws").result_int(), 500u);
  EXPECT_EQ(client.Request(http::verb::get, "/bad-status").result_int(), 500u);
  const Response empty = client.Request(http::verb::get, "/nocontent");
  EXPECT_EQ(empty.result_int(), 204u);
  EXPECT_EQ(empty.find(http::field::content_length), empty.end());
  // Still in sync after all of that.
  EXPECT_EQ(client.Request(http::verb::get, "/healthz").body(), "ok");
}

TEST_F(HttpServerTest, GracefulStopFinishesInFlightRequests) {
  std::promise<void> entered;
  ASSERT_TRUE(router_.Get("/slow", [&](const HttpRequest&, const RouteParams&) {
    entered.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return HttpResponse::Text(200, "slow done");
  }));
  auto server = StartServer(Plain());
  const uint16_t port = server->port();

  TestClient idle(port);
  ASSERT_FALSE(idle.Connect());
  ASSERT_EQ(idle.Request(http::verb::get, "/healthz").result_int(), 200u);

  std::promise<Response> slow_response;
  std::thread slow_client([&] {
    TestClient client(port);
    Response res;
    res.result(0);
    if (!client.Connect()) res = client.Request(http::verb::get, "/slow");
    slow_response.set_value(std::move(res));
  });
  entered.get_future().wait();
  server->Stop();
  slow_client.join();

  const Response res = slow_response.get_future().get();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "slow done");
  EXPECT_FALSE(res.keep_alive());

  EXPECT_TRUE(ClosedByServer(idle.ReadUntilClosed()));
  EXPECT_EQ(server->active_connections(), 0u);
  TestClient late(port);
  EXPECT_EQ(late.Connect(), net::error::connection_refused);
  server->Wait();  // returns: already stopped
  server->Stop();  // idempotent
}

// One io_context per I/O thread: a handler that blocks holds up only the connections of its own
// thread. The second connection goes to the other (less busy) thread and is answered while the
// first one's handler is still blocked.
TEST_F(HttpServerTest, BlockedHandlerDoesNotHoldUpConnectionsOfTheOtherThread) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(router_.Get("/block", [&](const HttpRequest&, const RouteParams&) {
    entered.set_value();
    const bool in_time = released.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
    return HttpResponse::Text(200, in_time ? "released" : "timed out");
  }));
  auto server = StartServer(Plain());  // 2 threads
  const uint16_t port = server->port();

  std::promise<Response> blocked_response;
  std::thread blocked_client([&] {
    TestClient client(port);
    Response res;
    res.result(0);
    if (!client.Connect()) res = client.Request(http::verb::get, "/block");
    blocked_response.set_value(std::move(res));
  });
  entered.get_future().wait();

  TestClient other(port);
  ASSERT_FALSE(other.Connect());
  const Response res = other.Request(http::verb::get, "/healthz");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "ok");

  release.set_value();
  blocked_client.join();
  EXPECT_EQ(blocked_response.get_future().get().body(), "released");
}

TEST_F(HttpServerTest, DrainTimeoutClosesStragglers) {
  HttpServer::Options options = Plain();
  options.read_timeout = std::chrono::seconds(600);  // the straggler would otherwise stay
  options.drain_timeout = std::chrono::seconds(0);
  auto server = StartServer(options);
  TestClient straggler(server->port());
  ASSERT_FALSE(straggler.Connect());
  ASSERT_FALSE(straggler.WriteRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n"));  // incomplete
  server->Stop();
  EXPECT_TRUE(ClosedByServer(straggler.ReadUntilClosed()));
  EXPECT_EQ(server->active_connections(), 0u);
}

TEST_F(HttpServerTest, SixteenConcurrentClientsFiftyRequestsEach) {
  auto server = StartServer(Plain());
  constexpr int kClients = 16;
  constexpr int kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      TestClient client(server->port());
      if (client.Connect()) return;
      for (int i = 0; i < kRequests; ++i) {
        const std::string body = "client " + std::to_string(c) + " request " + std::to_string(i);
        const Response res = client.Request(http::verb::post, "/echo", body);
        if (res.result_int() == 200 && res.body() == body) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitAreClosed) {
  HttpServer::Options options = Plain();
  options.max_connections = 1;
  auto server = StartServer(options);
  TestClient first(server->port());
  ASSERT_FALSE(first.Connect());
  ASSERT_EQ(first.Request(http::verb::get, "/healthz").result_int(), 200u);
  TestClient second(server->port());
  ASSERT_FALSE(second.Connect());  // the kernel accepts; the server closes it at once
  EXPECT_TRUE(ClosedByServer(second.ReadUntilClosed()));
  EXPECT_EQ(first.Request(http::verb::get, "/healthz").result_int(), 200u);
}

TEST_F(HttpServerTest, HandlersCanHandSlowWorkToAWorkQueue) {
  WorkQueue queue({.name = "validation", .threads = 1});
  std::promise<std::string> job_result;
  ASSERT_TRUE(router_.Post("/challenge/{id}", [&](const HttpRequest&, const RouteParams& p) {
    const std::string id = p.at("id");
    const Status posted =
        queue.Post([&job_result, id] { job_result.set_value("validated " + id); });
    if (!posted) return HttpResponse::Text(503, posted.error().detail());
    return HttpResponse::Text(202, "processing");
  }));
  auto server = StartServer(Plain());
  TestClient client(server->port());
  ASSERT_FALSE(client.Connect());
  const Response res = client.Request(http::verb::post, "/challenge/c1");
  EXPECT_EQ(res.result_int(), 202u);
  EXPECT_EQ(job_result.get_future().get(), "validated c1");
}

TEST_F(HttpServerTest, StartReportsErrors) {
  auto first = StartServer(Plain());
  HttpServer::Options same_port = Plain();
  same_port.port = first->port();
  HttpServer second(same_port, router_.AsHandler());
  const Status busy = second.Start();
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), ErrorCode::kIo);
  EXPECT_NE(busy.error().detail().find("127.0.0.1:" + std::to_string(first->port())),
            std::string::npos)
      << busy.error().detail();
  EXPECT_NE(busy.error().detail().find("in use"), std::string::npos) << busy.error().detail();
  second.Wait();  // never started: returns at once

  HttpServer::Options bad_address = Plain();
  bad_address.address = "not-an-ip";
  HttpServer third(bad_address, router_.AsHandler());
  const Status invalid = third.Start();
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().code(), ErrorCode::kConfig);
  EXPECT_NE(invalid.error().detail().find("not-an-ip"), std::string::npos);

  HttpServer::Options bad_key = Tls();
  bad_key.tls->key_pem =
      "-----BEGIN PRIVATE"
      " KEY-----\nAAAA\n-----END PRIVATE"
      " KEY-----\n";
  HttpServer fourth(bad_key, router_.AsHandler());
  const Status tls = fourth.Start();
  ASSERT_FALSE(tls);
  EXPECT_EQ(tls.error().code(), ErrorCode::kConfig);
  EXPECT_NE(tls.error().detail().find("private key"), std::string::npos);

  EXPECT_EQ(first->Start().error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(HttpServerTest, TerminationSignalWatcherCatchesSigterm) {
  TerminationSignalWatcher watcher;
  ASSERT_EQ(std::raise(SIGTERM), 0);  // caught, not fatal
  EXPECT_EQ(watcher.Wait(), SIGTERM);
}

TEST_F(HttpServerTest, SigintStopsTheServer) {
  auto server = StartServer(Plain());
  const uint16_t port = server->port();
  {
    StopOnTerminationSignal stopper(*server);
    ASSERT_EQ(std::raise(SIGINT), 0);
    server->Wait();
  }
  TestClient late(port);
  EXPECT_EQ(late.Connect(), net::error::connection_refused);
}

}  // namespace
}  // namespace e2eid::server
