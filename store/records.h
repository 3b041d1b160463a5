// The persistent domain of e2eid: plain structs, one per table, and their status enums.
//
// Conventions:
// - Times are e2eid::TimePoint (whole seconds, UTC); the store keeps them as Unix seconds.
// - JSON members (jwk, contacts, identifiers, error, validation_claims, details) are JSON text that
//   the caller serialised (DumpJson); the store keeps the text as given and never parses it.
// - Binary members are Bytes. Hex members (serial, spki_sha256) are lowercase hex.
// - std::optional members are NULL in the database when absent.
// - Every status enum has ToString (the RFC 8555 / wire spelling) and a Parse* function that
//   returns kInvalidArgument naming the unknown value.
//
// Users are stored explicitly (table `users`), not derived from devices: a user's status (an admin
// may disable a user) must outlive any one device, and devices reference their user.
#ifndef E2EID_STORE_RECORDS_H_
#define E2EID_STORE_RECORDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/error.h"

namespace e2eid::store {

// ---- status enums ---------------------------------------------------------------------------

enum class AccountStatus { kValid, kDeactivated, kRevoked };
enum class OrderStatus { kPending, kReady, kProcessing, kValid, kInvalid };
enum class AuthorizationStatus { kPending, kValid, kInvalid, kDeactivated, kExpired, kRevoked };
enum class ChallengeStatus { kPending, kProcessing, kValid, kInvalid };
enum class CertificateStatus { kGood, kRevoked };
enum class DeviceStatus { kActive, kBlocked, kRemoved };
enum class UserStatus { kActive, kDisabled };
// What a revocation applies to: one certificate (value = serial), every certificate of a device
// (value = device id), of a user (value = user id), of a public key (value = SPKI SHA-256 hex), or
// every certificate issued before a time (value = RFC 3339 timestamp).
enum class RevocationScopeKind { kCertificate, kDevice, kUser, kKey, kBefore };

std::string_view ToString(AccountStatus s);
std::string_view ToString(OrderStatus s);
std::string_view ToString(AuthorizationStatus s);
std::string_view ToString(ChallengeStatus s);
std::string_view ToString(CertificateStatus s);
std::string_view ToString(DeviceStatus s);
std::string_view ToString(UserStatus s);
std::string_view ToString(RevocationScopeKind k);

Result<AccountStatus> ParseAccountStatus(std::string_view s);
Result<OrderStatus> ParseOrderStatus(std::string_view s);
Result<AuthorizationStatus> ParseAuthorizationStatus(std::string_view s);
Result<ChallengeStatus> ParseChallengeStatus(std::string_view s);
Result<CertificateStatus> ParseCertificateStatus(std::string_view s);
Result<DeviceStatus> ParseDeviceStatus(std::string_view s);
Result<UserStatus> ParseUserStatus(std::string_view s);
Result<RevocationScopeKind> ParseRevocationScopeKind(std::string_view s);

// True for a certificate serial in the form the store keys on: 1 to 40 lowercase hex digits
// (RFC 5280 §4.1.2.2 allows at most 20 octets).
bool IsCanonicalSerialHex(std::string_view serial);

// True for an RFC 5280 CRLReason code the store accepts: 0..10 except 7 (unused).
bool IsValidRevocationReason(int reason);

// ---- records --------------------------------------------------------------------------------

struct Account {
  std::string id;              // random, chosen by the caller
  std::string key_thumbprint;  // RFC 7638 JWK thumbprint (base64url); unique
  std::string jwk;             // JSON text of the account public key
  AccountStatus status = AccountStatus::kValid;
  std::string contacts = "[]";  // JSON array text
  TimePoint created_at{};
  std::optional<std::string> eab_key_id;  // external account binding key id, when one was used
};

struct Order {
  std::string id;
  std::string account_id;
  OrderStatus status = OrderStatus::kPending;
  std::string identifiers = "[]";  // JSON array text of {"type","value"} objects
  std::optional<TimePoint> not_before;
  std::optional<TimePoint> not_after;
  TimePoint expires{};
  std::optional<std::string> error;               // JSON problem document text
  std::optional<std::string> certificate_serial;  // set when the order became valid
  std::optional<std::string> replaces;            // RFC 9773 ARI certificate id being replaced
  TimePoint created_at{};
  TimePoint updated_at{};
  // Identity bound by the validated challenges of this order (Wire flow). Empty until then.
  std::optional<std::string> user_id;
  std::optional<std::string> device_id;
  std::optional<std::string> display_name;
  std::optional<std::string> handle;
  std::optional<std::string> domain;
};

struct Authorization {
  std::string id;
  std::string order_id;
  std::string account_id;
  std::string identifier_type;  // "dns", "wireapp-user", "wireapp-device", ...
  std::string identifier_value;
  AuthorizationStatus status = AuthorizationStatus::kPending;
  TimePoint expires{};
  bool wildcard = false;
};

struct Challenge {
  std::string id;
  std::string authz_id;
  std::string type;  // "http-01", "wire-oidc-01", "wire-dpop-01", ...
  std::string token;
  ChallengeStatus status = ChallengeStatus::kPending;
  std::optional<std::string> target;  // e.g. the Wire "target" URL for the challenge
  std::optional<TimePoint> validated_at;
  std::optional<std::string> error;              // JSON problem document text
  std::optional<std::string> validation_claims;  // JSON text of the claims that were validated
};

struct Certificate {
  std::string serial;     // lowercase hex, primary key; must have been reserved (ReserveSerial)
  std::string issuer_id;  // which CA key signed it (e.g. hex SKI of the issuer); "" if only one
  std::optional<std::string> account_id;
  std::optional<std::string> order_id;
  std::string user_id;
  std::optional<std::string> device_id;
  std::string spki_sha256;  // lowercase hex SHA-256 of the subject public key info
  TimePoint not_before{};
  TimePoint not_after{};
  TimePoint issued_at{};
  Bytes der;
  std::string chain_pem;  // the chain served to the client (leaf first)
  CertificateStatus status = CertificateStatus::kGood;
  std::optional<TimePoint> revoked_at;
  std::optional<int> revocation_reason;  // RFC 5280 CRLReason code
  std::optional<std::string> revocation_comment;
};

// What a CRL entry needs of a revoked certificate (Transaction::ListCrlEntries): a narrow read
// that never touches the certificate's DER or chain.
struct RevokedEntry {
  std::string serial;  // lowercase hex
  std::string issuer_id;
  TimePoint not_after{};
  TimePoint revoked_at{};
  int revocation_reason = 0;  // RFC 5280 CRLReason code
};

struct Device {
  std::string id;  // the Wire client-id URI
  std::string user_id;
  std::string display_name;
  std::string handle;
  // RFC 7638 thumbprint of the key of the device's last issued certificate; until the first
  // issuance, of the ACME account key that registered the device with the device authority.
  std::string key_thumbprint;
  DeviceStatus status = DeviceStatus::kActive;
  TimePoint first_seen{};
  TimePoint last_seen{};
  std::optional<std::string> blocked_reason;
};

struct User {
  std::string id;
  std::string handle;
  std::string display_name;
  UserStatus status = UserStatus::kActive;
  TimePoint first_seen{};
  TimePoint last_seen{};
};

struct Nonce {
  std::string value;
  TimePoint expires_at{};
};

// One admin or ACME revocation: what it applied to and how many certificates it changed.
struct RevocationEvent {
  int64_t id = 0;  // assigned by the store
  RevocationScopeKind scope_kind = RevocationScopeKind::kCertificate;
  std::string scope_value;
  int reason = 0;  // RFC 5280 CRLReason code
  std::string comment;
  std::string actor;  // "acme:<account id>", "admin:<name>", ...
  TimePoint at{};
  int64_t affected = 0;  // certificates whose status changed
};

// Per issuer, the CRL number the next CRL must carry (RFC 5280 §5.2.3: monotonically increasing).
struct CrlState {
  std::string issuer_id;
  int64_t next_number = 1;
  std::optional<TimePoint> last_issued_at;
};

// Append-only: the database refuses UPDATE and DELETE on audit events.
struct AuditEvent {
  int64_t id = 0;  // assigned by the store, strictly increasing, never reused
  TimePoint at{};
  std::string actor;
  std::string action;  // "certificate.issue", "device.block", ...
  std::string target;
  std::string source;          // e.g. client IP address or "cli"
  std::string outcome;         // "success", "failure", "denied", ...
  std::string details = "{}";  // JSON object text
};

}  // namespace e2eid::store

#endif  // E2EID_STORE_RECORDS_H_
