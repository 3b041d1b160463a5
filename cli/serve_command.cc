// `e2eid serve --config FILE`: loads the configuration, opens the store and the CA, and runs the
// HTTPS service until SIGTERM/SIGINT, then drains in-flight requests and exits.
#include <charconv>
#include <cstdio>

#include "acme/engine.h"
#include "acme/http01_validator.h"
#include "acme/serial_registry.h"
#include "acme/tls_alpn01_validator.h"
#include "ca/authority.h"
#include "ca/issuer.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/secrets.h"
#include "core/file.h"
#include "core/log.h"
#include "crypto/random.h"
#include "server/acme_routes.h"
#include "server/http_server.h"
#include "server/router.h"
#include "server/signals.h"
#include "server/work_queue.h"
#include "store/sqlite_store.h"

namespace e2eid::cli {
namespace {

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
  const acme::Engine engine(
      acme_options,
      {.store = **store,
       .issuer = issuer,
       .clock = clock,
       .random = random,
       .jobs =
           [&validations](std::function<void()> job) { return validations.Post(std::move(job)); },
       .validators = {{"http-01", http01->get()}, {"tls-alpn-01", tls_alpn01->get()}},
       .render_problem = server::AcmeProblemDocument});
  // Validation jobs reference the engine: they must all have finished before it goes away.
  struct DrainValidations {
    server::WorkQueue& queue;
    ~DrainValidations() { queue.Shutdown(); }
  } drain_validations{validations};
  if (auto st = server::AddAcmeRoutes(router, engine); !st) {
    LogError("routing", {{"error", st.error().ToString()}});
    return 1;
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
