#include "oidc/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

namespace e2eid::oidc {
namespace {

template <auto Fn>
struct CurlDeleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    Fn(p);
  }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter<curl_easy_cleanup>>;
using CurlSlistPtr = std::unique_ptr<curl_slist, CurlDeleter<curl_slist_free_all>>;
using CurlUrlPtr = std::unique_ptr<CURLU, CurlDeleter<curl_url_cleanup>>;
using CurlStringPtr = std::unique_ptr<char, CurlDeleter<curl_free>>;

// Response headers beyond this many bytes (all lines together) abort the transfer.
constexpr size_t kMaxHeaderBytes = size_t{256} * 1024;

Status InitCurlOnce() {
  // A function-local static is initialised exactly once even when several threads get here.
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK) {
    return Fail(
        Error::Internal(std::string("curl_global_init failed: ") + curl_easy_strerror(code)));
  }
  return Ok();
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The URL for error messages: without query and fragment (they may carry codes or tokens) and
// with control characters replaced, truncated to a sane length.
std::string DisplayUrl(std::string_view url) {
  const size_t cut = url.find_first_of("?#");
  if (cut != std::string_view::npos) url = url.substr(0, cut);
  std::string out;
  for (char c : url.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u >= 0x7f ? '?' : c);
  }
  if (url.size() > 200) out += "...";
  return out;
}

std::string UrlPart(CURLU* url, CURLUPart part) {
  char* raw = nullptr;
  if (curl_url_get(url, part, &raw, 0) != CURLUE_OK) return "";
  CurlStringPtr owned(raw);
  return owned ? std::string(owned.get()) : std::string();
}

bool IsLoopbackHost(std::string_view host) {
  const std::string h = ToLower(host);
  return h == "127.0.0.1" || h == "[::1]" || h == "localhost";
}

// Parses `url` with libcurl's URL parser and applies the policy. The returned handle is what the
// request uses (CURLOPT_CURLU), so the URL checked is exactly the URL fetched.
Result<CurlUrlPtr> ParseAndCheckUrl(std::string_view url, const HttpClientOptions& options) {
  const std::string shown = DisplayUrl(url);
  auto refuse = [&](std::string_view why) {
    return Fail(Error::InvalidArgument("URL \"" + shown + "\" refused: " + std::string(why)));
  };
  if (url.empty()) return Fail(Error::InvalidArgument("URL is empty"));
  if (std::any_of(url.begin(), url.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
      })) {
    return refuse("it contains white space or control characters");
  }
  CurlUrlPtr handle(curl_url());
  if (!handle) return Fail(Error::Internal("curl_url failed"));
  const std::string text(url);
  if (curl_url_set(handle.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) {
    return refuse("not an absolute http or https URL");
  }
  const std::string scheme = ToLower(UrlPart(handle.get(), CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") return refuse("only http and https are allowed");
  const std::string host = UrlPart(handle.get(), CURLUPART_HOST);
  if (host.empty()) return refuse("it has no host");
  if (!UrlPart(handle.get(), CURLUPART_USER).empty() ||
      !UrlPart(handle.get(), CURLUPART_PASSWORD).empty()) {
    return refuse("credentials in the URL are not accepted");
  }
  if (scheme == "http" && !options.allow_plain_http) {
    if (!IsLoopbackHost(host)) {
      return refuse("plain http is only allowed to a loopback host (use https)");
    }
    if (!options.allow_plain_http_loopback) return refuse("plain http is not allowed (use https)");
  }
  return handle;
}

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool IsFieldValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

long AtLeastOneMs(std::chrono::milliseconds d) {              // NOLINT(runtime/int): libcurl's type
  return static_cast<long>(std::max<int64_t>(1, d.count()));  // NOLINT(runtime/int)
}

struct Sink {
  std::string body;
  size_t limit = 0;
  bool body_overflow = false;
  HttpHeaders headers;
  size_t header_bytes = 0;
  bool header_overflow = false;
};

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* sink = static_cast<Sink*>(userdata);
  const size_t n = size * nmemb;
  if (n > sink->limit - sink->body.size()) {
    sink->body_overflow = true;
    return CURL_WRITEFUNC_ERROR;
  }
  sink->body.append(ptr, n);
  return n;
}

size_t WriteHeader(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* sink = static_cast<Sink*>(userdata);
  const size_t n = size * nmemb;
  sink->header_bytes += n;
  if (sink->header_bytes > kMaxHeaderBytes) {
    sink->header_overflow = true;
    return 0;  // aborts the transfer
  }
  const std::string_view line(ptr, n);
  if (line.starts_with("HTTP/")) {
    // A new status line: an interim (1xx) response's headers are not the final ones.
    sink->headers.clear();
    return n;
  }
  if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    // Obsolete line folding: continues the previous header's value.
    if (!sink->headers.empty()) {
      const std::string_view more = Trim(line);
      if (!more.empty()) sink->headers.back().second.append(" ").append(more);
    }
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;  // the blank line that ends the headers
  sink->headers.emplace_back(std::string(Trim(line.substr(0, colon))),
                             std::string(Trim(line.substr(colon + 1))));
  return n;
}

class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(HttpClientOptions options) : options_(std::move(options)) {}
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  Result<FetchResponse> Send(const FetchRequest& request) override;
  Status CheckUrl(std::string_view url) const override { return CheckUrlAllowed(url, options_); }

 private:
  const HttpClientOptions options_;
};

Result<FetchResponse> CurlHttpClient::Send(const FetchRequest& request) {
  E2EID_CHECK_OK(InitCurlOnce());
  E2EID_TRY(url, ParseAndCheckUrl(request.url, options_));
  const std::string shown = request.method + " " + DisplayUrl(request.url);

  if (!IsToken(request.method)) {
    return Fail(Error::InvalidArgument("HTTP method \"" + DisplayUrl(request.method) +
                                       "\" is not a valid token"));
  }
  const bool is_get = request.method == "GET";
  const bool is_head = request.method == "HEAD";
  if ((is_get || is_head) && !request.body.empty()) {
    return Fail(
        Error::InvalidArgument(shown + ": a " + request.method + " request cannot carry a body"));
  }

  CurlSlistPtr header_list;
  auto append = [&](const std::string& line) -> Status {
    // curl_slist_append returns the list's head: a new list the first time, else the same one.
    curl_slist* head = curl_slist_append(header_list.get(), line.c_str());
    if (head == nullptr) return Fail(Error::Internal("curl_slist_append failed"));
    if (!header_list) header_list.reset(head);
    return Ok();
  };
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name) || !IsFieldValue(value)) {
      return Fail(Error::InvalidArgument(shown + ": request header \"" + DisplayUrl(name) +
                                         "\" has an invalid name or value"));
    }
    // "Name;" is libcurl's way of sending a header with an empty value.
    E2EID_CHECK_OK(append(value.empty() ? name + ";" : name + ": " + value));
  }
  // No "Expect: 100-continue" round trip for bodies.
  if (!request.body.empty()) E2EID_CHECK_OK(append("Expect:"));

  CurlPtr curl(curl_easy_init());
  if (!curl) return Fail(Error::Internal("curl_easy_init failed"));

  Sink sink;
  sink.limit = options_.max_response_bytes;
  char error_buffer[CURL_ERROR_SIZE] = {};

  CURLcode set_code = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (set_code == CURLE_OK) set_code = curl_easy_setopt(curl.get(), option, value);
  };
  set(CURLOPT_CURLU, url.get());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_PROXY, options_.proxy.c_str());  // "" disables proxies, including the environment's
  set(CURLOPT_NOSIGNAL, 1L);  // required when several threads use libcurl with timeouts
  // 0 would mean "no limit" to libcurl; every request has one.
  set(CURLOPT_CONNECTTIMEOUT_MS, AtLeastOneMs(options_.connect_timeout));
  set(CURLOPT_TIMEOUT_MS, AtLeastOneMs(options_.total_timeout));
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options_.max_response_bytes));
  set(CURLOPT_WRITEFUNCTION, static_cast<curl_write_callback>(&WriteBody));
  set(CURLOPT_WRITEDATA, static_cast<void*>(&sink));
  set(CURLOPT_HEADERFUNCTION, static_cast<curl_write_callback>(&WriteHeader));
  set(CURLOPT_HEADERDATA, static_cast<void*>(&sink));
  set(CURLOPT_ERRORBUFFER, static_cast<char*>(error_buffer));
  set(CURLOPT_USERAGENT, options_.user_agent.c_str());
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));  // NOLINT
  if (!options_.ca_file.empty()) {
    set(CURLOPT_CAINFO, options_.ca_file.c_str());
    set(CURLOPT_CAPATH, static_cast<const char*>(nullptr));  // the bundle replaces the system store
  }
  if (header_list) set(CURLOPT_HTTPHEADER, header_list.get());
  if (is_head) {
    set(CURLOPT_NOBODY, 1L);
  } else if (is_get) {
    set(CURLOPT_HTTPGET, 1L);
  } else {
    if (request.method == "POST") {
      set(CURLOPT_POST, 1L);
    } else {
      set(CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    if (request.method == "POST" || !request.body.empty()) {
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      set(CURLOPT_POSTFIELDS, request.body.data());  // not copied: `request` outlives the call
    }
  }
  if (set_code != CURLE_OK) {
    return Fail(Error::Internal(shown + ": curl_easy_setopt: " + curl_easy_strerror(set_code)));
  }

  const CURLcode code = curl_easy_perform(curl.get());
  long status = 0;  // NOLINT(runtime/int): libcurl's type
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);

  if (sink.body_overflow || code == CURLE_FILESIZE_EXCEEDED) {
    return Fail(Error::Io(shown + ": the response body is larger than " +
                          std::to_string(options_.max_response_bytes) + " bytes"));
  }
  if (sink.header_overflow) {
    return Fail(Error::Io(shown + ": the response headers are larger than " +
                          std::to_string(kMaxHeaderBytes) + " bytes"));
  }
  if (code != CURLE_OK) {
    if (code == CURLE_OUT_OF_MEMORY || code == CURLE_FAILED_INIT) {
      return Fail(Error::Internal(shown + ": " + curl_easy_strerror(code)));
    }
    std::string reason = curl_easy_strerror(code);
    if (error_buffer[0] != '\0') reason += " (" + std::string(error_buffer) + ")";
    if (code == CURLE_OPERATION_TIMEDOUT) {
      reason += " [connect timeout " + std::to_string(options_.connect_timeout.count()) +
                " ms, total timeout " + std::to_string(options_.total_timeout.count()) + " ms]";
    }
    return Fail(ErrorCode::kConnection, shown + ": " + reason);
  }

  FetchResponse response;
  response.status = static_cast<int>(status);
  response.headers = std::move(sink.headers);
  response.body = std::move(sink.body);
  return response;
}

}  // namespace

Status HttpClient::CheckUrl(std::string_view url) const {
  return CheckUrlAllowed(url, HttpClientOptions{});
}

Status CheckUrlAllowed(std::string_view url, const HttpClientOptions& options) {
  auto parsed = ParseAndCheckUrl(url, options);
  if (!parsed) return Fail(std::move(parsed).error());
  return Ok();
}

std::unique_ptr<HttpClient> MakeCurlHttpClient(HttpClientOptions options) {
  return std::make_unique<CurlHttpClient>(std::move(options));
}

}  // namespace e2eid::oidc
