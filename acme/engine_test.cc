// The ACME engine, driven through the HTTP glue (server/acme_routes.h) exactly as a client would:
// JWS-signed requests in, problem documents and resources out. The store is a temporary SQLite
// file, the clock a FakeClock, and the challenge validators a test double that answers Ok or a
// given error.
#include "acme/engine.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "acme/ari.h"
#include "acme/serial_registry.h"
#include "ca/authority.h"
#include "ca/issuer.h"
#include "ca/x509.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/log.h"
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
using store::Transaction;

constexpr std::string_view kBase = "https://acme.test";
constexpr std::string_view kProblemPrefix = "urn:ietf:params:acme:error:";

std::string Url(std::string_view path) { return std::string(kBase) + std::string(path); }

std::string PathOf(const std::string& url) {
  EXPECT_TRUE(url.starts_with(kBase)) << url;
  return url.substr(kBase.size());
}

Json Body(const HttpResponse& r) {
  auto j = ParseJson(r.body);
  EXPECT_TRUE(j) << r.body;
  return j ? *j : Json();
}

std::string HeaderOr(const HttpResponse& r, std::string_view name) {
  return r.Header(name).value_or("");
}

bool HasHeaderValue(const HttpResponse& r, std::string_view name, std::string_view value) {
  for (const auto& [k, v] : r.headers) {
    if (EqualsIgnoreCase(k, name) && v == value) return true;
  }
  return false;
}

// A challenge validator double: Ok, or the error set for the identifier.
class FakeValidator final : public ChallengeValidator {
 public:
  Status Validate(const ValidationRequest& request) override {
    std::lock_guard lock(mu_);
    requests_.push_back(request);
    auto it = failures_.find(request.identifier_value);
    if (it != failures_.end()) return Fail(it->second);
    return Ok();
  }
  void FailFor(const std::string& name, Error e) {
    std::lock_guard lock(mu_);
    failures_.insert_or_assign(name, std::move(e));
  }
  std::vector<ValidationRequest> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, Error> failures_;
  std::vector<ValidationRequest> requests_;
};

// Runs jobs inline, queues them (manual) or refuses them (as a full queue would).
class TestJobs {
 public:
  Status Post(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      if (refuse_) return Fail(Error::Unavailable("validation queue is full"));
      if (manual_) {
        queued_.push_back(std::move(job));
        return Ok();
      }
    }
    job();
    return Ok();
  }
  size_t RunAll() {
    std::vector<std::function<void()>> jobs;
    {
      std::lock_guard lock(mu_);
      jobs.swap(queued_);
    }
    for (auto& j : jobs) j();
    return jobs.size();
  }
  void set_manual(bool m) {
    std::lock_guard lock(mu_);
    manual_ = m;
  }
  void set_refuse(bool r) {
    std::lock_guard lock(mu_);
    refuse_ = r;
  }

 private:
  std::mutex mu_;
  bool manual_ = false;
  bool refuse_ = false;
  std::vector<std::function<void()>> queued_;
};

// A PKCS#10 request for `subject_key` signed by `signer` (default: the subject key). `san` is in
// OpenSSL's syntax ("DNS:a,DNS:b"); empty for none.
Bytes MakeCsr(EVP_PKEY* subject_key, const std::optional<std::string>& cn, const std::string& san,
              EVP_PKEY* signer = nullptr) {
  crypto::X509ReqPtr req(X509_REQ_new());
  EXPECT_TRUE(req);
  X509_REQ_set_version(req.get(), 0);
  if (cn) {
    X509_NAME* name = X509_REQ_get_subject_name(req.get());
    EXPECT_EQ(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn->c_str()), -1, -1, 0),
        1);
  }
  if (!san.empty()) {
    crypto::X509ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    EXPECT_NE(ext, nullptr) << san;
    sk_X509_EXTENSION_push(exts.get(), ext);
    EXPECT_EQ(X509_REQ_add_extensions(req.get(), exts.get()), 1);
  }
  EXPECT_EQ(X509_REQ_set_pubkey(req.get(), subject_key), 1);
  EVP_PKEY* s = signer != nullptr ? signer : subject_key;
  const EVP_MD* md = EVP_PKEY_get_id(s) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  EXPECT_GT(X509_REQ_sign(req.get(), s, md), 0);
  const int len = i2d_X509_REQ(req.get(), nullptr);
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  i2d_X509_REQ(req.get(), &p);
  return out;
}

std::string DnsSan(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "DNS:" : ",DNS:") + n;
  return out;
}

PrivateKey NewKey(crypto::KeyType type = crypto::KeyType::kP256) {
  auto k = PrivateKey::Generate(type, 2048);
  EXPECT_TRUE(k);
  return std::move(*k);
}

Json PublicJwk(const PrivateKey& key) {
  auto pub = key.public_key();
  EXPECT_TRUE(pub);
  auto jwk = crypto::PublicKeyToJwk(*pub);
  EXPECT_TRUE(jwk);
  return *jwk;
}

// A flattened JWS with the exact protected header text and payload given, signed by `key`.
std::string SignRaw(const PrivateKey& key, const std::string& protected_text,
                    const std::string& payload) {
  const std::string p = Base64UrlEncode(protected_text);
  const std::string pl = Base64UrlEncode(payload);
  auto sig = crypto::SignJose(key, crypto::DefaultJwsAlg(key.type()), AsBytes(p + "." + pl));
  EXPECT_TRUE(sig);
  return DumpJson(Json{{"protected", p}, {"payload", pl}, {"signature", Base64UrlEncode(*sig)}});
}

struct Client {
  PrivateKey key;
  std::string kid;
  std::string id;
};

struct OrderInfo {
  std::string id;
  std::string path;
  Json json;
};

struct IssuedCert {
  OrderInfo order;
  PrivateKey key;
  std::string serial;
  Bytes der;
};

// A request as built for the negative table, and the nonce it carries ("" for none).
struct Built {
  HttpRequest request;
  std::string nonce;
};

class AcmeEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kWarn);  // keep test output readable; problems still log at error
    ca::InitOptions init;
    init.dir = tmp_ / "ca";
    auto made = ca::InitCa(init, clock_, random_);
    ASSERT_TRUE(made) << made.error().ToString();
    auto authority = ca::CertificateAuthority::Load(ca::CaPaths::In(init.dir), std::nullopt);
    ASSERT_TRUE(authority) << authority.error().ToString();
    ca_ = std::make_unique<ca::CertificateAuthority>(std::move(*authority));
    auto opened = store::OpenSqliteStore({.path = tmp_ / "acme.db", .synchronous_full = false});
    ASSERT_TRUE(opened) << opened.error().ToString();
    store_ = std::move(*opened);
    serials_ = std::make_unique<StoreSerialRegistry>(*store_, clock_);
    issuer_ = std::make_unique<ca::Issuer>(
        *ca_, ca::ValidityPolicy{},
        ca::IssuerUrls{.crl_url = Url("/crl"), .ocsp_url = Url("/ocsp"), .ca_issuers_url = ""},
        *serials_, clock_, random_);
    MakeEngine();
  }

  void TearDown() override { SetLogLevel(LogLevel::kInfo); }

  void MakeEngine(const std::function<void(EngineOptions&)>& tweak = {}) {
    EngineOptions options;
    options.base_url = std::string(kBase);
    options.max_request_bytes = 16 * 1024;
    if (tweak) tweak(options);
    router_ = std::make_unique<server::Router>();
    engine_ = std::make_unique<Engine>(
        options,
        Engine::Deps{
            .store = *store_,
            .issuer = *issuer_,
            .clock = clock_,
            .random = random_,
            .jobs = [this](std::function<void()> job) { return jobs_.Post(std::move(job)); },
            .validators = {{"http-01", &http01_}, {"tls-alpn-01", &alpn_}},
            .render_problem = server::AcmeProblemDocument});
    ASSERT_TRUE(server::AddAcmeRoutes(*router_, *engine_));
  }

  // ---- transport ----
  static HttpRequest MakeRequest(std::string method, const std::string& target, std::string body,
                                 std::optional<std::string> content_type) {
    HttpRequest r;
    r.method = std::move(method);
    r.target = target;
    const size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    if (content_type) r.headers.emplace_back("Content-Type", *content_type);
    r.body = std::move(body);
    r.remote_address = "127.0.0.1";
    r.request_id = "test-request";
    return r;
  }
  HttpResponse Send(const HttpRequest& r) { return router_->Handle(r); }
  HttpResponse Send(std::string method, const std::string& target, std::string body = "",
                    std::optional<std::string> content_type = std::string(kJoseContentType)) {
    return Send(MakeRequest(std::move(method), target, std::move(body), std::move(content_type)));
  }

  std::string Nonce() {
    HttpResponse r = Send("HEAD", std::string(kNewNoncePath), "", std::nullopt);
    EXPECT_EQ(r.status, 200);
    const std::string n = HeaderOr(r, "Replay-Nonce");
    EXPECT_FALSE(n.empty());
    return n;
  }

  static Json KidHeader(const Client& c, std::string_view path, const std::string& nonce) {
    return {{"kid", c.kid}, {"url", Url(path)}, {"nonce", nonce}};
  }
  static Json JwkHeader(const PrivateKey& key, std::string_view path, const std::string& nonce) {
    return {{"jwk", PublicJwk(key)}, {"url", Url(path)}, {"nonce", nonce}};
  }
  static std::string Sign(const PrivateKey& key, const Json& header, std::string_view payload) {
    auto jws = crypto::SignFlattenedJws(key, crypto::DefaultJwsAlg(key.type()), header, payload);
    EXPECT_TRUE(jws) << jws.error().ToString();
    return jws ? *jws : std::string();
  }
  HttpResponse PostKid(const Client& c, const std::string& path, std::string_view payload) {
    return Send("POST", path, Sign(c.key, KidHeader(c, path, Nonce()), payload));
  }
  HttpResponse PostJwk(const PrivateKey& key, const std::string& path, std::string_view payload) {
    return Send("POST", path, Sign(key, JwkHeader(key, path, Nonce()), payload));
  }

  // ---- flows ----
  Client NewAccount(crypto::KeyType type = crypto::KeyType::kP256) {
    Client c{NewKey(type), "", ""};
    HttpResponse r =
        PostJwk(c.key, std::string(kNewAccountPath),
                R"({"termsOfServiceAgreed":true,"contact":["mailto:ops@example.com"]})");
    EXPECT_EQ(r.status, 201) << r.body;
    c.kid = HeaderOr(r, "Location");
    c.id = c.kid.substr(Url(kAccountPathPrefix).size());
    account_ids_.push_back(c.id);
    return c;
  }

  OrderInfo NewOrder(const Client& c, const std::vector<std::string>& names,
                     const Json& extra = Json::object()) {
    Json ids = Json::array();
    for (const auto& n : names) ids.push_back({{"type", "dns"}, {"value", n}});
    Json payload = extra;
    payload["identifiers"] = ids;
    HttpResponse r = PostKid(c, std::string(kNewOrderPath), DumpJson(payload));
    EXPECT_EQ(r.status, 201) << r.body;
    OrderInfo o;
    o.path = PathOf(HeaderOr(r, "Location"));
    o.id = o.path.substr(kOrderPathPrefix.size());
    o.json = Body(r);
    order_ids_.push_back(o.id);
    return o;
  }

  Json GetOrder(const Client& c, const OrderInfo& o) {
    HttpResponse r = PostKid(c, o.path, "");
    EXPECT_EQ(r.status, 200) << r.body;
    return Body(r);
  }

  // The path of the authorization's challenge of `type`.
  std::string ChallengePath(const Client& c, const std::string& authz_url,
                            std::string_view type = "http-01") {
    HttpResponse r = PostKid(c, PathOf(authz_url), "");
    EXPECT_EQ(r.status, 200) << r.body;
    const Json authz = Body(r);
    for (const auto& ch : authz["challenges"]) {
      if (ch["type"] == type) return PathOf(ch["url"]);
    }
    ADD_FAILURE() << "no " << type << " challenge in " << r.body;
    return "";
  }

  // Answers every challenge of the order (the validator double decides the outcome).
  void RespondToAll(const Client& c, const OrderInfo& o) {
    for (const auto& authz : o.json["authorizations"]) {
      HttpResponse r = PostKid(c, ChallengePath(c, authz), "{}");
      EXPECT_EQ(r.status, 200) << r.body;
    }
  }

  OrderInfo ReadyOrder(const Client& c, const std::vector<std::string>& names) {
    OrderInfo o = NewOrder(c, names);
    RespondToAll(c, o);
    o.json = GetOrder(c, o);
    EXPECT_EQ(o.json["status"], "ready");
    return o;
  }

  HttpResponse Finalize(const Client& c, const OrderInfo& o, const Bytes& csr) {
    return PostKid(c, o.path + "/finalize", DumpJson(Json{{"csr", Base64UrlEncode(csr)}}));
  }

  IssuedCert Issue(const Client& c, const std::vector<std::string>& names) {
    IssuedCert out{ReadyOrder(c, names), NewKey(), "", {}};
    HttpResponse r = Finalize(c, out.order, MakeCsr(out.key.get(), names[0], DnsSan(names)));
    EXPECT_EQ(r.status, 200) << r.body;
    const Json order = Body(r);
    EXPECT_EQ(order["status"], "valid");
    const std::string cert_path = PathOf(order.value("certificate", ""));
    out.serial = cert_path.substr(kCertificatePathPrefix.size());
    serials_list_.push_back(out.serial);
    EXPECT_TRUE(store_->ReadOnly([&](Transaction& tx) -> Status {
      E2EID_TRY(cert, tx.GetCertificate(out.serial));
      out.der = cert.der;
      return Ok();
    }));
    return out;
  }

  // ---- store inspection ----
  int64_t Count(Table t) {
    int64_t n = -1;
    EXPECT_TRUE(store_->ReadOnly([&](Transaction& tx) -> Status {
      E2EID_TRY(c, tx.CountRows(t));
      n = c;
      return Ok();
    }));
    return n;
  }

  // Whether `nonce` could be consumed now (probed by using it and issuing it again).
  bool NonceUsable(const std::string& nonce) {
    if (!store_->UseNonce(nonce, clock_.Now())) return false;
    EXPECT_TRUE(store_->IssueNonce({nonce, clock_.Now() + std::chrono::hours(1)}));
    return true;
  }

  // Every table's row count (except nonces) and the state of every row the test created.
  std::string Snapshot() {
    std::ostringstream out;
    auto st = store_->ReadOnly([&](Transaction& tx) -> Status {
      for (Table t : {Table::kAccounts, Table::kOrders, Table::kAuthorizations, Table::kChallenges,
                      Table::kCertificates, Table::kSerials, Table::kDevices, Table::kUsers,
                      Table::kRevocationEvents, Table::kCrlState, Table::kAuditEvents}) {
        E2EID_TRY(n, tx.CountRows(t));
        out << n << ",";
      }
      out << "\n";
      for (const auto& id : account_ids_) {
        E2EID_TRY(a, tx.GetAccount(id));
        out << a.id << " " << store::ToString(a.status) << " " << a.key_thumbprint << " "
            << a.contacts << " " << a.jwk << "\n";
      }
      for (const auto& id : order_ids_) {
        E2EID_TRY(o, tx.GetOrder(id));
        out << o.id << " " << store::ToString(o.status) << " " << o.error.value_or("-") << " "
            << o.certificate_serial.value_or("-") << " " << ToUnix(o.updated_at) << " "
            << o.replaces.value_or("-") << "\n";
        E2EID_TRY(authzs, tx.ListAuthorizationsForOrder(id));
        for (const auto& a : authzs) {
          out << "  " << a.id << " " << store::ToString(a.status) << " " << ToUnix(a.expires)
              << "\n";
          E2EID_TRY(challenges, tx.ListChallengesForAuthorization(a.id));
          for (const auto& ch : challenges) {
            out << "    " << ch.id << " " << store::ToString(ch.status) << " "
                << ch.error.value_or("-") << " "
                << (ch.validated_at ? ToUnix(*ch.validated_at) : -1) << "\n";
          }
        }
      }
      for (const auto& serial : serials_list_) {
        E2EID_TRY(c, tx.GetCertificate(serial));
        out << c.serial << " " << store::ToString(c.status) << " "
            << c.revocation_reason.value_or(-1) << "\n";
      }
      return Ok();
    });
    EXPECT_TRUE(st) << st.error().ToString();
    return out.str();
  }

  void ExpectProblem(const HttpResponse& r, int status, std::string_view type) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(HeaderOr(r, "Content-Type"), "application/problem+json");
    EXPECT_EQ(Body(r).value("type", ""), std::string(kProblemPrefix) + std::string(type)) << r.body;
  }

  testing::TempDir tmp_;
  FakeClock clock_{std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) -
                   std::chrono::hours(1)};
  crypto::SecureRandom random_;
  std::unique_ptr<ca::CertificateAuthority> ca_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<StoreSerialRegistry> serials_;
  std::unique_ptr<ca::Issuer> issuer_;
  FakeValidator http01_;
  FakeValidator alpn_;
  TestJobs jobs_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<server::Router> router_;
  std::vector<std::string> account_ids_;
  std::vector<std::string> order_ids_;
  std::vector<std::string> serials_list_;
};

// ---- the whole flow -----------------------------------------------------------------------------

TEST_F(AcmeEngineTest, HappyPathIssuesAChainThatOpensslVerifies) {
  // Directory.
  HttpResponse dir = Send("GET", std::string(kDirectoryPath), "", std::nullopt);
  ASSERT_EQ(dir.status, 200);
  const Json d = Body(dir);
  EXPECT_EQ(d["newNonce"], Url(kNewNoncePath));
  EXPECT_EQ(d["newAccount"], Url(kNewAccountPath));
  EXPECT_EQ(d["newOrder"], Url(kNewOrderPath));
  EXPECT_EQ(d["revokeCert"], Url(kRevokeCertPath));
  EXPECT_EQ(d["keyChange"], Url(kKeyChangePath));
  EXPECT_EQ(d["renewalInfo"], Url(kRenewalInfoPath));
  EXPECT_EQ(d["meta"]["externalAccountRequired"], false);

  // newNonce: HEAD 200, GET 204, never cached.
  HttpResponse head = Send("HEAD", std::string(kNewNoncePath), "", std::nullopt);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(HeaderOr(head, "Cache-Control"), "no-store");
  EXPECT_FALSE(HeaderOr(head, "Replay-Nonce").empty());
  EXPECT_TRUE(HasHeaderValue(head, "Link", "<" + Url(kDirectoryPath) + ">;rel=\"index\""));
  HttpResponse get = Send("GET", std::string(kNewNoncePath), "", std::nullopt);
  EXPECT_EQ(get.status, 204);
  EXPECT_NE(HeaderOr(get, "Replay-Nonce"), HeaderOr(head, "Replay-Nonce"));

  // newAccount: 201 the first time, 200 with the same Location the second time.
  Client alice{NewKey(), "", ""};
  HttpResponse created =
      PostJwk(alice.key, std::string(kNewAccountPath),
              R"({"termsOfServiceAgreed":true,"contact":["mailto:alice@example.com"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  alice.kid = HeaderOr(created, "Location");
  EXPECT_TRUE(alice.kid.starts_with(Url(kAccountPathPrefix)));
  EXPECT_EQ(Body(created)["status"], "valid");
  EXPECT_EQ(Body(created)["contact"], Json::array({"mailto:alice@example.com"}));
  EXPECT_FALSE(HeaderOr(created, "Replay-Nonce").empty());
  HttpResponse again = PostJwk(alice.key, std::string(kNewAccountPath), R"({})");
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(HeaderOr(again, "Location"), alice.kid);

  // newOrder for two names.
  jobs_.set_manual(true);
  OrderInfo order = NewOrder(alice, {"a.localhost", "localhost"});
  EXPECT_EQ(order.json["status"], "pending");
  ASSERT_EQ(order.json["authorizations"].size(), 2u);
  EXPECT_EQ(order.json["finalize"], Url(order.path + "/finalize"));
  EXPECT_EQ(
      order.json["identifiers"],
      Json::parse(R"([{"type":"dns","value":"a.localhost"},{"type":"dns","value":"localhost"}])"));

  // The authorization offers both challenge types; answer http-01 of the first.
  const std::string authz0 = PathOf(order.json["authorizations"][0]);
  HttpResponse az = PostKid(alice, authz0, "");
  ASSERT_EQ(az.status, 200);
  const Json authz = Body(az);
  EXPECT_EQ(authz["status"], "pending");
  EXPECT_EQ(authz["identifier"]["type"], "dns");
  ASSERT_EQ(authz["challenges"].size(), 2u);
  std::string token;
  std::string chall0;
  for (const auto& ch : authz["challenges"]) {
    EXPECT_EQ(ch["status"], "pending");
    EXPECT_GE(ch["token"].get<std::string>().size(), 43u);
    if (ch["type"] == "http-01") {
      chall0 = PathOf(ch["url"]);
      token = ch["token"];
    }
  }
  ASSERT_FALSE(chall0.empty());
  HttpResponse started = PostKid(alice, chall0, "{}");
  ASSERT_EQ(started.status, 200) << started.body;
  EXPECT_EQ(Body(started)["status"], "processing");
  EXPECT_TRUE(HasHeaderValue(started, "Link", "<" + Url(authz0) + ">;rel=\"up\""));
  EXPECT_TRUE(http01_.requests().empty());  // nothing validated on the request thread
  EXPECT_EQ(jobs_.RunAll(), 1u);
  ASSERT_EQ(http01_.requests().size(), 1u);
  const ValidationRequest seen = http01_.requests()[0];
  auto thumbprint = crypto::JwkThumbprint(PublicJwk(alice.key));
  ASSERT_TRUE(thumbprint);
  EXPECT_EQ(seen.key_authorization, token + "." + *thumbprint);
  EXPECT_EQ(seen.identifier_type, "dns");
  EXPECT_EQ(seen.challenge_type, "http-01");
  EXPECT_EQ(seen.challenge_url, Url(chall0));
  HttpResponse ch_after = PostKid(alice, chall0, "");
  EXPECT_EQ(Body(ch_after)["status"], "valid");
  EXPECT_TRUE(Body(ch_after).contains("validated"));
  EXPECT_EQ(Body(PostKid(alice, authz0, ""))["status"], "valid");
  // One of two authorizations is valid: the order is still pending.
  EXPECT_EQ(GetOrder(alice, order)["status"], "pending");

  // The second one through tls-alpn-01.
  const std::string chall1 = ChallengePath(alice, order.json["authorizations"][1], "tls-alpn-01");
  ASSERT_EQ(PostKid(alice, chall1, "{}").status, 200);
  EXPECT_EQ(jobs_.RunAll(), 1u);
  EXPECT_EQ(alpn_.requests().size(), 1u);
  EXPECT_EQ(GetOrder(alice, order)["status"], "ready");

  // Finalize with a CSR made by the openssl CLI.
  ASSERT_EQ(testing::RunCommand("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
                                "-out " +
                                tmp_ / "leaf.key")
                .exit_code,
            0);
  auto csr_cmd = testing::RunCommand(
      "openssl req -new -key " + tmp_ / "leaf.key" +
      " -subj /CN=a.localhost -addext subjectAltName=DNS:a.localhost,DNS:localhost -outform DER "
      "-out " +
      tmp_ / "leaf.csr");
  ASSERT_EQ(csr_cmd.exit_code, 0) << csr_cmd.output;
  auto csr = ReadFile(tmp_ / "leaf.csr");
  ASSERT_TRUE(csr);
  HttpResponse fin = Finalize(alice, order, Bytes(csr->begin(), csr->end()));
  ASSERT_EQ(fin.status, 200) << fin.body;
  EXPECT_EQ(HeaderOr(fin, "Location"), Url(order.path));
  const Json valid = Body(fin);
  EXPECT_EQ(valid["status"], "valid");
  ASSERT_TRUE(valid.contains("certificate"));

  // Download: leaf + intermediate + root, verified by openssl for the names.
  HttpResponse cert = PostKid(alice, PathOf(valid["certificate"]), "");
  ASSERT_EQ(cert.status, 200) << cert.body;
  EXPECT_EQ(HeaderOr(cert, "Content-Type"), "application/pem-certificate-chain");
  std::vector<std::string> pems;
  for (size_t pos = 0;;) {
    const size_t begin = cert.body.find("-----BEGIN CERTIFICATE-----", pos);
    if (begin == std::string::npos) break;
    const std::string end_marker = "-----END CERTIFICATE-----\n";
    const size_t end = cert.body.find(end_marker, begin);
    ASSERT_NE(end, std::string::npos);
    pems.push_back(cert.body.substr(begin, end + end_marker.size() - begin));
    pos = end + end_marker.size();
  }
  ASSERT_EQ(pems.size(), 3u);
  EXPECT_EQ(pems[2], ca_->root_pem());
  ASSERT_TRUE(WriteNewFile(tmp_ / "leaf.pem", pems[0], 0600));
  ASSERT_TRUE(WriteNewFile(tmp_ / "inter.pem", pems[1], 0600));
  for (const std::string& host : {std::string("a.localhost"), std::string("localhost")}) {
    auto verify = testing::RunCommand("openssl verify -purpose sslserver -verify_hostname " + host +
                                      " -CAfile " + tmp_ / "ca/root.pem" + " -untrusted " +
                                      tmp_ / "inter.pem " + tmp_ / "leaf.pem");
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    EXPECT_NE(verify.output.find("leaf.pem: OK"), std::string::npos) << verify.output;
  }
  // The leaf carries the CSR's key and not the CSR's other wishes.
  auto text = testing::RunCommand("openssl x509 -noout -text -in " + tmp_ / "leaf.pem");
  EXPECT_NE(text.output.find("DNS:a.localhost, DNS:localhost"), std::string::npos) << text.output;
  auto leaf_pub = testing::RunCommand("openssl x509 -noout -pubkey -in " + tmp_ / "leaf.pem");
  auto csr_pub = testing::RunCommand("openssl pkey -pubout -in " + tmp_ / "leaf.key");
  EXPECT_EQ(leaf_pub.output, csr_pub.output);

  // The account lists its order; the store recorded the issuance.
  HttpResponse orders = PostKid(alice, PathOf(alice.kid) + "/orders", "");
  ASSERT_EQ(orders.status, 200) << orders.body;
  EXPECT_EQ(Body(orders)["orders"], Json::array({Url(order.path)}));
  EXPECT_EQ(Count(Table::kCertificates), 1);
  EXPECT_EQ(Count(Table::kSerials), 1);
}

TEST_F(AcmeEngineTest, FailedValidationInvalidatesChallengeAuthorizationAndOrder) {
  Client c = NewAccount();
  http01_.FailFor("bad.localhost", Error(ErrorCode::kIncorrectResponse, "body did not match"));
  OrderInfo o = NewOrder(c, {"bad.localhost"});
  const std::string chall = ChallengePath(c, o.json["authorizations"][0]);
  HttpResponse r = PostKid(c, chall, "{}");
  ASSERT_EQ(r.status, 200);
  const Json ch = Body(r);
  EXPECT_EQ(ch["status"], "invalid");
  EXPECT_EQ(ch["error"]["type"], std::string(kProblemPrefix) + "incorrectResponse");
  EXPECT_EQ(ch["error"]["detail"], "body did not match");
  EXPECT_EQ(Body(PostKid(c, PathOf(o.json["authorizations"][0]), ""))["status"], "invalid");
  const Json order = GetOrder(c, o);
  EXPECT_EQ(order["status"], "invalid");
  EXPECT_EQ(order["error"]["type"], std::string(kProblemPrefix) + "incorrectResponse");
  // A second POST does not start another validation.
  EXPECT_EQ(Body(PostKid(c, chall, "{}"))["status"], "invalid");
  EXPECT_EQ(http01_.requests().size(), 1u);
}

TEST_F(AcmeEngineTest, FullValidationQueueIs503AndLeavesTheChallengePending) {
  Client c = NewAccount();
  OrderInfo o = NewOrder(c, {"busy.localhost"});
  const std::string chall = ChallengePath(c, o.json["authorizations"][0]);
  jobs_.set_refuse(true);
  HttpResponse r = PostKid(c, chall, "{}");
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(HeaderOr(r, "Replay-Nonce").empty());
  EXPECT_EQ(Body(PostKid(c, chall, ""))["status"], "pending");
  jobs_.set_refuse(false);
  EXPECT_EQ(Body(PostKid(c, chall, "{}"))["status"], "valid");
}

TEST_F(AcmeEngineTest, ValidationBindsToTheChallengesOwnOrder) {
  Client c = NewAccount();
  OrderInfo first = NewOrder(c, {"same.localhost"});
  OrderInfo second = NewOrder(c, {"same.localhost"});
  RespondToAll(c, first);
  EXPECT_EQ(GetOrder(c, first)["status"], "ready");
  EXPECT_EQ(GetOrder(c, second)["status"], "pending");
  EXPECT_EQ(Finalize(c, second, MakeCsr(NewKey().get(), std::nullopt, "DNS:same.localhost")).status,
            403);
}

TEST_F(AcmeEngineTest, ExpiryMakesOrdersInvalidAndAuthorizationsExpired) {
  Client c = NewAccount();
  OrderInfo pending = NewOrder(c, {"late.localhost"});
  OrderInfo ready = ReadyOrder(c, {"late2.localhost"});
  const std::string nonce = Nonce();
  clock_.Advance(std::chrono::hours(25));
  EXPECT_EQ(GetOrder(c, pending)["status"], "invalid");
  EXPECT_EQ(Body(PostKid(c, PathOf(pending.json["authorizations"][0]), ""))["status"], "expired");
  EXPECT_EQ(GetOrder(c, ready)["status"], "invalid");
  ExpectProblem(Finalize(c, ready, MakeCsr(NewKey().get(), std::nullopt, "DNS:late2.localhost")),
                403, "orderNotReady");
  // An expired nonce is refused.
  HttpResponse r = Send("POST", PathOf(c.kid), Sign(c.key, KidHeader(c, PathOf(c.kid), nonce), ""));
  ExpectProblem(r, 400, "badNonce");
  EXPECT_FALSE(HeaderOr(r, "Replay-Nonce").empty());
}

TEST_F(AcmeEngineTest, AuthorizationDeactivationInvalidatesTheOrder) {
  Client c = NewAccount();
  OrderInfo o = ReadyOrder(c, {"deact.localhost"});
  HttpResponse r = PostKid(c, PathOf(o.json["authorizations"][0]), R"({"status":"deactivated"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["status"], "deactivated");
  EXPECT_EQ(GetOrder(c, o)["status"], "invalid");
}

TEST_F(AcmeEngineTest, AccountUpdateAndDeactivation) {
  Client c = NewAccount();
  HttpResponse got = PostKid(c, PathOf(c.kid), "");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(Body(got)["orders"], c.kid + "/orders");
  HttpResponse updated = PostKid(
      c, PathOf(c.kid),
      R"({"contact":["mailto:new@example.com",")" + std::string(kAnonymousContact) + R"("]})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(Body(updated)["contact"],
            Json::array({"mailto:new@example.com", std::string(kAnonymousContact)}));
  HttpResponse deactivated = PostKid(c, PathOf(c.kid), R"({"status":"deactivated"})");
  ASSERT_EQ(deactivated.status, 200);
  EXPECT_EQ(Body(deactivated)["status"], "deactivated");
  // From now on the account cannot be used, nor re-registered with its key.
  ExpectProblem(PostKid(c, std::string(kNewOrderPath),
                        R"({"identifiers":[{"type":"dns","value":"x.localhost"}]})"),
                403, "unauthorized");
  ExpectProblem(PostJwk(c.key, std::string(kNewAccountPath), "{}"), 403, "unauthorized");
}

TEST_F(AcmeEngineTest, KeyChangeRollsTheAccountOver) {
  Client c = NewAccount();
  const Json old_jwk = PublicJwk(c.key);
  PrivateKey new_key = NewKey();
  const std::string path(kKeyChangePath);
  const std::string inner = Sign(new_key, Json{{"jwk", PublicJwk(new_key)}, {"url", Url(path)}},
                                 DumpJson(Json{{"account", c.kid}, {"oldKey", old_jwk}}));
  HttpResponse r = PostKid(c, path, inner);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["status"], "valid");
  // The old key no longer signs for the account; the new one does.
  ExpectProblem(PostKid(c, PathOf(c.kid), ""), 400, "malformed");
  Client rolled{std::move(new_key), c.kid, c.id};
  EXPECT_EQ(PostKid(rolled, PathOf(c.kid), "").status, 200);
  HttpResponse existing =
      PostJwk(rolled.key, std::string(kNewAccountPath), R"({"onlyReturnExisting":true})");
  EXPECT_EQ(existing.status, 200);
  EXPECT_EQ(HeaderOr(existing, "Location"), c.kid);
  ExpectProblem(PostJwk(c.key, std::string(kNewAccountPath), R"({"onlyReturnExisting":true})"), 400,
                "accountDoesNotExist");
}

TEST_F(AcmeEngineTest, RevokeByAccountAndByCertificateKey) {
  Client c = NewAccount();
  IssuedCert by_account = Issue(c, {"rev1.localhost"});
  IssuedCert by_key = Issue(c, {"rev2.localhost"});
  const std::string path(kRevokeCertPath);

  HttpResponse r = PostKid(
      c, path, DumpJson(Json{{"certificate", Base64UrlEncode(by_account.der)}, {"reason", 4}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(HeaderOr(r, "Replay-Nonce").empty());
  ExpectProblem(PostKid(c, path, DumpJson(Json{{"certificate", Base64UrlEncode(by_account.der)}})),
                400, "alreadyRevoked");

  HttpResponse k =
      PostJwk(by_key.key, path,
              DumpJson(Json{{"certificate", Base64UrlEncode(by_key.der)}, {"reason", 1}}));
  ASSERT_EQ(k.status, 200) << k.body;

  EXPECT_TRUE(store_->ReadOnly([&](Transaction& tx) -> Status {
    E2EID_TRY(a, tx.GetCertificate(by_account.serial));
    EXPECT_EQ(a.status, store::CertificateStatus::kRevoked);
    EXPECT_EQ(a.revocation_reason, 4);
    E2EID_TRY(b, tx.GetCertificate(by_key.serial));
    EXPECT_EQ(b.status, store::CertificateStatus::kRevoked);
    EXPECT_EQ(b.revocation_reason, 1);
    E2EID_TRY(events, tx.ListRevocationEvents({}));
    EXPECT_EQ(events.items.size(), 2u);
    return Ok();
  }));
}

TEST_F(AcmeEngineTest, RenewalInfoAndReplaces) {
  Client c = NewAccount();
  IssuedCert cert = Issue(c, {"ari.localhost"});
  auto x509 = ca::CertificateFromDer(cert.der);
  ASSERT_TRUE(x509);
  auto id = AriCertIdOf(x509->get());
  ASSERT_TRUE(id);
  // The key identifier part is the intermediate's subject key identifier.
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(ca_->intermediate());
  ASSERT_NE(ski, nullptr);
  EXPECT_TRUE(
      id->starts_with(Base64UrlEncode(std::span(ASN1_STRING_get0_data(ski),
                                                static_cast<size_t>(ASN1_STRING_length(ski)))) +
                      "."));

  HttpResponse r = Send("GET", std::string(kRenewalInfoPath) + "/" + *id, "", std::nullopt);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(HeaderOr(r, "Retry-After"), "21600");
  const Json window = Body(r)["suggestedWindow"];
  auto start = ParseRfc3339(window.value("start", ""));
  auto end = ParseRfc3339(window.value("end", ""));
  ASSERT_TRUE(start && end);
  store::Certificate stored;
  ASSERT_TRUE(store_->ReadOnly([&](Transaction& tx) -> Status {
    E2EID_TRY(s, tx.GetCertificate(cert.serial));
    stored = s;
    return Ok();
  }));
  const auto lifetime = stored.not_after - stored.not_before;
  EXPECT_EQ(*start, stored.not_before + lifetime * 2 / 3);
  EXPECT_EQ(*end, stored.not_before + lifetime * 5 / 6);

  // An order replacing it; a second one is refused.
  OrderInfo replacement = NewOrder(c, {"ari.localhost"}, Json{{"replaces", *id}});
  EXPECT_EQ(replacement.json["replaces"], *id);
  ExpectProblem(
      PostKid(c, std::string(kNewOrderPath),
              DumpJson(Json{{"identifiers", {{{"type", "dns"}, {"value", "ari.localhost"}}}},
                            {"replaces", *id}})),
      409, "alreadyReplaced");

  // Once revoked, the window lies in the past.
  ASSERT_EQ(PostKid(c, std::string(kRevokeCertPath),
                    DumpJson(Json{{"certificate", Base64UrlEncode(cert.der)}}))
                .status,
            200);
  const Json after = Body(Send("GET", std::string(kRenewalInfoPath) + "/" + *id, "", std::nullopt));
  auto revoked_end = ParseRfc3339(after["suggestedWindow"].value("end", ""));
  ASSERT_TRUE(revoked_end);
  EXPECT_LT(*revoked_end, clock_.Now());
}

// ---- hostile and malformed requests -------------------------------------------------------------

TEST_F(AcmeEngineTest, NegativeTableAnswersTheRightProblemAndLeavesTheStoreUnchanged) {
  // The scene: accounts A and B, a deactivated account D, orders of A in every state, a revoked
  // certificate, and B's own order and certificate.
  Client a = NewAccount();
  Client b = NewAccount();
  Client d = NewAccount();
  ASSERT_EQ(PostKid(d, PathOf(d.kid), R"({"status":"deactivated"})").status, 200);
  OrderInfo pending = NewOrder(a, {"pending.localhost"});
  OrderInfo ready = ReadyOrder(a, {"ready.localhost", "www.ready.localhost"});
  IssuedCert valid = Issue(a, {"valid.localhost"});
  IssuedCert revoked = Issue(a, {"revoked.localhost"});
  ASSERT_EQ(PostKid(a, std::string(kRevokeCertPath),
                    DumpJson(Json{{"certificate", Base64UrlEncode(revoked.der)}}))
                .status,
            200);
  OrderInfo b_ready = ReadyOrder(b, {"b.localhost"});
  IssuedCert b_cert = Issue(b, {"b2.localhost"});
  const std::string pending_chall = ChallengePath(a, pending.json["authorizations"][0]);
  const std::string pending_authz = PathOf(pending.json["authorizations"][0]);
  const std::string finalize = ready.path + "/finalize";
  const std::vector<std::string> ready_names = {"ready.localhost", "www.ready.localhost"};
  auto valid_x509 = ca::CertificateFromDer(valid.der);
  ASSERT_TRUE(valid_x509);
  auto valid_ari = AriCertIdOf(valid_x509->get());
  ASSERT_TRUE(valid_ari);
  auto b_x509 = ca::CertificateFromDer(b_cert.der);
  ASSERT_TRUE(b_x509);
  auto b_ari = AriCertIdOf(b_x509->get());
  ASSERT_TRUE(b_ari);
  crypto::EvpPkeyPtr rsa1024(EVP_RSA_gen(1024));
  ASSERT_TRUE(rsa1024);

  const std::string jose(kJoseContentType);
  // A kid-signed POST to `path` with `payload`.
  auto kid_post = [&](const Client& c, const std::string& path, const std::string& payload) {
    const std::string n = Nonce();
    return Built{MakeRequest("POST", path, Sign(c.key, KidHeader(c, path, n), payload), jose), n};
  };
  auto jwk_post = [&](const PrivateKey& k, const std::string& path, const std::string& payload) {
    const std::string n = Nonce();
    return Built{MakeRequest("POST", path, Sign(k, JwkHeader(k, path, n), payload), jose), n};
  };
  // A kid-signed POST with a hand-written protected header (placeholders filled in).
  auto raw_post = [&](const Client& c, const std::string& path,
                      const std::function<std::string(const std::string& nonce)>& header,
                      const std::string& payload) {
    const std::string n = Nonce();
    return Built{MakeRequest("POST", path, SignRaw(c.key, header(n), payload), jose), n};
  };
  auto new_order = [&](const Json& identifiers, const Json& extra = Json::object()) {
    Json p = extra;
    p["identifiers"] = identifiers;
    return kid_post(a, std::string(kNewOrderPath), DumpJson(p));
  };
  auto dns = [](const std::string& v) { return Json::array({{{"type", "dns"}, {"value", v}}}); };
  auto finalize_with = [&](const Bytes& csr) {
    return kid_post(a, finalize, DumpJson(Json{{"csr", Base64UrlEncode(csr)}}));
  };
  auto key_change = [&](const PrivateKey& new_key, const Json& inner_header, const Json& payload) {
    return kid_post(a, std::string(kKeyChangePath), Sign(new_key, inner_header, DumpJson(payload)));
  };
  const std::string account_path = PathOf(a.kid);
  const std::string order_path = pending.path;
  const Json a_jwk = PublicJwk(a.key);
  PrivateKey fresh = NewKey();
  PrivateKey other_key = NewKey();

  struct Case {
    std::string name;
    std::function<Built()> build;
    int status;
    std::string type;
    bool consumes_nonce;
  };
  const std::vector<Case> cases = {
      // ---- transport and JWS framing ----
      {"wrong content type",
       [&] {
         Built x = kid_post(a, account_path, "");
         x.request.headers = {{"Content-Type", "application/json"}};
         return x;
       },
       415, "malformed", false},
      {"missing content type",
       [&] {
         Built x = kid_post(a, account_path, "");
         x.request.headers.clear();
         return x;
       },
       415, "malformed", false},
      {"oversized body",
       [&] {
         return kid_post(a, std::string(kNewOrderPath),
                         DumpJson(Json{{"identifiers", dns("big.localhost")},
                                       {"padding", std::string(20000, 'x')}}));
       },
       413, "malformed", false},
      {"body is not JSON",
       [&] {
         return Built{MakeRequest("POST", account_path, "not json", jose), ""};
       },
       400, "malformed", false},
      {"bad base64url in protected",
       [&] {
         Built x = kid_post(a, account_path, "");
         Json j = Json::parse(x.request.body);
         j["protected"] = j["protected"].get<std::string>() + "=";
         x.request.body = DumpJson(j);
         return x;
       },
       400, "malformed", false},
      {"bad base64url in signature",
       [&] {
         Built x = kid_post(a, account_path, "");
         Json j = Json::parse(x.request.body);
         j["signature"] = "+/+/" + j["signature"].get<std::string>();
         x.request.body = DumpJson(j);
         return x;
       },
       400, "malformed", false},
      {"alg none",
       [&] {
         const std::string n = Nonce();
         const std::string h = R"({"alg":"none","kid":")" + a.kid + R"(","url":")" +
                               Url(account_path) + R"(","nonce":")" + n + R"("})";
         return Built{MakeRequest("POST", account_path,
                                  DumpJson(Json{{"protected", Base64UrlEncode(h)},
                                                {"payload", ""},
                                                {"signature", "AAAA"}}),
                                  jose),
                      n};
       },
       400, "badSignatureAlgorithm", false},
      {"HS256",
       [&] {
         const std::string n = Nonce();
         const std::string h = R"({"alg":"HS256","kid":")" + a.kid + R"(","url":")" +
                               Url(account_path) + R"(","nonce":")" + n + R"("})";
         return Built{
             MakeRequest("POST", account_path,
                         DumpJson(Json{{"protected", Base64UrlEncode(h)},
                                       {"payload", ""},
                                       {"signature", Base64UrlEncode("0123456789abcdef")}}),
                         jose),
             n};
       },
       400, "badSignatureAlgorithm", false},
      {"alg does not match the key",
       [&] {
         const std::string n = Nonce();
         const std::string h = R"({"alg":"ES384","kid":")" + a.kid + R"(","url":")" +
                               Url(account_path) + R"(","nonce":")" + n + R"("})";
         return Built{MakeRequest("POST", account_path,
                                  DumpJson(Json{{"protected", Base64UrlEncode(h)},
                                                {"payload", ""},
                                                {"signature", Base64UrlEncode(Bytes(96, 1))}}),
                                  jose),
                      n};
       },
       400, "badSignatureAlgorithm", false},
      {"RSA 1024 jwk",
       [&] {
         BIGNUM* n_raw = nullptr;
         BIGNUM* e_raw = nullptr;
         EVP_PKEY_get_bn_param(rsa1024.get(), OSSL_PKEY_PARAM_RSA_N, &n_raw);
         EVP_PKEY_get_bn_param(rsa1024.get(), OSSL_PKEY_PARAM_RSA_E, &e_raw);
         crypto::BignumPtr n_bn(n_raw);
         crypto::BignumPtr e_bn(e_raw);
         Bytes n_bytes(static_cast<size_t>(BN_num_bytes(n_bn.get())));
         Bytes e_bytes(static_cast<size_t>(BN_num_bytes(e_bn.get())));
         BN_bn2bin(n_bn.get(), n_bytes.data());
         BN_bn2bin(e_bn.get(), e_bytes.data());
         const std::string nonce = Nonce();
         const std::string path(kNewAccountPath);
         Json h = {
             {"alg", "RS256"},
             {"jwk",
              {{"kty", "RSA"}, {"n", Base64UrlEncode(n_bytes)}, {"e", Base64UrlEncode(e_bytes)}}},
             {"url", Url(path)},
             {"nonce", nonce}};
         const std::string p = Base64UrlEncode(DumpJson(h));
         const std::string pl = Base64UrlEncode(std::string("{}"));
         crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
         EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, rsa1024.get());
         const std::string input = p + "." + pl;
         size_t len = 0;
         EVP_DigestSign(ctx.get(), nullptr, &len, AsBytes(input).data(), input.size());
         Bytes sig(len);
         EVP_DigestSign(ctx.get(), sig.data(), &len, AsBytes(input).data(), input.size());
         return Built{MakeRequest("POST", path,
                                  DumpJson(Json{{"protected", p},
                                                {"payload", pl},
                                                {"signature", Base64UrlEncode(sig)}}),
                                  jose),
                      nonce};
       },
       400, "badPublicKey", false},
      {"jwk and kid together",
       [&] {
         const std::string n = Nonce();
         Json h = KidHeader(a, account_path, n);
         h["jwk"] = a_jwk;
         return Built{MakeRequest("POST", account_path, Sign(a.key, h, ""), jose), n};
       },
       400, "malformed", false},
      {"neither jwk nor kid",
       [&] {
         const std::string n = Nonce();
         return Built{
             MakeRequest("POST", account_path,
                         Sign(a.key, {{"url", Url(account_path)}, {"nonce", n}}, ""), jose),
             n};
       },
       400, "malformed", false},
      {"kid on newAccount", [&] { return kid_post(a, std::string(kNewAccountPath), "{}"); }, 400,
       "malformed", false},
      {"jwk on newOrder",
       [&] {
         return jwk_post(a.key, std::string(kNewOrderPath),
                         DumpJson(Json{{"identifiers", dns("x.localhost")}}));
       },
       400, "malformed", false},
      {"wrong url",
       [&] {
         const std::string n = Nonce();
         Json h = KidHeader(a, std::string(kNewOrderPath), n);  // signed for another resource
         return Built{MakeRequest("POST", account_path, Sign(a.key, h, ""), jose), n};
       },
       403, "unauthorized", true},
      {"url with another host",
       [&] {
         const std::string n = Nonce();
         Json h = KidHeader(a, account_path, n);
         h["url"] = "https://evil.test" + account_path;
         return Built{MakeRequest("POST", account_path, Sign(a.key, h, ""), jose), n};
       },
       403, "unauthorized", true},
      {"replayed nonce",
       [&] {
         Built first = kid_post(a, account_path, "");
         EXPECT_EQ(Send(first.request).status, 200);
         return Built{MakeRequest("POST", account_path,
                                  Sign(a.key, KidHeader(a, account_path, first.nonce), ""), jose),
                      first.nonce};
       },
       400, "badNonce", false},
      {"missing nonce",
       [&] {
         return Built{
             MakeRequest("POST", account_path,
                         Sign(a.key, {{"kid", a.kid}, {"url", Url(account_path)}}, ""), jose),
             ""};
       },
       400, "badNonce", false},
      {"unknown nonce",
       [&] {
         return Built{
             MakeRequest("POST", account_path,
                         Sign(a.key, KidHeader(a, account_path, "bm90LWEtbm9uY2U"), ""), jose),
             "bm90LWEtbm9uY2U"};
       },
       400, "badNonce", false},
      {"unknown account kid",
       [&] {
         Client ghost{NewKey(), Url(kAccountPathPrefix) + "nosuchaccount", "nosuchaccount"};
         return kid_post(ghost, account_path, "");
       },
       400, "accountDoesNotExist", false},
      {"kid of another server",
       [&] {
         Client foreign{NewKey(), "https://other-ca.test/acme/acct/" + a.id, a.id};
         return kid_post(foreign, account_path, "");
       },
       400, "malformed", false},
      {"deactivated account", [&] { return kid_post(d, PathOf(d.kid), ""); }, 403, "unauthorized",
       true},
      {"POST-as-GET with a body", [&] { return kid_post(a, order_path, "{}"); }, 400, "malformed",
       true},
      {"payload not JSON", [&] { return kid_post(a, std::string(kNewOrderPath), "identifiers"); },
       400, "malformed", true},
      {"payload is a JSON array", [&] { return kid_post(a, std::string(kNewOrderPath), "[]"); },
       400, "malformed", true},
      {"payload with duplicate keys",
       [&] {
         return kid_post(a, std::string(kNewOrderPath),
                         R"({"identifiers":[{"type":"dns","value":"x.localhost"}],)"
                         R"("identifiers":[{"type":"dns","value":"y.localhost"}]})");
       },
       400, "malformed", true},
      {"protected header with duplicate keys",
       [&] {
         return raw_post(
             a, account_path,
             [&](const std::string& n) {
               return R"({"alg":"ES256","kid":")" + a.kid + R"(","kid":")" + a.kid +
                      R"(","url":")" + Url(account_path) + R"(","nonce":")" + n + R"("})";
             },
             "");
       },
       400, "malformed", false},
      {"unsigned protected header tampered",
       [&] {
         Built x = kid_post(a, account_path, "");
         Json j = Json::parse(x.request.body);
         Json h = KidHeader(a, account_path, x.nonce);
         h["alg"] = "ES256";
         h["extra"] = "changed after signing";
         j["protected"] = Base64UrlEncode(DumpJson(h));
         x.request.body = DumpJson(j);
         return x;
       },
       400, "malformed", false},
      {"signature over other data",
       [&] {
         Built x = kid_post(a, account_path, "");
         Json j = Json::parse(x.request.body);
         auto sig = crypto::SignJose(a.key, crypto::JwsAlg::kES256, AsBytes("something else"));
         j["signature"] = Base64UrlEncode(*sig);
         x.request.body = DumpJson(j);
         return x;
       },
       400, "malformed", false},
      {"payload swapped after signing",
       [&] {
         Built x = kid_post(a, std::string(kNewOrderPath),
                            DumpJson(Json{{"identifiers", dns("x.localhost")}}));
         Json j = Json::parse(x.request.body);
         j["payload"] = Base64UrlEncode(DumpJson(Json{{"identifiers", dns("y.localhost")}}));
         x.request.body = DumpJson(j);
         return x;
       },
       400, "malformed", false},
      {"extra JWS member 'header'",
       [&] {
         Built x = kid_post(a, account_path, "");
         Json j = Json::parse(x.request.body);
         j["header"] = {{"kid", a.kid}};
         x.request.body = DumpJson(j);
         return x;
       },
       400, "malformed", false},
      {"general serialization 'signatures'",
       [&] {
         Built x = kid_post(a, account_path, "");
         Json j = Json::parse(x.request.body);
         Json general = {
             {"payload", j["payload"]},
             {"signatures",
              Json::array({{{"protected", j["protected"]}, {"signature", j["signature"]}}})}};
         x.request.body = DumpJson(general);
         return x;
       },
       400, "malformed", false},
      {"crit header",
       [&] {
         const std::string n = Nonce();
         Json h = KidHeader(a, account_path, n);
         h["crit"] = Json::array({"exp"});
         h["exp"] = 1;
         return Built{MakeRequest("POST", account_path, Sign(a.key, h, ""), jose), n};
       },
       400, "malformed", false},
      {"b64 false",
       [&] {
         const std::string n = Nonce();
         Json h = KidHeader(a, account_path, n);
         h["b64"] = false;
         return Built{MakeRequest("POST", account_path, Sign(a.key, h, ""), jose), n};
       },
       400, "malformed", false},
      // ---- accounts ----
      {"newAccount with a tel: contact",
       [&] {
         return jwk_post(fresh, std::string(kNewAccountPath),
                         R"({"contact":["tel:+3312345678"],"termsOfServiceAgreed":true})");
       },
       400, "unsupportedContact", true},
      {"newAccount with an invalid mailto",
       [&] {
         return jwk_post(fresh, std::string(kNewAccountPath),
                         R"({"contact":["mailto:a@b@example.com"]})");
       },
       400, "invalidContact", true},
      {"newAccount with mailto header fields",
       [&] {
         return jwk_post(fresh, std::string(kNewAccountPath),
                         R"({"contact":["mailto:a@example.com?subject=hi"]})");
       },
       400, "invalidContact", true},
      {"onlyReturnExisting for an unknown key",
       [&] {
         return jwk_post(fresh, std::string(kNewAccountPath), R"({"onlyReturnExisting":true})");
       },
       400, "accountDoesNotExist", true},
      {"account status other than deactivated",
       [&] { return kid_post(a, account_path, R"({"status":"revoked"})"); }, 400, "malformed",
       true},
      {"account URL of another account", [&] { return kid_post(a, PathOf(b.kid), ""); }, 403,
       "unauthorized", true},
      {"keyChange to a key already in use",
       [&] {
         return key_change(b.key, {{"jwk", PublicJwk(b.key)}, {"url", Url(kKeyChangePath)}},
                           {{"account", a.kid}, {"oldKey", a_jwk}});
       },
       409, "malformed", true},
      {"keyChange with mismatched inner/outer url",
       [&] {
         return key_change(other_key,
                           {{"jwk", PublicJwk(other_key)}, {"url", Url(kNewAccountPath)}},
                           {{"account", a.kid}, {"oldKey", a_jwk}});
       },
       400, "malformed", true},
      {"keyChange inner JWS with a nonce",
       [&] {
         return key_change(
             other_key,
             {{"jwk", PublicJwk(other_key)}, {"url", Url(kKeyChangePath)}, {"nonce", "AAAA"}},
             {{"account", a.kid}, {"oldKey", a_jwk}});
       },
       400, "malformed", true},
      {"keyChange with the wrong oldKey",
       [&] {
         return key_change(other_key, {{"jwk", PublicJwk(other_key)}, {"url", Url(kKeyChangePath)}},
                           {{"account", a.kid}, {"oldKey", PublicJwk(fresh)}});
       },
       400, "malformed", true},
      {"keyChange naming another account",
       [&] {
         return key_change(other_key, {{"jwk", PublicJwk(other_key)}, {"url", Url(kKeyChangePath)}},
                           {{"account", b.kid}, {"oldKey", a_jwk}});
       },
       400, "malformed", true},
      {"keyChange inner JWS signed by another key",
       [&] {
         return key_change(fresh, {{"jwk", PublicJwk(other_key)}, {"url", Url(kKeyChangePath)}},
                           {{"account", a.kid}, {"oldKey", a_jwk}});
       },
       400, "malformed", true},
      // ---- orders ----
      {"newOrder with no identifiers", [&] { return new_order(Json::array()); }, 400, "malformed",
       true},
      {"newOrder without the identifiers member",
       [&] {
         return kid_post(a, std::string(kNewOrderPath), R"({"notAfter":"2099-01-01T00:00:00Z"})");
       },
       400, "malformed", true},
      {"newOrder with an unsupported identifier type",
       [&] {
         return new_order(Json::array({{{"type", "email"}, {"value", "a@example.com"}}}));
       },
       400, "unsupportedIdentifier", true},
      {"newOrder with an ip identifier",
       [&] {
         return new_order(Json::array({{{"type", "ip"}, {"value", "127.0.0.1"}}}));
       },
       400, "unsupportedIdentifier", true},
      {"newOrder with a disallowed name", [&] { return new_order(dns("example.com")); }, 400,
       "rejectedIdentifier", true},
      {"newOrder with a look-alike suffix", [&] { return new_order(dns("evillocalhost")); }, 400,
       "rejectedIdentifier", true},
      {"newOrder with an IP address as dns", [&] { return new_order(dns("127.0.0.1")); }, 400,
       "rejectedIdentifier", true},
      {"newOrder with a wildcard", [&] { return new_order(dns("*.localhost")); }, 400,
       "rejectedIdentifier", true},
      {"newOrder with an invalid DNS name", [&] { return new_order(dns("under_score.localhost")); },
       400, "malformed", true},
      {"newOrder with one good and one bad name",
       [&] {
         return new_order(Json::array({{{"type", "dns"}, {"value", "ok.localhost"}},
                                       {{"type", "dns"}, {"value", "example.org"}}}));
       },
       400, "rejectedIdentifier", true},
      {"notAfter before notBefore",
       [&] {
         return new_order(dns("t.localhost"), {{"notBefore", "2099-01-02T00:00:00Z"},
                                               {"notAfter", "2099-01-01T00:00:00Z"}});
       },
       400, "malformed", true},
      {"notBefore not RFC 3339",
       [&] {
         return new_order(dns("t.localhost"), {{"notBefore", "tomorrow"}});
       },
       400, "malformed", true},
      {"replaces that is not a certificate id",
       [&] {
         return new_order(dns("valid.localhost"), {{"replaces", "not-an-id"}});
       },
       400, "malformed", true},
      {"replaces naming another account's certificate",
       [&] {
         return new_order(dns("b2.localhost"), {{"replaces", *b_ari}});
       },
       403, "unauthorized", true},
      {"order of another account", [&] { return kid_post(b, order_path, ""); }, 403, "unauthorized",
       true},
      {"order that does not exist",
       [&] { return kid_post(a, std::string(kOrderPathPrefix) + "nosuchorder", ""); }, 404,
       "malformed", true},
      // ---- finalize ----
      {"CSR with an extra name",
       [&] {
         return finalize_with(
             MakeCsr(NewKey().get(), std::nullopt,
                     DnsSan({"ready.localhost", "www.ready.localhost", "extra.localhost"})));
       },
       400, "badCSR", true},
      {"CSR missing a name",
       [&] {
         return finalize_with(MakeCsr(NewKey().get(), std::nullopt, DnsSan({"ready.localhost"})));
       },
       400, "badCSR", true},
      {"CSR with a CN that is not an identifier",
       [&] {
         return finalize_with(
             MakeCsr(NewKey().get(), std::string("other.localhost"), DnsSan(ready_names)));
       },
       400, "badCSR", true},
      {"CSR with an IP address SAN",
       [&] {
         return finalize_with(
             MakeCsr(NewKey().get(), std::nullopt, DnsSan(ready_names) + ",IP:127.0.0.1"));
       },
       400, "badCSR", true},
      {"CSR signed by another key",
       [&] {
         PrivateKey signer = NewKey();
         return finalize_with(
             MakeCsr(NewKey().get(), std::nullopt, DnsSan(ready_names), signer.get()));
       },
       400, "badCSR", true},
      {"CSR with an RSA 1024 key",
       [&] { return finalize_with(MakeCsr(rsa1024.get(), std::nullopt, DnsSan(ready_names))); },
       400, "badCSR", true},
      {"CSR with the account key",
       [&] { return finalize_with(MakeCsr(a.key.get(), std::nullopt, DnsSan(ready_names))); }, 400,
       "badCSR", true},
      {"CSR that is not DER",
       [&] {
         return finalize_with(Bytes{0x30, 0x03, 0x02, 0x01, 0x01});
       },
       400, "badCSR", true},
      {"CSR that is not base64url", [&] { return kid_post(a, finalize, R"({"csr":"MII+/="})"); },
       400, "malformed", true},
      {"finalize without a csr", [&] { return kid_post(a, finalize, "{}"); }, 400, "malformed",
       true},
      {"finalize of a pending order",
       [&] {
         return kid_post(
             a, pending.path + "/finalize",
             DumpJson(Json{{"csr", Base64UrlEncode(MakeCsr(NewKey().get(), std::nullopt,
                                                           DnsSan({"pending.localhost"})))}}));
       },
       403, "orderNotReady", true},
      {"finalize twice",
       [&] {
         return kid_post(
             a, valid.order.path + "/finalize",
             DumpJson(Json{{"csr", Base64UrlEncode(MakeCsr(NewKey().get(), std::nullopt,
                                                           DnsSan({"valid.localhost"})))}}));
       },
       403, "orderNotReady", true},
      {"finalize of another account's order",
       [&] {
         return kid_post(b, finalize,
                         DumpJson(Json{{"csr", Base64UrlEncode(MakeCsr(NewKey().get(), std::nullopt,
                                                                       DnsSan(ready_names)))}}));
       },
       403, "unauthorized", true},
      // ---- authorizations and challenges ----
      {"challenge of another account", [&] { return kid_post(b, pending_chall, "{}"); }, 403,
       "unauthorized", true},
      {"challenge that does not exist",
       [&] { return kid_post(a, std::string(kChallengePathPrefix) + "nosuchchallenge", "{}"); },
       404, "malformed", true},
      {"authorization of another account", [&] { return kid_post(b, pending_authz, ""); }, 403,
       "unauthorized", true},
      {"authorization update other than deactivation",
       [&] { return kid_post(a, pending_authz, R"({"status":"valid"})"); }, 400, "malformed", true},
      {"challenge answer that is not an object",
       [&] { return kid_post(a, pending_chall, R"("go")"); }, 400, "malformed", true},
      // ---- certificates ----
      {"certificate of another account",
       [&] { return kid_post(b, std::string(kCertificatePathPrefix) + valid.serial, ""); }, 403,
       "unauthorized", true},
      {"revoke with a bad reason code",
       [&] {
         return kid_post(
             a, std::string(kRevokeCertPath),
             DumpJson(Json{{"certificate", Base64UrlEncode(valid.der)}, {"reason", 6}}));
       },
       400, "badRevocationReason", true},
      {"revoke with an unassigned reason code",
       [&] {
         return kid_post(
             a, std::string(kRevokeCertPath),
             DumpJson(Json{{"certificate", Base64UrlEncode(valid.der)}, {"reason", 7}}));
       },
       400, "badRevocationReason", true},
      {"revoke twice",
       [&] {
         return kid_post(a, std::string(kRevokeCertPath),
                         DumpJson(Json{{"certificate", Base64UrlEncode(revoked.der)}}));
       },
       400, "alreadyRevoked", true},
      {"revoke by an unrelated key",
       [&] {
         return jwk_post(fresh, std::string(kRevokeCertPath),
                         DumpJson(Json{{"certificate", Base64UrlEncode(valid.der)}}));
       },
       403, "unauthorized", true},
      {"revoke by another account",
       [&] {
         return kid_post(b, std::string(kRevokeCertPath),
                         DumpJson(Json{{"certificate", Base64UrlEncode(valid.der)}}));
       },
       403, "unauthorized", true},
      {"revoke of something that is not a certificate",
       [&] {
         return kid_post(a, std::string(kRevokeCertPath),
                         DumpJson(Json{{"certificate", Base64UrlEncode(std::string("junk"))}}));
       },
       400, "malformed", true},
      // ---- renewal information (GET: no nonce) ----
      {"renewalInfo of an unknown certificate",
       [&] {
         const std::string id = valid_ari->substr(0, valid_ari->find('.')) + ".AQID";
         return Built{
             MakeRequest("GET", std::string(kRenewalInfoPath) + "/" + id, "", std::nullopt), ""};
       },
       404, "malformed", false},
      {"renewalInfo with a malformed id",
       [&] {
         return Built{
             MakeRequest("GET", std::string(kRenewalInfoPath) + "/no-dot-here", "", std::nullopt),
             ""};
       },
       400, "malformed", false},
  };
  ASSERT_GE(cases.size(), 40u);

  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Built built = c.build();
    const std::string before = Snapshot();
    const int64_t nonces_before = Count(Table::kNonces);
    const bool usable_before = !built.nonce.empty() && NonceUsable(built.nonce);

    const HttpResponse r = Send(built.request);

    ExpectProblem(r, c.status, c.type);
    EXPECT_TRUE(HasHeaderValue(r, "Link", "<" + Url(kDirectoryPath) + ">;rel=\"index\""));
    const bool post = built.request.method == "POST";
    EXPECT_EQ(r.Header("Replay-Nonce").has_value(), post);
    EXPECT_EQ(Snapshot(), before);
    const bool consumed = usable_before && !NonceUsable(built.nonce);
    EXPECT_EQ(consumed, c.consumes_nonce);
    // A POST's answer carries a fresh, usable nonce; ACME nonces never touch the nonces table
    // (the SQLite store keeps them in memory).
    if (post) {
      EXPECT_TRUE(NonceUsable(HeaderOr(r, "Replay-Nonce")));
    }
    EXPECT_EQ(Count(Table::kNonces), nonces_before);
    if (c.status == 409) {
      EXPECT_EQ(HeaderOr(r, "Location"), b.kid);  // keyChange names the key's account
    }
  }
  (void)b_ready;
}

// ---- concurrency --------------------------------------------------------------------------------

TEST_F(AcmeEngineTest, FiftyOrdersFinalizedInParallelEachIssueExactlyOnce) {
  Client c = NewAccount();
  constexpr int kOrders = 50;
  std::vector<OrderInfo> orders;
  std::vector<HttpRequest> requests;
  for (int i = 0; i < kOrders; ++i) {
    const std::string name = "o" + std::to_string(i) + ".localhost";
    orders.push_back(ReadyOrder(c, {name}));
    const std::string path = orders.back().path + "/finalize";
    PrivateKey key = NewKey();
    requests.push_back(MakeRequest(
        "POST", path,
        Sign(c.key, KidHeader(c, path, Nonce()),
             DumpJson(Json{{"csr", Base64UrlEncode(MakeCsr(key.get(), name, DnsSan({name})))}})),
        std::string(kJoseContentType)));
  }
  std::vector<HttpResponse> responses(kOrders);
  std::latch start(kOrders);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOrders; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      responses[i] = Send(requests[i]);
    });
  }
  for (auto& t : threads) t.join();

  std::set<std::string> serials;
  for (int i = 0; i < kOrders; ++i) {
    ASSERT_EQ(responses[i].status, 200) << responses[i].body;
    const Json o = Body(responses[i]);
    EXPECT_EQ(o["status"], "valid");
    serials.insert(o.value("certificate", ""));
    EXPECT_EQ(GetOrder(c, orders[i])["status"], "valid");
  }
  EXPECT_EQ(serials.size(), static_cast<size_t>(kOrders));
  EXPECT_EQ(Count(Table::kCertificates), kOrders);
  EXPECT_EQ(Count(Table::kSerials), kOrders);  // no serial reserved and left unused
}

TEST_F(AcmeEngineTest, OneOrderFinalizedByEightThreadsIssuesOnce) {
  Client c = NewAccount();
  OrderInfo order = ReadyOrder(c, {"race.localhost"});
  PrivateKey key = NewKey();
  const Bytes csr = MakeCsr(key.get(), std::nullopt, DnsSan({"race.localhost"}));
  const std::string path = order.path + "/finalize";
  constexpr int kThreads = 8;
  std::vector<HttpRequest> requests;
  for (int i = 0; i < kThreads; ++i) {
    requests.push_back(MakeRequest(
        "POST", path,
        Sign(c.key, KidHeader(c, path, Nonce()), DumpJson(Json{{"csr", Base64UrlEncode(csr)}})),
        std::string(kJoseContentType)));
  }
  std::vector<HttpResponse> responses(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      responses[i] = Send(requests[i]);
    });
  }
  for (auto& t : threads) t.join();
  int issued = 0;
  for (const auto& r : responses) {
    if (r.status == 200) {
      ++issued;
      EXPECT_EQ(Body(r)["status"], "valid");
    } else {
      ExpectProblem(r, 403, "orderNotReady");
    }
  }
  EXPECT_EQ(issued, 1);
  EXPECT_EQ(Count(Table::kCertificates), 1);
  EXPECT_EQ(Count(Table::kSerials), 1);
  EXPECT_EQ(GetOrder(c, order)["status"], "valid");
}

// ---- pure helpers -------------------------------------------------------------------------------

TEST(IdentifierPolicyTest, DnsNames) {
  IdentifierPolicy policy;
  policy.dns_suffixes = {"localhost", "example.com"};
  EXPECT_EQ(*CheckDnsIdentifier("LocalHost", policy), "localhost");
  EXPECT_EQ(*CheckDnsIdentifier("a.b.example.com", policy), "a.b.example.com");
  EXPECT_EQ(CheckDnsIdentifier("example.org", policy).error().code(),
            ErrorCode::kRejectedIdentifier);
  EXPECT_EQ(CheckDnsIdentifier("notexample.com", policy).error().code(),
            ErrorCode::kRejectedIdentifier);
  EXPECT_EQ(CheckDnsIdentifier("::1", policy).error().code(), ErrorCode::kRejectedIdentifier);
  EXPECT_EQ(CheckDnsIdentifier("10.0.0.1", policy).error().code(), ErrorCode::kRejectedIdentifier);
  for (const char* bad : {"", "a..localhost", "-a.localhost", "a-.localhost", "a.localhost.",
                          "a b.localhost", "a_b.localhost"}) {
    EXPECT_EQ(CheckDnsIdentifier(bad, policy).error().code(), ErrorCode::kMalformed) << bad;
  }
  EXPECT_EQ(CheckDnsIdentifier(std::string(64, 'a') + ".localhost", policy).error().code(),
            ErrorCode::kMalformed);
}

TEST(IdentifierPolicyTest, Contacts) {
  EXPECT_TRUE(CheckContact("mailto:ops@example.com"));
  EXPECT_TRUE(CheckContact("anonymous@anonymous.invalid"));
  EXPECT_EQ(CheckContact("ops@example.com").error().code(), ErrorCode::kUnsupportedContact);
  EXPECT_EQ(CheckContact("https://example.com").error().code(), ErrorCode::kUnsupportedContact);
  for (const char* bad : {"mailto:", "mailto:ops", "mailto:a@b,c@d.com", "mailto:a@b.com?x=y",
                          "mailto:@example.com", "mailto:a@example", "mailto:a@127.0.0.1"}) {
    EXPECT_EQ(CheckContact(bad).error().code(), ErrorCode::kInvalidContact) << bad;
  }
}

TEST(AriTest, CertIdRoundTripAndCanonicalForm) {
  const Bytes aki = {1, 2, 3, 4};
  // A serial with the top bit set carries a leading zero octet.
  const std::string id = Base64UrlEncode(aki) + "." + Base64UrlEncode(Bytes{0x00, 0x87, 0x65});
  auto parsed = ParseAriCertId(id);
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  EXPECT_EQ(parsed->serial_hex, "8765");
  EXPECT_EQ(parsed->key_identifier, aki);
  EXPECT_EQ(parsed->canonical, id);
  for (const std::string& bad :
       {std::string("abc"), std::string("a.b.c"), "." + Base64UrlEncode(Bytes{1}),
        Base64UrlEncode(aki) + "." + Base64UrlEncode(Bytes{0x80}),        // negative
        Base64UrlEncode(aki) + "." + Base64UrlEncode(Bytes{0x00, 0x01}),  // not minimal
        Base64UrlEncode(aki) + "." + Base64UrlEncode(Bytes(22, 0x11))}) {
    EXPECT_FALSE(ParseAriCertId(bad)) << bad;
  }
}

}  // namespace
}  // namespace e2eid::acme
