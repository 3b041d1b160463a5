// The identity flow in process: ACME engine + built-in device authority + the wire-oidc-01 and
// wire-dpop-01 validators, driven through the HTTP router exactly as a Wire client would drive
// them. The IdP is a double (FakeVerifier) that maps token strings to verified claims: the real
// token verification is oidc/verifier_test.cc's job and the end-to-end test's (tests/).
//
// Every refusal checks the problem type, that the detail names what failed, and that no
// certificate, device or user was stored.
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <map>
#include <mutex>
#include <set>

#include "acme/device_authority.h"
#include "acme/engine.h"
#include "acme/serial_registry.h"
#include "acme/wire.h"
#include "acme/wire_validators.h"
#include "ca/authority.h"
#include "ca/issuer.h"
#include "ca/x509.h"
#include "core/encoding.h"
#include "core/log.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/random.h"
#include "server/acme_routes.h"
#include "server/router.h"
#include "store/sqlite_store.h"
#include "tests/test_util.h"

namespace e2eid::acme {
namespace {

using crypto::PrivateKey;
using store::Table;

constexpr std::string_view kBase = "https://ca.test";
constexpr std::string_view kDomain = "wire.example.com";
constexpr std::string_view kIssuer = "https://idp.test/realms/wire";
constexpr std::string_view kAliceUuid = "4a8fda1e-3e2d-4b5a-9c6e-7f1d2c3b4a59";
constexpr std::string_view kBobUuid = "0c2b7a4e-1111-4222-8333-944455556666";

std::string Url(std::string_view path) { return std::string(kBase) + std::string(path); }
std::string PathOf(const std::string& url) { return url.substr(kBase.size()); }

Json Body(const HttpResponse& r) {
  auto j = ParseJson(r.body);
  return j ? *j : Json();
}

// The IdP double: a token is valid when registered; its claims are returned as verified.
class FakeVerifier final : public oidc::TokenVerifier {
 public:
  Result<Json> VerifyIdToken(std::string_view jwt, const oidc::VerifyOptions&) override {
    return Lookup(jwt, "id token");
  }
  Result<Json> VerifyAccessToken(std::string_view jwt, const oidc::VerifyOptions& o) override {
    auto claims = Lookup(jwt, "access token");
    if (claims && o.max_age && claims->contains("iat") &&
        now_ - claims->at("iat").get<int64_t>() > o.max_age->count()) {
      return Fail(Error::Unauthorized("access token: claim \"iat\" is too old"));
    }
    return claims;
  }
  const std::string& issuer() const override { return issuer_; }
  const std::string& client_id() const override { return client_; }

  std::string Register(Json claims) {
    std::lock_guard lock(mu_);
    const std::string token = "token-" + std::to_string(tokens_.size());
    tokens_[token] = std::move(claims);
    return token;
  }
  void set_now(int64_t now) { now_ = now; }

 private:
  Result<Json> Lookup(std::string_view jwt, std::string_view what) {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(std::string(jwt));
    if (it == tokens_.end()) {
      return Fail(Error::Unauthorized(std::string(what) + ": the signature does not verify"));
    }
    return it->second;
  }
  std::mutex mu_;
  std::map<std::string, Json> tokens_;
  std::string issuer_ = std::string(kIssuer);
  std::string client_ = "e2eid-device";
  int64_t now_ = 0;
};

PrivateKey NewKey(crypto::KeyType type = crypto::KeyType::kEd25519) {
  auto k = PrivateKey::Generate(type);
  EXPECT_TRUE(k);
  return std::move(*k);
}

Json PublicJwk(const PrivateKey& key) {
  auto pub = key.public_key();
  auto jwk = crypto::PublicKeyToJwk(*pub);
  return *jwk;
}

std::string Thumbprint(const PrivateKey& key) { return *crypto::JwkThumbprint(*key.public_key()); }

// A device CSR: O = domain, displayName = name, SAN = `uris`.
Bytes DeviceCsr(const PrivateKey& key, const std::string& name, const std::string& uris) {
  crypto::X509ReqPtr req(X509_REQ_new());
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  const std::string domain(kDomain);
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(domain.c_str()), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "2.16.840.1.113730.3.1.241", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  crypto::X509ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
  sk_X509_EXTENSION_push(exts.get(),
                         X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, uris.c_str()));
  X509_REQ_add_extensions(req.get(), exts.get());
  X509_REQ_set_pubkey(req.get(), key.get());
  EXPECT_GT(X509_REQ_sign(req.get(), key.get(), nullptr), 0);
  const int len = i2d_X509_REQ(req.get(), nullptr);
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  i2d_X509_REQ(req.get(), &p);
  return out;
}

struct Person {
  std::string uuid;
  std::string username;
  std::string name;
};

// One device of a person and its ACME state.
struct Device {
  Person person;
  std::string device_id;
  PrivateKey account_key;
  std::string kid;
  std::string order_path;
  Json order;
  std::string oidc_path, oidc_token, dpop_path, dpop_token, dpop_target;

  std::string UserId() const { return *WireUserIdFromUuid(person.uuid); }
  std::string ClientId() const {
    return "wireapp://" + UserId() + "!" + device_id + "@" + std::string(kDomain);
  }
  std::string Handle() const { return WireHandleUri(person.username, kDomain); }
};

class WireFlowTest : public ::testing::Test {
 public:  // the case tables below call the helpers through a reference
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
    serials_ = std::make_unique<StoreSerialRegistry>(*store_, clock_);
    issuer_ = std::make_unique<ca::Issuer>(
        *ca_, ca::ValidityPolicy{},
        ca::IssuerUrls{.crl_url = Url("/crl"), .ocsp_url = Url("/ocsp"), .ca_issuers_url = ""},
        *serials_, clock_, random_);
    verifier_.set_now(ToUnix(clock_.Now()));
    authority_key_ = std::make_unique<PrivateKey>(NewKey());
    DeviceAuthorityOptions da;
    da.base_url = std::string(kBase);
    da.domain = std::string(kDomain);
    da.max_devices_per_user = 2;
    authority_ =
        std::make_unique<DeviceAuthority>(da, DeviceAuthority::Deps{.store = *store_,
                                                                    .verifier = verifier_,
                                                                    .signing_key = *authority_key_,
                                                                    .clock = clock_,
                                                                    .random = random_});
    oidc_ = std::make_unique<WireOidcValidator>(verifier_,
                                                WireOidcOptions{.domain = std::string(kDomain)});
    std::vector<crypto::PublicKey> keys;
    keys.push_back(*authority_key_->public_key());
    dpop_ = std::make_unique<WireDpopValidator>(
        std::move(keys), WireDpopOptions{.domain = std::string(kDomain)}, clock_);
    EngineOptions options;
    options.base_url = std::string(kBase);
    options.wire = EngineOptions::Wire{.domain = std::string(kDomain),
                                       .oidc_target = oidc_->Target(),
                                       .dpop_target_template = authority_->TargetTemplate()};
    engine_ = std::make_unique<Engine>(
        options,
        Engine::Deps{.store = *store_,
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
  }
  void TearDown() override { SetLogLevel(LogLevel::kInfo); }

  // ---- transport ----
  HttpResponse Send(std::string method, const std::string& path, std::string body = "",
                    HttpHeaders headers = {}) {
    HttpRequest r;
    r.method = std::move(method);
    r.target = r.path = path;
    r.headers = std::move(headers);
    r.body = std::move(body);
    r.remote_address = "127.0.0.1";
    r.request_id = "test";
    return router_.Handle(r);
  }
  std::string Nonce() {
    return Send("HEAD", std::string(kNewNoncePath)).Header("Replay-Nonce").value_or("");
  }
  HttpResponse Post(const PrivateKey& key, const std::string& path, std::string_view payload,
                    const std::string& kid = "") {
    Json header = {{"url", Url(path)}, {"nonce", Nonce()}, {"typ", "JWT"}};
    if (kid.empty()) {
      header["jwk"] = PublicJwk(key);
    } else {
      header["kid"] = kid;
    }
    auto jws = crypto::SignFlattenedJws(key, crypto::DefaultJwsAlg(key.type()), header, payload);
    return Send("POST", path, *jws, {{"Content-Type", "application/jose+json"}});
  }

  // ---- the flow, step by step ----
  Device NewDevice(const Person& person, std::string device_id = "7f39900830740008") {
    Device d{person, std::move(device_id), NewKey(), "", "", {}, "", "", "", "", ""};
    HttpResponse r =
        Post(d.account_key, std::string(kNewAccountPath),
             R"({"termsOfServiceAgreed":true,"contact":["anonymous@anonymous.invalid"]})");
    EXPECT_EQ(r.status, 201) << r.body;
    d.kid = r.Header("Location").value_or("");
    return d;
  }

  static Json Identifiers(const Device& d, const std::string& device_name = "") {
    const std::string name = device_name.empty() ? d.person.name : device_name;
    Json user = {{"name", d.person.name}, {"domain", kDomain}, {"handle", d.Handle()}};
    Json device = {
        {"client-id", d.ClientId()}, {"handle", d.Handle()}, {"name", name}, {"domain", kDomain}};
    return Json::array({{{"type", "wireapp-device"}, {"value", DumpJson(device)}},
                        {{"type", "wireapp-user"}, {"value", DumpJson(user)}}});
  }

  HttpResponse NewOrder(Device& d, const Json& identifiers) {
    HttpResponse r = Post(d.account_key, std::string(kNewOrderPath),
                          DumpJson(Json{{"identifiers", identifiers}}), d.kid);
    if (r.status != 201) return r;
    d.order_path = PathOf(r.Header("Location").value_or(""));
    d.order = Body(r);
    for (const auto& authz_url : d.order["authorizations"]) {
      HttpResponse a = Post(d.account_key, PathOf(authz_url), "", d.kid);
      EXPECT_EQ(a.status, 200) << a.body;
      const Json authz = Body(a);
      EXPECT_EQ(authz["challenges"].size(), 1u) << a.body;
      const Json& ch = authz["challenges"][0];
      EXPECT_TRUE(ch.contains("target")) << a.body;
      if (ch["type"] == "wire-oidc-01") {
        d.oidc_path = PathOf(ch["url"]);
        d.oidc_token = ch["token"];
        EXPECT_EQ(ch["target"], std::string(kIssuer) + "?client_id=e2eid-device");
      } else {
        EXPECT_EQ(ch["type"], "wire-dpop-01");
        d.dpop_path = PathOf(ch["url"]);
        d.dpop_token = ch["token"];
        d.dpop_target = ch["target"];
      }
    }
    return r;
  }

  // The user's IdP access token (Keycloak-like claims).
  std::string UserAccessToken(const Person& p, Json extra = Json::object()) {
    Json claims = {{"iss", kIssuer},        {"sub", p.uuid},
                   {"azp", "e2eid-device"}, {"preferred_username", p.username},
                   {"name", p.name},        {"iat", ToUnix(clock_.Now())}};
    claims.update(extra);
    return verifier_.Register(std::move(claims));
  }

  // The DPoP proof a Wire client makes for the device authority.
  std::string Proof(const Device& d, const PrivateKey& signer, const std::string& nonce,
                    Json overrides = Json::object()) {
    const int64_t now = ToUnix(clock_.Now());
    Json claims = {{"jti", *crypto::RandomToken(random_, 12)},
                   {"iat", now},
                   {"nbf", now},
                   {"exp", now + 300},
                   {"sub", d.ClientId()},
                   {"aud", Url(d.dpop_path)},
                   {"nonce", nonce},
                   {"htm", "POST"},
                   {"htu", d.dpop_target},
                   {"chal", d.dpop_token},
                   {"handle", d.Handle()},
                   {"team", "wire"},
                   {"name", d.person.name}};
    claims.update(overrides);
    Json header = {{"typ", "dpop+jwt"}, {"jwk", PublicJwk(signer)}};
    return *crypto::SignCompactJws(signer, crypto::DefaultJwsAlg(signer.type()), header,
                                   DumpJson(claims));
  }

  std::string AuthorityNonce(const Device& d) {
    HttpResponse r = Send("GET", "/clients/" + d.device_id + "/nonce");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("Replay-Nonce").value_or(""), r.body);
    return r.body;
  }

  HttpResponse AccessToken(const Device& d, const std::string& proof, const std::string& bearer) {
    return Send("POST", "/clients/" + d.device_id + "/access-token", "",
                {{"Authorization", "Bearer " + bearer}, {"DPoP", proof}});
  }

  // Device leg: nonce, proof, device access token; returns the token (or "" on failure).
  std::string DeviceToken(const Device& d) {
    const std::string nonce = AuthorityNonce(d);
    HttpResponse r = AccessToken(d, Proof(d, d.account_key, nonce), UserAccessToken(d.person));
    EXPECT_EQ(r.status, 200) << r.body;
    const Json body = Body(r);
    EXPECT_EQ(body["type"], "DPoP");
    return body.value("token", "");
  }

  HttpResponse PostChallenge(const Device& d, const std::string& path, const Json& payload) {
    return Post(d.account_key, path, DumpJson(payload), d.kid);
  }

  std::string KeyAuth(const Device& d) { return d.oidc_token + "." + Thumbprint(d.account_key); }

  std::string IdToken(const Device& d, Json overrides = Json::object()) {
    Json claims = {{"iss", kIssuer},
                   {"sub", d.person.uuid},
                   {"aud", "e2eid-device"},
                   {"name", d.person.name},
                   {"preferred_username", d.person.username},
                   {"keyauth", KeyAuth(d)},
                   {"acme_aud", Url(d.oidc_path)}};
    claims.update(overrides);
    return verifier_.Register(std::move(claims));
  }

  HttpResponse Finalize(const Device& d, const PrivateKey& cert_key) {
    const std::string uris = "URI:" + d.ClientId() + ",URI:" + d.Handle();
    const Bytes csr = DeviceCsr(cert_key, d.person.name, uris);
    return Post(d.account_key, PathOf(d.order["finalize"]),
                DumpJson(Json{{"csr", Base64UrlEncode(csr)}}), d.kid);
  }

  // The whole flow; returns the PEM chain.
  std::string Enrol(Device& d) {
    EXPECT_EQ(NewOrder(d, Identifiers(d)).status, 201);
    HttpResponse dr = PostChallenge(d, d.dpop_path, {{"access_token", DeviceToken(d)}});
    EXPECT_EQ(dr.status, 200) << dr.body;
    EXPECT_EQ(Body(dr)["status"], "valid") << dr.body;
    HttpResponse orr = PostChallenge(d, d.oidc_path, {{"id_token", IdToken(d)}});
    EXPECT_EQ(orr.status, 200) << orr.body;
    EXPECT_EQ(Body(orr)["status"], "valid") << orr.body;
    PrivateKey cert_key = NewKey();
    HttpResponse f = Finalize(d, cert_key);
    EXPECT_EQ(f.status, 200) << f.body;
    const Json order = Body(f);
    EXPECT_EQ(order["status"], "valid") << f.body;
    HttpResponse c = Post(d.account_key, PathOf(order.value("certificate", "")), "", d.kid);
    EXPECT_EQ(c.status, 200) << c.body;
    return c.body;
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
  struct Counts {
    int64_t certificates, devices, users;
    bool operator==(const Counts&) const = default;
  };
  Counts Snapshot() {
    return {Count(Table::kCertificates), Count(Table::kDevices), Count(Table::kUsers)};
  }

  static void ExpectProblem(const HttpResponse& r, std::string_view type, std::string_view needle) {
    EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json") << r.body;
    const Json doc = Body(r);
    EXPECT_EQ(doc.value("type", ""), "urn:ietf:params:acme:error:" + std::string(type)) << r.body;
    EXPECT_NE(doc.value("detail", "").find(needle), std::string::npos)
        << "detail should mention '" << needle << "': " << r.body;
  }

  e2eid::testing::TempDir tmp_;
  FakeClock clock_{FromUnix(1'900'000'000)};
  crypto::SecureRandom random_;
  FakeVerifier verifier_;
  std::unique_ptr<ca::CertificateAuthority> ca_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<StoreSerialRegistry> serials_;
  std::unique_ptr<ca::Issuer> issuer_;
  std::unique_ptr<PrivateKey> authority_key_;
  std::unique_ptr<DeviceAuthority> authority_;
  std::unique_ptr<WireOidcValidator> oidc_;
  std::unique_ptr<WireDpopValidator> dpop_;
  std::unique_ptr<Engine> engine_;
  server::Router router_;

  const Person alice_{std::string(kAliceUuid), "alice_wire", "Alice Smith"};
  const Person bob_{std::string(kBobUuid), "bob", "Bob Jones"};
};

TEST_F(WireFlowTest, EnrolsADeviceWithWireShapedCertificate) {
  Device d = NewDevice(alice_);
  const std::string chain = Enrol(d);
  ASSERT_NE(chain.find("BEGIN CERTIFICATE"), std::string::npos);
  auto leaf = ca::CertificateFromPem(chain);
  ASSERT_TRUE(leaf) << leaf.error().ToString();
  // Subject CN = name, O = domain; SAN = the two URIs; EKU clientAuth.
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(leaf->get()), buf, sizeof buf);
  EXPECT_NE(std::string(buf).find("O=wire.example.com"), std::string::npos) << buf;
  EXPECT_NE(std::string(buf).find("CN=Alice Smith"), std::string::npos) << buf;
  crypto::GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(leaf->get(), NID_subject_alt_name, nullptr, nullptr)));
  ASSERT_TRUE(sans);
  std::set<std::string> uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
    ASSERT_EQ(gn->type, GEN_URI);
    uris.insert(std::string(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier)),
        ASN1_STRING_length(gn->d.uniformResourceIdentifier)));
  }
  EXPECT_EQ(uris, (std::set<std::string>{d.ClientId(), d.Handle()}));
  EXPECT_EQ(X509_get_extended_key_usage(leaf->get()), static_cast<uint32_t>(XKU_SSL_CLIENT));

  // The registry knows the user and the device; the certificate is theirs; claims were kept.
  ASSERT_TRUE(store_->ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(device, tx.GetDevice(d.ClientId()));
    EXPECT_EQ(device.user_id, d.UserId());
    EXPECT_EQ(device.handle, "alice_wire");
    E2EID_TRY(user, tx.GetUser(d.UserId()));
    EXPECT_EQ(user.display_name, "Alice Smith");
    E2EID_TRY(certs, tx.ListCertificatesByDevice(d.ClientId(), {}));
    EXPECT_EQ(certs.items.size(), 1u);
    E2EID_TRY(order, tx.GetOrder(d.order_path.substr(kOrderPathPrefix.size())));
    EXPECT_EQ(order.device_id, d.ClientId());
    E2EID_TRY(ch, tx.GetChallenge(d.oidc_path.substr(kChallengePathPrefix.size())));
    EXPECT_TRUE(ch.validation_claims.has_value());
    EXPECT_NE(ch.validation_claims->find(std::string(kAliceUuid)), std::string::npos);
    return Ok();
  }));
}

// The answers have the shapes of Wire's published captured session (wireapp/rusty-jwt-tools
// e2e-identity/README.md, summarised in shared/reference/wire-e2ei-protocol.md), so a Wire client
// parses them: the order, one challenge per authorization with `target`, the DPoP header
// base64-encoded once more, `Link: rel="up"` on challenge answers, a PEM chain of leaf,
// intermediate and root, and the leaf's template.
TEST_F(WireFlowTest, AnswersHaveTheShapesOfWiresCapturedSession) {
  Device d = NewDevice(alice_);
  HttpResponse order = NewOrder(d, Identifiers(d));
  ASSERT_EQ(order.status, 201) << order.body;
  const Json o = Body(order);
  std::set<std::string> order_keys;
  for (const auto& [k, v] : o.items()) order_keys.insert(k);
  EXPECT_EQ(order_keys, (std::set<std::string>{"status", "expires", "identifiers", "authorizations",
                                               "finalize"}));
  EXPECT_EQ(o["status"], "pending");
  ASSERT_EQ(o["identifiers"].size(), 2u);
  for (const auto& id : o["identifiers"]) {
    ASSERT_TRUE(id["value"].is_string());  // a JSON object serialised into a string
    auto value = ParseJson(id["value"].get<std::string>(), "identifier value");
    ASSERT_TRUE(value && value->is_object());
    EXPECT_EQ((*value)["domain"], kDomain);
    EXPECT_EQ((*value).contains("client-id"), id["type"] == "wireapp-device");
  }
  ASSERT_EQ(o["authorizations"].size(), 2u);
  std::set<std::string> pairs;
  for (const auto& url : o["authorizations"]) {
    const Json a = Body(Post(d.account_key, PathOf(url), "", d.kid));
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"identifier", "status", "expires", "challenges"}));
    ASSERT_EQ(a["challenges"].size(), 1u);
    const Json& ch = a["challenges"][0];
    std::set<std::string> ch_keys;
    for (const auto& [k, v] : ch.items()) ch_keys.insert(k);
    EXPECT_EQ(ch_keys, (std::set<std::string>{"type", "url", "status", "token", "target"}));
    pairs.insert(a["identifier"]["type"].get<std::string>() + "/" + ch["type"].get<std::string>());
  }
  EXPECT_EQ(pairs,
            (std::set<std::string>{"wireapp-user/wire-oidc-01", "wireapp-device/wire-dpop-01"}));
  EXPECT_TRUE(d.dpop_target.ends_with("/clients/" + d.device_id + "/access-token"))
      << d.dpop_target;

  // Device leg with the DPoP header base64-encoded once more, as Wire clients send it.
  const std::string nonce = AuthorityNonce(d);
  const std::string proof = Proof(d, d.account_key, nonce);
  HttpResponse at = AccessToken(d, Base64Encode(AsBytes(proof)), UserAccessToken(d.person));
  ASSERT_EQ(at.status, 200) << at.body;
  const Json token = Body(at);
  std::set<std::string> token_keys;
  for (const auto& [k, v] : token.items()) token_keys.insert(k);
  EXPECT_EQ(token_keys, (std::set<std::string>{"expires_in", "token", "type"}));
  HttpResponse dr = PostChallenge(d, d.dpop_path, {{"access_token", token["token"]}});
  ASSERT_EQ(dr.status, 200) << dr.body;
  EXPECT_EQ(Body(dr)["status"], "valid");
  bool up = false;
  for (const auto& [name, value] : dr.headers) {
    if (name == "Link" && value.ends_with(">;rel=\"up\"")) up = true;
  }
  EXPECT_TRUE(up) << "challenge answers carry Link rel=\"up\"";
  HttpResponse orr = PostChallenge(d, d.oidc_path, {{"id_token", IdToken(d)}});
  ASSERT_EQ(orr.status, 200) << orr.body;

  PrivateKey cert_key = NewKey();
  HttpResponse f = Finalize(d, cert_key);
  ASSERT_EQ(f.status, 200) << f.body;
  HttpResponse c = Post(d.account_key, PathOf(Body(f).value("certificate", "")), "", d.kid);
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.Header("Content-Type").value_or(""), "application/pem-certificate-chain");
  size_t certs = 0;
  for (size_t at_pos = c.body.find("-----BEGIN CERTIFICATE-----"); at_pos != std::string::npos;
       at_pos = c.body.find("-----BEGIN CERTIFICATE-----", at_pos + 1)) {
    ++certs;
  }
  EXPECT_EQ(certs, 3u) << "leaf, intermediate and root, as in the captured session";

  // The leaf template: keyUsage digitalSignature (critical), SKI, AKI, CRL distribution point,
  // OCSP in AIA, not a CA.
  auto leaf = ca::CertificateFromPem(c.body);
  ASSERT_TRUE(leaf) << leaf.error().ToString();
  const int ku_at = X509_get_ext_by_NID(leaf->get(), NID_key_usage, -1);
  ASSERT_GE(ku_at, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(leaf->get(), ku_at)), 1);
  EXPECT_EQ(X509_get_key_usage(leaf->get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_NE(X509_get0_subject_key_id(leaf->get()), nullptr);
  EXPECT_NE(X509_get0_authority_key_id(leaf->get()), nullptr);
  EXPECT_GE(X509_get_ext_by_NID(leaf->get(), NID_crl_distribution_points, -1), 0);
  EXPECT_GE(X509_get_ext_by_NID(leaf->get(), NID_info_access, -1), 0);
  EXPECT_EQ(X509_check_ca(leaf->get()), 0);
}

// The registry's key of a device is that of its last certificate: a device-authority token request
// with another account key (which may never lead to a certificate) does not change it.
TEST_F(WireFlowTest, TokenRequestsDoNotChangeAnEnrolledDevicesKey) {
  Device d = NewDevice(alice_);
  Enrol(d);
  auto key_of_device = [&] {
    std::string kt;
    EXPECT_TRUE(store_->ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(device, tx.GetDevice(d.ClientId()));
      kt = device.key_thumbprint;
      return Ok();
    }));
    return kt;
  };
  const std::string enrolled = key_of_device();
  ASSERT_FALSE(enrolled.empty());
  EXPECT_NE(enrolled, Thumbprint(d.account_key));  // the certificate's key, not the account's

  Device other = NewDevice(alice_);  // same person and device id, another account key
  ASSERT_EQ(NewOrder(other, Identifiers(other)).status, 201);
  EXPECT_FALSE(DeviceToken(other).empty());
  EXPECT_EQ(key_of_device(), enrolled);
}

TEST_F(WireFlowTest, SilentRenewalWithDpopBoundAccessToken) {
  Device d = NewDevice(alice_);
  ASSERT_EQ(NewOrder(d, Identifiers(d)).status, 201);
  ASSERT_EQ(PostChallenge(d, d.dpop_path, {{"access_token", DeviceToken(d)}}).status, 200);
  // Not bound: refused, naming cnf.jkt.
  const Counts before = Snapshot();
  HttpResponse unbound = PostChallenge(d, d.oidc_path, {{"access_token", UserAccessToken(alice_)}});
  ExpectProblem(unbound, "unauthorized", "cnf.jkt");
  EXPECT_EQ(Snapshot(), before);
  // Bound to the account key: accepted (new order, as the failed one is invalid now).
  Device again = NewDevice(alice_);
  ASSERT_EQ(NewOrder(again, Identifiers(again)).status, 201);
  ASSERT_EQ(PostChallenge(again, again.dpop_path, {{"access_token", DeviceToken(again)}}).status,
            200);
  const std::string bound =
      UserAccessToken(alice_, {{"cnf", {{"jkt", Thumbprint(again.account_key)}}}});
  HttpResponse ok = PostChallenge(again, again.oidc_path, {{"access_token", bound}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Body(ok)["status"], "valid");
  // A stale token (the IdP did not just refresh it) is refused.
  Device late = NewDevice(alice_, "abc");
  ASSERT_EQ(NewOrder(late, Identifiers(late)).status, 201);
  ASSERT_EQ(PostChallenge(late, late.dpop_path, {{"access_token", DeviceToken(late)}}).status, 200);
  const std::string old = UserAccessToken(alice_, {{"cnf", {{"jkt", Thumbprint(late.account_key)}}},
                                                   {"iat", ToUnix(clock_.Now()) - 3600}});
  ExpectProblem(PostChallenge(late, late.oidc_path, {{"access_token", old}}), "unauthorized",
                "iat");
}

// The negative cases of the issue, on the user leg (wire-oidc-01).
TEST_F(WireFlowTest, OidcChallengeRefusals) {
  struct Case {
    std::string name;
    std::function<Json(WireFlowTest&, Device&)> payload;
    std::string type;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"id token of another user",
       [](WireFlowTest& t, Device& d) {
         return Json{
             {"id_token", t.IdToken(d, {{"preferred_username", "bob"}, {"name", "Bob Jones"}})}};
       },
       "unauthorized", "\"name\""},
      {"handle of another user",
       [](WireFlowTest& t, Device& d) {
         return Json{{"id_token", t.IdToken(d, {{"preferred_username", "mallory"}})}};
       },
       "unauthorized", "preferred_username"},
      {"keyauth for another account key",
       [](WireFlowTest& t, Device& d) {
         const std::string other = d.oidc_token + "." + Thumbprint(NewKey());
         return Json{{"id_token", t.IdToken(d, {{"keyauth", other}})}};
       },
       "unauthorized", "keyauth"},
      {"keyauth missing",
       [](WireFlowTest& t, Device& d) {
         Json c = {{"iss", kIssuer},
                   {"sub", d.person.uuid},
                   {"name", d.person.name},
                   {"preferred_username", d.person.username},
                   {"acme_aud", Url(d.oidc_path)}};
         return Json{{"id_token", t.verifier_.Register(c)}};
       },
       "unauthorized", "keyauth"},
      {"acme_aud of another challenge",
       [](WireFlowTest& t, Device& d) {
         return Json{{"id_token", t.IdToken(d, {{"acme_aud", Url("/acme/chall/other")}})}};
       },
       "unauthorized", "acme_aud"},
      {"a token the IdP did not sign (expired, other issuer, wrong aud all fail here)",
       [](WireFlowTest&, Device&) {
         return Json{{"id_token", "eyJhbGciOi.forged.token"}};
       },
       "unauthorized", "signature"},
      {"no token", [](WireFlowTest&, Device&) { return Json::object(); }, "malformed",
       "'id_token' or 'access_token'"},
      {"both tokens",
       [](WireFlowTest&, Device&) {
         return Json{{"id_token", "a"}, {"access_token", "b"}};
       },
       "malformed", "exactly one"},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Device d = NewDevice(alice_, "a" + std::to_string(++n));
    ASSERT_EQ(NewOrder(d, Identifiers(d)).status, 201);
    const Counts before = Snapshot();
    HttpResponse r = PostChallenge(d, d.oidc_path, c.payload(*this, d));
    ExpectProblem(r, c.type, c.needle);
    EXPECT_EQ(Snapshot(), before);
    // The order cannot be finalized.
    EXPECT_EQ(Finalize(d, NewKey()).status, 403);
    EXPECT_EQ(Snapshot(), before);
  }
}

TEST_F(WireFlowTest, DeviceAuthorityRefusals) {
  // Replayed proof: the authority's nonce is single use.
  Device d = NewDevice(alice_);
  ASSERT_EQ(NewOrder(d, Identifiers(d)).status, 201);
  const std::string proof = Proof(d, d.account_key, AuthorityNonce(d));
  ASSERT_EQ(AccessToken(d, proof, UserAccessToken(alice_)).status, 200);
  const Counts before = Snapshot();
  ExpectProblem(AccessToken(d, proof, UserAccessToken(alice_)), "badNonce", "already used");

  // Device of another user: Bob's token, Alice's client-id.
  ExpectProblem(AccessToken(d, Proof(d, d.account_key, AuthorityNonce(d)), UserAccessToken(bob_)),
                "unauthorized", "another user's device");
  // No token / a token the IdP did not issue: 401.
  HttpResponse none = Send("POST", "/clients/" + d.device_id + "/access-token", "",
                           {{"DPoP", Proof(d, d.account_key, AuthorityNonce(d))}});
  EXPECT_EQ(none.status, 401);
  HttpResponse forged = AccessToken(d, Proof(d, d.account_key, AuthorityNonce(d)), "forged");
  EXPECT_EQ(forged.status, 401);
  // Proof for another URL, a proof with a bad signature, a proof without nonce.
  ExpectProblem(AccessToken(d, Proof(d, d.account_key, AuthorityNonce(d), {{"htu", "https://x/"}}),
                            UserAccessToken(alice_)),
                "unauthorized", "htu");
  std::string tampered = Proof(d, d.account_key, AuthorityNonce(d));
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(AccessToken(d, tampered, UserAccessToken(alice_)).status, 401);
  ExpectProblem(AccessToken(d, Proof(d, d.account_key, "da.unknown"), UserAccessToken(alice_)),
                "badNonce", "nonce");
  // A handle that is not the token's user.
  ExpectProblem(AccessToken(d,
                            Proof(d, d.account_key, AuthorityNonce(d),
                                  {{"handle", "wireapp://%40mallory@wire.example.com"}}),
                            UserAccessToken(alice_)),
                "unauthorized", "handle");
  EXPECT_EQ(Snapshot(), before);
  // Every refusal is in the audit trail.
  int64_t refusals = 0;
  ASSERT_TRUE(store_->ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(n, tx.CountRows(Table::kAuditEvents));
    refusals = n;
    return Ok();
  }));
  EXPECT_GE(refusals, 7);
}

TEST_F(WireFlowTest, DpopChallengeRefusals) {
  struct Case {
    std::string name;
    std::function<std::string(WireFlowTest&, Device&)> token;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"proof signed by another key",
       [](WireFlowTest& t, Device& d) {
         PrivateKey other = NewKey();
         HttpResponse r =
             t.AccessToken(d, t.Proof(d, other, t.AuthorityNonce(d)), t.UserAccessToken(d.person));
         return Body(r).value("token", "");
       },
       "ACME account key"},
      {"token of another authority",
       [](WireFlowTest& t, Device& d) {
         PrivateKey rogue = NewKey();
         const int64_t now = ToUnix(t.clock_.Now());
         Json claims = {
             {"iss", d.dpop_target}, {"aud", Url(d.dpop_path)}, {"exp", now + 60}, {"iat", now}};
         return *crypto::SignCompactJws(rogue, crypto::JwsAlg::kEdDSA,
                                        {{"typ", "at+jwt"}, {"jwk", PublicJwk(rogue)}},
                                        DumpJson(claims));
       },
       "configured device authority"},
      {"proof for another challenge",
       [](WireFlowTest& t, Device& d) {
         HttpResponse r = t.AccessToken(
             d, t.Proof(d, d.account_key, t.AuthorityNonce(d), {{"chal", "other-token"}}),
             t.UserAccessToken(d.person));
         return Body(r).value("token", "");
       },
       "chal"},
      {"proof with another audience",
       [](WireFlowTest& t, Device& d) {
         HttpResponse r = t.AccessToken(
             d, t.Proof(d, d.account_key, t.AuthorityNonce(d), {{"aud", Url("/acme/chall/x")}}),
             t.UserAccessToken(d.person));
         EXPECT_EQ(r.status, 200) << r.body;
         return Body(r).value("token", "");
       },
       "aud"},
      {"not a JWT", [](WireFlowTest&, Device&) { return std::string("garbage"); }, "compact JWS"},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    // One person per case: the device limit (2) must not interfere.
    char uuid[64];
    std::snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-0000000000%02d", ++n);
    const Person person{uuid, "user" + std::to_string(n), "User " + std::to_string(n)};
    Device d = NewDevice(person, "b" + std::to_string(n));
    ASSERT_EQ(NewOrder(d, Identifiers(d)).status, 201);
    const std::string token = c.token(*this, d);
    ASSERT_FALSE(token.empty());
    const Counts before = Snapshot();
    ExpectProblem(PostChallenge(d, d.dpop_path, {{"access_token", token}}), "unauthorized",
                  c.needle);
    EXPECT_EQ(Snapshot(), before);
  }
}

TEST_F(WireFlowTest, OrdersMustNameOnePersonInThisDomain) {
  Device d = NewDevice(alice_);
  const Counts before = Snapshot();
  // Names differ between the two identifiers.
  ExpectProblem(NewOrder(d, Identifiers(d, "Mallory")), "rejectedIdentifier", "'name'");
  // Only one identifier.
  Json one = Identifiers(d);
  one.erase(1);
  ExpectProblem(NewOrder(d, one), "rejectedIdentifier", "exactly two identifiers");
  // Another domain.
  Json other = Json::array({{{"type", "wireapp-user"},
                             {"value", DumpJson(Json{{"name", "A"},
                                                     {"domain", "evil.example"},
                                                     {"handle", "wireapp://%40a@evil.example"}})}},
                            Identifiers(d)[0]});
  ExpectProblem(NewOrder(d, other), "rejectedIdentifier", "not this CA's domain");
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(WireFlowTest, BlockedDevicesCannotEnrolAndUsersHaveADeviceLimit) {
  Device first = NewDevice(alice_, "1");
  Enrol(first);
  // An administrator blocks the device.
  ASSERT_TRUE(store_->InTransaction([&](store::Transaction& tx) -> Status {
    E2EID_TRY(dev, tx.GetDevice(first.ClientId()));
    dev.status = store::DeviceStatus::kBlocked;
    dev.blocked_reason = "laptop stolen";
    return tx.UpdateDevice(dev);
  }));
  Device again = NewDevice(alice_, "1");
  const Counts before = Snapshot();
  ExpectProblem(NewOrder(again, Identifiers(again)), "unauthorized", "laptop stolen");
  EXPECT_EQ(Snapshot(), before);
  // The authority refuses it too (an order made before the block cannot complete).
  HttpResponse r = AccessToken(first, Proof(first, first.account_key, AuthorityNonce(first)),
                               UserAccessToken(alice_));
  EXPECT_EQ(r.status, 403) << r.body;
  // Limit of 2 active devices: the blocked one does not count; the third active one is refused.
  Device second = NewDevice(alice_, "2");
  Enrol(second);
  Device third = NewDevice(alice_, "3");
  Enrol(third);
  Device fourth = NewDevice(alice_, "4");
  ASSERT_EQ(NewOrder(fourth, Identifiers(fourth)).status, 201);
  HttpResponse limit = AccessToken(
      fourth, Proof(fourth, fourth.account_key, AuthorityNonce(fourth)), UserAccessToken(alice_));
  ExpectProblem(limit, "unauthorized", "maximum is 2");
}

}  // namespace
}  // namespace e2eid::acme
