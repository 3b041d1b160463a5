#include "cli/config.h"

#include <gtest/gtest.h>

#include <map>

#include "ca/authority.h"
#include "core/clock.h"
#include "core/file.h"
#include "crypto/random.h"
#include "tests/test_util.h"

namespace e2eid::cli {
namespace {

using testing::TempDir;

class ConfigTest : public ::testing::Test {
 protected:
  Result<Config> Load(const std::string& text) {
    const std::string path = tmp_ / "e2eid.toml";
    EXPECT_TRUE(WriteFileAtomic(path, text, 0600));
    return LoadConfig(path, [this](const std::string& n) -> std::optional<std::string> {
      auto it = env_.find(n);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    });
  }
  TempDir tmp_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, TheShippedExampleLoadsWithDefaults) {
  auto c = LoadConfig(std::string(E2EID_SOURCE_DIR) + "/config/e2eid.example.toml",
                      [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(c) << c.error().detail();
  EXPECT_EQ(c->server.listen, "127.0.0.1:8443");
  EXPECT_EQ(c->server.external_url, "https://localhost:8443");
  EXPECT_EQ(c->validity.max_validity, std::chrono::hours(24 * 7));
  EXPECT_EQ(c->ca.dir, std::string(E2EID_SOURCE_DIR) + "/config/ca");
  EXPECT_EQ(c->acme.dns_suffixes, std::vector<std::string>{"localhost"});
  EXPECT_EQ(c->acme.http01_port, 80);
  EXPECT_EQ(c->acme.tls_alpn01_port, 443);
  EXPECT_TRUE(c->acme.resolve.empty());
  EXPECT_EQ(c->acme.nonce_lifetime, std::chrono::hours(1));
  EXPECT_EQ(c->acme.order_lifetime, std::chrono::hours(24));
  EXPECT_EQ(c->acme.authorization_lifetime, std::chrono::hours(24));
  EXPECT_EQ(c->acme.validation_threads, 2);
}

TEST_F(ConfigTest, AcmeSection) {
  env_["E2EID_ACME_HTTP01_PORT"] = "5002";
  auto c = Load(R"(
[acme]
dns_suffixes = ["localhost", "test.example"]
http01_port = 8080
tls_alpn01_port = 5001
resolve = ["*.localhost=127.0.0.1", "host.test.example=::1"]
nonce_lifetime = "10m"
order_lifetime = "2h"
authorization_lifetime = 3600
validation_threads = 8
)");
  ASSERT_TRUE(c) << c.error().detail();
  EXPECT_EQ(c->acme.dns_suffixes, (std::vector<std::string>{"localhost", "test.example"}));
  EXPECT_EQ(c->acme.http01_port, 5002);  // the environment wins
  EXPECT_EQ(c->acme.tls_alpn01_port, 5001);
  EXPECT_EQ(c->acme.ResolveMap(), (std::map<std::string, std::string>{
                                      {"*.localhost", "127.0.0.1"}, {"host.test.example", "::1"}}));
  EXPECT_EQ(c->acme.nonce_lifetime, std::chrono::minutes(10));
  EXPECT_EQ(c->acme.order_lifetime, std::chrono::hours(2));
  EXPECT_EQ(c->acme.authorization_lifetime, std::chrono::hours(1));
  EXPECT_EQ(c->acme.validation_threads, 8);
}

TEST_F(ConfigTest, ValuesAndEnvironmentOverrides) {
  env_["E2EID_SERVER_LISTEN"] = "0.0.0.0:9443";
  env_["E2EID_VALIDITY_MAX"] = "3d";
  auto c = Load(R"(
[server]
listen = "127.0.0.1:1"
external_url = "https://ca.example.com/"
threads = 4
tls_names = ["localhost", "ca.internal"]
[validity]
default = "12h"
min = 300
[log]
level = "debug"
[store]
path = "data/e2eid.db"
)");
  ASSERT_TRUE(c) << c.error().detail();
  EXPECT_EQ(c->server.listen, "0.0.0.0:9443");
  EXPECT_EQ(c->server.external_url, "https://ca.example.com");
  EXPECT_EQ(c->server.threads, 4);
  EXPECT_EQ(c->server.tls_names, (std::vector<std::string>{"localhost", "ca.internal"}));
  EXPECT_EQ(c->validity.default_validity, std::chrono::hours(12));
  EXPECT_EQ(c->validity.max_validity, std::chrono::hours(72));
  EXPECT_EQ(c->validity.min_validity, std::chrono::minutes(5));
  EXPECT_EQ(c->log.level, LogLevel::kDebug);
  EXPECT_EQ(c->store.path, tmp_ / "data/e2eid.db");
}

TEST_F(ConfigTest, ErrorsNameFileKeyAndReason) {
  const std::string file = tmp_ / "e2eid.toml";
  struct Case {
    const char* text;
    std::string expected;
  };
  const Case cases[] = {
      {"[server]\nlisten = 8443\n", file + ": server.listen: expected a string"},
      {"[server]\nlisen = \"x:1\"\n", file + ": server.lisen: unknown key"},
      {"[srever]\nlisten = \"x:1\"\n", file + ": srever.listen: unknown key"},
      {"[server]\nthreads = \"four\"\n", file + ": server.threads: expected an integer"},
      {"[server]\nthreads = 100000\n", file + ": server.threads: must be between 0 and 256"},
      {"[server]\ntls = \"yes\"\n", file + ": server.tls: expected a boolean"},
      {"[validity]\nmax = \"7 days\"\n", file + ": validity.max: invalid duration '7 days'"},
      {"[validity]\ndefault = \"30d\"\n", file + ": validity: default validity is longer"},
      {"[log]\nlevel = \"loud\"\n", file + ": log.level: unknown log level 'loud'"},
      {"listen = \"x:1\"\n", file + ": listen: expected a [listen] section"},
      {"[server]\nlisten = \n", file + ":2:"},
      {"[server]\nexternal_url = \"ftp://x\"\n", file + ": server.external_url: must start with"},
      {"[server]\ntls_cert_file = \"a.pem\"\n",
       file + ": server.tls_cert_file and server.tls_key_file"},
      {"[acme]\nhttp01_port = 0\n", file + ": acme.http01_port: must be between 1 and 65535"},
      {"[acme]\nvalidation_threads = 0\n",
       file + ": acme.validation_threads: must be between 1 and 64"},
      {"[acme]\ndns_suffixes = \"localhost\"\n",
       file + ": acme.dns_suffixes: expected a list of strings"},
      {"[acme]\ndns_suffixes = [\"*.localhost\"]\n",
       file + ": acme.dns_suffixes: '*.localhost' is not a lower-case DNS name"},
      {"[acme]\ndns_suffixes = [\"Example.com\"]\n",
       file + ": acme.dns_suffixes: 'Example.com' is not a lower-case DNS name"},
      {"[acme]\nresolve = [\"localhost\"]\n",
       file + ": acme.resolve: 'localhost' must be \"name=address\""},
      {"[acme]\nresolve = [\"a.localhost=nowhere\"]\n",
       file + ": acme.resolve: 'a.localhost=nowhere': 'nowhere' is not an IPv4 or IPv6 address"},
      {"[acme]\nnonce_lifetime = \"0s\"\n", file + ": acme.nonce_lifetime: must be positive"},
      {"[acme]\norder_lifetime = \"soon\"\n",
       file + ": acme.order_lifetime: invalid duration 'soon'"},
      {"[acme]\nhttp01 = 80\n", file + ": acme.http01: unknown key"},
  };
  for (const auto& c : cases) {
    auto r = Load(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code(), ErrorCode::kConfig);
    EXPECT_EQ(r.error().detail().rfind(c.expected, 0), 0u)
        << "got: " << r.error().detail() << "\nwant prefix: " << c.expected;
  }
}

TEST_F(ConfigTest, IdentitySection) {
  auto off = Load("");
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->identity.enabled());
  env_["E2EID_IDENTITY_REQUIRED_ROLES"] = "device-user,staff";
  auto c = Load(R"(
[identity]
domain = "wire.example.com"
oidc_issuer = "https://kc.example.com/realms/acme"
oidc_client_id = "e2eid-device"
oidc_binding = "nonce"
roles_claim = "realm_access.roles"
authority_key_file = "keys/authority.key"
max_devices_per_user = 3
device_token_lifetime = "2m"
)");
  ASSERT_TRUE(c) << c.error().detail();
  EXPECT_TRUE(c->identity.enabled());
  EXPECT_EQ(c->identity.oidc_binding, "nonce");
  EXPECT_EQ(c->identity.required_roles, (std::vector<std::string>{"device-user", "staff"}));
  EXPECT_EQ(c->identity.authority_key_file, tmp_ / "keys/authority.key");
  EXPECT_EQ(c->identity.max_devices_per_user, 3);
  EXPECT_EQ(c->identity.device_token_lifetime, std::chrono::minutes(2));
  env_.clear();

  const std::string file = tmp_ / "e2eid.toml";
  const std::string base =
      "[identity]\ndomain = \"wire.example.com\"\noidc_client_id = \"c\"\n"
      "oidc_issuer = \"https://kc.example.com/realms/a\"\n";
  const std::pair<std::string, std::string> cases[] = {
      {"[identity]\ndomain = \"wire.example.com\"\n", "identity.oidc_issuer: required"},
      {"[identity]\ndomain = \"wire.example.com\"\noidc_issuer = \"https://kc/realms/a\"\n",
       "identity.oidc_client_id: required"},
      {"[identity]\ndomain = \"Wire.Example\"\n", "identity.domain: 'Wire.Example'"},
      {base + "oidc_binding = \"keyauth\"\n", "identity.oidc_binding: expected \"claims\""},
      {base + "device_authority = \"external\"\n", "identity.external_authority_key_file"},
      {base + "device_authority = \"external\"\nexternal_authority_key_file = \"k.pem\"\n"
              "external_authority_url = \"https://be/clients/access-token\"\n",
       "must contain {device_id}"},
      {base + "required_roles = [\"admin\"]\n", "identity.roles_claim: required"},
      {base + "max_devices_per_user = 0\n", "identity.max_devices_per_user: must be between"},
  };
  for (const auto& [text, needle] : cases) {
    auto r = Load(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code(), ErrorCode::kConfig);
    EXPECT_NE(r.error().detail().find(file), std::string::npos) << r.error().detail();
    EXPECT_NE(r.error().detail().find(needle), std::string::npos) << r.error().detail();
  }
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  env_["E2EID_SERVER_THREADS"] = "many";
  auto r = Load("");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail(),
            "environment E2EID_SERVER_THREADS: expected an integer, got 'many'");
}

TEST_F(ConfigTest, MissingFile) {
  auto r = LoadConfig(tmp_ / "absent.toml", [](const std::string&) { return std::nullopt; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST(DurationTest, Units) {
  EXPECT_EQ(*ParseDuration("90s"), std::chrono::seconds(90));
  EXPECT_EQ(*ParseDuration("15m"), std::chrono::minutes(15));
  EXPECT_EQ(*ParseDuration("7d"), std::chrono::hours(168));
  EXPECT_EQ(*ParseDuration("42"), std::chrono::seconds(42));
  for (const char* bad : {"", "h", "-5s", "5x", "1.5h", " 5s"})
    EXPECT_FALSE(ParseDuration(bad)) << bad;
}

// `check-config`'s two steps (LoadConfig, then CheckConfigFiles) over a directory with a CA.
class CheckConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SystemClock clock;
    crypto::SecureRandom random;
    ca::InitOptions options;
    options.dir = tmp_ / "ca";
    options.passphrase = "correct horse battery staple";
    ASSERT_TRUE(ca::InitCa(options, clock, random));
    ASSERT_TRUE(WriteFileAtomic(tmp_ / "pass", "correct horse battery staple\n", 0600));
  }
  // The error of loading and checking `text`, or "" when it is valid.
  std::string Check(const std::string& text) {
    const std::string path = tmp_ / "e2eid.toml";
    EXPECT_TRUE(WriteFileAtomic(path, text, 0600));
    auto config = LoadConfig(path, [](const std::string&) { return std::nullopt; });
    if (!config) return config.error().detail();
    if (auto st = CheckConfigFiles(*config); !st) return st.error().detail();
    return "";
  }
  std::string Path() { return tmp_ / "e2eid.toml"; }
  TempDir tmp_;
};

constexpr char kPass[] = "[ca]\npassphrase_file = \"pass\"\n";

TEST_F(CheckConfigTest, AValidConfigurationPasses) {
  EXPECT_EQ(Check(kPass), "");
  // The same CA without its passphrase does not load.
  const std::string e = Check("");
  EXPECT_NE(e.find(Path() + ": ca.dir: cannot load the CA"), std::string::npos) << e;
}

TEST_F(CheckConfigTest, TenBrokenConfigurationsEachNameFileKeyAndProblem) {
  struct Case {
    std::string text;
    std::string key;
    std::string problem;
  };
  const std::string id = "[identity]\ndomain = \"example.com\"\noidc_client_id = \"dev\"\n";
  const std::vector<Case> cases = {
      {std::string(kPass) + "[server]\nlisten_on = \"127.0.0.1:1\"\n", "server.listen_on",
       "unknown key"},
      {std::string(kPass) + "[server]\nthreads = \"many\"\n", "server.threads",
       "expected an integer"},
      {std::string(kPass) + "[acme]\nnonce_lifetime = \"ten minutes\"\n", "acme.nonce_lifetime",
       "invalid duration 'ten minutes'"},
      {std::string(kPass) + "[server]\nlisten = \"127.0.0.1:https\"\n", "server.listen",
       "expected host:port"},
      {std::string(kPass) + "[server]\nlisten = \"ca.example.com:8443\"\n", "server.listen",
       "is not an IPv4 or IPv6 address"},
      {"[ca]\ndir = \"nowhere\"\npassphrase_file = \"pass\"\n", "ca.dir",
       "directory " + tmp_ / "nowhere" + " does not exist"},
      {"[ca]\npassphrase_file = \"absent.pass\"\n", "ca.passphrase_file",
       "file " + tmp_ / "absent.pass" + " does not exist"},
      {"[ca]\npassphrase_file = \"ca\"\n", "ca.passphrase_file", "is a directory"},
      {std::string(kPass) + id, "identity.oidc_issuer", "required when identity.domain is set"},
      {std::string(kPass) + "[identity]\noidc_binding = \"magic\"\n", "identity.oidc_binding",
       "expected \"claims\" or \"nonce\""},
      {std::string(kPass) + id +
           "oidc_issuer = \"https://kc.example.com/realms/a\"\ndevice_authority = \"external\"\n",
       "identity.external_authority_key_file", "required when device_authority is external"},
      {std::string(kPass) + id +
           "oidc_issuer = \"https://kc.example.com/realms/a\"\ndevice_authority = \"external\"\n"
           "external_authority_key_file = \"pass\"\nexternal_authority_url = "
           "\"https://da.example.com/{device_id}\"\n",
       "identity.external_authority_key_file", "not a PEM public key"},
      {std::string(kPass) + "[revocation]\ncrl_lifetime = \"1m\"\n", "revocation.crl_lifetime",
       "2 min"},
      {std::string(kPass) + "[revocation]\nocsp_responder_validity = \"10m\"\n",
       "revocation.ocsp_responder_validity", "responder_validity"},
      {std::string(kPass) + "[server]\ntls_cert_file = \"pass\"\ntls_key_file = \"pass\"\n",
       "server.tls_cert_file", "not a PEM certificate"},
      {std::string(kPass) + "[store]\npath = \"no/such/dir/e2eid.db\"\n", "store.path",
       "does not exist"},
  };
  ASSERT_GE(cases.size(), 10u);
  for (const Case& c : cases) {
    const std::string error = Check(c.text);
    EXPECT_EQ(error.rfind(Path() + ": " + c.key + ": ", 0), 0u) << c.text << "\n-> " << error;
    EXPECT_NE(error.find(c.problem), std::string::npos) << c.text << "\n-> " << error;
  }
}

TEST_F(CheckConfigTest, EffectiveConfigurationHasEveryKeyAndNoSecret) {
  const std::string path = tmp_ / "e2eid.toml";
  ASSERT_TRUE(WriteFileAtomic(path, std::string(kPass) + "[validity]\nmax = \"2d\"\n", 0600));
  auto config = LoadConfig(path, [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(config) << config.error().detail();
  const std::string text = FormatEffectiveConfig(*config);
  for (const std::string& key : ConfigKeyNames()) {
    const std::string section = key.substr(0, key.find('.'));
    const std::string name = key.substr(key.find('.') + 1);
    const size_t at = text.find("\n[" + section + "]\n");
    ASSERT_NE(at, std::string::npos) << section;
    const size_t next = text.find("\n[", at + 1);
    const std::string body = text.substr(at, next == std::string::npos ? next : next - at);
    EXPECT_NE(body.find("\n" + name + " = "), std::string::npos) << key << "\n" << text;
  }
  EXPECT_EQ(text.find("not printable"), std::string::npos) << text;
  EXPECT_NE(text.find("max = \"2d\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("listen = \"127.0.0.1:8443\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("passphrase_file = \"" + tmp_ / "pass" + "\"\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("correct horse"), std::string::npos) << text;
  // The printed configuration is itself a valid configuration with the same meaning.
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "again.toml", text, 0600));
  auto again = LoadConfig(tmp_ / "again.toml", [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(again) << again.error().detail();
  EXPECT_EQ(FormatEffectiveConfig(*again).substr(text.find('\n')), text.substr(text.find('\n')));
}

TEST(SecretKeysTest, Names) {
  EXPECT_TRUE(IsSecretConfigKey("identity.client_secret"));
  EXPECT_TRUE(IsSecretConfigKey("ca.passphrase"));
  EXPECT_FALSE(IsSecretConfigKey("ca.passphrase_file"));
  EXPECT_FALSE(IsSecretConfigKey("identity.device_token_lifetime"));
  for (const std::string& key : ConfigKeyNames()) EXPECT_FALSE(IsSecretConfigKey(key)) << key;
}

}  // namespace
}  // namespace e2eid::cli
