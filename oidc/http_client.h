// A small blocking HTTP(S) client for talking to identity providers, device authorities and ACME
// servers (libcurl underneath).
//
// Contract:
// - TLS certificates and host names are always verified for https:// URLs (no switch turns that
//   off); HttpClientOptions::ca_file replaces the system trust store (tests use the demo CA).
// - Plain http:// is refused unless allow_plain_http is set, or the host is a loopback address
//   ("127.0.0.1", "[::1]", "localhost") and allow_plain_http_loopback is set (the default; the
//   test identity provider runs on loopback without TLS, like a Keycloak dev instance).
// - Redirects are never followed: the caller sees 3xx responses as they are.
// - Every request has a connect timeout and a total timeout; a response body longer than
//   max_response_bytes is an error (kIo), so a hostile peer cannot exhaust memory.
// - Errors: kConnection for connect/TLS/timeouts/DNS failures (the message names the URL and
//   libcurl's reason), kInvalidArgument for a refused URL. An HTTP error status (4xx/5xx) is NOT an
//   error here: it is returned in FetchResponse::status for the caller to interpret.
//
// Thread safety: Send may be called concurrently from several threads on one client.
#ifndef E2EID_OIDC_HTTP_CLIENT_H_
#define E2EID_OIDC_HTTP_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/http.h"

namespace e2eid::oidc {

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds total_timeout{15000};
  std::string ca_file;  // PEM bundle; empty = system trust store
  bool allow_plain_http = false;
  bool allow_plain_http_loopback = true;
  size_t max_response_bytes = 4 * 1024 * 1024;
  std::string user_agent = "e2eid";
  // Proxy URL for every request (e.g. "http://proxy.corp:3128"); empty = direct connections.
  // Proxy environment variables (http_proxy, https_proxy, ...) are ignored either way.
  std::string proxy;
};

struct FetchRequest {
  std::string method = "GET";  // GET, HEAD, POST, ...
  std::string url;
  HttpHeaders headers;
  std::string body;  // sent for POST/PUT (Content-Type must be given in headers)
};

struct FetchResponse {
  int status = 0;
  HttpHeaders headers;  // names as received; look up with FindHeader (case-insensitive)
  std::string body;

  std::optional<std::string> Header(std::string_view name) const {
    return FindHeader(headers, name);
  }
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual Result<FetchResponse> Send(const FetchRequest& request) = 0;
  // Whether Send would accept `url` (scheme, plain-http policy), without sending anything; used
  // to check URLs a peer hands out (e.g. the endpoints of a discovery document). The default
  // applies CheckUrlAllowed with default HttpClientOptions (https anywhere, http on loopback).
  // Errors: kInvalidArgument naming the reason.
  virtual Status CheckUrl(std::string_view url) const;
};

// The URL policy of the contract above: an absolute http:// or https:// URL with a host; plain
// http only as `options` allows. Errors: kInvalidArgument naming the reason (no request is sent).
Status CheckUrlAllowed(std::string_view url, const HttpClientOptions& options);

// The libcurl implementation. curl_global_init is done once, thread-safely, on first use.
std::unique_ptr<HttpClient> MakeCurlHttpClient(HttpClientOptions options);

}  // namespace e2eid::oidc

#endif  // E2EID_OIDC_HTTP_CLIENT_H_
