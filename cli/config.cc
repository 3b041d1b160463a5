#include "cli/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <map>

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
                   if (v.rfind(':') == std::string::npos) {
                     return Fail(Error::Config("expected host:port, got '" + v + "'"));
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

}  // namespace e2eid::cli
