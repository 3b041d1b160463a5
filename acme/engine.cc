#include "acme/engine.h"

#include <algorithm>
#include <exception>
#include <set>
#include <utility>

#include "acme/ari.h"
#include "acme/csr.h"
#include "acme/wire.h"
#include "ca/x509.h"
#include "core/encoding.h"
#include "core/log.h"
#include "crypto/jwk.h"
#include "crypto/random.h"

namespace e2eid::acme {
namespace {

using store::AccountStatus;
using store::AuthorizationStatus;
using store::ChallengeStatus;
using store::OrderStatus;
using store::Transaction;

constexpr std::string_view kHeaderWhat = "JWS protected header";

HttpResponse JsonResponse(int status, const Json& body) {
  return HttpResponse::Json(status, DumpJson(body));
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// True when the media type of a Content-Type value (before any ';' parameters) is `type`.
bool MediaTypeIs(std::string_view content_type, std::string_view type) {
  const size_t semi = content_type.find(';');
  return EqualsIgnoreCase(Trim(content_type.substr(0, semi)), type);
}

AuthorizationStatus EffectiveStatus(const store::Authorization& a, TimePoint now) {
  if ((a.status == AuthorizationStatus::kPending || a.status == AuthorizationStatus::kValid) &&
      a.expires <= now) {
    return AuthorizationStatus::kExpired;
  }
  return a.status;
}

// RFC 8555 §7.1.6: the order's status from its stored status, its expiry and its authorizations.
OrderStatus EffectiveStatus(const store::Order& o, const std::vector<store::Authorization>& authzs,
                            TimePoint now) {
  if (o.status == OrderStatus::kProcessing || o.status == OrderStatus::kValid ||
      o.status == OrderStatus::kInvalid) {
    return o.status;
  }
  if (o.expires <= now) return OrderStatus::kInvalid;
  bool all_valid = !authzs.empty();
  for (const auto& a : authzs) {
    switch (EffectiveStatus(a, now)) {
      case AuthorizationStatus::kValid:
        break;
      case AuthorizationStatus::kPending:
        all_valid = false;
        break;
      case AuthorizationStatus::kInvalid:
      case AuthorizationStatus::kDeactivated:
      case AuthorizationStatus::kExpired:
      case AuthorizationStatus::kRevoked:
        return OrderStatus::kInvalid;
    }
  }
  return all_valid ? OrderStatus::kReady : OrderStatus::kPending;
}

Status Audit(Transaction& tx, TimePoint now, std::string actor, std::string action,
             std::string target, std::string source, const Json& details,
             std::string outcome = "success") {
  store::AuditEvent e;
  e.at = now;
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.target = std::move(target);
  e.source = std::move(source);
  e.outcome = std::move(outcome);
  e.details = DumpJson(details.is_null() ? Json::object() : details);
  E2EID_TRY(id, tx.AppendAudit(e));
  (void)id;
  return Ok();
}

// Maps a store kNotFound to a client-facing kNotFound naming the resource; passes others through.
Error NotFoundAs(Error e, std::string_view what) {
  if (e.code() == ErrorCode::kNotFound)
    return Error::NotFound(std::string(what) + " does not exist");
  return e;
}

// The validated "contact" array of a payload (an empty array when absent).
Result<Json> ParseContacts(const Json& payload, size_t max_contacts) {
  auto it = payload.find("contact");
  if (it == payload.end() || it->is_null()) return Json::array();
  if (!it->is_array()) return Fail(Error::Malformed("'contact' must be an array of strings"));
  if (it->size() > max_contacts) {
    return Fail(
        Error::Malformed("'contact' has more than " + std::to_string(max_contacts) + " entries"));
  }
  Json out = Json::array();
  for (const auto& c : *it) {
    if (!c.is_string()) return Fail(Error::Malformed("'contact' must be an array of strings"));
    const std::string& text = c.get_ref<const std::string&>();
    E2EID_CHECK_OK(CheckContact(text));
    out.push_back(text);
  }
  return out;
}

Result<std::optional<TimePoint>> OptionalTime(const Json& payload, std::string_view key) {
  E2EID_TRY(text, GetOptionalString(payload, key, "newOrder payload"));
  if (!text) return std::optional<TimePoint>();
  auto t = ParseRfc3339(*text);
  if (!t) {
    return Fail(Error::Malformed("'" + std::string(key) +
                                 "' is not an RFC 3339 time: " + t.error().detail()));
  }
  return std::optional<TimePoint>(*t);
}

// An administrator's decisions about a person or device override any token: a blocked or
// removed device and a disabled user get no new certificate.
Status CheckWireEnrolmentAllowed(Transaction& tx, const WireIdentity& identity) {
  auto device = tx.GetDevice(identity.client.Uri());
  if (device) {
    if (device->status != store::DeviceStatus::kActive) {
      std::string detail = "device " + identity.client.Uri() + " is " +
                           std::string(store::ToString(device->status)) +
                           " by an administrator and cannot enrol";
      if (device->blocked_reason && !device->blocked_reason->empty()) {
        detail += " (" + *device->blocked_reason + ")";
      }
      return Fail(Error::Unauthorized(std::move(detail)));
    }
  } else if (device.error().code() != ErrorCode::kNotFound) {
    return Fail(std::move(device.error()));
  }
  auto user = tx.GetUser(identity.client.user_id);
  if (user) {
    if (user->status != store::UserStatus::kActive) {
      return Fail(Error::Unauthorized("user " + identity.handle_uri +
                                      " is disabled by an administrator and cannot enrol"));
    }
  } else if (user.error().code() != ErrorCode::kNotFound) {
    return Fail(std::move(user.error()));
  }
  return Ok();
}

// The user and the device of an issued identity certificate, created or refreshed.
Status RecordWireEnrolment(Transaction& tx, const WireIdentity& identity,
                           const std::string& key_thumbprint, TimePoint now) {
  auto user = tx.GetUser(identity.client.user_id);
  if (user) {
    user->handle = identity.handle;
    user->display_name = identity.display_name;
    user->last_seen = now;
    E2EID_CHECK_OK(tx.UpdateUser(*user));
  } else if (user.error().code() == ErrorCode::kNotFound) {
    store::User u;
    u.id = identity.client.user_id;
    u.handle = identity.handle;
    u.display_name = identity.display_name;
    u.first_seen = u.last_seen = now;
    E2EID_CHECK_OK(tx.InsertUser(u));
  } else {
    return Fail(std::move(user.error()));
  }
  auto device = tx.GetDevice(identity.client.Uri());
  if (device) {
    device->display_name = identity.display_name;
    device->handle = identity.handle;
    device->key_thumbprint = key_thumbprint;
    device->last_seen = now;
    return tx.UpdateDevice(*device);
  }
  if (device.error().code() != ErrorCode::kNotFound) return Fail(std::move(device.error()));
  store::Device d;
  d.id = identity.client.Uri();
  d.user_id = identity.client.user_id;
  d.display_name = identity.display_name;
  d.handle = identity.handle;
  d.key_thumbprint = key_thumbprint;
  d.first_seen = d.last_seen = now;
  return tx.InsertDevice(d);
}

}  // namespace

struct Engine::Authenticated {
  crypto::Jws jws;
  std::string url;
  std::optional<store::Account> account;     // kid requests
  std::optional<crypto::PublicKey> jwk_key;  // jwk requests
  std::string jwk_thumbprint;                // jwk requests
  Json payload;                              // a JSON object, or null for POST-as-GET
  bool post_as_get = false;
};

Engine::Engine(EngineOptions options, Deps deps)
    : options_(std::move(options)),
      store_(deps.store),
      issuer_(deps.issuer),
      clock_(deps.clock),
      random_(deps.random),
      jobs_(std::move(deps.jobs)),
      validators_(std::move(deps.validators)),
      render_problem_(std::move(deps.render_problem)),
      own_revocations_(
          deps.revocations != nullptr
              ? nullptr
              : std::make_unique<revocation::RevocationService>(deps.store, deps.clock)),
      revocations_(deps.revocations != nullptr ? *deps.revocations : *own_revocations_) {}

// ---- plumbing -----------------------------------------------------------------------------------

Result<std::string> Engine::NewId(size_t bytes) const {
  return crypto::RandomToken(random_, bytes);
}

Result<std::string> Engine::NewNonce() const {
  E2EID_TRY(value, crypto::RandomToken(random_, 16));
  const TimePoint now = clock_.Now();
  // Expired nonces are purged now and then, inside the insert's transaction.
  const bool purge = nonces_issued_.fetch_add(1) % 1000 == 999;
  E2EID_CHECK_OK(store_.IssueNonce({value, now + options_.nonce_lifetime}));
  if (purge) {
    // Expired nonces left in the nonces table (a store without its own nonce keeping, or the
    // device authority's) are purged now and then; a purge lost to a power loss is redone.
    E2EID_CHECK_OK(store_.InTransactionRelaxed([&](Transaction& tx) -> Status {
      E2EID_TRY(purged, tx.PurgeExpiredNonces(now));
      (void)purged;
      return Ok();
    }));
  }
  return value;
}

Result<std::shared_ptr<const crypto::PublicKey>> Engine::AccountKey(
    const store::Account& account) const {
  {
    std::lock_guard lock(key_cache_mu_);
    auto it = key_cache_.find(account.id);
    if (it != key_cache_.end() && it->second.jwk == account.jwk) return it->second.key;
  }
  E2EID_TRY(jwk, ParseJson(account.jwk, "stored account key"));
  auto k = crypto::PublicKeyFromJwk(jwk);
  if (!k) {
    return Fail(Error::Internal("account " + account.id +
                                " has an unusable stored key: " + k.error().detail()));
  }
  auto key = std::make_shared<const crypto::PublicKey>(std::move(*k));
  std::lock_guard lock(key_cache_mu_);
  if (key_cache_.size() >= kKeyCacheEntries) key_cache_.erase(key_cache_.begin());
  key_cache_.insert_or_assign(account.id, CachedKey{account.jwk, key});
  return key;
}

AcmeReply Engine::Finish(Result<HttpResponse> result, bool nonce, HttpHeaders headers) const {
  AcmeReply reply{std::move(result), std::move(headers)};
  reply.headers.emplace_back("Link", "<" + Url(kDirectoryPath) + ">;rel=\"index\"");
  if (nonce) {
    auto n = NewNonce();
    if (n) {
      reply.headers.emplace_back("Replay-Nonce", std::move(*n));
    } else {
      LogError("cannot issue a nonce", {{"error", n.error().ToString()}});
    }
  }
  return reply;
}

std::string Engine::ErrorJsonText(const Error& error) const {
  if (!render_problem_) return DumpJson(Json{{"detail", "validation failed"}});
  return DumpJson(render_problem_(error));
}

Result<Engine::Authenticated> Engine::Authenticate(const HttpRequest& request, KeyMode key_mode,
                                                   PayloadMode payload_mode) const {
  if (options_.base_url.empty()) return Fail(Error::Internal("the ACME engine has no base URL"));
  const auto content_type = request.Header("Content-Type");
  if (!content_type || !MediaTypeIs(*content_type, kJoseContentType)) {
    return Fail(
        ErrorCode::kUnsupportedMediaType,
        "Content-Type must be application/jose+json, got '" + content_type.value_or("") + "'");
  }
  if (request.body.size() > options_.max_request_bytes) {
    return Fail(ErrorCode::kPayloadTooLarge,
                "request body has " + std::to_string(request.body.size()) + " bytes; at most " +
                    std::to_string(options_.max_request_bytes) + " are accepted");
  }
  Authenticated auth;
  E2EID_TRY(jws, crypto::ParseFlattenedJws(request.body));
  auth.jws = std::move(jws);
  const Json& header = auth.jws.header;
  E2EID_TRY(url, GetString(header, "url", kHeaderWhat));
  auth.url = std::move(url);
  if (!header.contains("nonce")) {
    return Fail(Error::BadNonce("JWS protected header has no 'nonce'"));
  }
  E2EID_TRY(nonce, GetString(header, "nonce", kHeaderWhat));
  if (nonce.empty()) return Fail(Error::BadNonce("JWS 'nonce' is empty"));

  const bool has_jwk = header.contains("jwk");
  const bool has_kid = header.contains("kid");
  if (has_jwk && has_kid) {
    return Fail(
        Error::Malformed("JWS protected header must have exactly one of 'jwk' and 'kid', "
                         "it has both"));
  }
  if (!has_jwk && !has_kid) {
    return Fail(Error::Malformed(
        "JWS protected header must have exactly one of 'jwk' and 'kid', it has neither"));
  }
  if (has_jwk && key_mode == KeyMode::kKid) {
    return Fail(Error::Malformed(
        "this request must name its account with 'kid' (an account URL), not carry a 'jwk'"));
  }
  if (has_kid && key_mode == KeyMode::kJwk) {
    return Fail(Error::Malformed("this request must carry its key in 'jwk', not a 'kid'"));
  }

  std::optional<crypto::PublicKey> jwk_key;
  std::shared_ptr<const crypto::PublicKey> account_key;
  if (has_jwk) {
    const Json& jwk = header.at("jwk");
    if (!jwk.is_object()) return Fail(Error::Malformed("JWS 'jwk' must be a JSON object"));
    E2EID_TRY(k, crypto::PublicKeyFromJwk(jwk));
    E2EID_TRY(thumbprint, crypto::JwkThumbprint(k));
    auth.jwk_thumbprint = std::move(thumbprint);
    jwk_key.emplace(std::move(k));
  } else {
    E2EID_TRY(kid, GetString(header, "kid", kHeaderWhat));
    const std::string prefix = Url(kAccountPathPrefix);
    if (!kid.starts_with(prefix) || kid.size() == prefix.size() ||
        kid.find('/', prefix.size()) != std::string::npos) {
      return Fail(Error::Malformed("JWS 'kid' is not an account URL of this server"));
    }
    const std::string id = kid.substr(prefix.size());
    store::Account account;
    auto found = store_.ReadOnly([&](Transaction& tx) -> Status {
      E2EID_TRY(a, tx.GetAccount(id));
      account = std::move(a);
      return Ok();
    });
    if (!found) {
      if (found.error().code() == ErrorCode::kNotFound) {
        return Fail(ErrorCode::kAccountDoesNotExist, "no account exists at the JWS 'kid' URL");
      }
      return Fail(std::move(found.error()));
    }
    E2EID_TRY(k, AccountKey(account));
    account_key = std::move(k);
    auth.account = std::move(account);
  }

  E2EID_CHECK_OK(crypto::VerifyJws(auth.jws, jwk_key ? *jwk_key : *account_key));

  const TimePoint now = clock_.Now();
  E2EID_CHECK_OK(store_.UseNonce(nonce, now));

  const std::string expected_url = options_.base_url + request.target;
  if (auth.url != expected_url) {
    return Fail(Error::Unauthorized("JWS 'url' '" + auth.url +
                                    "' does not match the request URL '" + expected_url + "'"));
  }
  if (auth.account && auth.account->status != AccountStatus::kValid) {
    return Fail(Error::Unauthorized("the account is " +
                                    std::string(store::ToString(auth.account->status)) +
                                    " and can no longer be used"));
  }

  if (auth.jws.payload_b64.empty()) {
    if (payload_mode == PayloadMode::kJsonObject) {
      return Fail(
          Error::Malformed("this request needs a JSON object payload (POST-as-GET is not "
                           "allowed here)"));
    }
    auth.post_as_get = true;
  } else {
    if (payload_mode == PayloadMode::kPostAsGet) {
      return Fail(
          Error::Malformed("this resource is read with POST-as-GET: the JWS payload must be "
                           "empty"));
    }
    E2EID_TRY(payload, ParseJson(AsString(auth.jws.payload), "JWS payload"));
    if (!payload.is_object()) return Fail(Error::Malformed("JWS payload must be a JSON object"));
    auth.payload = std::move(payload);
  }
  if (has_jwk) auth.jwk_key.emplace(std::move(*jwk_key));
  return auth;
}

// ---- JSON views ---------------------------------------------------------------------------------

Json Engine::AccountJson(const store::Account& account) const {
  Json contacts = Json::array();
  if (auto parsed = ParseJson(account.contacts, "stored contacts"); parsed && parsed->is_array()) {
    contacts = std::move(*parsed);
  }
  return {{"status", store::ToString(account.status)},
          {"contact", std::move(contacts)},
          {"orders", Url(kAccountPathPrefix) + account.id + "/orders"}};
}

Json Engine::ChallengeJson(const store::Challenge& c) const {
  Json j = {{"type", c.type},
            {"url", Url(kChallengePathPrefix) + c.id},
            {"status", store::ToString(c.status)},
            {"token", c.token}};
  if (c.validated_at) j["validated"] = FormatRfc3339(*c.validated_at);
  if (c.target) j["target"] = *c.target;
  if (c.error) {
    if (auto e = ParseJson(*c.error, "stored challenge error")) j["error"] = std::move(*e);
  }
  return j;
}

Result<Json> Engine::AuthorizationJson(Transaction& tx, const store::Authorization& a) const {
  E2EID_TRY(challenges, tx.ListChallengesForAuthorization(a.id));
  Json list = Json::array();
  for (const auto& c : challenges) list.push_back(ChallengeJson(c));
  Json j = {{"identifier", IdentifierToJson({a.identifier_type, a.identifier_value})},
            {"status", store::ToString(EffectiveStatus(a, clock_.Now()))},
            {"expires", FormatRfc3339(a.expires)},
            {"challenges", std::move(list)}};
  if (a.wildcard) j["wildcard"] = true;
  return j;
}

Result<Json> Engine::OrderJson(Transaction& tx, const store::Order& o) const {
  E2EID_TRY(authzs, tx.ListAuthorizationsForOrder(o.id));
  Json urls = Json::array();
  for (const auto& a : authzs) urls.push_back(Url(kAuthzPathPrefix) + a.id);
  E2EID_TRY(identifiers, ParseJson(o.identifiers, "stored order identifiers"));
  const OrderStatus status = EffectiveStatus(o, authzs, clock_.Now());
  Json j = {{"status", store::ToString(status)},
            {"expires", FormatRfc3339(o.expires)},
            {"identifiers", std::move(identifiers)},
            {"authorizations", std::move(urls)},
            {"finalize", Url(kOrderPathPrefix) + o.id + "/finalize"}};
  if (o.not_before) j["notBefore"] = FormatRfc3339(*o.not_before);
  if (o.not_after) j["notAfter"] = FormatRfc3339(*o.not_after);
  if (o.replaces) j["replaces"] = *o.replaces;
  if (status == OrderStatus::kValid && o.certificate_serial) {
    j["certificate"] = Url(kCertificatePathPrefix) + *o.certificate_serial;
  }
  if (o.error) {
    if (auto e = ParseJson(*o.error, "stored order error")) j["error"] = std::move(*e);
  }
  return j;
}

// ---- GET resources ------------------------------------------------------------------------------

AcmeReply Engine::HandleDirectory(const HttpRequest&) const {
  Json meta = {{"externalAccountRequired", false}};
  if (!options_.terms_of_service_url.empty())
    meta["termsOfService"] = options_.terms_of_service_url;
  if (!options_.website_url.empty()) meta["website"] = options_.website_url;
  if (!options_.caa_identities.empty()) meta["caaIdentities"] = options_.caa_identities;
  Json dir = {{"newNonce", Url(kNewNoncePath)},   {"newAccount", Url(kNewAccountPath)},
              {"newOrder", Url(kNewOrderPath)},   {"revokeCert", Url(kRevokeCertPath)},
              {"keyChange", Url(kKeyChangePath)}, {"renewalInfo", Url(kRenewalInfoPath)},
              {"meta", std::move(meta)}};
  HttpResponse r = JsonResponse(200, dir);
  r.SetHeader("Cache-Control", "public, max-age=0, no-cache");
  return Finish(std::move(r), false);
}

AcmeReply Engine::HandleNewNonce(const HttpRequest& request) const {
  auto nonce = NewNonce();
  if (!nonce) return Finish(Fail(std::move(nonce.error())), false);
  HttpResponse r = HttpResponse::Empty(request.method == "HEAD" ? 200 : 204);
  r.SetHeader("Cache-Control", "no-store");
  AcmeReply reply = Finish(std::move(r), false);
  reply.headers.emplace_back("Replay-Nonce", std::move(*nonce));
  return reply;
}

AcmeReply Engine::HandleRenewalInfo(const HttpRequest&, std::string_view cert_id) const {
  return Finish(DoRenewalInfo(cert_id), false);
}

Result<HttpResponse> Engine::DoRenewalInfo(std::string_view cert_id) const {
  E2EID_TRY(id, ParseAriCertId(cert_id));
  store::Certificate cert;
  E2EID_CHECK_OK(store_.ReadOnly([&](Transaction& tx) -> Status {
    auto c = tx.GetCertificate(id.serial_hex);
    if (!c) return Fail(NotFoundAs(std::move(c.error()), "the certificate"));
    cert = std::move(*c);
    return Ok();
  }));
  E2EID_TRY(x509, ca::CertificateFromDer(cert.der));
  auto aki = AuthorityKeyIdOf(x509.get());
  if (!aki || *aki != id.key_identifier) {
    return Fail(Error::NotFound("the certificate does not exist (unknown issuer key identifier)"));
  }
  const RenewalWindow window =
      SuggestedRenewalWindow(cert.not_before, cert.not_after,
                             cert.status == store::CertificateStatus::kRevoked, clock_.Now());
  HttpResponse r = JsonResponse(
      200, {{"suggestedWindow",
             {{"start", FormatRfc3339(window.start)}, {"end", FormatRfc3339(window.end)}}}});
  r.SetHeader("Retry-After", std::to_string(options_.renewal_info_retry_after.count()));
  return r;
}

// ---- accounts -----------------------------------------------------------------------------------

AcmeReply Engine::HandleNewAccount(const HttpRequest& request) const {
  return Finish(DoNewAccount(request), true);
}

Result<HttpResponse> Engine::DoNewAccount(const HttpRequest& request) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kJwk, PayloadMode::kJsonObject));
  const Json& p = auth.payload;
  E2EID_TRY(only_existing, GetOptionalBool(p, "onlyReturnExisting", "newAccount payload"));
  E2EID_TRY(agreed, GetOptionalBool(p, "termsOfServiceAgreed", "newAccount payload"));
  E2EID_TRY(contacts, ParseContacts(p, options_.max_contacts));
  if (!only_existing.value_or(false) && !options_.terms_of_service_url.empty() &&
      !agreed.value_or(false)) {
    return Fail(Error::Malformed("'termsOfServiceAgreed' must be true: the terms of service at " +
                                 options_.terms_of_service_url + " must be agreed to"));
  }
  E2EID_TRY(jwk, crypto::PublicKeyToJwk(*auth.jwk_key));
  E2EID_TRY(new_id, NewId());
  const TimePoint now = clock_.Now();
  store::Account account;
  bool created = false;
  E2EID_CHECK_OK(store_.InTransaction([&](Transaction& tx) -> Status {
    auto existing = tx.GetAccountByThumbprint(auth.jwk_thumbprint);
    if (existing) {
      account = std::move(*existing);
      return Ok();
    }
    if (existing.error().code() != ErrorCode::kNotFound) return Fail(std::move(existing.error()));
    if (only_existing.value_or(false)) {
      return Fail(ErrorCode::kAccountDoesNotExist, "no account exists for this key");
    }
    account.id = new_id;
    account.key_thumbprint = auth.jwk_thumbprint;
    account.jwk = DumpJson(jwk);
    account.status = AccountStatus::kValid;
    account.contacts = DumpJson(contacts);
    account.created_at = now;
    E2EID_CHECK_OK(tx.InsertAccount(account));
    E2EID_CHECK_OK(Audit(tx, now, "acme:" + account.id, "account.create", account.id,
                         request.remote_address, {{"contacts", contacts}}));
    created = true;
    return Ok();
  }));
  if (!created && account.status != AccountStatus::kValid) {
    return Fail(Error::Unauthorized("the account of this key is " +
                                    std::string(store::ToString(account.status))));
  }
  HttpResponse r = JsonResponse(created ? 201 : 200, AccountJson(account));
  r.SetHeader("Location", Url(kAccountPathPrefix) + account.id);
  if (created) LogInfo("acme account created", {{"account", account.id}});
  return r;
}

AcmeReply Engine::HandleAccount(const HttpRequest& request, std::string_view account_id) const {
  return Finish(DoAccount(request, account_id), true);
}

Result<HttpResponse> Engine::DoAccount(const HttpRequest& request,
                                       std::string_view account_id) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kKid, PayloadMode::kEither));
  if (auth.account->id != account_id) {
    return Fail(Error::Unauthorized("the JWS 'kid' names another account than the request URL"));
  }
  if (auth.post_as_get) return JsonResponse(200, AccountJson(*auth.account));

  const Json& p = auth.payload;
  E2EID_TRY(status, GetOptionalString(p, "status", "account update payload"));
  if (status && *status != "deactivated") {
    return Fail(Error::Malformed("account 'status' can only be set to \"deactivated\", not \"" +
                                 *status + "\""));
  }
  const bool update_contacts = p.contains("contact");
  E2EID_TRY(contacts, ParseContacts(p, options_.max_contacts));
  const TimePoint now = clock_.Now();
  store::Account account;
  E2EID_CHECK_OK(store_.InTransaction([&](Transaction& tx) -> Status {
    E2EID_TRY(a, tx.GetAccount(account_id));
    if (a.status != AccountStatus::kValid) {
      return Fail(Error::Unauthorized("the account is " + std::string(store::ToString(a.status))));
    }
    if (update_contacts) a.contacts = DumpJson(contacts);
    if (status) a.status = AccountStatus::kDeactivated;
    if (update_contacts || status) {
      E2EID_CHECK_OK(tx.UpdateAccount(a));
      E2EID_CHECK_OK(Audit(tx, now, "acme:" + a.id,
                           status ? "account.deactivate" : "account.update", a.id,
                           request.remote_address, {{"contacts", contacts}}));
    }
    account = std::move(a);
    return Ok();
  }));
  return JsonResponse(200, AccountJson(account));
}

AcmeReply Engine::HandleAccountOrders(const HttpRequest& request,
                                      std::string_view account_id) const {
  return Finish(DoAccountOrders(request, account_id), true);
}

Result<HttpResponse> Engine::DoAccountOrders(const HttpRequest& request,
                                             std::string_view account_id) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kKid, PayloadMode::kPostAsGet));
  if (auth.account->id != account_id) {
    return Fail(Error::Unauthorized("the JWS 'kid' names another account than the request URL"));
  }
  store::PageRequest page;
  page.limit = options_.orders_page_size;
  if (!request.query.empty()) {
    if (!request.query.starts_with("cursor=")) {
      return Fail(Error::Malformed("the only query parameter of the orders list is 'cursor'"));
    }
    page.after = request.query.substr(7);
  }
  store::Page<store::Order> orders;
  E2EID_CHECK_OK(store_.ReadOnly([&](Transaction& tx) -> Status {
    auto listed = tx.ListOrdersForAccount(account_id, page);
    if (!listed) {
      if (listed.error().code() == ErrorCode::kInvalidArgument) {
        return Fail(Error::Malformed("invalid orders list cursor"));
      }
      return Fail(std::move(listed.error()));
    }
    orders = std::move(*listed);
    return Ok();
  }));
  Json urls = Json::array();
  for (const auto& o : orders.items) urls.push_back(Url(kOrderPathPrefix) + o.id);
  HttpResponse r = JsonResponse(200, {{"orders", std::move(urls)}});
  if (!orders.next.empty()) {
    r.AddHeader("Link", "<" + Url(kAccountPathPrefix) + std::string(account_id) +
                            "/orders?cursor=" + orders.next + ">;rel=\"next\"");
  }
  return r;
}

// ---- orders -------------------------------------------------------------------------------------

AcmeReply Engine::HandleNewOrder(const HttpRequest& request) const {
  return Finish(DoNewOrder(request), true);
}

Result<HttpResponse> Engine::DoNewOrder(const HttpRequest& request) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kKid, PayloadMode::kJsonObject));
  const store::Account& account = *auth.account;
  const Json& p = auth.payload;
  if (!p.contains("identifiers")) {
    return Fail(Error::Malformed("newOrder payload: member 'identifiers' is missing"));
  }
  E2EID_TRY(requested, ParseIdentifiers(p.at("identifiers")));
  if (requested.empty()) return Fail(Error::Malformed("newOrder 'identifiers' is empty"));
  if (requested.size() > options_.identifiers.max_identifiers) {
    return Fail(Error::RejectedIdentifier("an order may have at most " +
                                          std::to_string(options_.identifiers.max_identifiers) +
                                          " identifiers"));
  }

  // Policy per identifier; every refusal becomes a subproblem.
  std::set<Identifier> unique;
  std::optional<Error> refused;
  int refusals = 0;
  for (const auto& id : requested) {
    Result<std::string> value = Fail(ErrorCode::kUnsupportedIdentifier,
                                     "identifier type '" + id.type + "' is not supported");
    if (id.type == "dns" && options_.challenge_types.contains("dns")) {
      value = CheckDnsIdentifier(id.value, options_.identifiers);
    } else if ((id.type == kWireUserType || id.type == kWireDeviceType) && options_.wire &&
               options_.challenge_types.contains(id.type)) {
      auto parsed = ParseWireIdentifier(id.type, id.value, options_.wire->domain);
      if (parsed) {
        value = id.value;  // kept verbatim: Wire clients compare the text they sent
      } else {
        value = Fail(std::move(parsed.error()));
      }
    }
    if (value) {
      unique.insert({id.type, std::move(*value)});
      continue;
    }
    ++refusals;
    Error::Subproblem sub{value.error().code(), value.error().detail(), id.type, id.value};
    if (!refused) refused = Error(value.error().code(), value.error().detail());
    refused->WithSubproblem(std::move(sub));
  }
  if (refused) {
    if (refusals > 1) {
      Error e(refused->code(),
              std::to_string(refusals) + " identifiers were refused (see subproblems)");
      for (const auto& s : refused->subproblems()) e.WithSubproblem(s);
      return Fail(std::move(e));
    }
    return Fail(std::move(*refused));
  }
  const std::vector<Identifier> identifiers(unique.begin(), unique.end());

  // Wire identity orders: exactly one user and one device identifier, describing one person.
  std::optional<WireIdentity> wire_identity;
  {
    const Identifier* user = nullptr;
    const Identifier* device = nullptr;
    size_t wire_count = 0;
    for (const auto& id : identifiers) {
      if (id.type == kWireUserType) user = &id;
      if (id.type == kWireDeviceType) device = &id;
      if (id.type == kWireUserType || id.type == kWireDeviceType) ++wire_count;
    }
    if (wire_count > 0) {
      if (identifiers.size() != 2 || user == nullptr || device == nullptr) {
        return Fail(Error::RejectedIdentifier(
            "an identity order must have exactly two identifiers: one wireapp-user and one "
            "wireapp-device"));
      }
      E2EID_TRY(u, ParseWireIdentifier(user->type, user->value, options_.wire->domain));
      E2EID_TRY(d, ParseWireIdentifier(device->type, device->value, options_.wire->domain));
      E2EID_TRY(both, MatchWireIdentifiers(u, d));
      wire_identity = std::move(both);
    }
  }

  // Challenge types on offer for each identifier type.
  std::map<std::string, std::vector<std::string>> offered;
  for (const auto& id : identifiers) {
    if (offered.contains(id.type)) continue;
    std::vector<std::string> types;
    for (const auto& t : options_.challenge_types.at(id.type)) {
      if (validators_.contains(t)) types.push_back(t);
    }
    if (types.empty()) {
      return Fail(ErrorCode::kUnsupportedIdentifier,
                  "this server has no validation method for identifiers of type '" + id.type + "'");
    }
    offered[id.type] = std::move(types);
  }

  const TimePoint now = clock_.Now();
  E2EID_TRY(not_before, OptionalTime(p, "notBefore"));
  E2EID_TRY(not_after, OptionalTime(p, "notAfter"));
  if (not_before && not_after && *not_after <= *not_before) {
    return Fail(Error::Malformed("'notAfter' must be later than 'notBefore'"));
  }
  if (not_after && *not_after <= now) {
    return Fail(Error::Malformed("'notAfter' is in the past"));
  }
  E2EID_TRY(replaces_text, GetOptionalString(p, "replaces", "newOrder payload"));
  std::optional<AriCertId> replaces;
  if (replaces_text) {
    auto parsed = ParseAriCertId(*replaces_text);
    if (!parsed) return Fail(std::move(parsed.error()).Context("'replaces'"));
    replaces = std::move(*parsed);
  }

  E2EID_TRY(order_id, NewId());
  store::Order order;
  order.id = order_id;
  order.account_id = account.id;
  order.status = OrderStatus::kPending;
  order.identifiers = DumpJson(IdentifiersToJson(identifiers));
  order.not_before = not_before;
  order.not_after = not_after;
  order.expires = now + options_.order_lifetime;
  order.created_at = order.updated_at = now;
  if (replaces) order.replaces = replaces->canonical;

  // Ids and tokens are drawn before the transaction (the random source may block briefly).
  struct NewAuthz {
    store::Authorization authz;
    std::vector<store::Challenge> challenges;
  };
  std::vector<NewAuthz> authzs;
  for (const auto& id : identifiers) {
    NewAuthz n;
    E2EID_TRY(authz_id, NewId());
    n.authz = {authz_id,
               order.id,
               account.id,
               id.type,
               id.value,
               AuthorizationStatus::kPending,
               now + options_.authorization_lifetime,
               false};
    for (const auto& type : offered[id.type]) {
      E2EID_TRY(challenge_id, NewId());
      E2EID_TRY(token, NewId(32));
      store::Challenge c;
      c.id = challenge_id;
      c.authz_id = authz_id;
      c.type = type;
      c.token = token;
      if (type == kWireOidcChallenge && options_.wire) c.target = options_.wire->oidc_target;
      if (type == kWireDpopChallenge && options_.wire && wire_identity) {
        std::string target = options_.wire->dpop_target_template;
        const size_t at = target.find("{device_id}");
        if (at != std::string::npos) {
          target.replace(at, std::string_view("{device_id}").size(),
                         wire_identity->client.device_id);
        }
        c.target = std::move(target);
      }
      n.challenges.push_back(std::move(c));
    }
    authzs.push_back(std::move(n));
  }

  Json body;
  // Relaxed commit (store.h): a lost new order is one the client asks for again.
  E2EID_CHECK_OK(store_.InTransactionRelaxed([&](Transaction& tx) -> Status {
    if (wire_identity) E2EID_CHECK_OK(CheckWireEnrolmentAllowed(tx, *wire_identity));
    if (replaces) {
      auto cert = tx.GetCertificate(replaces->serial_hex);
      if (!cert) {
        if (cert.error().code() == ErrorCode::kNotFound) {
          return Fail(Error::Malformed("'replaces' names a certificate this CA did not issue"));
        }
        return Fail(std::move(cert.error()));
      }
      E2EID_TRY(x509, ca::CertificateFromDer(cert->der));
      auto aki = AuthorityKeyIdOf(x509.get());
      if (!aki || *aki != replaces->key_identifier) {
        return Fail(Error::Malformed("'replaces' names a certificate this CA did not issue"));
      }
      if (!cert->account_id || *cert->account_id != account.id) {
        return Fail(Error::Unauthorized(
            "'replaces' names a certificate that was not issued to this account"));
      }
      E2EID_TRY(replacing, tx.ListOrdersReplacing(replaces->canonical));
      for (const auto& o : replacing) {
        E2EID_TRY(their_authzs, tx.ListAuthorizationsForOrder(o.id));
        if (EffectiveStatus(o, their_authzs, now) != OrderStatus::kInvalid) {
          return Fail(ErrorCode::kAlreadyReplaced,
                      "the certificate named in 'replaces' is already being replaced by order " +
                          Url(kOrderPathPrefix) + o.id);
        }
      }
      bool overlap = false;
      if (cert->order_id) {
        E2EID_TRY(old_order, tx.GetOrder(*cert->order_id));
        E2EID_TRY(old_json, ParseJson(old_order.identifiers, "stored order identifiers"));
        E2EID_TRY(old_ids, ParseIdentifiers(old_json));
        for (const auto& id : old_ids) overlap = overlap || unique.contains(id);
      }
      if (!overlap) {
        return Fail(Error::Malformed(
            "'replaces' names a certificate that shares no identifier with this order"));
      }
    }
    E2EID_CHECK_OK(tx.InsertOrder(order));
    for (const auto& n : authzs) {
      E2EID_CHECK_OK(tx.InsertAuthorization(n.authz));
      for (const auto& c : n.challenges) E2EID_CHECK_OK(tx.InsertChallenge(c));
    }
    E2EID_TRY(j, OrderJson(tx, order));
    body = std::move(j);
    return Ok();
  }));
  HttpResponse r = JsonResponse(201, body);
  r.SetHeader("Location", Url(kOrderPathPrefix) + order.id);
  return r;
}

AcmeReply Engine::HandleOrder(const HttpRequest& request, std::string_view order_id) const {
  return Finish(DoOrder(request, order_id), true);
}

Result<HttpResponse> Engine::DoOrder(const HttpRequest& request, std::string_view order_id) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kKid, PayloadMode::kPostAsGet));
  Json body;
  E2EID_CHECK_OK(store_.ReadOnly([&](Transaction& tx) -> Status {
    auto order = tx.GetOrder(order_id);
    if (!order) return Fail(NotFoundAs(std::move(order.error()), "the order"));
    if (order->account_id != auth.account->id) {
      return Fail(Error::Unauthorized("the order belongs to another account"));
    }
    E2EID_TRY(j, OrderJson(tx, *order));
    body = std::move(j);
    return Ok();
  }));
  HttpResponse r = JsonResponse(200, body);
  if (body.value("status", "") == "processing") r.SetHeader("Retry-After", "1");
  return r;
}

AcmeReply Engine::HandleFinalize(const HttpRequest& request, std::string_view order_id) const {
  return Finish(DoFinalize(request, order_id), true);
}

Result<HttpResponse> Engine::DoFinalize(const HttpRequest& request,
                                        std::string_view order_id) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kKid, PayloadMode::kJsonObject));
  const store::Account& account = *auth.account;
  E2EID_TRY(csr_b64, GetString(auth.payload, "csr", "finalize payload"));

  // 1. The order must be this account's and ready.
  store::Order order;
  E2EID_CHECK_OK(store_.ReadOnly([&](Transaction& tx) -> Status {
    auto o = tx.GetOrder(order_id);
    if (!o) return Fail(NotFoundAs(std::move(o.error()), "the order"));
    if (o->account_id != account.id) {
      return Fail(Error::Unauthorized("the order belongs to another account"));
    }
    E2EID_TRY(authzs, tx.ListAuthorizationsForOrder(o->id));
    const OrderStatus status = EffectiveStatus(*o, authzs, clock_.Now());
    if (status != OrderStatus::kReady) {
      return Fail(
          ErrorCode::kOrderNotReady,
          "the order is " + std::string(store::ToString(status)) + ", not ready" +
              (status == OrderStatus::kPending ? " (not all of its authorizations are valid)"
                                               : ""));
    }
    order = std::move(*o);
    return Ok();
  }));

  // 2. The CSR must ask for exactly the order's names, with an acceptable key.
  auto der = Base64UrlDecode(csr_b64);
  if (!der) {
    return Fail(Error::Malformed("finalize 'csr' is not base64url: " + der.error().detail()));
  }
  E2EID_TRY(ids_json, ParseJson(order.identifiers, "stored order identifiers"));
  E2EID_TRY(ids, ParseIdentifiers(ids_json));
  std::vector<std::string> dns_names;
  std::optional<WireIdentity> wire;
  for (const auto& id : ids) {
    if (id.type == "dns") dns_names.push_back(id.value);
  }
  for (const auto& id : ids) {
    if (id.type != kWireDeviceType) continue;
    if (!options_.wire) return Fail(Error::Internal("a Wire order without Wire configuration"));
    E2EID_TRY(w, ParseWireIdentifier(id.type, id.value, options_.wire->domain));
    wire = std::move(w);
  }
  std::optional<ParsedCsr> dns_csr;
  std::optional<crypto::PublicKey> wire_key;
  if (wire) {
    E2EID_TRY(key, CheckWireCsr(*der, *wire));
    wire_key = std::move(key);
  } else {
    E2EID_TRY(parsed, ParseCsr(*der));
    E2EID_CHECK_OK(CheckCsrNames(parsed, dns_names));
    dns_csr = std::move(parsed);
  }
  const crypto::PublicKey& csr_key = wire ? *wire_key : dns_csr->public_key;
  E2EID_TRY(csr_thumbprint, crypto::JwkThumbprint(csr_key));
  if (csr_thumbprint == account.key_thumbprint) {
    return Fail(Error::BadCsr("the CSR's key is the account key; use a separate certificate key"));
  }

  // 3. ready -> processing, by compare-and-set: only one finalize of an order gets past here.
  // Relaxed commit: the certificate is stored durably in step 5 before anything is answered.
  E2EID_CHECK_OK(store_.InTransactionRelaxed([&](Transaction& tx) -> Status {
    E2EID_TRY(o, tx.GetOrder(order.id));
    E2EID_TRY(authzs, tx.ListAuthorizationsForOrder(o.id));
    const TimePoint now = clock_.Now();
    const OrderStatus status = EffectiveStatus(o, authzs, now);
    if (status != OrderStatus::kReady) {
      return Fail(ErrorCode::kOrderNotReady,
                  "the order is " + std::string(store::ToString(status)) + ", not ready");
    }
    auto cas = tx.UpdateOrderStatus(o.id, o.status, OrderStatus::kProcessing, now);
    if (!cas && cas.error().code() == ErrorCode::kConflict) {
      return Fail(ErrorCode::kOrderNotReady, "the order is already being finalized");
    }
    return cas;
  }));

  // 4. Issue (outside any transaction: the serial registry commits its own).
  ca::LeafRequest leaf;
  leaf.public_key = &csr_key;
  if (wire) {
    leaf.subject = {{"O", wire->domain}, {"CN", wire->display_name}};
    leaf.uris = {wire->client.Uri(), wire->handle_uri};
    leaf.profile = ca::Profile::kDevice;
  } else {
    if (dns_csr->common_name && dns_csr->common_name->size() <= 64) {
      leaf.subject = {{"CN", *dns_csr->common_name}};
    }
    leaf.dns_names = dns_names;
    leaf.profile = ca::Profile::kTlsServer;
  }
  leaf.not_before = order.not_before;
  leaf.not_after = order.not_after;
  auto issued = issuer_.Issue(leaf);

  auto mark_invalid = [&](const Error& error) {
    const TimePoint now = clock_.Now();
    auto st = store_.InTransaction([&](Transaction& tx) -> Status {
      E2EID_TRY(o, tx.GetOrder(order.id));
      if (o.status != OrderStatus::kProcessing) return Ok();
      o.status = OrderStatus::kInvalid;
      o.error = ErrorJsonText(error);
      o.updated_at = now;
      return tx.UpdateOrder(o);
    });
    if (!st) {
      LogError("cannot mark a failed order invalid",
               {{"order", order.id}, {"error", st.error().ToString()}});
    }
  };
  if (!issued) {
    LogWarn("issuance failed", {{"order", order.id}, {"error", issued.error().ToString()}});
    mark_invalid(issued.error());
    return Fail(std::move(issued.error()));
  }

  // 5. Record the certificate and processing -> valid.
  store::Certificate cert;
  cert.serial = issued->serial_hex;
  cert.account_id = account.id;
  cert.order_id = order.id;
  cert.user_id = wire ? wire->client.user_id : "";
  if (wire) cert.device_id = wire->client.Uri();
  cert.spki_sha256 = issued->spki_sha256_hex;
  cert.not_before = issued->not_before;
  cert.not_after = issued->not_after;
  cert.der = issued->der;
  cert.chain_pem = issued->chain_pem;
  cert.status = store::CertificateStatus::kGood;
  cert.issuer_id = issued->issuer_key_id_hex;
  Json body;
  const TimePoint now = clock_.Now();
  cert.issued_at = now;
  auto recorded = store_.InTransaction([&](Transaction& tx) -> Status {
    if (wire) {
      // An administrator may have blocked the device while the certificate was being signed.
      E2EID_CHECK_OK(CheckWireEnrolmentAllowed(tx, *wire));
      E2EID_CHECK_OK(RecordWireEnrolment(tx, *wire, csr_thumbprint, now));
    }
    E2EID_CHECK_OK(tx.InsertCertificate(cert));
    E2EID_TRY(o, tx.GetOrder(order.id));
    if (o.status != OrderStatus::kProcessing) {
      return Fail(Error::Internal("order " + o.id + " left 'processing' during issuance"));
    }
    o.status = OrderStatus::kValid;
    o.certificate_serial = cert.serial;
    o.updated_at = now;
    if (wire) {
      o.user_id = wire->client.user_id;
      o.device_id = wire->client.Uri();
      o.display_name = wire->display_name;
      o.handle = wire->handle_uri;
      o.domain = wire->domain;
    }
    E2EID_CHECK_OK(tx.UpdateOrder(o));
    E2EID_CHECK_OK(Audit(
        tx, now, "acme:" + account.id, "certificate.issue", cert.serial, request.remote_address,
        {{"order", o.id},
         {"names", wire ? Json::array({wire->client.Uri(), wire->handle_uri}) : Json(dns_names)},
         {"not_after", FormatRfc3339(cert.not_after)}}));
    E2EID_TRY(j, OrderJson(tx, o));
    body = std::move(j);
    return Ok();
  });
  if (!recorded) {
    mark_invalid(recorded.error());
    return Fail(std::move(recorded.error()));
  }
  LogInfo("certificate issued",
          {{"serial", cert.serial}, {"order", order.id}, {"account", account.id}});
  HttpResponse r = JsonResponse(200, body);
  r.SetHeader("Location", Url(kOrderPathPrefix) + order.id);
  return r;
}

// ---- authorizations and challenges --------------------------------------------------------------

AcmeReply Engine::HandleAuthorization(const HttpRequest& request, std::string_view authz_id) const {
  return Finish(DoAuthorization(request, authz_id), true);
}

Result<HttpResponse> Engine::DoAuthorization(const HttpRequest& request,
                                             std::string_view authz_id) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kKid, PayloadMode::kEither));
  const std::string& account_id = auth.account->id;
  auto load = [&](Transaction& tx) -> Result<store::Authorization> {
    auto a = tx.GetAuthorization(authz_id);
    if (!a) return Fail(NotFoundAs(std::move(a.error()), "the authorization"));
    if (a->account_id != account_id) {
      return Fail(Error::Unauthorized("the authorization belongs to another account"));
    }
    return a;
  };
  Json body;
  if (auth.post_as_get) {
    E2EID_CHECK_OK(store_.ReadOnly([&](Transaction& tx) -> Status {
      E2EID_TRY(a, load(tx));
      E2EID_TRY(j, AuthorizationJson(tx, a));
      body = std::move(j);
      return Ok();
    }));
    return JsonResponse(200, body);
  }
  E2EID_TRY(status, GetOptionalString(auth.payload, "status", "authorization update payload"));
  if (!status || *status != "deactivated") {
    return Fail(Error::Malformed("an authorization update must be {\"status\": \"deactivated\"}"));
  }
  const TimePoint now = clock_.Now();
  E2EID_CHECK_OK(store_.InTransaction([&](Transaction& tx) -> Status {
    E2EID_TRY(a, load(tx));
    const AuthorizationStatus effective = EffectiveStatus(a, now);
    if (effective != AuthorizationStatus::kPending && effective != AuthorizationStatus::kValid) {
      return Fail(Error::Malformed("the authorization is " +
                                   std::string(store::ToString(effective)) +
                                   "; only pending or valid authorizations can be deactivated"));
    }
    E2EID_CHECK_OK(tx.UpdateAuthorizationStatus(a.id, a.status, AuthorizationStatus::kDeactivated));
    a.status = AuthorizationStatus::kDeactivated;
    E2EID_TRY(o, tx.GetOrder(a.order_id));
    if (o.status == OrderStatus::kPending || o.status == OrderStatus::kReady) {
      E2EID_CHECK_OK(tx.UpdateOrderStatus(o.id, o.status, OrderStatus::kInvalid, now));
    }
    E2EID_CHECK_OK(Audit(tx, now, "acme:" + account_id, "authorization.deactivate", a.id,
                         request.remote_address, {{"order", a.order_id}}));
    E2EID_TRY(j, AuthorizationJson(tx, a));
    body = std::move(j);
    return Ok();
  }));
  return JsonResponse(200, body);
}

AcmeReply Engine::HandleChallenge(const HttpRequest& request, std::string_view challenge_id) const {
  HttpHeaders headers;
  auto result = DoChallenge(request, challenge_id, &headers);
  return Finish(std::move(result), true, std::move(headers));
}

Result<HttpResponse> Engine::DoChallenge(const HttpRequest& request, std::string_view challenge_id,
                                         HttpHeaders* headers) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kKid, PayloadMode::kEither));
  const store::Account& account = *auth.account;
  auto load = [&](Transaction& tx, store::Challenge* c, store::Authorization* a) -> Status {
    auto ch = tx.GetChallenge(challenge_id);
    if (!ch) return Fail(NotFoundAs(std::move(ch.error()), "the challenge"));
    E2EID_TRY(authz, tx.GetAuthorization(ch->authz_id));
    if (authz.account_id != account.id) {
      return Fail(Error::Unauthorized("the challenge belongs to another account"));
    }
    *c = std::move(*ch);
    *a = std::move(authz);
    return Ok();
  };
  store::Challenge challenge;
  store::Authorization authz;
  E2EID_CHECK_OK(store_.ReadOnly([&](Transaction& tx) { return load(tx, &challenge, &authz); }));
  headers->emplace_back("Link", "<" + Url(kAuthzPathPrefix) + authz.id + ">;rel=\"up\"");
  if (auth.post_as_get) return JsonResponse(200, ChallengeJson(challenge));

  // Start validation: pending -> processing, then hand the job over.
  std::optional<ValidationRequest> job;
  ChallengeValidator* validator = nullptr;
  const TimePoint now = clock_.Now();
  // Relaxed commit: a challenge lost in processing is pending again and the client retries it.
  E2EID_CHECK_OK(store_.InTransactionRelaxed([&](Transaction& tx) -> Status {
    E2EID_CHECK_OK(load(tx, &challenge, &authz));
    if (challenge.status != ChallengeStatus::kPending) return Ok();  // nothing to start
    const AuthorizationStatus effective = EffectiveStatus(authz, now);
    if (effective != AuthorizationStatus::kPending) {
      return Fail(Error::Malformed("the authorization is " +
                                   std::string(store::ToString(effective)) +
                                   "; its challenges can no longer be validated"));
    }
    auto it = validators_.find(challenge.type);
    if (it == validators_.end() || it->second == nullptr) {
      return Fail(
          Error::Internal("no validator is registered for challenge type " + challenge.type));
    }
    validator = it->second;
    E2EID_CHECK_OK(tx.UpdateChallengeStatus(challenge.id, ChallengeStatus::kPending,
                                            ChallengeStatus::kProcessing));
    ValidationRequest v;
    v.challenge_type = challenge.type;
    v.identifier_type = authz.identifier_type;
    v.identifier_value = authz.identifier_value;
    v.token = challenge.token;
    v.key_authorization = challenge.token + "." + account.key_thumbprint;
    v.payload = auth.payload;
    v.challenge_url = Url(kChallengePathPrefix) + challenge.id;
    v.target = challenge.target.value_or("");
    job = std::move(v);
    return Ok();
  }));
  if (job && validator->synchronous()) {
    // Identity challenges: the outcome is the reply.
    Status outcome = RunValidation(challenge.id, *job, validator, true);
    if (!outcome) return Fail(std::move(outcome.error()));
  } else if (job) {
    const std::string id = challenge.id;
    Status posted = jobs_ ? jobs_([this, id, request = std::move(*job), validator]() {
      (void)RunValidation(id, request, validator, false);
    })
                          : Fail(Error::Internal("the ACME engine has no job runner"));
    if (!posted) {
      // Undo, so that the client can retry later.
      auto undo = store_.InTransaction([&](Transaction& tx) {
        return tx.UpdateChallengeStatus(id, ChallengeStatus::kProcessing,
                                        ChallengeStatus::kPending);
      });
      if (!undo) {
        LogError("cannot return a challenge to pending",
                 {{"challenge", id}, {"error", undo.error().ToString()}});
      }
      return Fail(std::move(posted.error()));
    }
  }
  // The job may have finished already (inline runners): show the current state.
  E2EID_CHECK_OK(store_.ReadOnly([&](Transaction& tx) { return load(tx, &challenge, &authz); }));
  HttpResponse r = JsonResponse(200, ChallengeJson(challenge));
  if (challenge.status == ChallengeStatus::kProcessing) r.SetHeader("Retry-After", "1");
  return r;
}

Status Engine::RunValidation(const std::string& challenge_id, const ValidationRequest& request,
                             ChallengeValidator* validator, bool keep_pending_on_transient) const {
  Status outcome = Ok();
  std::optional<Json> claims;
  try {
    auto r = validator->ValidateWithClaims(request);
    if (r) {
      claims = std::move(*r);
    } else {
      outcome = Fail(std::move(r.error()));
    }
  } catch (const std::exception& e) {
    outcome = Fail(Error::Internal(std::string("validator threw: ") + e.what()));
  } catch (...) {
    outcome = Fail(Error::Internal("validator threw a non-standard exception"));
  }
  const bool transient = !outcome && (outcome.error().code() == ErrorCode::kUnavailable ||
                                      outcome.error().code() == ErrorCode::kConnection);
  const TimePoint now = clock_.Now();
  // Relaxed commit: a lost outcome leaves the challenge for the client to retry; nothing is issued
  // before finalize, whose certificate commit is durable (and makes this one durable too).
  auto recorded = store_.InTransactionRelaxed([&](Transaction& tx) -> Status {
    E2EID_TRY(challenge, tx.GetChallenge(challenge_id));
    if (challenge.status != ChallengeStatus::kProcessing) return Ok();
    if (keep_pending_on_transient && transient) {
      return tx.UpdateChallengeStatus(challenge.id, ChallengeStatus::kProcessing,
                                      ChallengeStatus::kPending);
    }
    E2EID_TRY(authz, tx.GetAuthorization(challenge.authz_id));
    Status result = outcome;
    const AuthorizationStatus effective = EffectiveStatus(authz, now);
    const bool authz_pending = effective == AuthorizationStatus::kPending;
    if (result && !authz_pending && effective != AuthorizationStatus::kValid) {
      result = Fail(Error::Unauthorized("the authorization became " +
                                        std::string(store::ToString(effective)) +
                                        " while the challenge was being validated"));
    }
    E2EID_TRY(order, tx.GetOrder(authz.order_id));
    if (result) {
      challenge.status = ChallengeStatus::kValid;
      challenge.validated_at = now;
      challenge.error.reset();
      if (claims && !claims->empty()) challenge.validation_claims = DumpJson(*claims);
      E2EID_CHECK_OK(tx.UpdateChallenge(challenge));
      if (!authz_pending) return Ok();
      E2EID_CHECK_OK(tx.UpdateAuthorizationStatus(authz.id, AuthorizationStatus::kPending,
                                                  AuthorizationStatus::kValid));
      // The authorization belongs to this one order: only it can become ready.
      if (order.status == OrderStatus::kPending) {
        E2EID_TRY(authzs, tx.ListAuthorizationsForOrder(order.id));
        if (EffectiveStatus(order, authzs, now) == OrderStatus::kReady) {
          E2EID_CHECK_OK(
              tx.UpdateOrderStatus(order.id, OrderStatus::kPending, OrderStatus::kReady, now));
        }
      }
      return Ok();
    }
    const Error& error = result.error();
    challenge.status = ChallengeStatus::kInvalid;
    challenge.error = ErrorJsonText(error);
    E2EID_CHECK_OK(tx.UpdateChallenge(challenge));
    if (validator->synchronous()) {
      // A refused identity proof is an enrolment refusal: audit it.
      E2EID_CHECK_OK(Audit(tx, now, "acme:" + authz.account_id, "enrolment.refuse", challenge.id,
                           "",
                           {{"type", challenge.type},
                            {"identifier", authz.identifier_value},
                            {"error", error.ToString()}},
                           "failure"));
    }
    if (!authz_pending) return Ok();
    E2EID_CHECK_OK(tx.UpdateAuthorizationStatus(authz.id, AuthorizationStatus::kPending,
                                                AuthorizationStatus::kInvalid));
    if (order.status == OrderStatus::kPending || order.status == OrderStatus::kReady) {
      order.status = OrderStatus::kInvalid;
      order.error = ErrorJsonText(Error(error.code(), challenge.type + " validation of " +
                                                          authz.identifier_type + " identifier '" +
                                                          authz.identifier_value +
                                                          "' failed: " + error.detail()));
      order.updated_at = now;
      E2EID_CHECK_OK(tx.UpdateOrder(order));
    }
    return Ok();
  });
  Json fields = {{"challenge", challenge_id},
                 {"type", request.challenge_type},
                 {"identifier", request.identifier_value},
                 {"valid", outcome.has_value()}};
  if (!outcome) fields["error"] = outcome.error().ToString();
  if (!recorded) {
    fields["store_error"] = recorded.error().ToString();
    LogError("cannot record a challenge validation", fields);
    return Fail(std::move(recorded.error()));
  }
  LogInfo("challenge validation finished", fields);
  return outcome;
}

// ---- certificates -------------------------------------------------------------------------------

AcmeReply Engine::HandleCertificate(const HttpRequest& request, std::string_view serial) const {
  return Finish(DoCertificate(request, serial), true);
}

Result<HttpResponse> Engine::DoCertificate(const HttpRequest& request,
                                           std::string_view serial) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kKid, PayloadMode::kPostAsGet));
  store::Certificate cert;
  E2EID_CHECK_OK(store_.ReadOnly([&](Transaction& tx) -> Status {
    auto c = tx.GetCertificate(serial);
    if (!c) return Fail(NotFoundAs(std::move(c.error()), "the certificate"));
    if (!c->account_id || *c->account_id != auth.account->id) {
      return Fail(Error::Unauthorized("the certificate was issued to another account"));
    }
    cert = std::move(*c);
    return Ok();
  }));
  return HttpResponse::WithBody(200, std::string(kPemChainContentType), cert.chain_pem);
}

AcmeReply Engine::HandleRevokeCert(const HttpRequest& request) const {
  return Finish(DoRevokeCert(request), true);
}

Result<HttpResponse> Engine::DoRevokeCert(const HttpRequest& request) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kJwkOrKid, PayloadMode::kJsonObject));
  const Json& p = auth.payload;
  E2EID_TRY(cert_b64, GetString(p, "certificate", "revokeCert payload"));
  int reason = 0;
  if (auto it = p.find("reason"); it != p.end() && !it->is_null()) {
    if (!it->is_number_integer()) {
      return Fail(Error::Malformed("revokeCert 'reason' must be an integer"));
    }
    const int64_t r = it->get<int64_t>();
    if (std::find(std::begin(kAllowedRevocationReasons), std::end(kAllowedRevocationReasons), r) ==
        std::end(kAllowedRevocationReasons)) {
      return Fail(ErrorCode::kBadRevocationReason,
                  "revocation reason " + std::to_string(r) +
                      " is not allowed (allowed: 0 unspecified, 1 keyCompromise, "
                      "3 affiliationChanged, 4 superseded, 5 cessationOfOperation)");
    }
    reason = static_cast<int>(r);
  }
  auto der = Base64UrlDecode(cert_b64);
  if (!der) {
    return Fail(
        Error::Malformed("revokeCert 'certificate' is not base64url: " + der.error().detail()));
  }
  auto x509 = ca::CertificateFromDer(*der);
  if (!x509) {
    return Fail(Error::Malformed("revokeCert 'certificate' is not a DER certificate"));
  }
  E2EID_TRY(serial, ca::SerialHex(x509->get()));
  std::optional<crypto::PublicKey> cert_key;
  if (auth.jwk_key) {
    auto k = crypto::PublicKey::FromEvpPkey(X509_get0_pubkey(x509->get()));
    if (!k) {
      return Fail(Error::Unauthorized("the JWS is not signed by the certificate's key"));
    }
    cert_key.emplace(std::move(*k));
  }
  const std::string actor =
      auth.account ? "acme:" + auth.account->id : "acme:certificate-key:" + auth.jwk_thumbprint;
  E2EID_CHECK_OK(store_.ReadOnly([&](Transaction& tx) -> Status {
    auto cert = tx.GetCertificate(serial);
    if (!cert || cert->der != *der) {
      if (!cert && cert.error().code() != ErrorCode::kNotFound) {
        return Fail(std::move(cert.error()));
      }
      return Fail(Error::NotFound("the certificate was not issued by this CA"));
    }
    if (auth.account) {
      if (!cert->account_id || *cert->account_id != auth.account->id) {
        return Fail(Error::Unauthorized("the certificate was issued to another account"));
      }
    } else if (!cert_key->Equals(*auth.jwk_key)) {
      return Fail(Error::Unauthorized("the JWS is not signed by the certificate's key"));
    }
    if (cert->status == store::CertificateStatus::kRevoked) {
      return Fail(ErrorCode::kAlreadyRevoked, "the certificate is already revoked");
    }
    return Ok();
  }));
  // The one revocation path: store, revocation event, audit, then CRL and OCSP.
  E2EID_TRY(outcome, revocations_.Revoke({.kind = store::RevocationScopeKind::kCertificate,
                                          .value = serial,
                                          .reason = reason,
                                          .comment = "revoked by the ACME client",
                                          .actor = actor,
                                          .source = request.remote_address}));
  if (outcome.affected == 0) {
    // A concurrent revocation won the race.
    return Fail(ErrorCode::kAlreadyRevoked, "the certificate is already revoked");
  }
  LogInfo("certificate revoked", {{"serial", serial}, {"reason", reason}, {"actor", actor}});
  return HttpResponse::Empty(200);
}

// ---- key rollover -------------------------------------------------------------------------------

AcmeReply Engine::HandleKeyChange(const HttpRequest& request) const {
  HttpHeaders headers;
  auto result = DoKeyChange(request, &headers);
  return Finish(std::move(result), true, std::move(headers));
}

Result<HttpResponse> Engine::DoKeyChange(const HttpRequest& request, HttpHeaders* headers) const {
  E2EID_TRY(auth, Authenticate(request, KeyMode::kKid, PayloadMode::kJsonObject));
  const store::Account& account = *auth.account;
  const std::string account_url = Url(kAccountPathPrefix) + account.id;

  auto inner_parsed = crypto::ParseFlattenedJws(AsString(auth.jws.payload));
  if (!inner_parsed) return Fail(std::move(inner_parsed.error()).Context("keyChange inner JWS"));
  const crypto::Jws& inner = *inner_parsed;
  const Json& h = inner.header;
  if (!h.contains("jwk")) {
    return Fail(Error::Malformed("keyChange inner JWS must carry the new key in 'jwk'"));
  }
  if (h.contains("kid")) return Fail(Error::Malformed("keyChange inner JWS must not have a 'kid'"));
  if (h.contains("nonce")) {
    return Fail(Error::Malformed("keyChange inner JWS must not have a 'nonce'"));
  }
  E2EID_TRY(inner_url, GetString(h, "url", "keyChange inner JWS header"));
  if (inner_url != auth.url) {
    return Fail(Error::Malformed("keyChange inner JWS 'url' must equal the outer JWS 'url'"));
  }
  if (!h.at("jwk").is_object()) {
    return Fail(Error::Malformed("keyChange inner JWS 'jwk' must be a JSON object"));
  }
  E2EID_TRY(new_key, crypto::PublicKeyFromJwk(h.at("jwk")));
  if (auto st = crypto::VerifyJws(inner, new_key); !st) {
    return Fail(std::move(st.error()).Context("keyChange inner JWS"));
  }
  E2EID_TRY(inner_payload, ParseJson(AsString(inner.payload), "keyChange inner payload"));
  if (!inner_payload.is_object()) {
    return Fail(Error::Malformed("keyChange inner payload must be a JSON object"));
  }
  E2EID_TRY(named_account, GetString(inner_payload, "account", "keyChange inner payload"));
  if (named_account != account_url) {
    return Fail(
        Error::Malformed("keyChange inner payload 'account' does not match the outer JWS 'kid'"));
  }
  if (!inner_payload.contains("oldKey") || !inner_payload.at("oldKey").is_object()) {
    return Fail(Error::Malformed("keyChange inner payload: 'oldKey' must be a JWK object"));
  }
  auto old_thumbprint = crypto::JwkThumbprint(inner_payload.at("oldKey"));
  if (!old_thumbprint || *old_thumbprint != account.key_thumbprint) {
    return Fail(
        Error::Malformed("keyChange inner payload 'oldKey' is not the account's current key"));
  }
  E2EID_TRY(new_thumbprint, crypto::JwkThumbprint(new_key));
  if (new_thumbprint == account.key_thumbprint) {
    return Fail(Error::Malformed("keyChange: the new key is the account's current key"));
  }
  E2EID_TRY(new_jwk, crypto::PublicKeyToJwk(new_key));
  const TimePoint now = clock_.Now();
  store::Account updated;
  E2EID_CHECK_OK(store_.InTransaction([&](Transaction& tx) -> Status {
    auto other = tx.GetAccountByThumbprint(new_thumbprint);
    if (other) {
      headers->emplace_back("Location", Url(kAccountPathPrefix) + other->id);
      return Fail(Error::Conflict("keyChange: the new key is already used by another account"));
    }
    if (other.error().code() != ErrorCode::kNotFound) return Fail(std::move(other.error()));
    E2EID_TRY(a, tx.GetAccount(account.id));
    if (a.key_thumbprint != account.key_thumbprint) {
      return Fail(Error::Conflict("keyChange: the account key changed concurrently"));
    }
    a.jwk = DumpJson(new_jwk);
    a.key_thumbprint = new_thumbprint;
    E2EID_CHECK_OK(tx.UpdateAccount(a));
    E2EID_CHECK_OK(
        Audit(tx, now, "acme:" + a.id, "account.key_change", a.id, request.remote_address,
              {{"old_thumbprint", account.key_thumbprint}, {"new_thumbprint", new_thumbprint}}));
    updated = std::move(a);
    return Ok();
  }));
  return JsonResponse(200, AccountJson(updated));
}

}  // namespace e2eid::acme
