#include "server/http_server.h"

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <time.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/encoding.h"
#include "core/log.h"
#include "server/problem.h"

namespace e2eid::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;

// The request id of the handler running on this thread (see CurrentRequestId()).
thread_local std::string t_request_id;

// Sets t_request_id for the lifetime of the scope.
class RequestIdScope {
 public:
  explicit RequestIdScope(const std::string& id) { t_request_id = id; }
  ~RequestIdScope() { t_request_id.clear(); }
  RequestIdScope(const RequestIdScope&) = delete;
  RequestIdScope& operator=(const RequestIdScope&) = delete;
};
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// Mozilla "intermediate": ECDHE key exchange with AEAD ciphers only (TLS 1.2); TLS 1.3 suites.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr char kTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr char kGroups[] = "X25519:P-256:P-384";

// How long a connection that we are closing may take to say goodbye (TLS close_notify, or the
// client's remaining bytes after an early error response).
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr size_t kMaxLingerBytes = 1 << 20;

// Headers the server owns; a handler's values for them are dropped.
constexpr std::string_view kServerOwnedHeaders[] = {
    "content-length", "transfer-encoding", "connection", "keep-alive", "server",
    "date",           "x-request-id"};

// Asio's error_code overloads also return the code; for best-effort cleanup it is ignored on
// purpose.
void IgnoreError(const beast::error_code& /*ec*/) {}

// Beast 1.74 uses boost::string_view, which does not convert to std::string_view.
std::string_view Sv(beast::string_view s) { return {s.data(), s.size()}; }

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsValidHeaderName(std::string_view name) {
  return !name.empty() && std::ranges::all_of(name, IsTokenChar);
}

bool IsValidHeaderValue(std::string_view value) {
  return std::ranges::none_of(value, [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

bool IsWellFormedRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::ranges::all_of(id, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// Request ids only have to be unique within this process's logs (a client may even choose its
// own): a random per-process prefix and a counter, 32 hex digits, without a DRBG call per request.
std::string NewRequestId() {
  static const uint64_t prefix = [] {
    uint64_t p = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&p), sizeof p) != 1) {
      LogError("RAND_bytes failed while seeding request ids; using the clock");
      p = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    }
    return p;
  }();
  static std::atomic<uint64_t> counter{0};
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(prefix),
                static_cast<unsigned long long>(counter.fetch_add(1, std::memory_order_relaxed)));
  return std::string(buf, 32);
}

std::string HttpDate() {
  const time_t now = time(nullptr);
  struct tm tm_utc;
  gmtime_r(&now, &tm_utc);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm_utc);
  return std::string(buf, n);
}

// A parse error in the request (as opposed to a network error, a timeout or the peer leaving).
bool IsParseError(const beast::error_code& ec) {
  if (ec.category() != http::make_error_code(http::error::bad_target).category()) return false;
  return ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_more && ec != http::error::need_buffer;
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Both post to the connection's strand; callable from any thread.
  virtual void BeginShutdown() = 0;  // close now if idle between requests
  virtual void ForceClose() = 0;
};

// The state shared by the acceptor and all connections.
struct ServerCore {
  ServerCore(HttpServer::Options o, HttpHandler h) : options(std::move(o)), handler(std::move(h)) {}

  const HttpServer::Options options;
  const HttpHandler handler;

  // One io_context per I/O thread (see "Threading" in http_server.h). A connection lives on one
  // of them for its whole life, so its handlers run on one thread, one after the other: the
  // io_context is the connection's strand, and no thread ever wakes another for a connection's
  // work.
  struct Worker {
    Worker() : ioc(1) {}              // concurrency hint 1: run by exactly one thread
    std::atomic<size_t> sessions{0};  // connections living on this worker (outlives ioc)
    net::io_context ioc;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::thread thread;
  };
  // Declared first so that they are destroyed last. workers[0] only accepts connections (so a
  // handler blocking a connection thread never delays new connections); workers[1..] run them.
  std::vector<std::unique_ptr<Worker>> workers;
  std::optional<ssl::context> tls;
  std::optional<tcp::acceptor> acceptor;  // on workers[0]
  std::atomic<bool> stopping{false};
  std::atomic<uint16_t> port{0};

  mutable std::mutex sessions_mutex;
  std::condition_variable sessions_cv;  // signalled when a session ends
  std::unordered_map<uint64_t, std::weak_ptr<SessionBase>> sessions;
  uint64_t next_session_id = 0;

  enum class State { kNew, kRunning, kStopped };
  std::mutex lifecycle_mutex;
  std::condition_variable stopped_cv;
  State state = State::kNew;

  void Unregister(uint64_t id) {
    {
      std::lock_guard lock(sessions_mutex);
      sessions.erase(id);
    }
    sessions_cv.notify_all();
  }

  std::vector<std::shared_ptr<SessionBase>> SnapshotSessions() {
    std::vector<std::shared_ptr<SessionBase>> out;
    std::lock_guard lock(sessions_mutex);
    for (auto& [id, weak] : sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  // The worker with the fewest connections (the first of equals): where the next one goes.
  Worker& LeastLoadedWorker() {
    Worker* best = workers[1].get();
    for (size_t i = 2; i < workers.size(); ++i) {
      const auto& w = workers[i];
      if (w->sessions.load(std::memory_order_relaxed) <
          best->sessions.load(std::memory_order_relaxed)) {
        best = w.get();
      }
    }
    return *best;
  }

  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket, Worker& worker);
  template <class Stream, class... Args>
  void StartSession(std::string remote, Worker& worker, Args&&... args);
};

// What the access log and error responses need to know about the request being answered.
struct RequestInfo {
  std::string method = "-";
  std::string path = "-";
  std::string request_id;
  unsigned version = 11;
  Clock::time_point started = Clock::now();
};

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <class... Args>
  Session(ServerCore& server, ServerCore::Worker& worker, uint64_t id, std::string remote,
          Args&&... args)
      : server_(server),
        worker_(worker),
        id_(id),
        remote_(std::move(remote)),
        stream_(std::forward<Args>(args)...) {
    worker_.sessions.fetch_add(1, std::memory_order_relaxed);
  }

  ~Session() override {
    worker_.sessions.fetch_sub(1, std::memory_order_relaxed);
    server_.Unregister(id_);
  }

  void Run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  void BeginShutdown() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->state_ == State::kReadingHeader && self->IdleBetweenRequests()) self->Close();
    });
  }

  void ForceClose() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Close(); });
  }

 private:
  enum class State { kHandshake, kReadingHeader, kReadingBody, kWriting, kClosing, kClosed };

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  bool IdleBetweenRequests() const {
    return buffer_.size() == 0 && (!parser_.has_value() || !parser_->got_some());
  }

  void Begin() {
    if constexpr (kTls) {
      state_ = State::kHandshake;
      Lowest().expires_after(server_.options.read_timeout);
      stream_.async_handshake(
          ssl::stream_base::server,
          [self = this->shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
    } else {
      DoReadHeader();
    }
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      LogDebug("TLS handshake failed", {{"remote", remote_}, {"error", ec.message()}});
      Close();
      return;
    }
    DoReadHeader();
  }

  void DoReadHeader() {
    if (state_ == State::kClosed) return;
    if (server_.stopping.load() && buffer_.size() == 0) {
      Close();
      return;
    }
    const bool idle = buffer_.size() == 0;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(server_.options.max_header_bytes, std::numeric_limits<uint32_t>::max())));
    parser_->body_limit(server_.options.max_body_bytes);
    info_ = RequestInfo{};
    state_ = State::kReadingHeader;
    Lowest().expires_after(requests_ > 0 && idle ? server_.options.idle_timeout
                                                 : server_.options.read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              self->OnReadHeader(ec);
                            });
  }

  // Fills info_ from whatever part of the header the parser has seen.
  void CaptureRequestInfo() {
    const auto& msg = parser_->get();
    info_.started = Clock::now();
    info_.version = msg.version() == 10 ? 10 : 11;
    if (!msg.method_string().empty()) info_.method = std::string(Sv(msg.method_string()));
    const std::string_view target = Sv(msg.target());
    if (!target.empty()) info_.path = std::string(target.substr(0, target.find('?')));
    const auto it = msg.find("X-Request-Id");
    if (it != msg.end() && IsWellFormedRequestId(Sv(it->value()))) {
      info_.request_id = std::string(Sv(it->value()));
    } else {
      info_.request_id = NewRequestId();
    }
  }

  // Handles a failed read: answers parse errors and limit violations, closes on anything else.
  void OnReadError(beast::error_code ec) {
    if (ec == http::error::header_limit) {
      CaptureRequestInfo();
      SendError(431, "request header fields too large (limit " +
                         std::to_string(server_.options.max_header_bytes) + " bytes)");
    } else if (ec == http::error::body_limit) {
      CaptureRequestInfo();
      SendError(413, "request body too large (limit " +
                         std::to_string(server_.options.max_body_bytes) + " bytes)");
    } else if (IsParseError(ec) && parser_->got_some()) {
      CaptureRequestInfo();
      SendError(400, "malformed HTTP request: " + ec.message());
    } else {
      if (ec != http::error::end_of_stream && ec != net::error::operation_aborted) {
        LogDebug("connection closed",
                 {{"remote", remote_}, {"reason", ec.message()}, {"state", StateName()}});
      }
      Close();
    }
  }

  void OnReadHeader(beast::error_code ec) {
    if (ec) {
      OnReadError(ec);
      return;
    }
    ++requests_;
    CaptureRequestInfo();
    const auto& msg = parser_->get();
    const auto expect = msg.find(http::field::expect);
    if (expect != msg.end()) {
      if (!EqualsIgnoreCase(Sv(expect->value()), "100-continue")) {
        SendError(417, "unsupported Expect value");
        return;
      }
      if (!parser_->is_done()) {
        state_ = State::kWriting;
        continue_.emplace(http::status::continue_, msg.version());
        Lowest().expires_after(server_.options.write_timeout);
        http::async_write(stream_, *continue_,
                          [self = this->shared_from_this()](beast::error_code wec, size_t) {
                            if (wec) {
                              self->Close();
                              return;
                            }
                            self->DoReadBody();
                          });
        return;
      }
    }
    DoReadBody();
  }

  void DoReadBody() {
    if (parser_->is_done()) {
      OnRequest();
      return;
    }
    state_ = State::kReadingBody;
    Lowest().expires_after(server_.options.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) {
                         self->OnReadError(ec);
                         return;
                       }
                       self->OnRequest();
                     });
  }

  void OnRequest() {
    http::request<http::string_body> msg = parser_->release();
    const std::string_view target = Sv(msg.target());
    if (target.empty() || target.front() != '/') {
      SendError(400, "request target must be an absolute path (origin-form)");
      return;
    }
    if (msg.version() == 11 && msg.find(http::field::host) == msg.end()) {
      SendError(400, "HTTP/1.1 request without a Host header");
      return;
    }
    HttpRequest request;
    request.method = std::string(Sv(msg.method_string()));
    request.target = std::string(target);
    const size_t q = target.find('?');
    request.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) request.query = std::string(target.substr(q + 1));
    for (const auto& field : msg) {
      request.headers.emplace_back(std::string(Sv(field.name_string())),
                                   std::string(Sv(field.value())));
    }
    request.body = std::move(msg.body());
    request.remote_address = remote_;
    request.request_id = info_.request_id;

    HttpResponse response;
    const RequestIdScope request_id_scope(info_.request_id);
    try {
      response = server_.handler(request);
    } catch (const std::exception& e) {
      LogError("HTTP handler threw", {{"request_id", info_.request_id}, {"what", e.what()}});
      response = ProblemResponse(Error::Internal("HTTP handler threw"), info_.request_id);
    } catch (...) {
      LogError("HTTP handler threw",
               {{"request_id", info_.request_id}, {"what", "non-standard exception"}});
      response = ProblemResponse(Error::Internal("HTTP handler threw"), info_.request_id);
    }
    SendResponse(std::move(response), msg.keep_alive());
  }

  void SendError(int status, std::string detail) {
    HttpResponse response;
    if (status == 413) {
      response = ProblemResponse(Error(ErrorCode::kPayloadTooLarge, std::move(detail)));
    } else if (status == 400) {
      response = ProblemResponse(Error::Malformed(std::move(detail)));
    } else {
      response = ProblemResponse(status, "about:blank", detail);
    }
    SendResponse(std::move(response), /*keep_alive=*/false);
  }

  void SendResponse(HttpResponse response, bool keep_alive) {
    if (response.status < 200 || response.status > 599) {
      LogError("HTTP handler returned an invalid status",
               {{"request_id", info_.request_id}, {"status", response.status}});
      response = ProblemResponse(
          Error::Internal("invalid status " + std::to_string(response.status)), info_.request_id);
    }
    const bool head = info_.method == "HEAD";
    const bool bodiless_status = response.status == 204 || response.status == 304;

    res_.emplace();
    res_->version(info_.version);
    res_->result(static_cast<unsigned>(response.status));
    std::optional<uint64_t> declared_length;
    for (auto& [name, value] : response.headers) {
      if (!IsValidHeaderName(name) || !IsValidHeaderValue(value)) {
        LogWarn("dropping an invalid response header",
                {{"request_id", info_.request_id}, {"header", name}});
        continue;
      }
      if (EqualsIgnoreCase(name, "content-length")) {
        uint64_t n = 0;
        const auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (err == std::errc() && end == value.data() + value.size()) declared_length = n;
        continue;
      }
      if (std::ranges::any_of(kServerOwnedHeaders,
                              [&](std::string_view h) { return EqualsIgnoreCase(name, h); })) {
        continue;
      }
      res_->insert(name, value);
    }
    res_->set(http::field::date, HttpDate());
    res_->set("X-Request-Id", info_.request_id);

    uint64_t body_bytes = 0;
    if (bodiless_status) {
      // RFC 9110 §8.6: no Content-Length (and no body) in 204; 304 has no body either.
    } else if (head) {
      res_->content_length(!response.body.empty() ? response.body.size()
                                                  : declared_length.value_or(0));
    } else {
      body_bytes = response.body.size();
      res_->content_length(body_bytes);
      res_->body() = std::move(response.body);
    }
    keep_alive_ = keep_alive && !server_.stopping.load();
    res_->keep_alive(keep_alive_);

    LogInfo("http request", {{"request_id", info_.request_id},
                             {"method", info_.method},
                             {"path", info_.path},
                             {"status", response.status},
                             {"bytes", body_bytes},
                             {"latency_us", std::chrono::duration_cast<std::chrono::microseconds>(
                                                Clock::now() - info_.started)
                                                .count()},
                             {"remote", remote_}});

    state_ = State::kWriting;
    Lowest().expires_after(server_.options.write_timeout);
    http::async_write(
        stream_, *res_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    res_.reset();
    if (ec) {
      LogDebug("writing a response failed", {{"remote", remote_}, {"error", ec.message()}});
      Close();
      return;
    }
    if (!keep_alive_) {
      GracefulClose();
      return;
    }
    // Kept alive; when the server is stopping, DoReadHeader closes the now idle connection.
    DoReadHeader();
  }

  // Closes after a final response: TLS close_notify, or half-close and drain what the client is
  // still sending (so that it reads our response instead of a reset).
  void GracefulClose() {
    state_ = State::kClosing;
    Lowest().expires_after(
        std::min<std::chrono::seconds>(kLingerTimeout, server_.options.read_timeout));
    if constexpr (kTls) {
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->Close(); });
    } else {
      beast::error_code ec;
      if (Lowest().socket().shutdown(tcp::socket::shutdown_send, ec)) {
        Close();
        return;
      }
      Drain();
    }
  }

  void Drain() {
    if constexpr (!kTls) {
      Lowest().async_read_some(net::buffer(drain_buffer_),
                               [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                                 self->drained_ += n;
                                 if (ec || self->drained_ > kMaxLingerBytes) {
                                   self->Close();
                                   return;
                                 }
                                 self->Drain();
                               });
    }
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    beast::error_code ignored;
    IgnoreError(Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored));
    Lowest().close();
  }

  const char* StateName() const {
    switch (state_) {
      case State::kHandshake:
        return "handshake";
      case State::kReadingHeader:
        return "reading header";
      case State::kReadingBody:
        return "reading body";
      case State::kWriting:
        return "writing";
      case State::kClosing:
        return "closing";
      case State::kClosed:
        return "closed";
    }
    return "unknown";
  }

  ServerCore& server_;
  ServerCore::Worker& worker_;
  const uint64_t id_;
  const std::string remote_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  std::optional<http::response<http::empty_body>> continue_;
  RequestInfo info_;
  State state_ = State::kHandshake;
  bool keep_alive_ = false;
  uint64_t requests_ = 0;
  char drain_buffer_[4096];
  size_t drained_ = 0;
};

void ServerCore::DoAccept() {
  // The new connection's socket is created on the worker it will live on.
  Worker& worker = LeastLoadedWorker();
  acceptor->async_accept(worker.ioc.get_executor(),
                         [this, &worker](beast::error_code ec, tcp::socket socket) {
                           OnAccept(ec, std::move(socket), worker);
                         });
}

template <class Stream, class... Args>
void ServerCore::StartSession(std::string remote, Worker& worker, Args&&... args) {
  std::shared_ptr<Session<Stream>> session;
  {
    std::lock_guard lock(sessions_mutex);
    const uint64_t id = next_session_id++;
    session = std::make_shared<Session<Stream>>(*this, worker, id, std::move(remote),
                                                std::forward<Args>(args)...);
    sessions.emplace(id, session);
  }
  session->Run();
}

void ServerCore::OnAccept(beast::error_code ec, tcp::socket socket, Worker& worker) {
  if (!acceptor->is_open() || ec == net::error::operation_aborted) return;  // Stop() closed it
  if (ec) {
    LogWarn("accepting a connection failed", {{"error", ec.message()}});
    // Out of file descriptors and the like: back off briefly instead of spinning.
    auto timer = std::make_shared<net::steady_timer>(acceptor->get_executor(),
                                                     std::chrono::milliseconds(50));
    timer->async_wait([this, timer](beast::error_code) {
      if (acceptor->is_open()) DoAccept();
    });
    return;
  }
  if (stopping.load()) {
    beast::error_code ignored;
    IgnoreError(socket.close(ignored));
    return;
  }
  size_t open = 0;
  {
    std::lock_guard lock(sessions_mutex);
    open = sessions.size();
  }
  beast::error_code endpoint_ec;
  const tcp::endpoint peer = socket.remote_endpoint(endpoint_ec);
  std::string remote = endpoint_ec ? std::string("unknown") : peer.address().to_string();
  if (open >= options.max_connections) {
    LogWarn("connection limit reached, closing a new connection",
            {{"remote", remote}, {"max_connections", options.max_connections}});
    beast::error_code ignored;
    IgnoreError(socket.shutdown(tcp::socket::shutdown_both, ignored));
    IgnoreError(socket.close(ignored));
  } else if (tls.has_value()) {
    StartSession<beast::ssl_stream<beast::tcp_stream>>(std::move(remote), worker, std::move(socket),
                                                       *tls);
  } else {
    StartSession<beast::tcp_stream>(std::move(remote), worker, std::move(socket));
  }
  DoAccept();
}

Status ValidateOptions(const HttpServer::Options& o) {
  if (o.threads == 0) return Fail(Error::Config("HTTP server: threads must be at least 1"));
  if (o.max_connections == 0) {
    return Fail(Error::Config("HTTP server: max_connections must be at least 1"));
  }
  if (o.max_header_bytes < 256 || o.max_header_bytes > std::numeric_limits<uint32_t>::max()) {
    return Fail(Error::Config("HTTP server: max_header_bytes must be between 256 and 2^32-1"));
  }
  if (o.read_timeout.count() <= 0 || o.write_timeout.count() <= 0 || o.idle_timeout.count() <= 0) {
    return Fail(Error::Config("HTTP server: read, write and idle timeouts must be positive"));
  }
  if (o.drain_timeout.count() < 0) {
    return Fail(Error::Config("HTTP server: drain_timeout must not be negative"));
  }
  return Ok();
}

Result<ssl::context> MakeTlsContext(const TlsOptions& options) {
  std::optional<ssl::context> ctx;
  try {
    ctx.emplace(ssl::context::tls_server);
  } catch (const std::exception& e) {
    return Fail(Error::Crypto(std::string("creating the TLS context: ") + e.what()));
  }
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1) {
    return Fail(Error::Crypto("TLS: restricting the protocol versions to 1.2-1.3 failed"));
  }
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_SSLv3 |
                                  SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1) {
    return Fail(Error::Crypto("TLS: setting the cipher suites failed"));
  }
  if (SSL_CTX_set1_groups_list(native, kGroups) != 1) {
    return Fail(Error::Crypto("TLS: setting the key exchange groups failed"));
  }
  beast::error_code ec;
  if (ctx->use_certificate_chain(net::buffer(options.cert_chain_pem), ec)) {
    return Fail(Error::Config("TLS certificate chain PEM is unusable: " + ec.message()));
  }
  if (ctx->use_private_key(net::buffer(options.key_pem), ssl::context::pem, ec)) {
    return Fail(Error::Config("TLS private key PEM is unusable: " + ec.message()));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return Fail(Error::Config("TLS private key does not match the leaf certificate"));
  }
  return std::move(*ctx);
}

void RunIoThread(net::io_context& ioc) {
  while (true) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      LogError("exception escaped an HTTP server I/O handler", {{"what", e.what()}});
    } catch (...) {
      LogError("exception escaped an HTTP server I/O handler", {{"what", "unknown"}});
    }
  }
}

}  // namespace

std::string_view CurrentRequestId() { return t_request_id; }

std::function<void(std::string_view)> RequestIdLogSink(std::function<void(std::string_view)> next) {
  return [next = std::move(next)](std::string_view line) {
    std::string with_id;
    const std::string_view id = t_request_id;
    // Request ids are [A-Za-z0-9._-] tokens (no JSON escaping needed). Inside JSON strings a
    // quote is escaped, so an unescaped "request_id": can only be a member name.
    if (!id.empty() && line.starts_with('{') &&
        line.find("\"request_id\":") == std::string_view::npos) {
      with_id.reserve(line.size() + id.size() + 20);
      with_id += "{\"request_id\":\"";
      with_id += id;
      with_id += line.size() > 2 ? "\"," : "\"";
      with_id += line.substr(1);
      line = with_id;
    }
    if (next) {
      next(line);
    } else {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    }
  };
}

struct HttpServer::Impl : ServerCore {
  using ServerCore::ServerCore;
};

HttpServer::HttpServer(Options options, HttpHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mutex);
  if (s.state != ServerCore::State::kNew) {
    return Fail(Error::InvalidArgument("HttpServer::Start called twice"));
  }
  E2EID_CHECK_OK(ValidateOptions(s.options));
  if (!s.handler) return Fail(Error::Config("HTTP server: handler is empty"));
  if (s.options.tls.has_value()) {
    auto ctx = MakeTlsContext(*s.options.tls);
    if (!ctx) return std::unexpected(std::move(ctx).error());
    s.tls.emplace(std::move(*ctx));
  }

  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(s.options.address, ec);
  if (ec) {
    return Fail(Error::Config("HTTP server: invalid listen address '" + s.options.address +
                              "': " + ec.message()));
  }
  const tcp::endpoint endpoint(address, s.options.port);
  const std::string where = (address.is_v6() ? "[" + s.options.address + "]" : s.options.address) +
                            ":" + std::to_string(s.options.port);
  for (size_t i = 0; i < 1 + s.options.threads; ++i) {
    s.workers.push_back(std::make_unique<ServerCore::Worker>());
  }
  tcp::acceptor& acceptor = s.acceptor.emplace(s.workers.front()->ioc.get_executor());
  const auto fail = [&](std::string_view step) {
    beast::error_code ignored;
    IgnoreError(acceptor.close(ignored));
    return Fail(Error::Io("HTTP server: " + std::string(step) + " " + where + ": " + ec.message()));
  };
  if (acceptor.open(endpoint.protocol(), ec)) return fail("opening a socket for");
  if (acceptor.set_option(net::socket_base::reuse_address(true), ec)) {
    return fail("setting SO_REUSEADDR for");
  }
  if (acceptor.bind(endpoint, ec)) return fail("binding");
  if (acceptor.listen(net::socket_base::max_listen_connections, ec)) return fail("listening on");
  const tcp::endpoint local = acceptor.local_endpoint(ec);
  if (ec) return fail("reading the bound port of");
  s.port.store(local.port());

  for (auto& w : s.workers) w->work.emplace(w->ioc.get_executor());
  s.DoAccept();
  try {
    for (auto& w : s.workers) {
      w->thread = std::thread([&ioc = w->ioc] { RunIoThread(ioc); });
    }
  } catch (const std::exception& e) {
    // Leave the server in a stoppable state: the threads that did start are joined by Stop().
    s.state = ServerCore::State::kRunning;
    LogError("starting HTTP server threads failed", {{"what", e.what()}});
    return Fail(Error::Internal(std::string("starting HTTP server threads: ") + e.what()));
  }
  s.state = ServerCore::State::kRunning;
  LogInfo("http server listening", {{"address", s.options.address},
                                    {"port", local.port()},
                                    {"tls", s.options.tls.has_value()},
                                    {"threads", s.options.threads}});
  return Ok();
}

uint16_t HttpServer::port() const { return impl_->port.load(); }

size_t HttpServer::active_connections() const {
  std::lock_guard lock(impl_->sessions_mutex);
  return impl_->sessions.size();
}

void HttpServer::Stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mutex);
  if (s.state == ServerCore::State::kStopped) return;
  if (s.state == ServerCore::State::kNew) {
    // Never started (or Start() failed): nothing runs. Release a half-set-up acceptor.
    s.acceptor.reset();
    s.workers.clear();
    s.state = ServerCore::State::kStopped;
    s.stopped_cv.notify_all();
    return;
  }
  for (const auto& w : s.workers) {
    if (w->thread.get_id() == std::this_thread::get_id()) {
      LogError("HttpServer::Stop called from a server thread; ignored (it would deadlock)");
      return;
    }
  }

  s.stopping.store(true);
  net::post(s.acceptor->get_executor(), [&s] {
    beast::error_code ignored;
    IgnoreError(s.acceptor->close(ignored));
  });
  for (const auto& session : s.SnapshotSessions()) session->BeginShutdown();
  bool drained;
  {
    std::unique_lock sessions_lock(s.sessions_mutex);
    drained = s.sessions_cv.wait_for(sessions_lock, s.options.drain_timeout,
                                     [&s] { return s.sessions.empty(); });
  }
  if (!drained) {
    const auto remaining = s.SnapshotSessions();
    LogWarn("http server drain timeout; closing the remaining connections",
            {{"connections", remaining.size()}});
    for (const auto& session : remaining) session->ForceClose();
  }
  for (auto& w : s.workers) w->work.reset();
  for (auto& w : s.workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  s.acceptor.reset();
  // Destroys the handlers still queued (and the connections they hold) while the rest of the
  // server they refer to is alive.
  s.workers.clear();
  s.state = ServerCore::State::kStopped;
  s.stopped_cv.notify_all();
  LogInfo("http server stopped", {{"port", s.port.load()}});
}

void HttpServer::Wait() {
  Impl& s = *impl_;
  std::unique_lock lock(s.lifecycle_mutex);
  s.stopped_cv.wait(lock, [&s] { return s.state != ServerCore::State::kRunning; });
}

}  // namespace e2eid::server
