#include "oidc/verifier.h"

#include <gtest/gtest.h>

#include <barrier>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "oidc/fake_http_client.h"
#include "oidc/test_keys.h"

namespace e2eid::oidc {
namespace {

using std::chrono::seconds;
using testing::FakeHttpClient;
using testing::JwkOf;
using testing::RawRsaJwk;
using testing::SignJwt;
using testing::SignJwtRawRsa;
using testing::TestKeys;
using testing::UnsignedJwt;

constexpr char kIssuer[] = "https://idp.example/realms/acme";
constexpr char kDiscoveryUrl[] = "https://idp.example/realms/acme/.well-known/openid-configuration";
constexpr char kJwksUrl[] = "https://idp.example/realms/acme/protocol/openid-connect/certs";
constexpr char kClientId[] = "e2eid";
constexpr int64_t kStart = 1'800'000'000;

// The keys tokens are signed with in these tests, each with the kid the JWKS gives it.
enum class KeyId {
  kRs256,         // RSA-2048, kid "rsa-1", JWKS alg RS256
  kRs512,         // another RSA-2048, kid "rsa-512", JWKS alg RS512 (signed by hand)
  kEs256,         // P-256, kid "ec-1"
  kEs384,         // P-384, kid "ec384-1"
  kEs512,         // P-521, kid "ec521-1" (ES512 is not in the default allowed_algs)
  kEdDsa,         // Ed25519, kid "ed-1"
  kRsa1024,       // RSA-1024, kid "rsa1024" (in the JWKS, but refused)
  kEs256Wrong,    // signed with another P-256 key, but with kid "ec-1"
  kEdDsaWrong,    // signed with another Ed25519 key, but with kid "ed-1"
  kRs256AsRs512,  // RS256 with the key whose JWKS entry says RS512
};

std::vector<Json> DefaultJwks() {
  const TestKeys& k = TestKeys::Get();
  return {JwkOf(k.rsa, "rsa-1", "RS256"),
          JwkOf(k.rsa2, "rsa-512", "RS512"),
          JwkOf(k.p256, "ec-1"),
          JwkOf(k.p384, "ec384-1", "ES384"),
          JwkOf(k.p521, "ec521-1"),
          JwkOf(k.ed25519, "ed-1", "EdDSA"),
          RawRsaJwk(k.rsa1024.get(), "rsa1024"),
          JwkOf(k.rsa2, "enc-1", "RSA-OAEP", "enc")};
}

// Signs `claims` with the key `id` names; the header gets that key's kid unless `header` has a
// "kid" already (a null "kid" means: no kid at all).
std::string Sign(KeyId id, Json header, const Json& claims) {
  const TestKeys& k = TestKeys::Get();
  auto with_kid = [&](std::string_view kid) {
    if (!header.contains("kid")) {
      header["kid"] = kid;
    } else if (header["kid"].is_null()) {
      header.erase("kid");
    }
    return header;
  };
  using crypto::JwsAlg;
  switch (id) {
    case KeyId::kRs256:
      return SignJwt(k.rsa, JwsAlg::kRS256, with_kid("rsa-1"), claims);
    case KeyId::kRs512: {
      Json h = with_kid("rsa-512");
      h["alg"] = "RS512";
      return SignJwtRawRsa(k.rsa2.get(), EVP_sha512(), h, claims);
    }
    case KeyId::kEs256:
      return SignJwt(k.p256, JwsAlg::kES256, with_kid("ec-1"), claims);
    case KeyId::kEs384:
      return SignJwt(k.p384, JwsAlg::kES384, with_kid("ec384-1"), claims);
    case KeyId::kEs512:
      return SignJwt(k.p521, JwsAlg::kES512, with_kid("ec521-1"), claims);
    case KeyId::kEdDsa:
      return SignJwt(k.ed25519, JwsAlg::kEdDSA, with_kid("ed-1"), claims);
    case KeyId::kRsa1024: {
      Json h = with_kid("rsa1024");
      h["alg"] = "RS256";
      return SignJwtRawRsa(k.rsa1024.get(), EVP_sha256(), h, claims);
    }
    case KeyId::kEs256Wrong:
      return SignJwt(k.p256b, JwsAlg::kES256, with_kid("ec-1"), claims);
    case KeyId::kEdDsaWrong:
      return SignJwt(k.ed25519b, JwsAlg::kEdDSA, with_kid("ed-1"), claims);
    case KeyId::kRs256AsRs512:
      return SignJwt(k.rsa2, JwsAlg::kRS256, with_kid("rsa-512"), claims);
  }
  return "";
}

// Replaces the payload of a signed token, keeping header and signature.
std::string Tamper(const std::string& token) {
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.rfind('.');
  Json claims = Json::parse(AsString(*Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1))));
  claims["sub"] = "someone-else";
  return token.substr(0, dot1) + "." + Base64UrlEncode(claims.dump()) + token.substr(dot2);
}

class FakeIdp {
 public:
  FakeIdp() {
    const Json discovery = {
        {"issuer", kIssuer},
        {"authorization_endpoint", std::string(kIssuer) + "/protocol/openid-connect/auth"},
        {"token_endpoint", std::string(kIssuer) + "/protocol/openid-connect/token"},
        {"jwks_uri", kJwksUrl},
        {"id_token_signing_alg_values_supported", {"RS256", "ES256"}}};
    http.Serve(kDiscoveryUrl, 200, discovery.dump());
    SetKeys(DefaultJwks());
  }
  void SetKeys(const std::vector<Json>& keys,
               std::optional<std::string> cache_control = std::nullopt) {
    HttpHeaders headers = {{"Content-Type", "application/json"}};
    if (cache_control) headers.emplace_back("cache-control", *cache_control);
    http.Serve(kJwksUrl, 200, Json{{"keys", keys}}.dump(), headers);
  }
  int discovery_fetches() const { return http.Count(kDiscoveryUrl); }
  int jwks_fetches() const { return http.Count(kJwksUrl); }

  FakeHttpClient http;
};

ProviderOptions DefaultOptions() {
  ProviderOptions o;
  o.issuer = kIssuer;
  o.client_id = kClientId;
  return o;
}

Json DefaultClaims(int64_t now) {
  return Json{{"iss", kIssuer},
              {"sub", "f7a3c1e0-user-1"},
              {"aud", kClientId},
              {"azp", kClientId},
              {"exp", now + 300},
              {"iat", now},
              {"email", "alice@example.com"},
              {"email_verified", true},
              {"realm_access", {{"roles", {"offline_access", "e2ei-user"}}}},
              {"groups", {"/staff", "/staff/dev"}}};
}

// ---- token checks, data-driven ----

struct TokenCase {
  std::string name;
  KeyId key = KeyId::kEs256;
  std::function<void(Json& header, Json& claims, int64_t now)> mutate;
  std::function<void(ProviderOptions&)> provider;
  VerifyOptions verify;
  bool access_token = false;
  bool tamper = false;
  // When set, builds the whole token from the (mutated) claims instead of signing.
  std::function<std::string(const Json& claims)> raw;
  std::string expected;  // "" = must verify; else a substring of the kUnauthorized detail
};

void PrintTo(const TokenCase& c, std::ostream* os) { *os << c.name; }

class TokenCaseTest : public ::testing::TestWithParam<TokenCase> {};

TEST_P(TokenCaseTest, Verifies) {
  const TokenCase& c = GetParam();
  FakeClock clock(FromUnix(kStart));
  FakeIdp idp;
  ProviderOptions options = DefaultOptions();
  if (c.provider) c.provider(options);
  auto verifier = MakeProvider(options, idp.http, clock);
  ASSERT_TRUE(verifier) << verifier.error().ToString();

  Json header = {{"typ", "JWT"}};
  Json claims = DefaultClaims(kStart);
  if (c.mutate) c.mutate(header, claims, kStart);
  std::string token = c.raw ? c.raw(claims) : Sign(c.key, header, claims);
  if (c.tamper) token = Tamper(token);

  auto result = c.access_token ? (*verifier)->VerifyAccessToken(token, c.verify)
                               : (*verifier)->VerifyIdToken(token, c.verify);
  if (c.expected.empty()) {
    ASSERT_TRUE(result) << result.error().ToString();
    EXPECT_EQ(result->at("sub"), claims.at("sub"));
    return;
  }
  ASSERT_FALSE(result) << "token verified but should fail with: " << c.expected;
  EXPECT_EQ(result.error().code(), ErrorCode::kUnauthorized) << result.error().ToString();
  EXPECT_NE(result.error().detail().find(c.expected), std::string::npos)
      << "detail: " << result.error().detail() << "\nexpected to contain: " << c.expected;
  EXPECT_TRUE(result.error().detail().starts_with(c.access_token ? "access token: " : "id token: "))
      << result.error().detail();
}

void AllowAlso(ProviderOptions& o, const std::string& alg) { o.allowed_algs.push_back(alg); }

std::vector<TokenCase> Cases() {
  std::vector<TokenCase> v;
  auto add = [&](TokenCase c) { v.push_back(std::move(c)); };
  // ---- valid tokens, every algorithm ----
  add({.name = "ValidRs256", .key = KeyId::kRs256});
  add({.name = "ValidEs256", .key = KeyId::kEs256});
  add({.name = "ValidEs384", .key = KeyId::kEs384});
  add({.name = "ValidEdDsa", .key = KeyId::kEdDsa});
  add({.name = "ValidRs512WhenAllowed", .key = KeyId::kRs512, .provider = [](ProviderOptions& o) {
         AllowAlso(o, "RS512");
       }});
  add({.name = "ValidEs512WhenAllowed", .key = KeyId::kEs512, .provider = [](ProviderOptions& o) {
         AllowAlso(o, "ES512");
       }});
  // ---- bad signatures, every algorithm ----
  for (KeyId id : {KeyId::kRs256, KeyId::kEs256, KeyId::kEs384, KeyId::kEdDsa}) {
    add({.name = "TamperedPayload" + std::to_string(static_cast<int>(id)),
         .key = id,
         .tamper = true,
         .expected = "signature does not verify"});
  }
  add({.name = "TamperedRs512",
       .key = KeyId::kRs512,
       .provider = [](ProviderOptions& o) { AllowAlso(o, "RS512"); },
       .tamper = true,
       .expected = "signature does not verify"});
  add({.name = "OtherEcKeySameKid",
       .key = KeyId::kEs256Wrong,
       .expected = "signature does not verify with key \"ec-1\""});
  add({.name = "OtherEdKeySameKid",
       .key = KeyId::kEdDsaWrong,
       .expected = "signature does not verify with key \"ed-1\""});
  add({.name = "TruncatedEcSignature",
       .raw =
           [](const Json& claims) {
             const std::string t = Sign(KeyId::kEs256, Json{{"typ", "JWT"}}, claims);
             const size_t dot = t.rfind('.');
             Bytes sig = *Base64UrlDecode(t.substr(dot + 1));
             sig.resize(sig.size() - 2);
             return t.substr(0, dot + 1) + Base64UrlEncode(sig);
           },
       .expected = "signature does not verify"});
  // ---- header: alg, kid, typ, crit ----
  add({.name = "AlgNone",
       .raw =
           [](const Json& c) {
             return UnsignedJwt({{"alg", "none"}, {"kid", "ec-1"}}, c, "");
           },
       .expected = "header \"alg\" \"none\" is not allowed"});
  add({.name = "AlgNoneUpperCase",
       .raw =
           [](const Json& c) {
             return UnsignedJwt({{"alg", "NONE"}}, c, "");
           },
       .expected = "header \"alg\" \"NONE\" is not allowed"});
  add({.name = "AlgHs256",
       .raw =
           [](const Json& c) {
             return UnsignedJwt({{"alg", "HS256"}, {"kid", "ec-1"}}, c, "mac");
           },
       .expected = "header \"alg\" \"HS256\" is not allowed: HMAC"});
  add({.name = "AlgHs256EvenIfConfigured",
       .provider = [](ProviderOptions& o) { o.allowed_algs = {"ES256"}; },
       .raw =
           [](const Json& c) {
             return UnsignedJwt({{"alg", "HS256"}}, c, "mac");
           },
       .expected = "HMAC"});
  add({.name = "AlgNotAllowed",
       .key = KeyId::kEs512,
       .expected = "header \"alg\" \"ES512\" is not allowed"});
  add({.name = "AlgNotAllowedByConfig",
       .key = KeyId::kRs256,
       .provider =
           [](ProviderOptions& o) {
             o.allowed_algs = {"ES256", "EdDSA"};
           },
       .expected = "header \"alg\" \"RS256\" is not allowed (allowed: ES256, EdDSA)"});
  add({.name = "AlgPs256Unknown",
       .raw =
           [](const Json& c) {
             return UnsignedJwt({{"alg", "PS256"}}, c, "sig");
           },
       .expected = "header \"alg\" \"PS256\" is not allowed"});
  add({.name = "AlgMissing",
       .raw =
           [](const Json& c) {
             return UnsignedJwt({{"kid", "ec-1"}}, c, "sig");
           },
       .expected = "header \"alg\" is missing"});
  add({.name = "AlgDoesNotFitKey",
       .mutate = [](Json& h, Json&, int64_t) { h["kid"] = "ec384-1"; },
       .expected = "does not fit key \"ec384-1\""});
  add({.name = "AlgDiffersFromJwkAlg",
       .key = KeyId::kRs256AsRs512,
       .expected = "differs from the \"alg\" \"RS512\" of key \"rsa-512\""});
  add({.name = "UnknownKid",
       .mutate = [](Json& h, Json&, int64_t) { h["kid"] = "no-such-key"; },
       .expected = "header \"kid\" \"no-such-key\" is not in the JWKS"});
  add({.name = "KidOfEncryptionKey",
       .mutate = [](Json& h, Json&, int64_t) { h["kid"] = "enc-1"; },
       .expected = "header \"kid\" \"enc-1\" names a key"});
  add({.name = "KidNotString",
       .mutate = [](Json& h, Json&, int64_t) { h["kid"] = 5; },
       .expected = "header \"kid\" must be a string"});
  add({.name = "KidMissingWithSeveralKeys",
       .mutate = [](Json& h, Json&, int64_t) { h["kid"] = nullptr; },
       .expected = "header \"kid\" is missing"});
  add({.name = "Rsa1024KeyRefused",
       .key = KeyId::kRsa1024,
       .expected = "\"rsa1024\" names a key the JWKS holds but e2eid refuses: RSA key too small"});
  add({.name = "CritRefused",
       .mutate = [](Json& h, Json&, int64_t) { h["crit"] = {"exp"}; },
       .expected = "header \"crit\""});
  add({.name = "TypMatches",
       .mutate = [](Json& h, Json&, int64_t) { h["typ"] = "at+jwt"; },
       .verify = {.typ = "at+jwt"}});
  add({.name = "TypMatchesWithMediaTypePrefix",
       .mutate = [](Json& h, Json&, int64_t) { h["typ"] = "application/at+JWT"; },
       .verify = {.typ = "at+jwt"}});
  add({.name = "TypWrong",
       .verify = {.typ = "at+jwt"},
       .expected = "header \"typ\" is \"JWT\", expected \"at+jwt\""});
  add({.name = "TypMissing",
       .mutate = [](Json& h, Json&, int64_t) { h.erase("typ"); },
       .verify = {.typ = "JWT"},
       .expected = "header \"typ\" is missing"});
  add({.name = "TypNotCheckedWhenNotAsked",
       .mutate = [](Json& h, Json&, int64_t) { h["typ"] = "whatever"; }});
  // ---- syntax ----
  add({.name = "NotAJws",
       .raw = [](const Json&) { return std::string("abc.def"); },
       .expected = "not a compact JWS"});
  add({.name = "FourParts",
       .raw = [](const Json& c) { return Sign(KeyId::kEs256, Json::object(), c) + ".x"; },
       .expected = "not a compact JWS"});
  add({.name = "HeaderNotBase64url",
       .raw = [](const Json& c) { return "e30=." + Base64UrlEncode(c.dump()) + ".c2ln"; },
       .expected = "header is not base64url"});
  add({.name = "PayloadNotJson",
       .raw =
           [](const Json&) {
             return Base64UrlEncode(Json{{"alg", "ES256"}}.dump()) + "." +
                    Base64UrlEncode(std::string_view("not json")) + ".c2ln";
           },
       .expected = "JWT payload is not valid JSON"});
  add({.name = "SignatureMissing",
       .raw =
           [](const Json& c) {
             return UnsignedJwt({{"alg", "ES256"}, {"kid", "ec-1"}}, c, "");
           },
       .expected = "signature is missing"});
  // ---- iss ----
  add({.name = "IssMismatch",
       .mutate = [](Json&, Json& c, int64_t) { c["iss"] = "https://evil.example/realms/acme"; },
       .expected = "claim \"iss\" is \"https://evil.example/realms/acme\""});
  add({.name = "IssTrailingSlash",
       .mutate = [](Json&, Json& c, int64_t) { c["iss"] = std::string(kIssuer) + "/"; },
       .expected = "claim \"iss\""});
  add({.name = "IssMissing",
       .mutate = [](Json&, Json& c, int64_t) { c.erase("iss"); },
       .expected = "claim \"iss\" is missing"});
  // ---- times ----
  add({.name = "ExpiredBeyondLeeway",
       .mutate = [](Json&, Json& c, int64_t now) { c["exp"] = now - 61; },
       .expected = "claim \"exp\": the token expired"});
  add({.name = "ExpiredWithinLeeway",
       .mutate = [](Json&, Json& c, int64_t now) { c["exp"] = now - 60; }});
  add({.name = "ExpiredWithSmallerLeeway",
       .mutate = [](Json&, Json& c, int64_t now) { c["exp"] = now - 30; },
       .provider = [](ProviderOptions& o) { o.leeway = seconds(10); },
       .expected = "claim \"exp\""});
  add({.name = "ExpFractional",
       .mutate = [](Json&, Json& c, int64_t now) { c["exp"] = static_cast<double>(now) + 10.5; }});
  add({.name = "ExpMissing",
       .mutate = [](Json&, Json& c, int64_t) { c.erase("exp"); },
       .expected = "claim \"exp\" is missing"});
  add({.name = "ExpNotNumber",
       .mutate = [](Json&, Json& c, int64_t now) { c["exp"] = std::to_string(now + 100); },
       .expected = "claim \"exp\" must be a number"});
  add({.name = "ExpHuge",
       .mutate = [](Json&, Json& c, int64_t) { c["exp"] = 1e300; },
       .expected = "claim \"exp\" is out of range"});
  add({.name = "NbfInFuture",
       .mutate = [](Json&, Json& c, int64_t now) { c["nbf"] = now + 120; },
       .expected = "claim \"nbf\""});
  add({.name = "NbfWithinLeeway",
       .mutate = [](Json&, Json& c, int64_t now) { c["nbf"] = now + 60; }});
  add({.name = "IatInFuture",
       .mutate = [](Json&, Json& c, int64_t now) { c["iat"] = now + 61; },
       .expected = "claim \"iat\" is in the future"});
  add({.name = "IatMissing",
       .mutate = [](Json&, Json& c, int64_t) { c.erase("iat"); },
       .expected = "claim \"iat\" is missing"});
  add({.name = "MaxAgeExceeded",
       .mutate = [](Json&, Json& c, int64_t now) { c["iat"] = now - 361; },
       .verify = {.max_age = seconds(300)},
       .expected = "max_age"});
  add({.name = "MaxAgeWithinLeeway",
       .mutate = [](Json&, Json& c, int64_t now) { c["iat"] = now - 360; },
       .verify = {.max_age = seconds(300)}});
  // ---- aud / azp / sub ----
  add({.name = "AudMissingClient",
       .mutate = [](Json&, Json& c, int64_t) { c["aud"] = "account"; },
       .expected = "claim \"aud\" does not contain client id \"e2eid\""});
  add({.name = "AudArrayMissingClient",
       .mutate =
           [](Json&, Json& c, int64_t) {
             c["aud"] = {"account", "other"};
           },
       .expected = "claim \"aud\" does not contain client id \"e2eid\""});
  add({.name = "AudMissing",
       .mutate = [](Json&, Json& c, int64_t) { c.erase("aud"); },
       .expected = "claim \"aud\" is missing"});
  add({.name = "AudWrongType",
       .mutate =
           [](Json&, Json& c, int64_t) {
             c["aud"] = {"e2eid", 3};
           },
       .expected = "claim \"aud\" must be a string or an array of strings"});
  add({.name = "AudSingleElementArray", .mutate = [](Json&, Json& c, int64_t) {
         c["aud"] = {"e2eid"};
         c.erase("azp");
       }});
  add({.name = "AzpRequiredForSeveralAudiences",
       .mutate =
           [](Json&, Json& c, int64_t) {
             c["aud"] = {"e2eid", "account"};
             c.erase("azp");
           },
       .expected = "claim \"azp\" is missing"});
  add({.name = "AzpMustBeClient",
       .mutate =
           [](Json&, Json& c, int64_t) {
             c["aud"] = {"e2eid", "account"};
             c["azp"] = "account";
           },
       .expected = "claim \"azp\" is \"account\", not client id \"e2eid\""});
  add({.name = "AzpWithSeveralAudiences", .mutate = [](Json&, Json& c, int64_t) {
         c["aud"] = {"account", "e2eid"};
       }});
  add({.name = "AzpOtherWithSingleAudience",
       .mutate = [](Json&, Json& c, int64_t) { c["azp"] = "other"; },
       .expected = "claim \"azp\""});
  add({.name = "SubMissing",
       .mutate = [](Json&, Json& c, int64_t) { c.erase("sub"); },
       .expected = "claim \"sub\""});
  // ---- access tokens ----
  add({.name = "AccessTokenByAzp",
       .mutate = [](Json&, Json& c, int64_t) { c["aud"] = "account"; },
       .access_token = true});
  add({.name = "AccessTokenByAud",
       .mutate =
           [](Json&, Json& c, int64_t) {
             c["aud"] = {"account", "e2eid"};
             c["azp"] = "web-app";
           },
       .access_token = true});
  add({.name = "AccessTokenOtherClient",
       .mutate =
           [](Json&, Json& c, int64_t) {
             c["aud"] = "account";
             c["azp"] = "web-app";
           },
       .access_token = true,
       .expected = "neither claim \"azp\" nor claim \"aud\" names client id \"e2eid\""});
  add({.name = "AccessTokenNoAudNoAzp",
       .mutate =
           [](Json&, Json& c, int64_t) {
             c.erase("aud");
             c.erase("azp");
           },
       .access_token = true,
       .expected = "neither claim \"azp\""});
  add({.name = "AccessTokenExpired",
       .mutate = [](Json&, Json& c, int64_t now) { c["exp"] = now - 100; },
       .access_token = true,
       .expected = "claim \"exp\""});
  // ---- policy ----
  const auto realm_roles = [](std::vector<std::string> roles) {
    return [roles](ProviderOptions& o) {
      o.roles_claim_path = "realm_access.roles";
      o.required_roles = roles;
    };
  };
  const auto groups = [](std::vector<std::string> roles) {
    return [roles](ProviderOptions& o) {
      o.roles_claim_path = "groups";
      o.required_roles = roles;
    };
  };
  add({.name = "RealmRolePresent", .provider = realm_roles({"admin", "e2ei-user"})});
  add({.name = "RealmRoleAbsent",
       .provider = realm_roles({"admin"}),
       .expected = "claim \"realm_access.roles\" contains none of the required roles (admin)"});
  add({.name = "RealmRolesClaimMissing",
       .mutate = [](Json&, Json& c, int64_t) { c.erase("realm_access"); },
       .provider = realm_roles({"e2ei-user"}),
       .expected = "claim \"realm_access.roles\" is missing or not an array of strings"});
  add({.name = "RealmRolesNotStrings",
       .mutate =
           [](Json&, Json& c, int64_t) {
             c["realm_access"]["roles"] = {"e2ei-user", 1};
           },
       .provider = realm_roles({"e2ei-user"}),
       .expected = "claim \"realm_access.roles\" is missing or not an array of strings"});
  add({.name = "GroupPresent", .provider = groups({"/staff"})});
  add({.name = "GroupAbsent",
       .provider = groups({"/admins"}),
       .expected = "claim \"groups\" contains none of the required roles"});
  add({.name = "GroupsNotArray",
       .mutate = [](Json&, Json& c, int64_t) { c["groups"] = "/staff"; },
       .provider = groups({"/staff"}),
       .expected = "claim \"groups\" is missing or not an array of strings"});
  add({.name = "PolicySkippedWhenNotApplied",
       .provider = realm_roles({"admin"}),
       .verify = {.apply_policy = false}});
  add({.name = "EmailVerifiedRequired",
       .provider = [](ProviderOptions& o) { o.require_email_verified = true; }});
  add({.name = "EmailNotVerified",
       .mutate = [](Json&, Json& c, int64_t) { c["email_verified"] = false; },
       .provider = [](ProviderOptions& o) { o.require_email_verified = true; },
       .expected = "claim \"email_verified\" is not true"});
  add({.name = "EmailVerifiedAsString",
       .mutate = [](Json&, Json& c, int64_t) { c["email_verified"] = "true"; },
       .provider = [](ProviderOptions& o) { o.require_email_verified = true; },
       .expected = "claim \"email_verified\" is not true"});
  add({.name = "EmailVerifiedMissing",
       .mutate = [](Json&, Json& c, int64_t) { c.erase("email_verified"); },
       .provider = [](ProviderOptions& o) { o.require_email_verified = true; },
       .expected = "claim \"email_verified\" is not true"});
  add({.name = "EmailNotVerifiedButNotRequired",
       .mutate = [](Json&, Json& c, int64_t) { c["email_verified"] = false; }});
  // ---- check order: the signature is checked before any claim ----
  add({.name = "BadSignatureBeforeClaims",
       .key = KeyId::kEs256Wrong,
       .mutate = [](Json&, Json& c, int64_t) { c["iss"] = "https://evil.example"; },
       .expected = "signature does not verify"});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Cases, TokenCaseTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<TokenCase>& info) {
                           return info.param.name;
                         });

// ---- provider construction and helpers ----

TEST(MakeProviderTest, RefusesBadConfiguration) {
  FakeHttpClient http;
  FakeClock clock(FromUnix(kStart));
  const std::vector<std::pair<std::string, std::function<void(ProviderOptions&)>>> cases = {
      {"issuer", [](ProviderOptions& o) { o.issuer.clear(); }},
      {"issuer", [](ProviderOptions& o) { o.issuer = "http://idp.example/realms/acme"; }},
      {"client id", [](ProviderOptions& o) { o.client_id.clear(); }},
      {"allowed_algs", [](ProviderOptions& o) { o.allowed_algs.clear(); }},
      {"\"none\"", [](ProviderOptions& o) { o.allowed_algs = {"none"}; }},
      {"\"HS256\"",
       [](ProviderOptions& o) {
         o.allowed_algs = {"RS256", "HS256"};
       }},
      {"\"PS256\"", [](ProviderOptions& o) { o.allowed_algs = {"PS256"}; }},
      {"jwks_min_cache", [](ProviderOptions& o) { o.jwks_min_cache = seconds(100000); }},
      {"negative", [](ProviderOptions& o) { o.leeway = seconds(-1); }},
      {"roles_claim_path", [](ProviderOptions& o) { o.required_roles = {"admin"}; }},
      {"required_roles", [](ProviderOptions& o) { o.roles_claim_path = "groups"; }},
  };
  for (const auto& [expected, mutate] : cases) {
    ProviderOptions o = DefaultOptions();
    mutate(o);
    auto p = MakeProvider(o, http, clock);
    ASSERT_FALSE(p) << expected;
    EXPECT_EQ(p.error().code(), ErrorCode::kConfig) << p.error().ToString();
    EXPECT_NE(p.error().detail().find(expected), std::string::npos) << p.error().ToString();
  }
  EXPECT_EQ(http.Total(), 0);
}

TEST(MakeProviderTest, DoesNotContactTheIdp) {
  FakeHttpClient http;
  FakeClock clock(FromUnix(kStart));
  auto p = MakeProvider(DefaultOptions(), http, clock);
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ((*p)->issuer(), kIssuer);
  EXPECT_EQ((*p)->client_id(), kClientId);
  EXPECT_EQ(http.Total(), 0);
}

TEST(FindClaimTest, WalksDotPaths) {
  const Json claims = DefaultClaims(kStart);
  ASSERT_NE(FindClaim(claims, "realm_access.roles"), nullptr);
  EXPECT_TRUE(FindClaim(claims, "realm_access.roles")->is_array());
  EXPECT_EQ(*FindClaim(claims, "sub"), "f7a3c1e0-user-1");
  EXPECT_EQ(FindClaim(claims, "realm_access.nope"), nullptr);
  EXPECT_EQ(FindClaim(claims, "sub.x"), nullptr);
  EXPECT_EQ(FindClaim(claims, ""), nullptr);
  EXPECT_EQ(FindClaim(claims, "realm_access..roles"), nullptr);
  EXPECT_EQ(FindClaim(claims, "realm_access.roles."), nullptr);
  EXPECT_TRUE(HasRole(claims, "realm_access.roles", "e2ei-user"));
  EXPECT_FALSE(HasRole(claims, "realm_access.roles", "admin"));
  EXPECT_TRUE(HasRole(claims, "groups", "/staff"));
  EXPECT_FALSE(HasRole(claims, "email", "alice@example.com"));  // not an array
  EXPECT_FALSE(HasRole(Json{{"r", {"a", 1}}}, "r", "a"));       // not all strings
}

// ---- the JWKS cache ----

class CacheTest : public ::testing::Test {
 protected:
  CacheTest() : clock_(FromUnix(kStart)) {}

  TokenVerifier& Verifier(ProviderOptions options = DefaultOptions()) {
    auto p = MakeProvider(std::move(options), idp_.http, clock_);
    EXPECT_TRUE(p) << p.error().ToString();
    verifier_ = std::move(*p);
    return *verifier_;
  }
  std::string Token(KeyId key, std::optional<std::string> kid = std::nullopt) {
    Json header = {{"typ", "JWT"}};
    if (kid) header["kid"] = *kid;
    return Sign(key, header, DefaultClaims(ToUnix(clock_.Now())));
  }

  FakeClock clock_;
  FakeIdp idp_;
  std::unique_ptr<TokenVerifier> verifier_;
};

TEST_F(CacheTest, HonoursMaxAge) {
  idp_.SetKeys(DefaultJwks(), "public, max-age=120");
  TokenVerifier& v = Verifier();
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.discovery_fetches(), 1);
  EXPECT_EQ(idp_.jwks_fetches(), 1);
  clock_.Advance(seconds(119));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kRs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 1);
  clock_.Advance(seconds(1));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEdDsa), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 2);
  EXPECT_EQ(idp_.discovery_fetches(), 1);  // discovery is read once
}

TEST_F(CacheTest, DefaultLifetimeWithoutCacheControl) {
  TokenVerifier& v = Verifier();
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  clock_.Advance(seconds(299));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 1);
  clock_.Advance(seconds(1));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 2);
}

TEST_F(CacheTest, MaxAgeIsBoundedBelowAndAbove) {
  idp_.SetKeys(DefaultJwks(), "no-cache");
  TokenVerifier& v = Verifier();
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  clock_.Advance(seconds(29));  // jwks_min_cache is 30 s
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 1);
  idp_.SetKeys(DefaultJwks(), "max-age=31536000");
  clock_.Advance(seconds(1));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 2);
  clock_.Advance(seconds(24 * 3600 - 1));  // jwks_max_cache is one day
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 2);
  clock_.Advance(seconds(1));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 3);
}

TEST_F(CacheTest, UnknownKidRefetchesOnceThenIsRateLimited) {
  TokenVerifier& v = Verifier();
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 1);

  auto r = v.VerifyIdToken(Token(KeyId::kEs256, "random-1"), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(r.error().detail().find("\"random-1\""), std::string::npos) << r.error().detail();
  EXPECT_EQ(idp_.jwks_fetches(), 2);  // one refetch

  for (int i = 0; i < 20; ++i) {
    auto again = v.VerifyIdToken(Token(KeyId::kEs256, "random-x" + std::to_string(i)), {});
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code(), ErrorCode::kUnauthorized);
  }
  EXPECT_EQ(idp_.jwks_fetches(), 2);  // none within jwks_refetch_interval
  clock_.Advance(seconds(9));
  ASSERT_FALSE(v.VerifyIdToken(Token(KeyId::kEs256, "random-2"), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 2);

  clock_.Advance(seconds(1));
  ASSERT_FALSE(v.VerifyIdToken(Token(KeyId::kEs256, "random-3"), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 3);
  // Known kids never cause a fetch.
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 3);
}

TEST_F(CacheTest, KeyRotation) {
  const TestKeys& k = TestKeys::Get();
  idp_.SetKeys({JwkOf(k.p256, "ec-1")}, "max-age=3600");
  TokenVerifier& v = Verifier();
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));

  // The IdP adds a key: a token signed with it is accepted at once (one refetch).
  idp_.SetKeys({JwkOf(k.p256, "ec-1"), JwkOf(k.ed25519, "ed-1")}, "max-age=3600");
  clock_.Advance(seconds(60));
  auto r = v.VerifyIdToken(Token(KeyId::kEdDsa), {});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(idp_.jwks_fetches(), 2);
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));

  // The IdP retires the old key: once the cache expires, tokens signed with it are refused.
  idp_.SetKeys({JwkOf(k.ed25519, "ed-1")}, "max-age=3600");
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));  // still cached
  clock_.Advance(seconds(3600));
  auto old = v.VerifyIdToken(Token(KeyId::kEs256), {});
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(old.error().detail().find("\"ec-1\" is not in the JWKS"), std::string::npos);
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEdDsa), {}));
}

TEST_F(CacheTest, IdpDownWithCachedKeysKeepsWorkingUntilMaxStale) {
  TokenVerifier& v = Verifier();
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  idp_.http.SetDown(true);
  clock_.Advance(seconds(301));  // past the cache lifetime: a refresh is attempted and fails
  auto r = v.VerifyIdToken(Token(KeyId::kEs256), {});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(idp_.jwks_fetches(), 2);
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kRs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 2);  // the failed refresh is not retried at once

  clock_.Advance(seconds(10));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 3);  // retried after jwks_refetch_interval

  clock_.Advance(seconds(24 * 3600 - 311));  // exactly jwks_max_stale after the last success
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  clock_.Advance(seconds(1));
  auto stale = v.VerifyIdToken(Token(KeyId::kEs256), {});
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), ErrorCode::kUnavailable) << stale.error().ToString();
  EXPECT_NE(stale.error().detail().find("jwks_max_stale"), std::string::npos);

  // The IdP comes back: verification recovers after the refetch interval.
  idp_.http.SetDown(false);
  clock_.Advance(seconds(10));
  auto back = v.VerifyIdToken(Token(KeyId::kEs256), {});
  ASSERT_TRUE(back) << back.error().ToString();
}

TEST_F(CacheTest, IdpDownWithoutKeysFailsWithConnection) {
  idp_.http.SetDown(true);
  TokenVerifier& v = Verifier();
  auto r = v.VerifyIdToken(Token(KeyId::kEs256), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kConnection) << r.error().ToString();
  EXPECT_EQ(idp_.http.Total(), 1);
  // Failures are rate-limited too: no request until jwks_refetch_interval has passed.
  auto again = v.VerifyAccessToken(Token(KeyId::kEs256), {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kConnection);
  EXPECT_EQ(idp_.http.Total(), 1);

  idp_.http.SetDown(false);
  clock_.Advance(seconds(10));
  auto ok = v.VerifyIdToken(Token(KeyId::kEs256), {});
  ASSERT_TRUE(ok) << ok.error().ToString();
}

TEST_F(CacheTest, IdpErrorStatusWithoutKeysIsUnavailable) {
  idp_.http.Serve(kJwksUrl, 503, "maintenance");
  TokenVerifier& v = Verifier();
  auto r = v.VerifyIdToken(Token(KeyId::kEs256), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().ToString();
  EXPECT_NE(r.error().detail().find("503"), std::string::npos);
}

TEST_F(CacheTest, BrokenJwksKeepsTheOldKeys) {
  TokenVerifier& v = Verifier();
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  idp_.http.Serve(kJwksUrl, 200, "{\"keys\": 5}");
  clock_.Advance(seconds(400));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.jwks_fetches(), 2);
}

TEST_F(CacheTest, DiscoveryIssuerMismatchIsUnavailable) {
  idp_.http.Serve(kDiscoveryUrl, 200,
                  Json{{"issuer", "https://evil.example"},
                       {"authorization_endpoint", "https://evil.example/a"},
                       {"token_endpoint", "https://evil.example/t"},
                       {"jwks_uri", "https://evil.example/k"}}
                      .dump());
  TokenVerifier& v = Verifier();
  auto r = v.VerifyIdToken(Token(KeyId::kEs256), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().ToString();
  EXPECT_NE(r.error().detail().find("\"issuer\""), std::string::npos) << r.error().detail();
  EXPECT_EQ(idp_.jwks_fetches(), 0);
}

TEST_F(CacheTest, JwksNotFoundRereadsDiscovery) {
  TokenVerifier& v = Verifier();
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  idp_.http.Serve(kJwksUrl, 404, "gone");
  clock_.Advance(seconds(300));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));  // stale keys still serve
  EXPECT_EQ(idp_.discovery_fetches(), 1);
  clock_.Advance(seconds(10));
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  EXPECT_EQ(idp_.discovery_fetches(), 2);
}

TEST_F(CacheTest, SingleKeyJwksNeedsNoKid) {
  const TestKeys& k = TestKeys::Get();
  Json jwk = JwkOf(k.p256, "ec-1");
  jwk.erase("kid");
  idp_.SetKeys({jwk});
  TokenVerifier& v = Verifier();
  Json header = {{"typ", "JWT"}, {"kid", nullptr}};
  auto r = v.VerifyIdToken(Sign(KeyId::kEs256, header, DefaultClaims(kStart)), {});
  ASSERT_TRUE(r) << r.error().ToString();
  // A token naming a kid the set does not have is still refused.
  auto named = v.VerifyIdToken(Token(KeyId::kEs256), {});
  ASSERT_FALSE(named);
  EXPECT_NE(named.error().detail().find("\"kid\""), std::string::npos);
}

TEST_F(CacheTest, ConcurrentVerificationsShareOneFetch) {
  TokenVerifier& v = Verifier();
  constexpr int kThreads = 8;
  const std::string token = Token(KeyId::kEs256);
  std::barrier start(kThreads);
  std::vector<int> ok(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      ok[i] = v.VerifyIdToken(token, {}).has_value() ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(ok[i], 1) << "thread " << i;
  EXPECT_EQ(idp_.discovery_fetches(), 1);
  EXPECT_EQ(idp_.jwks_fetches(), 1);
}

TEST_F(CacheTest, ConcurrentUnknownKidsShareOneRefetch) {
  TokenVerifier& v = Verifier();
  ASSERT_TRUE(v.VerifyIdToken(Token(KeyId::kEs256), {}));
  constexpr int kThreads = 8;
  std::vector<std::string> tokens;
  for (int i = 0; i < kThreads; ++i)
    tokens.push_back(Token(KeyId::kEs256, "kid-" + std::to_string(i)));
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  std::vector<int> unauthorized(kThreads, 0);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto r = v.VerifyIdToken(tokens[i], {});
      unauthorized[i] = !r && r.error().code() == ErrorCode::kUnauthorized ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(unauthorized[i], 1) << "thread " << i;
  EXPECT_EQ(idp_.jwks_fetches(), 2);
}

}  // namespace
}  // namespace e2eid::oidc
