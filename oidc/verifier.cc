#include "oidc/verifier.h"

// cpp-jwt: only its signature primitives (jwt::PEMSign<Alg>::verify) are used. Its decoder and
// claim checks are not: every header and claim check below is e2eid's own, so each error names
// the check, and no claim is accepted because a library's default let it through.
#include <openssl/err.h>
#include <jwt/algorithm.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "core/encoding.h"
#include "crypto/jws.h"
#include "oidc/discovery.h"
#include "oidc/jwks.h"
#include "oidc/quote.h"

namespace e2eid::oidc {
namespace {

// A token longer than this is refused before any parsing.
constexpr size_t kMaxTokenBytes = size_t{64} * 1024;
// NumericDate values outside [0, year 9999] are refused (so that adding a leeway cannot overflow).
constexpr int64_t kMaxNumericDate = 253402300799;

// The algorithms a Provider can verify, and the key type each needs (RSA for every RS*).
struct AlgInfo {
  std::string_view name;
  crypto::KeyType key_type;
};
constexpr std::array<AlgInfo, 7> kAlgs = {{
    {"RS256", crypto::KeyType::kRsa},
    {"RS384", crypto::KeyType::kRsa},
    {"RS512", crypto::KeyType::kRsa},
    {"ES256", crypto::KeyType::kP256},
    {"ES384", crypto::KeyType::kP384},
    {"ES512", crypto::KeyType::kP521},
    {"EdDSA", crypto::KeyType::kEd25519},
}};

const AlgInfo* FindAlg(std::string_view name) {
  for (const AlgInfo& a : kAlgs) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

bool IsNone(std::string_view alg) { return EqualsIgnoreCase(alg, "none"); }
bool IsHmac(std::string_view alg) {
  return alg.size() >= 2 && EqualsIgnoreCase(alg.substr(0, 2), "HS");
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// "at+jwt" and "application/at+jwt" name the same media type (RFC 7515 §4.1.9).
std::string_view WithoutApplicationPrefix(std::string_view typ) {
  constexpr std::string_view kPrefix = "application/";
  if (typ.size() > kPrefix.size() && EqualsIgnoreCase(typ.substr(0, kPrefix.size()), kPrefix)) {
    typ.remove_prefix(kPrefix.size());
  }
  return typ;
}

// Verifies an RS* / ES* signature with cpp-jwt. cpp-jwt reports a bad signature in its result
// and throws only on allocation failures; nothing it throws leaves this function.
Status VerifyWithCppJwt(std::string_view alg, const std::string& pem,
                        std::string_view signing_input, std::string_view signature_b64) {
  const jwt::string_view key(pem.data(), pem.size());
  const jwt::string_view head(signing_input.data(), signing_input.size());
  const jwt::string_view sig(signature_b64.data(), signature_b64.size());
  jwt::verify_result_t result{false, {}};
  try {
    if (alg == "RS256") {
      result = jwt::PEMSign<jwt::algo::RS256>::verify(key, head, sig);
    } else if (alg == "RS384") {
      result = jwt::PEMSign<jwt::algo::RS384>::verify(key, head, sig);
    } else if (alg == "RS512") {
      result = jwt::PEMSign<jwt::algo::RS512>::verify(key, head, sig);
    } else if (alg == "ES256") {
      result = jwt::PEMSign<jwt::algo::ES256>::verify(key, head, sig);
    } else if (alg == "ES384") {
      result = jwt::PEMSign<jwt::algo::ES384>::verify(key, head, sig);
    } else if (alg == "ES512") {
      result = jwt::PEMSign<jwt::algo::ES512>::verify(key, head, sig);
    } else {
      return Fail(Error::Internal("VerifyWithCppJwt called for " + std::string(alg)));
    }
  } catch (const std::exception& e) {
    return Fail(Error::Internal(std::string("cpp-jwt: ") + e.what()));
  } catch (...) {
    return Fail(Error::Internal("cpp-jwt threw an unknown exception"));
  }
  // cpp-jwt leaves OpenSSL errors on this thread's queue when a signature does not verify.
  ERR_clear_error();
  if (!result.first || result.second) {
    return Fail(Error::Unauthorized(result.second ? result.second.message() : "bad signature"));
  }
  return Ok();
}

// The cache lifetime a JWKS response asks for: Cache-Control max-age (no-store / no-cache mean
// 0), else `fallback`; then bounded to [lo, hi].
std::chrono::seconds CacheLifetime(const std::optional<std::string>& cache_control,
                                   std::chrono::seconds fallback, std::chrono::seconds lo,
                                   std::chrono::seconds hi) {
  std::optional<int64_t> max_age;
  if (cache_control) {
    std::string_view rest = *cache_control;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view directive = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!directive.empty() && (directive.front() == ' ' || directive.front() == '\t')) {
        directive.remove_prefix(1);
      }
      while (!directive.empty() && (directive.back() == ' ' || directive.back() == '\t')) {
        directive.remove_suffix(1);
      }
      if (EqualsIgnoreCase(directive, "no-store") || EqualsIgnoreCase(directive, "no-cache")) {
        max_age = 0;
        break;
      }
      constexpr std::string_view kMaxAge = "max-age=";
      if (directive.size() > kMaxAge.size() &&
          EqualsIgnoreCase(directive.substr(0, kMaxAge.size()), kMaxAge)) {
        std::string_view digits = directive.substr(kMaxAge.size());
        if (digits.size() >= 2 && digits.front() == '"' && digits.back() == '"') {
          digits = digits.substr(1, digits.size() - 2);
        }
        if (digits.empty() || !std::all_of(digits.begin(), digits.end(),
                                           [](char c) { return c >= '0' && c <= '9'; })) {
          continue;  // unparsable: ignored
        }
        int64_t value = 0;
        for (char c : digits) {
          value = std::min<int64_t>(value * 10 + (c - '0'), int64_t{1} << 40);
        }
        max_age = value;
      }
    }
  }
  std::chrono::seconds lifetime = max_age ? std::chrono::seconds(*max_age) : fallback;
  return std::clamp(lifetime, lo, std::max(lo, hi));
}

// Keeps kConnection (the IdP cannot be reached); every other failure to obtain the keys
// (HTTP errors, bad documents, oversized answers) becomes kUnavailable with the same detail.
Error AsUnavailable(Error e, std::string_view context) {
  if (e.code() == ErrorCode::kConnection) return std::move(e).Context(context);
  return Error::Unavailable(std::string(context) + ": " + e.detail());
}

}  // namespace

// Declared in verifier.h; defined here only (MakeProvider is the way to get one).
class Provider final : public TokenVerifier {
 public:
  enum class TokenKind { kId, kAccess };

  Provider(ProviderOptions options, HttpClient& http, const Clock& clock)
      : options_(std::move(options)), http_(http), clock_(clock) {}
  Provider(const Provider&) = delete;
  Provider& operator=(const Provider&) = delete;

  Result<Json> VerifyIdToken(std::string_view jwt, const VerifyOptions& options) override {
    return Verify(jwt, options, TokenKind::kId);
  }
  Result<Json> VerifyAccessToken(std::string_view jwt, const VerifyOptions& options) override {
    return Verify(jwt, options, TokenKind::kAccess);
  }
  const std::string& issuer() const override { return options_.issuer; }
  const std::string& client_id() const override { return options_.client_id; }

 private:
  // What the cache holds; copied out under the lock (cheap: shared pointers and times).
  struct State {
    std::shared_ptr<const Discovery> discovery;
    std::shared_ptr<const Jwks> jwks;
    TimePoint fetched_at{};                     // when `jwks` was fetched
    TimePoint expires_at{};                     // when `jwks` should be refreshed
    bool rediscover = false;                    // read discovery again before the next JWKS fetch
    std::optional<TimePoint> last_attempt;      // any fetch, successful or not
    std::optional<TimePoint> last_kid_refetch;  // the last fetch caused by an unknown kid
    uint64_t attempts = 0;  // completed fetch attempts; tells waiters that a fetch happened
    std::optional<Error> last_error;
  };

  State Load() const {
    std::lock_guard lock(state_mu_);
    return state_;
  }

  Result<State> Keys(const std::optional<std::string>& kid);
  void Refresh(TimePoint now, bool for_unknown_kid);
  Result<Json> Verify(std::string_view jwt, const VerifyOptions& options, TokenKind kind);

  const ProviderOptions options_;
  HttpClient& http_;
  const Clock& clock_;
  std::mutex fetch_mu_;  // held for the whole of a fetch: concurrent callers wait for one fetch
  mutable std::mutex state_mu_;  // guards state_ (never held across network I/O)
  State state_;
};

// Fetches discovery (the first time, and again after the JWKS URL answered an HTTP error) and the
// JWKS, and records the outcome in state_. Called with fetch_mu_ held.
void Provider::Refresh(TimePoint now, bool for_unknown_kid) {
  const std::string context = "OIDC provider " + options_.issuer;
  State snapshot = Load();
  std::shared_ptr<const Discovery> discovery = snapshot.discovery;
  std::optional<Error> failure;
  std::shared_ptr<const Jwks> jwks;
  std::chrono::seconds lifetime{0};
  bool rediscover = snapshot.rediscover;

  if (!discovery || snapshot.rediscover) {
    auto fetched = FetchDiscovery(http_, options_.issuer);
    if (fetched) {
      discovery = std::make_shared<const Discovery>(std::move(*fetched));
      rediscover = false;
    } else {
      failure = AsUnavailable(std::move(fetched).error(), context);
    }
  }
  if (!failure) {
    FetchRequest request;
    request.url = discovery->jwks_uri;
    request.headers.emplace_back("Accept", "application/jwk-set+json, application/json");
    auto response = http_.Send(request);
    if (!response) {
      failure = AsUnavailable(std::move(response).error(), context + ": fetching the JWKS");
    } else if (response->status != 200) {
      failure = Error::Unavailable(context + ": GET " + request.url + " answered HTTP " +
                                   std::to_string(response->status));
      rediscover = true;  // the jwks_uri may have moved: read discovery again next time
    } else {
      auto parsed = ParseJwks(response->body);
      if (!parsed) {
        failure = AsUnavailable(std::move(parsed).error(), context + ": JWKS from " + request.url);
      } else {
        jwks = std::make_shared<const Jwks>(std::move(*parsed));
        lifetime = CacheLifetime(response->Header("Cache-Control"), options_.jwks_default_cache,
                                 options_.jwks_min_cache, options_.jwks_max_cache);
      }
    }
  }

  std::lock_guard lock(state_mu_);
  state_.discovery = discovery;  // the old one stays when a new one could not be read
  state_.rediscover = rediscover;
  state_.last_attempt = now;
  if (for_unknown_kid) state_.last_kid_refetch = now;
  ++state_.attempts;
  if (failure) {
    state_.last_error = std::move(failure);
    return;
  }
  state_.jwks = std::move(jwks);
  state_.fetched_at = now;
  state_.expires_at = now + lifetime;
  state_.last_error.reset();
}

// The keys to verify with: the cached JWKS when it is fresh (and knows `kid`), else after one
// refresh (shared by concurrent callers), else the stale JWKS while it is younger than
// jwks_max_stale. The result may still lack `kid`: the caller decides what that means.
// Rate limits, both per jwks_refetch_interval: refetches because of an unknown kid (so random
// kids cannot hammer the IdP), and retries after a failed fetch (so an unreachable IdP does not
// cost every verification a timeout).
Result<Provider::State> Provider::Keys(const std::optional<std::string>& kid) {
  const TimePoint now = clock_.Now();
  State s = Load();
  const auto satisfied = [&](const State& st) {
    return st.jwks && now < st.expires_at &&
           (!kid || st.jwks->Find(*kid) != nullptr || st.jwks->FindRejected(*kid) != nullptr);
  };
  if (satisfied(s)) return s;
  const auto interval_passed = [&](const std::optional<TimePoint>& since) {
    // A clock that went backwards counts as "passed" rather than blocking fetches for long.
    return !since || now < *since || now - *since >= options_.jwks_refetch_interval;
  };
  const bool fresh = s.jwks && now < s.expires_at;  // so `kid` is what is missing
  bool may_fetch = !s.last_error || interval_passed(s.last_attempt);
  if (fresh) may_fetch = may_fetch && interval_passed(s.last_kid_refetch);
  if (may_fetch) {
    std::lock_guard fetch_lock(fetch_mu_);
    // When another caller fetched while this one waited, its result is used as is.
    if (Load().attempts == s.attempts) Refresh(now, fresh);
    s = Load();
  }
  if (s.jwks && now - s.fetched_at <= options_.jwks_max_stale) return s;
  const std::string why = s.last_error ? s.last_error->detail() : "no fetch attempted yet";
  if (s.jwks) {
    return Fail(
        Error::Unavailable("the cached JWKS of " + options_.issuer +
                           " is older than jwks_max_stale and cannot be refreshed: " + why));
  }
  if (s.last_error) return Fail(*s.last_error);
  return Fail(Error::Unavailable("no JWKS of " + options_.issuer + " available yet"));
}

Result<Json> Provider::Verify(std::string_view jwt, const VerifyOptions& options,
                              Provider::TokenKind kind) {
  const std::string prefix = kind == TokenKind::kId ? "id token: " : "access token: ";
  const auto refuse = [&](const std::string& detail) {
    return Fail(Error::Unauthorized(prefix + detail));
  };
  const auto claim = [](std::string_view name) { return "claim \"" + std::string(name) + "\""; };

  // ---- 1. compact JWS syntax and header ----
  if (jwt.size() > kMaxTokenBytes) {
    return refuse("token is longer than " + std::to_string(kMaxTokenBytes) + " bytes");
  }
  const size_t dot1 = jwt.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : jwt.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || jwt.find('.', dot2 + 1) != std::string_view::npos) {
    return refuse("not a compact JWS (three base64url parts separated by '.')");
  }
  const std::string_view header_b64 = jwt.substr(0, dot1);
  const std::string_view payload_b64 = jwt.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = jwt.substr(dot2 + 1);
  const std::string_view signing_input = jwt.substr(0, dot2);

  auto header_bytes = Base64UrlDecode(header_b64);
  if (!header_bytes) return refuse("header is not base64url: " + header_bytes.error().detail());
  auto header = ParseJson(AsString(*header_bytes), "JWT header");
  if (!header) return refuse(header.error().detail());
  if (!header->is_object()) return refuse("header is not a JSON object");

  const auto alg_it = header->find("alg");
  if (alg_it == header->end()) return refuse("header \"alg\" is missing");
  if (!alg_it->is_string()) return refuse("header \"alg\" must be a string");
  const std::string alg = alg_it->get<std::string>();
  if (IsNone(alg)) {
    return refuse("header \"alg\" " + Quote(alg) + " is not allowed: unsigned tokens are refused");
  }
  if (IsHmac(alg)) {
    return refuse("header \"alg\" " + Quote(alg) +
                  " is not allowed: HMAC (shared secret) tokens are refused");
  }
  if (std::find(options_.allowed_algs.begin(), options_.allowed_algs.end(), alg) ==
      options_.allowed_algs.end()) {
    return refuse("header \"alg\" " + Quote(alg) +
                  " is not allowed (allowed: " + Join(options_.allowed_algs) + ")");
  }
  const AlgInfo* alg_info = FindAlg(alg);  // non-null: MakeProvider checked allowed_algs
  if (alg_info == nullptr) return Fail(Error::Internal("allowed algorithm without verifier"));
  if (header->contains("crit")) return refuse("header \"crit\" is not supported");
  std::optional<std::string> kid;
  if (const auto k = header->find("kid"); k != header->end()) {
    if (!k->is_string()) return refuse("header \"kid\" must be a string");
    kid = k->get<std::string>();
  }
  if (options.typ) {
    const auto t = header->find("typ");
    if (t == header->end() || !t->is_string()) {
      return refuse("header \"typ\" is missing, expected " + Quote(*options.typ));
    }
    const std::string typ = t->get<std::string>();
    if (!EqualsIgnoreCase(WithoutApplicationPrefix(typ), WithoutApplicationPrefix(*options.typ))) {
      return refuse("header \"typ\" is " + Quote(typ) + ", expected " + Quote(*options.typ));
    }
  }
  auto payload_bytes = Base64UrlDecode(payload_b64);
  if (!payload_bytes) return refuse("payload is not base64url: " + payload_bytes.error().detail());
  auto claims_result = ParseJson(AsString(*payload_bytes), "JWT payload");
  if (!claims_result) return refuse(claims_result.error().detail());
  Json claims = std::move(*claims_result);
  if (!claims.is_object()) return refuse("claims are not a JSON object");
  if (signature_b64.empty()) return refuse("signature is missing");
  auto signature = Base64UrlDecode(signature_b64);
  if (!signature) return refuse("signature is not base64url: " + signature.error().detail());

  // ---- 2. the key and the signature ----
  auto state = Keys(kid);
  if (!state)
    return Fail(
        std::move(state).error().Context("verifying " + prefix.substr(0, prefix.size() - 2)));
  const Jwks& jwks = *state->jwks;
  const JwksKey* key = nullptr;
  if (kid) {
    key = jwks.Find(*kid);
    if (key == nullptr) {
      if (const RejectedJwk* r = jwks.FindRejected(*kid); r != nullptr) {
        return refuse("header \"kid\" " + Quote(*kid) + " names a key the JWKS holds but e2eid " +
                      "refuses: " + r->reason);
      }
      return refuse("header \"kid\" " + Quote(*kid) + " is not in the JWKS of " + options_.issuer);
    }
  } else {
    if (jwks.keys().size() != 1) {
      return refuse("header \"kid\" is missing and the JWKS has " +
                    std::to_string(jwks.keys().size()) + " usable keys");
    }
    key = &jwks.keys().front();
  }
  const std::string key_name = key->kid.empty() ? "the JWKS key" : "key " + Quote(key->kid);
  if (key->key.type() != alg_info->key_type) {
    return refuse("header \"alg\" " + Quote(alg) + " does not fit " + key_name + " (a " +
                  std::string(crypto::KeyTypeName(key->key.type())) + " key)");
  }
  if (key->alg && *key->alg != alg) {
    return refuse("header \"alg\" " + Quote(alg) + " differs from the \"alg\" " + Quote(*key->alg) +
                  " of " + key_name);
  }
  if (alg == "EdDSA") {
    // cpp-jwt has no EdDSA: Ed25519 goes through crypto/jws.h (OpenSSL).
    if (auto ok = crypto::VerifyJose(key->key, crypto::JwsAlg::kEdDSA, AsBytes(signing_input),
                                     *signature);
        !ok) {
      return refuse("signature does not verify with " + key_name + " (" + ok.error().detail() +
                    ")");
    }
  } else if (auto ok = VerifyWithCppJwt(alg, key->pem, signing_input, signature_b64); !ok) {
    if (ok.error().code() != ErrorCode::kUnauthorized) return Fail(std::move(ok).error());
    return refuse("signature does not verify with " + key_name + " (" + ok.error().detail() + ")");
  }

  // ---- 3. issuer ----
  const std::string& expected_issuer = state->discovery->issuer;
  const auto iss = claims.find("iss");
  if (iss == claims.end()) return refuse(claim("iss") + " is missing");
  if (!iss->is_string()) return refuse(claim("iss") + " must be a string");
  if (iss->get<std::string>() != expected_issuer) {
    return refuse(claim("iss") + " is " + Quote(iss->get<std::string>()) + ", expected " +
                  Quote(expected_issuer));
  }

  // ---- 4. times ----
  const int64_t now = ToUnix(clock_.Now());
  const int64_t leeway = options_.leeway.count();
  // A NumericDate (RFC 7519 §2): a JSON number of seconds; fractions are truncated.
  const auto numeric_date = [&](std::string_view name,
                                bool required) -> Result<std::optional<int64_t>> {
    const auto it = claims.find(name);
    if (it == claims.end()) {
      if (required) return refuse(claim(name) + " is missing");
      return std::optional<int64_t>();
    }
    double value = 0;
    if (it->is_number_integer()) {
      value = it->is_number_unsigned() ? static_cast<double>(it->get<uint64_t>())
                                       : static_cast<double>(it->get<int64_t>());
    } else if (it->is_number_float()) {
      value = it->get<double>();
    } else {
      return refuse(claim(name) + " must be a number (NumericDate)");
    }
    if (!std::isfinite(value) || value < 0 || value > static_cast<double>(kMaxNumericDate)) {
      return refuse(claim(name) + " is out of range");
    }
    if (it->is_number_integer() && !it->is_number_unsigned()) {
      return std::optional<int64_t>(it->get<int64_t>());
    }
    return std::optional<int64_t>(static_cast<int64_t>(std::floor(value)));
  };
  E2EID_TRY(exp, numeric_date("exp", true));
  if (now > *exp + leeway) {
    return refuse(claim("exp") + ": the token expired at " + FormatRfc3339(FromUnix(*exp)) +
                  " (now " + FormatRfc3339(FromUnix(now)) + ", leeway " + std::to_string(leeway) +
                  " s)");
  }
  E2EID_TRY(nbf, numeric_date("nbf", false));
  if (nbf && *nbf > now + leeway) {
    return refuse(claim("nbf") + ": the token is not valid before " +
                  FormatRfc3339(FromUnix(*nbf)) + " (now " + FormatRfc3339(FromUnix(now)) + ")");
  }
  E2EID_TRY(iat, numeric_date("iat", true));
  if (*iat > now + leeway) {
    return refuse(claim("iat") + " is in the future (" + FormatRfc3339(FromUnix(*iat)) + ", now " +
                  FormatRfc3339(FromUnix(now)) + ")");
  }
  if (options.max_age && now - *iat > options.max_age->count() + leeway) {
    return refuse(claim("iat") + ": the token was issued " + std::to_string(now - *iat) +
                  " s ago, more than max_age " + std::to_string(options.max_age->count()) + " s");
  }

  // ---- 5. audience and authorized party ----
  std::vector<std::string> audiences;
  bool has_aud = false;
  if (const auto aud = claims.find("aud"); aud != claims.end()) {
    has_aud = true;
    if (aud->is_string()) {
      audiences.push_back(aud->get<std::string>());
    } else if (aud->is_array() &&
               std::all_of(aud->begin(), aud->end(), [](const Json& v) { return v.is_string(); })) {
      for (const Json& v : *aud) audiences.push_back(v.get<std::string>());
    } else {
      return refuse(claim("aud") + " must be a string or an array of strings");
    }
  }
  std::optional<std::string> azp;
  if (const auto a = claims.find("azp"); a != claims.end()) {
    if (!a->is_string()) return refuse(claim("azp") + " must be a string");
    azp = a->get<std::string>();
  }
  const bool aud_has_client =
      std::find(audiences.begin(), audiences.end(), options_.client_id) != audiences.end();
  if (kind == TokenKind::kId) {
    if (!has_aud) return refuse(claim("aud") + " is missing");
    if (!aud_has_client) {
      return refuse(claim("aud") + " does not contain client id " + Quote(options_.client_id));
    }
    if (audiences.size() > 1 && !azp) {
      return refuse(claim("azp") + " is missing, but \"aud\" has several values");
    }
    // OpenID Connect Core §3.1.3.7: when "azp" is present it must be this client.
    if (azp && *azp != options_.client_id) {
      return refuse(claim("azp") + " is " + Quote(*azp) + ", not client id " +
                    Quote(options_.client_id));
    }
    const auto sub = claims.find("sub");
    if (sub == claims.end() || !sub->is_string() || sub->get<std::string>().empty()) {
      return refuse(claim("sub") + " is missing or not a non-empty string");
    }
  } else if (!aud_has_client && azp != options_.client_id) {
    return refuse("neither " + claim("azp") + " nor " + claim("aud") + " names client id " +
                  Quote(options_.client_id));
  }

  // ---- 6. policy ----
  if (options.apply_policy) {
    if (options_.require_email_verified) {
      const auto ev = claims.find("email_verified");
      if (ev == claims.end() || !ev->is_boolean() || !ev->get<bool>()) {
        return refuse(claim("email_verified") + " is not true");
      }
    }
    if (!options_.required_roles.empty()) {
      const Json* roles = FindClaim(claims, options_.roles_claim_path);
      if (roles == nullptr || !roles->is_array() ||
          !std::all_of(roles->begin(), roles->end(), [](const Json& v) { return v.is_string(); })) {
        return refuse(claim(options_.roles_claim_path) + " is missing or not an array of strings");
      }
      const bool any = std::any_of(options_.required_roles.begin(), options_.required_roles.end(),
                                   [&](const std::string& role) {
                                     return HasRole(claims, options_.roles_claim_path, role);
                                   });
      if (!any) {
        return refuse(claim(options_.roles_claim_path) + " contains none of the required roles (" +
                      Join(options_.required_roles) + ")");
      }
    }
  }
  return claims;
}

const Json* FindClaim(const Json& claims, std::string_view dot_path) {
  if (dot_path.empty()) return nullptr;
  const Json* current = &claims;
  while (true) {
    const size_t dot = dot_path.find('.');
    const std::string_view step = dot_path.substr(0, dot);
    if (step.empty() || !current->is_object()) return nullptr;
    const auto it = current->find(step);
    if (it == current->end()) return nullptr;
    current = &*it;
    if (dot == std::string_view::npos) return current;
    dot_path.remove_prefix(dot + 1);
  }
}

bool HasRole(const Json& claims, std::string_view dot_path, std::string_view role) {
  const Json* value = FindClaim(claims, dot_path);
  if (value == nullptr || !value->is_array()) return false;
  bool found = false;
  for (const Json& v : *value) {
    if (!v.is_string()) return false;
    if (v.get_ref<const std::string&>() == role) found = true;
  }
  return found;
}

Result<std::unique_ptr<TokenVerifier>> MakeProvider(ProviderOptions options, HttpClient& http,
                                                    const Clock& clock) {
  if (options.issuer.empty()) return Fail(Error::Config("oidc: the issuer is empty"));
  if (auto ok = http.CheckUrl(options.issuer); !ok) {
    return Fail(Error::Config("oidc: issuer " + Quote(options.issuer) +
                              " is not usable: " + ok.error().detail()));
  }
  if (options.client_id.empty()) return Fail(Error::Config("oidc: the client id is empty"));
  if (options.allowed_algs.empty()) return Fail(Error::Config("oidc: allowed_algs is empty"));
  for (const std::string& alg : options.allowed_algs) {
    if (IsNone(alg) || IsHmac(alg)) {
      return Fail(Error::Config("oidc: algorithm " + Quote(alg) + " is never allowed"));
    }
    if (FindAlg(alg) == nullptr) {
      return Fail(Error::Config("oidc: unknown algorithm " + Quote(alg) +
                                " (known: RS256, RS384, RS512, ES256, ES384, ES512, EdDSA)"));
    }
  }
  using std::chrono::seconds;
  if (options.leeway < seconds(0) || options.jwks_default_cache < seconds(0) ||
      options.jwks_min_cache < seconds(0) || options.jwks_refetch_interval < seconds(0) ||
      options.jwks_max_stale < seconds(0)) {
    return Fail(Error::Config("oidc: durations must not be negative"));
  }
  if (options.jwks_min_cache > options.jwks_max_cache) {
    return Fail(Error::Config("oidc: jwks_min_cache is larger than jwks_max_cache"));
  }
  if (!options.required_roles.empty() && options.roles_claim_path.empty()) {
    return Fail(Error::Config("oidc: required_roles is set but roles_claim_path is empty"));
  }
  if (options.required_roles.empty() && !options.roles_claim_path.empty()) {
    return Fail(Error::Config("oidc: roles_claim_path is set but required_roles is empty"));
  }
  return std::unique_ptr<TokenVerifier>(
      std::make_unique<Provider>(std::move(options), http, clock));
}

}  // namespace e2eid::oidc
