// `e2eid serve --config FILE`: loads the configuration, opens the store and the CA, and runs the
// HTTPS service until SIGTERM/SIGINT, then drains in-flight requests and exits.
#include <charconv>
#include <cstdio>

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
#include "server/problem.h"
#include "server/router.h"
#include "server/signals.h"
#include "server/work_queue.h"
#include "store/sqlite_store.h"

namespace e2eid::cli {
namespace {

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
                     store::Store& store, Identity* out) {
  const Config::Identity& c = config.identity;
  oidc::HttpClientOptions http_options;
  http_options.ca_file = c.oidc_ca_file;
  out->http = oidc::MakeCurlHttpClient(http_options);
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
  SystemClock clock;
  crypto::SecureRandom random;

  // Catch SIGTERM/SIGINT before any thread starts.
  server::TerminationSignalWatcher signals;

  auto store = store::OpenSqliteStore({.path = config.store.path});
  if (!store) {
    LogError("cannot open the store",
             {{"path", config.store.path}, {"error", store.error().ToString()}});
    return 1;
  }
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
  acme::StoreSerialRegistry serials(**store, clock);

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
  revocation::RevocationService revocations(**store, clock);
  revocation::CrlOptions crl_options;
  crl_options.lifetime = config.revocation.crl_lifetime;
  crl_options.max_age = config.revocation.crl_max_age;
  if (auto st = crl_options.Validate(); !st) {
    LogError("bad configuration", {{"error", "revocation: " + st.error().detail()}});
    return 1;
  }
  revocation::CrlPublisher crl(*authority, **store, clock, crl_options);
  if (auto st = crl.Start(); !st) {
    LogError("cannot build the first CRL", {{"error", st.error().ToString()}});
    return 1;
  }
  revocation::OcspOptions ocsp_options;
  ocsp_options.next_update = config.revocation.ocsp_next_update;
  ocsp_options.max_age = config.revocation.ocsp_max_age;
  ocsp_options.responder_validity = config.revocation.ocsp_responder_validity;
  auto ocsp = revocation::OcspResponder::Create(*authority, issuer, **store, clock, ocsp_options);
  if (!ocsp) {
    LogError("cannot set up the OCSP responder", {{"error", ocsp.error().ToString()}});
    return 1;
  }
  revocations.AddListener(&crl);
  revocations.AddListener(ocsp->get());
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
    if (auto st = SetUpIdentity(config, clock, random, **store, &identity); !st) {
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
  const acme::Engine engine(acme_options, {.store = **store,
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
    admin_http = oidc::MakeCurlHttpClient(http_options);
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
                                .admin_role = config.admin.role},
        server::AdminApi::Deps{.store = **store,
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

  server::HttpServer http(options, router.AsHandler());
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
