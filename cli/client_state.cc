#include "cli/client_state.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/file.h"

namespace e2eid::cli {
namespace {

constexpr int kStateVersion = 1;

struct StringMember {
  const char* name;
  std::string ClientState::*field;
};

constexpr StringMember kStringMembers[] = {
    {"directory_url", &ClientState::directory_url},
    {"issuer", &ClientState::issuer},
    {"client_id", &ClientState::client_id},
    {"domain", &ClientState::domain},
    {"device_id", &ClientState::device_id},
    {"user_id", &ClientState::user_id},
    {"handle", &ClientState::handle},
    {"name", &ClientState::display_name},
    {"account_url", &ClientState::account_url},
    {"cert_serial", &ClientState::cert_serial},
    {"ari_cert_id", &ClientState::ari_cert_id},
    {"ca_file", &ClientState::ca_file},
    {"device_authority", &ClientState::device_authority},
};

std::string TrimLineEnd(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

Json StateToJson(const ClientState& state) {
  Json j = Json::object();
  j["version"] = kStateVersion;
  for (const auto& m : kStringMembers) j[m.name] = state.*m.field;
  j["validity_seconds"] = state.validity_seconds;
  if (state.not_before) j["not_before"] = FormatRfc3339(*state.not_before);
  if (state.not_after) j["not_after"] = FormatRfc3339(*state.not_after);
  return j;
}

Result<ClientState> StateFromJson(const Json& json) {
  if (!json.is_object()) return Fail(Error::Malformed("state.json: not a JSON object"));
  E2EID_TRY(version, GetInt(json, "version", "state.json"));
  if (version != kStateVersion) {
    return Fail(Error::Malformed("state.json: unsupported version " + std::to_string(version)));
  }
  ClientState s;
  for (const auto& m : kStringMembers) {
    E2EID_TRY(v, GetOptionalString(json, m.name, "state.json"));
    if (v) s.*m.field = std::move(*v);
  }
  E2EID_TRY(validity, GetOptionalInt(json, "validity_seconds", "state.json"));
  if (validity) s.validity_seconds = *validity;
  for (auto [name, field] : {std::pair{"not_before", &ClientState::not_before},
                             std::pair{"not_after", &ClientState::not_after}}) {
    E2EID_TRY(v, GetOptionalString(json, name, "state.json"));
    if (!v) continue;
    auto t = ParseRfc3339(*v);
    if (!t)
      return Fail(Error::Malformed(std::string("state.json: member '") + name +
                                   "': " + t.error().detail()));
    s.*field = *t;
  }
  return s;
}

Status StateDir::Prepare() const {
  E2EID_CHECK_OK(MakeDirs(dir_, 0700));
  if (::chmod(dir_.c_str(), 0700) != 0) {
    return Fail(Error::Io("chmod 0700 " + dir_ + ": " + std::strerror(errno)));
  }
  return Ok();
}

Result<std::optional<ClientState>> StateDir::LoadState() const {
  auto text = ReadFile(state_path());
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return std::optional<ClientState>();
    return Fail(text.error());
  }
  E2EID_TRY(json, ParseJson(*text, "state.json"));
  E2EID_TRY(state, StateFromJson(json));
  return std::optional<ClientState>(std::move(state));
}

Status StateDir::SaveState(const ClientState& state) const {
  return WriteFileAtomic(state_path(), DumpJson(StateToJson(state), 2) + "\n", 0600);
}

Result<std::optional<crypto::PrivateKey>> StateDir::LoadKey(const std::string& path) const {
  auto pem = ReadFile(path);
  if (!pem) {
    if (pem.error().code() == ErrorCode::kNotFound) return std::optional<crypto::PrivateKey>();
    return Fail(pem.error());
  }
  auto key = crypto::PrivateKey::FromPem(*pem);
  if (!key) return Fail(std::move(key).error().Context(path));
  return std::optional<crypto::PrivateKey>(std::move(*key));
}

Status StateDir::SaveKey(const std::string& path, const crypto::PrivateKey& key) const {
  E2EID_TRY(pem, key.ToPem());
  return WriteFileAtomic(path, pem, 0600);
}

Result<std::optional<std::string>> StateDir::LoadRefreshToken() const {
  auto text = ReadFile(refresh_token_path());
  if (!text) {
    if (text.error().code() == ErrorCode::kNotFound) return std::optional<std::string>();
    return Fail(text.error());
  }
  std::string token = TrimLineEnd(std::move(*text));
  if (token.empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(token));
}

Status StateDir::SaveRefreshToken(const std::string& token) const {
  return WriteFileAtomic(refresh_token_path(), token + "\n", 0600);
}

Status StateDir::SaveCertificate(const std::string& leaf_pem, const std::string& chain_pem) const {
  E2EID_CHECK_OK(WriteFileAtomic(chain_path(), chain_pem, 0644));
  return WriteFileAtomic(cert_path(), leaf_pem, 0644);
}

}  // namespace e2eid::cli
