#include "cli/enrol_flow.h"

#include <algorithm>

#include "cli/acme_client.h"
#include "cli/dpop.h"
#include "core/encoding.h"
#include "core/file.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "oidc/discovery.h"

namespace e2eid::cli {
namespace {

constexpr std::string_view kAccessTokenSuffix = "/access-token";
constexpr std::string_view kDpopChallenge = "wire-dpop-01";
constexpr std::string_view kOidcChallenge = "wire-oidc-01";

std::string StripSlash(std::string_view s) {
  if (s.ends_with('/')) s.remove_suffix(1);
  return std::string(s);
}

void Say(FlowEnvironment& env, const std::string& line) {
  if (env.print) env.print(line);
}

std::string StringOr(const Json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The Error for a device authority's failed answer (an RFC 8555-style problem document when it
// sends one).
Error DeviceAuthorityError(const oidc::FetchResponse& r, const std::string& what) {
  auto json = ParseJson(r.body, "device authority response");
  std::string detail = "HTTP " + std::to_string(r.status);
  if (json && json->is_object() && json->contains("type")) {
    detail = StringOr(*json, "type") + ": " + StringOr(*json, "detail") + " (" + detail + ")";
  }
  return Error::Unauthorized("device authority refused " + what + ": " + detail);
}

// Everything the ACME part of a flow needs.
struct OrderContext {
  FlowEnvironment& env;
  oidc::HttpClient& http;
  AcmeClient& acme;
  const crypto::PrivateKey& client_key;
  const crypto::PrivateKey& device_key;
  const WireIdentity& identity;
  const TokenSet& tokens;
  OidcMode mode = OidcMode::kDpop;
  std::string issuer;
  std::string client_id;
  std::string allowed_origin;
  std::optional<std::chrono::seconds> validity;
  std::string replaces;
  // Claims and nonce modes: a second login whose ID token carries the binding to the challenge
  // (the OIDC claims request, or the nonce); returns the ID token.
  std::function<Result<std::string>(const std::optional<Json>& claims,
                                    const std::optional<std::string>& nonce)>
      id_token_for_challenge;
};

struct Challenge {
  std::string url;
  std::string token;
  std::string target;
  std::string status;
};

Result<Challenge> FindChallenge(const Json& authz, std::string_view type) {
  if (!authz.contains("challenges") || !authz["challenges"].is_array()) {
    return Fail(Error::Malformed("authorization without a challenges array"));
  }
  for (const Json& c : authz["challenges"]) {
    if (StringOr(c, "type") != type) continue;
    Challenge out{StringOr(c, "url"), StringOr(c, "token"), StringOr(c, "target"),
                  StringOr(c, "status")};
    if (out.url.empty() || out.token.empty() || out.target.empty()) {
      return Fail(Error::Malformed(std::string(type) + " challenge without url, token or target"));
    }
    return out;
  }
  return Fail(Error::Malformed("authorization offers no " + std::string(type) + " challenge"));
}

Status AnswerDeviceChallenge(OrderContext& c, const Challenge& chall) {
  E2EID_CHECK_OK(CheckDeviceTarget(chall.target, c.allowed_origin, c.identity.device_id));
  const std::string base = chall.target.substr(0, chall.target.size() - kAccessTokenSuffix.size());
  auto nonce_response = c.http.Send({.method = "GET", .url = base + "/nonce"});
  if (!nonce_response) {
    return Fail(std::move(nonce_response).error().Context("device authority nonce"));
  }
  if (nonce_response->status != 200) {
    return Fail(DeviceAuthorityError(*nonce_response, "the nonce request"));
  }
  std::string nonce = nonce_response->Header("Replay-Nonce").value_or("");
  if (nonce.empty()) {
    nonce = nonce_response->body;
    while (!nonce.empty() && (nonce.back() == '\n' || nonce.back() == '\r')) nonce.pop_back();
  }
  if (nonce.empty()) return Fail(Error::Malformed("the device authority sent no nonce"));
  WireDeviceProofClaims claims;
  claims.client_id_uri = c.identity.ClientIdUri();
  claims.challenge_url = chall.url;
  claims.nonce = nonce;
  claims.target = chall.target;
  claims.challenge_token = chall.token;
  claims.handle_uri = c.identity.HandleUri();
  claims.display_name = c.identity.display_name;
  claims.access_token = c.tokens.access_token;
  E2EID_TRY(proof, MakeWireDeviceProof(c.client_key, claims, c.env.clock->Now(), *c.env.rng));
  const std::string scheme = AccessTokenJkt(c.tokens.access_token) ? "DPoP" : "Bearer";
  oidc::FetchRequest request{.method = "POST", .url = chall.target};
  request.headers = {{"DPoP", proof},
                     {"Authorization", scheme + " " + c.tokens.access_token},
                     {"Accept", "application/json"}};
  auto r = c.http.Send(request);
  if (!r) return Fail(std::move(r).error().Context("device authority access token"));
  if (r->status != 200 && r->status != 201) {
    return Fail(DeviceAuthorityError(*r, "the access token request"));
  }
  auto json = ParseJson(r->body, "device authority access token response");
  if (!json || !json->is_object()) {
    return Fail(Error::Malformed("the device authority's answer is not a JSON object"));
  }
  E2EID_TRY(token, GetString(*json, "token", "device authority access token response"));
  Say(c.env, "Device authority issued an access token (" + std::to_string(token.size()) +
                 " bytes); answering " + std::string(kDpopChallenge));
  E2EID_TRY(answered, c.acme.Post(chall.url, Json{{"access_token", token}}));
  (void)answered;
  return Ok();
}

// --oidc-mode dpop: the IdP access token must be bound to the client key (cnf.jkt).
Status CheckDpopBinding(const TokenSet& tokens, const std::string& thumbprint) {
  const auto jkt = AccessTokenJkt(tokens.access_token);
  if (!jkt) {
    return Fail(Error::Unauthorized(
        "the identity provider's access token is not DPoP-bound (not a JWT with cnf.jkt): the "
        "IdP must issue DPoP-bound JWT access tokens (RFC 9449) for --oidc-mode dpop; try "
        "--oidc-mode claims"));
  }
  if (*jkt != thumbprint) {
    return Fail(Error::Unauthorized(
        "the access token is bound to another key than this client's key (cnf.jkt differs)"));
  }
  return Ok();
}

Status AnswerOidcChallenge(OrderContext& c, const Challenge& chall) {
  E2EID_CHECK_OK(CheckOidcTarget(chall.target, c.issuer, c.client_id));
  E2EID_TRY(pub, c.client_key.public_key());
  E2EID_TRY(thumbprint, crypto::JwkThumbprint(pub));
  if (c.mode == OidcMode::kDpop) {
    E2EID_CHECK_OK(CheckDpopBinding(c.tokens, thumbprint));
    E2EID_TRY(r, c.acme.Post(chall.url, Json{{"access_token", c.tokens.access_token}}));
    (void)r;
    return Ok();
  }
  const std::string keyauth = chall.token + "." + thumbprint;
  if (!c.id_token_for_challenge) {
    return Fail(Error::InvalidArgument("this --oidc-mode needs an interactive login"));
  }
  std::optional<Json> claims;
  std::optional<std::string> nonce;
  if (c.mode == OidcMode::kClaims) {
    claims = Json{{"id_token",
                   {{"keyauth", {{"essential", true}, {"value", keyauth}}},
                    {"acme_aud", {{"essential", true}, {"value", chall.url}}}}}};
  } else {
    nonce = Base64UrlEncode(crypto::Sha256(keyauth));
  }
  E2EID_TRY(id_token, c.id_token_for_challenge(claims, nonce));
  E2EID_TRY(r, c.acme.Post(chall.url, Json{{"id_token", id_token}}));
  (void)r;
  return Ok();
}

// "; wire-oidc-01: <type>: <detail>" for every challenge of the order that has an error.
std::string ChallengeErrors(AcmeClient& acme, const std::vector<std::string>& authz_urls) {
  std::string out;
  for (const auto& url : authz_urls) {
    auto r = acme.PostAsGet(url);
    if (!r || !r->json.is_object() || !r->json.contains("challenges")) continue;
    for (const Json& ch : r->json["challenges"]) {
      if (!ch.is_object() || !ch.contains("error")) continue;
      out += "; " + StringOr(ch, "type") + ": " + ProblemJsonToError(ch["error"]).detail();
    }
  }
  return out;
}

Result<IssuedCertificate> ObtainCertificate(OrderContext& c) {
  if (c.mode == OidcMode::kDpop) {
    // Fail before any token leaves the client.
    E2EID_TRY(pub, c.client_key.public_key());
    E2EID_TRY(thumbprint, crypto::JwkThumbprint(pub));
    E2EID_CHECK_OK(CheckDpopBinding(c.tokens, thumbprint));
  }
  E2EID_CHECK_OK(c.acme.LoadDirectory());
  E2EID_TRY(account, c.acme.NewAccount());
  (void)account;
  std::optional<TimePoint> not_before;
  std::optional<TimePoint> not_after;
  if (c.validity) {
    not_before = c.env.clock->Now();
    not_after = *not_before + *c.validity;
  }
  std::string order_url;
  auto order =
      c.acme.NewOrder(NewOrderPayload(c.identity, not_before, not_after, c.replaces), &order_url);
  if (!order && order.error().code() == ErrorCode::kAlreadyReplaced && !c.replaces.empty()) {
    Say(c.env, "The CA says the old certificate was already replaced; ordering without replaces");
    order = c.acme.NewOrder(NewOrderPayload(c.identity, not_before, not_after), &order_url);
  }
  if (!order) return Fail(std::move(order).error().Context("newOrder"));
  Say(c.env, "Order created: " + order_url);
  std::vector<std::string> authz_urls;
  if (order->contains("authorizations") && (*order)["authorizations"].is_array()) {
    for (const Json& u : (*order)["authorizations"]) {
      if (u.is_string()) authz_urls.push_back(u.get<std::string>());
    }
  }
  if (authz_urls.empty()) return Fail(Error::Malformed("the order has no authorizations"));
  for (const auto& url : authz_urls) {
    E2EID_TRY(r, c.acme.PostAsGet(url));
    const Json& authz = r.json;
    const std::string status = StringOr(authz, "status");
    const std::string type =
        authz.contains("identifier") ? StringOr(authz["identifier"], "type") : std::string();
    if (status == "valid") continue;
    if (status != "pending") {
      return Fail(Error::Unauthorized("authorization for " + type + " is " + status));
    }
    if (type == kWireDeviceIdentifier) {
      E2EID_TRY(chall, FindChallenge(authz, kDpopChallenge));
      if (chall.status == "pending") E2EID_CHECK_OK(AnswerDeviceChallenge(c, chall));
    } else if (type == kWireUserIdentifier) {
      E2EID_TRY(chall, FindChallenge(authz, kOidcChallenge));
      if (chall.status == "pending") E2EID_CHECK_OK(AnswerOidcChallenge(c, chall));
    } else {
      return Fail(Error::Malformed("unexpected identifier type '" + type + "' in the order"));
    }
  }
  auto ready = c.acme.PollOrder(order_url, "ready");
  if (!ready) {
    Error e = std::move(ready).error();
    return Fail(Error(e.code(), e.detail() + ChallengeErrors(c.acme, authz_urls)));
  }
  E2EID_TRY(csr, BuildDeviceCsr(c.device_key, c.identity));
  Json final_order = *ready;
  if (StringOr(final_order, "status") != "valid") {
    const std::string finalize = StringOr(*ready, "finalize");
    if (finalize.empty()) return Fail(Error::Malformed("the order has no finalize URL"));
    E2EID_TRY(fin, c.acme.Post(finalize, Json{{"csr", Base64UrlEncode(csr)}}));
    final_order = fin.json;
    if (StringOr(final_order, "status") != "valid") {
      E2EID_TRY(valid, c.acme.PollOrder(order_url, "valid"));
      final_order = std::move(valid);
    }
  }
  const std::string cert_url = StringOr(final_order, "certificate");
  if (cert_url.empty()) return Fail(Error::Malformed("the valid order has no certificate URL"));
  E2EID_TRY(pem, c.acme.DownloadCertificate(cert_url));
  E2EID_TRY(device_pub, c.device_key.public_key());
  return CheckIssuedChain(pem, device_pub, c.identity);
}

// A token from a file: the first line, which must not be empty.
Result<std::string> ReadTokenFile(const std::string& path) {
  E2EID_TRY(text, ReadFile(path));
  std::string token = text.substr(0, text.find_first_of("\r\n"));
  if (token.empty()) return Fail(Error::InvalidArgument(path + ": no token in the first line"));
  return token;
}

// Claims for the identity: the ID token's, else the (JWT) access token's.
Result<Json> IdentityClaims(const TokenSet& tokens) {
  if (!tokens.id_token.empty()) return DecodeJwtClaims(tokens.id_token);
  auto claims = DecodeJwtClaims(tokens.access_token);
  if (!claims) {
    return Fail(Error::InvalidArgument(
        "no ID token, and the access token is not a JWT: cannot read name and username"));
  }
  return claims;
}

// The key at `path` when it has `type`, else a new one (*generated tells which).
Result<crypto::PrivateKey> LoadOrGenerate(const StateDir& dir, const std::string& path,
                                          crypto::KeyType type, bool* generated) {
  *generated = false;
  E2EID_TRY(existing, dir.LoadKey(path));
  if (existing && existing->type() == type) return std::move(*existing);
  *generated = true;
  return crypto::PrivateKey::Generate(type);
}

void ApplyCertificate(ClientState& state, const IssuedCertificate& cert) {
  state.cert_serial = cert.serial_hex;
  state.not_before = cert.not_before;
  state.not_after = cert.not_after;
  state.ari_cert_id = cert.ari_cert_id;
}

AcmeClientOptions AcmeOptions(const std::string& directory_url) {
  AcmeClientOptions o;
  o.directory_url = directory_url;
  return o;
}

}  // namespace

Result<std::string> UrlOrigin(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) {
    return Fail(Error::InvalidArgument("'" + std::string(url) + "' is not an absolute URL"));
  }
  const size_t host_end = url.find_first_of("/?#", scheme_end + 3);
  const std::string_view origin = url.substr(0, host_end);
  if (origin.size() == scheme_end + 3) {
    return Fail(Error::InvalidArgument("'" + std::string(url) + "' has no host"));
  }
  return std::string(origin);
}

Status CheckDeviceTarget(std::string_view target, std::string_view allowed_origin,
                         std::string_view device_id) {
  auto refuse = [&](const std::string& why) {
    return Fail(
        Error::RejectedIdentifier("wire-dpop-01 target '" + std::string(target) + "' " + why));
  };
  auto origin = UrlOrigin(target);
  if (!origin) return refuse("is not an absolute URL");
  if (*origin != StripSlash(allowed_origin)) {
    return refuse("is not on the allowed device authority " + std::string(allowed_origin) +
                  " (use --device-authority to allow another)");
  }
  const std::string suffix = "/clients/" + std::string(device_id) + std::string(kAccessTokenSuffix);
  if (!target.ends_with(suffix) || target.find_first_of("?#") != std::string_view::npos) {
    return refuse("does not end with " + suffix);
  }
  return Ok();
}

Status CheckOidcTarget(std::string_view target, std::string_view issuer,
                       std::string_view client_id) {
  const size_t q = target.find('?');
  const std::string base = StripSlash(target.substr(0, q));
  auto query = ParseQuery(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  const std::string target_client =
      query ? FindField(*query, "client_id").value_or("") : std::string();
  if (base != StripSlash(issuer) || target_client != client_id) {
    return Fail(Error::RejectedIdentifier(
        "the CA expects tokens from issuer '" + base + "' for client '" + target_client +
        "', but this client logs in at '" + std::string(issuer) + "' as '" +
        std::string(client_id) + "' (check --issuer and --client-id)"));
  }
  return Ok();
}

Result<EnrolResult> EnrolDevice(const EnrolSettings& settings, FlowEnvironment& env) {
  StateDir dir(settings.state_dir);
  E2EID_CHECK_OK(dir.Prepare());
  E2EID_TRY(previous, dir.LoadState());
  ClientState state = previous.value_or(ClientState{});
  auto pick = [](const std::string& flag, std::string& field, const char* name) -> Status {
    if (!flag.empty()) field = flag;
    if (field.empty()) {
      return Fail(Error::InvalidArgument(std::string("--") + name +
                                         " is required (no earlier enrolment in the state "
                                         "directory)"));
    }
    return Ok();
  };
  E2EID_CHECK_OK(pick(settings.directory_url, state.directory_url, "server"));
  E2EID_CHECK_OK(pick(settings.issuer, state.issuer, "issuer"));
  E2EID_CHECK_OK(pick(settings.client_id, state.client_id, "client-id"));
  E2EID_CHECK_OK(pick(settings.domain, state.domain, "domain"));
  if (!settings.ca_file.empty()) state.ca_file = settings.ca_file;
  if (!settings.device_authority.empty()) {
    E2EID_TRY(origin, UrlOrigin(settings.device_authority));
    state.device_authority = origin;
  }
  state.validity_seconds = settings.validity ? settings.validity->count() : 0;
  if (settings.login == LoginMode::kTokenFiles && settings.access_token_file.empty()) {
    return Fail(Error::InvalidArgument("--access-token FILE is required with --id-token"));
  }

  // Keys: the device key is kept unless rotated or of another type; the client key follows.
  E2EID_TRY(existing_device, dir.LoadKey(dir.device_key_path()));
  crypto::KeyType type = settings.key_type.value_or(existing_device ? existing_device->type()
                                                                    : crypto::KeyType::kP256);
  bool device_generated = false;
  std::optional<crypto::PrivateKey> device_slot;
  if (existing_device && existing_device->type() == type && !settings.rotate_key) {
    device_slot = std::move(*existing_device);
  } else {
    E2EID_TRY(fresh, crypto::PrivateKey::Generate(type));
    device_slot = std::move(fresh);
    device_generated = true;
  }
  const crypto::PrivateKey& device_key = *device_slot;
  bool client_generated = false;
  E2EID_TRY(client_key, LoadOrGenerate(dir, dir.client_key_path(), type, &client_generated));

  E2EID_TRY(http, env.make_http(state.ca_file));
  const std::string allowed_origin = state.device_authority.empty()
                                         ? UrlOrigin(state.directory_url).value_or("")
                                         : state.device_authority;

  // Login.
  std::unique_ptr<OidcLogin> login;
  TokenSet tokens;
  auto save_login = [&](const TokenSet& t) -> Status {
    if (client_generated) {
      E2EID_CHECK_OK(dir.SaveKey(dir.client_key_path(), client_key));
      client_generated = false;
    }
    if (!t.refresh_token.empty()) E2EID_CHECK_OK(dir.SaveRefreshToken(t.refresh_token));
    return Ok();
  };
  LoginOptions login_options;
  login_options.timeout = settings.login_timeout;
  login_options.print = env.print;
  if (settings.login == LoginMode::kTokenFiles) {
    E2EID_TRY(access, ReadTokenFile(settings.access_token_file));
    tokens.access_token = std::move(access);
    tokens.token_type = AccessTokenJkt(tokens.access_token) ? "DPoP" : "Bearer";
    if (!settings.id_token_file.empty()) {
      E2EID_TRY(id, ReadTokenFile(settings.id_token_file));
      tokens.id_token = std::move(id);
    }
    if (client_generated) E2EID_CHECK_OK(dir.SaveKey(dir.client_key_path(), client_key));
    client_generated = false;
  } else {
    E2EID_TRY(discovery, oidc::FetchDiscovery(*http, state.issuer));
    login = std::make_unique<OidcLogin>(*http, std::move(discovery), state.client_id, client_key,
                                        *env.clock, *env.rng, env.sleep);
    auto t = settings.login == LoginMode::kBrowser ? login->LoginWithBrowser(login_options)
                                                   : login->LoginWithDeviceCode(login_options);
    if (!t) return Fail(std::move(t).error().Context("login"));
    tokens = std::move(*t);
    E2EID_CHECK_OK(save_login(tokens));
  }
  Say(env, "Logged in (access token " + std::to_string(tokens.access_token.size()) + " bytes, " +
               tokens.token_type + ")");

  // Identity.
  E2EID_TRY(claims, IdentityClaims(tokens));
  E2EID_TRY(identity, IdentityFromClaims(claims, state.domain, "1"));
  if (!state.device_id.empty() && state.user_id == identity.user_id &&
      IsValidDeviceId(state.device_id)) {
    identity.device_id = state.device_id;
  } else {
    E2EID_TRY(device_id, NewDeviceId(*env.rng));
    identity.device_id = std::move(device_id);
  }
  Say(env, "Enrolling " + identity.display_name + " (" + identity.HandleUri() + ") as device " +
               identity.ClientIdUri());

  AcmeClient acme(*http, client_key, *env.clock, env.sleep, AcmeOptions(state.directory_url));
  OrderContext c{.env = env,
                 .http = *http,
                 .acme = acme,
                 .client_key = client_key,
                 .device_key = device_key,
                 .identity = identity,
                 .tokens = tokens,
                 .mode = settings.oidc_mode,
                 .issuer = state.issuer,
                 .client_id = state.client_id,
                 .allowed_origin = allowed_origin,
                 .validity = settings.validity};
  if (settings.oidc_mode != OidcMode::kDpop) {
    if (login) {
      c.id_token_for_challenge =
          [&](const std::optional<Json>& claims_request,
              const std::optional<std::string>& nonce) -> Result<std::string> {
        LoginOptions o = login_options;
        o.claims = claims_request;
        o.nonce = nonce;
        Say(env, "Logging in again so that the ID token is bound to the challenge");
        auto t = settings.login == LoginMode::kBrowser ? login->LoginWithBrowser(o)
                                                       : login->LoginWithDeviceCode(o);
        if (!t) return Fail(std::move(t).error().Context("login for the wire-oidc-01 challenge"));
        E2EID_CHECK_OK(save_login(*t));
        if (t->id_token.empty()) return Fail(Error::Unauthorized("the login returned no ID token"));
        return t->id_token;
      };
    } else {
      if (tokens.id_token.empty()) {
        return Fail(Error::InvalidArgument(
            "--oidc-mode claims/nonce needs --id-token or an interactive login"));
      }
      c.id_token_for_challenge = [&](const std::optional<Json>&,
                                     const std::optional<std::string>&) -> Result<std::string> {
        return tokens.id_token;
      };
    }
  }
  E2EID_TRY(cert, ObtainCertificate(c));

  if (device_generated) E2EID_CHECK_OK(dir.SaveKey(dir.device_key_path(), device_key));
  E2EID_CHECK_OK(dir.SaveCertificate(cert.leaf_pem, cert.chain_pem));
  state.device_id = identity.device_id;
  state.user_id = identity.user_id;
  state.handle = identity.handle;
  state.display_name = identity.display_name;
  state.account_url = acme.account_url();
  ApplyCertificate(state, cert);
  E2EID_CHECK_OK(dir.SaveState(state));
  return EnrolResult{std::move(state), std::move(cert)};
}

Result<RenewOutcome> RenewDevice(const RenewSettings& settings, FlowEnvironment& env) {
  StateDir dir(settings.state_dir);
  E2EID_TRY(loaded, dir.LoadState());
  if (!loaded) {
    return Fail(Error::NotFound("no enrolment in " + settings.state_dir +
                                " (no state.json); run e2eid enrol first"));
  }
  ClientState state = std::move(*loaded);
  if (!settings.ca_file.empty()) state.ca_file = settings.ca_file;
  E2EID_TRY(cert_pem, ReadFile(dir.cert_path()));
  E2EID_TRY(current, DescribeCertificate(cert_pem));
  E2EID_TRY(client_loaded, dir.LoadKey(dir.client_key_path()));
  E2EID_TRY(device_loaded, dir.LoadKey(dir.device_key_path()));
  if (!client_loaded || !device_loaded) {
    return Fail(Error::NotFound("client.key or device.key is missing in " + settings.state_dir +
                                "; run e2eid enrol again"));
  }
  crypto::PrivateKey client_key = std::move(*client_loaded);
  crypto::PrivateKey device_key = std::move(*device_loaded);

  E2EID_TRY(http, env.make_http(state.ca_file));
  AcmeClient acme(*http, client_key, *env.clock, env.sleep, AcmeOptions(state.directory_url));
  E2EID_CHECK_OK(acme.LoadDirectory());
  std::optional<SuggestedWindow> ari;
  if (!current.ari_cert_id.empty()) {
    auto info = acme.RenewalInfo(current.ari_cert_id);
    if (info) {
      ari = *info;
    } else {
      Say(env, "Renewal information unavailable (" + info.error().detail() +
                   "); using two thirds of the lifetime");
    }
  }
  RenewOutcome outcome;
  outcome.decision =
      DecideRenewal(env.clock->Now(), current.not_before, current.not_after, ari, settings.force);
  if (!outcome.decision.due) {
    outcome.status = RenewOutcome::Status::kNotDue;
    return outcome;
  }
  Say(env, "Renewing: " + outcome.decision.reason);

  E2EID_TRY(refresh_token, dir.LoadRefreshToken());
  if (!refresh_token) {
    outcome.status = RenewOutcome::Status::kRefreshRefused;
    outcome.message =
        "no refresh token is stored in " + settings.state_dir + "; run e2eid enrol again";
    return outcome;
  }
  E2EID_TRY(discovery, oidc::FetchDiscovery(*http, state.issuer));
  OidcLogin login(*http, std::move(discovery), state.client_id, client_key, *env.clock, *env.rng,
                  env.sleep);
  auto tokens = login.Refresh(*refresh_token);
  if (!tokens) {
    if (tokens.error().code() == ErrorCode::kForbidden) {
      outcome.status = RenewOutcome::Status::kRefreshRefused;
      outcome.message = tokens.error().detail();
      return outcome;
    }
    return Fail(std::move(tokens).error().Context("refresh"));
  }
  if (!tokens->refresh_token.empty()) E2EID_CHECK_OK(dir.SaveRefreshToken(tokens->refresh_token));
  if (!tokens->id_token.empty()) {
    E2EID_TRY(id_claims, DecodeJwtClaims(tokens->id_token));
    E2EID_CHECK_OK(CheckIdTokenClaims(id_claims, state.issuer, state.client_id, std::nullopt));
  }

  WireIdentity identity{state.display_name, state.domain, state.handle, state.user_id,
                        state.device_id};
  if (auto claims = IdentityClaims(*tokens)) {
    if (auto fresh = IdentityFromClaims(*claims, state.domain, state.device_id)) {
      if (fresh->user_id != state.user_id) {
        return Fail(Error::Unauthorized(
            "the refreshed tokens belong to another user than the enrolled one; run e2eid enrol"));
      }
      identity = std::move(*fresh);
    }
  }
  if (settings.rotate_key) {
    E2EID_TRY(fresh_key, crypto::PrivateKey::Generate(device_key.type()));
    device_key = std::move(fresh_key);
  }
  std::optional<std::chrono::seconds> validity;
  if (state.validity_seconds > 0) validity = std::chrono::seconds(state.validity_seconds);
  const std::string allowed_origin = state.device_authority.empty()
                                         ? UrlOrigin(state.directory_url).value_or("")
                                         : state.device_authority;
  OrderContext c{.env = env,
                 .http = *http,
                 .acme = acme,
                 .client_key = client_key,
                 .device_key = device_key,
                 .identity = identity,
                 .tokens = *tokens,
                 .mode = OidcMode::kDpop,
                 .issuer = state.issuer,
                 .client_id = state.client_id,
                 .allowed_origin = allowed_origin,
                 .validity = validity,
                 .replaces = current.ari_cert_id};
  E2EID_TRY(cert, ObtainCertificate(c));
  if (settings.rotate_key) E2EID_CHECK_OK(dir.SaveKey(dir.device_key_path(), device_key));
  E2EID_CHECK_OK(dir.SaveCertificate(cert.leaf_pem, cert.chain_pem));
  state.handle = identity.handle;
  state.display_name = identity.display_name;
  state.account_url = acme.account_url();
  ApplyCertificate(state, cert);
  E2EID_CHECK_OK(dir.SaveState(state));
  outcome.status = RenewOutcome::Status::kRenewed;
  outcome.result = EnrolResult{std::move(state), std::move(cert)};
  return outcome;
}

}  // namespace e2eid::cli
