#include "cli/enrol_identity.h"

#include <array>

#include "core/encoding.h"

namespace e2eid::cli {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Serialises an ordered object without throwing (invalid UTF-8 becomes U+FFFD).
std::string DumpOrdered(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

nlohmann::ordered_json UserObject(const WireIdentity& id) {
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  o["name"] = id.display_name;
  o["domain"] = id.domain;
  o["handle"] = id.HandleUri();
  return o;
}

Result<std::string> StringClaim(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_string()) {
    return Fail(Error::InvalidArgument(std::string("the login's token has no string claim \"") +
                                       name + "\""));
  }
  return it->get<std::string>();
}

}  // namespace

std::string WireIdentity::HandleUri() const { return "wireapp://%40" + handle + "@" + domain; }

std::string WireIdentity::ClientIdUri() const {
  return "wireapp://" + user_id + "!" + device_id + "@" + domain;
}

Result<std::string> UserIdFromUuid(std::string_view uuid) {
  auto bad = [&] {
    return Fail(Error::InvalidArgument("'" + std::string(uuid) +
                                       "' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"));
  };
  if (uuid.size() != 36) return bad();
  std::array<uint8_t, 16> bytes{};
  size_t n = 0;
  for (size_t i = 0; i < uuid.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (uuid[i] != '-') return bad();
      ++i;
      continue;
    }
    const int hi = HexValue(uuid[i]);
    const int lo = i + 1 < uuid.size() ? HexValue(uuid[i + 1]) : -1;
    if (hi < 0 || lo < 0 || n >= bytes.size()) return bad();
    bytes[n++] = static_cast<uint8_t>(hi * 16 + lo);
    i += 2;
  }
  if (n != bytes.size()) return bad();
  return Base64UrlEncode(bytes);
}

std::string FormatDeviceId(uint64_t id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  if (id == 0) return "0";
  std::string out;
  while (id != 0) {
    out.insert(out.begin(), kDigits[id & 0xf]);
    id >>= 4;
  }
  return out;
}

Result<std::string> NewDeviceId(RandomSource& rng) {
  for (;;) {
    std::array<uint8_t, 8> b{};
    E2EID_CHECK_OK(rng.Fill(b));
    uint64_t v = 0;
    for (uint8_t x : b) v = (v << 8) | x;
    if (v != 0) return FormatDeviceId(v);
  }
}

bool IsValidDeviceId(std::string_view id) {
  if (id.empty() || id.size() > 16 || id[0] == '0') return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsValidHandle(std::string_view handle) {
  if (handle.empty() || handle.size() > 256) return false;
  for (char c : handle) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<WireIdentity> IdentityFromClaims(const Json& claims, std::string_view domain,
                                        std::string_view device_id) {
  if (!claims.is_object()) return Fail(Error::InvalidArgument("token claims are not an object"));
  if (domain.empty()) return Fail(Error::InvalidArgument("the domain must not be empty"));
  if (!IsValidDeviceId(device_id)) {
    return Fail(Error::InvalidArgument("invalid device id '" + std::string(device_id) + "'"));
  }
  E2EID_TRY(sub, StringClaim(claims, "sub"));
  E2EID_TRY(name, StringClaim(claims, "name"));
  E2EID_TRY(handle, StringClaim(claims, "preferred_username"));
  auto user_id = UserIdFromUuid(sub);
  if (!user_id) {
    return Fail(Error::InvalidArgument("the identity provider's \"sub\" claim " +
                                       user_id.error().detail()));
  }
  if (name.empty()) return Fail(Error::InvalidArgument("the \"name\" claim is empty"));
  if (!IsValidHandle(handle)) {
    return Fail(
        Error::InvalidArgument("the \"preferred_username\" claim '" + handle +
                               "' is not a Wire handle (1..256 characters of a-z 0-9 _ . -)"));
  }
  WireIdentity id;
  id.display_name = std::move(name);
  id.domain = std::string(domain);
  id.handle = std::move(handle);
  id.user_id = std::move(*user_id);
  id.device_id = std::string(device_id);
  return id;
}

std::string UserIdentifierValue(const WireIdentity& id) { return DumpOrdered(UserObject(id)); }

std::string DeviceIdentifierValue(const WireIdentity& id) {
  nlohmann::ordered_json o = UserObject(id);
  o["client-id"] = id.ClientIdUri();
  return DumpOrdered(o);
}

Json NewOrderPayload(const WireIdentity& id, std::optional<TimePoint> not_before,
                     std::optional<TimePoint> not_after, std::string_view replaces) {
  Json payload = Json::object();
  payload["identifiers"] = Json::array({
      Json{{"type", kWireDeviceIdentifier}, {"value", DeviceIdentifierValue(id)}},
      Json{{"type", kWireUserIdentifier}, {"value", UserIdentifierValue(id)}},
  });
  if (not_before) payload["notBefore"] = FormatRfc3339(*not_before);
  if (not_after) payload["notAfter"] = FormatRfc3339(*not_after);
  if (!replaces.empty()) payload["replaces"] = std::string(replaces);
  return payload;
}

}  // namespace e2eid::cli
