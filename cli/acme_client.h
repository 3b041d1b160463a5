// A small RFC 8555 ACME client for the enrolment flow: directory, nonces, JWS-signed requests
// (flattened JSON, "application/jose+json"), accounts, orders, polling, finalize, certificate
// download and RFC 9773 renewal information.
//
// Requests are signed with the account key given at construction: newAccount with "jwk", every
// other request with "kid" (the account URL). Each response's Replay-Nonce is kept for the next
// request; a badNonce answer is retried once with the fresh nonce.
//
// Errors: a problem document (or any HTTP status >= 400) becomes an Error whose code is the
// problem type's (e.g. kBadNonce, kUnauthorized, kRejectedIdentifier; kServerInternal for
// unknown types) and whose detail is "<type>: <detail>" plus the subproblems, so the CLI can
// print both; Retry-After is carried as Error::retry_after. Transport failures come from the
// HttpClient (kConnection). A response that is not the JSON the protocol requires is kMalformed.
//
// Thread safety: none; one AcmeClient per flow. Not copyable.
#ifndef E2EID_CLI_ACME_CLIENT_H_
#define E2EID_CLI_ACME_CLIENT_H_

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cli/enrol_cert.h"
#include "cli/enrol_util.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/http.h"
#include "core/json.h"
#include "crypto/key.h"
#include "oidc/http_client.h"

namespace e2eid::cli {

// Parses Retry-After: delay-seconds or an IMF-fixdate (relative to `now`). nullopt when absent
// or unparsable; negative delays become zero.
std::optional<std::chrono::seconds> ParseRetryAfter(const std::optional<std::string>& value,
                                                    TimePoint now);

struct AcmeResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;
  Json json;  // the parsed body when it is a JSON document, else null

  std::optional<std::string> Header(std::string_view name) const {
    return FindHeader(headers, name);
  }
};

// The Error for a failed response (status >= 400), from its problem document when there is one.
Error ProblemToError(const AcmeResponse& response);
// The Error for a problem document embedded in a resource ("error" of an order or challenge).
Error ProblemJsonToError(const Json& problem);

struct AcmeClientOptions {
  std::string directory_url;
  // Polling stops with kUnavailable once the waits add up to this.
  std::chrono::seconds poll_budget{60};
  // Wait between polls when the server sends no Retry-After.
  std::chrono::milliseconds poll_interval{1000};
  // Upper bound for one wait, whatever Retry-After says.
  std::chrono::milliseconds max_poll_wait{10000};
};

class AcmeClient {
 public:
  // `http`, `account_key` and `clock` must outlive the client.
  AcmeClient(oidc::HttpClient& http, const crypto::PrivateKey& account_key, const Clock& clock,
             Sleeper sleep, AcmeClientOptions options);
  AcmeClient(const AcmeClient&) = delete;
  AcmeClient& operator=(const AcmeClient&) = delete;

  // GET the directory. Errors: kMalformed when it is not a JSON object with string newNonce,
  // newAccount and newOrder URLs.
  Status LoadDirectory();
  const Json& directory() const { return directory_; }
  // A URL from the directory ("newOrder", "renewalInfo", ...). Errors: kNotFound when absent.
  Result<std::string> Endpoint(std::string_view name) const;

  // newAccount {"termsOfServiceAgreed":true,"contact":[]} with "jwk"; returns the account URL
  // (Location) and uses it as "kid" from then on. An existing account for the key is fine.
  Result<std::string> NewAccount();
  const std::string& account_url() const { return account_url_; }

  // A kid-signed POST with a JSON payload, or POST-as-GET (empty payload).
  Result<AcmeResponse> Post(const std::string& url, const Json& payload);
  Result<AcmeResponse> PostAsGet(const std::string& url, std::string_view accept = {});

  // newOrder: returns the order object; `order_url` receives the Location.
  Result<Json> NewOrder(const Json& payload, std::string* order_url);

  // POST-as-GET the order until its status is `until` ("ready" or "valid"; "valid" is also
  // accepted when waiting for "ready"). Honours Retry-After. Errors: the order's "error" when it
  // becomes "invalid" (kUnauthorized when it has none); kUnavailable when the poll budget is
  // used up; kMalformed for an order without a string "status".
  Result<Json> PollOrder(const std::string& order_url, std::string_view until);

  // POST-as-GET the certificate URL, asking for application/pem-certificate-chain.
  Result<std::string> DownloadCertificate(const std::string& url);

  // GET {renewalInfo}/{cert_id}. std::nullopt when the directory has no renewalInfo.
  Result<std::optional<SuggestedWindow>> RenewalInfo(std::string_view cert_id);

  // Waits as the poll policy says (used by the flow for authorizations too). Returns false once
  // the budget is used up.
  bool PollWait(const AcmeResponse& last);

 private:
  Result<AcmeResponse> Send(const oidc::FetchRequest& request);
  Result<std::string> Nonce();
  Result<AcmeResponse> SignedPost(const std::string& url, std::string_view payload, bool use_jwk,
                                  std::string_view accept);

  oidc::HttpClient& http_;
  const crypto::PrivateKey& key_;
  const Clock& clock_;
  Sleeper sleep_;
  AcmeClientOptions options_;
  Json directory_;
  std::string nonce_;
  std::string account_url_;
  std::chrono::milliseconds waited_{0};
};

}  // namespace e2eid::cli

#endif  // E2EID_CLI_ACME_CLIENT_H_
