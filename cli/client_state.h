// The enrolment client's state directory (`--state-dir DIR`, mode 0700):
//
//   device.key     the certificate key, PKCS#8 PEM, 0600
//   client.key     the client key (ACME account key, DPoP key for the IdP and the device
//                  authority), PKCS#8 PEM, 0600
//   cert.pem       the leaf certificate, 0644
//   chain.pem      the chain as served (leaf first), 0644
//   refresh_token  the IdP refresh token, 0600
//   state.json     ClientState below, 0600
//
// Every write goes through core/file.h WriteFileAtomic (readers never see a partial file).
// Functions are thread-compatible: concurrent writers of one directory must synchronise.
#ifndef E2EID_CLI_CLIENT_STATE_H_
#define E2EID_CLI_CLIENT_STATE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "crypto/key.h"

namespace e2eid::cli {

struct ClientState {
  std::string directory_url;  // the ACME directory
  std::string issuer;         // the OIDC issuer
  std::string client_id;      // the OIDC client id
  std::string domain;
  std::string device_id;     // hex, chosen at first enrolment
  std::string user_id;       // base64url of the sub UUID
  std::string handle;        // the bare handle
  std::string display_name;  // "name"
  std::string account_url;   // the ACME account (kid)
  std::string cert_serial;   // lowercase hex
  std::optional<TimePoint> not_before;
  std::optional<TimePoint> not_after;
  std::string ari_cert_id;       // RFC 9773 id of the current certificate
  std::string ca_file;           // trust for the ACME server / IdP; empty = system store
  std::string device_authority;  // allowed origin of wire-dpop-01 targets; empty = ACME origin
  int64_t validity_seconds = 0;  // the --validity asked for at enrolment; 0 = the CA's default

  friend bool operator==(const ClientState&, const ClientState&) = default;
};

// The JSON form ({"version":1, ...}; times as RFC 3339).
Json StateToJson(const ClientState& state);
// Errors: kMalformed naming the member; unknown members are ignored (forward compatibility).
Result<ClientState> StateFromJson(const Json& json);

class StateDir {
 public:
  explicit StateDir(std::string dir) : dir_(std::move(dir)) {}

  // Creates the directory (and parents) with mode 0700 when missing and sets 0700 on it.
  // Errors: kIo naming the path.
  Status Prepare() const;

  const std::string& dir() const { return dir_; }
  std::string Path(const char* name) const { return dir_ + "/" + name; }
  std::string device_key_path() const { return Path("device.key"); }
  std::string client_key_path() const { return Path("client.key"); }
  std::string cert_path() const { return Path("cert.pem"); }
  std::string chain_path() const { return Path("chain.pem"); }
  std::string refresh_token_path() const { return Path("refresh_token"); }
  std::string state_path() const { return Path("state.json"); }

  // std::nullopt when state.json does not exist. Errors: kIo, kMalformed.
  Result<std::optional<ClientState>> LoadState() const;
  Status SaveState(const ClientState& state) const;  // 0600

  // std::nullopt when the key file does not exist. Errors: kIo; those of PrivateKey::FromPem.
  Result<std::optional<crypto::PrivateKey>> LoadKey(const std::string& path) const;
  Status SaveKey(const std::string& path, const crypto::PrivateKey& key) const;  // 0600

  // std::nullopt when there is no refresh token.
  Result<std::optional<std::string>> LoadRefreshToken() const;
  Status SaveRefreshToken(const std::string& token) const;  // 0600

  // Writes chain.pem then cert.pem (0644).
  Status SaveCertificate(const std::string& leaf_pem, const std::string& chain_pem) const;

 private:
  std::string dir_;
};

}  // namespace e2eid::cli

#endif  // E2EID_CLI_CLIENT_STATE_H_
