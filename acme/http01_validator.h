// Http01Validator: the http-01 challenge (RFC 8555 §8.3), fetched with libcurl.
//
// For a dns identifier "host" and token "T" the validator sends
//   GET http://host[:port]/.well-known/acme-challenge/T
// and succeeds when the final response has status 200 and a body that, after trailing white space
// (space, tab, CR, LF) is trimmed, equals the key authorization (compared in constant time).
//
// Policy:
//   - Only dns identifiers; IP addresses, wildcards and names with characters outside
//     letters/digits/hyphen (LDH labels, at most 253 octets) are refused with kMalformed.
//   - Redirects (301, 302, 303, 307, 308) are followed, at most `max_redirects` of them, only to
//     http or https URLs whose host is a DNS name (not an IP literal) and whose port is 80, 443 or
//     the configured port. An https target's certificate is not verified: possession of the key
//     authorization is the proof, as in other ACME servers. Every other redirect is refused with
//     kConnection.
//   - No proxy (environment proxies are ignored), no cookies, no content decoding.
//   - One overall deadline (`total_timeout`) covers every hop; each TCP connect is also bounded by
//     `connect_timeout`.
//   - At most `max_body_bytes` of any response body are read; more is kIncorrectResponse.
//   - Names are resolved through ResolverOverrides first, then the system resolver.
//
// Errors returned by Validate() are always client-facing RFC 8555 types:
//   kMalformed         the request cannot be validated by http-01 (wrong challenge type, identifier
//                      type, IP address or invalid name, token outside base64url);
//   kDns               the name did not resolve;
//   kConnection        connect failure, timeout, connection reset, refused redirect;
//   kTls               TLS failure after a redirect to https;
//   kIncorrectResponse reached, but the status was not 200, the body did not match or was too
//                      large (the detail names the status and the first bytes received, escaped);
//   kServerInternal    libcurl could not even be set up (out of memory).
//
// Thread safety: Validate() may be called from many threads at once; it blocks for at most about
// `total_timeout` (plus system DNS resolution time). The validator keeps no state between calls.
#ifndef E2EID_ACME_HTTP01_VALIDATOR_H_
#define E2EID_ACME_HTTP01_VALIDATOR_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "acme/validation.h"
#include "core/error.h"

namespace e2eid::acme {

// ---- Helpers shared by the http-01 and tls-alpn-01 validators ----

// Fixed name-to-address mappings consulted before the system resolver, for tests and for
// deployments where clients' names resolve differently from inside the CA's network.
// Immutable after Create(); safe to share between threads.
class ResolverOverrides {
 public:
  ResolverOverrides() = default;  // no overrides: the system resolver answers everything

  // `entries` maps a name to an IPv4 or IPv6 address literal, e.g.
  //   {"*.localhost", "127.0.0.1"}, {"host.example", "10.0.0.1"}, {"v6.example", "::1"}.
  // A key is a DNS name, or "*." followed by one: the wildcard is allowed only as the whole
  // leading label and matches every name strictly below the rest ("*.localhost" matches
  // "a.localhost" and "a.b.localhost", not "localhost"). Keys compare case-insensitively.
  // Errors: kConfig naming the entry (bad name, misplaced wildcard, value not an IP literal).
  static Result<ResolverOverrides> Create(const std::map<std::string, std::string>& entries);

  // The address for `host` (case-insensitive): an exact entry wins, then the wildcard with the
  // longest suffix; std::nullopt when nothing matches. IPv6 addresses come without brackets.
  std::optional<std::string> Lookup(std::string_view host) const;

  bool empty() const { return exact_.empty() && wildcards_.empty(); }

 private:
  std::map<std::string, std::string> exact_;                    // lower-case name -> address
  std::vector<std::pair<std::string, std::string>> wildcards_;  // ".suffix" -> address, longest 1st
};

// True for an IPv4 or IPv6 address literal (IPv6 optionally in brackets).
bool IsIpAddressLiteral(std::string_view text);

// Checks that `name` is a DNS host name the validators may connect to: 1 to 253 octets, dot-
// separated labels of 1 to 63 letters, digits or hyphens, no label starting or ending with a
// hyphen, not an IP address, and a last label that is not all digits. Returns it in lower case.
// Errors: kMalformed naming the problem; the detail starts with "'<name>'" (escaped).
Result<std::string> CheckDnsName(std::string_view name);

// Checks the parts of a ValidationRequest that every network validator needs: the challenge type
// equals `expected_type`, identifier_type is "dns" and identifier_value passes CheckDnsName (IP
// addresses are refused), and key_authorization is not empty. Returns the lower-case name.
// Errors: kMalformed.
Result<std::string> CheckDnsChallenge(const ValidationRequest& request,
                                      std::string_view expected_type);

// Quotes `data` for an error detail: printable ASCII is kept, '"' and '\\' are escaped, other bytes
// become \n, \r, \t or \xNN. At most `max_bytes` of the input are shown; when there are more, the
// result ends with "... (N bytes)".
std::string EscapeForDetail(std::string_view data, size_t max_bytes = 64);

// ---- http-01 ----

struct Http01Options {
  uint16_t port = 80;  // the port of the first request (RFC 8555: 80; tests use another)
  std::map<std::string, std::string> resolver_overrides;  // see ResolverOverrides::Create
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds total_timeout{10000};  // the whole validation, redirects included
  size_t max_body_bytes = 8192;
  int max_redirects = 10;
  std::string user_agent = "e2eid-acme-validator/1";
};

class Http01Validator final : public ChallengeValidator {
 public:
  // Checks the options and initialises libcurl once per process (curl_global_init; never undone).
  // Errors: kConfig for a zero port, non-positive timeouts, a connect timeout above the total
  // timeout, max_body_bytes of 0, max_redirects outside 0..20, bad resolver overrides, or when
  // libcurl cannot be initialised.
  static Result<std::unique_ptr<Http01Validator>> Create(Http01Options options);

  Http01Validator(const Http01Validator&) = delete;
  Http01Validator& operator=(const Http01Validator&) = delete;

  // See the file comment. request.challenge_type must be "http-01".
  Status Validate(const ValidationRequest& request) override;

 private:
  Http01Validator(Http01Options options, ResolverOverrides overrides)
      : options_(std::move(options)), overrides_(std::move(overrides)) {}

  const Http01Options options_;
  const ResolverOverrides overrides_;
};

}  // namespace e2eid::acme

#endif  // E2EID_ACME_HTTP01_VALIDATOR_H_
