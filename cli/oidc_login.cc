#include "cli/oidc_login.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cli/dpop.h"
#include "core/encoding.h"
#include "crypto/digest.h"
#include "crypto/jwk.h"
#include "crypto/random.h"

namespace e2eid::cli {
namespace {

constexpr size_t kMaxRequestBytes = size_t{16} * 1024;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string StripSlash(std::string_view s) {
  if (s.ends_with('/')) s.remove_suffix(1);
  return std::string(s);
}

Error SocketError(const char* what) {
  return Error::Io(std::string("loopback listener: ") + what + ": " + std::strerror(errno));
}

// An fd closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

void SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the browser went away: nothing more to do
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void Respond(int fd, int status, std::string_view reason, std::string_view message) {
  const std::string body =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>e2eid</title></head>"
      "<body><p>" +
      std::string(message) + "</p></body></html>\n";
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                     "\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n";
  SendAll(fd, head + body);
}

// Reads the request head (up to the blank line), waiting at most 3 s for a slow peer. Empty when
// the peer sent nothing (browsers open speculative connections they may never use).
std::string ReadRequestHead(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  const auto ms = std::clamp<int64_t>(timeout.count(), 1, 3000);
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string head;
  char buf[2048];
  while (head.size() < kMaxRequestBytes && head.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  return head;
}

std::string OptionalString(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<TokenSet> ParseTokenSet(const Json& json) {
  TokenSet t;
  E2EID_TRY(access, GetString(json, "access_token", "token response"));
  E2EID_TRY(type, GetString(json, "token_type", "token response"));
  t.access_token = std::move(access);
  t.token_type = std::move(type);
  t.id_token = OptionalString(json, "id_token");
  t.refresh_token = OptionalString(json, "refresh_token");
  if (auto it = json.find("expires_in"); it != json.end() && it->is_number_integer()) {
    t.expires_in = it->get<int64_t>();
  }
  if (!EqualsIgnoreCase(t.token_type, "DPoP") && !EqualsIgnoreCase(t.token_type, "Bearer")) {
    return Fail(Error::Malformed("token response: unsupported token_type '" + t.token_type + "'"));
  }
  return t;
}

}  // namespace

// ---- PKCE ----

std::string PkceS256(std::string_view verifier) {
  return Base64UrlEncode(crypto::Sha256(verifier));
}

Result<Pkce> NewPkce(RandomSource& rng) {
  E2EID_TRY(verifier, crypto::RandomToken(rng, 32));
  Pkce p;
  p.challenge = PkceS256(verifier);
  p.verifier = std::move(verifier);
  return p;
}

// ---- encoding ----

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string FormEncode(const FormFields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += '&';
    out += UrlEncode(name) + "=" + UrlEncode(value);
  }
  return out;
}

namespace {
Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      const int hi = i + 1 < s.size() ? HexDigit(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? HexDigit(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return Fail(Error::Malformed("bad percent-escape in query"));
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

Result<FormFields> ParseQuery(std::string_view query) {
  FormFields fields;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    E2EID_TRY(name, PercentDecode(part.substr(0, eq)));
    E2EID_TRY(value, PercentDecode(eq == std::string_view::npos ? std::string_view()
                                                                : part.substr(eq + 1)));
    fields.emplace_back(std::move(name), std::move(value));
  }
  return fields;
}

std::optional<std::string> FindField(const FormFields& fields, std::string_view name) {
  for (const auto& [k, v] : fields) {
    if (k == name) return v;
  }
  return std::nullopt;
}

// ---- tokens ----

Result<Json> DecodeJwtClaims(std::string_view jwt) {
  const size_t a = jwt.find('.');
  const size_t b = a == std::string_view::npos ? a : jwt.find('.', a + 1);
  if (a == std::string_view::npos || b == std::string_view::npos ||
      jwt.find('.', b + 1) != std::string_view::npos) {
    return Fail(Error::Malformed("token is not a compact JWT"));
  }
  auto payload = Base64UrlDecode(jwt.substr(a + 1, b - a - 1));
  if (!payload) return Fail(Error::Malformed("token payload is not base64url"));
  E2EID_TRY(claims, ParseJson(AsString(*payload), "token claims"));
  if (!claims.is_object()) return Fail(Error::Malformed("token claims are not a JSON object"));
  return claims;
}

Status CheckIdTokenClaims(const Json& claims, std::string_view issuer, std::string_view client_id,
                          const std::optional<std::string>& nonce) {
  const std::string iss = OptionalString(claims, "iss");
  if (StripSlash(iss) != StripSlash(issuer)) {
    return Fail(Error::Unauthorized("ID token: \"iss\" is '" + iss + "', expected '" +
                                    std::string(issuer) + "'"));
  }
  bool aud_ok = false;
  if (auto it = claims.find("aud"); it != claims.end()) {
    if (it->is_string()) aud_ok = it->get<std::string>() == client_id;
    if (it->is_array()) {
      for (const auto& a : *it)
        aud_ok = aud_ok || (a.is_string() && a.get<std::string>() == client_id);
    }
  }
  if (!aud_ok) {
    return Fail(Error::Unauthorized("ID token: \"aud\" does not contain the client id '" +
                                    std::string(client_id) + "'"));
  }
  if (nonce) {
    const std::string got = OptionalString(claims, "nonce");
    if (!crypto::ConstantTimeEquals(got, *nonce)) {
      return Fail(Error::Unauthorized("ID token: \"nonce\" does not match the login request"));
    }
  }
  return Ok();
}

std::optional<std::string> AccessTokenJkt(std::string_view access_token) {
  auto claims = DecodeJwtClaims(access_token);
  if (!claims) return std::nullopt;
  auto cnf = claims->find("cnf");
  if (cnf == claims->end() || !cnf->is_object()) return std::nullopt;
  std::string jkt = OptionalString(*cnf, "jkt");
  if (jkt.empty()) return std::nullopt;
  return jkt;
}

// ---- loopback listener ----

Result<LoopbackListener> LoopbackListener::Start() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Fail(SocketError("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Fail(SocketError("bind 127.0.0.1"));
  }
  if (::listen(fd.get(), 8) != 0) return Fail(SocketError("listen"));
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Fail(SocketError("getsockname"));
  }
  return LoopbackListener(fd.release(), ntohs(addr.sin_port));
}

LoopbackListener::LoopbackListener(LoopbackListener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), port_(other.port_) {}

LoopbackListener& LoopbackListener::operator=(LoopbackListener&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    port_ = other.port_;
  }
  return *this;
}

LoopbackListener::~LoopbackListener() {
  if (fd_ >= 0) ::close(fd_);
}

std::string LoopbackListener::redirect_uri() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/callback";
}

Result<FormFields> LoopbackListener::WaitForCallback(std::string_view expected_state,
                                                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    const int ready = left.count() <= 0 ? 0 : ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Fail(SocketError("poll"));
    }
    if (ready == 0) {
      return Fail(Error::Unavailable("no login callback arrived within " +
                                     std::to_string(timeout.count() / 1000) + " s"));
    }
    Fd conn(::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.get() < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return Fail(SocketError("accept"));
    }
    const std::string head =
        ReadRequestHead(conn.get(), std::max(left, std::chrono::milliseconds(1)));
    if (head.empty()) continue;  // e.g. a browser's speculative pre-connection
    const size_t line_end = head.find("\r\n");
    const std::string line = head.substr(0, line_end);
    // "GET /callback?query HTTP/1.1"
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos || line.substr(0, sp1) != "GET") {
      Respond(conn.get(), 400, "Bad Request", "Bad request.");
      continue;
    }
    const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const size_t q = target.find('?');
    if (target.substr(0, q) != "/callback") {
      Respond(conn.get(), 404, "Not Found", "Not found.");
      continue;
    }
    auto fields = ParseQuery(q == std::string::npos ? std::string() : target.substr(q + 1));
    if (!fields) {
      Respond(conn.get(), 400, "Bad Request", "Bad request.");
      return Fail(Error::Unauthorized("login callback refused: malformed query"));
    }
    const auto state = FindField(*fields, "state");
    if (!state || !crypto::ConstantTimeEquals(*state, expected_state)) {
      Respond(conn.get(), 400, "Bad Request",
              "Login refused: the state parameter does not match. Start the login again.");
      return Fail(Error::Unauthorized(
          "login callback refused: state mismatch (a request that this login did not start)"));
    }
    if (auto error = FindField(*fields, "error")) {
      Respond(conn.get(), 200, "OK", "Login failed. You can close this window.");
      const auto description = FindField(*fields, "error_description");
      return Fail(Error::Unauthorized("the identity provider refused the login: " + *error +
                                      (description ? " (" + *description + ")" : "")));
    }
    if (!FindField(*fields, "code")) {
      Respond(conn.get(), 400, "Bad Request", "Login failed: no authorization code.");
      return Fail(Error::Unauthorized("login callback without an authorization code"));
    }
    Respond(conn.get(), 200, "OK", "Login complete. You can close this window.");
    return std::move(*fields);
  }
}

// ---- OidcLogin ----

OidcLogin::OidcLogin(oidc::HttpClient& http, oidc::Discovery discovery, std::string client_id,
                     const crypto::PrivateKey& dpop_key, const Clock& clock, RandomSource& rng,
                     Sleeper sleep, std::string scope)
    : http_(http),
      discovery_(std::move(discovery)),
      client_id_(std::move(client_id)),
      key_(dpop_key),
      clock_(clock),
      rng_(rng),
      sleep_(std::move(sleep)),
      scope_(std::move(scope)) {}

void OidcLogin::Print(const LoginOptions& options, const std::string& line) const {
  if (options.print) {
    options.print(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  }
}

std::string OidcLogin::AuthorizationUrl(const std::string& redirect_uri, const std::string& state,
                                        const std::string& nonce, const std::string& code_challenge,
                                        const std::optional<Json>& claims,
                                        const std::string& dpop_jkt) const {
  FormFields q = {
      {"response_type", "code"},
      {"client_id", client_id_},
      {"redirect_uri", redirect_uri},
      {"scope", scope_},
      {"state", state},
      {"nonce", nonce},
      {"code_challenge", code_challenge},
      {"code_challenge_method", "S256"},
  };
  if (!dpop_jkt.empty()) q.emplace_back("dpop_jkt", dpop_jkt);
  if (claims) q.emplace_back("claims", DumpJson(*claims));
  const std::string& endpoint = discovery_.authorization_endpoint;
  return endpoint + (endpoint.find('?') == std::string::npos ? "?" : "&") + FormEncode(q);
}

Result<OidcLogin::TokenReply> OidcLogin::TokenRequest(const FormFields& form) {
  for (int attempt = 0;; ++attempt) {
    DpopProofClaims claims{.htm = "POST", .htu = discovery_.token_endpoint};
    if (!dpop_nonce_.empty()) claims.nonce = dpop_nonce_;
    E2EID_TRY(proof, MakeDpopProof(key_, claims, clock_.Now(), rng_));
    oidc::FetchRequest request{.method = "POST", .url = discovery_.token_endpoint};
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Accept", "application/json"},
                       {"DPoP", proof}};
    request.body = FormEncode(form);
    auto r = http_.Send(request);
    if (!r) return Fail(std::move(r).error().Context("token endpoint"));
    const bool nonce_changed = [&] {
      auto n = r->Header("DPoP-Nonce");
      if (!n || n->empty() || *n == dpop_nonce_) return false;
      dpop_nonce_ = *n;
      return true;
    }();
    auto json = ParseJson(r->body, "token response");
    if (!json || !json->is_object()) {
      return Fail(Error::Unavailable("the token endpoint answered HTTP " +
                                     std::to_string(r->status) + " without a JSON body"));
    }
    TokenReply reply;
    reply.status = r->status;
    if (r->status == 200) {
      E2EID_TRY(tokens, ParseTokenSet(*json));
      reply.tokens = std::move(tokens);
      return reply;
    }
    reply.error = OptionalString(*json, "error");
    reply.error_description = OptionalString(*json, "error_description");
    if (reply.error == "use_dpop_nonce" && nonce_changed && attempt < 2) continue;
    if (reply.error.empty()) reply.error = "HTTP " + std::to_string(r->status);
    return reply;
  }
}

namespace {
Error TokenError(const std::string& what, const std::string& error,
                 const std::string& description) {
  return Error::Unauthorized(what + ": the identity provider answered " + error +
                             (description.empty() ? "" : " (" + description + ")"));
}
}  // namespace

Result<TokenSet> OidcLogin::LoginWithBrowser(const LoginOptions& options) {
  E2EID_TRY(listener, LoopbackListener::Start());
  E2EID_TRY(pkce, NewPkce(rng_));
  E2EID_TRY(state, crypto::RandomToken(rng_, 16));
  E2EID_TRY(random_nonce, crypto::RandomToken(rng_, 16));
  const std::string nonce = options.nonce.value_or(random_nonce);
  E2EID_TRY(pub, key_.public_key());
  E2EID_TRY(jkt, crypto::JwkThumbprint(pub));
  const std::string redirect_uri = listener.redirect_uri();
  Print(options,
        "Open this URL to log in: " +
            AuthorizationUrl(redirect_uri, state, nonce, pkce.challenge, options.claims, jkt));
  E2EID_TRY(fields, listener.WaitForCallback(state, options.timeout));
  if (auto iss = FindField(fields, "iss");
      iss && StripSlash(*iss) != StripSlash(discovery_.issuer)) {
    return Fail(Error::Unauthorized("login callback: \"iss\" is '" + *iss + "', expected '" +
                                    discovery_.issuer + "' (mix-up attack?)"));
  }
  const std::string code = *FindField(fields, "code");
  E2EID_TRY(reply, TokenRequest({{"grant_type", "authorization_code"},
                                 {"code", code},
                                 {"redirect_uri", redirect_uri},
                                 {"client_id", client_id_},
                                 {"code_verifier", pkce.verifier}}));
  if (!reply.tokens) {
    return Fail(
        TokenError("exchanging the authorization code", reply.error, reply.error_description));
  }
  if (reply.tokens->id_token.empty()) {
    return Fail(Error::Unauthorized("the token response has no id_token (scope openid?)"));
  }
  E2EID_TRY(claims, DecodeJwtClaims(reply.tokens->id_token));
  E2EID_CHECK_OK(CheckIdTokenClaims(claims, discovery_.issuer, client_id_, nonce));
  return std::move(*reply.tokens);
}

Result<TokenSet> OidcLogin::LoginWithDeviceCode(const LoginOptions& options) {
  if (options.nonce) {
    return Fail(Error::InvalidArgument("the device login cannot carry an OIDC nonce"));
  }
  if (discovery_.device_authorization_endpoint.empty()) {
    return Fail(Error::Unavailable(
        "the identity provider offers no device authorization endpoint; use --login browser"));
  }
  FormFields form = {{"client_id", client_id_}, {"scope", scope_}};
  if (options.claims) form.emplace_back("claims", DumpJson(*options.claims));
  oidc::FetchRequest request{.method = "POST", .url = discovery_.device_authorization_endpoint};
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                     {"Accept", "application/json"}};
  request.body = FormEncode(form);
  auto r = http_.Send(request);
  if (!r) return Fail(std::move(r).error().Context("device authorization endpoint"));
  auto json = ParseJson(r->body, "device authorization response");
  if (!json || !json->is_object()) {
    return Fail(Error::Unavailable("the device authorization endpoint answered HTTP " +
                                   std::to_string(r->status) + " without a JSON body"));
  }
  if (r->status != 200) {
    return Fail(TokenError("device authorization", OptionalString(*json, "error"),
                           OptionalString(*json, "error_description")));
  }
  E2EID_TRY(device_code, GetString(*json, "device_code", "device authorization response"));
  E2EID_TRY(user_code, GetString(*json, "user_code", "device authorization response"));
  E2EID_TRY(verification_uri,
            GetString(*json, "verification_uri", "device authorization response"));
  std::string complete = OptionalString(*json, "verification_uri_complete");
  if (complete.empty()) complete = verification_uri;
  int64_t interval = 5;
  if (auto it = json->find("interval"); it != json->end() && it->is_number_integer()) {
    interval = std::clamp<int64_t>(it->get<int64_t>(), 1, 60);
  }
  std::chrono::seconds budget = options.timeout;
  if (auto it = json->find("expires_in"); it != json->end() && it->is_number_integer()) {
    budget = std::min(budget, std::chrono::seconds(std::max<int64_t>(it->get<int64_t>(), 1)));
  }
  Print(options, "Visit " + complete + " (code " + user_code + ")");
  std::chrono::seconds waited{0};
  for (;;) {
    if (waited >= budget) {
      return Fail(Error::Unavailable("the device login was not completed within " +
                                     std::to_string(budget.count()) + " s"));
    }
    sleep_(std::chrono::seconds(interval));
    waited += std::chrono::seconds(interval);
    E2EID_TRY(reply, TokenRequest({{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                                   {"device_code", device_code},
                                   {"client_id", client_id_}}));
    if (reply.tokens) return std::move(*reply.tokens);
    if (reply.error == "authorization_pending") continue;
    if (reply.error == "slow_down") {
      interval += 5;
      continue;
    }
    if (reply.error == "expired_token") {
      return Fail(Error::Unavailable("the device code expired before the login was completed"));
    }
    return Fail(TokenError("device login", reply.error, reply.error_description));
  }
}

Result<TokenSet> OidcLogin::Refresh(const std::string& refresh_token) {
  E2EID_TRY(reply, TokenRequest({{"grant_type", "refresh_token"},
                                 {"refresh_token", refresh_token},
                                 {"client_id", client_id_}}));
  if (reply.tokens) return std::move(*reply.tokens);
  if (reply.error == "invalid_grant") {
    return Fail(
        Error::Forbidden("the identity provider refused the refresh token (invalid_grant: " +
                         (reply.error_description.empty() ? std::string("no description")
                                                          : reply.error_description) +
                         "); run e2eid enrol again"));
  }
  return Fail(TokenError("refreshing the tokens", reply.error, reply.error_description));
}

}  // namespace e2eid::cli
