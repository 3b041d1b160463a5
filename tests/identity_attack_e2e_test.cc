// Hostile end-to-end cases against the real identity provider (issue 4's negative list and issue
// 5's admin API refusals): a fresh `e2eid serve` with the built-in device authority, the
// Keycloak-like OpenID provider of tests/idp/server.js, and an attacker that speaks the ACME and
// device authority protocol itself with the client library (cli/ e2eid_client). Every token is
// obtained by logging in through the provider's own pages (tests/idp/browser.py); none is minted
// out of band. Each attack must be refused with a problem document naming the failed check,
// leave the certificate, device and user rows alone, and (for ACME challenges) turn the challenge
// and its authorization invalid. Where it helps, a positive control shows that the same material
// is accepted where it belongs, so a refusal cannot come from a broken set-up.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include "cli/acme_client.h"
#include "cli/dpop.h"
#include "cli/enrol_identity.h"
#include "cli/enrol_util.h"
#include "cli/oidc_login.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/file.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/random.h"
#include "oidc/discovery.h"
#include "oidc/http_client.h"
#include "tests/test_util.h"

namespace e2eid::testing {
namespace {

using std::chrono::seconds;

constexpr const char* kDomain = "wire.example.com";

struct User {
  const char* login;
  const char* password;
  const char* sub;
  const char* name;
};
const User kAlice{"alice", "alice-password", "6c1f6a3e-8b1d-4c55-9b3e-a11ce0000001", "Alice Smith"};
const User kBob{"bob", "bob-password", "2b0b2b0b-7c2d-4f6e-8a1b-b0b000000002", "Bob Jones"};
const User kAdmin{"admin", "admin-password", "9ad31a1e-4e7f-4d2a-b6c3-ad3100000003", "Ada Admin"};

std::string Describe(const Error& e) { return e.ToString(); }

// The processes of one test: the IdP (with test control), e2eid, and on demand a second realm.
struct Suite {
  TempDir dir;
  std::unique_ptr<Process> idp;
  std::string issuer;
  std::unique_ptr<Process> other_idp;
  std::string other_issuer;
  std::unique_ptr<Process> server;
  std::string base;       // https://localhost:PORT
  std::string directory;  // the ACME directory URL
  std::string ok;         // empty when the set-up worked, else what failed

  void Start() {
    issuer = StartTestIdp(&idp, dir / "idp.log", "e2eid", /*test_control=*/true);
    if (issuer.empty()) {
      ok = "the identity provider did not start: " + idp->Log();
      return;
    }
    // A small leeway, so that a token of the shortened IdP lifetime expires within seconds.
    base = StartIdentityServer(dir, kDomain, issuer, "leeway = \"1s\"\nmax_devices_per_user = 5\n",
                               &server, &ok);
    if (base.empty()) return;
    directory = base + "/acme/directory";
  }

  // A second realm with its own keys: a foreign issuer (started on first use).
  const std::string& OtherIssuer() {
    if (other_idp) return other_issuer;
    other_issuer = StartTestIdp(&other_idp, dir / "other-idp.log", "other");
    return other_issuer;
  }
};

// An ACME account of the attacker: its key and a client signing with it.
struct Account {
  crypto::PrivateKey key;
  std::string thumbprint;
  std::unique_ptr<cli::AcmeClient> acme;
};

struct Challenge {
  std::string url;
  std::string token;
  std::string target;
};

// One order for a user's Wire identity (device + user identifiers).
struct Order {
  std::string url;
  cli::WireIdentity identity;
  std::string device_authz;
  std::string user_authz;
  Challenge dpop;  // wire-dpop-01 of the device
  Challenge oidc;  // wire-oidc-01 of the user
};

std::string StringOr(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return "";
  return obj[key].get<std::string>();
}

class IdentityAttackE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_ = new Suite();
    suite_->Start();
  }
  static void TearDownTestSuite() {
    delete suite_;
    suite_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(suite_->ok.empty()) << suite_->ok;
    oidc::HttpClientOptions options;
    options.ca_file = Root();
    http_ = oidc::MakeCurlHttpClient(options);
    ASSERT_NE(http_, nullptr);
  }

  static std::string Root() { return suite_->dir / "ca/root.pem"; }

  static std::string Sql(const std::string& query) {
    return RunCommand("sqlite3 " + ShellQuote(suite_->dir / "e2eid.db") + " " + ShellQuote(query))
        .output;
  }
  // "certificates,devices,users": what no refused attempt may change.
  static std::string Rows() {
    return Sql(
        "SELECT (SELECT count(*) FROM certificates) || ',' || (SELECT count(*) FROM devices) || "
        "',' || (SELECT count(*) FROM users);");
  }
  static int AdminLoginAudits() {
    return std::stoi(Sql("SELECT count(*) FROM audit_events WHERE action = 'admin.login';"));
  }
  static std::string LastAdminLoginReason() {
    return Sql(
        "SELECT details FROM audit_events WHERE action = 'admin.login' ORDER BY id DESC LIMIT 1;");
  }

  static int IdpControl(const std::string& path) {
    const std::string base = suite_->issuer.substr(0, suite_->issuer.find("/realms/"));
    return RunCommand("curl -sf -X POST " + ShellQuote(base + path)).exit_code;
  }

  // Sleeps until the JWT `token` has been expired for `margin` (its "exp" plus e2eid's leeway).
  static void WaitUntilExpired(const std::string& token, seconds margin = seconds(2)) {
    auto claims = cli::DecodeJwtClaims(token);
    ASSERT_TRUE(claims && claims->contains("exp")) << token;
    const auto exp = FromUnix((*claims)["exp"].get<int64_t>());
    ASSERT_LE(exp - SystemClock().Now(), seconds(10)) << "the IdP did not shorten the lifetime";
    while (SystemClock().Now() < exp + margin) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  // ---- the IdP: logins through its pages ----

  // Logs `user` in at `issuer` (default: the suite's) as `client_id` with the authorization code
  // flow; the tokens are DPoP-bound to `key`; `claims` is the OIDC claims request parameter.
  // browser.py plays the person at the browser.
  Result<cli::TokenSet> Login(const User& user, const crypto::PrivateKey& key,
                              std::optional<Json> claims = std::nullopt,
                              const std::string& issuer = "",
                              const std::string& client_id = "e2eid-device") {
    E2EID_TRY(discovery, oidc::FetchDiscovery(*http_, issuer.empty() ? suite_->issuer : issuer));
    cli::OidcLogin login(*http_, std::move(discovery), client_id, key, clock_, rng_,
                         cli::RealSleeper());
    std::unique_ptr<Process> browser;
    const std::string log = suite_->dir / ("browser-" + std::to_string(++logins_) + ".log");
    cli::LoginOptions options;
    options.timeout = seconds(60);
    options.claims = std::move(claims);
    options.print = [&](const std::string& line) {
      const std::string prefix = "Open this URL to log in: ";
      if (!line.starts_with(prefix) || browser) return;
      browser = std::make_unique<Process>(
          std::vector<std::string>{"/usr/bin/env", "python3", Src("tests/idp/browser.py"), "login",
                                   "--url", line.substr(prefix.size()), "--user", user.login,
                                   "--password", user.password},
          log);
    };
    auto tokens = login.LoginWithBrowser(options);
    if (browser && browser->SignalAndWait(0) != 0) {
      return Fail(Error::Unauthorized("browser.py failed: " + browser->Log()));
    }
    return tokens;
  }

  // The ID token of a login with Wire's claims request: "keyauth" and "acme_aud" as given.
  Result<std::string> BoundIdToken(const User& user, const crypto::PrivateKey& key,
                                   const std::string& keyauth, const std::string& acme_aud) {
    Json claims = {{"id_token",
                    {{"keyauth", {{"essential", true}, {"value", keyauth}}},
                     {"acme_aud", {{"essential", true}, {"value", acme_aud}}}}}};
    E2EID_TRY(tokens, Login(user, key, std::move(claims)));
    return tokens.id_token;
  }

  // ---- ACME ----

  std::unique_ptr<Account> NewAccount() {
    auto account = std::make_unique<Account>(
        Account{*crypto::PrivateKey::Generate(crypto::KeyType::kP256), "", nullptr});
    auto pub = account->key.public_key();
    EXPECT_TRUE(pub);
    account->thumbprint = *crypto::JwkThumbprint(*pub);
    cli::AcmeClientOptions options;
    options.directory_url = suite_->directory;
    account->acme = std::make_unique<cli::AcmeClient>(*http_, account->key, clock_,
                                                      cli::RealSleeper(), options);
    auto loaded = account->acme->LoadDirectory();
    EXPECT_TRUE(loaded) << Describe(loaded.error());
    auto url = account->acme->NewAccount();
    EXPECT_TRUE(url) << Describe(url.error());
    return account;
  }

  // `user`'s Wire identity (from the IdP's fixed users) on a new device, or on `device_id`.
  cli::WireIdentity IdentityOf(const User& user, const std::string& device_id = "") {
    const Json claims = {
        {"sub", user.sub}, {"name", user.name}, {"preferred_username", user.login}};
    auto id = cli::IdentityFromClaims(claims, kDomain,
                                      device_id.empty() ? *cli::NewDeviceId(rng_) : device_id);
    EXPECT_TRUE(id) << Describe(id.error());
    return *id;
  }

  // newOrder for `identity` and the two challenges of its authorizations.
  Order NewOrder(Account& account, const cli::WireIdentity& identity) {
    Order order;
    order.identity = identity;
    auto created = account.acme->NewOrder(
        cli::NewOrderPayload(identity, std::nullopt, std::nullopt), &order.url);
    EXPECT_TRUE(created) << Describe(created.error());
    if (!created) return order;
    for (const Json& url : (*created)["authorizations"]) {
      auto authz = account.acme->PostAsGet(url.get<std::string>());
      EXPECT_TRUE(authz) << Describe(authz.error());
      if (!authz) continue;
      const std::string type = StringOr(authz->json["identifier"], "type");
      for (const Json& c : authz->json["challenges"]) {
        Challenge ch{StringOr(c, "url"), StringOr(c, "token"), StringOr(c, "target")};
        if (type == "wireapp-device" && StringOr(c, "type") == "wire-dpop-01") {
          order.device_authz = url.get<std::string>();
          order.dpop = ch;
        } else if (type == "wireapp-user" && StringOr(c, "type") == "wire-oidc-01") {
          order.user_authz = url.get<std::string>();
          order.oidc = ch;
        }
      }
    }
    EXPECT_FALSE(order.dpop.url.empty());
    EXPECT_FALSE(order.oidc.url.empty());
    return order;
  }

  // The "status" of an ACME resource (POST-as-GET).
  static std::string StatusOf(Account& account, const std::string& url) {
    auto r = account.acme->PostAsGet(url);
    return r ? StringOr(r->json, "status") : "error: " + r.error().ToString();
  }

  // Expects that `answer` was refused with problem `code` whose detail contains `check`, and that
  // the challenge, its authorization and the order are invalid.
  static void ExpectRefused(const Result<cli::AcmeResponse>& answer, Account& account,
                            const Order& order, const std::string& challenge_url,
                            const std::string& authz_url, const std::string& check,
                            ErrorCode code = ErrorCode::kUnauthorized) {
    ASSERT_FALSE(answer) << answer->body;
    EXPECT_EQ(answer.error().code(), code) << answer.error().ToString();
    EXPECT_NE(answer.error().detail().find(check), std::string::npos)
        << "the problem does not name the failed check '" << check
        << "': " << answer.error().detail();
    EXPECT_EQ(StatusOf(account, challenge_url), "invalid");
    EXPECT_EQ(StatusOf(account, authz_url), "invalid");
    EXPECT_EQ(StatusOf(account, order.url), "invalid");
  }

  // ---- the device authority ----

  Result<std::string> DaNonce(const std::string& target) {
    const std::string url = target.substr(0, target.rfind("/access-token")) + "/nonce";
    E2EID_TRY(r, http_->Send({.method = "GET", .url = url}));
    if (r.status != 200)
      return Fail(Error::Unauthorized("nonce: HTTP " + std::to_string(r.status)));
    return r.Header("Replay-Nonce").value_or("");
  }

  // A Wire device proof signed by `key` for `order`'s device challenge, presenting
  // `access_token`; `identity` overrides the order's (e.g. another user's client-id).
  Result<std::string> DeviceProof(const crypto::PrivateKey& key, const Order& order,
                                  const std::string& access_token,
                                  const cli::WireIdentity* identity = nullptr) {
    const cli::WireIdentity& id = identity ? *identity : order.identity;
    E2EID_TRY(nonce, DaNonce(order.dpop.target));
    cli::WireDeviceProofClaims claims;
    claims.client_id_uri = id.ClientIdUri();
    claims.challenge_url = order.dpop.url;
    claims.nonce = nonce;
    claims.target = order.dpop.target;
    claims.challenge_token = order.dpop.token;
    claims.handle_uri = id.HandleUri();
    claims.display_name = id.display_name;
    claims.access_token = access_token;
    return cli::MakeWireDeviceProof(key, claims, clock_.Now(), rng_);
  }

  // POST {target} with the user's (DPoP-bound) IdP access token and a proof.
  Result<oidc::FetchResponse> DaAccessToken(const std::string& target,
                                            const std::string& access_token,
                                            const std::string& proof) {
    oidc::FetchRequest request{.method = "POST", .url = target};
    request.headers = {
        {"DPoP", proof}, {"Authorization", "DPoP " + access_token}, {"Accept", "application/json"}};
    return http_->Send(request);
  }

  // Expects a device authority refusal: HTTP `status`, a problem document naming `check`.
  static void ExpectDaRefused(const Result<oidc::FetchResponse>& r, int status,
                              const std::string& check) {
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->Header("Content-Type").value_or(""), "application/problem+json");
    EXPECT_NE(r->body.find(check), std::string::npos)
        << "the problem does not name the failed check '" << check << "': " << r->body;
  }

  static std::string DaToken(const Result<oidc::FetchResponse>& r) {
    if (!r || r->status != 200) {
      ADD_FAILURE() << (r ? r->body : r.error().ToString());
      return "";
    }
    auto json = ParseJson(r->body, "device authority answer");
    return json ? StringOr(*json, "token") : "";
  }

  // ---- the admin CLI ----

  // `e2eid admin login` as `user` at `issuer` through the IdP's pages; the token file's path.
  static std::string AdminLogin(const User& user, const std::string& issuer,
                                const std::string& name) {
    const std::string out = suite_->dir / (name + ".token");
    Process p({E2EID_BINARY, "admin", "login", "--issuer", issuer, "--client-id", "e2eid-admin-cli",
               "--login", "browser", "--login-timeout", "60", "--out", out},
              out + ".log");
    const std::string url = WaitForLine(p, "Open this URL to log in: ");
    EXPECT_FALSE(url.empty()) << p.Log();
    if (url.empty()) return out;
    auto browser = RunCommand("python3 " + ShellQuote(Src("tests/idp/browser.py")) +
                              " login --url " + ShellQuote(url) + " --user " + user.login +
                              " --password " + ShellQuote(user.password));
    EXPECT_EQ(browser.exit_code, 0) << browser.output;
    EXPECT_EQ(p.SignalAndWait(0), 0) << p.Log();
    return out;
  }

  static CommandResult Admin(const std::string& token_file, const std::string& args) {
    return RunCommand(std::string(E2EID_BINARY) + " admin --server " + suite_->base +
                      " --ca-file " + ShellQuote(Root()) + " --token-file " +
                      ShellQuote(token_file) + " " + args);
  }

  // curl GET {base}{path} with extra headers; "<status>\n<body>".
  static std::string Curl(const std::string& path, const std::vector<std::string>& headers) {
    std::string cmd = "curl -s -w '\\n%{http_code}' --cacert " + ShellQuote(Root());
    for (const auto& h : headers) cmd += " -H " + ShellQuote(h);
    return RunCommand(cmd + " " + ShellQuote(suite_->base + path)).output;
  }

  static Suite* suite_;
  std::unique_ptr<oidc::HttpClient> http_;
  SystemClock clock_;
  crypto::SecureRandom rng_;
  int logins_ = 0;
};

Suite* IdentityAttackE2eTest::suite_ = nullptr;

// 1. Bob's valid token, correctly bound to the account, on an order for Alice's identifiers.
TEST_F(IdentityAttackE2eTest, IdTokenOfAnotherUserIsRefused) {
  auto mallory = NewAccount();
  const std::string rows = Rows();
  // Bob's DPoP-bound access token (cnf.jkt = the account key), the silent-renewal form.
  auto bob = Login(kBob, mallory->key);
  ASSERT_TRUE(bob) << Describe(bob.error());
  Order order = NewOrder(*mallory, IdentityOf(kAlice));
  ExpectRefused(mallory->acme->Post(order.oidc.url, Json{{"access_token", bob->access_token}}),
                *mallory, order, order.oidc.url, order.user_authz,
                "claim \"name\" ('Bob Jones') is not the identifier's name ('Alice Smith')");
  // Bob's ID token with Wire's binding (keyauth and acme_aud of exactly this challenge).
  Order second = NewOrder(*mallory, IdentityOf(kAlice));
  auto id_token = BoundIdToken(kBob, mallory->key, second.oidc.token + "." + mallory->thumbprint,
                               second.oidc.url);
  ASSERT_TRUE(id_token) << Describe(id_token.error());
  ExpectRefused(mallory->acme->Post(second.oidc.url, Json{{"id_token", *id_token}}), *mallory,
                second, second.oidc.url, second.user_authz,
                "id token: claim \"name\" ('Bob Jones') is not the identifier's name");
  EXPECT_EQ(Rows(), rows);
  // Positive control: the same kind of token for Bob's own identifiers passes.
  Order own = NewOrder(*mallory, IdentityOf(kBob));
  auto ok = mallory->acme->Post(own.oidc.url, Json{{"access_token", bob->access_token}});
  ASSERT_TRUE(ok) << Describe(ok.error());
  EXPECT_EQ(StatusOf(*mallory, own.oidc.url), "valid");
}

// 2. Expired ID and access tokens (the IdP issues 2-second tokens for one login; e2eid's leeway
// is 1 s), at the device authority and on wire-oidc-01.
TEST_F(IdentityAttackE2eTest, ExpiredTokensAreRefused) {
  auto account = NewAccount();
  Order order = NewOrder(*account, IdentityOf(kAlice));
  Order second = NewOrder(*account, IdentityOf(kAlice));
  const std::string rows = Rows();
  ASSERT_EQ(IdpControl("/test/ttl?seconds=2"), 0);
  auto tokens =
      Login(kAlice, account->key,
            Json{{"id_token",
                  {{"keyauth",
                    {{"essential", true}, {"value", order.oidc.token + "." + account->thumbprint}}},
                   {"acme_aud", {{"essential", true}, {"value", order.oidc.url}}}}}});
  ASSERT_EQ(IdpControl("/test/ttl"), 0);  // back to the default lifetime
  ASSERT_TRUE(tokens) << Describe(tokens.error());
  WaitUntilExpired(tokens->access_token);
  WaitUntilExpired(tokens->id_token);

  // The device authority refuses the expired IdP access token.
  auto proof = DeviceProof(account->key, order, tokens->access_token);
  ASSERT_TRUE(proof) << Describe(proof.error());
  ExpectDaRefused(DaAccessToken(order.dpop.target, tokens->access_token, *proof), 401,
                  "claim \\\"exp\\\": the token expired");
  // wire-oidc-01 refuses the expired ID token (otherwise bound exactly to this challenge)...
  ExpectRefused(account->acme->Post(order.oidc.url, Json{{"id_token", tokens->id_token}}), *account,
                order, order.oidc.url, order.user_authz, "claim \"exp\": the token expired");
  // ...and the expired access token (bound to the account key).
  ExpectRefused(account->acme->Post(second.oidc.url, Json{{"access_token", tokens->access_token}}),
                *account, second, second.oidc.url, second.user_authz,
                "claim \"exp\": the token expired");
  EXPECT_EQ(Rows(), rows);
}

// 3. keyauth for another account key: a token bound to account A, submitted by account B on B's
// challenge.
TEST_F(IdentityAttackE2eTest, KeyauthForAnotherAccountKeyIsRefused) {
  auto a = NewAccount();
  auto b = NewAccount();
  const std::string rows = Rows();
  Order order = NewOrder(*b, IdentityOf(kAlice));
  // Wire's claims: keyauth names B's challenge token but A's key thumbprint; acme_aud is right.
  auto id_token =
      BoundIdToken(kAlice, a->key, order.oidc.token + "." + a->thumbprint, order.oidc.url);
  ASSERT_TRUE(id_token) << Describe(id_token.error());
  ExpectRefused(b->acme->Post(order.oidc.url, Json{{"id_token", *id_token}}), *b, order,
                order.oidc.url, order.user_authz,
                "claim \"keyauth\" does not match this challenge's token and the ACME account key");
  // The access token form: DPoP-bound to A's key (cnf.jkt), posted by B.
  auto tokens = Login(kAlice, a->key);
  ASSERT_TRUE(tokens) << Describe(tokens.error());
  Order second = NewOrder(*b, IdentityOf(kAlice));
  ExpectRefused(b->acme->Post(second.oidc.url, Json{{"access_token", tokens->access_token}}), *b,
                second, second.oidc.url, second.user_authz,
                "claim \"cnf.jkt\" is not the thumbprint of the ACME account key");
  EXPECT_EQ(Rows(), rows);
  // Positive control: account A itself may use its token.
  Order own = NewOrder(*a, IdentityOf(kAlice));
  auto ok = a->acme->Post(own.oidc.url, Json{{"access_token", tokens->access_token}});
  EXPECT_TRUE(ok) << Describe(ok.error());
}

// 4. acme_aud of another challenge: same account, a token for challenge X submitted to Y.
TEST_F(IdentityAttackE2eTest, AcmeAudOfAnotherChallengeIsRefused) {
  auto account = NewAccount();
  const std::string rows = Rows();
  Order x = NewOrder(*account, IdentityOf(kAlice));
  Order y = NewOrder(*account, IdentityOf(kAlice));
  Order z = NewOrder(*account, IdentityOf(kAlice));
  // keyauth of Y (right) but acme_aud of X: only the audience check can refuse it.
  auto aud_of_x =
      BoundIdToken(kAlice, account->key, y.oidc.token + "." + account->thumbprint, x.oidc.url);
  ASSERT_TRUE(aud_of_x) << Describe(aud_of_x.error());
  ExpectRefused(account->acme->Post(y.oidc.url, Json{{"id_token", *aud_of_x}}), *account, y,
                y.oidc.url, y.user_authz, "claim \"acme_aud\" is not this challenge's URL");
  // A genuine token for X (keyauth and acme_aud of X) replayed on Z.
  auto for_x =
      BoundIdToken(kAlice, account->key, x.oidc.token + "." + account->thumbprint, x.oidc.url);
  ASSERT_TRUE(for_x) << Describe(for_x.error());
  ExpectRefused(account->acme->Post(z.oidc.url, Json{{"id_token", *for_x}}), *account, z,
                z.oidc.url, z.user_authz,
                "claim \"keyauth\" does not match this challenge's token");
  EXPECT_EQ(Rows(), rows);
  // Positive control: on X it is accepted.
  auto ok = account->acme->Post(x.oidc.url, Json{{"id_token", *for_x}});
  ASSERT_TRUE(ok) << Describe(ok.error());
  EXPECT_EQ(StatusOf(*account, x.oidc.url), "valid");
}

// 5. A replayed DPoP proof at the device authority, and the device authority's access token
// replayed on another order's wire-dpop-01 challenge.
TEST_F(IdentityAttackE2eTest, ReplayedDpopProofAndAccessTokenAreRefused) {
  auto account = NewAccount();
  auto tokens = Login(kAlice, account->key);
  ASSERT_TRUE(tokens) << Describe(tokens.error());
  Order first = NewOrder(*account, IdentityOf(kAlice));
  auto proof = DeviceProof(account->key, first, tokens->access_token);
  ASSERT_TRUE(proof) << Describe(proof.error());
  const std::string da_token =
      DaToken(DaAccessToken(first.dpop.target, tokens->access_token, *proof));
  ASSERT_FALSE(da_token.empty());
  const std::string rows = Rows();  // the device is registered now
  // The same proof again: its nonce is spent.
  ExpectDaRefused(DaAccessToken(first.dpop.target, tokens->access_token, *proof), 400,
                  "already used (replayed proof)");
  // The device authority's token answers the challenge it was issued for...
  auto ok = account->acme->Post(first.dpop.url, Json{{"access_token", da_token}});
  ASSERT_TRUE(ok) << Describe(ok.error());
  EXPECT_EQ(StatusOf(*account, first.dpop.url), "valid");
  // ...and no other: another order of the same account and device.
  Order second = NewOrder(*account, first.identity);
  ASSERT_EQ(second.dpop.target, first.dpop.target);
  ExpectRefused(account->acme->Post(second.dpop.url, Json{{"access_token", da_token}}), *account,
                second, second.dpop.url, second.device_authz,
                "device access token: claim \"aud\" is not this challenge's URL");
  EXPECT_EQ(Rows(), rows);
}

// 6. The DPoP proof signed by another key than the ACME account key.
TEST_F(IdentityAttackE2eTest, DpopProofSignedByAnotherKeyIsRefused) {
  auto account = NewAccount();
  auto other = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
  ASSERT_TRUE(other);
  auto tokens = Login(kAlice, account->key);
  ASSERT_TRUE(tokens) << Describe(tokens.error());
  // The device is registered with the account key first (a legitimate token, not used).
  Order order = NewOrder(*account, IdentityOf(kAlice));
  auto good = DeviceProof(account->key, order, tokens->access_token);
  ASSERT_TRUE(good) << Describe(good.error());
  ASSERT_FALSE(DaToken(DaAccessToken(order.dpop.target, tokens->access_token, *good)).empty());
  const std::string rows = Rows();

  // (a) A proof that names the account key in its "jwk" but is signed by another key.
  auto fresh = DeviceProof(account->key, order, tokens->access_token);
  ASSERT_TRUE(fresh);
  auto parsed = crypto::ParseCompactJws(*fresh);
  ASSERT_TRUE(parsed);
  auto forged = crypto::SignCompactJws(*other, crypto::JwsAlg::kES256, parsed->header,
                                       AsString(parsed->payload));
  ASSERT_TRUE(forged);
  ExpectDaRefused(DaAccessToken(order.dpop.target, tokens->access_token, *forged), 401,
                  "DPoP proof: the signature does not verify");

  // (b) Everything made with the other key (its own bound IdP token, its proof, a device
  // authority token for this device), submitted by the account on its challenge.
  auto other_tokens = Login(kAlice, *other);
  ASSERT_TRUE(other_tokens) << Describe(other_tokens.error());
  auto other_proof = DeviceProof(*other, order, other_tokens->access_token);
  ASSERT_TRUE(other_proof);
  const std::string foreign =
      DaToken(DaAccessToken(order.dpop.target, other_tokens->access_token, *other_proof));
  ASSERT_FALSE(foreign.empty());
  ExpectRefused(account->acme->Post(order.dpop.url, Json{{"access_token", foreign}}), *account,
                order, order.dpop.url, order.device_authz,
                "device access token: claim \"cnf.kid\" is not the thumbprint of the ACME account "
                "key");
  EXPECT_EQ(Rows(), rows);
  EXPECT_EQ(Sql("SELECT count(*) FROM certificates;"), "0\n");
}

// 7. Alice's IdP token asking for an access token for Bob's client-id.
TEST_F(IdentityAttackE2eTest, DeviceOfAnotherUserIsRefused) {
  auto account = NewAccount();
  auto tokens = Login(kAlice, account->key);
  ASSERT_TRUE(tokens) << Describe(tokens.error());
  const std::string rows = Rows();
  // The order is for Bob's device (the device authority URL names his device id).
  const cli::WireIdentity bob = IdentityOf(kBob);
  Order order = NewOrder(*account, bob);
  auto proof = DeviceProof(account->key, order, tokens->access_token, &bob);
  ASSERT_TRUE(proof);
  ExpectDaRefused(DaAccessToken(order.dpop.target, tokens->access_token, *proof), 403,
                  "DPoP proof: claim \\\"sub\\\" names another user's device");
  // The same with Alice's handle and name in the proof: the user id still gives it away.
  cli::WireIdentity mixed = bob;
  mixed.handle = "alice";
  mixed.display_name = kAlice.name;
  auto mixed_proof = DeviceProof(account->key, order, tokens->access_token, &mixed);
  ASSERT_TRUE(mixed_proof);
  ExpectDaRefused(DaAccessToken(order.dpop.target, tokens->access_token, *mixed_proof), 403,
                  "names another user's device");
  EXPECT_EQ(Rows(), rows);
  EXPECT_EQ(Sql("SELECT count(*) FROM audit_events WHERE action = 'enrolment.refuse' AND target "
                "= '" +
                bob.ClientIdUri() + "';"),
            "2\n");
}

// Issue 5: the admin API answers 401 to an expired admin token, to a real token of another
// issuer and to a DPoP-bound token presented as a plain Bearer token; each attempt is audited.
TEST_F(IdentityAttackE2eTest, AdminApiRefusesExpiredForeignAndUnprovenBoundTokens) {
  const std::string revoked = Sql("SELECT count(*) FROM certificates WHERE status = 'revoked';");
  // A fresh admin token works through the CLI (which proves possession of its DPoP key).
  const std::string good = AdminLogin(kAdmin, suite_->issuer, "admin");
  int audits = AdminLoginAudits();
  auto devices = Admin(good, "devices --json");
  EXPECT_EQ(devices.exit_code, 0) << devices.output;
  EXPECT_EQ(AdminLoginAudits(), audits);

  // The same token presented as a plain Bearer token (no proof of possession): 401.
  auto token = ReadFile(good);
  ASSERT_TRUE(token);
  const std::string bearer = token->substr(0, token->find('\n'));
  ASSERT_TRUE(cli::AccessTokenJkt(bearer).has_value()) << "admin login should give a bound token";
  std::string reply = Curl("/admin/v1/devices", {"Authorization: Bearer " + bearer});
  EXPECT_TRUE(reply.ends_with("\n401")) << reply;
  EXPECT_NE(reply.find("DPoP-bound"), std::string::npos) << reply;
  EXPECT_EQ(AdminLoginAudits(), ++audits);
  EXPECT_NE(LastAdminLoginReason().find("DPoP-bound"), std::string::npos);
  // The DPoP scheme without a proof: 401.
  reply = Curl("/admin/v1/devices", {"Authorization: DPoP " + bearer});
  EXPECT_TRUE(reply.ends_with("\n401")) << reply;
  EXPECT_NE(reply.find("DPoP proof"), std::string::npos) << reply;
  EXPECT_EQ(AdminLoginAudits(), ++audits);

  // A real admin token of another realm (another issuer, its own keys): 401.
  ASSERT_FALSE(suite_->OtherIssuer().empty()) << suite_->other_idp->Log();
  const std::string foreign = AdminLogin(kAdmin, suite_->OtherIssuer(), "admin-other-realm");
  auto refused = Admin(foreign, "devices --json");
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("invalid access token"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("is not in the JWKS of " + suite_->issuer), std::string::npos)
      << refused.output;
  EXPECT_EQ(AdminLoginAudits(), ++audits);

  // An expired admin token (2-second tokens for this login; leeway 1 s): 401.
  ASSERT_EQ(IdpControl("/test/ttl?seconds=2"), 0);
  const std::string short_lived = AdminLogin(kAdmin, suite_->issuer, "admin-short");
  ASSERT_EQ(IdpControl("/test/ttl"), 0);
  auto short_token = ReadFile(short_lived);
  ASSERT_TRUE(short_token);
  WaitUntilExpired(short_token->substr(0, short_token->find('\n')));
  auto expired =
      Admin(short_lived, "revoke --scope before --value 2100-01-01T00:00:00Z --reason 0 --json");
  EXPECT_NE(expired.exit_code, 0) << expired.output;
  EXPECT_NE(expired.output.find("the token expired"), std::string::npos) << expired.output;
  EXPECT_EQ(AdminLoginAudits(), ++audits);
  EXPECT_NE(LastAdminLoginReason().find("expired"), std::string::npos) << LastAdminLoginReason();
  EXPECT_EQ(Sql("SELECT count(*) FROM audit_events WHERE action = 'admin.login' AND outcome = "
                "'denied' AND actor = 'anonymous';"),
            std::to_string(audits) + "\n");
  EXPECT_EQ(Sql("SELECT count(*) FROM certificates WHERE status = 'revoked';"), revoked);
}

}  // namespace
}  // namespace e2eid::testing
