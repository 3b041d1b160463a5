// The admin API through a Router, on a real SQLite store and RevocationService, with a fake token
// verifier (token string -> claims).
#include "server/admin_api.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "acme/wire.h"
#include "core/encoding.h"
#include "core/log.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "store/sqlite_store.h"
#include "tests/test_util.h"

namespace e2eid::server {
namespace {

using std::chrono::seconds;
using store::CertificateStatus;
using store::DeviceStatus;
using store::Table;

constexpr std::string_view kIssuer = "https://idp.test/realms/e2eid";
constexpr std::string_view kAliceSub = "6c1f6a3e-8b1d-4c55-9b3e-a11ce0000001";
constexpr std::string_view kBobSub = "2b0b2b0b-7c2d-4f6e-8a1b-b0b000000002";
constexpr std::string_view kAdminSub = "9ad31a1e-4e7f-4d2a-b6c3-ad3100000003";
const TimePoint kT0 = FromUnix(1767225600);  // 2026-01-01T00:00:00Z

// Token string -> claims; anything else fails like a bad signature. "expired" and "other-issuer"
// fail like the real verifier does; "idp-down" like an unreachable IdP.
class FakeVerifier final : public oidc::TokenVerifier {
 public:
  Result<Json> VerifyIdToken(std::string_view, const oidc::VerifyOptions&) override {
    return Fail(Error::Unauthorized("not used"));
  }
  Result<Json> VerifyAccessToken(std::string_view jwt, const oidc::VerifyOptions& o) override {
    std::lock_guard lock(mu_);
    ++calls_;
    if (o.apply_policy) policy_applied_ = true;
    if (jwt == "expired") return Fail(Error::Unauthorized("access token: the token has expired"));
    if (jwt == "other-issuer") {
      return Fail(Error::Unauthorized("access token: claim \"iss\" is not the issuer"));
    }
    if (jwt == "idp-down") return Fail(ErrorCode::kConnection, "GET jwks: connection refused");
    auto it = tokens_.find(std::string(jwt));
    if (it == tokens_.end()) {
      return Fail(Error::Unauthorized("access token: the signature does not verify"));
    }
    return it->second;
  }
  const std::string& issuer() const override { return issuer_; }
  const std::string& client_id() const override { return client_; }

  void Add(std::string token, Json claims) {
    std::lock_guard lock(mu_);
    tokens_[std::move(token)] = std::move(claims);
  }
  bool policy_applied() const {
    std::lock_guard lock(mu_);
    return policy_applied_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Json> tokens_;
  std::string issuer_ = std::string(kIssuer);
  std::string client_ = "e2eid-admin-cli";
  int calls_ = 0;
  bool policy_applied_ = false;
};

Json Claims(std::string_view sub, std::vector<std::string> roles) {
  return {{"iss", kIssuer},
          {"sub", sub},
          {"azp", "e2eid-admin-cli"},
          {"realm_access", {{"roles", roles}}}};
}

std::string WireUser(std::string_view uuid) {
  auto id = acme::WireUserIdFromUuid(uuid);
  EXPECT_TRUE(id);
  return id ? *id : std::string();
}

std::string DeviceUri(std::string_view sub, std::string_view device) {
  return "wireapp://" + WireUser(sub) + "!" + std::string(device) + "@example.com";
}

// Percent-encodes everything but unreserved characters (as a client does for a path segment).
std::string Encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Json Body(const HttpResponse& r) {
  auto j = ParseJson(r.body);
  EXPECT_TRUE(j) << r.body;
  return j ? *j : Json();
}

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenSqliteStore({.path = tmp_ / "e2eid.db", .synchronous_full = false});
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
    revocations_ = std::make_unique<revocation::RevocationService>(*store_, clock_);
    verifier_.Add("admin", Claims(kAdminSub, {"user", "e2eid-admin"}));
    verifier_.Add("alice", Claims(kAliceSub, {"user"}));
    verifier_.Add("bob", Claims(kBobSub, {"user"}));
    verifier_.Add("no-sub", Json{{"iss", kIssuer}, {"realm_access", {{"roles", {"e2eid-admin"}}}}});
    verifier_.Add("not-a-uuid", Claims("service-account-x", {"user"}));
    api_ =
        std::make_unique<AdminApi>(AdminApiOptions{}, AdminApi::Deps{.store = *store_,
                                                                     .revocations = *revocations_,
                                                                     .verifier = verifier_,
                                                                     .clock = clock_});
    ASSERT_TRUE(AddAdminRoutes(router_, *api_));
    Seed();
    SetLogSink([](std::string_view) {});
  }
  void TearDown() override { SetLogSink({}); }

  // alice: phone (certs a1, a2), laptop (a3); bob: phone (b1). Issued one hour apart.
  void Seed() {
    alice_ = WireUser(kAliceSub);
    bob_ = WireUser(kBobSub);
    alice_phone_ = DeviceUri(kAliceSub, "a1");
    alice_laptop_ = DeviceUri(kAliceSub, "a2");
    bob_phone_ = DeviceUri(kBobSub, "b1");
    auto st = store_->InTransaction([&](store::Transaction& tx) -> Status {
      for (const auto& [id, handle] : {std::pair{alice_, "alice"}, std::pair{bob_, "bob"}}) {
        store::User u;
        u.id = id;
        u.handle = handle;
        u.display_name = std::string(handle) + " name";
        u.first_seen = u.last_seen = kT0;
        E2EID_CHECK_OK(tx.InsertUser(u));
      }
      for (const auto& [id, user] :
           {std::pair{alice_phone_, alice_}, {alice_laptop_, alice_}, {bob_phone_, bob_}}) {
        store::Device d;
        d.id = id;
        d.user_id = user;
        d.display_name = "name";
        d.handle = "handle";
        d.key_thumbprint = "kt-" + id;
        d.first_seen = d.last_seen = kT0;
        E2EID_CHECK_OK(tx.InsertDevice(d));
      }
      struct C {
        const char* serial;
        std::string user;
        std::string device;
        std::string spki;
        int hour;
      };
      const std::string key1(64, 'a');
      const std::string key2(64, 'b');
      for (const C& c :
           {C{"a1", alice_, alice_phone_, key1, 0}, C{"a2", alice_, alice_phone_, key2, 1},
            C{"a3", alice_, alice_laptop_, key2, 2}, C{"b1", bob_, bob_phone_, key1, 3}}) {
        E2EID_CHECK_OK(tx.ReserveSerial(c.serial, kT0));
        store::Certificate cert;
        cert.serial = c.serial;
        cert.user_id = c.user;
        cert.device_id = c.device;
        cert.spki_sha256 = c.spki;
        cert.issued_at = cert.not_before = kT0 + seconds(3600 * c.hour);
        cert.not_after = cert.issued_at + seconds(90 * 86400);
        cert.der = {0x30, 0x00};
        cert.chain_pem = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        E2EID_CHECK_OK(tx.InsertCertificate(cert));
      }
      return Ok();
    });
    ASSERT_TRUE(st) << st.error().ToString();
    clock_.Set(kT0 + seconds(86400));
  }

  HttpResponse Call(std::string method, std::string target, std::string token = "",
                    std::string body = "", std::string content_type = "application/json") {
    HttpRequest r;
    r.method = std::move(method);
    r.target = target;
    const size_t q = target.find('?');
    r.path = target.substr(0, q);
    r.query = q == std::string::npos ? "" : target.substr(q + 1);
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    if (!body.empty()) r.headers.emplace_back("Content-Type", content_type);
    r.body = std::move(body);
    r.remote_address = "192.0.2.7";
    r.request_id = "req-1";
    return router_.Handle(r);
  }
  HttpResponse Get(std::string target, std::string token = "admin") {
    return Call("GET", std::move(target), std::move(token));
  }
  HttpResponse Post(std::string target, const Json& body, std::string token = "admin") {
    return Call("POST", std::move(target), std::move(token), body.is_null() ? "" : DumpJson(body));
  }

  int64_t Count(Table t) {
    int64_t n = -1;
    EXPECT_TRUE(store_->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(c, tx.CountRows(t));
      n = c;
      return Ok();
    }));
    return n;
  }
  std::vector<store::AuditEvent> AuditEvents() {
    std::vector<store::AuditEvent> out;
    EXPECT_TRUE(store_->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(p, tx.ListAuditEvents({.after = "", .limit = 1000}));
      out = std::move(p.items);
      return Ok();
    }));
    return out;
  }
  store::Certificate Cert(const std::string& serial) {
    store::Certificate c;
    EXPECT_TRUE(store_->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(got, tx.GetCertificate(serial));
      c = std::move(got);
      return Ok();
    }));
    return c;
  }
  store::Device Device(const std::string& id) {
    store::Device d;
    EXPECT_TRUE(store_->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(got, tx.GetDevice(id));
      d = std::move(got);
      return Ok();
    }));
    return d;
  }
  // Everything a refused request must leave alone.
  std::string Snapshot() {
    std::ostringstream s;
    for (Table t :
         {Table::kCertificates, Table::kDevices, Table::kUsers, Table::kRevocationEvents}) {
      s << Count(t) << ",";
    }
    for (const char* serial : {"a1", "a2", "a3", "b1"}) {
      s << store::ToString(Cert(serial).status) << ",";
    }
    for (const auto& d : {alice_phone_, alice_laptop_, bob_phone_}) {
      s << store::ToString(Device(d).status) << ",";
    }
    return s.str();
  }

  testing::TempDir tmp_;
  FakeClock clock_{kT0};
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<revocation::RevocationService> revocations_;
  FakeVerifier verifier_;
  std::unique_ptr<AdminApi> api_;
  Router router_;
  std::string alice_, bob_, alice_phone_, alice_laptop_, bob_phone_;
};

// ---- authentication ---------------------------------------------------------------------------

TEST_F(AdminApiTest, MissingOrInvalidTokensGet401AreAuditedAndChangeNothing) {
  const std::string before = Snapshot();
  const std::string revoke =
      DumpJson(Json{{"scope", "user"}, {"value", alice_}, {"reason", "keyCompromise"}});
  struct Case {
    std::string name;
    HttpHeaders headers;
  };
  const std::vector<Case> cases = {
      {"none", {}},
      {"empty", {{"Authorization", ""}}},
      {"basic", {{"Authorization", "Basic YWRtaW46YWRtaW4="}}},
      {"no token", {{"Authorization", "Bearer "}}},
      {"bad signature", {{"Authorization", "Bearer forged"}}},
      {"expired", {{"Authorization", "Bearer expired"}}},
      {"other issuer", {{"Authorization", "Bearer other-issuer"}}},
      {"no sub", {{"Authorization", "Bearer no-sub"}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const int64_t audits = Count(Table::kAuditEvents);
    HttpRequest r;
    r.method = "POST";
    r.target = r.path = "/admin/v1/revocations";
    r.headers = c.headers;
    r.headers.emplace_back("Content-Type", "application/json");
    r.body = revoke;
    r.remote_address = "198.51.100.9";
    const HttpResponse resp = router_.Handle(r);
    EXPECT_EQ(resp.status, 401) << resp.body;
    EXPECT_EQ(resp.Header("Content-Type"), "application/problem+json");
    EXPECT_EQ(Body(resp)["type"], "urn:ietf:params:acme:error:unauthorized");
    ASSERT_TRUE(resp.Header("WWW-Authenticate").has_value());
    EXPECT_EQ(resp.Header("WWW-Authenticate")->rfind("Bearer realm=\"e2eid\"", 0), 0u);
    EXPECT_EQ(resp.Header("Cache-Control"), "no-store");
    ASSERT_EQ(Count(Table::kAuditEvents), audits + 1);
    const store::AuditEvent e = AuditEvents().back();
    EXPECT_EQ(e.actor, "anonymous");
    EXPECT_EQ(e.action, "admin.login");
    EXPECT_EQ(e.outcome, "denied");
    EXPECT_EQ(e.source, "198.51.100.9");
    EXPECT_EQ(e.target, "/admin/v1/revocations");
    const Json details = *ParseJson(e.details);
    EXPECT_EQ(details["route"], "POST /admin/v1/revocations");
    EXPECT_FALSE(details["reason"].get<std::string>().empty());
  }
  EXPECT_EQ(Snapshot(), before);
  // A sent token that fails verification names the check.
  const HttpResponse expired = Get("/admin/v1/devices", "expired");
  EXPECT_NE(Body(expired)["detail"].get<std::string>().find("expired"), std::string::npos);
  EXPECT_EQ(expired.Header("WWW-Authenticate"), R"(Bearer realm="e2eid", error="invalid_token")");
  EXPECT_FALSE(verifier_.policy_applied());
}

// ---- DPoP-bound tokens (RFC 9449 §7) -----------------------------------------------------------

// A DPoP proof by `signer` whose header names `jwk_key` (normally the same key).
struct ProofSpec {
  std::string htm = "GET";
  std::string htu = "https://ca.test/admin/v1/devices";
  std::optional<int64_t> iat;  // default: the clock's now
  std::string jti = "jti-1";
  std::string ath_token = "bound";  // "ath" is the hash of this; empty: no "ath"
  std::string typ = "dpop+jwt";
};

class AdminApiDpopTest : public AdminApiTest {
 protected:
  void SetUp() override {
    AdminApiTest::SetUp();
    key_ =
        std::make_unique<crypto::PrivateKey>(*crypto::PrivateKey::Generate(crypto::KeyType::kP256));
    other_ =
        std::make_unique<crypto::PrivateKey>(*crypto::PrivateKey::Generate(crypto::KeyType::kP256));
    Json claims = Claims(kAdminSub, {"user", "e2eid-admin"});
    claims["cnf"] = {{"jkt", *crypto::JwkThumbprint(*key_->public_key())}};
    verifier_.Add("bound", claims);
    // An API that knows its external URL, so "htu" is compared in full.
    AdminApiOptions options;
    options.base_url = "https://ca.test";
    dpop_api_ = std::make_unique<AdminApi>(options, AdminApi::Deps{.store = *store_,
                                                                   .revocations = *revocations_,
                                                                   .verifier = verifier_,
                                                                   .clock = clock_});
    ASSERT_TRUE(AddAdminRoutes(dpop_router_, *dpop_api_));
  }

  std::string Proof(const ProofSpec& spec, const crypto::PrivateKey* signer = nullptr,
                    const crypto::PrivateKey* jwk_key = nullptr) {
    const crypto::PrivateKey& named = jwk_key ? *jwk_key : *key_;
    Json header = {{"typ", spec.typ}, {"jwk", *crypto::PublicKeyToJwk(*named.public_key())}};
    Json payload = {{"htm", spec.htm},
                    {"htu", spec.htu},
                    {"iat", spec.iat.value_or(ToUnix(clock_.Now()))},
                    {"jti", spec.jti}};
    if (!spec.ath_token.empty()) {
      payload["ath"] = Base64UrlEncode(crypto::Sha256(spec.ath_token));
    }
    auto jws = crypto::SignCompactJws(signer ? *signer : named, crypto::JwsAlg::kES256, header,
                                      DumpJson(payload));
    EXPECT_TRUE(jws);
    return *jws;
  }

  HttpResponse GetDevices(const std::string& authorization, const std::vector<std::string>& proofs,
                          const std::string& target = "/admin/v1/devices") {
    HttpRequest r;
    r.method = "GET";
    r.target = target;
    r.path = target.substr(0, target.find('?'));
    r.query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
    r.headers.emplace_back("Authorization", authorization);
    for (const auto& p : proofs) r.headers.emplace_back("DPoP", p);
    r.remote_address = "203.0.113.5";
    return dpop_router_.Handle(r);
  }

  std::unique_ptr<crypto::PrivateKey> key_;
  std::unique_ptr<crypto::PrivateKey> other_;
  std::unique_ptr<AdminApi> dpop_api_;
  Router dpop_router_;
};

TEST_F(AdminApiDpopTest, BoundTokenAsBearerGets401AndIsAudited) {
  const std::string before = Snapshot();
  for (Router* router : {&router_, &dpop_router_}) {
    const int64_t audits = Count(Table::kAuditEvents);
    HttpRequest r;
    r.method = "POST";
    r.target = r.path = "/admin/v1/revocations";
    r.headers = {{"Authorization", "Bearer bound"}, {"Content-Type", "application/json"}};
    r.body = DumpJson(Json{{"scope", "user"}, {"value", alice_}, {"reason", "keyCompromise"}});
    const HttpResponse resp = router->Handle(r);
    EXPECT_EQ(resp.status, 401) << resp.body;
    EXPECT_EQ(Body(resp)["type"], "urn:ietf:params:acme:error:unauthorized");
    EXPECT_NE(Body(resp)["detail"].get<std::string>().find("DPoP-bound"), std::string::npos)
        << resp.body;
    EXPECT_EQ(resp.Header("WWW-Authenticate").value_or("").rfind("DPoP realm=\"e2eid\"", 0), 0u);
    ASSERT_EQ(Count(Table::kAuditEvents), audits + 1);
    const store::AuditEvent e = AuditEvents().back();
    EXPECT_EQ(e.action, "admin.login");
    EXPECT_EQ(e.outcome, "denied");
    EXPECT_NE(e.details.find("DPoP-bound"), std::string::npos);
  }
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(AdminApiDpopTest, BoundTokenWithAValidProofIsAccepted) {
  const HttpResponse ok = GetDevices("DPoP bound", {Proof({})});
  EXPECT_EQ(ok.status, 200) << ok.body;
  // The query is not part of "htu".
  const HttpResponse paged =
      GetDevices("DPoP bound", {Proof({.jti = "jti-2"})}, "/admin/v1/devices?limit=1");
  EXPECT_EQ(paged.status, 200) << paged.body;
  // Without base_url, only the path of "htu" counts.
  HttpRequest r;
  r.method = "GET";
  r.target = r.path = "/admin/v1/devices";
  r.headers = {{"Authorization", "DPoP bound"},
               {"DPoP", Proof({.htu = "https://other.name:8443/admin/v1/devices", .jti = "j3"})}};
  EXPECT_EQ(router_.Handle(r).status, 200);
}

TEST_F(AdminApiDpopTest, EveryBrokenProofGets401NamingTheCheckAndIsAudited) {
  const std::string before = Snapshot();
  const int64_t now = ToUnix(clock_.Now());
  struct Case {
    std::string name;
    std::string authorization;
    std::vector<std::string> proofs;
    std::string check;
  };
  const std::vector<Case> cases = {
      {"no proof", "DPoP bound", {}, "the DPoP header is missing"},
      {"two proofs", "DPoP bound", {Proof({}), Proof({.jti = "x"})}, "exactly one DPoP header"},
      {"not a JWS", "DPoP bound", {"not-a-jws"}, "not a compact JWS"},
      {"typ", "DPoP bound", {Proof({.typ = "JWT"})}, "header \"typ\""},
      {"signed by another key", "DPoP bound", {Proof({}, other_.get())}, "signature"},
      {"key of another token",
       "DPoP bound",
       {Proof({}, other_.get(), other_.get())},
       "not the one the access token is bound to"},
      {"htm", "DPoP bound", {Proof({.htm = "POST"})}, "claim \"htm\""},
      {"htu host",
       "DPoP bound",
       {Proof({.htu = "https://evil.test/admin/v1/devices"})},
       "claim \"htu\""},
      {"htu path",
       "DPoP bound",
       {Proof({.htu = "https://ca.test/admin/v1/users"})},
       "claim \"htu\""},
      {"too old", "DPoP bound", {Proof({.iat = now - 400})}, "too old"},
      {"future", "DPoP bound", {Proof({.iat = now + 120})}, "in the future"},
      {"no ath", "DPoP bound", {Proof({.ath_token = ""})}, "claim \"ath\" is missing"},
      {"ath of another token",
       "DPoP bound",
       {Proof({.ath_token = "admin"})},
       "not the hash of the access token"},
      {"no jti", "DPoP bound", {Proof({.jti = ""})}, "claim \"jti\""},
      {"DPoP scheme, unbound token",
       "DPoP admin",
       {Proof({.ath_token = "admin"})},
       "needs a DPoP-bound access token"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const int64_t audits = Count(Table::kAuditEvents);
    const HttpResponse resp = GetDevices(c.authorization, c.proofs);
    EXPECT_EQ(resp.status, 401) << resp.body;
    EXPECT_NE(Body(resp)["detail"].get<std::string>().find(c.check), std::string::npos)
        << resp.body;
    EXPECT_EQ(resp.Header("WWW-Authenticate").value_or("").rfind("DPoP realm=\"e2eid\"", 0), 0u);
    ASSERT_EQ(Count(Table::kAuditEvents), audits + 1);
    EXPECT_EQ(AuditEvents().back().action, "admin.login");
  }
  // A replayed proof: accepted once, refused the second time.
  const std::string proof = Proof({.jti = "once"});
  EXPECT_EQ(GetDevices("DPoP bound", {proof}).status, 200);
  const HttpResponse replay = GetDevices("DPoP bound", {proof});
  EXPECT_EQ(replay.status, 401);
  EXPECT_NE(Body(replay)["detail"].get<std::string>().find("replayed"), std::string::npos)
      << replay.body;
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(AdminApiTest, TokenWithoutTheAdminRoleGets403OnEveryAdminRouteAndChangesNothing) {
  const std::string before = Snapshot();
  const std::string phone = Encode(alice_phone_);
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"POST", "/admin/v1/revocations"},
      {"GET", "/admin/v1/revocations"},
      {"GET", "/admin/v1/certificates"},
      {"GET", "/admin/v1/certificates/a1"},
      {"GET", "/admin/v1/devices"},
      {"GET", "/admin/v1/devices/" + phone},
      {"POST", "/admin/v1/devices/" + phone + "/block"},
      {"POST", "/admin/v1/devices/" + phone + "/unblock"},
      {"GET", "/admin/v1/users"},
      {"GET", "/admin/v1/users/" + alice_},
      {"POST", "/admin/v1/users/" + alice_ + "/disable"},
      {"POST", "/admin/v1/users/" + alice_ + "/enable"},
      {"GET", "/admin/v1/audit"},
      {"GET", "/admin/v1/audit/export"},
  };
  for (const auto& [method, path] : routes) {
    SCOPED_TRACE(method + " " + path);
    const int64_t audits = Count(Table::kAuditEvents);
    const std::string body =
        method == "POST" ? DumpJson(Json{{"scope", "device"}, {"value", alice_phone_}}) : "";
    const HttpResponse r = Call(method, path, "alice", body);
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(Body(r)["type"], "urn:ietf:params:acme:error:unauthorized");
    EXPECT_NE(Body(r)["detail"].get<std::string>().find("e2eid-admin"), std::string::npos);
    EXPECT_EQ(r.Header("WWW-Authenticate"), R"(Bearer realm="e2eid", error="insufficient_scope")");
    ASSERT_EQ(Count(Table::kAuditEvents), audits + 1);
    const store::AuditEvent e = AuditEvents().back();
    EXPECT_EQ(e.actor, "user:" + std::string(kAliceSub));
    EXPECT_EQ(e.action, "admin.login");
    EXPECT_EQ(e.outcome, "denied");
  }
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(AdminApiTest, UnreachableIdpGives503AndIsAudited) {
  const HttpResponse r = Get("/admin/v1/devices", "idp-down");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Body(r)["detail"].get<std::string>().find("connection refused"), std::string::npos);
  const store::AuditEvent e = AuditEvents().back();
  EXPECT_EQ(e.action, "admin.login");
  EXPECT_EQ(e.outcome, "failure");
}

TEST_F(AdminApiTest, RolesClaimAndAdminRoleAreConfigurable) {
  verifier_.Add("groups", Json{{"iss", kIssuer}, {"sub", kBobSub}, {"groups", {"/ca-admins"}}});
  AdminApiOptions options;
  options.roles_claim = "groups";
  options.admin_role = "/ca-admins";
  AdminApi api(
      options,
      {.store = *store_, .revocations = *revocations_, .verifier = verifier_, .clock = clock_});
  Router router;
  ASSERT_TRUE(AddAdminRoutes(router, api));
  EXPECT_FALSE(AddAdminRoutes(router, api));  // already registered
  HttpRequest r;
  r.method = "GET";
  r.target = r.path = "/admin/v1/users";
  r.headers = {{"Authorization", "bearer groups"}};  // the scheme is case-insensitive
  EXPECT_EQ(router.Handle(r).status, 200);
  r.headers = {{"Authorization", "Bearer admin"}};  // realm_access.roles no longer counts
  EXPECT_EQ(router.Handle(r).status, 403);
}

// ---- revocation -------------------------------------------------------------------------------

TEST_F(AdminApiTest, RevokesACertificateIdempotently) {
  const HttpResponse r = Post("/admin/v1/revocations", {{"scope", "certificate"},
                                                        {"value", "00:A1"},
                                                        {"reason", "keyCompromise"},
                                                        {"comment", "laptop stolen"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["affected"], 1);
  EXPECT_GT(Body(r)["event"].get<int64_t>(), 0);
  const store::Certificate a1 = Cert("a1");
  EXPECT_EQ(a1.status, CertificateStatus::kRevoked);
  EXPECT_EQ(a1.revocation_reason, std::optional<int>(1));
  EXPECT_EQ(a1.revocation_comment, std::optional<std::string>("laptop stolen"));
  EXPECT_EQ(Cert("a2").status, CertificateStatus::kGood);
  const store::AuditEvent e = AuditEvents().back();
  EXPECT_EQ(e.actor, "admin:" + std::string(kAdminSub));
  EXPECT_EQ(e.action, "certificate.revoke");
  EXPECT_EQ(e.source, "192.0.2.7");

  const HttpResponse again =
      Post("/admin/v1/revocations", {{"scope", "certificate"}, {"value", "a1"}, {"reason", 1}});
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Body(again)["affected"], 0);
  EXPECT_EQ(Count(Table::kRevocationEvents), 2);

  const HttpResponse unknown =
      Post("/admin/v1/revocations", {{"scope", "certificate"}, {"value", "ffff"}, {"reason", 1}});
  EXPECT_EQ(unknown.status, 404) << unknown.body;
}

TEST_F(AdminApiTest, RevokesADeviceAUserAKeyAndEverythingBefore) {
  HttpResponse r =
      Post("/admin/v1/revocations", {{"scope", "device"}, {"value", alice_phone_}, {"reason", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["affected"], 2);
  EXPECT_EQ(Device(alice_phone_).status, DeviceStatus::kBlocked);
  EXPECT_EQ(Device(alice_laptop_).status, DeviceStatus::kActive);

  // A user by the IdP subject UUID; without a reason (unspecified).
  r = Post("/admin/v1/revocations", {{"scope", "user"}, {"value", kAliceSub}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["affected"], 1);  // a3; a1 and a2 were revoked already
  EXPECT_EQ(Cert("a3").revocation_reason, std::optional<int>(0));
  EXPECT_EQ(Device(alice_laptop_).status, DeviceStatus::kBlocked);
  EXPECT_EQ(Cert("b1").status, CertificateStatus::kGood);

  r = Post("/admin/v1/revocations",
           {{"scope", "key"}, {"value", std::string(64, 'A')}, {"reason", "superseded"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["affected"], 1);  // b1 (a1 shares the key but is revoked already)
  EXPECT_EQ(Cert("b1").revocation_reason, std::optional<int>(4));

  r = Post("/admin/v1/revocations", {{"scope", "before"},
                                     {"value", FormatRfc3339(kT0 + seconds(7200))},
                                     {"reason", "cACompromise"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["affected"], 0);  // everything is revoked already

  const HttpResponse events = Get("/admin/v1/revocations");
  ASSERT_EQ(events.status, 200) << events.body;
  const Json items = Body(events)["items"];
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0]["scope"], "device");
  EXPECT_EQ(items[0]["value"], alice_phone_);
  EXPECT_EQ(items[0]["reason_name"], "keyCompromise");
  EXPECT_EQ(items[1]["value"], alice_);
  EXPECT_EQ(items[2]["value"], std::string(64, 'a'));
  EXPECT_EQ(items[3]["scope"], "before");
  EXPECT_EQ(items[3]["actor"], "admin:" + std::string(kAdminSub));
  EXPECT_EQ(Body(events)["next"], "");
}

TEST_F(AdminApiTest, MalformedRevocationRequestsGet400AndChangeNothing) {
  const std::string before = Snapshot();
  const std::vector<std::string> bodies = {
      "not json",
      "[1,2]",
      R"({"scope":"planet","value":"a1","reason":1})",
      R"({"scope":"certificate","value":"a1","reason":99})",
      R"({"scope":"certificate","value":"a1","reason":7})",
      R"({"scope":"certificate","value":"a1","reason":"bogus"})",
      R"({"scope":"certificate","value":"a1","reason":"certificateHold"})",
      R"({"scope":"certificate","value":"a1","reason":6})",
      R"({"scope":"certificate","value":"a1","reason":true})",
      R"({"scope":"certificate","value":"a1","reasn":1})",
      R"({"scope":"certificate","reason":1})",
      R"({"scope":"certificate","value":"","reason":1})",
      R"({"scope":"certificate","value":"xyz","reason":1})",
      R"({"scope":"key","value":"abcd","reason":1})",
      R"({"scope":"before","value":"yesterday","reason":1})",
      R"({"scope":"certificate","value":"a1","comment":5})",
      R"({"scope":"certificate","value":"a1","value":"a2"})",
  };
  for (const auto& body : bodies) {
    SCOPED_TRACE(body);
    const HttpResponse r = Call("POST", "/admin/v1/revocations", "admin", body);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(Body(r)["type"], "urn:ietf:params:acme:error:malformed");
  }
  const HttpResponse empty = Call("POST", "/admin/v1/revocations", "admin");
  EXPECT_EQ(empty.status, 400);
  const HttpResponse form =
      Call("POST", "/admin/v1/revocations", "admin", R"({"scope":"certificate","value":"a1"})",
           "application/x-www-form-urlencoded");
  EXPECT_EQ(form.status, 415);
  EXPECT_EQ(Snapshot(), before);
}

// ---- listings ---------------------------------------------------------------------------------

TEST_F(AdminApiTest, ListsCertificatesWithFiltersAndPages) {
  HttpResponse r = Get("/admin/v1/certificates");
  ASSERT_EQ(r.status, 200) << r.body;
  Json items = Body(r)["items"];
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0]["serial"], "a1");
  EXPECT_EQ(items[0]["user_id"], alice_);
  EXPECT_EQ(items[0]["device_id"], alice_phone_);
  EXPECT_EQ(items[0]["status"], "good");
  EXPECT_EQ(items[0]["not_before"], FormatRfc3339(kT0));
  EXPECT_EQ(items[0]["revoked_at"], nullptr);
  EXPECT_EQ(items[0]["reason"], nullptr);

  // Paging: 3 pages of at most 2, following "next".
  std::vector<std::string> serials;
  std::string cursor;
  int pages = 0;
  do {
    r = Get("/admin/v1/certificates?limit=2" + (cursor.empty() ? "" : "&cursor=" + Encode(cursor)));
    ASSERT_EQ(r.status, 200) << r.body;
    const Json page = Body(r);
    for (const auto& c : page["items"]) serials.push_back(c["serial"]);
    cursor = Body(r)["next"];
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(serials, (std::vector<std::string>{"a1", "a2", "a3", "b1"}));
  EXPECT_EQ(pages, 2);

  auto serials_of = [&](const std::string& query) {
    const HttpResponse resp = Get("/admin/v1/certificates?" + query);
    EXPECT_EQ(resp.status, 200) << query << ": " << resp.body;
    std::vector<std::string> out;
    const Json page = Body(resp);
    for (const auto& c : page["items"]) out.push_back(c["serial"]);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(serials_of("user=" + alice_), (V{"a1", "a2", "a3"}));
  EXPECT_EQ(serials_of("user=" + std::string(kBobSub)), (V{"b1"}));
  EXPECT_EQ(serials_of("device=" + Encode(alice_phone_)), (V{"a1", "a2"}));
  EXPECT_EQ(serials_of("spki=" + std::string(64, 'a')), (V{"a1", "b1"}));
  EXPECT_EQ(serials_of("issued_before=" + Encode(FormatRfc3339(kT0 + seconds(7200)))),
            (V{"a1", "a2"}));
  EXPECT_EQ(serials_of("user=" + alice_ + "&spki=" + std::string(64, 'b')), (V{"a2", "a3"}));
  ASSERT_EQ(Post("/admin/v1/revocations", {{"scope", "certificate"}, {"value", "a2"}}).status, 200);
  EXPECT_EQ(serials_of("status=revoked"), (V{"a2"}));
  EXPECT_EQ(serials_of("status=good&user=" + alice_), (V{"a1", "a3"}));

  const HttpResponse one = Get("/admin/v1/certificates/A2");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(Body(one)["serial"], "a2");
  EXPECT_EQ(Body(one)["status"], "revoked");
  EXPECT_EQ(Body(one)["reason"], 0);
  EXPECT_EQ(Body(one)["reason_name"], "unspecified");
  EXPECT_EQ(Body(one)["revoked_at"], FormatRfc3339(clock_.Now()));
  EXPECT_NE(Body(one)["chain_pem"].get<std::string>().find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_EQ(Get("/admin/v1/certificates/ffff").status, 404);
  EXPECT_EQ(Get("/admin/v1/certificates/not-hex").status, 400);

  for (const char* bad :
       {"limit=0", "limit=1001", "limit=abc", "limit=", "cursor=garbage", "colour=red",
        "status=lost", "issued_before=now", "spki=xyz", "user=a&user=b", "device=%zz"}) {
    SCOPED_TRACE(bad);
    const HttpResponse resp = Get(std::string("/admin/v1/certificates?") + bad);
    if (std::string_view(bad) == "limit=") {
      EXPECT_EQ(resp.status, 200);  // an empty value is no value
      continue;
    }
    EXPECT_EQ(resp.status, 400) << resp.body;
    EXPECT_EQ(Body(resp)["type"], "urn:ietf:params:acme:error:malformed");
  }
}

TEST_F(AdminApiTest, ListsAndShowsDevicesAndBlocksAndUnblocksThem) {
  HttpResponse r = Get("/admin/v1/devices");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Body(r)["items"].size(), 3u);

  r = Get("/admin/v1/devices?user=" + std::string(kAliceSub) + "&limit=1");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Body(r)["items"].size(), 1u);
  const std::string first = Body(r)["items"][0]["id"];
  const std::string next = Body(r)["next"];
  EXPECT_EQ(next, first);
  r = Get("/admin/v1/devices?user=" + alice_ + "&limit=1&cursor=" + Encode(next));
  ASSERT_EQ(Body(r)["items"].size(), 1u);
  EXPECT_NE(Body(r)["items"][0]["id"], first);
  EXPECT_EQ(Body(r)["items"][0]["user_id"], alice_);
  EXPECT_EQ(Body(r)["next"], "");

  // Block with a reason; the path carries the percent-encoded client id ("%21" form too).
  const std::string path = "/admin/v1/devices/" + Encode(alice_phone_);
  r = Post(path + "/block", {{"reason", "reported lost"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["status"], "blocked");
  EXPECT_EQ(Body(r)["blocked_reason"], "reported lost");
  EXPECT_EQ(Body(r)["certificates"].size(), 2u);
  EXPECT_EQ(AuditEvents().back().action, "device.block");
  EXPECT_EQ(AuditEvents().back().actor, "admin:" + std::string(kAdminSub));
  EXPECT_EQ(Cert("a1").status, CertificateStatus::kGood);  // blocking revokes nothing

  r = Get("/admin/v1/devices?status=blocked");
  ASSERT_EQ(Body(r)["items"].size(), 1u);
  EXPECT_EQ(Body(r)["items"][0]["id"], alice_phone_);
  r = Get("/admin/v1/devices?status=active&user=" + alice_);
  ASSERT_EQ(Body(r)["items"].size(), 1u);
  EXPECT_EQ(Body(r)["items"][0]["id"], alice_laptop_);

  std::string bang_encoded = alice_phone_;
  bang_encoded.replace(bang_encoded.find('!'), 1, "%21");
  r = Get("/admin/v1/devices/" + Encode(bang_encoded));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["id"], alice_phone_);
  EXPECT_EQ(Body(r)["status"], "blocked");

  r = Call("POST", path + "/unblock", "admin");  // no body
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["status"], "active");
  EXPECT_EQ(Body(r)["blocked_reason"], nullptr);
  EXPECT_EQ(AuditEvents().back().action, "device.unblock");

  EXPECT_EQ(Get("/admin/v1/devices/" + Encode(DeviceUri(kBobSub, "ff"))).status, 404);
  EXPECT_EQ(
      Post("/admin/v1/devices/" + Encode(DeviceUri(kBobSub, "ff")) + "/block", nullptr).status,
      404);
  EXPECT_EQ(Get("/admin/v1/devices/wireapp%3A%2F%2Fx%2").status, 400);
  EXPECT_EQ(Get("/admin/v1/devices/wireapp%zz").status, 400);
  EXPECT_EQ(Post(path + "/block", {{"why", "x"}}).status, 400);
  EXPECT_EQ(Get("/admin/v1/devices?status=stolen").status, 400);
}

TEST_F(AdminApiTest, ListsUsersAndDisablesThem) {
  HttpResponse r = Get("/admin/v1/users?limit=1");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Body(r)["items"].size(), 1u);
  const std::string next = Body(r)["next"];
  ASSERT_FALSE(next.empty());
  r = Get("/admin/v1/users?limit=1&cursor=" + Encode(next));
  ASSERT_EQ(Body(r)["items"].size(), 1u);
  EXPECT_EQ(Body(r)["next"], "");

  r = Get("/admin/v1/users/" + std::string(kAliceSub));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["id"], alice_);
  EXPECT_EQ(Body(r)["handle"], "alice");
  EXPECT_EQ(Body(r)["status"], "active");
  EXPECT_EQ(Body(r)["devices"].size(), 2u);
  EXPECT_EQ(Get("/admin/v1/users/" + bob_).status, 200);
  EXPECT_EQ(Get("/admin/v1/users/nobody").status, 404);

  r = Post("/admin/v1/users/" + bob_ + "/disable", {{"reason", "left the company"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["status"], "disabled");
  EXPECT_EQ(AuditEvents().back().action, "user.disable");
  r = Post("/admin/v1/users/" + bob_ + "/enable", nullptr);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["status"], "active");
}

TEST_F(AdminApiTest, ListsAndExportsTheAuditTrail) {
  ASSERT_EQ(Post("/admin/v1/revocations", {{"scope", "certificate"}, {"value", "a1"}}).status, 200);
  EXPECT_EQ(Get("/admin/v1/users", "alice").status, 403);
  EXPECT_EQ(Get("/admin/v1/users", "").status, 401);
  const int64_t total = Count(Table::kAuditEvents);
  ASSERT_EQ(total, 3);

  HttpResponse r = Get("/admin/v1/audit?limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  Json items = Body(r)["items"];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["action"], "certificate.revoke");
  EXPECT_TRUE(items[0]["details"].is_object());
  EXPECT_EQ(items[1]["action"], "admin.login");
  EXPECT_EQ(items[1]["actor"], "user:" + std::string(kAliceSub));
  r = Get("/admin/v1/audit?limit=2&cursor=" + Body(r)["next"].get<std::string>());
  ASSERT_EQ(Body(r)["items"].size(), 1u);
  EXPECT_EQ(Body(r)["items"][0]["actor"], "anonymous");

  r = Get("/admin/v1/audit/export");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("Content-Type"), "application/x-ndjson");
  std::istringstream lines(r.body);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    auto j = ParseJson(line);
    ASSERT_TRUE(j) << line;
    EXPECT_EQ((*j)["id"], n + 1);
    ++n;
  }
  EXPECT_EQ(n, total);
  EXPECT_EQ(AuditEvents().back().action, "audit.export");
}

// ---- self-service -----------------------------------------------------------------------------

TEST_F(AdminApiTest, UsersListAndRemoveOnlyTheirOwnDevices) {
  HttpResponse r = Get("/admin/v1/me/devices", "alice");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Body(r)["items"].size(), 2u);
  const Json mine = Body(r);
  for (const auto& d : mine["items"]) EXPECT_EQ(d["user_id"], alice_);
  EXPECT_EQ(Body(Get("/admin/v1/me/devices", "admin"))["items"].size(), 0u);
  EXPECT_EQ(Get("/admin/v1/me/devices", "").status, 401);
  EXPECT_EQ(Get("/admin/v1/me/devices", "not-a-uuid").status, 403);

  // Another user's device, and one that does not exist: the same 403, audited; nothing changes.
  const std::string before = Snapshot();
  for (const std::string& device : {bob_phone_, DeviceUri(kAliceSub, "ff")}) {
    SCOPED_TRACE(device);
    r = Call("POST", "/admin/v1/me/devices/" + Encode(device) + "/remove", "alice");
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(Body(r)["detail"], "device '" + device + "' is not one of your devices");
    const store::AuditEvent e = AuditEvents().back();
    EXPECT_EQ(e.action, "device.remove");
    EXPECT_EQ(e.outcome, "denied");
    EXPECT_EQ(e.actor, "user:" + std::string(kAliceSub));
    EXPECT_EQ(e.target, device);
  }
  EXPECT_EQ(Snapshot(), before);

  r = Call("POST", "/admin/v1/me/devices/" + Encode(alice_phone_) + "/remove", "alice");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["affected"], 2);
  EXPECT_EQ(Device(alice_phone_).status, DeviceStatus::kRemoved);
  EXPECT_EQ(Cert("a1").revocation_reason, std::optional<int>(5));  // cessationOfOperation
  EXPECT_EQ(Device(alice_laptop_).status, DeviceStatus::kActive);
  EXPECT_EQ(Device(bob_phone_).status, DeviceStatus::kActive);
  EXPECT_EQ(AuditEvents().back().actor, "user:" + std::string(kAliceSub));
  // Removing again is idempotent; a removed device cannot be unblocked.
  r = Call("POST", "/admin/v1/me/devices/" + Encode(alice_phone_) + "/remove", "alice");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["affected"], 0);
  EXPECT_EQ(Call("POST", "/admin/v1/devices/" + Encode(alice_phone_) + "/unblock", "admin").status,
            409);
}

TEST_F(AdminApiTest, UnknownRoutesAndMethods) {
  EXPECT_EQ(Get("/admin/v1/nothing").status, 404);
  EXPECT_EQ(Call("DELETE", "/admin/v1/devices", "admin").status, 405);
}

// ---- helpers ----------------------------------------------------------------------------------

TEST(AdminApiHelpersTest, PercentDecodeIsStrict) {
  EXPECT_EQ(PercentDecode("wireapp%3A%2F%2Fa%21b%40c"), "wireapp://a!b@c");
  EXPECT_EQ(PercentDecode("plain"), "plain");
  EXPECT_EQ(PercentDecode("%41%6a"), "Aj");
  for (const char* bad : {"%", "%4", "a%zz", "%g1", "abc%"}) {
    SCOPED_TRACE(bad);
    auto r = PercentDecode(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  }
}

TEST(AdminApiHelpersTest, CanonicalSerial) {
  EXPECT_EQ(CanonicalSerial("0A:1b:FF"), "a1bff");
  EXPECT_EQ(CanonicalSerial("00"), "0");
  EXPECT_EQ(CanonicalSerial("abc"), "abc");
  EXPECT_FALSE(CanonicalSerial(""));
  EXPECT_FALSE(CanonicalSerial("xyz"));
  EXPECT_FALSE(CanonicalSerial(std::string(41, 'a')));
  EXPECT_TRUE(CanonicalSerial("00" + std::string(40, 'a')));
}

}  // namespace
}  // namespace e2eid::server
