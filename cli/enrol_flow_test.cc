// The enrolment flows against a scripted world: a fake ACME server with the Wire challenges, a
// fake device authority and a fake IdP token endpoint, all behind one FakeHttpClient. The fakes
// verify every signature and claim the real peers check, so the client's messages are exercised
// end to end without network peers.
#include "cli/enrol_flow.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <map>
#include <set>

#include "cli/dpop.h"
#include "cli/enrol_test_util.h"
#include "core/file.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/random.h"
#include "tests/test_util.h"

namespace e2eid::cli {
namespace {

using testing::JsonResponse;
using testing::UnsignedJwt;

constexpr char kBase[] = "https://ca.test";
constexpr char kIssuer[] = "http://127.0.0.1:9/realms/wire";
constexpr char kClientId[] = "wireapp";
constexpr char kSub[] = "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5a";
constexpr char kUserId[] = "bxwt3FqLSiudng8eLTxLWg";
const TimePoint kStart = FromUnix(1'700'000'000);

std::string Url(const std::string& path) { return std::string(kBase) + path; }

Json Problem(const std::string& type, const std::string& detail) {
  return {{"type", "urn:ietf:params:acme:error:" + type}, {"detail", detail}};
}

class FakeWorld {
 public:
  explicit FakeWorld(FakeClock& clock) : clock_(clock) {}

  // Knobs.
  std::string device_target_origin = kBase;
  bool refuse_refresh = false;
  std::string expected_id_token;  // claims mode: the ID token the user leg must post

  // Observations.
  std::vector<Json> order_payloads;
  int refreshes = 0;
  std::string issued_access_token;  // the IdP's latest access token

  Result<oidc::FetchResponse> Handle(const oidc::FetchRequest& r) {
    if (r.url == Url("/acme/directory")) {
      return JsonResponse(200, {{"newNonce", Url("/acme/new-nonce")},
                                {"newAccount", Url("/acme/new-account")},
                                {"newOrder", Url("/acme/new-order")},
                                {"renewalInfo", Url("/acme/renewal-info")}});
    }
    if (r.url == Url("/acme/new-nonce")) {
      oidc::FetchResponse resp;
      resp.status = 200;
      resp.headers = {{"Replay-Nonce", NewNonce()}};
      return resp;
    }
    if (r.url.starts_with(Url("/acme/renewal-info/"))) {
      const std::string id = r.url.substr(Url("/acme/renewal-info/").size());
      auto it = windows_.find(id);
      if (it == windows_.end()) return JsonResponse(404, Problem("malformed", "unknown cert"));
      return JsonResponse(200, {{"suggestedWindow",
                                 {{"start", FormatRfc3339(it->second.first)},
                                  {"end", FormatRfc3339(it->second.second)}}}});
    }
    if (r.url.starts_with(Url("/acme/"))) return Acme(r);
    if (r.url.starts_with(Url("/clients/")) || r.url.starts_with("https://evil.test/")) {
      return Authority(r);
    }
    if (r.url == std::string(kIssuer) + "/.well-known/openid-configuration") {
      const std::string p = std::string(kIssuer) + "/protocol/openid-connect";
      return JsonResponse(200, {{"issuer", kIssuer},
                                {"authorization_endpoint", p + "/auth"},
                                {"token_endpoint", p + "/token"},
                                {"jwks_uri", p + "/certs"}});
    }
    if (r.url == std::string(kIssuer) + "/protocol/openid-connect/token") return Token(r);
    ADD_FAILURE() << "unexpected request " << r.method << " " << r.url;
    return Fail(Error(ErrorCode::kConnection, "no such host"));
  }

  // An access token as the IdP would issue it, bound to `jkt` (none when empty).
  std::string AccessToken(const std::string& jkt, const std::string& name = "Alice Smith") {
    Json claims = {{"iss", kIssuer},
                   {"sub", kSub},
                   {"name", name},
                   {"preferred_username", "alice"},
                   {"azp", kClientId}};
    if (!jkt.empty()) claims["cnf"] = {{"jkt", jkt}};
    issued_access_token = UnsignedJwt(claims);
    return issued_access_token;
  }

 private:
  struct Order {
    std::string device_id;
    std::string client_id_uri;
    std::string handle_uri;
    std::string display_name;
    bool device_valid = false;
    bool user_valid = false;
    std::string cert_pem;
    std::string authority_token;
    std::string dpop_challenge_url;
  };

  std::string NewNonce() {
    const std::string n = "n-" + std::to_string(++nonce_counter_);
    nonces_.insert(n);
    return n;
  }

  oidc::FetchResponse Reply(int status, const Json& body, HttpHeaders headers = {}) {
    headers.emplace_back("Replay-Nonce", NewNonce());
    return JsonResponse(status, body, std::move(headers));
  }

  Result<oidc::FetchResponse> Acme(const oidc::FetchRequest& r) {
    EXPECT_EQ(r.method, "POST") << r.url;
    auto jws = crypto::ParseFlattenedJws(r.body);
    if (!jws) return Reply(400, Problem("malformed", "bad JWS"));
    const std::string nonce = jws->header.value("nonce", "");
    if (nonces_.erase(nonce) == 0) return Reply(400, Problem("badNonce", "unknown nonce"));
    EXPECT_EQ(jws->header.value("url", ""), r.url);
    const std::string path = r.url.substr(std::string(kBase).size());
    if (path == "/acme/new-account") {
      EXPECT_FALSE(jws->header.contains("kid"));
      auto key = crypto::PublicKeyFromJwk(jws->header["jwk"]);
      EXPECT_TRUE(key && crypto::VerifyJws(*jws, *key));
      const bool existing = account_key_ && account_key_->Equals(*key);
      account_key_ = key->Clone();
      account_thumbprint_ = *crypto::JwkThumbprint(*key);
      return Reply(existing ? 200 : 201, {{"status", "valid"}},
                   {{"Location", Url("/acme/acct/1")}});
    }
    EXPECT_EQ(jws->header.value("kid", ""), Url("/acme/acct/1"));
    if (!account_key_ || !crypto::VerifyJws(*jws, *account_key_)) {
      return Reply(400, Problem("malformed", "JWS signature verification failed"));
    }
    const std::string payload_text(AsString(jws->payload));
    Json payload = payload_text.empty() ? Json() : *ParseJson(payload_text);
    if (path == "/acme/new-order") return NewOrder(payload);
    // /acme/{kind}/{n}[-dev|-user][/finalize]
    const std::string rest = path.substr(6);
    const std::string kind = rest.substr(0, rest.find('/'));
    std::string id = rest.substr(kind.size() + 1);
    const bool finalize = id.ends_with("/finalize");
    if (finalize) id.resize(id.size() - std::string("/finalize").size());
    const std::string leg = id.find('-') == std::string::npos ? "" : id.substr(id.find('-') + 1);
    const size_t n = std::stoul(id.substr(0, id.find('-')));
    if (n >= orders_.size()) return Reply(404, Problem("malformed", "no such order"));
    Order& o = orders_[n];
    if (kind == "order" && finalize) return Finalize(o, n, payload);
    if (kind == "order") return Reply(200, OrderJson(o, n));
    if (kind == "authz") return Reply(200, AuthzJson(o, n, leg));
    if (kind == "chall") return Challenge(o, n, leg, payload);
    if (kind == "cert") {
      oidc::FetchResponse pem;
      pem.status = 200;
      pem.headers = {{"Content-Type", "application/pem-certificate-chain"},
                     {"Replay-Nonce", NewNonce()}};
      pem.body = o.cert_pem;
      return pem;
    }
    return Reply(404, Problem("malformed", "unknown resource"));
  }

  Result<oidc::FetchResponse> NewOrder(const Json& payload) {
    order_payloads.push_back(payload);
    const Json& ids = payload["identifiers"];
    EXPECT_EQ(ids.size(), 2u);
    Order o;
    for (const Json& id : ids) {
      auto value = ParseJson(id["value"].get<std::string>());
      EXPECT_TRUE(value);
      o.handle_uri = (*value)["handle"];
      o.display_name = (*value)["name"];
      EXPECT_EQ((*value)["domain"], "example.com");
      if (id["type"] == "wireapp-device") o.client_id_uri = (*value)["client-id"];
    }
    // wireapp://{user}!{device}@example.com
    const size_t bang = o.client_id_uri.find('!');
    o.device_id = o.client_id_uri.substr(bang + 1, o.client_id_uri.find('@') - bang - 1);
    EXPECT_EQ(o.client_id_uri.substr(0, bang), std::string("wireapp://") + kUserId);
    orders_.push_back(o);
    const size_t n = orders_.size() - 1;
    return Reply(201, OrderJson(orders_[n], n), {{"Location", OrderUrl(n)}});
  }

  std::string OrderUrl(size_t n) { return Url("/acme/order/" + std::to_string(n)); }

  Json OrderJson(const Order& o, size_t n) {
    const std::string status =
        !o.cert_pem.empty() ? "valid" : (o.device_valid && o.user_valid ? "ready" : "pending");
    Json j = {{"status", status},
              {"authorizations", Json::array({Url("/acme/authz/" + std::to_string(n) + "-dev"),
                                              Url("/acme/authz/" + std::to_string(n) + "-user")})},
              {"finalize", OrderUrl(n) + "/finalize"}};
    if (!o.cert_pem.empty()) j["certificate"] = Url("/acme/cert/" + std::to_string(n));
    return j;
  }

  Json AuthzJson(const Order& o, size_t n, const std::string& leg) {
    const bool dev = leg == "dev";
    const bool valid = dev ? o.device_valid : o.user_valid;
    const std::string target =
        dev ? device_target_origin + "/clients/" + o.device_id + "/access-token"
            : std::string(kIssuer) + "?client_id=" + kClientId;
    return {
        {"status", valid ? "valid" : "pending"},
        {"identifier", {{"type", dev ? "wireapp-device" : "wireapp-user"}, {"value", "..."}}},
        {"challenges", Json::array({{{"type", dev ? "wire-dpop-01" : "wire-oidc-01"},
                                     {"url", Url("/acme/chall/" + std::to_string(n) + "-" + leg)},
                                     {"token", "tok-" + leg + "-" + std::to_string(n)},
                                     {"target", target},
                                     {"status", valid ? "valid" : "pending"}}})}};
  }

  Result<oidc::FetchResponse> Challenge(Order& o, size_t n, const std::string& leg,
                                        const Json& payload) {
    if (leg == "dev") {
      EXPECT_FALSE(o.authority_token.empty());
      EXPECT_EQ(payload.value("access_token", ""), o.authority_token);
      o.device_valid = payload.value("access_token", "") == o.authority_token;
    } else if (!expected_id_token.empty()) {
      EXPECT_EQ(payload.value("id_token", ""), expected_id_token);
      o.user_valid = payload.value("id_token", "") == expected_id_token;
    } else {
      const std::string at = payload.value("access_token", "");
      EXPECT_EQ(at, issued_access_token);
      auto claims = DecodeJwtClaims(at);
      EXPECT_TRUE(claims);
      o.user_valid = claims && (*claims)["cnf"]["jkt"] == account_thumbprint_;
    }
    (void)n;
    return Reply(200, {{"status", "processing"}},
                 {{"Link", "<" + Url("/acme/authz/x") + ">;rel=\"up\""}});
  }

  Result<oidc::FetchResponse> Finalize(Order& o, size_t n, const Json& payload) {
    if (!(o.device_valid && o.user_valid)) return Reply(403, Problem("orderNotReady", "not ready"));
    auto der = Base64UrlDecode(payload.value("csr", ""));
    EXPECT_TRUE(der);
    const unsigned char* p = der->data();
    crypto::X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size())));
    EXPECT_TRUE(req);
    EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
    EXPECT_EQ(X509_REQ_verify(req.get(), key), 1);
    const uint8_t serial[] = {0x70, static_cast<uint8_t>(n + 1)};
    const TimePoint nb = clock_.Now();
    const TimePoint na = nb + std::chrono::hours(24 * 90);
    o.cert_pem = testing::IssueLeafPem(ca_, key, {o.client_id_uri, o.handle_uri}, serial, nb, na);
    auto described = DescribeCertificate(o.cert_pem);
    EXPECT_TRUE(described);
    windows_[described->ari_cert_id] = {nb + std::chrono::hours(24 * 60),
                                        nb + std::chrono::hours(24 * 75)};
    return Reply(200, OrderJson(o, n), {{"Location", OrderUrl(n)}});
  }

  Result<oidc::FetchResponse> Authority(const oidc::FetchRequest& r) {
    const std::string path = r.url.substr(r.url.find("/clients/"));
    if (r.method == "GET" && path.ends_with("/nonce")) {
      authority_nonce_ = "auth-nonce-" + std::to_string(++nonce_counter_);
      oidc::FetchResponse resp;
      resp.status = 200;
      resp.headers = {{"Replay-Nonce", authority_nonce_}};
      resp.body = authority_nonce_;
      return resp;
    }
    EXPECT_EQ(r.method, "POST");
    Order& o = orders_.back();
    EXPECT_EQ(path, "/clients/" + o.device_id + "/access-token");
    const std::string access = issued_access_token;
    // "DPoP" for a DPoP-bound access token, "Bearer" otherwise.
    const bool bound = DecodeJwtClaims(access).value_or(Json::object()).contains("cnf");
    EXPECT_EQ(FindHeader(r.headers, "Authorization"), (bound ? "DPoP " : "Bearer ") + access);
    auto jws = crypto::ParseCompactJws(FindHeader(r.headers, "DPoP").value_or(""));
    EXPECT_TRUE(jws);
    if (!jws) return JsonResponse(400, Problem("malformed", "no proof"));
    EXPECT_EQ(jws->header["typ"], "dpop+jwt");
    auto key = crypto::PublicKeyFromJwk(jws->header["jwk"]);
    EXPECT_TRUE(key && crypto::VerifyJws(*jws, *key));
    EXPECT_EQ(*crypto::JwkThumbprint(*key), account_thumbprint_);  // the ACME account key
    auto claims = *ParseJson(AsString(jws->payload));
    const size_t n = orders_.size() - 1;
    EXPECT_EQ(claims["nonce"], authority_nonce_);
    EXPECT_EQ(claims["htu"], r.url);
    EXPECT_EQ(claims["htm"], "POST");
    EXPECT_EQ(claims["aud"], Url("/acme/chall/" + std::to_string(n) + "-dev"));
    EXPECT_EQ(claims["chal"], "tok-dev-" + std::to_string(n));
    EXPECT_EQ(claims["sub"], o.client_id_uri);
    EXPECT_EQ(claims["handle"], o.handle_uri);
    EXPECT_EQ(claims["name"], o.display_name);
    EXPECT_EQ(claims["ath"], AccessTokenHash(access));
    o.authority_token = "authority-token-" + std::to_string(n);
    return JsonResponse(200, {{"expires_in", 300}, {"token", o.authority_token}, {"type", "DPoP"}});
  }

  Result<oidc::FetchResponse> Token(const oidc::FetchRequest& r) {
    auto form = ParseQuery(r.body);
    EXPECT_TRUE(form);
    EXPECT_EQ(FindField(*form, "grant_type"), "refresh_token");
    EXPECT_EQ(FindField(*form, "client_id"), kClientId);
    if (refuse_refresh) {
      return JsonResponse(
          400, {{"error", "invalid_grant"}, {"error_description", "Token is not active"}});
    }
    auto jws = crypto::ParseCompactJws(FindHeader(r.headers, "DPoP").value_or(""));
    EXPECT_TRUE(jws);
    auto key = crypto::PublicKeyFromJwk(jws->header["jwk"]);
    EXPECT_TRUE(key && crypto::VerifyJws(*jws, *key));
    ++refreshes;
    EXPECT_EQ(FindField(*form, "refresh_token"), "rt-" + std::to_string(refreshes - 1));
    return JsonResponse(200, {{"access_token", AccessToken(*crypto::JwkThumbprint(*key))},
                              {"token_type", "DPoP"},
                              {"refresh_token", "rt-" + std::to_string(refreshes)},
                              {"id_token", UnsignedJwt({{"iss", kIssuer},
                                                        {"aud", kClientId},
                                                        {"sub", kSub},
                                                        {"name", "Alice Smith"},
                                                        {"preferred_username", "alice"}})}});
  }

  FakeClock& clock_;
  testing::TestCa ca_ = testing::MakeTestCa();
  int nonce_counter_ = 0;
  std::set<std::string> nonces_;
  std::optional<crypto::PublicKey> account_key_;
  std::string account_thumbprint_;
  std::vector<Order> orders_;
  std::string authority_nonce_;
  std::map<std::string, std::pair<TimePoint, TimePoint>> windows_;
};

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class EnrolFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.make_http = [this](const std::string&) -> Result<std::unique_ptr<oidc::HttpClient>> {
      return std::unique_ptr<oidc::HttpClient>(std::make_unique<testing::FakeHttpClient>(
          [this](const oidc::FetchRequest& r) { return world_.Handle(r); }));
    };
    env_.clock = &clock_;
    env_.rng = &rng_;
    env_.sleep = [this](std::chrono::milliseconds d) {
      clock_.Advance(std::chrono::duration_cast<std::chrono::seconds>(d));
    };
    env_.print = [this](const std::string& line) { printed_.push_back(line); };
    // The client key exists before the enrolment, so the automation's token can be bound to it.
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
    ASSERT_TRUE(key);
    StateDir dir(state_dir());
    ASSERT_TRUE(dir.Prepare());
    ASSERT_TRUE(dir.SaveKey(dir.client_key_path(), *key));
    jkt_ = *crypto::JwkThumbprint(*key->public_key());
  }

  std::string state_dir() const { return tmp_ / "state"; }

  EnrolSettings Settings(const std::string& access_token) {
    const std::string file = tmp_ / "access_token";
    EXPECT_TRUE(WriteFileAtomic(file, access_token + "\n", 0600));
    EnrolSettings s;
    s.state_dir = state_dir();
    s.directory_url = Url("/acme/directory");
    s.issuer = kIssuer;
    s.client_id = kClientId;
    s.domain = "example.com";
    s.login = LoginMode::kTokenFiles;
    s.access_token_file = file;
    return s;
  }

  e2eid::testing::TempDir tmp_;
  FakeClock clock_{kStart};
  crypto::SecureRandom rng_;
  FakeWorld world_{clock_};
  FlowEnvironment env_;
  std::vector<std::string> printed_;
  std::string jkt_;
};

TEST_F(EnrolFlowTest, EnrolWritesEverythingThenRenewReplacesTheCertificate) {
  auto enrolled = EnrolDevice(Settings(world_.AccessToken(jkt_)), env_);
  ASSERT_TRUE(enrolled) << enrolled.error().ToString();
  StateDir dir(state_dir());
  const ClientState& s = enrolled->state;
  EXPECT_EQ(s.user_id, kUserId);
  EXPECT_TRUE(IsValidDeviceId(s.device_id));
  EXPECT_EQ(s.handle, "alice");
  EXPECT_EQ(s.display_name, "Alice Smith");
  EXPECT_EQ(s.account_url, Url("/acme/acct/1"));
  EXPECT_EQ(s.cert_serial, "7001");
  EXPECT_EQ(s.not_before, kStart);
  EXPECT_FALSE(s.ari_cert_id.empty());
  EXPECT_EQ(ModeOf(state_dir()), 0700u);
  EXPECT_EQ(ModeOf(dir.device_key_path()), 0600u);
  EXPECT_EQ(ModeOf(dir.client_key_path()), 0600u);
  EXPECT_EQ(ModeOf(dir.state_path()), 0600u);
  EXPECT_EQ(ModeOf(dir.cert_path()), 0644u);
  auto saved = dir.LoadState();
  ASSERT_TRUE(saved && saved->has_value());
  EXPECT_EQ(**saved, s);
  auto device_key = dir.LoadKey(dir.device_key_path());
  ASSERT_TRUE(device_key && device_key->has_value());
  auto cert_pem = ReadFile(dir.cert_path());
  ASSERT_TRUE(cert_pem);
  const WireIdentity id{"Alice Smith", "example.com", "alice", kUserId, s.device_id};
  EXPECT_TRUE(CheckIssuedChain(*cert_pem, *(*device_key)->public_key(), id));
  ASSERT_EQ(world_.order_payloads.size(), 1u);
  EXPECT_FALSE(world_.order_payloads[0].contains("replaces"));
  for (const auto& line : printed_) {
    EXPECT_EQ(line.find(world_.issued_access_token), std::string::npos) << "token printed";
  }

  // Not due yet: nothing happens.
  auto early = RenewDevice(RenewSettings{.state_dir = state_dir()}, env_);
  ASSERT_TRUE(early) << early.error().ToString();
  EXPECT_EQ(early->status, RenewOutcome::Status::kNotDue);
  EXPECT_EQ(early->decision.renew_at, kStart + std::chrono::hours(24 * 60));
  EXPECT_EQ(world_.refreshes, 0);

  // Two thirds of the 90 days later, renewal uses the refresh token and replaces the old cert.
  ASSERT_TRUE(dir.SaveRefreshToken("rt-0"));
  clock_.Advance(std::chrono::hours(24 * 61));
  auto renewed = RenewDevice(RenewSettings{.state_dir = state_dir()}, env_);
  ASSERT_TRUE(renewed) << renewed.error().ToString();
  ASSERT_EQ(renewed->status, RenewOutcome::Status::kRenewed);
  EXPECT_EQ(world_.refreshes, 1);
  ASSERT_EQ(world_.order_payloads.size(), 2u);
  EXPECT_EQ(world_.order_payloads[1]["replaces"], s.ari_cert_id);
  const ClientState& s2 = renewed->result->state;
  EXPECT_EQ(s2.device_id, s.device_id);
  EXPECT_EQ(s2.cert_serial, "7002");
  EXPECT_NE(s2.ari_cert_id, s.ari_cert_id);
  EXPECT_EQ(**dir.LoadRefreshToken(), "rt-1");  // the rotated refresh token was saved
  EXPECT_EQ(ModeOf(dir.refresh_token_path()), 0600u);
  auto key_after = dir.LoadKey(dir.device_key_path());
  EXPECT_TRUE((*key_after)->public_key()->Equals(*(*device_key)->public_key()));  // kept

  // --force --rotate-key: a new device key.
  auto rotated =
      RenewDevice(RenewSettings{.state_dir = state_dir(), .force = true, .rotate_key = true}, env_);
  ASSERT_TRUE(rotated) << rotated.error().ToString();
  ASSERT_EQ(rotated->status, RenewOutcome::Status::kRenewed);
  auto key_rotated = dir.LoadKey(dir.device_key_path());
  EXPECT_FALSE((*key_rotated)->public_key()->Equals(*(*device_key)->public_key()));
  EXPECT_TRUE(CheckIssuedChain(*ReadFile(dir.cert_path()), *(*key_rotated)->public_key(), id));

  // A second enrolment keeps the device id and the device key.
  auto again = EnrolDevice(Settings(world_.AccessToken(jkt_)), env_);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->state.device_id, s.device_id);
  EXPECT_TRUE(
      (*dir.LoadKey(dir.device_key_path()))->public_key()->Equals(*(*key_rotated)->public_key()));
}

TEST_F(EnrolFlowTest, RefusedRefreshIsReportedAsSuch) {
  ASSERT_TRUE(EnrolDevice(Settings(world_.AccessToken(jkt_)), env_));
  ASSERT_TRUE(StateDir(state_dir()).SaveRefreshToken("rt-0"));
  world_.refuse_refresh = true;
  auto r = RenewDevice(RenewSettings{.state_dir = state_dir(), .force = true}, env_);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, RenewOutcome::Status::kRefreshRefused);
  EXPECT_EQ(r->message,
            "the identity provider refused the refresh token (invalid_grant: Token is not "
            "active); run e2eid enrol again");
}

TEST_F(EnrolFlowTest, RenewWithoutEnrolmentOrRefreshToken) {
  auto none = RenewDevice(RenewSettings{.state_dir = tmp_ / "nothing"}, env_);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(EnrolDevice(Settings(world_.AccessToken(jkt_)), env_));
  auto r = RenewDevice(RenewSettings{.state_dir = state_dir(), .force = true}, env_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, RenewOutcome::Status::kRefreshRefused);
}

TEST_F(EnrolFlowTest, AccessTokenGoesOnlyToTheAllowedDeviceAuthority) {
  world_.device_target_origin = "https://evil.test";
  auto r = EnrolDevice(Settings(world_.AccessToken(jkt_)), env_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRejectedIdentifier);
  EXPECT_NE(r.error().detail().find("--device-authority"), std::string::npos);
  StateDir dir(state_dir());
  EXPECT_FALSE(PathExists(dir.cert_path()));
  EXPECT_FALSE(PathExists(dir.device_key_path()));
  EXPECT_FALSE(PathExists(dir.state_path()));

  // Allowing that origin explicitly works.
  EnrolSettings s = Settings(world_.AccessToken(jkt_));
  s.device_authority = "https://evil.test/";
  EXPECT_TRUE(EnrolDevice(s, env_));
}

TEST_F(EnrolFlowTest, DpopModeNeedsATokenBoundToTheClientKey) {
  auto unbound = EnrolDevice(Settings(world_.AccessToken("")), env_);
  ASSERT_FALSE(unbound);
  EXPECT_NE(unbound.error().detail().find("not DPoP-bound"), std::string::npos);
  EXPECT_TRUE(world_.order_payloads.empty());  // refused before talking to the CA
  auto other = EnrolDevice(Settings(world_.AccessToken("someone-elses-thumbprint")), env_);
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().detail().find("another key"), std::string::npos);
}

TEST_F(EnrolFlowTest, ClaimsModeWithABearerTokenPostsTheIdToken) {
  EnrolSettings s = Settings(world_.AccessToken(""));  // not DPoP-bound: Bearer to the authority
  s.oidc_mode = OidcMode::kClaims;
  const std::string id_token = UnsignedJwt({{"iss", kIssuer},
                                            {"aud", kClientId},
                                            {"sub", kSub},
                                            {"name", "Alice Smith"},
                                            {"preferred_username", "alice"}});
  s.id_token_file = tmp_ / "id_token";
  ASSERT_TRUE(WriteFileAtomic(s.id_token_file, id_token, 0600));
  world_.expected_id_token = id_token;
  auto r = EnrolDevice(s, env_);
  ASSERT_TRUE(r) << r.error().ToString();
}

TEST_F(EnrolFlowTest, FirstEnrolmentNeedsTheServerSettings) {
  EnrolSettings s = Settings(world_.AccessToken(jkt_));
  s.domain.clear();
  auto r = EnrolDevice(s, env_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().detail().find("--domain"), std::string::npos);
}

TEST(TargetChecksTest, DeviceTarget) {
  EXPECT_TRUE(
      CheckDeviceTarget("https://ca.test/clients/abc/access-token", "https://ca.test", "abc"));
  EXPECT_TRUE(CheckDeviceTarget("https://ca.test/wire/clients/abc/access-token", "https://ca.test/",
                                "abc"));
  for (const char* bad :
       {"https://ca.test.evil/clients/abc/access-token",
        "https://ca.test:444/clients/abc/access-token", "http://ca.test/clients/abc/access-token",
        "https://ca.test/clients/abd/access-token", "https://ca.test/clients/abc/access-token?x=1",
        "ca.test/clients/abc"}) {
    auto s = CheckDeviceTarget(bad, "https://ca.test", "abc");
    EXPECT_FALSE(s) << bad;
    if (!s) {
      EXPECT_EQ(s.error().code(), ErrorCode::kRejectedIdentifier);
    }
  }
}

TEST(TargetChecksTest, OidcTargetAndOrigin) {
  EXPECT_TRUE(
      CheckOidcTarget("https://idp/realms/r?client_id=wire", "https://idp/realms/r/", "wire"));
  EXPECT_FALSE(
      CheckOidcTarget("https://idp/realms/x?client_id=wire", "https://idp/realms/r", "wire"));
  EXPECT_FALSE(
      CheckOidcTarget("https://idp/realms/r?client_id=other", "https://idp/realms/r", "wire"));
  EXPECT_FALSE(CheckOidcTarget("https://idp/realms/r", "https://idp/realms/r", "wire"));
  EXPECT_EQ(UrlOrigin("https://ca.test:8443/acme/directory").value(), "https://ca.test:8443");
  EXPECT_EQ(UrlOrigin("https://ca.test").value(), "https://ca.test");
  EXPECT_EQ(UrlOrigin("https://ca.test?x").value(), "https://ca.test");
  EXPECT_FALSE(UrlOrigin("ca.test/acme"));
  EXPECT_FALSE(UrlOrigin("https:///path"));
}

}  // namespace
}  // namespace e2eid::cli
