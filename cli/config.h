// The service configuration: a TOML file (config/e2eid.example.toml documents every key), where
// every key can be overridden by an environment variable E2EID_<SECTION>_<KEY> (upper case, e.g.
// E2EID_SERVER_LISTEN, E2EID_VALIDITY_MAX).
//
// Loading is strict: an unknown section or key, a value of the wrong type, or a value out of range
// stops the start with an error that names the file (or the environment variable), the key and the
// reason. Relative paths are resolved against the directory of the configuration file.
#ifndef E2EID_CLI_CONFIG_H_
#define E2EID_CLI_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ca/profile.h"
#include "core/error.h"
#include "core/log.h"

namespace e2eid::cli {

struct Config {
  std::string source;  // the file it was read from

  struct Server {
    std::string listen = "127.0.0.1:8443";  // host:port; [v6]:port for IPv6
    std::string external_url;               // base URL clients use; default https://<listen>
    bool tls = true;                        // false only behind a TLS-terminating proxy
    std::string tls_cert_file;  // PEM chain; empty: the service issues its own from the CA
    std::string tls_key_file;
    std::vector<std::string> tls_names = {"localhost"};  // names in the self-issued certificate
    int64_t threads = 0;                                 // 0: one per core
    int64_t max_body_bytes = 64 * 1024;
    int64_t max_header_bytes = 8 * 1024;
    std::chrono::seconds read_timeout{30};
    std::chrono::seconds idle_timeout{60};
    std::chrono::seconds drain_timeout{10};
  } server;

  struct Ca {
    std::string dir = "ca";
    std::string passphrase_file;  // empty: the keys are not encrypted
  } ca;

  struct Store {
    std::string path = "e2eid.db";
  } store;

  ca::ValidityPolicy validity;

  // The ACME server (acme/engine.h) and its challenge validators.
  struct Acme {
    // DNS names certificates may be issued for: each entry allows itself and every name below it.
    std::vector<std::string> dns_suffixes = {"localhost"};
    int64_t http01_port = 80;       // where http-01 validation connects
    int64_t tls_alpn01_port = 443;  // where tls-alpn-01 validation connects
    // Name-to-address overrides for validation, "name=address" or "*.suffix=address".
    std::vector<std::string> resolve;
    std::chrono::seconds nonce_lifetime{3600};
    std::chrono::seconds order_lifetime{24 * 3600};
    std::chrono::seconds authorization_lifetime{24 * 3600};
    int64_t validation_threads = 2;  // threads running challenge validations

    // `resolve` as a map (name -> address); the entries were checked when loading.
    std::map<std::string, std::string> ResolveMap() const;
  } acme;

  // End-to-end identity (Wire's identifiers and challenges). Disabled while `domain` is empty.
  struct Identity {
    std::string domain;                   // the federation domain in every identity certificate
    std::string oidc_issuer;              // e.g. https://kc.example.com/realms/acme
    std::string oidc_client_id;           // the client the devices log in with (ID-token audience)
    std::string oidc_ca_file;             // PEM trust for an https IdP; empty: system trust store
    std::string oidc_binding = "claims";  // "claims" (keyauth/acme_aud) or "nonce" (stock IdPs)
    bool accept_access_token = true;      // silent renewal: DPoP-bound access tokens
    std::chrono::seconds access_token_max_age{300};
    std::chrono::seconds leeway{60};
    std::string name_claim = "name";
    std::string handle_claim = "preferred_username";
    std::string roles_claim;                  // e.g. realm_access.roles; empty: no role check
    std::vector<std::string> required_roles;  // any one of them
    bool require_email_verified = false;
    std::string device_authority = "builtin";                 // "builtin" or "external"
    std::string authority_key_file = "device-authority.key";  // builtin: created when missing
    std::string external_authority_key_file;  // external: the authority's public key (PEM)
    std::string external_authority_url;       // external: access-token URL with {device_id}
    int64_t max_devices_per_user = 10;
    std::chrono::seconds device_token_lifetime{300};

    bool enabled() const { return !domain.empty(); }
  } identity;

  // CRL and OCSP publishing (revocation/).
  struct Revocation {
    std::chrono::seconds crl_lifetime{3600};      // nextUpdate - thisUpdate
    std::chrono::seconds crl_max_age{60};         // Cache-Control cap of /crl
    std::chrono::seconds ocsp_next_update{3600};  // nextUpdate - thisUpdate of OCSP responses
    std::chrono::seconds ocsp_max_age{60};        // Cache-Control cap of GET /ocsp/...
    std::chrono::seconds ocsp_responder_validity{7 * 24 * 3600};
  } revocation;

  // The admin API (/admin/v1): bearer tokens of the identity provider (identity.oidc_issuer).
  // Disabled while client_id is empty.
  struct Admin {
    std::string client_id;  // the client admins log in with (e.g. e2eid-admin-cli)
    std::string roles_claim = "realm_access.roles";
    std::string role = "e2eid-admin";
  } admin;

  struct Log {
    LogLevel level = LogLevel::kInfo;
  } log;
};

// Looks up an environment variable; returns nullopt when unset. Tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnvironment();

// Reads `path` and applies overrides from `env`. Errors: kNotFound for a missing file, kConfig with
// "<file>: <key>: <reason>" (or "environment E2EID_X_Y: <reason>") for everything else.
Result<Config> LoadConfig(const std::string& path, const EnvLookup& env);

// The checks `serve` makes before it starts that need files but not the network (used by `serve`
// and by `e2eid check-config`): the CA directory exists and loads (keys parse, the passphrase file
// is readable and decrypts them), the TLS certificate and key files parse, the identity key files
// parse (the built-in authority's key when it exists: it is created on first start), the OIDC CA
// file is readable, the store's directory exists, the listen address is host:port and the CRL and
// OCSP options are valid. Errors: kConfig "<file>: <key>: <problem>" for the first problem found.
Status CheckConfigFiles(const Config& config);

// Secrets. Inline secret values are not supported: secrets come from files (`*_file` keys), and
// the only one today is the CA key passphrase (ca.passphrase_file; the TLS and authority keys are
// key files). The identity provider clients (oidc_client_id, admin.client_id) are public clients
// with PKCE/DPoP and have no client secret. A key whose name ends in "passphrase", "password" or
// "secret" (without "_file") would be masked by FormatEffectiveConfig.
bool IsSecretConfigKey(std::string_view key);

// Every "section.key" that LoadConfig accepts (FormatEffectiveConfig prints each of them).
std::vector<std::string> ConfigKeyNames();

// The effective configuration as TOML: every section and every key, defaults included, paths
// resolved; values of secret keys (IsSecretConfigKey) are printed as "****". Secret files' contents
// are never read here.
std::string FormatEffectiveConfig(const Config& config);

// Parses "90s", "15m", "24h", "7d" or a bare number of seconds. Errors: kConfig.
Result<std::chrono::seconds> ParseDuration(std::string_view text);

}  // namespace e2eid::cli

#endif  // E2EID_CLI_CONFIG_H_
