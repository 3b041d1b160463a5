// HttpServer: e2eid's HTTP/1.1 (optionally HTTPS) front end, on Boost.Beast/Asio. The network
// library stays inside http_server.cc: callers see only core/http.h types.
//
// Behaviour:
//   - Threading: `threads` I/O threads, each running its own io_context, and one more thread that
//     only accepts connections. A new connection is placed on the I/O thread with the fewest
//     connections and stays there, so its steps never run
//     concurrently (that io_context is its strand) and no thread is woken for another's work:
//     a request costs one wake-up, not several (see bench/README.md). The handler runs
//     synchronously on that thread and may block briefly (a durable commit); while it does, the
//     other connections of the same thread wait, those of other threads do not. Slow work goes to
//     a WorkQueue (server/work_queue.h).
//   - TLS (when `tls` is set): TLS 1.2 and 1.3 only, ECDHE + AEAD cipher suites, no compression,
//     no renegotiation.
//   - HTTP/1.1 keep-alive (and HTTP/1.0 with "Connection: keep-alive"); pipelined requests are
//     answered in order.
//   - Timeouts: `read_timeout` bounds the TLS handshake, the first request's header and every
//     request body; `idle_timeout` bounds the wait for the next request on a kept-alive connection;
//     `write_timeout` bounds writing a response. A connection that exceeds one is closed without a
//     response.
//   - Limits: a header block over `max_header_bytes` is answered with 431, a body over
//     `max_body_bytes` with 413 as soon as it is known (from Content-Length, before reading the
//     body; or while reading a chunked body), a malformed request with 400; all three then close
//     the connection. "Expect: 100-continue" is honoured. Connections beyond `max_connections` are
//     closed right after accept.
//   - Responses always carry Content-Length (except 204 and 304, which must not) and a Date; no
//     Server header is sent. Headers named Content-Length, Transfer-Encoding, Connection,
//     Keep-Alive, Server, Date or X-Request-Id set by the handler are replaced by the server's own,
//     and headers with invalid names or CR/LF/NUL in their values are dropped (and logged). A
//     handler status outside 200..599 becomes 500. For HEAD requests the body is never sent; its
//     length is the handler body's length, or, when that body is empty, the handler's own
//     Content-Length header (see server/router.h).
//   - Request ids: the client's X-Request-Id is used when it has 1 to 64 characters from
//     [A-Za-z0-9._-]; otherwise 32 hex digits unique in this process (a random per-process prefix
//     and a counter). It is put into HttpRequest::request_id,
//     echoed in the X-Request-Id response header and logged.
//   - Access log (core/log.h, level info, msg "http request"): one JSON line per response with
//     request_id, method, path (without the query), status, bytes (response body bytes), latency_us
//     (from the end of the request header to the response being ready), remote. Never the body,
//     the query or any request header.
//   - While the handler runs, CurrentRequestId() on its thread returns the request id, so that a
//     log sink wrapped with RequestIdLogSink() adds it to every line the handler logs (work queued
//     to other threads does not carry it).
//
// Thread safety: Start(), Stop(), Wait() and port() may be called from any thread, but Stop() and
// Wait() must not be called from a handler (they wait for the I/O threads). The handler is called
// concurrently from several threads and must be thread-safe.
#ifndef E2EID_SERVER_HTTP_SERVER_H_
#define E2EID_SERVER_HTTP_SERVER_H_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/error.h"
#include "core/http.h"

namespace e2eid::server {

struct TlsOptions {
  std::string cert_chain_pem;  // leaf certificate first, then intermediates
  std::string key_pem;         // unencrypted private key matching the leaf
};

// The id of the request whose handler is running on the calling thread; "" outside a handler.
std::string_view CurrentRequestId();

// Wraps a core/log.h line sink: a line logged while a handler runs (CurrentRequestId() not empty)
// and without a "request_id" member gets one, as its first member after "{". `next` receives the
// line (an empty `next` writes it to stderr). Install it with SetLogSink(RequestIdLogSink({})).
// Thread-safe as far as `next` is.
std::function<void(std::string_view)> RequestIdLogSink(std::function<void(std::string_view)> next);

class HttpServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";  // IPv4 or IPv6 literal ("0.0.0.0", "::")
    uint16_t port = 0;                  // 0: an ephemeral port; port() reports it after Start()
    size_t threads = std::max<size_t>(1, std::thread::hardware_concurrency());
    std::optional<TlsOptions> tls;  // nullopt: plain HTTP
    size_t max_header_bytes = 8 * 1024;
    size_t max_body_bytes = 64 * 1024;
    std::chrono::seconds read_timeout{30};
    std::chrono::seconds write_timeout{30};
    std::chrono::seconds idle_timeout{60};
    size_t max_connections = 1024;
    // Stop() waits this long for in-flight requests before closing the remaining connections.
    std::chrono::seconds drain_timeout{10};
  };

  // `handler` answers every request (typically Router::AsHandler()); it must outlive the server.
  HttpServer(Options options, HttpHandler handler);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  // Calls Stop().
  ~HttpServer();

  // Validates the options, sets up TLS, binds, listens and starts the I/O threads. Errors:
  // kConfig for invalid options, an unparsable address or an unusable certificate/key (the detail
  // names which); kIo when the socket cannot be opened, bound or put into listening state (the
  // detail names the address:port and the OS reason, e.g. "Address already in use");
  // kInvalidArgument when called twice. After an error the server can be destroyed safely.
  Status Start();

  // The bound port (the ephemeral one when Options::port was 0); 0 before a successful Start().
  uint16_t port() const;

  // Graceful stop: stops accepting (new connections are refused once Stop() returns), closes
  // connections that are idle between requests, lets in-flight requests finish and send their
  // responses (with "Connection: close"), then joins the I/O threads. Connections still open after
  // `drain_timeout` are closed forcibly; a handler that is still running is waited for.
  // Idempotent; concurrent callers return once the server has stopped. No-op before Start().
  void Stop();

  // Blocks until Stop() has completed (returns at once if Start() never succeeded).
  void Wait();

  // Open connections right now (for tests and metrics).
  size_t active_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace e2eid::server

#endif  // E2EID_SERVER_HTTP_SERVER_H_
