#include "server/admin_api.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <initializer_list>
#include <map>
#include <utility>
#include <vector>

#include "acme/wire.h"
#include "core/encoding.h"
#include "core/log.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "server/problem.h"

namespace e2eid::server {
namespace {

using store::Certificate;
using store::Device;
using store::PageRequest;

constexpr std::string_view kRealm = R"(Bearer realm="e2eid")";
constexpr std::string_view kDpopRealm = R"(DPoP realm="e2eid")";
constexpr std::string_view kDpopAlgs = R"(algs="ES256 ES384 ES512 EdDSA RS256")";
// Store nonce prefix of the "jti"s of DPoP proofs already seen (replay cache).
constexpr std::string_view kDpopJtiPrefix = "admin-dpop.";
constexpr size_t kMaxJtiBytes = 256;
constexpr size_t kMaxCommentBytes = 1024;
constexpr size_t kMaxReasonBytes = 1024;
// Listing every certificate = every certificate issued before the year 10000.
constexpr int64_t kFarFuture = 253402300800;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ---- query strings ------------------------------------------------------------------------------

using Query = std::map<std::string, std::string, std::less<>>;

// Parses "a=1&b=2" (percent-decoded, '+' is a space). Names outside `allowed`, repeated names and
// bad escapes are refused, so a typo never widens a listing silently.
Result<Query> ParseQuery(std::string_view query, std::initializer_list<std::string_view> allowed) {
  Query out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string raw_name(pair.substr(0, eq));
    std::string raw_value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    std::replace(raw_name.begin(), raw_name.end(), '+', ' ');
    std::replace(raw_value.begin(), raw_value.end(), '+', ' ');
    E2EID_TRY(name, PercentDecode(raw_name));
    E2EID_TRY(value, PercentDecode(raw_value));
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return Fail(Error::Malformed("unknown query parameter '" + name + "'"));
    }
    if (!out.emplace(name, std::move(value)).second) {
      return Fail(Error::Malformed("query parameter '" + name + "' is given twice"));
    }
  }
  return out;
}

std::optional<std::string> Field(const Query& q, std::string_view name) {
  auto it = q.find(name);
  if (it == q.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

// ---- values -------------------------------------------------------------------------------------

// A client-id URI in canonical form when it parses ("%21" -> "!"); other text unchanged (an
// unknown device is then simply not found).
std::string CanonicalDevice(std::string_view device) {
  auto parsed = acme::ParseWireClientId(device);
  return parsed ? parsed->Uri() : std::string(device);
}

// A Wire user id; an IdP subject UUID is mapped to it.
std::string CanonicalUser(std::string_view user) {
  auto mapped = acme::WireUserIdFromUuid(user);
  return mapped ? *mapped : std::string(user);
}

Result<std::string> CanonicalSpki(std::string_view spki) {
  std::string out;
  for (char c : spki) {
    if (c == ':') continue;
    if (HexValue(c) < 0) {
      return Fail(Error::Malformed("the key hash must be the hex SHA-256 of the public key"));
    }
    out.push_back(c >= 'A' && c <= 'F' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  if (out.size() != 64) {
    return Fail(Error::Malformed("the key hash must be the hex SHA-256 of the public key"));
  }
  return out;
}

Result<TimePoint> ParseTime(std::string_view text, std::string_view what) {
  auto t = ParseRfc3339(text);
  if (!t) return Fail(Error::Malformed(std::string(what) + " must be an RFC 3339 time"));
  return *t;
}

// ---- JSON renderings ----------------------------------------------------------------------------

Json OptionalString(const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); }
Json OptionalTime(const std::optional<TimePoint>& t) {
  return t ? Json(FormatRfc3339(*t)) : Json(nullptr);
}

Json CertificateJson(const Certificate& c) {
  Json j = {{"serial", c.serial},
            {"issuer_id", c.issuer_id},
            {"user_id", c.user_id},
            {"device_id", OptionalString(c.device_id)},
            {"spki_sha256", c.spki_sha256},
            {"status", store::ToString(c.status)},
            {"not_before", FormatRfc3339(c.not_before)},
            {"not_after", FormatRfc3339(c.not_after)},
            {"issued_at", FormatRfc3339(c.issued_at)},
            {"revoked_at", OptionalTime(c.revoked_at)},
            {"reason", nullptr},
            {"reason_name", nullptr},
            {"comment", OptionalString(c.revocation_comment)}};
  if (c.revocation_reason) {
    j["reason"] = *c.revocation_reason;
    j["reason_name"] = revocation::RevocationReasonName(*c.revocation_reason);
  }
  return j;
}

Json DeviceJson(const Device& d) {
  return {{"id", d.id},
          {"user_id", d.user_id},
          {"display_name", d.display_name},
          {"handle", d.handle},
          {"status", store::ToString(d.status)},
          {"first_seen", FormatRfc3339(d.first_seen)},
          {"last_seen", FormatRfc3339(d.last_seen)},
          {"blocked_reason", OptionalString(d.blocked_reason)}};
}

Json UserJson(const store::User& u) {
  return {{"id", u.id},
          {"handle", u.handle},
          {"display_name", u.display_name},
          {"status", store::ToString(u.status)},
          {"first_seen", FormatRfc3339(u.first_seen)},
          {"last_seen", FormatRfc3339(u.last_seen)}};
}

Json AuditJson(const store::AuditEvent& e) {
  auto details = ParseJson(e.details, "audit details");
  return {{"id", e.id},           {"at", FormatRfc3339(e.at)},
          {"actor", e.actor},     {"action", e.action},
          {"target", e.target},   {"source", e.source},
          {"outcome", e.outcome}, {"details", details ? std::move(*details) : Json(e.details)}};
}

Json RevocationEventJson(const store::RevocationEvent& e) {
  return {{"id", e.id},
          {"scope", store::ToString(e.scope_kind)},
          {"value", e.scope_value},
          {"reason", e.reason},
          {"reason_name", revocation::RevocationReasonName(e.reason)},
          {"comment", e.comment},
          {"actor", e.actor},
          {"at", FormatRfc3339(e.at)},
          {"affected", e.affected}};
}

template <typename T, typename Render>
HttpResponse PageResponse(const std::vector<T>& items, const std::string& next, Render render) {
  Json list = Json::array();
  for (const auto& item : items) list.push_back(render(item));
  return HttpResponse::Json(200, DumpJson(Json{{"items", std::move(list)}, {"next", next}}));
}

HttpResponse OutcomeResponse(const revocation::RevocationOutcome& o) {
  return HttpResponse::Json(200, DumpJson(Json{{"affected", o.affected}, {"event", o.event_id}}));
}

// ---- request bodies -----------------------------------------------------------------------------

// The JSON object in the body. An empty body is `{}` when `optional`.
Result<Json> JsonBody(const HttpRequest& r, bool optional) {
  if (r.body.empty()) {
    if (optional) return Json::object();
    return Fail(Error::Malformed("the request needs a JSON body"));
  }
  const std::string type = r.Header("Content-Type").value_or("");
  const std::string_view media = std::string_view(type).substr(0, type.find(';'));
  std::string_view trimmed = media;
  while (!trimmed.empty() && trimmed.back() == ' ') trimmed.remove_suffix(1);
  if (!EqualsIgnoreCase(trimmed, "application/json")) {
    return Fail(ErrorCode::kUnsupportedMediaType, "the body must be application/json");
  }
  E2EID_TRY(body, ParseJson(r.body, "request body"));
  if (!body.is_object()) return Fail(Error::Malformed("the request body must be a JSON object"));
  return body;
}

Status OnlyMembers(const Json& body, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Fail(Error::Malformed("unknown member '" + key + "' in the request body"));
    }
  }
  return Ok();
}

std::string_view Param(const RouteParams& params, std::string_view name) {
  auto it = params.find(name);
  return it == params.end() ? std::string_view() : std::string_view(it->second);
}

// The decoded device id of a path parameter.
Result<std::string> DeviceParam(std::string_view raw) {
  E2EID_TRY(decoded, PercentDecode(raw));
  if (decoded.empty()) return Fail(Error::Malformed("empty device id"));
  return CanonicalDevice(decoded);
}

// An RFC 5280 CRLReason from a JSON number or name ("keyCompromise"). certificateHold and
// removeFromCRL are refused: an e2eid revocation is final.
Result<int> ReasonMember(const Json& value) {
  std::string text;
  if (value.is_number_integer()) {
    text = std::to_string(value.get<int64_t>());
  } else if (value.is_string()) {
    text = value.get<std::string>();
  } else {
    return Fail(Error::Malformed("reason must be an RFC 5280 CRLReason code or name"));
  }
  auto code = revocation::ParseRevocationReason(text);
  if (!code) return Fail(Error::Malformed(code.error().detail()));
  if (*code == 6 || *code == 8) {
    return Fail(Error::Malformed("reason " + std::string(revocation::RevocationReasonName(*code)) +
                                 " is not accepted: an e2eid revocation is final"));
  }
  return *code;
}

}  // namespace

// ---- helpers ------------------------------------------------------------------------------------

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) {
      return Fail(Error::Malformed("malformed percent-encoding in '" + std::string(s) + "'"));
    }
    const int hi = HexValue(s[i + 1]);
    const int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return Fail(Error::Malformed("malformed percent-encoding in '" + std::string(s) + "'"));
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Result<std::string> CanonicalSerial(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ':') continue;
    if (HexValue(c) < 0)
      return Fail(Error::Malformed("serial '" + std::string(s) + "' is not hex"));
    const char lower = c >= 'A' && c <= 'F' ? static_cast<char>(c - 'A' + 'a') : c;
    if (out.empty() && lower == '0') continue;  // leading zeros
    out.push_back(lower);
  }
  if (out.empty() && s.find('0') != std::string_view::npos) out = "0";
  if (!store::IsCanonicalSerialHex(out)) {
    return Fail(Error::Malformed("serial '" + std::string(s) + "' is not 1 to 40 hex digits"));
  }
  return out;
}

// ---- AdminApi -----------------------------------------------------------------------------------

AdminApi::AdminApi(AdminApiOptions options, Deps deps)
    : options_([&] {
        options.max_page_size = std::clamp(options.max_page_size, 1, store::kMaxPageLimit);
        options.default_page_size = std::clamp(options.default_page_size, 1, options.max_page_size);
        return std::move(options);
      }()),
      deps_(deps) {}

void AdminApi::Audit(const HttpRequest& r, std::string actor, std::string action,
                     std::string target, std::string outcome, const Json& details) const {
  store::AuditEvent e;
  e.at = deps_.clock.Now();
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.target = std::move(target);
  e.source = r.remote_address;
  e.outcome = std::move(outcome);
  e.details = DumpJson(details);
  auto st = deps_.store.InTransaction([&](store::Transaction& tx) -> Status {
    E2EID_TRY(id, tx.AppendAudit(e));
    (void)id;
    return Ok();
  });
  if (!st) {
    LogError(
        "admin api: cannot append to the audit trail",
        {{"error", st.error().ToString()}, {"action", e.action}, {"request_id", r.request_id}});
  }
}

Status AdminApi::CheckDpopProof(const HttpRequest& r, std::string_view token,
                                std::string_view jkt) const {
  auto refuse = [](std::string why) {
    return Fail(Error::Unauthenticated("DPoP proof: " + std::move(why)));
  };
  size_t count = 0;
  for (const auto& [name, value] : r.headers) count += EqualsIgnoreCase(name, "DPoP") ? 1 : 0;
  if (count != 1) {
    return refuse(count == 0 ? "the DPoP header is missing (a DPoP-bound token needs a proof)"
                             : "exactly one DPoP header is allowed");
  }
  auto jws = crypto::ParseCompactJws(*r.Header("DPoP"));
  if (!jws) return refuse("not a compact JWS: " + jws.error().detail());
  {
    auto it = jws->header.find("typ");
    if (it == jws->header.end() || !it->is_string() ||
        !EqualsIgnoreCase(it->get<std::string>(), "dpop+jwt")) {
      return refuse("header \"typ\" must be \"dpop+jwt\"");
    }
  }
  if (!jws->header.contains("jwk") || !jws->header.at("jwk").is_object()) {
    return refuse("header \"jwk\" is missing");
  }
  auto key = crypto::PublicKeyFromJwk(jws->header.at("jwk"));
  if (!key) return refuse("header \"jwk\" is not acceptable: " + key.error().detail());
  if (auto st = crypto::VerifyJws(*jws, *key); !st) {
    return refuse("the signature does not verify with its \"jwk\"");
  }
  E2EID_TRY(thumbprint, crypto::JwkThumbprint(*key));
  if (!crypto::ConstantTimeEquals(thumbprint, jkt)) {
    return refuse("its key is not the one the access token is bound to (\"cnf\".\"jkt\")");
  }
  auto payload = ParseJson(AsString(jws->payload), "DPoP proof");
  if (!payload || !payload->is_object()) return refuse("the payload is not a JSON object");
  const Json& p = *payload;
  auto string_claim = [&](const char* name) -> std::optional<std::string> {
    auto it = p.find(name);
    if (it == p.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  if (string_claim("htm") != std::optional<std::string>(r.method)) {
    return refuse("claim \"htm\" must be " + r.method);
  }
  {
    auto htu = string_claim("htu");
    if (!htu) return refuse("claim \"htu\" is missing");
    const std::string_view bare = std::string_view(*htu).substr(0, htu->find_first_of("?#"));
    bool match = false;
    if (!options_.base_url.empty()) {
      match = bare == options_.base_url + r.path;
    } else {
      const size_t scheme_end = bare.find("://");
      const size_t path_start =
          scheme_end == std::string_view::npos ? scheme_end : bare.find('/', scheme_end + 3);
      match = path_start != std::string_view::npos && bare.substr(path_start) == r.path;
    }
    if (!match) {
      return refuse("claim \"htu\" must be this request's URL (" + options_.base_url + r.path +
                    ")");
    }
  }
  const TimePoint now = deps_.clock.Now();
  const int64_t t = ToUnix(now);
  {
    auto it = p.find("iat");
    if (it == p.end() || !it->is_number_integer()) return refuse("claim \"iat\" is missing");
    const int64_t iat = it->get<int64_t>();
    if (iat > t + options_.leeway.count()) return refuse("claim \"iat\" is in the future");
    if (t - iat > options_.dpop_max_age.count() + options_.leeway.count()) {
      return refuse("claim \"iat\" is too old (the proof must be fresh)");
    }
  }
  {
    auto ath = string_claim("ath");
    if (!ath) return refuse("claim \"ath\" is missing");
    if (!crypto::ConstantTimeEquals(*ath, Base64UrlEncode(crypto::Sha256(token)))) {
      return refuse("claim \"ath\" is not the hash of the access token");
    }
  }
  auto jti = string_claim("jti");
  if (!jti || jti->empty() || jti->size() > kMaxJtiBytes) {
    return refuse("claim \"jti\" is missing or longer than " + std::to_string(kMaxJtiBytes));
  }
  // Replay: remember jti (per key) until the proof would be too old anyway.
  store::Nonce seen{
      std::string(kDpopJtiPrefix) + HexEncode(crypto::Sha256(std::string(jkt) + "." + *jti)),
      now + options_.dpop_max_age + 2 * options_.leeway};
  auto st = deps_.store.InTransaction([&](store::Transaction& tx) { return tx.InsertNonce(seen); });
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) {
      return refuse("replayed (its \"jti\" was already used)");
    }
    return Fail(std::move(st.error()));
  }
  return Ok();
}

Result<AdminApi::Caller> AdminApi::Authenticate(const HttpRequest& r, std::string_view route,
                                                Access access, HttpResponse* refusal) const {
  auto refuse = [&](Error error, std::string actor, std::string outcome,
                    const std::string& www_authenticate) -> Result<Caller> {
    Audit(r, std::move(actor), "admin.login", r.path, std::move(outcome),
          {{"reason", error.detail()}, {"route", route}});
    *refusal = ProblemResponse(error, r.request_id);
    if (!www_authenticate.empty()) refusal->SetHeader("WWW-Authenticate", www_authenticate);
    return Fail(std::move(error));
  };
  const std::string invalid = std::string(kRealm) + R"(, error="invalid_token")";

  const std::optional<std::string> header = r.Header("Authorization");
  if (!header || header->empty()) {
    return refuse(Error::Unauthenticated("an admin access token is required (Authorization: "
                                         "Bearer)"),
                  "anonymous", "denied", std::string(kRealm));
  }
  const std::string_view value = *header;
  const size_t space = value.find(' ');
  std::string_view token =
      space == std::string_view::npos ? std::string_view() : value.substr(space + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  const std::string_view scheme =
      space == std::string_view::npos ? std::string_view() : value.substr(0, space);
  const bool dpop_scheme = EqualsIgnoreCase(scheme, "DPoP");
  if (space == std::string_view::npos || (!EqualsIgnoreCase(scheme, "Bearer") && !dpop_scheme) ||
      token.empty() || token.find(' ') != std::string_view::npos) {
    return refuse(Error::Unauthenticated(
                      "the Authorization header must be 'Bearer <token>' or 'DPoP <token>'"),
                  "anonymous", "denied", std::string(kRealm));
  }

  oidc::VerifyOptions verify;
  verify.apply_policy = false;
  auto claims = deps_.verifier.VerifyAccessToken(token, verify);
  if (!claims) {
    const ErrorCode code = claims.error().code();
    if (code == ErrorCode::kConnection || code == ErrorCode::kUnavailable ||
        !IsClientFacing(code)) {
      LogWarn("admin api: cannot verify an access token",
              {{"error", claims.error().ToString()}, {"request_id", r.request_id}});
      return refuse(Error::Unavailable("the identity provider cannot be reached to verify the "
                                       "token"),
                    "anonymous", "failure", "");
    }
    return refuse(Error::Unauthenticated("invalid access token: " + claims.error().detail()),
                  "anonymous", "denied", invalid);
  }
  const Json* sub = claims->is_object() ? oidc::FindClaim(*claims, "sub") : nullptr;
  if (sub == nullptr || !sub->is_string() || sub->get<std::string>().empty()) {
    return refuse(Error::Unauthenticated("invalid access token: no \"sub\" claim"), "anonymous",
                  "denied", invalid);
  }
  // Sender-constrained tokens (RFC 9449): the caller must prove possession of the bound key.
  const Json* jkt = oidc::FindClaim(*claims, "cnf.jkt");
  const std::string dpop_invalid =
      std::string(kDpopRealm) + R"(, error="invalid_token", )" + std::string(kDpopAlgs);
  if (jkt != nullptr) {
    if (!jkt->is_string() || jkt->get<std::string>().empty()) {
      return refuse(Error::Unauthenticated("invalid access token: claim \"cnf.jkt\" is not a "
                                           "key thumbprint"),
                    "anonymous", "denied", dpop_invalid);
    }
    if (!dpop_scheme) {
      return refuse(Error::Unauthenticated(
                        "the access token is DPoP-bound (claim \"cnf.jkt\") and cannot be used as "
                        "a Bearer token: send 'Authorization: DPoP <token>' with a DPoP proof of "
                        "its key (RFC 9449)"),
                    "anonymous", "denied", dpop_invalid);
    }
    if (auto st = CheckDpopProof(r, token, jkt->get<std::string>()); !st) {
      const ErrorCode code = st.error().code();
      if (code != ErrorCode::kUnauthenticated) {
        LogWarn("admin api: cannot check a DPoP proof",
                {{"error", st.error().ToString()}, {"request_id", r.request_id}});
        return refuse(Error::Unavailable("the DPoP proof cannot be checked now"), "anonymous",
                      "failure", "");
      }
      return refuse(
          std::move(st.error()), "anonymous", "denied",
          std::string(kDpopRealm) + R"(, error="invalid_dpop_proof", )" + std::string(kDpopAlgs));
    }
  } else if (dpop_scheme) {
    return refuse(Error::Unauthenticated("the 'DPoP' scheme needs a DPoP-bound access token "
                                         "(claim \"cnf.jkt\"); this one is a Bearer token"),
                  "anonymous", "denied", dpop_invalid);
  }
  Caller caller;
  caller.sub = sub->get<std::string>();
  caller.admin = oidc::HasRole(*claims, options_.roles_claim, options_.admin_role);
  const std::string forbidden = std::string(kRealm) + R"(, error="insufficient_scope")";
  if (access == Access::kAdmin && !caller.admin) {
    return refuse(
        Error::Forbidden("the token does not carry the role '" + options_.admin_role + "'"),
        "user:" + caller.sub, "denied", forbidden);
  }
  if (access == Access::kSelf) {
    auto user_id = acme::WireUserIdFromUuid(caller.sub);
    if (!user_id) {
      return refuse(Error::Forbidden("the token's subject is not a Wire user (not a UUID)"),
                    "user:" + caller.sub, "denied", forbidden);
    }
    caller.user_id = std::move(*user_id);
  }
  return caller;
}

Result<PageRequest> AdminApi::Paging(const std::optional<std::string>& cursor,
                                     const std::optional<std::string>& limit) const {
  PageRequest page;
  page.after = cursor.value_or("");
  page.limit = options_.default_page_size;
  if (limit) {
    int v = 0;
    const auto [ptr, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), v);
    if (ec != std::errc() || ptr != limit->data() + limit->size() || v < 1 ||
        v > options_.max_page_size) {
      return Fail(Error::Malformed("limit must be an integer from 1 to " +
                                   std::to_string(options_.max_page_size)));
    }
    page.limit = v;
  }
  return page;
}

Result<HttpResponse> AdminApi::Revoke(const HttpRequest& r, const Caller& c) const {
  E2EID_TRY(body, JsonBody(r, /*optional=*/false));
  E2EID_CHECK_OK(OnlyMembers(body, {"scope", "value", "reason", "comment"}));
  E2EID_TRY(scope_name, GetString(body, "scope", "request body"));
  auto kind = store::ParseRevocationScopeKind(scope_name);
  if (!kind) {
    return Fail(Error::Malformed("scope must be certificate, device, user, key or before, not '" +
                                 scope_name + "'"));
  }
  E2EID_TRY(value, GetString(body, "value", "request body"));
  if (value.empty()) return Fail(Error::Malformed("value must not be empty"));
  revocation::RevocationRequest request;
  request.kind = *kind;
  switch (*kind) {
    case store::RevocationScopeKind::kCertificate: {
      E2EID_TRY(serial, CanonicalSerial(value));
      request.value = std::move(serial);
      break;
    }
    case store::RevocationScopeKind::kDevice:
      request.value = CanonicalDevice(value);
      break;
    case store::RevocationScopeKind::kUser:
      request.value = CanonicalUser(value);
      break;
    case store::RevocationScopeKind::kKey: {
      E2EID_TRY(spki, CanonicalSpki(value));
      request.value = std::move(spki);
      break;
    }
    case store::RevocationScopeKind::kBefore: {
      E2EID_TRY(t, ParseTime(value, "value"));
      request.value = FormatRfc3339(t);
      break;
    }
  }
  if (body.contains("reason") && !body["reason"].is_null()) {
    E2EID_TRY(reason, ReasonMember(body["reason"]));
    request.reason = reason;
  }
  E2EID_TRY(comment, GetOptionalString(body, "comment", "request body"));
  request.comment = comment.value_or("");
  if (request.comment.size() > kMaxCommentBytes) {
    return Fail(
        Error::Malformed("comment is longer than " + std::to_string(kMaxCommentBytes) + " bytes"));
  }
  request.actor = "admin:" + c.sub;
  request.source = r.remote_address;
  E2EID_TRY(outcome, deps_.revocations.Revoke(request));
  return OutcomeResponse(outcome);
}

Result<HttpResponse> AdminApi::ListRevocations(const HttpRequest& r) const {
  E2EID_TRY(q, ParseQuery(r.query, {"cursor", "limit"}));
  E2EID_TRY(page, Paging(Field(q, "cursor"), Field(q, "limit")));
  store::Page<store::RevocationEvent> events;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(p, tx.ListRevocationEvents(page));
    events = std::move(p);
    return Ok();
  }));
  return PageResponse(events.items, events.next, RevocationEventJson);
}

Result<HttpResponse> AdminApi::ListCertificates(const HttpRequest& r) const {
  E2EID_TRY(q, ParseQuery(r.query, {"user", "device", "spki", "issued_before", "status", "cursor",
                                    "limit"}));
  E2EID_TRY(page, Paging(Field(q, "cursor"), Field(q, "limit")));
  std::optional<std::string> user, device, spki;
  std::optional<TimePoint> before;
  std::optional<store::CertificateStatus> status;
  if (auto v = Field(q, "user")) user = CanonicalUser(*v);
  if (auto v = Field(q, "device")) device = CanonicalDevice(*v);
  if (auto v = Field(q, "spki")) {
    E2EID_TRY(s, CanonicalSpki(*v));
    spki = std::move(s);
  }
  if (auto v = Field(q, "issued_before")) {
    E2EID_TRY(t, ParseTime(*v, "issued_before"));
    before = t;
  }
  if (auto v = Field(q, "status")) {
    auto s = store::ParseCertificateStatus(*v);
    if (!s) return Fail(Error::Malformed("status must be good or revoked"));
    status = *s;
  }
  store::Page<Certificate> certs;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    Result<store::Page<Certificate>> p = [&] {
      if (device) return tx.ListCertificatesByDevice(*device, page);
      if (user) return tx.ListCertificatesByUser(*user, page);
      if (spki) return tx.ListCertificatesBySpki(*spki, page);
      return tx.ListCertificatesIssuedBefore(before.value_or(FromUnix(kFarFuture)), page);
    }();
    if (!p) return Fail(std::move(p).error());
    certs = std::move(*p);
    return Ok();
  }));
  std::erase_if(certs.items, [&](const Certificate& c) {
    return (user && c.user_id != *user) || (device && c.device_id != *device) ||
           (spki && c.spki_sha256 != *spki) || (before && !(c.issued_at < *before)) ||
           (status && c.status != *status);
  });
  return PageResponse(certs.items, certs.next, CertificateJson);
}

Result<HttpResponse> AdminApi::GetCertificate(std::string_view raw) const {
  E2EID_TRY(decoded, PercentDecode(raw));
  E2EID_TRY(serial, CanonicalSerial(decoded));
  Certificate cert;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(c, tx.GetCertificate(serial));
    cert = std::move(c);
    return Ok();
  }));
  Json j = CertificateJson(cert);
  j["chain_pem"] = cert.chain_pem;
  return HttpResponse::Json(200, DumpJson(j));
}

Result<HttpResponse> AdminApi::ListDevices(const HttpRequest& r) const {
  E2EID_TRY(q, ParseQuery(r.query, {"user", "status", "cursor", "limit"}));
  E2EID_TRY(page, Paging(Field(q, "cursor"), Field(q, "limit")));
  std::optional<store::DeviceStatus> status;
  if (auto v = Field(q, "status")) {
    auto s = store::ParseDeviceStatus(*v);
    if (!s) return Fail(Error::Malformed("status must be active, blocked or removed"));
    status = *s;
  }
  const std::optional<std::string> user = Field(q, "user");
  store::Page<Device> devices;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    if (!user) {
      E2EID_TRY(p, tx.ListDevices(status, page));
      devices = std::move(p);
      return Ok();
    }
    // One user has few devices: page through them here, with the same cursor (the last id).
    E2EID_TRY(all, tx.ListDevicesForUser(CanonicalUser(*user)));
    for (auto& d : all) {
      if (d.id <= page.after || (status && d.status != *status)) continue;
      if (static_cast<int>(devices.items.size()) == page.limit) {
        devices.next = devices.items.back().id;
        break;
      }
      devices.items.push_back(std::move(d));
    }
    return Ok();
  }));
  return PageResponse(devices.items, devices.next, DeviceJson);
}

Result<HttpResponse> AdminApi::GetDevice(std::string_view raw) const {
  E2EID_TRY(id, DeviceParam(raw));
  return DeviceResponse(id);
}

Result<HttpResponse> AdminApi::DeviceResponse(const std::string& id) const {
  Json j;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(d, tx.GetDevice(id));
    j = DeviceJson(d);
    PageRequest page;
    page.limit = options_.max_page_size;
    E2EID_TRY(certs, tx.ListCertificatesByDevice(id, page));
    Json list = Json::array();
    for (const auto& c : certs.items) list.push_back(CertificateJson(c));
    j["certificates"] = std::move(list);
    return Ok();
  }));
  return HttpResponse::Json(200, DumpJson(j));
}

Result<HttpResponse> AdminApi::BlockDevice(const HttpRequest& r, const Caller& c,
                                           std::string_view raw) const {
  E2EID_TRY(id, DeviceParam(raw));
  E2EID_TRY(body, JsonBody(r, /*optional=*/true));
  E2EID_CHECK_OK(OnlyMembers(body, {"reason"}));
  E2EID_TRY(reason, GetOptionalString(body, "reason", "request body"));
  if (reason && reason->size() > kMaxReasonBytes) {
    return Fail(
        Error::Malformed("reason is longer than " + std::to_string(kMaxReasonBytes) + " bytes"));
  }
  E2EID_CHECK_OK(
      deps_.revocations.BlockDevice(id, reason.value_or(""), "admin:" + c.sub, r.remote_address));
  return DeviceResponse(id);
}

Result<HttpResponse> AdminApi::UnblockDevice(const HttpRequest& r, const Caller& c,
                                             std::string_view raw) const {
  E2EID_TRY(id, DeviceParam(raw));
  E2EID_TRY(body, JsonBody(r, /*optional=*/true));
  E2EID_CHECK_OK(OnlyMembers(body, {}));
  E2EID_CHECK_OK(deps_.revocations.UnblockDevice(id, "admin:" + c.sub, r.remote_address));
  return DeviceResponse(id);
}

Result<HttpResponse> AdminApi::ListUsers(const HttpRequest& r) const {
  E2EID_TRY(q, ParseQuery(r.query, {"cursor", "limit"}));
  E2EID_TRY(page, Paging(Field(q, "cursor"), Field(q, "limit")));
  store::Page<store::User> users;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(p, tx.ListUsers(page));
    users = std::move(p);
    return Ok();
  }));
  return PageResponse(users.items, users.next, UserJson);
}

Result<HttpResponse> AdminApi::GetUser(std::string_view raw) const {
  E2EID_TRY(decoded, PercentDecode(raw));
  const std::string id = CanonicalUser(decoded);
  Json j;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(u, tx.GetUser(id));
    j = UserJson(u);
    E2EID_TRY(devices, tx.ListDevicesForUser(id));
    Json list = Json::array();
    for (const auto& d : devices) list.push_back(DeviceJson(d));
    j["devices"] = std::move(list);
    return Ok();
  }));
  return HttpResponse::Json(200, DumpJson(j));
}

Result<HttpResponse> AdminApi::SetUserStatus(const HttpRequest& r, const Caller& c,
                                             std::string_view raw, bool disable) const {
  E2EID_TRY(decoded, PercentDecode(raw));
  const std::string id = CanonicalUser(decoded);
  E2EID_TRY(body, JsonBody(r, /*optional=*/true));
  if (disable) {
    E2EID_CHECK_OK(OnlyMembers(body, {"reason"}));
  } else {
    E2EID_CHECK_OK(OnlyMembers(body, {}));
  }
  E2EID_TRY(reason, GetOptionalString(body, "reason", "request body"));
  if (reason && reason->size() > kMaxReasonBytes) {
    return Fail(
        Error::Malformed("reason is longer than " + std::to_string(kMaxReasonBytes) + " bytes"));
  }
  if (disable) {
    E2EID_CHECK_OK(
        deps_.revocations.DisableUser(id, reason.value_or(""), "admin:" + c.sub, r.remote_address));
  } else {
    E2EID_CHECK_OK(deps_.revocations.EnableUser(id, "admin:" + c.sub, r.remote_address));
  }
  return GetUser(id);
}

Result<HttpResponse> AdminApi::ListAudit(const HttpRequest& r) const {
  E2EID_TRY(q, ParseQuery(r.query, {"cursor", "limit"}));
  E2EID_TRY(page, Paging(Field(q, "cursor"), Field(q, "limit")));
  store::Page<store::AuditEvent> events;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(p, tx.ListAuditEvents(page));
    events = std::move(p);
    return Ok();
  }));
  return PageResponse(events.items, events.next, AuditJson);
}

Result<HttpResponse> AdminApi::ExportAudit(const HttpRequest& r, const Caller& c) const {
  E2EID_TRY(q, ParseQuery(r.query, {}));
  std::string out;
  int64_t count = 0;
  // One snapshot: the export is consistent even while events are appended.
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    PageRequest page;
    page.limit = store::kMaxPageLimit;
    for (;;) {
      E2EID_TRY(p, tx.ListAuditEvents(page));
      for (const auto& e : p.items) {
        out += DumpJson(AuditJson(e));
        out += '\n';
        ++count;
      }
      if (p.next.empty()) break;
      page.after = p.next;
    }
    return Ok();
  }));
  Audit(r, "admin:" + c.sub, "audit.export", "", "success", {{"events", count}});
  return HttpResponse::WithBody(200, "application/x-ndjson", std::move(out));
}

Result<HttpResponse> AdminApi::MyDevices(const Caller& c) const {
  std::vector<Device> devices;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(all, tx.ListDevicesForUser(c.user_id));
    devices = std::move(all);
    return Ok();
  }));
  return PageResponse(devices, "", DeviceJson);
}

Result<HttpResponse> AdminApi::RemoveMyDevice(const HttpRequest& r, const Caller& c,
                                              std::string_view raw) const {
  E2EID_TRY(id, DeviceParam(raw));
  E2EID_TRY(body, JsonBody(r, /*optional=*/true));
  E2EID_CHECK_OK(OnlyMembers(body, {}));
  bool mine = false;
  E2EID_CHECK_OK(deps_.store.ReadOnly([&](store::Transaction& tx) -> Status {
    auto d = tx.GetDevice(id);
    if (!d) {
      if (d.error().code() == ErrorCode::kNotFound) return Ok();
      return Fail(std::move(d).error());
    }
    mine = d->user_id == c.user_id;
    return Ok();
  }));
  if (!mine) {
    // The same answer for another user's device and an unknown one: no existence oracle.
    Error error = Error::Forbidden("device '" + id + "' is not one of your devices");
    Audit(r, "user:" + c.sub, "device.remove", id, "denied", {{"reason", error.detail()}});
    return Fail(std::move(error));
  }
  E2EID_TRY(outcome, deps_.revocations.RemoveDevice(id, "user:" + c.sub, r.remote_address));
  return OutcomeResponse(outcome);
}

// ---- routes -------------------------------------------------------------------------------------

Status AddAdminRoutes(Router& router, const AdminApi& api) {
  using Access = AdminApi::Access;
  using Caller = AdminApi::Caller;
  using Fn =
      std::function<Result<HttpResponse>(const HttpRequest&, const RouteParams&, const Caller&)>;
  auto add = [&](std::string_view method, std::string_view rest, Access access,
                 const Fn& fn) -> Status {
    const std::string pattern = std::string(kAdminPathPrefix) + std::string(rest);
    const std::string route = std::string(method) + " " + pattern;
    return router.Add(
        method, pattern, [&api, route, access, fn](const HttpRequest& r, const RouteParams& p) {
          HttpResponse response;
          auto caller = api.Authenticate(r, route, access, &response);
          if (caller) {
            auto result = fn(r, p, *caller);
            response = result ? std::move(*result) : ProblemResponse(result.error(), r.request_id);
          }
          response.SetHeader("Cache-Control", "no-store");
          return response;
        });
  };
  const Access admin = Access::kAdmin;
  E2EID_CHECK_OK(add("POST", "/revocations", admin,
                     [&api](const HttpRequest& r, const RouteParams&, const Caller& c) {
                       return api.Revoke(r, c);
                     }));
  E2EID_CHECK_OK(add("GET", "/revocations", admin,
                     [&api](const HttpRequest& r, const RouteParams&, const Caller&) {
                       return api.ListRevocations(r);
                     }));
  E2EID_CHECK_OK(add("GET", "/certificates", admin,
                     [&api](const HttpRequest& r, const RouteParams&, const Caller&) {
                       return api.ListCertificates(r);
                     }));
  E2EID_CHECK_OK(add("GET", "/certificates/{serial}", admin,
                     [&api](const HttpRequest&, const RouteParams& p, const Caller&) {
                       return api.GetCertificate(Param(p, "serial"));
                     }));
  E2EID_CHECK_OK(add("GET", "/devices", admin,
                     [&api](const HttpRequest& r, const RouteParams&, const Caller&) {
                       return api.ListDevices(r);
                     }));
  E2EID_CHECK_OK(add("GET", "/devices/{device}", admin,
                     [&api](const HttpRequest&, const RouteParams& p, const Caller&) {
                       return api.GetDevice(Param(p, "device"));
                     }));
  E2EID_CHECK_OK(add("POST", "/devices/{device}/block", admin,
                     [&api](const HttpRequest& r, const RouteParams& p, const Caller& c) {
                       return api.BlockDevice(r, c, Param(p, "device"));
                     }));
  E2EID_CHECK_OK(add("POST", "/devices/{device}/unblock", admin,
                     [&api](const HttpRequest& r, const RouteParams& p, const Caller& c) {
                       return api.UnblockDevice(r, c, Param(p, "device"));
                     }));
  E2EID_CHECK_OK(
      add("GET", "/users", admin, [&api](const HttpRequest& r, const RouteParams&, const Caller&) {
        return api.ListUsers(r);
      }));
  E2EID_CHECK_OK(add("GET", "/users/{id}", admin,
                     [&api](const HttpRequest&, const RouteParams& p, const Caller&) {
                       return api.GetUser(Param(p, "id"));
                     }));
  E2EID_CHECK_OK(add("POST", "/users/{id}/disable", admin,
                     [&api](const HttpRequest& r, const RouteParams& p, const Caller& c) {
                       return api.SetUserStatus(r, c, Param(p, "id"), /*disable=*/true);
                     }));
  E2EID_CHECK_OK(add("POST", "/users/{id}/enable", admin,
                     [&api](const HttpRequest& r, const RouteParams& p, const Caller& c) {
                       return api.SetUserStatus(r, c, Param(p, "id"), /*disable=*/false);
                     }));
  E2EID_CHECK_OK(
      add("GET", "/audit", admin, [&api](const HttpRequest& r, const RouteParams&, const Caller&) {
        return api.ListAudit(r);
      }));
  E2EID_CHECK_OK(add("GET", "/audit/export", admin,
                     [&api](const HttpRequest& r, const RouteParams&, const Caller& c) {
                       return api.ExportAudit(r, c);
                     }));
  E2EID_CHECK_OK(add("GET", "/me/devices", Access::kSelf,
                     [&api](const HttpRequest&, const RouteParams&, const Caller& c) {
                       return api.MyDevices(c);
                     }));
  return add("POST", "/me/devices/{device}/remove", Access::kSelf,
             [&api](const HttpRequest& r, const RouteParams& p, const Caller& c) {
               return api.RemoveMyDevice(r, c, Param(p, "device"));
             });
}

}  // namespace e2eid::server
