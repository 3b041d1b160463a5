#include "cli/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "ca/authority.h"
#include "ca/x509.h"
#include "cli/secrets.h"
#include "core/file.h"
#include "crypto/key.h"
#include "revocation/crl.h"
#include "revocation/ocsp.h"

namespace e2eid::cli {
namespace {

// One configuration key: how to read it from TOML and from an environment string.
struct Key {
  const char* section;
  const char* name;
  const char* type;  // for messages: "a string", "an integer", ...
  std::function<Status(Config&, const toml::node&)> from_toml;
  std::function<Status(Config&, const std::string&)> from_text;
};

Error TypeError(const char* type) { return Error::Config(std::string("expected ") + type); }

template <typename Setter>
Key MakeString(const char* section, const char* name, Setter set) {
  return Key{section, name, "a string",
             [set](Config& c, const toml::node& n) -> Status {
               if (!n.is_string()) return Fail(TypeError("a string"));
               return set(c, std::string(*n.value<std::string>()));
             },
             [set](Config& c, const std::string& s) -> Status { return set(c, s); }};
}

Result<int64_t> ParseInt(const std::string& s) {
  int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
    return Fail(Error::Config("expected an integer, got '" + s + "'"));
  }
  return v;
}

template <typename Setter>
Key MakeInt(const char* section, const char* name, int64_t min, int64_t max, Setter set) {
  auto check = [=](Config& c, int64_t v) -> Status {
    if (v < min || v > max) {
      return Fail(Error::Config("must be between " + std::to_string(min) + " and " +
                                std::to_string(max) + ", got " + std::to_string(v)));
    }
    set(c, v);
    return Ok();
  };
  return Key{section, name, "an integer",
             [check](Config& c, const toml::node& n) -> Status {
               if (!n.is_integer()) return Fail(TypeError("an integer"));
               return check(c, *n.value<int64_t>());
             },
             [check](Config& c, const std::string& s) -> Status {
               E2EID_TRY(v, ParseInt(s));
               return check(c, v);
             }};
}

template <typename Setter>
Key MakeBool(const char* section, const char* name, Setter set) {
  return Key{section, name, "a boolean",
             [set](Config& c, const toml::node& n) -> Status {
               if (!n.is_boolean()) return Fail(TypeError("a boolean (true or false)"));
               set(c, *n.value<bool>());
               return Ok();
             },
             [set](Config& c, const std::string& s) -> Status {
               if (s == "true" || s == "1")
                 set(c, true);
               else if (s == "false" || s == "0")
                 set(c, false);
               else
                 return Fail(Error::Config("expected true or false, got '" + s + "'"));
               return Ok();
             }};
}

template <typename Setter>
Key MakeDuration(const char* section, const char* name, Setter set) {
  auto apply = [set](Config& c, const std::string& s) -> Status {
    E2EID_TRY(d, ParseDuration(s));
    set(c, d);
    return Ok();
  };
  return Key{section, name, "a duration",
             [apply, set](Config& c, const toml::node& n) -> Status {
               if (n.is_integer()) {
                 const int64_t v = *n.value<int64_t>();
                 if (v < 0) return Fail(Error::Config("must not be negative"));
                 set(c, std::chrono::seconds(v));
                 return Ok();
               }
               if (!n.is_string()) {
                 return Fail(TypeError("a duration such as \"90s\", \"15m\", \"24h\" or \"7d\""));
               }
               return apply(c, std::string(*n.value<std::string>()));
             },
             apply};
}

template <typename Setter>
Key MakeStringList(const char* section, const char* name, Setter set) {
  return Key{section, name, "a list of strings",
             [set](Config& c, const toml::node& n) -> Status {
               const toml::array* arr = n.as_array();
               if (arr == nullptr) return Fail(TypeError("a list of strings"));
               std::vector<std::string> out;
               for (const auto& e : *arr) {
                 if (!e.is_string()) return Fail(TypeError("a list of strings"));
                 out.emplace_back(*e.value<std::string>());
               }
               set(c, std::move(out));
               return Ok();
             },
             [set](Config& c, const std::string& s) -> Status {
               std::vector<std::string> out;
               size_t start = 0;
               while (start <= s.size()) {
                 const size_t comma = s.find(',', start);
                 std::string item = s.substr(
                     start, comma == std::string::npos ? std::string::npos : comma - start);
                 if (!item.empty()) out.push_back(item);
                 if (comma == std::string::npos) break;
                 start = comma + 1;
               }
               set(c, std::move(out));
               return Ok();
             }};
}

auto SetServerString(std::string Config::Server::*field) {
  return [field](Config& c, std::string v) -> Status {
    c.server.*field = std::move(v);
    return Ok();
  };
}

template <typename T>
auto SetIdentity(T Config::Identity::*field) {
  return [field](Config& c, T v) -> Status {
    c.identity.*field = std::move(v);
    return Ok();
  };
}

const std::vector<Key>& Keys() {
  using I = Config::Identity;
  static const std::vector<Key> keys = {
      MakeDuration("revocation", "crl_lifetime",
                   [](Config& c, std::chrono::seconds v) { c.revocation.crl_lifetime = v; }),
      MakeDuration("revocation", "crl_max_age",
                   [](Config& c, std::chrono::seconds v) { c.revocation.crl_max_age = v; }),
      MakeDuration("revocation", "ocsp_next_update",
                   [](Config& c, std::chrono::seconds v) { c.revocation.ocsp_next_update = v; }),
      MakeDuration("revocation", "ocsp_max_age",
                   [](Config& c, std::chrono::seconds v) { c.revocation.ocsp_max_age = v; }),
      MakeDuration(
          "revocation", "ocsp_responder_validity",
          [](Config& c, std::chrono::seconds v) { c.revocation.ocsp_responder_validity = v; }),
      MakeString("admin", "client_id",
                 [](Config& c, std::string v) -> Status {
                   c.admin.client_id = std::move(v);
                   return Ok();
                 }),
      MakeString("admin", "roles_claim",
                 [](Config& c, std::string v) -> Status {
                   if (v.empty()) return Fail(Error::Config("must not be empty"));
                   c.admin.roles_claim = std::move(v);
                   return Ok();
                 }),
      MakeString("admin", "role",
                 [](Config& c, std::string v) -> Status {
                   if (v.empty()) return Fail(Error::Config("must not be empty"));
                   c.admin.role = std::move(v);
                   return Ok();
                 }),
      MakeString("identity", "domain", SetIdentity(&I::domain)),
      MakeString("identity", "oidc_issuer", SetIdentity(&I::oidc_issuer)),
      MakeString("identity", "oidc_client_id", SetIdentity(&I::oidc_client_id)),
      MakeString("identity", "oidc_ca_file", SetIdentity(&I::oidc_ca_file)),
      MakeString("identity", "oidc_binding",
                 [](Config& c, std::string v) -> Status {
                   if (v != "claims" && v != "nonce") {
                     return Fail(
                         Error::Config("expected \"claims\" or \"nonce\", got '" + v + "'"));
                   }
                   c.identity.oidc_binding = std::move(v);
                   return Ok();
                 }),
      MakeBool("identity", "accept_access_token",
               [](Config& c, bool v) { c.identity.accept_access_token = v; }),
      MakeDuration("identity", "access_token_max_age",
                   [](Config& c, std::chrono::seconds v) { c.identity.access_token_max_age = v; }),
      MakeDuration("identity", "leeway",
                   [](Config& c, std::chrono::seconds v) { c.identity.leeway = v; }),
      MakeString("identity", "name_claim", SetIdentity(&I::name_claim)),
      MakeString("identity", "handle_claim", SetIdentity(&I::handle_claim)),
      MakeString("identity", "roles_claim", SetIdentity(&I::roles_claim)),
      MakeStringList(
          "identity", "required_roles",
          [](Config& c, std::vector<std::string> v) { c.identity.required_roles = std::move(v); }),
      MakeBool("identity", "require_email_verified",
               [](Config& c, bool v) { c.identity.require_email_verified = v; }),
      MakeString("identity", "device_authority",
                 [](Config& c, std::string v) -> Status {
                   if (v != "builtin" && v != "external") {
                     return Fail(
                         Error::Config("expected \"builtin\" or \"external\", got '" + v + "'"));
                   }
                   c.identity.device_authority = std::move(v);
                   return Ok();
                 }),
      MakeString("identity", "authority_key_file", SetIdentity(&I::authority_key_file)),
      MakeString("identity", "external_authority_key_file",
                 SetIdentity(&I::external_authority_key_file)),
      MakeString("identity", "external_authority_url", SetIdentity(&I::external_authority_url)),
      MakeInt("identity", "max_devices_per_user", 1, 100000,
              [](Config& c, int64_t v) { c.identity.max_devices_per_user = v; }),
      MakeDuration("identity", "device_token_lifetime",
                   [](Config& c, std::chrono::seconds v) { c.identity.device_token_lifetime = v; }),
      MakeString("server", "listen",
                 [](Config& c, std::string v) -> Status {
                   const size_t colon = v.rfind(':');
                   const std::string port = colon == std::string::npos ? "" : v.substr(colon + 1);
                   unsigned n = 0;
                   auto r = std::from_chars(port.data(), port.data() + port.size(), n);
                   if (colon == std::string::npos || colon == 0 || port.empty() ||
                       r.ec != std::errc() || r.ptr != port.data() + port.size() || n > 65535) {
                     return Fail(
                         Error::Config("expected host:port with a port 0-65535, got '" + v + "'"));
                   }
                   c.server.listen = std::move(v);
                   return Ok();
                 }),
      MakeString("server", "external_url",
                 [](Config& c, std::string v) -> Status {
                   if (v.rfind("https://", 0) != 0 && v.rfind("http://", 0) != 0) {
                     return Fail(Error::Config("must start with https:// or http://"));
                   }
                   while (!v.empty() && v.back() == '/') v.pop_back();
                   c.server.external_url = std::move(v);
                   return Ok();
                 }),
      MakeBool("server", "tls", [](Config& c, bool v) { c.server.tls = v; }),
      MakeString("server", "tls_cert_file", SetServerString(&Config::Server::tls_cert_file)),
      MakeString("server", "tls_key_file", SetServerString(&Config::Server::tls_key_file)),
      MakeStringList(
          "server", "tls_names",
          [](Config& c, std::vector<std::string> v) { c.server.tls_names = std::move(v); }),
      MakeInt("server", "threads", 0, 256, [](Config& c, int64_t v) { c.server.threads = v; }),
      MakeInt("server", "max_body_bytes", 1024, 16 << 20,
              [](Config& c, int64_t v) { c.server.max_body_bytes = v; }),
      MakeInt("server", "max_header_bytes", 1024, 1 << 20,
              [](Config& c, int64_t v) { c.server.max_header_bytes = v; }),
      MakeDuration("server", "read_timeout",
                   [](Config& c, std::chrono::seconds v) { c.server.read_timeout = v; }),
      MakeDuration("server", "idle_timeout",
                   [](Config& c, std::chrono::seconds v) { c.server.idle_timeout = v; }),
      MakeDuration("server", "drain_timeout",
                   [](Config& c, std::chrono::seconds v) { c.server.drain_timeout = v; }),
      MakeString("ca", "dir",
                 [](Config& c, std::string v) -> Status {
                   c.ca.dir = std::move(v);
                   return Ok();
                 }),
      MakeString("ca", "passphrase_file",
                 [](Config& c, std::string v) -> Status {
                   c.ca.passphrase_file = std::move(v);
                   return Ok();
                 }),
      MakeString("store", "path",
                 [](Config& c, std::string v) -> Status {
                   c.store.path = std::move(v);
                   return Ok();
                 }),
      MakeDuration("validity", "default",
                   [](Config& c, std::chrono::seconds v) { c.validity.default_validity = v; }),
      MakeDuration("validity", "max",
                   [](Config& c, std::chrono::seconds v) { c.validity.max_validity = v; }),
      MakeDuration("validity", "min",
                   [](Config& c, std::chrono::seconds v) { c.validity.min_validity = v; }),
      MakeDuration("validity", "backdate",
                   [](Config& c, std::chrono::seconds v) { c.validity.backdate = v; }),
      MakeStringList(
          "acme", "dns_suffixes",
          [](Config& c, std::vector<std::string> v) { c.acme.dns_suffixes = std::move(v); }),
      MakeInt("acme", "http01_port", 1, 65535,
              [](Config& c, int64_t v) { c.acme.http01_port = v; }),
      MakeInt("acme", "tls_alpn01_port", 1, 65535,
              [](Config& c, int64_t v) { c.acme.tls_alpn01_port = v; }),
      MakeStringList("acme", "resolve",
                     [](Config& c, std::vector<std::string> v) { c.acme.resolve = std::move(v); }),
      MakeDuration("acme", "nonce_lifetime",
                   [](Config& c, std::chrono::seconds v) { c.acme.nonce_lifetime = v; }),
      MakeDuration("acme", "order_lifetime",
                   [](Config& c, std::chrono::seconds v) { c.acme.order_lifetime = v; }),
      MakeDuration("acme", "authorization_lifetime",
                   [](Config& c, std::chrono::seconds v) { c.acme.authorization_lifetime = v; }),
      MakeInt("acme", "validation_threads", 1, 64,
              [](Config& c, int64_t v) { c.acme.validation_threads = v; }),
      MakeString("log", "level",
                 [](Config& c, const std::string& v) -> Status {
                   auto level = ParseLogLevel(v);
                   if (!level) return Fail(Error::Config(level.error().detail()));
                   c.log.level = *level;
                   return Ok();
                 }),
  };
  return keys;
}

std::string EnvName(const Key& k) {
  std::string out = "E2EID_";
  for (const char* p : {k.section, "_", k.name}) {
    for (const char* q = p; *q != '\0'; ++q) {
      out += static_cast<char>(*q >= 'a' && *q <= 'z' ? *q - 'a' + 'A' : *q);
    }
  }
  return out;
}

std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p.front() == '/') return p;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

// [acme] checks that need the whole section. Errors: kConfig "acme.<key>: <reason>".
Status CheckAcme(const Config::Acme& acme) {
  for (const auto& suffix : acme.dns_suffixes) {
    const bool ldh = !suffix.empty() && std::all_of(suffix.begin(), suffix.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
    if (!ldh || suffix.front() == '.' || suffix.back() == '.' ||
        suffix.find("..") != std::string::npos) {
      return Fail(Error::Config("acme.dns_suffixes: '" + suffix +
                                "' is not a lower-case DNS name (write \"example.com\" to allow "
                                "example.com and every name below it)"));
    }
  }
  for (const auto& entry : acme.resolve) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size() ||
        entry.find('=', eq + 1) != std::string::npos) {
      return Fail(Error::Config("acme.resolve: '" + entry +
                                "' must be \"name=address\", e.g. \"*.localhost=127.0.0.1\""));
    }
    const std::string address = entry.substr(eq + 1);
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, address.c_str(), &v4) != 1 &&
        inet_pton(AF_INET6, address.c_str(), &v6) != 1) {
      return Fail(Error::Config("acme.resolve: '" + entry + "': '" + address +
                                "' is not an IPv4 or IPv6 address"));
    }
  }
  const std::pair<const char*, std::chrono::seconds> lifetimes[] = {
      {"nonce_lifetime", acme.nonce_lifetime},
      {"order_lifetime", acme.order_lifetime},
      {"authorization_lifetime", acme.authorization_lifetime}};
  for (const auto& [name, value] : lifetimes) {
    if (value.count() <= 0) {
      return Fail(Error::Config(std::string("acme.") + name + ": must be positive"));
    }
  }
  return Ok();
}

}  // namespace

std::map<std::string, std::string> Config::Acme::ResolveMap() const {
  std::map<std::string, std::string> out;
  for (const auto& entry : resolve) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    out[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return out;
}

namespace {

// [identity] checks that need the whole section. Errors: kConfig "identity.<key>: <reason>".
Status CheckIdentity(const Config::Identity& id) {
  if (!id.enabled()) return Ok();
  for (char c : id.domain) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
      return Fail(
          Error::Config("identity.domain: '" + id.domain + "' is not a lower-case DNS name"));
    }
  }
  if (id.oidc_issuer.rfind("https://", 0) != 0 && id.oidc_issuer.rfind("http://", 0) != 0) {
    return Fail(
        Error::Config("identity.oidc_issuer: required when identity.domain is set (an "
                      "https:// URL such as https://kc.example.com/realms/acme)"));
  }
  if (id.oidc_client_id.empty()) {
    return Fail(Error::Config("identity.oidc_client_id: required when identity.domain is set"));
  }
  if (id.device_authority == "external") {
    if (id.external_authority_key_file.empty()) {
      return Fail(Error::Config(
          "identity.external_authority_key_file: required when device_authority is external"));
    }
    if (id.external_authority_url.find("{device_id}") == std::string::npos) {
      return Fail(Error::Config(
          "identity.external_authority_url: required when device_authority is external, and "
          "must contain {device_id}"));
    }
  }
  if (!id.required_roles.empty() && id.roles_claim.empty()) {
    return Fail(Error::Config("identity.roles_claim: required when required_roles is set"));
  }
  return Ok();
}

}  // namespace

Result<std::chrono::seconds> ParseDuration(std::string_view text) {
  const std::string s(text);
  if (s.empty()) return Fail(Error::Config("empty duration"));
  int64_t mult = 1;
  std::string digits = s;
  switch (s.back()) {
    case 's':
      mult = 1;
      digits.pop_back();
      break;
    case 'm':
      mult = 60;
      digits.pop_back();
      break;
    case 'h':
      mult = 3600;
      digits.pop_back();
      break;
    case 'd':
      mult = 86400;
      digits.pop_back();
      break;
    default:
      break;
  }
  int64_t v = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || r.ec != std::errc() || r.ptr != digits.data() + digits.size() || v < 0 ||
      v > (int64_t{1} << 40)) {
    return Fail(Error::Config("invalid duration '" + s + "' (use e.g. 90s, 15m, 24h or 7d)"));
  }
  return std::chrono::seconds(v * mult);
}

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<Config> LoadConfig(const std::string& path, const EnvLookup& env) {
  Config config;
  config.source = path;
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    if (!std::filesystem::exists(path)) {
      return Fail(Error::NotFound("configuration file " + path + " does not exist"));
    }
    const auto& where = e.source().begin;
    return Fail(Error::Config(path + ":" + std::to_string(where.line) + ":" +
                              std::to_string(where.column) + ": " + std::string(e.description())));
  }

  std::map<std::string, const Key*> by_name;
  for (const auto& k : Keys()) by_name[std::string(k.section) + "." + k.name] = &k;

  for (const auto& [section_name, section_node] : table) {
    const std::string section(section_name.str());
    const toml::table* section_table = section_node.as_table();
    if (section_table == nullptr) {
      return Fail(Error::Config(path + ": " + section + ": expected a [" + section +
                                "] section, not a value"));
    }
    for (const auto& [key_name, node] : *section_table) {
      const std::string full = section + "." + std::string(key_name.str());
      auto it = by_name.find(full);
      if (it == by_name.end()) {
        return Fail(Error::Config(path + ": " + full + ": unknown key"));
      }
      auto st = it->second->from_toml(config, node);
      if (!st) return Fail(Error::Config(path + ": " + full + ": " + st.error().detail()));
    }
  }
  for (const auto& k : Keys()) {
    const std::string var = EnvName(k);
    if (auto v = env(var)) {
      auto st = k.from_text(config, *v);
      if (!st) return Fail(Error::Config("environment " + var + ": " + st.error().detail()));
    }
  }

  if (auto st = config.validity.Validate(); !st) {
    return Fail(Error::Config(path + ": validity: " + st.error().detail()));
  }
  if (auto st = CheckAcme(config.acme); !st) {
    return Fail(Error::Config(path + ": " + st.error().detail()));
  }
  if (config.server.tls_cert_file.empty() != config.server.tls_key_file.empty()) {
    return Fail(Error::Config(path + ": server.tls_cert_file and server.tls_key_file go together"));
  }
  if (!config.admin.client_id.empty() && config.identity.oidc_issuer.empty()) {
    return Fail(
        Error::Config(path + ": admin.client_id: the admin API needs identity.oidc_issuer"));
  }
  if (auto st = CheckIdentity(config.identity); !st) {
    return Fail(Error::Config(path + ": " + st.error().detail()));
  }
  const std::string base = std::filesystem::path(path).parent_path().string();
  config.identity.oidc_ca_file = Resolve(base, config.identity.oidc_ca_file);
  config.identity.authority_key_file = Resolve(base, config.identity.authority_key_file);
  config.identity.external_authority_key_file =
      Resolve(base, config.identity.external_authority_key_file);
  config.ca.dir = Resolve(base, config.ca.dir);
  config.ca.passphrase_file = Resolve(base, config.ca.passphrase_file);
  config.store.path = Resolve(base, config.store.path);
  config.server.tls_cert_file = Resolve(base, config.server.tls_cert_file);
  config.server.tls_key_file = Resolve(base, config.server.tls_key_file);
  if (config.server.external_url.empty()) {
    // Loopback listeners are reached as "localhost": the name the self-issued TLS certificate
    // carries by default (an IP address would fail hostname verification).
    std::string authority = config.server.listen;
    for (const char* loopback : {"127.0.0.1:", "[::1]:"}) {
      if (authority.rfind(loopback, 0) == 0) {
        authority = "localhost:" + authority.substr(std::string(loopback).size());
      }
    }
    config.server.external_url =
        std::string(config.server.tls ? "https://" : "http://") + authority;
  }
  return config;
}

// ---- offline checks and the effective configuration ---------------------------------------------

namespace {

Error KeyError(const Config& config, std::string_view key, const std::string& problem) {
  return Error::Config(config.source + ": " + std::string(key) + ": " + problem);
}

// A readable regular file. Errors: the problem text.
Result<std::string> ReadConfiguredFile(const std::string& path) {
  if (!std::filesystem::exists(path))
    return Fail(Error::Config("file " + path + " does not exist"));
  if (std::filesystem::is_directory(path)) {
    return Fail(Error::Config(path + " is a directory, not a file"));
  }
  auto text = ReadFile(path);
  if (!text) return Fail(Error::Config("cannot read " + path + ": " + text.error().detail()));
  return std::move(*text);
}

}  // namespace

Status CheckConfigFiles(const Config& config) {
  // ---- [ca] ----
  std::optional<std::string> passphrase;
  if (!config.ca.passphrase_file.empty()) {
    if (auto f = ReadConfiguredFile(config.ca.passphrase_file); !f) {
      return Fail(KeyError(config, "ca.passphrase_file", f.error().detail()));
    }
    auto p = ReadSecretFile(config.ca.passphrase_file);
    if (!p) return Fail(KeyError(config, "ca.passphrase_file", p.error().detail()));
    passphrase = std::move(*p);
  }
  if (!std::filesystem::is_directory(config.ca.dir)) {
    return Fail(KeyError(
        config, "ca.dir",
        "cannot load the CA: directory " + config.ca.dir + " does not exist (run `e2eid init`)"));
  }
  {
    auto ca = ca::CertificateAuthority::Load(
        ca::CaPaths::In(config.ca.dir),
        passphrase ? std::optional<std::string_view>(*passphrase) : std::nullopt);
    passphrase.reset();
    if (!ca) return Fail(KeyError(config, "ca.dir", "cannot load the CA: " + ca.error().detail()));
  }
  // ---- [store] ----
  {
    const std::filesystem::path parent =
        std::filesystem::path(config.store.path).parent_path().empty()
            ? std::filesystem::path(".")
            : std::filesystem::path(config.store.path).parent_path();
    if (!std::filesystem::is_directory(parent)) {
      return Fail(
          KeyError(config, "store.path", "directory " + parent.string() + " does not exist"));
    }
  }
  // ---- [server] ----
  {
    const std::string& listen = config.server.listen;
    const size_t colon = listen.rfind(':');
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, host.c_str(), &v4) != 1 && inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
      return Fail(KeyError(
          config, "server.listen",
          "'" + host + "' is not an IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, [::])"));
    }
  }
  if (!config.server.tls_cert_file.empty()) {
    auto chain = ReadConfiguredFile(config.server.tls_cert_file);
    if (!chain) return Fail(KeyError(config, "server.tls_cert_file", chain.error().detail()));
    auto cert = ca::CertificateFromPem(*chain);
    if (!cert) {
      return Fail(KeyError(config, "server.tls_cert_file",
                           "not a PEM certificate: " + cert.error().detail()));
    }
    auto key_pem = ReadConfiguredFile(config.server.tls_key_file);
    if (!key_pem) return Fail(KeyError(config, "server.tls_key_file", key_pem.error().detail()));
    auto key = crypto::PrivateKey::FromPem(*key_pem);
    if (!key) {
      return Fail(KeyError(config, "server.tls_key_file",
                           "not an unencrypted PEM private key: " + key.error().detail()));
    }
  }
  // ---- [identity] ----
  if (config.identity.enabled()) {
    const Config::Identity& id = config.identity;
    if (!id.oidc_ca_file.empty()) {
      if (auto f = ReadConfiguredFile(id.oidc_ca_file); !f) {
        return Fail(KeyError(config, "identity.oidc_ca_file", f.error().detail()));
      }
    }
    if (id.device_authority == "builtin") {
      if (PathExists(id.authority_key_file)) {
        auto pem = ReadConfiguredFile(id.authority_key_file);
        if (!pem)
          return Fail(KeyError(config, "identity.authority_key_file", pem.error().detail()));
        auto key = crypto::PrivateKey::FromPem(*pem);
        if (!key) {
          return Fail(KeyError(config, "identity.authority_key_file",
                               "not a PEM private key: " + key.error().detail()));
        }
      } else {
        const std::filesystem::path parent =
            std::filesystem::path(id.authority_key_file).parent_path();
        if (!parent.empty() && !std::filesystem::is_directory(parent)) {
          return Fail(KeyError(config, "identity.authority_key_file",
                               "directory " + parent.string() + " does not exist"));
        }
      }
    } else {
      auto pem = ReadConfiguredFile(id.external_authority_key_file);
      if (!pem) {
        return Fail(KeyError(config, "identity.external_authority_key_file", pem.error().detail()));
      }
      auto key = crypto::PublicKey::FromPem(*pem);
      if (!key) {
        return Fail(KeyError(config, "identity.external_authority_key_file",
                             "not a PEM public key: " + key.error().detail()));
      }
    }
  }
  // ---- [revocation] ----
  {
    const std::pair<const char*, revocation::CrlOptions> crl_checks[] = {
        {"revocation.crl_lifetime", {.lifetime = config.revocation.crl_lifetime}},
        {"revocation.crl_max_age", {.max_age = config.revocation.crl_max_age}},
    };
    for (const auto& [key, options] : crl_checks) {
      if (auto st = options.Validate(); !st) {
        return Fail(KeyError(config, key, st.error().detail()));
      }
    }
    revocation::OcspOptions ocsp;
    ocsp.next_update = config.revocation.ocsp_next_update;
    if (auto st = ocsp.Validate(); !st) {
      return Fail(KeyError(config, "revocation.ocsp_next_update", st.error().detail()));
    }
    ocsp = {};
    ocsp.max_age = config.revocation.ocsp_max_age;
    if (auto st = ocsp.Validate(); !st) {
      return Fail(KeyError(config, "revocation.ocsp_max_age", st.error().detail()));
    }
    ocsp = {};
    ocsp.responder_validity = config.revocation.ocsp_responder_validity;
    if (auto st = ocsp.Validate(); !st) {
      return Fail(KeyError(config, "revocation.ocsp_responder_validity", st.error().detail()));
    }
  }
  return Ok();
}

bool IsSecretConfigKey(std::string_view key) {
  const size_t dot = key.rfind('.');
  const std::string_view name = dot == std::string_view::npos ? key : key.substr(dot + 1);
  for (std::string_view suffix : {"passphrase", "password", "secret"}) {
    if (name.ends_with(suffix)) return true;
  }
  return false;
}

std::vector<std::string> ConfigKeyNames() {
  std::vector<std::string> names;
  for (const Key& k : Keys()) names.push_back(std::string(k.section) + "." + k.name);
  return names;
}

namespace {

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string TomlList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i > 0 ? ", " : "") + TomlString(v[i]);
  return out + "]";
}

std::string TomlDuration(std::chrono::seconds d) {
  const int64_t s = d.count();
  if (s != 0 && s % 86400 == 0) return TomlString(std::to_string(s / 86400) + "d");
  if (s != 0 && s % 3600 == 0) return TomlString(std::to_string(s / 3600) + "h");
  if (s != 0 && s % 60 == 0) return TomlString(std::to_string(s / 60) + "m");
  return TomlString(std::to_string(s) + "s");
}

std::string TomlBool(bool b) { return b ? "true" : "false"; }

}  // namespace

std::string FormatEffectiveConfig(const Config& c) {
  using std::to_string;
  const std::map<std::string, std::string> values = {
      {"server.listen", TomlString(c.server.listen)},
      {"server.external_url", TomlString(c.server.external_url)},
      {"server.tls", TomlBool(c.server.tls)},
      {"server.tls_cert_file", TomlString(c.server.tls_cert_file)},
      {"server.tls_key_file", TomlString(c.server.tls_key_file)},
      {"server.tls_names", TomlList(c.server.tls_names)},
      {"server.threads", to_string(c.server.threads)},
      {"server.max_body_bytes", to_string(c.server.max_body_bytes)},
      {"server.max_header_bytes", to_string(c.server.max_header_bytes)},
      {"server.read_timeout", TomlDuration(c.server.read_timeout)},
      {"server.idle_timeout", TomlDuration(c.server.idle_timeout)},
      {"server.drain_timeout", TomlDuration(c.server.drain_timeout)},
      {"ca.dir", TomlString(c.ca.dir)},
      {"ca.passphrase_file", TomlString(c.ca.passphrase_file)},
      {"store.path", TomlString(c.store.path)},
      {"validity.default", TomlDuration(c.validity.default_validity)},
      {"validity.max", TomlDuration(c.validity.max_validity)},
      {"validity.min", TomlDuration(c.validity.min_validity)},
      {"validity.backdate", TomlDuration(c.validity.backdate)},
      {"acme.dns_suffixes", TomlList(c.acme.dns_suffixes)},
      {"acme.http01_port", to_string(c.acme.http01_port)},
      {"acme.tls_alpn01_port", to_string(c.acme.tls_alpn01_port)},
      {"acme.resolve", TomlList(c.acme.resolve)},
      {"acme.nonce_lifetime", TomlDuration(c.acme.nonce_lifetime)},
      {"acme.order_lifetime", TomlDuration(c.acme.order_lifetime)},
      {"acme.authorization_lifetime", TomlDuration(c.acme.authorization_lifetime)},
      {"acme.validation_threads", to_string(c.acme.validation_threads)},
      {"identity.domain", TomlString(c.identity.domain)},
      {"identity.oidc_issuer", TomlString(c.identity.oidc_issuer)},
      {"identity.oidc_client_id", TomlString(c.identity.oidc_client_id)},
      {"identity.oidc_ca_file", TomlString(c.identity.oidc_ca_file)},
      {"identity.oidc_binding", TomlString(c.identity.oidc_binding)},
      {"identity.accept_access_token", TomlBool(c.identity.accept_access_token)},
      {"identity.access_token_max_age", TomlDuration(c.identity.access_token_max_age)},
      {"identity.leeway", TomlDuration(c.identity.leeway)},
      {"identity.name_claim", TomlString(c.identity.name_claim)},
      {"identity.handle_claim", TomlString(c.identity.handle_claim)},
      {"identity.roles_claim", TomlString(c.identity.roles_claim)},
      {"identity.required_roles", TomlList(c.identity.required_roles)},
      {"identity.require_email_verified", TomlBool(c.identity.require_email_verified)},
      {"identity.device_authority", TomlString(c.identity.device_authority)},
      {"identity.authority_key_file", TomlString(c.identity.authority_key_file)},
      {"identity.external_authority_key_file", TomlString(c.identity.external_authority_key_file)},
      {"identity.external_authority_url", TomlString(c.identity.external_authority_url)},
      {"identity.max_devices_per_user", to_string(c.identity.max_devices_per_user)},
      {"identity.device_token_lifetime", TomlDuration(c.identity.device_token_lifetime)},
      {"revocation.crl_lifetime", TomlDuration(c.revocation.crl_lifetime)},
      {"revocation.crl_max_age", TomlDuration(c.revocation.crl_max_age)},
      {"revocation.ocsp_next_update", TomlDuration(c.revocation.ocsp_next_update)},
      {"revocation.ocsp_max_age", TomlDuration(c.revocation.ocsp_max_age)},
      {"revocation.ocsp_responder_validity", TomlDuration(c.revocation.ocsp_responder_validity)},
      {"admin.client_id", TomlString(c.admin.client_id)},
      {"admin.roles_claim", TomlString(c.admin.roles_claim)},
      {"admin.role", TomlString(c.admin.role)},
      {"log.level", TomlString(LogLevelName(c.log.level))},
  };
  // Sections in a stable, readable order; keys within a section in registration order.
  const char* const sections[] = {"server",   "ca",         "store", "validity", "acme",
                                  "identity", "revocation", "admin", "log"};
  std::string out = "# effective configuration of " + c.source + "\n";
  for (const char* section : sections) {
    out += std::string("\n[") + section + "]\n";
    for (const Key& k : Keys()) {
      if (std::string_view(k.section) != section) continue;
      const std::string full = std::string(k.section) + "." + k.name;
      auto it = values.find(full);
      std::string value = it == values.end() ? "\"(not printable)\"" : it->second;
      if (IsSecretConfigKey(full)) value = "\"****\"";
      out += std::string(k.name) + " = " + value + "\n";
    }
  }
  return out;
}

}  // namespace e2eid::cli
