// OpenID Connect discovery (OpenID Connect Discovery 1.0 §4): the provider's metadata document at
// {issuer}/.well-known/openid-configuration.
//
// Thread-safe (a pure function of its arguments; the HttpClient must be thread-safe itself).
#ifndef E2EID_OIDC_DISCOVERY_H_
#define E2EID_OIDC_DISCOVERY_H_

#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "oidc/http_client.h"

namespace e2eid::oidc {

struct Discovery {  // the members e2eid uses of {issuer}/.well-known/openid-configuration
  std::string issuer, authorization_endpoint, token_endpoint, jwks_uri;
  std::string userinfo_endpoint, device_authorization_endpoint,
      end_session_endpoint;  // may be empty
  std::vector<std::string> id_token_signing_alg_values_supported;
  std::vector<std::string> dpop_signing_alg_values_supported;
};

// The discovery URL of `issuer`: the issuer with one trailing '/' removed, plus
// "/.well-known/openid-configuration".
std::string DiscoveryUrl(std::string_view issuer);

// Parses and checks a discovery document (`body`) for `issuer`; `http` decides which endpoint URLs
// are acceptable (HttpClient::CheckUrl: https, or http on loopback when the client allows it).
// Checks: the body is a JSON object (duplicate members refused); "issuer" is a string equal to
// `issuer` once one trailing '/' is removed from each; "authorization_endpoint", "token_endpoint"
// and "jwks_uri" are present; every endpoint present is a string and an acceptable URL; the two
// "*_alg_values_supported" members, when present, are arrays of strings. Other members are
// ignored.
// Errors: kMalformed naming the member that is wrong (e.g. "discovery document: member
// \"jwks_uri\" (\"http://idp.example/certs\") is not acceptable: ...").
Result<Discovery> ParseDiscovery(std::string_view body, std::string_view issuer,
                                 const HttpClient& http);

// GET discovery, parse, check issuer equals `issuer` (after removing one trailing '/'), endpoints
// https (or http on loopback when the HttpClient allows it). Errors name the member that is wrong.
// Errors: those of HttpClient::Send (kConnection, kIo, kInvalidArgument for a refused issuer URL);
// kUnavailable when the IdP answers with an HTTP status other than 200; those of ParseDiscovery.
Result<Discovery> FetchDiscovery(HttpClient& http, std::string_view issuer);

}  // namespace e2eid::oidc

#endif  // E2EID_OIDC_DISCOVERY_H_
