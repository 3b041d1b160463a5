// `e2eid admin`: the admin API client (see cli/admin_client.h and server/admin_api.h).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "cli/admin_client.h"
#include "cli/commands.h"
#include "cli/enrol_util.h"
#include "cli/oidc_login.h"
#include "core/clock.h"
#include "core/file.h"
#include "crypto/key.h"
#include "crypto/random.h"
#include "oidc/discovery.h"
#include "oidc/http_client.h"

namespace e2eid::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

int PrintError(const Error& e) {
  std::fprintf(stderr, "error: %s\n", e.detail().c_str());
  return kExitError;
}

Result<std::unique_ptr<oidc::HttpClient>> MakeHttp(const Args& args) {
  oidc::HttpClientOptions options;
  options.ca_file = args.GetOr("ca-file", "");
  options.user_agent = "e2eid-admin";
  auto client = oidc::MakeCurlHttpClient(options);
  if (!client) return Fail(Error::Internal("cannot create the HTTP client"));
  return client;
}

std::string DefaultLoginMode() {
  const char* display = std::getenv("DISPLAY");
  const char* wayland = std::getenv("WAYLAND_DISPLAY");
  const bool desktop =
      (display != nullptr && *display != '\0') || (wayland != nullptr && *wayland != '\0');
  return desktop ? "browser" : "device";
}

// `e2eid admin login`: the enrolment client's OIDC login (cli/oidc_login.h) with a fresh DPoP
// key. The IdP binds the access token to that key (cnf.jkt), and the admin API accepts a bound
// token only with a proof of possession, so the key is kept next to the token (OUT.key, 0600).
int RunLogin(const AdminCommand& c) {
  const Args& a = c.args;
  const std::string mode = a.GetOr("login", DefaultLoginMode());
  if (mode != "browser" && mode != "device") {
    std::fprintf(stderr, "e2eid admin login: --login must be browser or device\n");
    return kExitUsage;
  }
  LoginOptions options;
  if (auto t = a.Get("login-timeout")) {
    char* end = nullptr;
    const long seconds = std::strtol(t->c_str(), &end, 10);
    if (end == t->c_str() || *end != '\0' || seconds <= 0 || seconds > 86400) {
      std::fprintf(stderr, "e2eid admin login: --login-timeout must be 1 to 86400 seconds\n");
      return kExitUsage;
    }
    options.timeout = std::chrono::seconds(seconds);
  }
  options.print = [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  };
  auto http = MakeHttp(a);
  if (!http) return PrintError(http.error());
  auto discovery = oidc::FetchDiscovery(**http, *a.Get("issuer"));
  if (!discovery) return PrintError(discovery.error());
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
  if (!key) return PrintError(key.error());
  SystemClock clock;
  crypto::SecureRandom rng;
  OidcLogin login(**http, std::move(*discovery), *a.Get("client-id"), *key, clock, rng,
                  RealSleeper(), "openid profile");
  auto tokens =
      mode == "browser" ? login.LoginWithBrowser(options) : login.LoginWithDeviceCode(options);
  if (!tokens) return PrintError(tokens.error());
  const std::string out = *a.Get("out");
  const bool bound = AccessTokenJkt(tokens->access_token).has_value();
  if (bound) {
    // The key first: a bound token without its key is useless.
    auto pem = key->ToPem();
    if (!pem) return PrintError(pem.error());
    if (auto st = WriteFileAtomic(AdminDpopKeyPath(out), *pem, 0600); !st) {
      return PrintError(st.error());
    }
  }
  if (auto st = WriteFileAtomic(out, tokens->access_token + "\n", 0600); !st) {
    return PrintError(st.error());
  }
  std::string who;
  if (auto claims = DecodeJwtClaims(tokens->access_token);
      claims && claims->is_object() && claims->contains("preferred_username") &&
      (*claims)["preferred_username"].is_string()) {
    who = " as " + (*claims)["preferred_username"].get<std::string>();
  }
  std::printf("Logged in%s; the access token is in %s", who.c_str(), out.c_str());
  if (bound) std::printf(" (DPoP-bound; its key is in %s)", AdminDpopKeyPath(out).c_str());
  if (tokens->expires_in > 0)
    std::printf(" (valid for %lld s)", static_cast<long long>(tokens->expires_in));
  std::printf("\n");
  return kExitOk;
}

}  // namespace

int RunAdmin(const std::vector<std::string>& argv) {
  auto command = ParseAdminCommand(argv);
  if (!command) {
    std::fprintf(stderr, "%s\n", command.error().detail().c_str());
    return kExitUsage;
  }
  if (command->name == "help") {
    std::fputs(AdminUsage().c_str(), stdout);
    return kExitOk;
  }
  if (command->name == "login") return RunLogin(*command);

  auto request = BuildAdminRequest(*command);
  if (!request) {
    std::fprintf(stderr, "%s\n", request.error().detail().c_str());
    return kExitUsage;
  }
  auto token = LoadAdminToken(command->args.Get("token-file"));
  if (!token) {
    std::fprintf(stderr, "e2eid admin: %s\n", token.error().detail().c_str());
    return token.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitError;
  }
  auto dpop_key =
      LoadAdminDpopKey(command->args.Get("dpop-key"), command->args.Get("token-file"), *token);
  if (!dpop_key) {
    std::fprintf(stderr, "e2eid admin: %s\n", dpop_key.error().detail().c_str());
    return kExitError;
  }
  auto http = MakeHttp(command->args);
  if (!http) return PrintError(http.error());
  AdminClient client(**http, *command->args.Get("server"), std::move(*token));
  SystemClock clock;
  crypto::SecureRandom rng;
  if (*dpop_key) client.UseDpop(**dpop_key, clock, rng);
  auto body = client.Send(*request);
  if (!body) return PrintError(body.error());
  if (request->raw) {
    std::fwrite(body->data(), 1, body->size(), stdout);
    return kExitOk;
  }
  auto reply = ParseJson(*body, "admin API reply");
  if (!reply) return PrintError(reply.error());
  const std::string text =
      command->args.Has("json") ? DumpJson(*reply, 2) + "\n" : RenderAdminReply(*command, *reply);
  std::fputs(text.c_str(), stdout);
  return kExitOk;
}

}  // namespace e2eid::cli
