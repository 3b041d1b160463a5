// `e2eid enrol` / `e2eid renew` flows against the REAL server side in process: the ACME engine
// with the Wire challenges, the built-in device authority and the HTTP router, reached through an
// HttpClient that hands each request to the router. Only the IdP is a double (token strings map
// to claims), as in acme/wire_flow_test.cc. The network end-to-end test lives in tests/.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <thread>

#include "acme/device_authority.h"
#include "acme/engine.h"
#include "acme/serial_registry.h"
#include "acme/wire_validators.h"
#include "ca/authority.h"
#include "ca/issuer.h"
#include "cli/enrol_flow.h"
#include "cli/enrol_test_util.h"
#include "core/file.h"
#include "core/log.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/random.h"
#include "server/acme_routes.h"
#include "server/problem.h"
#include "server/router.h"
#include "store/sqlite_store.h"
#include "tests/test_util.h"

namespace e2eid::cli {
namespace {

using testing::JsonResponse;
using testing::UnsignedJwt;

constexpr std::string_view kBase = "https://ca.test";
constexpr std::string_view kDomain = "wire.example.com";
constexpr std::string_view kIssuer = "https://idp.test/realms/wire";
constexpr std::string_view kClientId = "e2eid-device";
constexpr std::string_view kSub = "4a8fda1e-3e2d-4b5a-9c6e-7f1d2c3b4a59";

// The IdP double: registered token strings are "verified" with their claims.
class FakeVerifier final : public oidc::TokenVerifier {
 public:
  Result<Json> VerifyIdToken(std::string_view jwt, const oidc::VerifyOptions&) override {
    return Lookup(jwt);
  }
  Result<Json> VerifyAccessToken(std::string_view jwt, const oidc::VerifyOptions&) override {
    return Lookup(jwt);
  }
  const std::string& issuer() const override { return issuer_; }
  const std::string& client_id() const override { return client_; }
  void Register(const std::string& token, Json claims) {
    std::lock_guard lock(mu_);
    tokens_[token] = std::move(claims);
  }
  void DisableAll() {
    std::lock_guard lock(mu_);
    disabled_ = true;
  }
  bool disabled() {
    std::lock_guard lock(mu_);
    return disabled_;
  }
  int NextSerial() {
    std::lock_guard lock(mu_);
    return ++issued_;
  }

 private:
  Result<Json> Lookup(std::string_view jwt) {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(std::string(jwt));
    if (it == tokens_.end()) return Fail(Error::Unauthorized("token: signature does not verify"));
    return it->second;
  }
  std::mutex mu_;
  std::map<std::string, Json> tokens_;
  std::string issuer_ = std::string(kIssuer);
  std::string client_ = std::string(kClientId);
  bool disabled_ = false;
  int issued_ = 0;
};

// Authorization codes the scripted browser prepared: code -> ID token claims.
struct PreparedCodes {
  std::mutex mu;
  std::map<std::string, Json> id_token_claims;
};

// Routes https://ca.test/... to the router and https://idp.test/... to a tiny IdP.
class InProcessHttp final : public oidc::HttpClient {
 public:
  InProcessHttp(server::Router& router, FakeVerifier& verifier, const Clock& clock,
                PreparedCodes* codes = nullptr)
      : router_(router), verifier_(verifier), clock_(clock), codes_(codes) {}

  Result<oidc::FetchResponse> Send(const oidc::FetchRequest& r) override {
    if (r.url.starts_with(kBase)) {
      HttpRequest req;
      req.method = r.method;
      req.target = r.url.substr(kBase.size());
      const size_t q = req.target.find('?');
      req.path = req.target.substr(0, q);
      req.query = q == std::string::npos ? "" : req.target.substr(q + 1);
      req.headers = r.headers;
      req.body = r.body;
      req.remote_address = "127.0.0.1";
      req.request_id = "client-test";
      HttpResponse resp = router_.Handle(req);
      return oidc::FetchResponse{resp.status, resp.headers, resp.body};
    }
    if (r.url == std::string(kIssuer) + "/.well-known/openid-configuration") {
      const std::string p = std::string(kIssuer) + "/protocol/openid-connect";
      return JsonResponse(200, {{"issuer", kIssuer},
                                {"authorization_endpoint", p + "/auth"},
                                {"token_endpoint", p + "/token"},
                                {"jwks_uri", p + "/certs"}});
    }
    if (r.url == std::string(kIssuer) + "/protocol/openid-connect/token") return Token(r);
    return Fail(Error(ErrorCode::kConnection, "no route to " + r.url));
  }

  // A DPoP-bound access token for `jkt`, registered with the verifier.
  std::string IssueAccessToken(const std::string& jkt) {
    const Json claims = {{"iss", kIssuer},
                         {"sub", kSub},
                         {"azp", kClientId},
                         {"name", "Alice Smith"},
                         {"preferred_username", "alice_wire"},
                         {"iat", ToUnix(clock_.Now())},
                         {"jti", std::to_string(verifier_.NextSerial())},
                         {"cnf", {{"jkt", jkt}}}};
    const std::string token = UnsignedJwt(claims);
    verifier_.Register(token, claims);
    return token;
  }

 private:
  Result<oidc::FetchResponse> Token(const oidc::FetchRequest& r) {
    if (verifier_.disabled()) {
      return JsonResponse(400,
                          {{"error", "invalid_grant"}, {"error_description", "Account disabled"}});
    }
    auto jws = crypto::ParseCompactJws(FindHeader(r.headers, "DPoP").value_or(""));
    if (!jws) return JsonResponse(400, {{"error", "invalid_dpop_proof"}});
    auto key = crypto::PublicKeyFromJwk(jws->header["jwk"]);
    if (!key || !crypto::VerifyJws(*jws, *key)) {
      return JsonResponse(400, {{"error", "invalid_dpop_proof"}});
    }
    Json reply = {{"access_token", IssueAccessToken(*crypto::JwkThumbprint(*key))},
                  {"token_type", "DPoP"},
                  {"refresh_token", "rt-" + std::to_string(verifier_.NextSerial())}};
    auto form = ParseQuery(r.body);
    if (form && FindField(*form, "grant_type") == "authorization_code" && codes_ != nullptr) {
      std::lock_guard lock(codes_->mu);
      auto it = codes_->id_token_claims.find(FindField(*form, "code").value_or(""));
      if (it == codes_->id_token_claims.end())
        return JsonResponse(400, {{"error", "invalid_grant"}});
      const std::string id_token = UnsignedJwt(it->second);
      verifier_.Register(id_token, it->second);
      reply["id_token"] = id_token;
    }
    return JsonResponse(200, reply);
  }

  server::Router& router_;
  FakeVerifier& verifier_;
  const Clock& clock_;
  PreparedCodes* codes_;
};

// Sends one HTTP GET to 127.0.0.1:port (the client's loopback redirect listener).
void BrowserGet(uint16_t port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[1024];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
  }
  ::close(fd);
}

class EnrolEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kError);
    ca::InitOptions init;
    init.dir = tmp_ / "ca";
    init.domain = std::string(kDomain);
    ASSERT_TRUE(ca::InitCa(init, clock_, random_));
    auto authority = ca::CertificateAuthority::Load(ca::CaPaths::In(init.dir), std::nullopt);
    ASSERT_TRUE(authority) << authority.error().ToString();
    ca_ = std::make_unique<ca::CertificateAuthority>(std::move(*authority));
    auto opened = store::OpenSqliteStore({.path = tmp_ / "e2eid.db", .synchronous_full = false});
    ASSERT_TRUE(opened);
    store_ = std::move(*opened);
    serials_ = std::make_unique<acme::StoreSerialRegistry>(*store_, clock_);
    issuer_ = std::make_unique<ca::Issuer>(
        *ca_, ca::ValidityPolicy{},
        ca::IssuerUrls{
            .crl_url = std::string(kBase) + "/crl", .ocsp_url = "", .ca_issuers_url = ""},
        *serials_, clock_, random_);
    auto authority_key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
    ASSERT_TRUE(authority_key);
    authority_key_ = std::make_unique<crypto::PrivateKey>(std::move(*authority_key));
    authority_ = std::make_unique<acme::DeviceAuthority>(
        acme::DeviceAuthorityOptions{.base_url = std::string(kBase),
                                     .domain = std::string(kDomain)},
        acme::DeviceAuthority::Deps{.store = *store_,
                                    .verifier = verifier_,
                                    .signing_key = *authority_key_,
                                    .clock = clock_,
                                    .random = random_});
    oidc_ = std::make_unique<acme::WireOidcValidator>(
        verifier_, acme::WireOidcOptions{.domain = std::string(kDomain), .binding = Binding()});
    std::vector<crypto::PublicKey> keys;
    keys.push_back(*authority_key_->public_key());
    dpop_ = std::make_unique<acme::WireDpopValidator>(
        std::move(keys), acme::WireDpopOptions{.domain = std::string(kDomain)}, clock_);
    acme::EngineOptions options;
    options.base_url = std::string(kBase);
    options.wire = acme::EngineOptions::Wire{.domain = std::string(kDomain),
                                             .oidc_target = oidc_->Target(),
                                             .dpop_target_template = authority_->TargetTemplate()};
    engine_ = std::make_unique<acme::Engine>(
        options, acme::Engine::Deps{
                     .store = *store_,
                     .issuer = *issuer_,
                     .clock = clock_,
                     .random = random_,
                     .jobs = [](std::function<void()> job) -> Status {
                       job();
                       return Ok();
                     },
                     .validators = {{"wire-oidc-01", oidc_.get()}, {"wire-dpop-01", dpop_.get()}},
                     .render_problem = server::AcmeProblemDocument});
    ASSERT_TRUE(server::AddAcmeRoutes(router_, *engine_));
    ASSERT_TRUE(server::AddDeviceAuthorityRoutes(router_, *authority_));

    env_.make_http = [this](const std::string&) -> Result<std::unique_ptr<oidc::HttpClient>> {
      return std::unique_ptr<oidc::HttpClient>(
          std::make_unique<InProcessHttp>(router_, verifier_, clock_, &codes_));
    };
    env_.clock = &clock_;
    env_.rng = &random_;
    env_.sleep = [this](std::chrono::milliseconds d) {
      clock_.Advance(std::chrono::duration_cast<std::chrono::seconds>(d));
    };
    env_.print = [](const std::string&) {};
  }
  void TearDown() override {
    for (auto& t : browsers_) t.join();
    SetLogLevel(LogLevel::kInfo);
  }
  virtual acme::OidcBinding Binding() const { return acme::OidcBinding::kClaims; }

  // The user at the IdP: reads the printed authorization URL, "logs in" by preparing an ID token
  // that echoes the nonce and the claims request (as Keycloak's claims-parameter mappers do), and
  // is redirected to the client's loopback listener.
  void ScriptTheBrowser() {
    env_.print = [this](const std::string& line) {
      const std::string prefix = "Open this URL to log in: ";
      if (line.rfind(prefix, 0) != 0) return;
      const std::string url = line.substr(prefix.size());
      auto q = ParseQuery(url.substr(url.find('?') + 1));
      ASSERT_TRUE(q);
      Json claims = {{"iss", kIssuer},
                     {"aud", kClientId},
                     {"sub", kSub},
                     {"name", "Alice Smith"},
                     {"preferred_username", "alice_wire"},
                     {"iat", ToUnix(clock_.Now())},
                     {"exp", ToUnix(clock_.Now()) + 300},
                     {"nonce", FindField(*q, "nonce").value_or("")}};
      if (auto request = FindField(*q, "claims")) {
        auto parsed = ParseJson(*request);
        ASSERT_TRUE(parsed);
        for (const auto& [name, spec] : (*parsed)["id_token"].items()) claims[name] = spec["value"];
      }
      const std::string code = "code-" + std::to_string(++logins_);
      {
        std::lock_guard lock(codes_.mu);
        codes_.id_token_claims[code] = claims;
      }
      const std::string redirect = FindField(*q, "redirect_uri").value_or("");
      const auto port = static_cast<uint16_t>(
          std::stoi(redirect.substr(std::string("http://127.0.0.1:").size())));
      const std::string state = FindField(*q, "state").value_or("");
      browsers_.emplace_back(
          [port, code, state] { BrowserGet(port, "/callback?code=" + code + "&state=" + state); });
    };
  }

  EnrolSettings BrowserSettings(OidcMode mode) {
    EnrolSettings s;
    s.state_dir = state_dir_;
    s.directory_url = std::string(kBase) + "/acme/directory";
    s.issuer = std::string(kIssuer);
    s.client_id = std::string(kClientId);
    s.domain = std::string(kDomain);
    s.login = LoginMode::kBrowser;
    s.oidc_mode = mode;
    s.login_timeout = std::chrono::seconds(30);
    return s;
  }

  // Enrols with --access-token (automation): the client key is made first so that the token can
  // be bound to it, as an IdP would bind it during a DPoP login.
  Result<EnrolResult> Enrol(crypto::KeyType type) {
    StateDir dir(state_dir_);
    E2EID_CHECK_OK(dir.Prepare());
    E2EID_TRY(key, crypto::PrivateKey::Generate(type));
    E2EID_CHECK_OK(dir.SaveKey(dir.client_key_path(), key));
    E2EID_TRY(pub, key.public_key());
    E2EID_TRY(jkt, crypto::JwkThumbprint(pub));
    InProcessHttp idp(router_, verifier_, clock_);
    E2EID_CHECK_OK(WriteFileAtomic(tmp_ / "at", idp.IssueAccessToken(jkt), 0600));
    E2EID_CHECK_OK(dir.SaveRefreshToken("rt-0"));
    EnrolSettings s;
    s.state_dir = state_dir_;
    s.directory_url = std::string(kBase) + "/acme/directory";
    s.issuer = std::string(kIssuer);
    s.client_id = std::string(kClientId);
    s.domain = std::string(kDomain);
    s.key_type = type;
    s.login = LoginMode::kTokenFiles;
    s.access_token_file = tmp_ / "at";
    return EnrolDevice(s, env_);
  }

  e2eid::testing::TempDir tmp_;
  const std::string state_dir_ = tmp_ / "state";
  FakeClock clock_{FromUnix(1'900'000'000)};
  crypto::SecureRandom random_;
  FakeVerifier verifier_;
  std::unique_ptr<ca::CertificateAuthority> ca_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<acme::StoreSerialRegistry> serials_;
  std::unique_ptr<ca::Issuer> issuer_;
  std::unique_ptr<crypto::PrivateKey> authority_key_;
  std::unique_ptr<acme::DeviceAuthority> authority_;
  std::unique_ptr<acme::WireOidcValidator> oidc_;
  std::unique_ptr<acme::WireDpopValidator> dpop_;
  std::unique_ptr<acme::Engine> engine_;
  server::Router router_;
  FlowEnvironment env_;
  PreparedCodes codes_;
  int logins_ = 0;
  std::vector<std::thread> browsers_;
};

class EnrolEngineKeyTest : public EnrolEngineTest,
                           public ::testing::WithParamInterface<crypto::KeyType> {};

TEST_P(EnrolEngineKeyTest, EnrolAgainstTheRealServer) {
  auto r = Enrol(GetParam());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->state.handle, "alice_wire");
  EXPECT_FALSE(r->certificate.ari_cert_id.empty());
  auto chain = ParsePemChain(r->certificate.chain_pem);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->size(), 3u);  // leaf, intermediate, root
  auto device_key = StateDir(state_dir_).LoadKey(StateDir(state_dir_).device_key_path());
  ASSERT_TRUE(device_key && device_key->has_value());
  EXPECT_EQ((*device_key)->type(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, EnrolEngineKeyTest,
                         ::testing::Values(crypto::KeyType::kP256, crypto::KeyType::kP384,
                                           crypto::KeyType::kP521, crypto::KeyType::kEd25519),
                         [](const auto& info) {
                           return std::string(crypto::KeyTypeName(info.param));
                         });

TEST_F(EnrolEngineTest, RenewAgainstTheRealServer) {
  auto enrolled = Enrol(crypto::KeyType::kP256);
  ASSERT_TRUE(enrolled) << enrolled.error().ToString();
  // Fresh certificate: the server's ARI window has not started, two thirds have not passed.
  auto early = RenewDevice(RenewSettings{.state_dir = state_dir_}, env_);
  ASSERT_TRUE(early) << early.error().ToString();
  EXPECT_EQ(early->status, RenewOutcome::Status::kNotDue);

  const auto lifetime = enrolled->certificate.not_after - enrolled->certificate.not_before;
  clock_.Advance(std::chrono::duration_cast<std::chrono::seconds>(lifetime * 2 / 3) +
                 std::chrono::seconds(1));
  auto renewed = RenewDevice(RenewSettings{.state_dir = state_dir_}, env_);
  ASSERT_TRUE(renewed) << renewed.error().ToString();
  ASSERT_EQ(renewed->status, RenewOutcome::Status::kRenewed);
  EXPECT_NE(renewed->result->certificate.serial_hex, enrolled->certificate.serial_hex);
  EXPECT_EQ(renewed->result->state.device_id, enrolled->state.device_id);
  EXPECT_EQ(**StateDir(state_dir_).LoadRefreshToken(), "rt-3");  // rotated and saved

  // The user is disabled in the IdP: the silent renewal stops with a clear message.
  verifier_.DisableAll();
  auto refused = RenewDevice(RenewSettings{.state_dir = state_dir_, .force = true}, env_);
  ASSERT_TRUE(refused) << refused.error().ToString();
  EXPECT_EQ(refused->status, RenewOutcome::Status::kRefreshRefused);
  EXPECT_NE(refused->message.find("invalid_grant: Account disabled"), std::string::npos);
}

TEST_F(EnrolEngineTest, BrowserLoginWithTheClaimsRequest) {
  ScriptTheBrowser();
  auto r = EnrolDevice(BrowserSettings(OidcMode::kClaims), env_);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(logins_, 2);  // the login, then the one whose ID token carries keyauth/acme_aud
  auto refresh = StateDir(state_dir_).LoadRefreshToken();
  ASSERT_TRUE(refresh && refresh->has_value());  // kept for silent renewal
}

TEST_F(EnrolEngineTest, BrowserLoginInDpopModeNeedsOneLogin) {
  ScriptTheBrowser();
  auto r = EnrolDevice(BrowserSettings(OidcMode::kDpop), env_);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(logins_, 1);
}

TEST_F(EnrolEngineTest, TheServerRefusesTheWrongBinding) {
  // The server expects the claims request; a nonce-bound ID token is refused, and the client
  // reports the server's reason.
  ScriptTheBrowser();
  auto r = EnrolDevice(BrowserSettings(OidcMode::kNonce), env_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().detail().find("keyauth"), std::string::npos) << r.error().detail();
  EXPECT_FALSE(PathExists(StateDir(state_dir_).cert_path()));
}

class EnrolEngineNonceTest : public EnrolEngineTest {
 protected:
  acme::OidcBinding Binding() const override { return acme::OidcBinding::kNonce; }
};

TEST_F(EnrolEngineNonceTest, BrowserLoginWithTheNonceBinding) {
  ScriptTheBrowser();
  auto r = EnrolDevice(BrowserSettings(OidcMode::kNonce), env_);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(logins_, 2);
}

}  // namespace
}  // namespace e2eid::cli
