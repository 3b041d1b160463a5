// The one revocation path: ACME revokeCert, the admin API and the CLI all revoke through
// RevocationService, so every revocation is recorded, audited and published the same way.
//
// Revoke() runs in ONE store transaction: Transaction::RevokeCertificates(scope) +
// InsertRevocationEvent + AppendAudit; for a device scope it also blocks the device (it cannot
// enrol again until UnblockDevice), for a user scope it blocks every device of the user. After the
// commit the listeners (CRL publisher, OCSP cache) are told, so CRL and OCSP show the revocation
// within a second.
//
// Idempotent: revoking again changes nothing (affected == 0) and is not an error; it is still
// recorded (a RevocationEvent with affected 0) and audited (an admin action happened).
//
// Audit actions: "certificate.revoke", "device.revoke", "user.revoke", "key.revoke",
// "issued_before.revoke", "device.block", "device.unblock", "device.remove", "user.disable",
// "user.enable". Target: the scope value / id. Details: JSON with the reason, comment and counts.
// A refused attempt on an unknown (or removed) target is audited in its own transaction with
// outcome "failure"; invalid arguments are refused before anything is stored and not audited.
//
// Errors: kInvalidArgument (reason not an RFC 5280 CRLReason code e2eid accepts, malformed value),
// kNotFound (unknown serial / device / user: nothing is changed; the attempt is audited with
// outcome "failure"), kStore or another error of the store (e.g. kUnavailable when the database is
// locked); UnblockDevice also kConflict (a removed device).
//
// Listeners are told once per successful Revoke / RemoveDevice (also when affected == 0, so they
// can decide; the CRL publisher and the OCSP cache ignore affected == 0).
//
// Thread safety: all methods may be called concurrently. Listeners are called on the caller's
// thread after the commit and must be thread-safe and outlive the service.
#ifndef E2EID_REVOCATION_SERVICE_H_
#define E2EID_REVOCATION_SERVICE_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "store/store.h"

namespace e2eid::revocation {

struct RevocationRequest {
  // kCertificate: serial (lowercase hex); kDevice: client-id URI; kUser: user id; kKey: SPKI
  // SHA-256 (lowercase hex); kBefore: RFC 3339 time (every certificate issued before it).
  store::RevocationScopeKind kind = store::RevocationScopeKind::kCertificate;
  std::string value;
  int reason = 0;  // RFC 5280 CRLReason
  std::string comment;
  std::string actor;   // "acme:<account id>", "admin:<sub>", "user:<id>", "cli"
  std::string source;  // client address, or "cli"
};

struct RevocationOutcome {
  int64_t affected = 0;  // certificates whose status changed
  int64_t event_id = 0;  // the RevocationEvent recorded
};

class RevocationListener {
 public:
  virtual ~RevocationListener() = default;
  virtual void OnRevoked(const RevocationOutcome& outcome) = 0;
};

// RFC 5280 CRLReason names: "unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
// "superseded", "cessationOfOperation", "certificateHold", "removeFromCRL", "privilegeWithdrawn",
// "aACompromise"; "unknown" for any other code.
std::string_view RevocationReasonName(int reason);
// True for the reasons Revoke accepts: RFC 5280 CRLReason codes 0-6 and 8-10 except
// certificateHold (6: e2eid revocations are permanent, there is no release from hold) and
// removeFromCRL (8: only meaningful in delta CRLs; relying parties treat it as "not revoked").
bool IsAcceptedRevocationReason(int reason);
// Accepts a code ("1") or a name (case-insensitive, as above). Errors: kInvalidArgument for
// anything store::IsValidRevocationReason refuses.
Result<int> ParseRevocationReason(std::string_view text);

class RevocationService {
 public:
  RevocationService(store::Store& store, const Clock& clock);
  RevocationService(const RevocationService&) = delete;
  RevocationService& operator=(const RevocationService&) = delete;

  // Thread-safe, but add listeners before serving so that no revocation is missed.
  void AddListener(RevocationListener* listener);

  // Value normalisation before validation: kCertificate lower-cases, drops ':' separators and
  // leading zeros; kKey lower-cases; kBefore is re-formatted as RFC 3339 UTC.
  Result<RevocationOutcome> Revoke(const RevocationRequest& request);

  // Device and user administration (audited; idempotent). kNotFound for an unknown id.
  // Blocking does not revoke certificates (revoke with kind kDevice for that): it only stops the
  // device from enrolling again.
  Status BlockDevice(std::string_view device_id, std::string_view reason, std::string_view actor,
                     std::string_view source);
  Status UnblockDevice(std::string_view device_id, std::string_view actor, std::string_view source);
  // A removed device (self-service "remove a lost phone") is blocked for good: its certificates
  // are revoked (reason cessationOfOperation) and it cannot enrol again.
  Result<RevocationOutcome> RemoveDevice(std::string_view device_id, std::string_view actor,
                                         std::string_view source);
  // A disabled user cannot enrol any device (the ACME engine checks users.status); existing
  // certificates are not touched (revoke with kind kUser for that). UnblockDevice refuses a removed
  // device with kConflict (audited as a failure).
  Status DisableUser(std::string_view user_id, std::string_view reason, std::string_view actor,
                     std::string_view source);
  Status EnableUser(std::string_view user_id, std::string_view actor, std::string_view source);

 private:
  store::Store& store_;
  const Clock& clock_;
  void Notify(const RevocationOutcome& outcome);
  // Appends a "failure" audit event in its own transaction (the failed one was rolled back).
  void AuditFailure(std::string_view action, std::string_view target, std::string_view actor,
                    std::string_view source, const Error& error);

  std::mutex listeners_mu_;
  std::vector<RevocationListener*> listeners_;
};

}  // namespace e2eid::revocation

#endif  // E2EID_REVOCATION_SERVICE_H_
