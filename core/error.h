// Error and Result: the one error type that crosses every layer of e2eid.
//
// An Error carries a code, a detail and optional sub-problems and retry-after. Codes that mirror
// RFC 8555 problem types ("urn:ietf:params:acme:error:*") are meant for clients: their detail is
// written for the client and is sent as-is. Internal codes (kInternal, kIo, kStore, kCrypto,
// kConfig, ...) describe what went wrong inside e2eid; their detail is for the log only and the
// HTTP edge replaces it with a generic message (server/problem.cc holds the one mapping table from
// code to problem type and HTTP status).
//
// Errors are values: cheap to move, copyable, never thrown. Functions that can fail return
// Result<T> (std::expected<T, Error>) or Status (Result<void>).
#ifndef E2EID_CORE_ERROR_H_
#define E2EID_CORE_ERROR_H_

#include <chrono>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace e2eid {

enum class ErrorCode {
  // ---- RFC 8555 §6.7 and later registrations: detail goes to the client ----
  kAccountDoesNotExist,
  kAlreadyReplaced,  // RFC 9773
  kAlreadyRevoked,
  kBadCsr,
  kBadNonce,
  kBadPublicKey,
  kBadRevocationReason,
  kBadSignatureAlgorithm,
  kCaa,
  kCompound,
  kConnection,
  kDns,
  kExternalAccountRequired,
  kIncorrectResponse,
  kInvalidContact,
  kMalformed,
  kOrderNotReady,
  kRateLimited,
  kRejectedIdentifier,
  kServerInternal,
  kTls,
  kUnauthorized,
  kUnsupportedContact,
  kUnsupportedIdentifier,
  kUserActionRequired,
  // ---- Outcomes that are not failures of the request's form: detail goes to the client ----
  kNotFound,              // the resource does not exist (HTTP 404)
  kConflict,              // the resource is in a state that forbids the action (HTTP 409)
  kForbidden,             // authenticated but not allowed (HTTP 403)
  kUnauthenticated,       // no or invalid credentials for a bearer-token API (HTTP 401)
  kInvalidArgument,       // a caller (CLI, admin API) passed a value that is not acceptable
  kAlreadyExists,         // refusing to overwrite something that exists
  kPayloadTooLarge,       // request body over the limit (HTTP 413)
  kUnsupportedMediaType,  // wrong Content-Type (HTTP 415)
  // ---- Internal: detail is logged, never sent ----
  kInternal,     // a bug or an impossible state
  kIo,           // file system or network I/O failed
  kStore,        // the database failed (not "row not found": that is kNotFound)
  kCrypto,       // an OpenSSL call failed unexpectedly
  kConfig,       // configuration is invalid (start-up only)
  kUnavailable,  // a dependency (IdP, database) cannot be reached right now; retry later
};

// Stable name of a code, e.g. "badNonce" or "internal". Used in logs and tests.
std::string_view ErrorCodeName(ErrorCode code);

// True for codes whose detail may be shown to a client (everything before kInternal).
bool IsClientFacing(ErrorCode code);

class Error {
 public:
  // One sub-problem of a compound error (RFC 8555 §6.7.1): the identifier it is about and the
  // error.
  struct Subproblem {
    ErrorCode code;
    std::string detail;
    std::string
        identifier_type;  // e.g. "dns", "wireapp-device"; empty when not about an identifier
    std::string identifier_value;
  };

  Error(ErrorCode code, std::string detail) : code_(code), detail_(std::move(detail)) {}

  // Named constructors, one per code that callers use often.
  static Error Malformed(std::string d) { return {ErrorCode::kMalformed, std::move(d)}; }
  static Error Unauthorized(std::string d) { return {ErrorCode::kUnauthorized, std::move(d)}; }
  static Error BadNonce(std::string d) { return {ErrorCode::kBadNonce, std::move(d)}; }
  static Error BadCsr(std::string d) { return {ErrorCode::kBadCsr, std::move(d)}; }
  static Error BadPublicKey(std::string d) { return {ErrorCode::kBadPublicKey, std::move(d)}; }
  static Error BadSignatureAlgorithm(std::string d) {
    return {ErrorCode::kBadSignatureAlgorithm, std::move(d)};
  }
  static Error RejectedIdentifier(std::string d) {
    return {ErrorCode::kRejectedIdentifier, std::move(d)};
  }
  static Error NotFound(std::string d) { return {ErrorCode::kNotFound, std::move(d)}; }
  static Error Conflict(std::string d) { return {ErrorCode::kConflict, std::move(d)}; }
  static Error Forbidden(std::string d) { return {ErrorCode::kForbidden, std::move(d)}; }
  static Error Unauthenticated(std::string d) {
    return {ErrorCode::kUnauthenticated, std::move(d)};
  }
  static Error InvalidArgument(std::string d) {
    return {ErrorCode::kInvalidArgument, std::move(d)};
  }
  static Error AlreadyExists(std::string d) { return {ErrorCode::kAlreadyExists, std::move(d)}; }
  static Error Internal(std::string d) { return {ErrorCode::kInternal, std::move(d)}; }
  static Error Io(std::string d) { return {ErrorCode::kIo, std::move(d)}; }
  static Error Store(std::string d) { return {ErrorCode::kStore, std::move(d)}; }
  static Error Crypto(std::string d) { return {ErrorCode::kCrypto, std::move(d)}; }
  static Error Config(std::string d) { return {ErrorCode::kConfig, std::move(d)}; }
  static Error Unavailable(std::string d) { return {ErrorCode::kUnavailable, std::move(d)}; }

  ErrorCode code() const { return code_; }
  const std::string& detail() const { return detail_; }
  const std::vector<Subproblem>& subproblems() const { return subproblems_; }
  const std::optional<std::chrono::seconds>& retry_after() const { return retry_after_; }

  Error& WithSubproblem(Subproblem s) & {
    subproblems_.push_back(std::move(s));
    return *this;
  }
  Error WithSubproblem(Subproblem s) && {
    subproblems_.push_back(std::move(s));
    return std::move(*this);
  }
  Error WithRetryAfter(std::chrono::seconds s) && {
    retry_after_ = s;
    return std::move(*this);
  }
  // Prefixes the detail with context ("loading root key: " + detail), keeping the code.
  // Returns by value so that `e = std::move(e).Context(...)` is safe.
  Error Context(std::string_view prefix) && {
    detail_ = std::string(prefix) + ": " + detail_;
    return std::move(*this);
  }

  // "badNonce: nonce was already used" — for logs and CLI messages.
  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string detail_;
  std::vector<Subproblem> subproblems_;
  std::optional<std::chrono::seconds> retry_after_;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = Result<void>;

// Shorthand for `return std::unexpected(Error::X(...))`.
inline std::unexpected<Error> Fail(Error e) { return std::unexpected<Error>(std::move(e)); }
inline std::unexpected<Error> Fail(ErrorCode code, std::string detail) {
  return std::unexpected<Error>(Error(code, std::move(detail)));
}
inline Status Ok() { return {}; }

}  // namespace e2eid

// E2EID_TRY(var, expr): evaluates expr (a Result<T>); on error returns the error from the enclosing
// function, else moves the value into a new variable `var`.
#define E2EID_CONCAT_INNER_(a, b) a##b
#define E2EID_CONCAT_(a, b) E2EID_CONCAT_INNER_(a, b)
#define E2EID_TRY(var, expr)                                                          \
  auto E2EID_CONCAT_(e2eid_try_, __LINE__) = (expr);                                  \
  if (!E2EID_CONCAT_(e2eid_try_, __LINE__))                                           \
    return ::std::unexpected(std::move(E2EID_CONCAT_(e2eid_try_, __LINE__)).error()); \
  auto var = std::move(*E2EID_CONCAT_(e2eid_try_, __LINE__))

// E2EID_CHECK_OK(expr): evaluates expr (a Status or Result); on error returns the error.
#define E2EID_CHECK_OK(expr)                                                        \
  do {                                                                              \
    auto e2eid_status_ = (expr);                                                    \
    if (!e2eid_status_) return ::std::unexpected(std::move(e2eid_status_).error()); \
  } while (0)

#endif  // E2EID_CORE_ERROR_H_
