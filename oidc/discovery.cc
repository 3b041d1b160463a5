#include "oidc/discovery.h"

#include <string>
#include <utility>

#include "oidc/quote.h"

namespace e2eid::oidc {
namespace {

constexpr std::string_view kWhat = "discovery document";

std::string_view WithoutTrailingSlash(std::string_view s) {
  if (s.ends_with('/')) s.remove_suffix(1);
  return s;
}

Error MemberError(std::string_view member, std::string_view problem) {
  return Error::Malformed(std::string(kWhat) + ": member \"" + std::string(member) + "\" " +
                          std::string(problem));
}

// Reads an endpoint member: absent (or null) gives "" unless `required`; present must be a string
// that `http` accepts.
Result<std::string> Endpoint(const Json& doc, std::string_view member, bool required,
                             const HttpClient& http) {
  const auto it = doc.find(member);
  if (it == doc.end() || it->is_null()) {
    if (required) return Fail(MemberError(member, "is missing"));
    return std::string();
  }
  if (!it->is_string()) return Fail(MemberError(member, "must be a string"));
  std::string url = it->get<std::string>();
  if (auto ok = http.CheckUrl(url); !ok) {
    return Fail(
        MemberError(member, "(" + Quote(url) + ") is not acceptable: " + ok.error().detail()));
  }
  return url;
}

Result<std::vector<std::string>> StringArray(const Json& doc, std::string_view member) {
  std::vector<std::string> out;
  const auto it = doc.find(member);
  if (it == doc.end() || it->is_null()) return out;
  if (!it->is_array()) return Fail(MemberError(member, "must be an array of strings"));
  for (const Json& v : *it) {
    if (!v.is_string()) return Fail(MemberError(member, "must be an array of strings"));
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

std::string DiscoveryUrl(std::string_view issuer) {
  return std::string(WithoutTrailingSlash(issuer)) + "/.well-known/openid-configuration";
}

Result<Discovery> ParseDiscovery(std::string_view body, std::string_view issuer,
                                 const HttpClient& http) {
  auto parsed = ParseJson(body, kWhat);
  if (!parsed) return Fail(std::move(parsed).error());
  const Json& doc = *parsed;
  if (!doc.is_object()) return Fail(Error::Malformed(std::string(kWhat) + " is not a JSON object"));

  Discovery d;
  const auto iss = doc.find("issuer");
  if (iss == doc.end() || iss->is_null()) return Fail(MemberError("issuer", "is missing"));
  if (!iss->is_string()) return Fail(MemberError("issuer", "must be a string"));
  d.issuer = iss->get<std::string>();
  if (WithoutTrailingSlash(d.issuer) != WithoutTrailingSlash(issuer)) {
    return Fail(MemberError("issuer", "is " + Quote(d.issuer) + ", expected " + Quote(issuer)));
  }
  E2EID_TRY(authorization, Endpoint(doc, "authorization_endpoint", true, http));
  E2EID_TRY(token, Endpoint(doc, "token_endpoint", true, http));
  E2EID_TRY(jwks, Endpoint(doc, "jwks_uri", true, http));
  E2EID_TRY(userinfo, Endpoint(doc, "userinfo_endpoint", false, http));
  E2EID_TRY(device, Endpoint(doc, "device_authorization_endpoint", false, http));
  E2EID_TRY(end_session, Endpoint(doc, "end_session_endpoint", false, http));
  E2EID_TRY(id_token_algs, StringArray(doc, "id_token_signing_alg_values_supported"));
  E2EID_TRY(dpop_algs, StringArray(doc, "dpop_signing_alg_values_supported"));
  d.authorization_endpoint = std::move(authorization);
  d.token_endpoint = std::move(token);
  d.jwks_uri = std::move(jwks);
  d.userinfo_endpoint = std::move(userinfo);
  d.device_authorization_endpoint = std::move(device);
  d.end_session_endpoint = std::move(end_session);
  d.id_token_signing_alg_values_supported = std::move(id_token_algs);
  d.dpop_signing_alg_values_supported = std::move(dpop_algs);
  return d;
}

Result<Discovery> FetchDiscovery(HttpClient& http, std::string_view issuer) {
  FetchRequest request;
  request.url = DiscoveryUrl(issuer);
  request.headers.emplace_back("Accept", "application/json");
  auto response = http.Send(request);
  if (!response) return Fail(std::move(response).error().Context("fetching OIDC discovery"));
  if (response->status != 200) {
    return Fail(Error::Unavailable("fetching OIDC discovery: GET " + request.url +
                                   " answered HTTP " + std::to_string(response->status)));
  }
  auto discovery = ParseDiscovery(response->body, issuer, http);
  if (!discovery) {
    return Fail(std::move(discovery).error().Context("OIDC discovery from " + request.url));
  }
  return discovery;
}

}  // namespace e2eid::oidc
