// Transport-neutral HTTP request and response types.
//
// Handler code (acme/, revocation/, admin endpoints) works only with these types; it never sees the
// network library. server/ translates between them and the wire: it fills every HttpRequest field
// before calling a handler and, for the response, computes Content-Length from `body`, adds
// X-Request-Id and Date, and drops connection-level headers a handler may have set (Content-Length,
// Transfer-Encoding, Connection, Keep-Alive, Server). See server/http_server.h for the details.
//
// Header names compare case-insensitively (RFC 9110 §5.1). Plain value types: no synchronisation,
// safe to copy between threads.
#ifndef E2EID_CORE_HTTP_H_
#define E2EID_CORE_HTTP_H_

#include <algorithm>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace e2eid {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// ASCII case-insensitive equality, for header names and tokens.
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// The value of the first header called `name` (case-insensitive), or nullopt.
inline std::optional<std::string> FindHeader(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

struct HttpRequest {
  std::string method;   // as sent, e.g. "GET", "POST", "HEAD" (methods are case-sensitive)
  std::string target;   // origin-form request target: path plus optional "?query"
  std::string path;     // target up to (excluding) the first '?'; not percent-decoded
  std::string query;    // after the first '?' (excluding it); empty when there is none
  HttpHeaders headers;  // in arrival order; repeated headers appear repeatedly
  std::string body;
  std::string remote_address;  // peer IP address as text, e.g. "127.0.0.1" or "::1"
  std::string request_id;      // set by the server; also echoed in the X-Request-Id response header

  // The first header called `name` (case-insensitive), or nullopt.
  std::optional<std::string> Header(std::string_view name) const {
    return FindHeader(headers, name);
  }
};

struct HttpResponse {
  int status = 200;
  HttpHeaders headers;
  std::string body;

  std::optional<std::string> Header(std::string_view name) const {
    return FindHeader(headers, name);
  }
  // Replaces every header called `name` by one with `value`.
  HttpResponse& SetHeader(std::string_view name, std::string value) {
    RemoveHeader(name);
    headers.emplace_back(std::string(name), std::move(value));
    return *this;
  }
  // Appends a header, keeping existing ones with the same name (e.g. several Link headers).
  HttpResponse& AddHeader(std::string_view name, std::string value) {
    headers.emplace_back(std::string(name), std::move(value));
    return *this;
  }
  HttpResponse& RemoveHeader(std::string_view name) {
    std::erase_if(headers, [&](const auto& h) { return EqualsIgnoreCase(h.first, name); });
    return *this;
  }

  // A response with `body` and the given Content-Type.
  static HttpResponse WithBody(int status, std::string content_type, std::string body) {
    HttpResponse r;
    r.status = status;
    r.headers.emplace_back("Content-Type", std::move(content_type));
    r.body = std::move(body);
    return r;
  }
  static HttpResponse Text(int status, std::string body) {
    return WithBody(status, "text/plain; charset=utf-8", std::move(body));
  }
  static HttpResponse Json(int status, std::string json_text) {
    return WithBody(status, "application/json", std::move(json_text));
  }
  // A response without a body (e.g. 204, or 200 for HEAD-style answers).
  static HttpResponse Empty(int status) {
    HttpResponse r;
    r.status = status;
    return r;
  }
};

// A synchronous request handler. It may block briefly (a database query); anything slower belongs
// on a work queue (server/work_queue.h). It should not throw: the server turns an escaping
// exception into a 500 response and logs it.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

}  // namespace e2eid

#endif  // E2EID_CORE_HTTP_H_
