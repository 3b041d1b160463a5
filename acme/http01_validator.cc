#include "acme/http01_validator.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>

#include "crypto/digest.h"
#include "crypto/openssl.h"

namespace e2eid::acme {
namespace {

using Steady = std::chrono::steady_clock;

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsLdhChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool IsBase64UrlChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::string Quoted(std::string_view s) { return "'" + EscapeForDetail(s) + "'"; }

// ---- libcurl ----

using CurlPtr = std::unique_ptr<CURL, crypto::Deleter<curl_easy_cleanup>>;
using CurlSlistPtr = std::unique_ptr<curl_slist, crypto::Deleter<curl_slist_free_all>>;
using CurlUrlPtr = std::unique_ptr<CURLU, crypto::Deleter<curl_url_cleanup>>;
using CurlStringPtr = std::unique_ptr<char, crypto::Deleter<curl_free>>;

Status InitCurlOnce() {
  // A function-local static is initialised exactly once even when several threads get here.
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK) {
    return Fail(Error::Config(std::string("curl_global_init failed: ") + curl_easy_strerror(code)));
  }
  return Ok();
}

Error CannotStart(std::string_view what) {
  return Error(ErrorCode::kServerInternal,
               "http-01 validation could not be started (" + std::string(what) + ")");
}

// Where one hop goes.
struct Target {
  std::string url;     // absolute URL
  std::string host;    // lower-case DNS name
  uint16_t port = 80;  // the effective port (default port of the scheme when the URL has none)
};

struct Response {
  long status = 0;           // NOLINT(runtime/int): libcurl's type
  std::string body;          // at most max_body_bytes
  std::string redirect_url;  // the absolute Location target libcurl computed; empty when none
};

struct BodySink {
  std::string data;  // reserved to `limit` up front, so appending never allocates
  size_t limit = 0;
  bool overflow = false;
};

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* sink = static_cast<BodySink*>(userdata);
  const size_t n = size * nmemb;
  if (n > sink->limit - sink->data.size()) {
    sink->overflow = true;
    return CURL_WRITEFUNC_ERROR;
  }
  sink->data.append(ptr, n);
  return n;
}

bool IsTlsError(CURLcode code) {
  switch (code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
      return true;
    default:
      return false;
  }
}

long ToMillis(Steady::duration d) {  // NOLINT(runtime/int): libcurl's type
  return static_cast<long>(          // NOLINT(runtime/int)
      std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// Performs one GET without following redirects.
Result<Response> Fetch(const Target& target, const Http01Options& options,
                       const ResolverOverrides& overrides, Steady::time_point deadline) {
  const long remaining_ms = ToMillis(deadline - Steady::now());  // NOLINT(runtime/int)
  if (remaining_ms < 1) {
    return Fail(ErrorCode::kConnection, "timed out after " +
                                            std::to_string(options.total_timeout.count()) +
                                            " ms, before fetching " + target.url);
  }
  const long connect_ms =  // NOLINT(runtime/int)
      std::min(remaining_ms, static_cast<long>(options.connect_timeout.count()));  // NOLINT

  std::string resolve_entry;
  const std::optional<std::string> address = overrides.Lookup(target.host);
  if (address) {
    const bool v6 = address->find(':') != std::string::npos;
    resolve_entry = target.host + ":" + std::to_string(target.port) + ":" +
                    (v6 ? "[" + *address + "]" : *address);
  }
  CurlSlistPtr resolve(address ? curl_slist_append(nullptr, resolve_entry.c_str()) : nullptr);
  if (address && !resolve) return Fail(CannotStart("curl_slist_append failed"));

  CurlPtr curl(curl_easy_init());
  if (!curl) return Fail(CannotStart("curl_easy_init failed"));

  BodySink sink;
  sink.limit = options.max_body_bytes;
  sink.data.reserve(sink.limit);

  CURLcode set_code = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (set_code == CURLE_OK) set_code = curl_easy_setopt(curl.get(), option, value);
  };
  set(CURLOPT_URL, target.url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, 0L);  // redirects are checked and followed by Validate()
  set(CURLOPT_PROXY, "");           // never a proxy, whatever the environment says
  set(CURLOPT_NOSIGNAL, 1L);        // required when several threads use libcurl with timeouts
  set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));  // NOLINT(runtime/int)
  set(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  set(CURLOPT_TIMEOUT_MS, remaining_ms);
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_body_bytes));
  set(CURLOPT_WRITEFUNCTION, static_cast<curl_write_callback>(&WriteBody));
  set(CURLOPT_WRITEDATA, static_cast<void*>(&sink));
  set(CURLOPT_USERAGENT, options.user_agent.c_str());
  // Redirects to https: the certificate is not what proves control (see the header).
  set(CURLOPT_SSL_VERIFYPEER, 0L);
  set(CURLOPT_SSL_VERIFYHOST, 0L);
  if (resolve) set(CURLOPT_RESOLVE, resolve.get());
  if (set_code != CURLE_OK) {
    return Fail(CannotStart(std::string("curl_easy_setopt: ") + curl_easy_strerror(set_code)));
  }

  const CURLcode code = curl_easy_perform(curl.get());
  Response response;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
  const std::string where = target.host + ":" + std::to_string(target.port);

  if (sink.overflow || code == CURLE_FILESIZE_EXCEEDED) {
    std::string detail = "the response from " + target.url + " is larger than " +
                         std::to_string(options.max_body_bytes) + " bytes";
    if (response.status != 0) detail += " (HTTP " + std::to_string(response.status) + ")";
    return Fail(ErrorCode::kIncorrectResponse, std::move(detail));
  }
  if (code != CURLE_OK) {
    const std::string reason = curl_easy_strerror(code);
    if (code == CURLE_COULDNT_RESOLVE_HOST) {
      return Fail(ErrorCode::kDns, "could not resolve " + Quoted(target.host) + ": " + reason);
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
      curl_off_t lookup_us = 0;
      curl_easy_getinfo(curl.get(), CURLINFO_NAMELOOKUP_TIME_T, &lookup_us);
      if (!address && lookup_us == 0) {
        return Fail(ErrorCode::kDns, "DNS lookup of " + Quoted(target.host) + " timed out");
      }
      return Fail(ErrorCode::kConnection,
                  "timed out fetching " + target.url + " (connect limit " +
                      std::to_string(options.connect_timeout.count()) + " ms, total limit " +
                      std::to_string(options.total_timeout.count()) + " ms)");
    }
    if (IsTlsError(code)) {
      return Fail(ErrorCode::kTls, "TLS with " + where + " failed: " + reason);
    }
    if (code == CURLE_OUT_OF_MEMORY || code == CURLE_FAILED_INIT) {
      return Fail(CannotStart(reason));
    }
    if (code == CURLE_COULDNT_CONNECT) {
      return Fail(ErrorCode::kConnection, "could not connect to " + where + ": " + reason);
    }
    return Fail(ErrorCode::kConnection, "fetching " + target.url + " failed: " + reason);
  }
  char* redirect = nullptr;
  if (curl_easy_getinfo(curl.get(), CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK &&
      redirect != nullptr) {
    response.redirect_url = redirect;
  }
  response.body = std::move(sink.data);
  return response;
}

bool IsRedirectStatus(long status) {  // NOLINT(runtime/int)
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// One part of a parsed URL, or "" when absent.
std::string UrlPart(CURLU* url, CURLUPart part, unsigned int flags = 0) {
  char* raw = nullptr;
  if (curl_url_get(url, part, &raw, flags) != CURLUE_OK) return "";
  CurlStringPtr owned(raw);
  return owned ? std::string(owned.get()) : std::string();
}

// Applies the redirect policy to the Location of a 3xx response from `from`.
Result<Target> CheckRedirect(const Target& from, long status,  // NOLINT(runtime/int)
                             const std::string& location, uint16_t configured_port) {
  if (location.empty()) {
    return Fail(ErrorCode::kIncorrectResponse, from.url + " answered HTTP " +
                                                   std::to_string(status) +
                                                   " without a usable Location header");
  }
  const std::string refused =
      "redirect from " + from.url + " to \"" + EscapeForDetail(location, 200) + "\" refused: ";
  CurlUrlPtr url(curl_url());
  if (!url) return Fail(CannotStart("curl_url failed"));
  if (curl_url_set(url.get(), CURLUPART_URL, location.c_str(), CURLU_NON_SUPPORT_SCHEME) !=
      CURLUE_OK) {
    return Fail(ErrorCode::kConnection, refused + "not a valid URL");
  }
  const std::string scheme = ToLower(UrlPart(url.get(), CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") {
    return Fail(ErrorCode::kConnection, refused + "only http and https URLs are followed");
  }
  const std::string host = UrlPart(url.get(), CURLUPART_HOST);
  if (IsIpAddressLiteral(host)) {
    return Fail(ErrorCode::kConnection, refused + "the host is an IP address, not a DNS name");
  }
  auto name = CheckDnsName(host);
  if (!name) return Fail(ErrorCode::kConnection, refused + name.error().detail());
  const std::string port_text = UrlPart(url.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  unsigned int port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return Fail(ErrorCode::kConnection, refused + "the port is not valid");
  }
  if (port != 80 && port != 443 && port != configured_port) {
    std::string allowed = "80 and 443";
    if (configured_port != 80 && configured_port != 443) {
      allowed = "80, 443 and " + std::to_string(configured_port);
    }
    return Fail(ErrorCode::kConnection, refused + "port " + std::to_string(port) +
                                            " is not allowed (only " + allowed + ")");
  }
  Target next;
  next.url = UrlPart(url.get(), CURLUPART_URL);
  if (next.url.empty()) return Fail(ErrorCode::kConnection, refused + "not a valid URL");
  next.host = std::move(*name);
  next.port = static_cast<uint16_t>(port);
  return next;
}

}  // namespace

// ---- shared helpers ----

bool IsIpAddressLiteral(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  const std::string s(text);
  in6_addr v6;
  in_addr v4;
  // inet_aton also accepts the short and hex forms ("127.1", "0x7f000001") that resolvers treat
  // as addresses.
  return inet_pton(AF_INET6, s.c_str(), &v6) == 1 || inet_aton(s.c_str(), &v4) != 0;
}

Result<std::string> CheckDnsName(std::string_view name) {
  const std::string quoted = Quoted(name);
  if (name.empty()) return Fail(Error::Malformed("the name is empty"));
  if (name.size() > 253) {
    return Fail(Error::Malformed(quoted + " is longer than 253 characters"));
  }
  if (IsIpAddressLiteral(name)) return Fail(Error::Malformed(quoted + " is an IP address"));
  if (name.starts_with("*.")) {
    return Fail(Error::Malformed(quoted + " is a wildcard name, which cannot be validated here"));
  }
  size_t start = 0;
  std::string_view last_label;
  while (true) {
    const size_t dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return Fail(Error::Malformed(quoted + " has an empty label"));
    if (label.size() > 63) {
      return Fail(Error::Malformed(quoted + " has a label longer than 63 characters"));
    }
    if (!std::all_of(label.begin(), label.end(), IsLdhChar)) {
      return Fail(Error::Malformed(quoted +
                                   " contains a character other than a letter, digit, hyphen "
                                   "or a dot between labels"));
    }
    if (label.front() == '-' || label.back() == '-') {
      return Fail(Error::Malformed(quoted + " has a label that starts or ends with a hyphen"));
    }
    last_label = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (std::all_of(last_label.begin(), last_label.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    return Fail(Error::Malformed(quoted + " ends with an all-numeric label"));
  }
  return ToLower(name);
}

Result<std::string> CheckDnsChallenge(const ValidationRequest& request,
                                      std::string_view expected_type) {
  const std::string type(expected_type);
  if (request.challenge_type != type) {
    return Fail(Error::Malformed("the " + type + " validator cannot validate a challenge of type " +
                                 Quoted(request.challenge_type)));
  }
  if (request.identifier_type == "ip") {
    return Fail(Error::Malformed(type + " validation of IP address identifiers is not supported"));
  }
  if (request.identifier_type != "dns") {
    return Fail(Error::Malformed(type + " cannot validate identifiers of type " +
                                 Quoted(request.identifier_type)));
  }
  auto name = CheckDnsName(request.identifier_value);
  if (!name) return Fail(std::move(name).error().Context("dns identifier"));
  if (request.key_authorization.empty()) {
    return Fail(Error::Malformed("the key authorization is empty"));
  }
  return name;
}

std::string EscapeForDetail(std::string_view data, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t shown = std::min(data.size(), max_bytes);
  std::string out;
  out.reserve(shown + 32);
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out += static_cast<char>(c);
        } else {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        }
    }
  }
  if (data.size() > shown) out += "... (" + std::to_string(data.size()) + " bytes)";
  return out;
}

Result<ResolverOverrides> ResolverOverrides::Create(
    const std::map<std::string, std::string>& entries) {
  ResolverOverrides result;
  for (const auto& [key, value] : entries) {
    const std::string what = "resolver override " + Quoted(key);
    std::string_view name = key;
    const bool wildcard = name.starts_with("*.");
    if (wildcard) name.remove_prefix(2);
    if (name.find('*') != std::string_view::npos) {
      return Fail(Error::Config(what + ": '*' is allowed only as the whole first label"));
    }
    auto checked = CheckDnsName(name);
    if (!checked) return Fail(Error::Config(what + ": " + checked.error().detail()));
    const std::string address(value);
    in6_addr v6;
    in_addr v4;
    if (inet_pton(AF_INET, address.c_str(), &v4) != 1 &&
        inet_pton(AF_INET6, address.c_str(), &v6) != 1) {
      return Fail(Error::Config(what + ": " + Quoted(value) +
                                " is not an IPv4 or IPv6 address (IPv6 without brackets)"));
    }
    if (wildcard) {
      const std::string suffix = "." + *checked;
      for (const auto& existing : result.wildcards_) {
        if (existing.first == suffix) {
          return Fail(Error::Config(what + ": the name is listed twice"));
        }
      }
      result.wildcards_.emplace_back(suffix, address);
    } else if (!result.exact_.emplace(*checked, address).second) {
      return Fail(Error::Config(what + ": the name is listed twice"));
    }
  }
  std::stable_sort(result.wildcards_.begin(), result.wildcards_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return result;
}

std::optional<std::string> ResolverOverrides::Lookup(std::string_view host) const {
  const std::string name = ToLower(host);
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  for (const auto& [suffix, address] : wildcards_) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) return address;
  }
  return std::nullopt;
}

// ---- Http01Validator ----

Result<std::unique_ptr<Http01Validator>> Http01Validator::Create(Http01Options options) {
  if (options.port == 0) return Fail(Error::Config("http-01: port must not be 0"));
  if (options.connect_timeout.count() <= 0 || options.total_timeout.count() <= 0) {
    return Fail(Error::Config("http-01: timeouts must be positive"));
  }
  if (options.connect_timeout > options.total_timeout) {
    return Fail(Error::Config("http-01: connect_timeout must not exceed total_timeout"));
  }
  if (options.max_body_bytes == 0) {
    return Fail(Error::Config("http-01: max_body_bytes must be positive"));
  }
  if (options.max_redirects < 0 || options.max_redirects > 20) {
    return Fail(Error::Config("http-01: max_redirects must be between 0 and 20"));
  }
  auto overrides = ResolverOverrides::Create(options.resolver_overrides);
  if (!overrides) return Fail(std::move(overrides).error().Context("http-01"));
  E2EID_CHECK_OK(InitCurlOnce());
  return std::unique_ptr<Http01Validator>(
      new Http01Validator(std::move(options), std::move(*overrides)));
}

Status Http01Validator::Validate(const ValidationRequest& request) {
  E2EID_TRY(host, CheckDnsChallenge(request, "http-01"));
  if (request.token.empty() ||
      !std::all_of(request.token.begin(), request.token.end(), IsBase64UrlChar)) {
    return Fail(Error::Malformed("the token " + Quoted(request.token) +
                                 " is empty or has characters outside base64url"));
  }
  const Steady::time_point deadline = Steady::now() + options_.total_timeout;

  Target target;
  target.host = host;
  target.port = options_.port;
  target.url = "http://" + host + (options_.port == 80 ? "" : ":" + std::to_string(options_.port)) +
               "/.well-known/acme-challenge/" + request.token;

  for (int redirects = 0;; ++redirects) {
    E2EID_TRY(response, Fetch(target, options_, overrides_, deadline));
    if (IsRedirectStatus(response.status)) {
      if (redirects >= options_.max_redirects) {
        return Fail(ErrorCode::kConnection,
                    "too many redirects: " + target.url + " redirects again after " +
                        std::to_string(redirects) + " redirects (at most " +
                        std::to_string(options_.max_redirects) + " are followed)");
      }
      E2EID_TRY(next, CheckRedirect(target, response.status, response.redirect_url, options_.port));
      target = std::move(next);
      continue;
    }
    if (response.status != 200) {
      return Fail(ErrorCode::kIncorrectResponse, target.url + " answered HTTP " +
                                                     std::to_string(response.status) +
                                                     " (expected 200); the body starts with \"" +
                                                     EscapeForDetail(response.body) + "\"");
    }
    std::string_view body = response.body;
    while (!body.empty() && (body.back() == ' ' || body.back() == '\t' || body.back() == '\r' ||
                             body.back() == '\n')) {
      body.remove_suffix(1);
    }
    if (!crypto::ConstantTimeEquals(body, request.key_authorization)) {
      return Fail(ErrorCode::kIncorrectResponse, "the key authorization served at " + target.url +
                                                     " does not match this challenge; received \"" +
                                                     EscapeForDetail(body) + "\"");
    }
    return Ok();
  }
}

}  // namespace e2eid::acme
