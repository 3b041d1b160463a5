#include "acme/device_authority.h"

#include "acme/wire.h"
#include "core/encoding.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/random.h"

namespace e2eid::acme {
namespace {

constexpr std::string_view kNoncePrefix = "da.";

Error Unauthenticated(std::string d) { return Error::Unauthenticated(std::move(d)); }

// Wire clients base64-encode the proof once more; accept both forms.
std::string UnwrapProof(const std::string& header) {
  if (std::count(header.begin(), header.end(), '.') == 2) return header;
  for (auto decode : {&Base64Decode, &Base64UrlDecode}) {
    auto bytes = decode(header);
    if (bytes) {
      std::string text(AsString(*bytes));
      if (std::count(text.begin(), text.end(), '.') == 2) return text;
    }
  }
  return header;
}

}  // namespace

DeviceAuthority::DeviceAuthority(DeviceAuthorityOptions options, Deps deps)
    : options_(std::move(options)),
      store_(deps.store),
      verifier_(deps.verifier),
      key_(deps.signing_key),
      clock_(deps.clock),
      random_(deps.random) {}

std::string DeviceAuthority::AccessTokenUrl(std::string_view device_id) const {
  return options_.base_url + std::string(kClientsPathPrefix) + std::string(device_id) +
         "/access-token";
}

Result<HttpResponse> DeviceAuthority::HandleNonce(const HttpRequest& request,
                                                  std::string_view device_id) const {
  (void)request;
  if (device_id.empty() || device_id.size() > 16) {
    return Fail(Error::Malformed("the device id must be 1 to 16 hex digits"));
  }
  E2EID_TRY(token, crypto::RandomToken(random_, 16));
  store::Nonce nonce{std::string(kNoncePrefix) + token, clock_.Now() + options_.nonce_lifetime};
  E2EID_CHECK_OK(
      store_.InTransaction([&](store::Transaction& tx) { return tx.InsertNonce(nonce); }));
  HttpResponse r =
      HttpResponse::WithBody(200, "text/plain", request.method == "HEAD" ? "" : nonce.value);
  r.SetHeader("Replay-Nonce", nonce.value);
  r.SetHeader("Cache-Control", "no-store");
  return r;
}

Result<HttpResponse> DeviceAuthority::HandleAccessToken(const HttpRequest& request,
                                                        std::string_view device_id) const {
  std::string client;
  auto result = Issue(request, device_id, &client);
  if (!result) {
    const ErrorCode code = result.error().code();
    if (code != ErrorCode::kUnavailable && code != ErrorCode::kConnection && IsClientFacing(code)) {
      if (auto st = AuditRefusal(request, client.empty() ? device_id : client, result.error());
          !st) {
        LogError("cannot audit a refused device token", {{"error", st.error().ToString()}});
      }
    }
  }
  return result;
}

Status DeviceAuthority::AuditRefusal(const HttpRequest& request, std::string_view device_id,
                                     const Error& error) const {
  return store_.InTransaction([&](store::Transaction& tx) -> Status {
    store::AuditEvent e;
    e.at = clock_.Now();
    e.actor = "device-authority";
    e.action = "enrolment.refuse";
    e.target = std::string(device_id);
    e.source = request.remote_address;
    e.outcome = "failure";
    e.details = DumpJson(Json{{"error", error.ToString()}});
    E2EID_TRY(id, tx.AppendAudit(e));
    (void)id;
    return Ok();
  });
}

Result<HttpResponse> DeviceAuthority::Issue(const HttpRequest& request, std::string_view device_id,
                                            std::string* refused_client) const {
  const TimePoint now = clock_.Now();
  const std::string htu = AccessTokenUrl(device_id);

  // 1. The user's access token from the IdP.
  auto authorization = request.Header("Authorization");
  if (!authorization) {
    return Fail(
        Unauthenticated("the Authorization header with the user's access token is missing"));
  }
  std::string scheme;
  std::string access_token;
  {
    const size_t space = authorization->find(' ');
    if (space == std::string::npos) {
      return Fail(
          Unauthenticated("the Authorization header must be 'Bearer <token>' or 'DPoP <token>'"));
    }
    scheme = authorization->substr(0, space);
    access_token = authorization->substr(space + 1);
    if (!EqualsIgnoreCase(scheme, "Bearer") && !EqualsIgnoreCase(scheme, "DPoP")) {
      return Fail(Unauthenticated("the Authorization scheme must be Bearer or DPoP"));
    }
  }
  auto user_claims = verifier_.VerifyAccessToken(access_token, {});
  if (!user_claims) {
    Error e = std::move(user_claims.error());
    if (e.code() == ErrorCode::kUnauthorized) return Fail(Unauthenticated(e.detail()));
    return Fail(std::move(e));
  }

  // 2. The DPoP proof.
  auto dpop = request.Header("DPoP");
  if (!dpop) return Fail(Unauthenticated("the DPoP header with the client's proof is missing"));
  const std::string proof_text = UnwrapProof(*dpop);
  auto jws = crypto::ParseCompactJws(proof_text);
  if (!jws) return Fail(Unauthenticated("DPoP proof: " + jws.error().detail()));
  {
    auto typ = StringMember(jws->header, "typ");
    if (!typ || !EqualsIgnoreCase(*typ, "dpop+jwt")) {
      return Fail(Unauthenticated("DPoP proof: header \"typ\" must be \"dpop+jwt\""));
    }
  }
  if (jws->alg == crypto::JwsAlg::kRS256) {
    return Fail(
        Unauthenticated("DPoP proof: alg RS256 is not accepted (use ES256/384/512 or EdDSA)"));
  }
  if (!jws->header.contains("jwk") || !jws->header.at("jwk").is_object()) {
    return Fail(Unauthenticated("DPoP proof: header \"jwk\" is missing"));
  }
  auto proof_key = crypto::PublicKeyFromJwk(jws->header.at("jwk"));
  if (!proof_key) {
    return Fail(Unauthenticated("DPoP proof: header \"jwk\": " + proof_key.error().detail()));
  }
  if (auto st = crypto::VerifyJws(*jws, *proof_key); !st) {
    return Fail(Unauthenticated("DPoP proof: the signature does not verify"));
  }
  E2EID_TRY(thumbprint, crypto::JwkThumbprint(*proof_key));
  auto proof = ParseJson(AsString(jws->payload), "DPoP proof");
  if (!proof || !proof->is_object()) {
    return Fail(Unauthenticated("DPoP proof: the payload is not a JSON object"));
  }
  const Json& p = *proof;
  if (StringMember(p, "htm") != std::optional<std::string>("POST")) {
    return Fail(Unauthenticated("DPoP proof: claim \"htm\" must be \"POST\""));
  }
  if (StringMember(p, "htu") != std::optional<std::string>(htu)) {
    return Fail(Unauthenticated("DPoP proof: claim \"htu\" must be this URL (" + htu + ")"));
  }
  {
    auto iat = IntMember(p, "iat");
    const int64_t t = ToUnix(now);
    if (!iat) return Fail(Unauthenticated("DPoP proof: claim \"iat\" is missing"));
    if (*iat > t + options_.leeway.count()) {
      return Fail(Unauthenticated("DPoP proof: claim \"iat\" is in the future"));
    }
    if (t - *iat > options_.max_proof_age.count() + options_.leeway.count()) {
      return Fail(Unauthenticated("DPoP proof: claim \"iat\" is too old"));
    }
    if (p.contains("exp")) {
      auto exp = IntMember(p, "exp");
      if (!exp || *exp + options_.leeway.count() < t) {
        return Fail(Unauthenticated("DPoP proof: claim \"exp\": the proof expired"));
      }
      if (*exp > t + 3600 + options_.leeway.count()) {
        return Fail(Unauthenticated("DPoP proof: claim \"exp\" is more than 1 h ahead"));
      }
    }
  }
  for (const char* name : {"jti", "chal", "aud", "nonce", "sub", "handle"}) {
    if (!StringMember(p, name)) {
      return Fail(Unauthenticated("DPoP proof: claim \"" + std::string(name) + "\" is missing"));
    }
  }
  // DPoP-bound user tokens (RFC 9449): the proof key must be the bound key.
  if (const Json* jkt = oidc::FindClaim(*user_claims, "cnf.jkt"); jkt != nullptr) {
    if (!EqualsIgnoreCase(scheme, "DPoP")) {
      return Fail(Unauthenticated("the access token is DPoP-bound: use the 'DPoP' scheme"));
    }
    if (!jkt->is_string() || !crypto::ConstantTimeEquals(jkt->get<std::string>(), thumbprint)) {
      return Fail(Unauthenticated(
          "access token claim \"cnf.jkt\" is not the thumbprint of the DPoP proof's key"));
    }
    const std::string ath = Base64UrlEncode(crypto::Sha256(access_token));
    auto proof_ath = StringMember(p, "ath");
    if (!proof_ath || !crypto::ConstantTimeEquals(*proof_ath, ath)) {
      return Fail(Unauthenticated("DPoP proof: claim \"ath\" is not the access token's hash"));
    }
  } else if (EqualsIgnoreCase(scheme, "DPoP")) {
    return Fail(Unauthenticated("the 'DPoP' scheme needs a DPoP-bound access token"));
  }

  // 3. The identity: the proof must speak for the token's user and this device.
  auto client = ParseWireClientId(*StringMember(p, "sub"));
  if (!client)
    return Fail(Error::Forbidden("DPoP proof: claim \"sub\": " + client.error().detail()));
  *refused_client = client->Uri();
  if (client->device_id != device_id) {
    return Fail(Error::Forbidden("DPoP proof: claim \"sub\" names device " + client->device_id +
                                 ", not the device of this URL"));
  }
  if (client->domain != options_.domain) {
    return Fail(Error::Forbidden("DPoP proof: claim \"sub\" names domain '" + client->domain +
                                 "', not '" + options_.domain + "'"));
  }
  auto token_sub = StringMember(*user_claims, "sub");
  auto user_id = token_sub ? WireUserIdFromUuid(*token_sub)
                           : Result<std::string>(Fail(Error::InvalidArgument("no sub")));
  if (!user_id) {
    return Fail(
        Error::Forbidden("the access token's \"sub\" is not a UUID; cannot map it to a user id"));
  }
  if (client->user_id != *user_id) {
    return Fail(Error::Forbidden(
        "DPoP proof: claim \"sub\" names another user's device (the user id is not the access "
        "token's subject)"));
  }
  auto username = StringMember(*user_claims, options_.handle_claim);
  if (!username) {
    return Fail(
        Error::Forbidden("the access token has no \"" + options_.handle_claim + "\" claim"));
  }
  const std::string handle_uri = WireHandleUri(*username, options_.domain);
  if (*StringMember(p, "handle") != handle_uri) {
    return Fail(Error::Forbidden("DPoP proof: claim \"handle\" is not " + handle_uri));
  }
  auto display_name = StringMember(*user_claims, options_.name_claim);
  if (!display_name) {
    return Fail(Error::Forbidden("the access token has no \"" + options_.name_claim + "\" claim"));
  }
  if (p.contains("name") && StringMember(p, "name") != display_name) {
    return Fail(Error::Forbidden("DPoP proof: claim \"name\" is not the user's name"));
  }

  // 4. Nonce (single use) and the registry, in one transaction.
  const std::string nonce = *StringMember(p, "nonce");
  if (!nonce.starts_with(kNoncePrefix)) {
    return Fail(Error::BadNonce("DPoP proof: claim \"nonce\" is not a nonce of this authority"));
  }
  E2EID_CHECK_OK(store_.InTransaction([&](store::Transaction& tx) -> Status {
    if (auto st = tx.ConsumeNonce(nonce, now); !st) {
      return Fail(Error::BadNonce(
          "DPoP proof: claim \"nonce\" is unknown, expired or already used (replayed proof)"));
    }
    auto user = tx.GetUser(*user_id);
    if (user) {
      if (user->status != store::UserStatus::kActive) {
        return Fail(Error::Forbidden("user " + handle_uri + " is disabled by an administrator"));
      }
      user->handle = *username;
      user->display_name = *display_name;
      user->last_seen = now;
      E2EID_CHECK_OK(tx.UpdateUser(*user));
    } else if (user.error().code() == ErrorCode::kNotFound) {
      store::User u{*user_id, *username, *display_name, store::UserStatus::kActive, now, now};
      E2EID_CHECK_OK(tx.InsertUser(u));
    } else {
      return Fail(std::move(user.error()));
    }
    auto device = tx.GetDevice(client->Uri());
    if (device) {
      if (device->status != store::DeviceStatus::kActive) {
        return Fail(Error::Forbidden("device " + client->Uri() + " is " +
                                     std::string(store::ToString(device->status)) +
                                     " by an administrator"));
      }
      // The registry keeps the key of the device's last issued certificate (written at
      // issuance): a token request, which may never lead to a certificate, does not change it.
      device->last_seen = now;
      device->display_name = *display_name;
      device->handle = *username;
      return tx.UpdateDevice(*device);
    }
    if (device.error().code() != ErrorCode::kNotFound) return Fail(std::move(device.error()));
    E2EID_TRY(devices, tx.ListDevicesForUser(*user_id));
    size_t active = 0;
    for (const auto& d : devices) active += d.status == store::DeviceStatus::kActive ? 1 : 0;
    if (active >= options_.max_devices_per_user) {
      return Fail(Error::Forbidden("user " + handle_uri + " already has " + std::to_string(active) +
                                   " devices (the maximum is " +
                                   std::to_string(options_.max_devices_per_user) + ")"));
    }
    store::Device d;
    d.id = client->Uri();
    d.user_id = *user_id;
    d.display_name = *display_name;
    d.handle = *username;
    d.key_thumbprint = thumbprint;
    d.first_seen = d.last_seen = now;
    E2EID_CHECK_OK(tx.InsertDevice(d));
    store::AuditEvent e;
    e.at = now;
    e.actor = "user:" + *user_id;
    e.action = "device.register";
    e.target = d.id;
    e.source = request.remote_address;
    e.outcome = "success";
    e.details = DumpJson(Json{{"handle", handle_uri}, {"key_thumbprint", thumbprint}});
    E2EID_TRY(id, tx.AppendAudit(e));
    (void)id;
    return Ok();
  }));

  // 5. The token.
  E2EID_TRY(public_key, key_.public_key());
  E2EID_TRY(jwk, crypto::PublicKeyToJwk(public_key));
  E2EID_TRY(jti, crypto::RandomToken(random_, 16));
  const int64_t t = ToUnix(now);
  Json claims = {{"iss", htu},
                 {"sub", client->Uri()},
                 {"aud", *StringMember(p, "aud")},
                 {"jti", jti},
                 {"nonce", nonce},
                 {"chal", *StringMember(p, "chal")},
                 {"cnf", {{"kid", thumbprint}}},
                 {"proof", proof_text},
                 {"client_id", client->Uri()},
                 {"api_version", 5},
                 {"scope", "wire_client_id"},
                 {"iat", t},
                 {"nbf", t},
                 {"exp", t + options_.token_lifetime.count()}};
  Json header = {{"typ", "at+jwt"}, {"jwk", jwk}};
  E2EID_TRY(token, crypto::SignCompactJws(key_, crypto::DefaultJwsAlg(key_.type()), header,
                                          DumpJson(claims)));
  Json body = {{"expires_in", options_.token_lifetime.count()}, {"token", token}, {"type", "DPoP"}};
  HttpResponse r = HttpResponse::WithBody(200, "application/json", DumpJson(body));
  r.SetHeader("Cache-Control", "no-store");
  LogInfo("device access token issued", {{"device", client->Uri()}});
  return r;
}

}  // namespace e2eid::acme
