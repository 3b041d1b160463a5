#include "revocation/service.h"

#include <array>
#include <utility>

#include "core/http.h"
#include "core/json.h"
#include "core/log.h"

namespace e2eid::revocation {

using store::DeviceStatus;
using store::RevocationScopeKind;
using store::Transaction;
using store::UserStatus;

namespace {

constexpr size_t kMaxIdLength = 2048;
constexpr int kCessationOfOperation = 5;

constexpr std::array<std::string_view, 11> kReasonNames = {
    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", "unused",
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise"};

std::string_view ActionFor(RevocationScopeKind kind) {
  switch (kind) {
    case RevocationScopeKind::kCertificate:
      return "certificate.revoke";
    case RevocationScopeKind::kDevice:
      return "device.revoke";
    case RevocationScopeKind::kUser:
      return "user.revoke";
    case RevocationScopeKind::kKey:
      return "key.revoke";
    case RevocationScopeKind::kBefore:
      return "issued_before.revoke";
  }
  return "revoke";
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

Status CheckId(std::string_view what, std::string_view id) {
  if (id.empty()) return Fail(Error::InvalidArgument(std::string(what) + " id is empty"));
  if (id.size() > kMaxIdLength) {
    return Fail(Error::InvalidArgument(std::string(what) + " id is longer than " +
                                       std::to_string(kMaxIdLength) + " characters"));
  }
  for (const char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Fail(Error::InvalidArgument(std::string(what) + " id contains a control character"));
    }
  }
  return Ok();
}

// The canonical form of a scope value, or kInvalidArgument.
Result<std::string> NormalizeValue(RevocationScopeKind kind, std::string_view value) {
  switch (kind) {
    case RevocationScopeKind::kCertificate: {
      std::string serial;
      for (const char c : value) {
        if (c != ':') serial += Lower(c);
      }
      const size_t first = serial.find_first_not_of('0');
      if (first == std::string::npos) {
        if (!serial.empty()) serial = "0";
      } else {
        serial.erase(0, first);
      }
      if (!store::IsCanonicalSerialHex(serial)) {
        return Fail(Error::InvalidArgument("certificate serial '" + std::string(value) +
                                           "' is not 1 to 40 hex digits"));
      }
      return serial;
    }
    case RevocationScopeKind::kKey: {
      std::string hex;
      for (const char c : value) hex += Lower(c);
      bool ok = hex.size() == 64;
      for (const char c : hex) ok = ok && IsHex(c);
      if (!ok) {
        return Fail(
            Error::InvalidArgument("key scope value must be the SPKI SHA-256 as 64 hex digits"));
      }
      return hex;
    }
    case RevocationScopeKind::kBefore: {
      auto t = ParseRfc3339(value);
      if (!t) {
        return Fail(Error::InvalidArgument("'before' scope value '" + std::string(value) +
                                           "' is not an RFC 3339 time"));
      }
      return FormatRfc3339(*t);
    }
    case RevocationScopeKind::kDevice:
      E2EID_CHECK_OK(CheckId("device", value));
      return std::string(value);
    case RevocationScopeKind::kUser:
      E2EID_CHECK_OK(CheckId("user", value));
      return std::string(value);
  }
  return Fail(Error::InvalidArgument("unknown revocation scope kind"));
}

Status Audit(Transaction& tx, TimePoint now, std::string_view actor, std::string_view action,
             std::string_view target, std::string_view source, std::string_view outcome,
             const Json& details) {
  store::AuditEvent e;
  e.at = now;
  e.actor = std::string(actor);
  e.action = std::string(action);
  e.target = std::string(target);
  e.source = std::string(source);
  e.outcome = std::string(outcome);
  e.details = DumpJson(details);
  E2EID_TRY(id, tx.AppendAudit(e));
  (void)id;
  return Ok();
}

// Sets an active device to `to` with `reason`; a blocked device may become removed. Returns
// whether anything changed.
Result<bool> SetDeviceStatus(Transaction& tx, store::Device device, DeviceStatus to,
                             std::optional<std::string> reason) {
  if (device.status == to) return false;
  if (device.status == DeviceStatus::kRemoved) return false;  // removed is final
  device.status = to;
  device.blocked_reason = std::move(reason);
  E2EID_CHECK_OK(tx.UpdateDevice(device));
  return true;
}

}  // namespace

std::string_view RevocationReasonName(int reason) {
  if (!store::IsValidRevocationReason(reason)) return "unknown";
  return kReasonNames[static_cast<size_t>(reason)];
}

bool IsAcceptedRevocationReason(int reason) {
  return store::IsValidRevocationReason(reason) && reason != 6 && reason != 8;
}

Result<int> ParseRevocationReason(std::string_view text) {
  if (!text.empty() && text.size() <= 2 &&
      text.find_first_not_of("0123456789") == std::string_view::npos) {
    int code = 0;
    for (const char c : text) code = code * 10 + (c - '0');
    if (store::IsValidRevocationReason(code)) return code;
  } else {
    for (int code = 0; code < static_cast<int>(kReasonNames.size()); ++code) {
      if (store::IsValidRevocationReason(code) && EqualsIgnoreCase(text, kReasonNames[code])) {
        return code;
      }
    }
  }
  return Fail(Error::InvalidArgument("unknown revocation reason '" + std::string(text) +
                                     "' (RFC 5280 CRLReason: 0-6 or 8-10, or its name)"));
}

RevocationService::RevocationService(store::Store& store, const Clock& clock)
    : store_(store), clock_(clock) {}

void RevocationService::AddListener(RevocationListener* listener) {
  if (listener == nullptr) return;
  std::lock_guard lock(listeners_mu_);
  listeners_.push_back(listener);
}

void RevocationService::Notify(const RevocationOutcome& outcome) {
  std::vector<RevocationListener*> listeners;
  {
    std::lock_guard lock(listeners_mu_);
    listeners = listeners_;
  }
  for (RevocationListener* l : listeners) l->OnRevoked(outcome);
}

void RevocationService::AuditFailure(std::string_view action, std::string_view target,
                                     std::string_view actor, std::string_view source,
                                     const Error& error) {
  const TimePoint now = clock_.Now();
  auto st = store_.InTransaction([&](Transaction& tx) {
    return Audit(tx, now, actor, action, target, source, "failure",
                 {{"error", std::string(ErrorCodeName(error.code()))}, {"detail", error.detail()}});
  });
  if (!st) {
    LogWarn("could not audit a failed revocation action",
            {{"action", action}, {"target", target}, {"error", st.error().ToString()}});
  }
}

Result<RevocationOutcome> RevocationService::Revoke(const RevocationRequest& request) {
  if (!IsAcceptedRevocationReason(request.reason)) {
    return Fail(Error::InvalidArgument(
        "revocation reason " + std::to_string(request.reason) +
        " is not accepted (RFC 5280 CRLReason 0-5, 9 or 10; certificateHold and removeFromCRL "
        "are not used)"));
  }
  E2EID_TRY(value, NormalizeValue(request.kind, request.value));
  const std::string_view action = ActionFor(request.kind);
  const TimePoint now = clock_.Now();
  const std::string block_reason =
      request.comment.empty() ? std::string(RevocationReasonName(request.reason)) : request.comment;
  RevocationOutcome outcome;
  auto st = store_.InTransaction([&](Transaction& tx) -> Status {
    outcome = {};
    // The target must exist (a key or a time needs no row).
    std::vector<store::Device> devices;
    switch (request.kind) {
      case RevocationScopeKind::kCertificate: {
        E2EID_TRY(cert, tx.GetCertificate(value));
        (void)cert;
        break;
      }
      case RevocationScopeKind::kDevice: {
        E2EID_TRY(device, tx.GetDevice(value));
        devices.push_back(std::move(device));
        break;
      }
      case RevocationScopeKind::kUser: {
        E2EID_TRY(user, tx.GetUser(value));
        (void)user;
        E2EID_TRY(list, tx.ListDevicesForUser(value));
        devices = std::move(list);
        break;
      }
      case RevocationScopeKind::kKey:
      case RevocationScopeKind::kBefore:
        break;
    }
    E2EID_TRY(affected,
              tx.RevokeCertificates({request.kind, value}, request.reason, request.comment, now));
    int64_t devices_blocked = 0;
    for (auto& d : devices) {
      E2EID_TRY(changed, SetDeviceStatus(tx, std::move(d), DeviceStatus::kBlocked, block_reason));
      if (changed) ++devices_blocked;
    }
    store::RevocationEvent event;
    event.scope_kind = request.kind;
    event.scope_value = value;
    event.reason = request.reason;
    event.comment = request.comment;
    event.actor = request.actor;
    event.at = now;
    event.affected = affected;
    E2EID_TRY(event_id, tx.InsertRevocationEvent(event));
    outcome.affected = affected;
    outcome.event_id = event_id;
    Json details = {{"reason", request.reason},
                    {"reason_name", std::string(RevocationReasonName(request.reason))},
                    {"comment", request.comment},
                    {"affected", affected},
                    {"event_id", event_id}};
    if (request.kind == RevocationScopeKind::kDevice ||
        request.kind == RevocationScopeKind::kUser) {
      details["devices_blocked"] = devices_blocked;
    }
    return Audit(tx, now, request.actor, action, value, request.source, "success", details);
  });
  if (!st) {
    if (st.error().code() == ErrorCode::kNotFound) {
      AuditFailure(action, value, request.actor, request.source, st.error());
    }
    return Fail(std::move(st.error()));
  }
  LogInfo("revoked", {{"scope", std::string(store::ToString(request.kind))},
                      {"value", value},
                      {"reason", request.reason},
                      {"affected", outcome.affected},
                      {"actor", request.actor}});
  Notify(outcome);
  return outcome;
}

Status RevocationService::BlockDevice(std::string_view device_id, std::string_view reason,
                                      std::string_view actor, std::string_view source) {
  E2EID_CHECK_OK(CheckId("device", device_id));
  const TimePoint now = clock_.Now();
  auto st = store_.InTransaction([&](Transaction& tx) -> Status {
    E2EID_TRY(device, tx.GetDevice(device_id));
    E2EID_TRY(changed, SetDeviceStatus(tx, std::move(device), DeviceStatus::kBlocked,
                                       reason.empty() ? std::string("blocked by an administrator")
                                                      : std::string(reason)));
    return Audit(tx, now, actor, "device.block", device_id, source, "success",
                 {{"reason", std::string(reason)}, {"changed", changed}});
  });
  if (!st && st.error().code() == ErrorCode::kNotFound) {
    AuditFailure("device.block", device_id, actor, source, st.error());
  }
  return st;
}

Status RevocationService::UnblockDevice(std::string_view device_id, std::string_view actor,
                                        std::string_view source) {
  E2EID_CHECK_OK(CheckId("device", device_id));
  const TimePoint now = clock_.Now();
  auto st = store_.InTransaction([&](Transaction& tx) -> Status {
    E2EID_TRY(device, tx.GetDevice(device_id));
    if (device.status == DeviceStatus::kRemoved) {
      return Fail(Error::Conflict("device " + std::string(device_id) +
                                  " was removed and cannot be unblocked"));
    }
    E2EID_TRY(changed, SetDeviceStatus(tx, std::move(device), DeviceStatus::kActive, std::nullopt));
    return Audit(tx, now, actor, "device.unblock", device_id, source, "success",
                 {{"changed", changed}});
  });
  if (!st &&
      (st.error().code() == ErrorCode::kNotFound || st.error().code() == ErrorCode::kConflict)) {
    AuditFailure("device.unblock", device_id, actor, source, st.error());
  }
  return st;
}

Result<RevocationOutcome> RevocationService::RemoveDevice(std::string_view device_id,
                                                          std::string_view actor,
                                                          std::string_view source) {
  E2EID_CHECK_OK(CheckId("device", device_id));
  const TimePoint now = clock_.Now();
  const std::string comment = "device removed";
  RevocationOutcome outcome;
  auto st = store_.InTransaction([&](Transaction& tx) -> Status {
    outcome = {};
    E2EID_TRY(device, tx.GetDevice(device_id));
    E2EID_TRY(affected,
              tx.RevokeCertificates({RevocationScopeKind::kDevice, std::string(device_id)},
                                    kCessationOfOperation, comment, now));
    bool changed = false;
    if (device.status != DeviceStatus::kRemoved) {
      device.status = DeviceStatus::kRemoved;
      device.blocked_reason = comment;
      E2EID_CHECK_OK(tx.UpdateDevice(device));
      changed = true;
    }
    store::RevocationEvent event;
    event.scope_kind = RevocationScopeKind::kDevice;
    event.scope_value = std::string(device_id);
    event.reason = kCessationOfOperation;
    event.comment = comment;
    event.actor = std::string(actor);
    event.at = now;
    event.affected = affected;
    E2EID_TRY(event_id, tx.InsertRevocationEvent(event));
    outcome.affected = affected;
    outcome.event_id = event_id;
    return Audit(tx, now, actor, "device.remove", device_id, source, "success",
                 {{"reason", kCessationOfOperation},
                  {"affected", affected},
                  {"event_id", event_id},
                  {"changed", changed}});
  });
  if (!st) {
    if (st.error().code() == ErrorCode::kNotFound) {
      AuditFailure("device.remove", device_id, actor, source, st.error());
    }
    return Fail(std::move(st.error()));
  }
  Notify(outcome);
  return outcome;
}

namespace {

Status SetUserStatus(store::Store& store, const Clock& clock, std::string_view user_id,
                     UserStatus to, std::string_view action, std::string_view reason,
                     std::string_view actor, std::string_view source) {
  const TimePoint now = clock.Now();
  return store.InTransaction([&](Transaction& tx) -> Status {
    E2EID_TRY(user, tx.GetUser(user_id));
    const bool changed = user.status != to;
    if (changed) {
      user.status = to;
      E2EID_CHECK_OK(tx.UpdateUser(user));
    }
    Json details = {{"changed", changed}};
    if (!reason.empty()) details["reason"] = std::string(reason);
    return Audit(tx, now, actor, action, user_id, source, "success", details);
  });
}

}  // namespace

Status RevocationService::DisableUser(std::string_view user_id, std::string_view reason,
                                      std::string_view actor, std::string_view source) {
  E2EID_CHECK_OK(CheckId("user", user_id));
  auto st = SetUserStatus(store_, clock_, user_id, UserStatus::kDisabled, "user.disable", reason,
                          actor, source);
  if (!st && st.error().code() == ErrorCode::kNotFound) {
    AuditFailure("user.disable", user_id, actor, source, st.error());
  }
  return st;
}

Status RevocationService::EnableUser(std::string_view user_id, std::string_view actor,
                                     std::string_view source) {
  E2EID_CHECK_OK(CheckId("user", user_id));
  auto st =
      SetUserStatus(store_, clock_, user_id, UserStatus::kActive, "user.enable", "", actor, source);
  if (!st && st.error().code() == ErrorCode::kNotFound) {
    AuditFailure("user.enable", user_id, actor, source, st.error());
  }
  return st;
}

}  // namespace e2eid::revocation
