// `e2eid enrol` and `e2eid renew`: the device enrolment client (see cli/enrol_flow.h).
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/enrol_flow.h"
#include "crypto/random.h"
#include "oidc/http_client.h"

namespace e2eid::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitRefreshRefused = 3;

const std::vector<OptionSpec> kEnrolOptions = {
    {"state-dir", true, false,
     "directory for keys, certificate, refresh token and state (created 0700; required)", "DIR"},
    {"server", true, false,
     "ACME directory URL, e.g. https://localhost:8443/acme/directory (required on first "
     "enrolment; then remembered)",
     "URL"},
    {"issuer", true, false, "OpenID Connect issuer URL (required on first enrolment)", "URL"},
    {"client-id", true, false, "OpenID Connect client id (required on first enrolment)", "ID"},
    {"domain", true, false, "the organisation's Wire domain (required on first enrolment)",
     "DOMAIN"},
    {"key-type", true, false,
     "p256 (default), p384, p521 or ed25519: device and client keys (an existing device key "
     "keeps its type)",
     "TYPE"},
    {"rotate-key", false, false, "make a new device key instead of reusing device.key"},
    {"login", true, false,
     "browser (authorization code + PKCE, loopback redirect; the default on a desktop, i.e. "
     "when DISPLAY or WAYLAND_DISPLAY is set) or device (RFC 8628 device code; the default "
     "otherwise)",
     "MODE"},
    {"login-timeout", true, false, "seconds to wait for the login to complete (default 300)",
     "SECONDS"},
    {"oidc-mode", true, false,
     "dpop (default: post the DPoP-bound access token), claims (log in again with the "
     "keyauth/acme_aud claims request and post the ID token) or nonce (log in again with "
     "nonce = base64url(SHA-256(keyauth)); browser login only)",
     "MODE"},
    {"access-token", true, false,
     "automation: use the IdP access token in FILE instead of logging in", "FILE"},
    {"id-token", true, false, "automation: use the IdP ID token in FILE (with --access-token)",
     "FILE"},
    {"validity", true, false,
     "ask for this certificate lifetime (e.g. 90d, 24h, 3600s; the CA may shorten it)", "DURATION"},
    {"ca-file", true, false,
     "PEM bundle trusted for the ACME server and the IdP (default: system trust store)", "PEM"},
    {"device-authority", true, false,
     "origin allowed to receive the access token for wire-dpop-01 (default: the ACME server's "
     "origin)",
     "URL"},
    {"help", false, false, "show this help"},
};

const std::vector<OptionSpec> kRenewOptions = {
    {"state-dir", true, false, "the directory `e2eid enrol` wrote (required)", "DIR"},
    {"force", false, false, "renew now even when renewal is not due"},
    {"rotate-key", false, false, "make a new device key for the new certificate"},
    {"daemon", false, false,
     "keep running: renew whenever due, back off on failures, stop on SIGTERM/SIGINT"},
    {"ca-file", true, false,
     "PEM bundle trusted for the ACME server and the IdP (overrides the "
     "one remembered at enrolment)",
     "PEM"},
    {"help", false, false, "show this help"},
};

void PrintLine(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

Result<std::unique_ptr<oidc::HttpClient>> MakeHttp(const std::string& ca_file) {
  oidc::HttpClientOptions options;
  options.ca_file = ca_file;
  auto client = oidc::MakeCurlHttpClient(options);
  if (!client) return Fail(Error::Internal("cannot create the HTTP client"));
  return client;
}

// "90d", "24h", "30m", "3600s" or "3600".
Result<std::chrono::seconds> ParseDuration(std::string_view text) {
  if (text.empty()) return Fail(Error::InvalidArgument("empty duration"));
  int64_t unit = 1;
  std::string_view digits = text;
  switch (text.back()) {
    case 'd':
      unit = 86400;
      digits.remove_suffix(1);
      break;
    case 'h':
      unit = 3600;
      digits.remove_suffix(1);
      break;
    case 'm':
      unit = 60;
      digits.remove_suffix(1);
      break;
    case 's':
      digits.remove_suffix(1);
      break;
    default:
      break;
  }
  if (digits.empty() || digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Fail(Error::InvalidArgument("'" + std::string(text) +
                                       "' is not a duration (e.g. 90d, 24h, 30m, 3600s)"));
  }
  const int64_t n = std::stoll(std::string(digits));
  if (n <= 0) return Fail(Error::InvalidArgument("the duration must be positive"));
  return std::chrono::seconds(n * unit);
}

// The CA file is remembered in state.json for `renew`, which may run from another directory.
std::string AbsolutePath(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.string();
}

// A browser can reach the loopback redirect only on the machine itself: on a desktop.
std::string DefaultLoginMode() {
  const char* display = std::getenv("DISPLAY");
  const char* wayland = std::getenv("WAYLAND_DISPLAY");
  const bool desktop =
      (display != nullptr && *display != '\0') || (wayland != nullptr && *wayland != '\0');
  return desktop ? "browser" : "device";
}

FlowEnvironment MakeEnvironment(const Clock& clock, RandomSource& rng) {
  FlowEnvironment env;
  env.make_http = MakeHttp;
  env.clock = &clock;
  env.rng = &rng;
  env.sleep = RealSleeper();
  env.print = PrintLine;
  return env;
}

void PrintCertificate(const char* verb, const EnrolResult& r, const std::string& dir) {
  std::printf(
      "%s device %s\n", verb,
      ("wireapp://" + r.state.user_id + "!" + r.state.device_id + "@" + r.state.domain).c_str());
  std::printf("  certificate:  %s/cert.pem (serial %s)\n", dir.c_str(),
              r.certificate.serial_hex.c_str());
  std::printf("  chain:        %s/chain.pem\n", dir.c_str());
  std::printf("  valid:        %s .. %s\n", FormatRfc3339(r.certificate.not_before).c_str(),
              FormatRfc3339(r.certificate.not_after).c_str());
  std::fflush(stdout);
}

// A random factor in [1 - spread, 1 + spread].
double Jitter(RandomSource& rng, double spread) {
  std::array<uint8_t, 4> b{};
  if (!rng.Fill(b)) return 1.0;
  const uint32_t v = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  const double unit = static_cast<double>(v) / 4294967295.0;  // [0, 1]
  return 1.0 - spread + 2.0 * spread * unit;
}

// Waits up to `delay` for SIGTERM/SIGINT (blocked by the caller). True when a signal came.
bool WaitForStopSignal(const sigset_t& set, std::chrono::seconds delay) {
  const auto end = std::chrono::steady_clock::now() + delay;
  for (;;) {
    const auto left = end - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return false;
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
    timespec ts{};
    ts.tv_sec = secs.count();
    ts.tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(left - secs).count();
    const int sig = ::sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return true;
    if (errno != EINTR && errno != EAGAIN) return false;
  }
}

int RunDaemon(const RenewSettings& settings, FlowEnvironment& env, RandomSource& rng) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  constexpr std::chrono::seconds kMaxSleep = std::chrono::hours(6);
  constexpr std::chrono::seconds kMinSleep = std::chrono::minutes(1);
  constexpr std::chrono::seconds kBackoffBase = std::chrono::seconds(30);
  constexpr std::chrono::seconds kBackoffCap = std::chrono::hours(1);
  int failures = 0;
  PrintLine("e2eid renew: daemon started for " + settings.state_dir);
  for (;;) {
    std::chrono::seconds delay;
    auto outcome = RenewDevice(settings, env);
    if (!outcome) {
      ++failures;
      auto backoff = kBackoffBase * (int64_t{1} << std::min(failures - 1, 10));
      backoff = std::min<std::chrono::seconds>(backoff, kBackoffCap);
      delay = std::chrono::seconds(std::max<int64_t>(
          1, static_cast<int64_t>(static_cast<double>(backoff.count()) * Jitter(rng, 0.5))));
      if (auto after = outcome.error().retry_after()) delay = std::max(delay, *after);
      PrintLine("e2eid renew: " + outcome.error().detail() + " (attempt " +
                std::to_string(failures) + "; retrying in " + std::to_string(delay.count()) +
                " s)");
    } else if (outcome->status == RenewOutcome::Status::kRefreshRefused) {
      PrintLine("e2eid renew: " + outcome->message);
      return kExitRefreshRefused;
    } else {
      failures = 0;
      TimePoint renew_at = outcome->decision.renew_at;
      if (outcome->result) {
        PrintCertificate("Renewed", *outcome->result, settings.state_dir);
        const auto& cert = outcome->result->certificate;
        renew_at =
            DecideRenewal(env.clock->Now(), cert.not_before, cert.not_after, std::nullopt, false)
                .renew_at;
      }
      auto until = renew_at - env.clock->Now();
      auto base = std::clamp<std::chrono::seconds>(until, kMinSleep, kMaxSleep);
      delay = std::chrono::seconds(std::max<int64_t>(
          1, static_cast<int64_t>(static_cast<double>(base.count()) * Jitter(rng, 0.1))));
      PrintLine("e2eid renew: next check in " + std::to_string(delay.count()) +
                " s (renewal due at " + FormatRfc3339(renew_at) + ")");
    }
    if (WaitForStopSignal(set, delay)) {
      PrintLine("e2eid renew: stopping");
      return kExitOk;
    }
  }
}

}  // namespace

int RunEnrol(const std::vector<std::string>& argv) {
  auto args = Args::Parse("enrol", kEnrolOptions, argv);
  if (!args) {
    std::fprintf(stderr, "%s\n", args.error().detail().c_str());
    return kExitUsage;
  }
  if (args->Has("help")) {
    std::printf(
        "Usage: e2eid enrol --state-dir DIR [--server URL --issuer URL --client-id ID "
        "--domain DOMAIN]\n"
        "                   [--key-type TYPE] [--rotate-key] [--login browser|device] "
        "[--login-timeout SECONDS]\n"
        "                   [--oidc-mode dpop|claims|nonce] [--access-token FILE [--id-token "
        "FILE]]\n"
        "                   [--validity DURATION] [--ca-file PEM] [--device-authority URL]\n\n"
        "Logs in at the identity provider, then obtains a Wire end-to-end identity certificate "
        "for this device\nfrom the ACME server (wire-dpop-01 and wire-oidc-01 challenges). "
        "Exit codes: 0 ok, 1 error,\n2 usage.\n\n%s",
        FormatOptions(kEnrolOptions).c_str());
    return kExitOk;
  }
  if (!args->positional().empty()) {
    std::fprintf(stderr, "e2eid enrol: unexpected argument '%s'\n", args->positional()[0].c_str());
    return kExitUsage;
  }
  auto usage = [](const std::string& msg) {
    std::fprintf(stderr, "e2eid enrol: %s\n", msg.c_str());
    return kExitUsage;
  };
  if (!args->Has("state-dir")) return usage("missing required option --state-dir");
  EnrolSettings s;
  s.state_dir = *args->Get("state-dir");
  s.directory_url = args->GetOr("server", "");
  s.issuer = args->GetOr("issuer", "");
  s.client_id = args->GetOr("client-id", "");
  s.domain = args->GetOr("domain", "");
  s.ca_file = AbsolutePath(args->GetOr("ca-file", ""));
  s.device_authority = args->GetOr("device-authority", "");
  s.rotate_key = args->Has("rotate-key");
  if (auto t = args->Get("key-type")) {
    auto type = crypto::ParseKeyType(*t);
    if (!type || *type == crypto::KeyType::kRsa) {
      return usage("--key-type: '" + *t + "' is not one of p256, p384, p521, ed25519");
    }
    s.key_type = *type;
  }
  const std::string login = args->GetOr("login", DefaultLoginMode());
  if (login == "browser") {
    s.login = LoginMode::kBrowser;
  } else if (login == "device") {
    s.login = LoginMode::kDevice;
  } else {
    return usage("--login: '" + login + "' is not browser or device");
  }
  if (args->Has("access-token") || args->Has("id-token")) {
    if (args->Has("login"))
      return usage("--login and --access-token/--id-token exclude each other");
    if (!args->Has("access-token")) return usage("--id-token needs --access-token");
    s.login = LoginMode::kTokenFiles;
    s.access_token_file = *args->Get("access-token");
    s.id_token_file = args->GetOr("id-token", "");
  }
  const std::string mode = args->GetOr("oidc-mode", "dpop");
  if (mode == "dpop") {
    s.oidc_mode = OidcMode::kDpop;
  } else if (mode == "claims") {
    s.oidc_mode = OidcMode::kClaims;
  } else if (mode == "nonce") {
    s.oidc_mode = OidcMode::kNonce;
    if (s.login == LoginMode::kDevice) return usage("--oidc-mode nonce needs --login browser");
  } else {
    return usage("--oidc-mode: '" + mode + "' is not dpop, claims or nonce");
  }
  if (auto t = args->Get("login-timeout")) {
    auto d = ParseDuration(*t);
    if (!d) return usage("--login-timeout: " + d.error().detail());
    s.login_timeout = *d;
  }
  if (auto v = args->Get("validity")) {
    auto d = ParseDuration(*v);
    if (!d) return usage("--validity: " + d.error().detail());
    s.validity = *d;
  }
  // Without an earlier enrolment, the server settings must all be given.
  auto previous = StateDir(s.state_dir).LoadState();
  if (previous && !previous->has_value()) {
    for (const char* name : {"server", "issuer", "client-id", "domain"}) {
      if (!args->Has(name)) {
        return usage(std::string("--") + name + " is required (no earlier enrolment in " +
                     s.state_dir + ")");
      }
    }
  }
  SystemClock clock;
  crypto::SecureRandom rng;
  FlowEnvironment env = MakeEnvironment(clock, rng);
  auto result = EnrolDevice(s, env);
  if (!result) {
    std::fprintf(stderr, "e2eid enrol: %s\n", result.error().detail().c_str());
    return kExitError;
  }
  PrintCertificate("Enrolled", *result, s.state_dir);
  return kExitOk;
}

int RunRenew(const std::vector<std::string>& argv) {
  auto args = Args::Parse("renew", kRenewOptions, argv);
  if (!args) {
    std::fprintf(stderr, "%s\n", args.error().detail().c_str());
    return kExitUsage;
  }
  if (args->Has("help")) {
    std::printf(
        "Usage: e2eid renew --state-dir DIR [--force] [--rotate-key] [--daemon] [--ca-file PEM]\n\n"
        "Renews the certificate of `e2eid enrol` without user interaction when due (two thirds "
        "of its lifetime,\nor when the CA's renewal information says so): refresh grant with "
        "DPoP, then a new ACME order that\nreplaces the old certificate. Exit codes: 0 ok (also "
        "when not due), 1 error, 2 usage, 3 the identity\nprovider refused the refresh token "
        "(run e2eid enrol again).\n\n%s",
        FormatOptions(kRenewOptions).c_str());
    return kExitOk;
  }
  if (!args->positional().empty()) {
    std::fprintf(stderr, "e2eid renew: unexpected argument '%s'\n", args->positional()[0].c_str());
    return kExitUsage;
  }
  if (!args->Has("state-dir")) {
    std::fprintf(stderr, "e2eid renew: missing required option --state-dir\n");
    return kExitUsage;
  }
  RenewSettings s;
  s.state_dir = *args->Get("state-dir");
  s.force = args->Has("force");
  s.rotate_key = args->Has("rotate-key");
  s.ca_file = AbsolutePath(args->GetOr("ca-file", ""));
  SystemClock clock;
  crypto::SecureRandom rng;
  FlowEnvironment env = MakeEnvironment(clock, rng);
  if (args->Has("daemon")) {
    if (s.force) {
      std::fprintf(stderr, "e2eid renew: --force and --daemon exclude each other\n");
      return kExitUsage;
    }
    return RunDaemon(s, env, rng);
  }
  auto outcome = RenewDevice(s, env);
  if (!outcome) {
    std::fprintf(stderr, "e2eid renew: %s\n", outcome.error().detail().c_str());
    return kExitError;
  }
  switch (outcome->status) {
    case RenewOutcome::Status::kRefreshRefused:
      std::fprintf(stderr, "e2eid renew: %s\n", outcome->message.c_str());
      return kExitRefreshRefused;
    case RenewOutcome::Status::kNotDue:
      std::printf("Not due: the certificate will be renewed at %s (or earlier if the CA asks)\n",
                  FormatRfc3339(outcome->decision.renew_at).c_str());
      return kExitOk;
    case RenewOutcome::Status::kRenewed:
      PrintCertificate("Renewed", *outcome->result, s.state_dir);
      return kExitOk;
  }
  return kExitError;
}

}  // namespace e2eid::cli
