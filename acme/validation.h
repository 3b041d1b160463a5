// Challenge validation seam between the ACME engine and the code that reaches out to clients.
//
// The engine never validates on an HTTP I/O thread: when a client POSTs to a challenge, the engine
// marks it "processing", hands a job to its JobRunner and answers at once; the job calls a
// ChallengeValidator and records the outcome in the store. Validators for the identity challenges
// (wire-oidc-01, wire-dpop-01) are synchronous checks of posted tokens and implement the same
// interface.
#ifndef E2EID_ACME_VALIDATION_H_
#define E2EID_ACME_VALIDATION_H_

#include <functional>
#include <string>

#include "core/error.h"
#include "core/json.h"

namespace e2eid::acme {

// Runs a job later on a thread that may block (server::WorkQueue::Post in production; tests may run
// it inline). Errors: kUnavailable when the queue is full or shutting down.
using JobRunner = std::function<Status(std::function<void()> job)>;

struct ValidationRequest {
  std::string challenge_type;     // "http-01", "tls-alpn-01", ...
  std::string identifier_type;    // "dns"
  std::string identifier_value;   // e.g. "host.example.com"
  std::string token;              // the challenge token
  std::string key_authorization;  // token "." base64url(JWK thumbprint of the account key)
  Json payload;                   // the client's challenge response body (identity challenges)
  std::string challenge_url;      // this challenge's URL (identity challenges bind to it)
  std::string target;             // the challenge's "target" (identity challenges), else empty
};

// Validates one challenge. May block (network I/O); must be thread-safe.
class ChallengeValidator {
 public:
  virtual ~ChallengeValidator() = default;
  // Ok when the client proved control. Errors use the RFC 8555 types that a client should see
  // in the challenge's "error": kConnection (could not connect / timeout), kDns (name did not
  // resolve), kIncorrectResponse (reached, but wrong content), kUnauthorized, kTls, kMalformed.
  virtual Status Validate(const ValidationRequest& request) = 0;

  // Like Validate, and on success returns a JSON object describing what was validated (stored in
  // the challenge's validation_claims, e.g. the token's issuer, subject and id). The default
  // returns an empty object.
  virtual Result<Json> ValidateWithClaims(const ValidationRequest& request) {
    E2EID_CHECK_OK(Validate(request));
    return Json::object();
  }

  // True for validators that only check what the client posted (no outbound connection to the
  // client): the engine then validates while answering the challenge POST, so the reply already
  // shows the outcome and a failure is returned as the problem document of that reply. Such a
  // validator may still block briefly (e.g. a JWKS fetch with its own timeout). kUnavailable and
  // kConnection outcomes of a synchronous validator are treated as transient: the challenge stays
  // pending and the client may retry.
  virtual bool synchronous() const { return false; }
};

}  // namespace e2eid::acme

#endif  // E2EID_ACME_VALIDATION_H_
