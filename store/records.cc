#include "store/records.h"

#include <array>
#include <utility>

namespace e2eid::store {
namespace {

template <typename E, size_t N>
using NameTable = std::array<std::pair<E, std::string_view>, N>;

template <typename E, size_t N>
std::string_view NameOf(const NameTable<E, N>& table, E value) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return "unknown";
}

template <typename E, size_t N>
Result<E> ValueOf(const NameTable<E, N>& table, std::string_view name, std::string_view what) {
  for (const auto& [e, n] : table) {
    if (n == name) return e;
  }
  return Fail(
      Error::InvalidArgument("unknown " + std::string(what) + " '" + std::string(name) + "'"));
}

constexpr NameTable<AccountStatus, 3> kAccountStatus{{
    {AccountStatus::kValid, "valid"},
    {AccountStatus::kDeactivated, "deactivated"},
    {AccountStatus::kRevoked, "revoked"},
}};
constexpr NameTable<OrderStatus, 5> kOrderStatus{{
    {OrderStatus::kPending, "pending"},
    {OrderStatus::kReady, "ready"},
    {OrderStatus::kProcessing, "processing"},
    {OrderStatus::kValid, "valid"},
    {OrderStatus::kInvalid, "invalid"},
}};
constexpr NameTable<AuthorizationStatus, 6> kAuthorizationStatus{{
    {AuthorizationStatus::kPending, "pending"},
    {AuthorizationStatus::kValid, "valid"},
    {AuthorizationStatus::kInvalid, "invalid"},
    {AuthorizationStatus::kDeactivated, "deactivated"},
    {AuthorizationStatus::kExpired, "expired"},
    {AuthorizationStatus::kRevoked, "revoked"},
}};
constexpr NameTable<ChallengeStatus, 4> kChallengeStatus{{
    {ChallengeStatus::kPending, "pending"},
    {ChallengeStatus::kProcessing, "processing"},
    {ChallengeStatus::kValid, "valid"},
    {ChallengeStatus::kInvalid, "invalid"},
}};
constexpr NameTable<CertificateStatus, 2> kCertificateStatus{{
    {CertificateStatus::kGood, "good"},
    {CertificateStatus::kRevoked, "revoked"},
}};
constexpr NameTable<DeviceStatus, 3> kDeviceStatus{{
    {DeviceStatus::kActive, "active"},
    {DeviceStatus::kBlocked, "blocked"},
    {DeviceStatus::kRemoved, "removed"},
}};
constexpr NameTable<UserStatus, 2> kUserStatus{{
    {UserStatus::kActive, "active"},
    {UserStatus::kDisabled, "disabled"},
}};
constexpr NameTable<RevocationScopeKind, 5> kScopeKind{{
    {RevocationScopeKind::kCertificate, "certificate"},
    {RevocationScopeKind::kDevice, "device"},
    {RevocationScopeKind::kUser, "user"},
    {RevocationScopeKind::kKey, "key"},
    {RevocationScopeKind::kBefore, "before"},
}};

}  // namespace

std::string_view ToString(AccountStatus s) { return NameOf(kAccountStatus, s); }
std::string_view ToString(OrderStatus s) { return NameOf(kOrderStatus, s); }
std::string_view ToString(AuthorizationStatus s) { return NameOf(kAuthorizationStatus, s); }
std::string_view ToString(ChallengeStatus s) { return NameOf(kChallengeStatus, s); }
std::string_view ToString(CertificateStatus s) { return NameOf(kCertificateStatus, s); }
std::string_view ToString(DeviceStatus s) { return NameOf(kDeviceStatus, s); }
std::string_view ToString(UserStatus s) { return NameOf(kUserStatus, s); }
std::string_view ToString(RevocationScopeKind k) { return NameOf(kScopeKind, k); }

Result<AccountStatus> ParseAccountStatus(std::string_view s) {
  return ValueOf(kAccountStatus, s, "account status");
}
Result<OrderStatus> ParseOrderStatus(std::string_view s) {
  return ValueOf(kOrderStatus, s, "order status");
}
Result<AuthorizationStatus> ParseAuthorizationStatus(std::string_view s) {
  return ValueOf(kAuthorizationStatus, s, "authorization status");
}
Result<ChallengeStatus> ParseChallengeStatus(std::string_view s) {
  return ValueOf(kChallengeStatus, s, "challenge status");
}
Result<CertificateStatus> ParseCertificateStatus(std::string_view s) {
  return ValueOf(kCertificateStatus, s, "certificate status");
}
Result<DeviceStatus> ParseDeviceStatus(std::string_view s) {
  return ValueOf(kDeviceStatus, s, "device status");
}
Result<UserStatus> ParseUserStatus(std::string_view s) {
  return ValueOf(kUserStatus, s, "user status");
}
Result<RevocationScopeKind> ParseRevocationScopeKind(std::string_view s) {
  return ValueOf(kScopeKind, s, "revocation scope");
}

bool IsCanonicalSerialHex(std::string_view serial) {
  if (serial.empty() || serial.size() > 40) return false;
  for (const char c : serial) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsValidRevocationReason(int reason) { return reason >= 0 && reason <= 10 && reason != 7; }

}  // namespace e2eid::store
