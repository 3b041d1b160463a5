#include "acme/wire_validators.h"

#include "acme/wire.h"
#include "core/encoding.h"
#include "core/json.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"

namespace e2eid::acme {
namespace {

Error Unauthorized(std::string_view what, std::string detail) {
  return Error::Unauthorized(std::string(what) + ": " + std::move(detail));
}

// The account key thumbprint: the part of the key authorization after the last '.'.
std::string AccountThumbprint(const ValidationRequest& request) {
  const size_t dot = request.key_authorization.rfind('.');
  return dot == std::string::npos ? std::string() : request.key_authorization.substr(dot + 1);
}

// Exactly one string member of `names` in the payload object; returns {name, value}.
Result<std::pair<std::string, std::string>> OneTokenMember(const Json& payload,
                                                           std::initializer_list<const char*> names,
                                                           std::string_view challenge) {
  if (!payload.is_object()) {
    return Fail(Error::Malformed(std::string(challenge) + " response must be a JSON object"));
  }
  std::optional<std::pair<std::string, std::string>> found;
  std::string accepted;
  for (const char* name : names) {
    if (!accepted.empty()) accepted += " or ";
    accepted += std::string("'") + name + "'";
    if (!payload.contains(name)) continue;
    const Json& v = payload.at(name);
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      return Fail(Error::Malformed(std::string(challenge) + " response member '" + name +
                                   "' must be a non-empty string"));
    }
    if (found) {
      return Fail(Error::Malformed(std::string(challenge) + " response must hold exactly one of " +
                                   accepted));
    }
    found = std::make_pair(std::string(name), v.get<std::string>());
  }
  if (!found) {
    return Fail(Error::Malformed(std::string(challenge) + " response must hold " + accepted));
  }
  return std::move(*found);
}

bool SecretEquals(std::string_view a, std::string_view b) {
  return crypto::ConstantTimeEquals(a, b);
}

Status RequireStringClaim(const Json& claims, std::string_view name, std::string_view expected,
                          std::string_view what, std::string_view expected_desc) {
  auto value = StringMember(claims, name);
  if (!value) return Fail(Unauthorized(what, "claim \"" + std::string(name) + "\" is missing"));
  if (*value != expected) {
    return Fail(Unauthorized(what, "claim \"" + std::string(name) + "\" is not " +
                                       std::string(expected_desc) + " ('" + std::string(expected) +
                                       "')"));
  }
  return Ok();
}

// A compact JWS whose payload is a JSON object, parsed but not verified.
struct Jwt {
  crypto::Jws jws;
  Json claims;
};

Result<Jwt> ParseJwt(std::string_view token, std::string_view what) {
  auto jws = crypto::ParseCompactJws(token);
  if (!jws) {
    return Fail(Unauthorized(what, "not a valid compact JWS: " + jws.error().detail()));
  }
  auto claims = ParseJson(AsString(jws->payload), what);
  if (!claims || !claims->is_object()) {
    return Fail(Unauthorized(what, "the payload is not a JSON object"));
  }
  return Jwt{std::move(*jws), std::move(*claims)};
}

Status CheckTyp(const Json& header, std::string_view expected, std::string_view what) {
  auto typ = StringMember(header, "typ");
  if (!typ || !EqualsIgnoreCase(*typ, expected)) {
    return Fail(Unauthorized(what, "header \"typ\" must be \"" + std::string(expected) + "\""));
  }
  return Ok();
}

// exp in the future (with leeway) and at most max_lifetime ahead; iat/nbf not in the future.
Status CheckLifetime(const Json& claims, TimePoint now, std::chrono::seconds leeway,
                     std::chrono::seconds max_lifetime, std::string_view what) {
  auto number = [&](const char* name) -> std::optional<int64_t> {
    auto it = claims.find(name);
    if (it == claims.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  const int64_t t = ToUnix(now);
  auto exp = number("exp");
  if (!exp) return Fail(Unauthorized(what, "claim \"exp\" is missing or not an integer"));
  if (*exp + leeway.count() < t)
    return Fail(Unauthorized(what, "claim \"exp\": the token expired"));
  if (*exp > t + max_lifetime.count() + leeway.count()) {
    return Fail(Unauthorized(what, "claim \"exp\" is more than " +
                                       std::to_string(max_lifetime.count()) +
                                       " seconds in the future"));
  }
  for (const char* name : {"iat", "nbf"}) {
    if (!claims.contains(name)) {
      if (std::string_view(name) == "iat") {
        return Fail(Unauthorized(what, "claim \"iat\" is missing"));
      }
      continue;
    }
    auto v = number(name);
    if (!v)
      return Fail(Unauthorized(what, "claim \"" + std::string(name) + "\" is not an integer"));
    if (*v > t + leeway.count()) {
      return Fail(Unauthorized(what, "claim \"" + std::string(name) + "\" is in the future"));
    }
  }
  return Ok();
}

}  // namespace

Result<OidcBinding> ParseOidcBinding(std::string_view name) {
  if (name == "claims") return OidcBinding::kClaims;
  if (name == "nonce") return OidcBinding::kNonce;
  return Fail(Error::InvalidArgument("unknown OIDC binding '" + std::string(name) +
                                     "' (accepted: claims, nonce)"));
}

// ---- wire-oidc-01 -------------------------------------------------------------------------------

WireOidcValidator::WireOidcValidator(oidc::TokenVerifier& verifier, WireOidcOptions options)
    : verifier_(verifier), options_(std::move(options)) {}

std::string WireOidcValidator::Target() const {
  return verifier_.issuer() + "?client_id=" + verifier_.client_id();
}

Status WireOidcValidator::Validate(const ValidationRequest& request) {
  E2EID_CHECK_OK(ValidateWithClaims(request));
  return Ok();
}

Result<Json> WireOidcValidator::ValidateWithClaims(const ValidationRequest& request) {
  E2EID_TRY(identity, ParseWireIdentifier(request.identifier_type, request.identifier_value,
                                          options_.domain));
  E2EID_TRY(member,
            OneTokenMember(request.payload, {"id_token", "access_token"}, kWireOidcChallenge));
  const std::string thumbprint = AccountThumbprint(request);
  Json claims;
  std::string mode;
  if (member.first == "id_token") {
    constexpr std::string_view what = "id token";
    auto verified = verifier_.VerifyIdToken(member.second, {});
    if (!verified) return Fail(std::move(verified.error()));
    claims = std::move(*verified);
    if (options_.binding == OidcBinding::kClaims) {
      auto keyauth = StringMember(claims, "keyauth");
      if (!keyauth) return Fail(Unauthorized(what, "claim \"keyauth\" is missing"));
      if (!SecretEquals(*keyauth, request.key_authorization)) {
        return Fail(Unauthorized(what,
                                 "claim \"keyauth\" does not match this challenge's token and "
                                 "the ACME account key"));
      }
      E2EID_CHECK_OK(RequireStringClaim(claims, "acme_aud", request.challenge_url, what,
                                        "this challenge's URL"));
      mode = "id_token+keyauth";
    } else {
      auto nonce = StringMember(claims, "nonce");
      if (!nonce) return Fail(Unauthorized(what, "claim \"nonce\" is missing"));
      const std::string expected = Base64UrlEncode(crypto::Sha256(request.key_authorization));
      if (!SecretEquals(*nonce, expected)) {
        return Fail(Unauthorized(what,
                                 "claim \"nonce\" is not base64url(SHA-256(key authorization)) "
                                 "of this challenge and the ACME account key"));
      }
      mode = "id_token+nonce";
    }
  } else {
    constexpr std::string_view what = "access token";
    if (!options_.accept_bound_access_token) {
      return Fail(Error::Malformed(
          "wire-oidc-01: this server accepts only an 'id_token' (access tokens are disabled)"));
    }
    oidc::VerifyOptions verify;
    verify.max_age = options_.max_access_token_age;
    auto verified = verifier_.VerifyAccessToken(member.second, verify);
    if (!verified) return Fail(std::move(verified.error()));
    claims = std::move(*verified);
    const Json* cnf = oidc::FindClaim(claims, "cnf.jkt");
    if (cnf == nullptr || !cnf->is_string()) {
      return Fail(Unauthorized(
          what, "claim \"cnf.jkt\" is missing: the token is not DPoP-bound (RFC 9449)"));
    }
    if (thumbprint.empty() || !SecretEquals(cnf->get<std::string>(), thumbprint)) {
      return Fail(
          Unauthorized(what, "claim \"cnf.jkt\" is not the thumbprint of the ACME account key"));
    }
    mode = "access_token+dpop";
  }
  const std::string what = member.first == "id_token" ? "id token" : "access token";
  auto name = StringMember(claims, options_.name_claim);
  if (!name) {
    return Fail(Unauthorized(what, "claim \"" + options_.name_claim + "\" is missing"));
  }
  if (*name != identity.display_name) {
    return Fail(Unauthorized(what, "claim \"" + options_.name_claim + "\" ('" + *name +
                                       "') is not the identifier's name ('" +
                                       identity.display_name + "')"));
  }
  auto handle = StringMember(claims, options_.handle_claim);
  if (!handle) {
    return Fail(Unauthorized(what, "claim \"" + options_.handle_claim + "\" is missing"));
  }
  const std::string handle_uri = WireHandleUri(*handle, options_.domain);
  if (handle_uri != identity.handle_uri) {
    return Fail(Unauthorized(what, "claim \"" + options_.handle_claim + "\" maps to '" +
                                       handle_uri + "', not the identifier's handle '" +
                                       identity.handle_uri + "'"));
  }
  Json out = {{"mode", mode}, {"iss", claims.value("iss", "")}, {"sub", claims.value("sub", "")}};
  if (auto jti = StringMember(claims, "jti")) out["jti"] = *jti;
  return out;
}

// ---- wire-dpop-01 -------------------------------------------------------------------------------

WireDpopValidator::WireDpopValidator(std::vector<crypto::PublicKey> authority_keys,
                                     WireDpopOptions options, const Clock& clock)
    : keys_(std::move(authority_keys)), options_(std::move(options)), clock_(clock) {}

Status WireDpopValidator::Validate(const ValidationRequest& request) {
  E2EID_CHECK_OK(ValidateWithClaims(request));
  return Ok();
}

Result<Json> WireDpopValidator::ValidateWithClaims(const ValidationRequest& request) {
  E2EID_TRY(identity, ParseWireIdentifier(request.identifier_type, request.identifier_value,
                                          options_.domain));
  if (request.identifier_type != kWireDeviceType) {
    return Fail(Error::Malformed("wire-dpop-01 validates wireapp-device identifiers only"));
  }
  E2EID_TRY(member, OneTokenMember(request.payload, {"access_token"}, kWireDpopChallenge));
  const std::string client_id = identity.client.Uri();
  const std::string thumbprint = AccountThumbprint(request);
  const TimePoint now = clock_.Now();

  // The access token of the device authority.
  constexpr std::string_view what = "device access token";
  E2EID_TRY(at, ParseJwt(member.second, what));
  E2EID_CHECK_OK(CheckTyp(at.jws.header, "at+jwt", what));
  bool signed_ok = false;
  for (const auto& key : keys_) {
    if (crypto::VerifyJws(at.jws, key)) {
      signed_ok = true;
      break;
    }
  }
  if (!signed_ok) {
    return Fail(Unauthorized(what, "the signature is not by the configured device authority"));
  }
  E2EID_CHECK_OK(CheckLifetime(at.claims, now, options_.leeway, options_.max_lifetime, what));
  E2EID_CHECK_OK(
      RequireStringClaim(at.claims, "iss", request.target, what, "the challenge's target"));
  E2EID_CHECK_OK(
      RequireStringClaim(at.claims, "aud", request.challenge_url, what, "this challenge's URL"));
  E2EID_CHECK_OK(
      RequireStringClaim(at.claims, "chal", request.token, what, "this challenge's token"));
  E2EID_CHECK_OK(RequireStringClaim(at.claims, "scope", "wire_client_id", what, "wire_client_id"));
  for (const char* name : {"sub", "client_id"}) {
    auto v = StringMember(at.claims, name);
    if (!v) return Fail(Unauthorized(what, "claim \"" + std::string(name) + "\" is missing"));
    auto parsed = ParseWireClientId(*v);
    if (!parsed || parsed->Uri() != client_id) {
      return Fail(Unauthorized(
          what, "claim \"" + std::string(name) + "\" is not the identifier's client-id"));
    }
  }
  const Json* kid = oidc::FindClaim(at.claims, "cnf.kid");
  if (kid == nullptr || !kid->is_string() || thumbprint.empty() ||
      !SecretEquals(kid->get<std::string>(), thumbprint)) {
    return Fail(
        Unauthorized(what, "claim \"cnf.kid\" is not the thumbprint of the ACME account key"));
  }
  auto at_nonce = StringMember(at.claims, "nonce");
  if (!at_nonce || at_nonce->empty()) return Fail(Unauthorized(what, "claim \"nonce\" is missing"));
  if (!StringMember(at.claims, "jti")) return Fail(Unauthorized(what, "claim \"jti\" is missing"));
  auto proof_text = StringMember(at.claims, "proof");
  if (!proof_text) return Fail(Unauthorized(what, "claim \"proof\" is missing"));

  // The client's DPoP proof inside it, signed by the ACME account key.
  constexpr std::string_view pwhat = "DPoP proof";
  E2EID_TRY(proof, ParseJwt(*proof_text, pwhat));
  E2EID_CHECK_OK(CheckTyp(proof.jws.header, "dpop+jwt", pwhat));
  if (!proof.jws.header.contains("jwk") || !proof.jws.header.at("jwk").is_object()) {
    return Fail(Unauthorized(pwhat, "header \"jwk\" is missing"));
  }
  auto proof_key = crypto::PublicKeyFromJwk(proof.jws.header.at("jwk"));
  if (!proof_key) {
    return Fail(
        Unauthorized(pwhat, "header \"jwk\" is not acceptable: " + proof_key.error().detail()));
  }
  E2EID_TRY(proof_thumbprint, crypto::JwkThumbprint(*proof_key));
  if (thumbprint.empty() || !SecretEquals(proof_thumbprint, thumbprint)) {
    return Fail(Unauthorized(pwhat, "header \"jwk\" is not the ACME account key"));
  }
  if (auto st = crypto::VerifyJws(proof.jws, *proof_key); !st) {
    return Fail(Unauthorized(pwhat, "the signature does not verify: " + st.error().detail()));
  }
  E2EID_CHECK_OK(CheckLifetime(proof.claims, now, options_.leeway, options_.max_lifetime, pwhat));
  E2EID_CHECK_OK(RequireStringClaim(proof.claims, "htm", "POST", pwhat, "POST"));
  E2EID_CHECK_OK(
      RequireStringClaim(proof.claims, "htu", request.target, pwhat, "the challenge's target"));
  E2EID_CHECK_OK(RequireStringClaim(proof.claims, "aud", request.challenge_url, pwhat,
                                    "this challenge's URL"));
  E2EID_CHECK_OK(
      RequireStringClaim(proof.claims, "chal", request.token, pwhat, "this challenge's token"));
  E2EID_CHECK_OK(
      RequireStringClaim(proof.claims, "nonce", *at_nonce, pwhat, "the access token's nonce"));
  {
    auto sub = StringMember(proof.claims, "sub");
    auto parsed = sub ? ParseWireClientId(*sub) : Result<WireClientId>(Fail(Error::Malformed("")));
    if (!parsed || parsed->Uri() != client_id) {
      return Fail(Unauthorized(pwhat, "claim \"sub\" is not the identifier's client-id"));
    }
  }
  if (!StringMember(proof.claims, "jti"))
    return Fail(Unauthorized(pwhat, "claim \"jti\" is missing"));
  E2EID_CHECK_OK(RequireStringClaim(proof.claims, "handle", identity.handle_uri, pwhat,
                                    "the identifier's handle"));
  if (proof.claims.contains("name")) {
    E2EID_CHECK_OK(RequireStringClaim(proof.claims, "name", identity.display_name, pwhat,
                                      "the identifier's name"));
  }
  return Json{{"mode", "dpop"},
              {"client_id", client_id},
              {"jti", at.claims.value("jti", "")},
              {"proof_jti", proof.claims.value("jti", "")}};
}

}  // namespace e2eid::acme
