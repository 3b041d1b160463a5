// The enrolment client's flows behind `e2eid enrol` and `e2eid renew`: log in at the IdP, create
// the ACME order for the device's Wire identity, answer the wire-dpop-01 (device authority) and
// wire-oidc-01 (IdP) challenges, finalize with a CSR made by the device key, check the issued
// chain and write the state directory (cli/client_state.h).
//
// Security rules the flows keep:
// - the IdP access token is only sent to the device authority when the wire-dpop-01 target is on
//   the allowed origin (the ACME server's own origin unless --device-authority names another)
//   and has the path .../clients/{device id}/access-token;
// - the wire-oidc-01 target must name our issuer and client id;
// - nothing is written before the issued chain passed CheckIssuedChain, except the client key
//   and the refresh token right after a login or refresh (the IdP may have rotated the refresh
//   token, and the token is bound to the client key);
// - tokens and keys are never logged or printed.
//
// Thread safety: one flow at a time per state directory.
#ifndef E2EID_CLI_ENROL_FLOW_H_
#define E2EID_CLI_ENROL_FLOW_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cli/client_state.h"
#include "cli/enrol_cert.h"
#include "cli/enrol_identity.h"
#include "cli/enrol_util.h"
#include "cli/oidc_login.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/random.h"
#include "crypto/key.h"
#include "oidc/http_client.h"

namespace e2eid::cli {

enum class LoginMode { kBrowser, kDevice, kTokenFiles };
// How the wire-oidc-01 challenge is answered:
//   kDpop    post the IdP access token, DPoP-bound to the client key (no second login);
//   kClaims  log in again with the OIDC claims request {"id_token":{"keyauth":...,"acme_aud":...}}
//            and post the ID token (Wire's way; the IdP must echo the claims);
//   kNonce   log in again with nonce = base64url(SHA-256(keyauth)) and post the ID token (for
//            IdPs that cannot echo custom claims; the server must be configured for it).
enum class OidcMode { kDpop, kClaims, kNonce };

// The collaborators of a flow; tests substitute fakes.
struct FlowEnvironment {
  // Makes the HTTP client for the ACME server, the device authority and the IdP, trusting
  // `ca_file` (empty: the system store).
  std::function<Result<std::unique_ptr<oidc::HttpClient>>(const std::string& ca_file)> make_http;
  const Clock* clock = nullptr;
  RandomSource* rng = nullptr;
  Sleeper sleep;
  // User-facing progress lines and prompts (stderr in the CLI).
  std::function<void(const std::string&)> print;
};

struct EnrolSettings {
  std::string state_dir;
  // Empty values are taken from an existing state.json (and are required without one).
  std::string directory_url;
  std::string issuer;
  std::string client_id;
  std::string domain;
  std::string ca_file;
  std::string device_authority;  // allowed origin of wire-dpop-01 targets; empty = ACME origin
  std::optional<crypto::KeyType> key_type;  // nullopt: keep the existing key's type, else p256
  bool rotate_key = false;
  LoginMode login = LoginMode::kBrowser;
  OidcMode oidc_mode = OidcMode::kDpop;
  std::string id_token_file;      // LoginMode::kTokenFiles
  std::string access_token_file;  // LoginMode::kTokenFiles
  std::chrono::seconds login_timeout{300};
  std::optional<std::chrono::seconds> validity;
};

struct EnrolResult {
  ClientState state;
  IssuedCertificate certificate;
};

// First enrolment, or a fresh interactive enrolment over an existing state directory (keeping the
// device id and, unless rotate_key or another key type, the device key).
// Errors: kInvalidArgument for settings that are missing or contradict the state; the errors of
// the login, the ACME server (problem documents), the device authority and the checks.
Result<EnrolResult> EnrolDevice(const EnrolSettings& settings, FlowEnvironment& env);

struct RenewSettings {
  std::string state_dir;
  bool force = false;
  bool rotate_key = false;
  std::string ca_file;  // overrides the state's when non-empty
};

struct RenewOutcome {
  enum class Status { kRenewed, kNotDue, kRefreshRefused };
  Status status = Status::kNotDue;
  RenewalDecision decision;
  std::optional<EnrolResult> result;  // kRenewed
  std::string message;                // kRefreshRefused: the IdP's refusal, for the user
};

// Renews silently when due (see DecideRenewal; ARI is asked when the CA offers it): refresh grant
// with DPoP, then the ACME flow in dpop mode with "replaces". A refused refresh token is an
// outcome (kRefreshRefused), not an error. Errors: kNotFound when the directory holds no
// enrolment; the errors of the refresh (other than invalid_grant) and of the ACME flow.
Result<RenewOutcome> RenewDevice(const RenewSettings& settings, FlowEnvironment& env);

// Exposed for tests: the checks of a challenge target before the client sends anything to it.
// The device target must be allowed_origin + "/.../clients/{device_id}/access-token" (allowed
// origin = scheme://host[:port] without a trailing slash). Errors: kRejectedIdentifier naming the
// target.
Status CheckDeviceTarget(std::string_view target, std::string_view allowed_origin,
                         std::string_view device_id);
// The user target is "{issuer}?client_id={client_id}". Errors: kRejectedIdentifier.
Status CheckOidcTarget(std::string_view target, std::string_view issuer,
                       std::string_view client_id);
// scheme://host[:port] of an absolute URL. Errors: kInvalidArgument.
Result<std::string> UrlOrigin(std::string_view url);

}  // namespace e2eid::cli

#endif  // E2EID_CLI_ENROL_FLOW_H_
