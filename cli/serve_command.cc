// `e2eid serve --config FILE`: loads the configuration, opens the store and the CA, and runs the
// HTTPS service until SIGTERM/SIGINT, then drains in-flight requests and exits.
//
// Observability: GET /metrics (Prometheus text format 0.0.4; it is served to anyone who can reach
// the listener: operators restrict it at their proxy or network), GET /healthz (liveness: the
// process answers) and GET /readyz (readiness: the store answers and, with [identity], the
// identity provider's discovery document is reachable; 503 with a JSON body naming what is not
// ready). Every log line of a request carries its request id.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "acme/device_authority.h"
#include "acme/engine.h"
#include "acme/http01_validator.h"
#include "acme/serial_registry.h"
#include "acme/tls_alpn01_validator.h"
#include "acme/wire.h"
#include "acme/wire_validators.h"
#include "ca/authority.h"
#include "ca/issuer.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/secrets.h"
#include "core/file.h"
#include "core/log.h"
#include "crypto/random.h"
#include "oidc/http_client.h"
#include "oidc/verifier.h"
#include "revocation/crl.h"
#include "revocation/ocsp.h"
#include "revocation/service.h"
#include "server/acme_routes.h"
#include "server/admin_api.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/problem.h"
#include "server/router.h"
#include "server/signals.h"
#include "server/work_queue.h"
#include "store/sqlite_store.h"

namespace e2eid::cli {
namespace {

// ---- observability ------------------------------------------------------------------------------

// The metric families of the service (server/metrics.h), registered once at start.
struct ServiceMetrics {
  explicit ServiceMetrics(server::MetricsRegistry& m)
      : http_requests(m.Counter("e2eid_http_requests_total",
                                "HTTP requests answered, by route pattern, method and status.",
                                {"route", "method", "status"})),
        http_duration(m.Histogram("e2eid_http_request_duration_seconds",
                                  "Time to answer an HTTP request, by route pattern.", {"route"})),
        issued(m.Counter("e2eid_certificates_issued_total",
                         "Certificates issued through ACME, by profile.", {"profile"})),
        refused(m.Counter("e2eid_enrolments_refused_total",
                          "ACME new-order, challenge and finalize requests refused, by problem "
                          "type.",
                          {"reason"})),
        revocations(m.Counter("e2eid_revocations_total",
                              "Revocation actions (ACME revokeCert, admin API), by scope.",
                              {"scope"})),
        certificates_revoked(m.Counter("e2eid_certificates_revoked_total",
                                       "Certificates whose status changed to revoked.")),
        jwks_fetches(m.Counter("e2eid_jwks_fetches_total",
                               "JWKS fetches from the identity provider, by outcome (success, "
                               "http_error, error).",
                               {"outcome"})),
        store_duration(m.Histogram("e2eid_store_transaction_duration_seconds",
                                   "Duration of store transactions (read or write).", {"kind"})),
        ocsp_requests(m.Counter("e2eid_ocsp_requests_total", "OCSP requests received.")) {}

  server::CounterFamily& http_requests;
  server::HistogramFamily& http_duration;
  server::CounterFamily& issued;
  server::CounterFamily& refused;
  server::CounterFamily& revocations;
  server::CounterFamily& certificates_revoked;
  server::CounterFamily& jwks_fetches;
  server::HistogramFamily& store_duration;
  server::CounterFamily& ocsp_requests;
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A Store that times every transaction (e2eid_store_transaction_duration_seconds{kind}).
class TimedStore final : public store::Store {
 public:
  TimedStore(store::Store& inner, server::HistogramFamily& duration)
      : inner_(inner), duration_(duration) {}
  Status InTransaction(const std::function<Status(store::Transaction&)>& fn) override {
    const auto start = std::chrono::steady_clock::now();
    Status st = inner_.InTransaction(fn);
    duration_.Observe({"write"}, SecondsSince(start));
    return st;
  }
  Status ReadOnly(const std::function<Status(store::Transaction&)>& fn) override {
    const auto start = std::chrono::steady_clock::now();
    Status st = inner_.ReadOnly(fn);
    duration_.Observe({"read"}, SecondsSince(start));
    return st;
  }
  Status InTransactionRelaxed(const std::function<Status(store::Transaction&)>& fn) override {
    const auto start = std::chrono::steady_clock::now();
    Status st = inner_.InTransactionRelaxed(fn);
    duration_.Observe({"write"}, SecondsSince(start));
    return st;
  }
  Status IssueNonce(const store::Nonce& n) override { return inner_.IssueNonce(n); }
  Status UseNonce(std::string_view value, TimePoint now) override {
    return inner_.UseNonce(value, now);
  }

 private:
  store::Store& inner_;
  server::HistogramFamily& duration_;
};

// An oidc::HttpClient that counts the JWKS fetches of the token verifier
// (e2eid_jwks_fetches_total{outcome}); discovery requests pass through uncounted.
class CountingHttpClient final : public oidc::HttpClient {
 public:
  CountingHttpClient(std::unique_ptr<oidc::HttpClient> inner, server::CounterFamily& fetches)
      : inner_(std::move(inner)), fetches_(fetches) {}
  Result<oidc::FetchResponse> Send(const oidc::FetchRequest& request) override {
    auto response = inner_->Send(request);
    if (!request.url.ends_with("/.well-known/openid-configuration")) {
      fetches_.Add({!response                                           ? "error"
                    : response->status >= 200 && response->status < 300 ? "success"
                                                                        : "http_error"});
    }
    return response;
  }
  Status CheckUrl(std::string_view url) const override { return inner_->CheckUrl(url); }

 private:
  std::unique_ptr<oidc::HttpClient> inner_;
  server::CounterFamily& fetches_;
};

// Counts revocations from the revocation events the service recorded (the audit trail is
// authoritative): e2eid_revocations_total{scope} and e2eid_certificates_revoked_total.
class RevocationMetrics final : public revocation::RevocationListener {
 public:
  RevocationMetrics(store::Store& store, ServiceMetrics& metrics)
      : store_(store), metrics_(metrics) {}
  void OnRevoked(const revocation::RevocationOutcome& outcome) override {
    std::string scope = "unknown";
    // The SQLite store's event cursor is the last id seen: "id - 1" pages to this event.
    auto st = store_.ReadOnly([&](store::Transaction& tx) -> Status {
      E2EID_TRY(page, tx.ListRevocationEvents(
                          {.after = std::to_string(outcome.event_id - 1), .limit = 1}));
      if (!page.items.empty() && page.items.front().id == outcome.event_id) {
        scope = std::string(store::ToString(page.items.front().scope_kind));
      }
      return Ok();
    });
    if (!st) LogWarn("cannot read a revocation event", {{"error", st.error().ToString()}});
    metrics_.revocations.Add({scope});
    metrics_.certificates_revoked.Add({}, static_cast<double>(outcome.affected));
  }

 private:
  store::Store& store_;
  ServiceMetrics& metrics_;
};

std::string MethodLabel(const std::string& method) {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == m) return method;
  }
  return "other";
}

// Issuances and refusals, from the ACME responses: a finalize answered with an order in status
// "valid" is an issuance; a 4xx problem on new-order, challenge or finalize is a refusal (badNonce
// is a retry, not a refusal).
void ObserveAcme(const std::string& route, const HttpResponse& response, ServiceMetrics& metrics) {
  const bool finalize = route == "/acme/order/{id}/finalize";
  const bool refusable = finalize || route == "/acme/new-order" || route == "/acme/chall/{id}";
  if (!refusable) return;
  auto body = ParseJson(response.body);
  if (!body || !body->is_object()) return;
  if (finalize && response.status == 200 && body->value("status", "") == "valid") {
    std::string profile = std::string(ca::ProfileName(ca::Profile::kTlsServer));
    if (auto ids = body->find("identifiers"); ids != body->end() && ids->is_array()) {
      for (const auto& id : *ids) {
        if (id.is_object() && id.value("type", "").starts_with("wireapp")) {
          profile = std::string(ca::ProfileName(ca::Profile::kDevice));
        }
      }
    }
    metrics.issued.Add({profile});
    return;
  }
  if (response.status >= 400 && response.status < 500) {
    std::string type = body->value("type", "");
    constexpr std::string_view kAcmePrefix = "urn:ietf:params:acme:error:";
    if (type.starts_with(kAcmePrefix)) type = type.substr(kAcmePrefix.size());
    if (type.empty() || type.size() > 64) type = "other";
    if (type != "badNonce") metrics.refused.Add({type});
  }
}

// /readyz: the store answers, and the identity provider (when configured) is reachable. The IdP
// check is a GET of its discovery document with short timeouts, cached for a few seconds so that
// probes do not hammer it.
class Readiness {
 public:
  Readiness(store::Store& store, std::string issuer, const std::string& ca_file)
      : store_(store), issuer_(std::move(issuer)) {
    if (!issuer_.empty()) {
      oidc::HttpClientOptions options;
      options.ca_file = ca_file;
      options.connect_timeout = std::chrono::milliseconds(2000);
      options.total_timeout = std::chrono::milliseconds(3000);
      http_ = oidc::MakeCurlHttpClient(options);
    }
  }

  HttpResponse Handle() {
    Json problems = Json::object();
    auto st = store_.ReadOnly([](store::Transaction& tx) -> Status {
      E2EID_TRY(n, tx.CountRows(store::Table::kCertificates));
      (void)n;
      return Ok();
    });
    if (!st) problems["store"] = "the store does not answer";
    if (http_ && !IdpReachable()) problems["identity_provider"] = "the IdP is not reachable";
    Json body = {{"status", problems.empty() ? "ready" : "not ready"}};
    if (!problems.empty()) {
      body["problems"] = problems;
      LogWarn("not ready", {{"problems", problems}});
    }
    HttpResponse r = HttpResponse::Json(problems.empty() ? 200 : 503, DumpJson(body));
    r.SetHeader("Cache-Control", "no-store");
    return r;
  }

 private:
  bool IdpReachable() {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (checked_ && now - checked_at_ < kCacheFor) return idp_ok_;
    std::string url = issuer_;
    while (!url.empty() && url.back() == '/') url.pop_back();
    auto response = http_->Send({.url = url + "/.well-known/openid-configuration"});
    idp_ok_ = response && response->status == 200;
    checked_ = true;
    checked_at_ = std::chrono::steady_clock::now();
    return idp_ok_;
  }

  static constexpr std::chrono::seconds kCacheFor{3};
  store::Store& store_;
  const std::string issuer_;
  std::unique_ptr<oidc::HttpClient> http_;
  std::mutex mu_;  // guards the cached outcome; held during the (bounded) check
  bool checked_ = false;
  bool idp_ok_ = false;
  std::chrono::steady_clock::time_point checked_at_;
};

// The identity collaborators of the engine, built from [identity].
struct Identity {
  std::unique_ptr<oidc::HttpClient> http;
  std::unique_ptr<oidc::TokenVerifier> verifier;
  std::optional<crypto::PrivateKey> authority_key;
  std::unique_ptr<acme::DeviceAuthority> device_authority;
  std::unique_ptr<acme::WireOidcValidator> oidc_validator;
  std::unique_ptr<acme::WireDpopValidator> dpop_validator;
};

// The built-in authority's signing key: loaded, or created (Ed25519, 0600) on first start.
Result<crypto::PrivateKey> LoadOrCreateAuthorityKey(const std::string& path) {
  if (PathExists(path)) {
    E2EID_TRY(pem, ReadFile(path));
    auto key = crypto::PrivateKey::FromPem(pem);
    if (!key) return Fail(std::move(key.error()).Context(path));
    return std::move(*key);
  }
  E2EID_TRY(key, crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
  E2EID_TRY(pem, key.ToPem());
  E2EID_CHECK_OK(WriteNewFile(path, pem, 0600));
  LogInfo("created the device authority key", {{"path", path}});
  return key;
}

Status SetUpIdentity(const Config& config, const Clock& clock, RandomSource& random,
                     store::Store& store, server::CounterFamily& jwks_fetches, Identity* out) {
  const Config::Identity& c = config.identity;
  oidc::HttpClientOptions http_options;
  http_options.ca_file = c.oidc_ca_file;
  out->http =
      std::make_unique<CountingHttpClient>(oidc::MakeCurlHttpClient(http_options), jwks_fetches);
  oidc::ProviderOptions provider;
  provider.issuer = c.oidc_issuer;
  provider.client_id = c.oidc_client_id;
  provider.leeway = c.leeway;
  provider.require_email_verified = c.require_email_verified;
  provider.roles_claim_path = c.roles_claim;
  provider.required_roles = c.required_roles;
  E2EID_TRY(verifier, oidc::MakeProvider(provider, *out->http, clock));
  out->verifier = std::move(verifier);

  std::vector<crypto::PublicKey> authority_keys;
  if (c.device_authority == "builtin") {
    E2EID_TRY(key, LoadOrCreateAuthorityKey(c.authority_key_file));
    out->authority_key.emplace(std::move(key));
    E2EID_TRY(pub, out->authority_key->public_key());
    authority_keys.push_back(std::move(pub));
    acme::DeviceAuthorityOptions da;
    da.base_url = config.server.external_url;
    da.domain = c.domain;
    da.max_devices_per_user = static_cast<size_t>(c.max_devices_per_user);
    da.token_lifetime = c.device_token_lifetime;
    da.leeway = c.leeway;
    da.name_claim = c.name_claim;
    da.handle_claim = c.handle_claim;
    out->device_authority = std::make_unique<acme::DeviceAuthority>(
        da, acme::DeviceAuthority::Deps{.store = store,
                                        .verifier = *out->verifier,
                                        .signing_key = *out->authority_key,
                                        .clock = clock,
                                        .random = random});
  } else {
    E2EID_TRY(pem, ReadFile(c.external_authority_key_file));
    auto pub = crypto::PublicKey::FromPem(pem);
    if (!pub) return Fail(std::move(pub.error()).Context(c.external_authority_key_file));
    authority_keys.push_back(std::move(*pub));
  }
  E2EID_TRY(binding, acme::ParseOidcBinding(c.oidc_binding));
  out->oidc_validator = std::make_unique<acme::WireOidcValidator>(
      *out->verifier, acme::WireOidcOptions{.domain = c.domain,
                                            .binding = binding,
                                            .accept_bound_access_token = c.accept_access_token,
                                            .max_access_token_age = c.access_token_max_age,
                                            .name_claim = c.name_claim,
                                            .handle_claim = c.handle_claim});
  out->dpop_validator = std::make_unique<acme::WireDpopValidator>(
      std::move(authority_keys), acme::WireDpopOptions{.domain = c.domain, .leeway = c.leeway},
      clock);
  return Ok();
}

const std::vector<OptionSpec> kServeOptions = {
    {"config", true, true, "the TOML configuration file (see config/e2eid.example.toml)", "FILE"},
    {"help", false, false, "show this help"},
};

struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};

Result<ListenAddress> ParseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || r.ec != std::errc() || r.ptr != port_text.data() + port_text.size() ||
      port > 65535) {
    return Fail(Error::Config("server.listen: expected host:port, got '" + listen + "'"));
  }
  return ListenAddress{host, static_cast<uint16_t>(port)};
}

// The TLS certificate and key for the HTTPS listener: from files, or issued now by our own CA for
// the configured names (the key then lives only in memory).
Result<server::TlsOptions> LoadOrIssueTls(const Config& config, const ca::CertificateAuthority& ca,
                                          ca::SerialRegistry& serials, const Clock& clock,
                                          RandomSource& random) {
  if (!config.server.tls_cert_file.empty()) {
    E2EID_TRY(chain, ReadFile(config.server.tls_cert_file));
    E2EID_TRY(key, ReadFile(config.server.tls_key_file));
    return server::TlsOptions{std::move(chain), std::move(key)};
  }
  E2EID_TRY(key, crypto::PrivateKey::Generate(crypto::KeyType::kP256));
  E2EID_TRY(pub, key.public_key());
  ca::ValidityPolicy policy;
  policy.default_validity = policy.max_validity = std::chrono::hours(24 * 30);
  ca::Issuer issuer(ca, policy, {}, serials, clock, random);
  ca::LeafRequest request;
  request.public_key = &pub;
  request.subject = {{"CN", config.server.tls_names.empty() ? std::string("e2eid")
                                                            : config.server.tls_names.front()}};
  request.dns_names = config.server.tls_names;
  request.profile = ca::Profile::kTlsServer;
  E2EID_TRY(cert, issuer.Issue(request));
  E2EID_TRY(key_pem, key.ToPem());
  LogInfo("issued the service's own TLS certificate",
          {{"serial", cert.serial_hex},
           {"names", config.server.tls_names},
           {"not_after", FormatRfc3339(cert.not_after)}});
  // The chain sent to clients: leaf and intermediate (the root is the clients' trust anchor).
  return server::TlsOptions{
      cert.pem + ca.chain_pem().substr(0, ca.chain_pem().size() - ca.root_pem().size()),
      std::move(key_pem)};
}

int Serve(const Config& config) {
  SetLogLevel(config.log.level);
  // Every line logged while a request is handled carries its request id.
  SetLogSink(server::RequestIdLogSink({}));
  SystemClock clock;
  crypto::SecureRandom random;

  // The same offline checks as `e2eid check-config`.
  if (auto st = CheckConfigFiles(config); !st) {
    LogError("bad configuration", {{"error", st.error().detail()}});
    return 1;
  }

  // Catch SIGTERM/SIGINT before any thread starts.
  server::TerminationSignalWatcher signals;

  auto opened_store = store::OpenSqliteStore({.path = config.store.path});
  if (!opened_store) {
    LogError("cannot open the store",
             {{"path", config.store.path}, {"error", opened_store.error().ToString()}});
    return 1;
  }
  server::MetricsRegistry registry;
  ServiceMetrics metrics(registry);
  TimedStore timed_store(**opened_store, metrics.store_duration);
  store::Store* const store = &timed_store;
  std::optional<std::string> passphrase;
  if (!config.ca.passphrase_file.empty()) {
    auto p = ReadSecretFile(config.ca.passphrase_file);
    if (!p) {
      LogError("cannot read the CA passphrase", {{"error", p.error().ToString()}});
      return 1;
    }
    passphrase = std::move(*p);
  }
  auto authority = ca::CertificateAuthority::Load(
      ca::CaPaths::In(config.ca.dir),
      passphrase ? std::optional<std::string_view>(*passphrase) : std::nullopt);
  passphrase.reset();
  if (!authority) {
    LogError("cannot load the CA (run `e2eid init` first?)",
             {{"dir", config.ca.dir}, {"error", authority.error().ToString()}});
    return 1;
  }
  // Every ACME certificate is stored durably before it is answered (see serial_registry.h).
  acme::StoreSerialRegistry serials(*store, clock,
                                    acme::StoreSerialRegistry::Durability::kRelaxedUntilStored);

  server::Router router;
  auto health = router.Get("/healthz",
                           [](const HttpRequest&, const server::RouteParams&) {
                             HttpResponse r;
                             r.headers.emplace_back("Content-Type", "application/json");
                             r.headers.emplace_back("Cache-Control", "no-store");
                             r.body = R"({"status":"ok"})";
                             return r;
                           },
                           {.head = true});
  if (!health) {
    LogError("routing", {{"error", health.error().ToString()}});
    return 1;
  }

  // ---- ACME ----
  const std::string& external_url = config.server.external_url;
  ca::Issuer issuer(*authority, config.validity,
                    ca::IssuerUrls{.crl_url = external_url + "/crl",
                                   .ocsp_url = external_url + "/ocsp",
                                   .ca_issuers_url = ""},
                    serials, clock, random);
  acme::Http01Options http01_options;
  http01_options.port = static_cast<uint16_t>(config.acme.http01_port);
  http01_options.resolver_overrides = config.acme.ResolveMap();
  auto http01 = acme::Http01Validator::Create(http01_options);
  if (!http01) {
    LogError("cannot set up http-01 validation", {{"error", http01.error().ToString()}});
    return 1;
  }
  acme::TlsAlpn01Options tls_alpn01_options;
  tls_alpn01_options.port = static_cast<uint16_t>(config.acme.tls_alpn01_port);
  tls_alpn01_options.resolver_overrides = config.acme.ResolveMap();
  auto tls_alpn01 = acme::TlsAlpn01Validator::Create(tls_alpn01_options);
  if (!tls_alpn01) {
    LogError("cannot set up tls-alpn-01 validation", {{"error", tls_alpn01.error().ToString()}});
    return 1;
  }
  // ---- revocation: one path, published by CRL and OCSP ----
  revocation::RevocationService revocations(*store, clock);
  revocation::CrlOptions crl_options;
  crl_options.lifetime = config.revocation.crl_lifetime;
  crl_options.max_age = config.revocation.crl_max_age;
  if (auto st = crl_options.Validate(); !st) {
    LogError("bad configuration", {{"error", "revocation: " + st.error().detail()}});
    return 1;
  }
  revocation::CrlPublisher crl(*authority, *store, clock, crl_options);
  if (auto st = crl.Start(); !st) {
    LogError("cannot build the first CRL", {{"error", st.error().ToString()}});
    return 1;
  }
  revocation::OcspOptions ocsp_options;
  ocsp_options.next_update = config.revocation.ocsp_next_update;
  ocsp_options.max_age = config.revocation.ocsp_max_age;
  ocsp_options.responder_validity = config.revocation.ocsp_responder_validity;
  auto ocsp = revocation::OcspResponder::Create(*authority, issuer, *store, clock, ocsp_options);
  if (!ocsp) {
    LogError("cannot set up the OCSP responder", {{"error", ocsp.error().ToString()}});
    return 1;
  }
  revocations.AddListener(&crl);
  revocations.AddListener(ocsp->get());
  RevocationMetrics revocation_metrics(*store, metrics);
  revocations.AddListener(&revocation_metrics);
  registry.Gauge("e2eid_crl_age_seconds", "Seconds since the current CRL's thisUpdate.",
                 [&crl, &clock]() -> std::optional<double> {
                   auto current = crl.Current();
                   if (!current) return std::nullopt;
                   return std::chrono::duration<double>(clock.Now() - current->this_update).count();
                 });
  registry.Gauge("e2eid_crl_number", "The CRL number of the current CRL.",
                 [&crl]() -> std::optional<double> {
                   auto current = crl.Current();
                   if (!current) return std::nullopt;
                   return static_cast<double>(current->number);
                 });
  {
    auto crl_route = [&crl](const HttpRequest& r, const server::RouteParams&) {
      auto res = crl.HandleCrl(r);
      return res ? std::move(*res) : server::ProblemResponse(res.error(), r.request_id);
    };
    revocation::OcspResponder* responder = ocsp->get();
    auto ocsp_route = [responder](const HttpRequest& r, const server::RouteParams&) {
      auto res = responder->HandleOcsp(r);
      return res ? std::move(*res) : server::ProblemResponse(res.error(), r.request_id);
    };
    for (auto st : {router.Get("/crl", crl_route, {.head = true}), router.Post("/ocsp", ocsp_route),
                    router.Get("/ocsp/{request}", ocsp_route)}) {
      if (!st) {
        LogError("routing", {{"error", st.error().ToString()}});
        return 1;
      }
    }
  }

  // ---- end-to-end identity ----
  Identity identity;
  if (config.identity.enabled()) {
    if (auto st = SetUpIdentity(config, clock, random, *store, metrics.jwks_fetches, &identity);
        !st) {
      LogError("cannot set up end-to-end identity", {{"error", st.error().ToString()}});
      return 1;
    }
  }
  acme::ValidatorMap validators = {{"http-01", http01->get()}, {"tls-alpn-01", tls_alpn01->get()}};
  if (identity.oidc_validator) {
    validators[std::string(acme::kWireOidcChallenge)] = identity.oidc_validator.get();
    validators[std::string(acme::kWireDpopChallenge)] = identity.dpop_validator.get();
  }

  server::WorkQueue validations({.name = "acme-validation",
                                 .threads = static_cast<size_t>(config.acme.validation_threads),
                                 .max_pending = 1024});
  acme::EngineOptions acme_options;
  acme_options.base_url = external_url;
  acme_options.nonce_lifetime = config.acme.nonce_lifetime;
  acme_options.order_lifetime = config.acme.order_lifetime;
  acme_options.authorization_lifetime = config.acme.authorization_lifetime;
  acme_options.identifiers.dns_suffixes = config.acme.dns_suffixes;
  acme_options.max_request_bytes = static_cast<size_t>(config.server.max_body_bytes);
  if (identity.oidc_validator) {
    acme_options.wire = acme::EngineOptions::Wire{
        .domain = config.identity.domain,
        .oidc_target = identity.oidc_validator->Target(),
        .dpop_target_template = identity.device_authority
                                    ? identity.device_authority->TargetTemplate()
                                    : config.identity.external_authority_url};
  }
  const acme::Engine engine(acme_options, {.store = *store,
                                           .issuer = issuer,
                                           .clock = clock,
                                           .random = random,
                                           .jobs =
                                               [&validations](std::function<void()> job) {
                                                 return validations.Post(std::move(job));
                                               },
                                           .validators = validators,
                                           .render_problem = server::AcmeProblemDocument,
                                           .revocations = &revocations});
  // Validation jobs reference the engine: they must all have finished before it goes away.
  struct DrainValidations {
    server::WorkQueue& queue;
    ~DrainValidations() { queue.Shutdown(); }
  } drain_validations{validations};
  if (auto st = server::AddAcmeRoutes(router, engine); !st) {
    LogError("routing", {{"error", st.error().ToString()}});
    return 1;
  }
  if (identity.device_authority) {
    if (auto st = server::AddDeviceAuthorityRoutes(router, *identity.device_authority); !st) {
      LogError("routing", {{"error", st.error().ToString()}});
      return 1;
    }
  }
  // ---- admin API: tokens of the same IdP, issued to the admin client ----
  std::unique_ptr<oidc::HttpClient> admin_http;
  std::unique_ptr<oidc::TokenVerifier> admin_verifier;
  std::unique_ptr<server::AdminApi> admin_api;
  if (!config.admin.client_id.empty()) {
    oidc::HttpClientOptions http_options;
    http_options.ca_file = config.identity.oidc_ca_file;
    admin_http = std::make_unique<CountingHttpClient>(oidc::MakeCurlHttpClient(http_options),
                                                      metrics.jwks_fetches);
    oidc::ProviderOptions provider;
    provider.issuer = config.identity.oidc_issuer;
    provider.client_id = config.admin.client_id;
    provider.leeway = config.identity.leeway;
    auto verifier = oidc::MakeProvider(provider, *admin_http, clock);
    if (!verifier) {
      LogError("cannot set up the admin API", {{"error", verifier.error().ToString()}});
      return 1;
    }
    admin_verifier = std::move(*verifier);
    admin_api = std::make_unique<server::AdminApi>(
        server::AdminApiOptions{.roles_claim = config.admin.roles_claim,
                                .admin_role = config.admin.role,
                                .base_url = external_url,
                                .leeway = config.identity.leeway},
        server::AdminApi::Deps{.store = *store,
                               .revocations = revocations,
                               .verifier = *admin_verifier,
                               .clock = clock});
    if (auto st = server::AddAdminRoutes(router, *admin_api); !st) {
      LogError("routing", {{"error", st.error().ToString()}});
      return 1;
    }
  }
  if (external_url.ends_with(":0")) {
    LogWarn("server.external_url ends with port 0: ACME URLs will not work; set external_url",
            {{"external_url", external_url}});
  }

  auto listen = ParseListen(config.server.listen);
  if (!listen) {
    LogError("bad configuration", {{"error", listen.error().detail()}});
    return 1;
  }
  server::HttpServer::Options options;
  options.address = listen->host;
  options.port = listen->port;
  if (config.server.threads > 0) options.threads = static_cast<size_t>(config.server.threads);
  options.max_body_bytes = static_cast<size_t>(config.server.max_body_bytes);
  options.max_header_bytes = static_cast<size_t>(config.server.max_header_bytes);
  options.read_timeout = config.server.read_timeout;
  options.idle_timeout = config.server.idle_timeout;
  options.drain_timeout = config.server.drain_timeout;
  if (config.server.tls) {
    auto tls = LoadOrIssueTls(config, *authority, serials, clock, random);
    if (!tls) {
      LogError("cannot set up TLS", {{"error", tls.error().ToString()}});
      return 1;
    }
    options.tls = std::move(*tls);
  }

  // ---- observability: /metrics, /readyz, and per-request metrics around the router ----
  Readiness readiness(*store, config.identity.enabled() ? config.identity.oidc_issuer : "",
                      config.identity.oidc_ca_file);
  for (auto st : {router.Get("/metrics",
                             [&registry](const HttpRequest&, const server::RouteParams&) {
                               HttpResponse r = HttpResponse::WithBody(
                                   200, std::string(server::kMetricsContentType),
                                   registry.Render());
                               r.SetHeader("Cache-Control", "no-store");
                               return r;
                             },
                             {.head = true}),
                  router.Get("/readyz",
                             [&readiness](const HttpRequest&, const server::RouteParams&) {
                               return readiness.Handle();
                             },
                             {.head = true})}) {
    if (!st) {
      LogError("routing", {{"error", st.error().ToString()}});
      return 1;
    }
  }
  const HttpHandler handler = [&router, &metrics](const HttpRequest& request) {
    const auto start = std::chrono::steady_clock::now();
    std::string pattern;
    HttpResponse response = router.Handle(request, &pattern);
    const std::string route = pattern.empty() ? "unmatched" : pattern;
    metrics.http_duration.Observe({route}, SecondsSince(start));
    metrics.http_requests.Add(
        {route, MethodLabel(request.method), std::to_string(response.status)});
    if (route == "/ocsp" || route == "/ocsp/{request}") metrics.ocsp_requests.Add({});
    ObserveAcme(route, response, metrics);
    return response;
  };

  server::HttpServer http(options, handler);
  if (auto st = http.Start(); !st) {
    LogError("cannot start the HTTP server", {{"error", st.error().ToString()}});
    return 1;
  }
  LogInfo("e2eid is serving", {{"listen", listen->host + ":" + std::to_string(http.port())},
                               {"external_url", config.server.external_url},
                               {"acme_directory", engine.Url(acme::kDirectoryPath)},
                               {"tls", config.server.tls},
                               {"store", config.store.path},
                               {"ca", config.ca.dir}});
  const int sig = signals.Wait();
  LogInfo("stopping: draining in-flight requests", {{"signal", sig}});
  http.Stop();
  validations.Shutdown();
  LogInfo("stopped");
  return 0;
}

}  // namespace

int RunServe(const std::vector<std::string>& argv) {
  auto args = Args::Parse("serve", kServeOptions, argv);
  if (!args) {
    std::fprintf(stderr, "%s\n", args.error().detail().c_str());
    return 2;
  }
  if (args->Has("help")) {
    std::printf("Usage: e2eid serve --config FILE\n\nRuns the CA service until SIGTERM.\n\n%s",
                FormatOptions(kServeOptions).c_str());
    return 0;
  }
  auto config = LoadConfig(*args->Get("config"), ProcessEnvironment());
  if (!config) {
    std::fprintf(stderr, "e2eid serve: %s\n", config.error().detail().c_str());
    return 2;
  }
  return Serve(*config);
}

}  // namespace e2eid::cli
