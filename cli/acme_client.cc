#include "cli/acme_client.h"

#include <time.h>

#include <algorithm>
#include <cctype>

#include "crypto/jwk.h"
#include "crypto/jws.h"

namespace e2eid::cli {
namespace {

constexpr std::string_view kAcmeErrorPrefix = "urn:ietf:params:acme:error:";

// The codes that are RFC 8555 problem types (their ErrorCodeName is the type's suffix).
constexpr ErrorCode kAcmeCodes[] = {
    ErrorCode::kAccountDoesNotExist,
    ErrorCode::kAlreadyReplaced,
    ErrorCode::kAlreadyRevoked,
    ErrorCode::kBadCsr,
    ErrorCode::kBadNonce,
    ErrorCode::kBadPublicKey,
    ErrorCode::kBadRevocationReason,
    ErrorCode::kBadSignatureAlgorithm,
    ErrorCode::kCaa,
    ErrorCode::kCompound,
    ErrorCode::kConnection,
    ErrorCode::kDns,
    ErrorCode::kExternalAccountRequired,
    ErrorCode::kIncorrectResponse,
    ErrorCode::kInvalidContact,
    ErrorCode::kMalformed,
    ErrorCode::kOrderNotReady,
    ErrorCode::kRateLimited,
    ErrorCode::kRejectedIdentifier,
    ErrorCode::kServerInternal,
    ErrorCode::kTls,
    ErrorCode::kUnauthorized,
    ErrorCode::kUnsupportedContact,
    ErrorCode::kUnsupportedIdentifier,
    ErrorCode::kUserActionRequired,
};

ErrorCode CodeOfType(std::string_view type, int status) {
  if (type.starts_with(kAcmeErrorPrefix)) {
    const std::string_view name = type.substr(kAcmeErrorPrefix.size());
    for (ErrorCode c : kAcmeCodes) {
      if (ErrorCodeName(c) == name) return c;
    }
  }
  if (status == 404) return ErrorCode::kNotFound;
  if (status == 409) return ErrorCode::kConflict;
  if (status == 403) return ErrorCode::kForbidden;
  return ErrorCode::kServerInternal;
}

std::string StringOr(const Json& obj, const char* key, std::string fallback) {
  if (obj.is_object()) {
    auto it = obj.find(key);
    if (it != obj.end() && it->is_string()) return it->get<std::string>();
  }
  return fallback;
}

bool IsJsonContentType(const std::optional<std::string>& ct) {
  if (!ct) return false;
  std::string lower = *ct;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("json") != std::string::npos;
}

}  // namespace

std::optional<std::chrono::seconds> ParseRetryAfter(const std::optional<std::string>& value,
                                                    TimePoint now) {
  if (!value || value->empty()) return std::nullopt;
  const std::string& v = *value;
  if (std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (v.size() > 9) return std::chrono::seconds(999999999);
    return std::chrono::seconds(std::stoll(v));
  }
  struct tm tm = {};
  const char* end = ::strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const TimePoint at = FromUnix(static_cast<int64_t>(::timegm(&tm)));
  if (at <= now) return std::chrono::seconds(0);
  return at - now;
}

namespace {

// `suffix` is appended to the problem's detail (before the subproblems).
Error ProblemWithSuffix(const Json& problem, int http_status, const std::string& suffix) {
  const std::string type = StringOr(problem, "type", "about:blank");
  std::string detail = type + ": " + StringOr(problem, "detail", "(no detail)") + suffix;
  std::vector<Error::Subproblem> subs;
  if (problem.is_object() && problem.contains("subproblems") && problem["subproblems"].is_array()) {
    for (const Json& sub : problem["subproblems"]) {
      Error::Subproblem s{CodeOfType(StringOr(sub, "type", ""), 0), StringOr(sub, "detail", ""), "",
                          ""};
      if (sub.is_object() && sub.contains("identifier") && sub["identifier"].is_object()) {
        s.identifier_type = StringOr(sub["identifier"], "type", "");
        s.identifier_value = StringOr(sub["identifier"], "value", "");
      }
      detail += "; " + StringOr(sub, "type", "?") + ": " + s.detail;
      if (!s.identifier_type.empty()) detail += " (" + s.identifier_type + ")";
      subs.push_back(std::move(s));
    }
  }
  Error error(CodeOfType(type, http_status), std::move(detail));
  for (auto& s : subs) error.WithSubproblem(std::move(s));
  return error;
}

}  // namespace

Error ProblemJsonToError(const Json& problem) {
  const int status =
      problem.is_object() && problem.contains("status") && problem["status"].is_number_integer()
          ? problem["status"].get<int>()
          : 0;
  return ProblemWithSuffix(problem, status, "");
}

Error ProblemToError(const AcmeResponse& response) {
  const std::string http = "HTTP " + std::to_string(response.status);
  if (!response.json.is_object() || !response.json.contains("type")) {
    return Error(CodeOfType("", response.status), http + " without a problem document");
  }
  return ProblemWithSuffix(response.json, response.status, " (" + http + ")");
}

AcmeClient::AcmeClient(oidc::HttpClient& http, const crypto::PrivateKey& account_key,
                       const Clock& clock, Sleeper sleep, AcmeClientOptions options)
    : http_(http),
      key_(account_key),
      clock_(clock),
      sleep_(std::move(sleep)),
      options_(std::move(options)) {}

Result<AcmeResponse> AcmeClient::Send(const oidc::FetchRequest& request) {
  auto fetched = http_.Send(request);
  if (!fetched) return Fail(std::move(fetched).error().Context(request.method + " " + request.url));
  AcmeResponse r;
  r.status = fetched->status;
  r.headers = std::move(fetched->headers);
  r.body = std::move(fetched->body);
  if (auto nonce = r.Header("Replay-Nonce"); nonce && !nonce->empty()) nonce_ = *nonce;
  if (!r.body.empty() && IsJsonContentType(r.Header("Content-Type"))) {
    auto json = ParseJson(r.body, "ACME response");
    if (json) r.json = std::move(*json);
  }
  return r;
}

Status AcmeClient::LoadDirectory() {
  E2EID_TRY(r, Send({.method = "GET", .url = options_.directory_url}));
  if (r.status != 200) {
    return Fail(ProblemToError(r).Context("GET " + options_.directory_url));
  }
  if (!r.json.is_object()) {
    auto json = ParseJson(r.body, "ACME directory");
    if (!json || !json->is_object()) {
      return Fail(Error::Malformed("the ACME directory at " + options_.directory_url +
                                   " is not a JSON object"));
    }
    r.json = std::move(*json);
  }
  for (const char* name : {"newNonce", "newAccount", "newOrder"}) {
    if (!r.json.contains(name) || !r.json[name].is_string()) {
      return Fail(Error::Malformed(std::string("the ACME directory has no '") + name + "' URL"));
    }
  }
  directory_ = std::move(r.json);
  return Ok();
}

Result<std::string> AcmeClient::Endpoint(std::string_view name) const {
  auto it = directory_.find(std::string(name));
  if (it == directory_.end() || !it->is_string()) {
    return Fail(Error::NotFound("the ACME directory has no '" + std::string(name) + "' URL"));
  }
  return it->get<std::string>();
}

Result<std::string> AcmeClient::Nonce() {
  if (!nonce_.empty()) return std::exchange(nonce_, std::string());
  E2EID_TRY(url, Endpoint("newNonce"));
  E2EID_TRY(r, Send({.method = "HEAD", .url = url}));
  if (r.status >= 400) return Fail(ProblemToError(r).Context("HEAD " + url));
  if (nonce_.empty()) {
    return Fail(Error::Malformed("newNonce answered without a Replay-Nonce header"));
  }
  return std::exchange(nonce_, std::string());
}

Result<AcmeResponse> AcmeClient::SignedPost(const std::string& url, std::string_view payload,
                                            bool use_jwk, std::string_view accept) {
  for (int attempt = 0;; ++attempt) {
    E2EID_TRY(nonce, Nonce());
    Json header = {{"nonce", nonce}, {"url", url}};
    if (use_jwk) {
      E2EID_TRY(pub, key_.public_key());
      E2EID_TRY(jwk, crypto::PublicKeyToJwk(pub));
      header["jwk"] = std::move(jwk);
    } else {
      if (account_url_.empty()) {
        return Fail(Error::Internal("ACME request before newAccount: no account URL"));
      }
      header["kid"] = account_url_;
    }
    E2EID_TRY(body,
              crypto::SignFlattenedJws(key_, crypto::DefaultJwsAlg(key_.type()), header, payload));
    oidc::FetchRequest request{.method = "POST", .url = url};
    request.headers.emplace_back("Content-Type", "application/jose+json");
    if (!accept.empty()) request.headers.emplace_back("Accept", std::string(accept));
    request.body = std::move(body);
    E2EID_TRY(r, Send(request));
    if (r.status < 400) return r;
    Error error = ProblemToError(r);
    if (error.code() == ErrorCode::kBadNonce && attempt == 0 && !nonce_.empty()) continue;
    if (auto after = ParseRetryAfter(r.Header("Retry-After"), clock_.Now())) {
      error = std::move(error).WithRetryAfter(*after);
    }
    return Fail(std::move(error).Context("POST " + url));
  }
}

Result<AcmeResponse> AcmeClient::Post(const std::string& url, const Json& payload) {
  return SignedPost(url, DumpJson(payload), false, {});
}

Result<AcmeResponse> AcmeClient::PostAsGet(const std::string& url, std::string_view accept) {
  return SignedPost(url, "", false, accept);
}

Result<std::string> AcmeClient::NewAccount() {
  E2EID_TRY(url, Endpoint("newAccount"));
  const Json payload = {{"termsOfServiceAgreed", true}, {"contact", Json::array()}};
  E2EID_TRY(r, SignedPost(url, DumpJson(payload), true, {}));
  auto location = r.Header("Location");
  if (!location || location->empty()) {
    return Fail(Error::Malformed("newAccount answered without a Location header"));
  }
  account_url_ = *location;
  return account_url_;
}

Result<Json> AcmeClient::NewOrder(const Json& payload, std::string* order_url) {
  E2EID_TRY(url, Endpoint("newOrder"));
  E2EID_TRY(r, Post(url, payload));
  auto location = r.Header("Location");
  if (!location || location->empty()) {
    return Fail(Error::Malformed("newOrder answered without a Location header"));
  }
  if (!r.json.is_object()) return Fail(Error::Malformed("newOrder: the order is not JSON"));
  if (order_url != nullptr) *order_url = *location;
  return std::move(r.json);
}

bool AcmeClient::PollWait(const AcmeResponse& last) {
  const auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(options_.poll_budget);
  if (waited_ >= budget) return false;
  std::chrono::milliseconds wait = options_.poll_interval;
  if (auto after = ParseRetryAfter(last.Header("Retry-After"), clock_.Now())) {
    wait = std::chrono::duration_cast<std::chrono::milliseconds>(*after);
  }
  wait = std::clamp(wait, std::chrono::milliseconds(0), options_.max_poll_wait);
  wait = std::min(wait, budget - waited_);
  waited_ += std::max(wait, std::chrono::milliseconds(1));
  sleep_(wait);
  return true;
}

Result<Json> AcmeClient::PollOrder(const std::string& order_url, std::string_view until) {
  waited_ = std::chrono::milliseconds(0);
  for (;;) {
    E2EID_TRY(r, PostAsGet(order_url));
    if (!r.json.is_object()) return Fail(Error::Malformed("the order is not a JSON object"));
    E2EID_TRY(status, GetString(r.json, "status", "order"));
    if (status == until || (until == "ready" && status == "valid")) return std::move(r.json);
    if (status == "invalid") {
      if (r.json.contains("error") && r.json["error"].is_object()) {
        return Fail(ProblemJsonToError(r.json["error"]).Context("the order became invalid"));
      }
      return Fail(Error::Unauthorized("the order became invalid"));
    }
    if (!PollWait(r)) {
      return Fail(Error::Unavailable("the order is still '" + status + "' after " +
                                     std::to_string(options_.poll_budget.count()) +
                                     " s (waiting for '" + std::string(until) + "')"));
    }
  }
}

Result<std::string> AcmeClient::DownloadCertificate(const std::string& url) {
  E2EID_TRY(r, PostAsGet(url, "application/pem-certificate-chain"));
  if (r.body.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return Fail(Error::Malformed("the certificate URL did not return a PEM chain"));
  }
  return std::move(r.body);
}

Result<std::optional<SuggestedWindow>> AcmeClient::RenewalInfo(std::string_view cert_id) {
  auto base = Endpoint("renewalInfo");
  if (!base) return std::optional<SuggestedWindow>();
  std::string url = *base;
  if (!url.ends_with('/')) url += '/';
  url += cert_id;
  E2EID_TRY(r, Send({.method = "GET", .url = url}));
  if (r.status != 200) return Fail(ProblemToError(r).Context("GET " + url));
  E2EID_TRY(window, ParseRenewalInfo(r.body));
  return std::optional<SuggestedWindow>(window);
}

}  // namespace e2eid::cli
