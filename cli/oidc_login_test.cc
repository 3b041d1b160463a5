#include "cli/oidc_login.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <deque>
#include <thread>

#include "cli/dpop.h"
#include "cli/enrol_test_util.h"
#include "crypto/jwk.h"
#include "crypto/jws.h"
#include "crypto/random.h"

namespace e2eid::cli {
namespace {

using testing::FakeHttpClient;
using testing::JsonResponse;
using testing::UnsignedJwt;

const TimePoint kNow = FromUnix(1'700'000'000);

// Sends `request` to 127.0.0.1:port and returns the whole answer.
std::string HttpExchange(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket failed";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, static_cast<size_t>(n));
  } else {
    answer = "connect failed";
  }
  ::close(fd);
  return answer;
}

// Opens a connection and closes it without a request (like a browser's pre-connection).
void ConnectAndClose(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::close(fd);
}

std::string Get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

TEST(PkceTest, Rfc7636AppendixB) {
  EXPECT_EQ(PkceS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  crypto::SecureRandom rng;
  auto p = NewPkce(rng);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->verifier.size(), 43u);  // within RFC 7636's 43..128
  EXPECT_EQ(p->challenge, PkceS256(p->verifier));
}

TEST(EncodingTest, UrlAndFormEncoding) {
  EXPECT_EQ(UrlEncode("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(UrlEncode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
  EXPECT_EQ(FormEncode({{"grant_type", "refresh_token"}, {"x y", "1+1"}}),
            "grant_type=refresh_token&x%20y=1%2B1");
  auto q = ParseQuery("code=a%2Fb&state=s+t&empty=&flag");
  ASSERT_TRUE(q);
  EXPECT_EQ(FindField(*q, "code"), "a/b");
  EXPECT_EQ(FindField(*q, "state"), "s t");
  EXPECT_EQ(FindField(*q, "empty"), "");
  EXPECT_EQ(FindField(*q, "flag"), "");
  EXPECT_EQ(FindField(*q, "missing"), std::nullopt);
  EXPECT_FALSE(ParseQuery("a=%zz"));
  EXPECT_FALSE(ParseQuery("a=%4"));
}

TEST(JwtTest, DecodeAndChecks) {
  const std::string jwt = UnsignedJwt(
      {{"iss", "https://idp/realms/r"}, {"aud", Json::array({"other", "wire"})}, {"nonce", "n1"}});
  auto claims = DecodeJwtClaims(jwt);
  ASSERT_TRUE(claims);
  EXPECT_TRUE(CheckIdTokenClaims(*claims, "https://idp/realms/r/", "wire", "n1"));
  EXPECT_TRUE(CheckIdTokenClaims(*claims, "https://idp/realms/r", "wire", std::nullopt));
  EXPECT_FALSE(CheckIdTokenClaims(*claims, "https://evil/realms/r", "wire", "n1"));
  EXPECT_FALSE(CheckIdTokenClaims(*claims, "https://idp/realms/r", "e2eid", "n1"));
  auto bad_nonce = CheckIdTokenClaims(*claims, "https://idp/realms/r", "wire", "n2");
  ASSERT_FALSE(bad_nonce);
  EXPECT_EQ(bad_nonce.error().code(), ErrorCode::kUnauthorized);
  for (const char* bad : {"", "a.b", "a.b.c.d", "e30.!!.c2ln", "e30.WzFd.c2ln"}) {
    EXPECT_FALSE(DecodeJwtClaims(bad)) << bad;
  }
  EXPECT_EQ(AccessTokenJkt(UnsignedJwt({{"cnf", {{"jkt", "thumb"}}}})), "thumb");
  EXPECT_EQ(AccessTokenJkt(UnsignedJwt({{"sub", "x"}})), std::nullopt);
  EXPECT_EQ(AccessTokenJkt("opaque-token"), std::nullopt);
}

TEST(LoopbackListenerTest, ReturnsTheCodeWhenTheStateMatches) {
  auto listener = LoopbackListener::Start();
  ASSERT_TRUE(listener) << listener.error().ToString();
  EXPECT_GT(listener->port(), 0);
  EXPECT_EQ(listener->redirect_uri(),
            "http://127.0.0.1:" + std::to_string(listener->port()) + "/callback");
  std::string favicon_answer;
  std::string answer;
  std::thread browser([&] {
    ConnectAndClose(listener->port());
    favicon_answer = HttpExchange(listener->port(), Get("/favicon.ico"));
    answer = HttpExchange(listener->port(), Get("/callback?code=the%2Fcode&state=s1&iss=x"));
  });
  auto fields = listener->WaitForCallback("s1", std::chrono::seconds(30));
  browser.join();
  ASSERT_TRUE(fields) << fields.error().ToString();
  EXPECT_EQ(FindField(*fields, "code"), "the/code");
  EXPECT_EQ(FindField(*fields, "iss"), "x");
  EXPECT_EQ(favicon_answer.rfind("HTTP/1.1 404", 0), 0u) << favicon_answer;
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK", 0), 0u) << answer;
  EXPECT_NE(answer.find("Login complete"), std::string::npos);
  EXPECT_NE(answer.find("Content-Type: text/html"), std::string::npos);
}

TEST(LoopbackListenerTest, RefusesAStateMismatch) {
  auto listener = LoopbackListener::Start();
  ASSERT_TRUE(listener);
  for (const char* target : {"/callback?code=c&state=forged", "/callback?code=c"}) {
    std::string answer;
    std::thread browser([&] { answer = HttpExchange(listener->port(), Get(target)); });
    auto fields = listener->WaitForCallback("expected-state", std::chrono::seconds(30));
    browser.join();
    ASSERT_FALSE(fields) << target;
    EXPECT_EQ(fields.error().code(), ErrorCode::kUnauthorized);
    EXPECT_NE(fields.error().detail().find("state mismatch"), std::string::npos);
    EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  }
}

TEST(LoopbackListenerTest, ReportsTheIdpErrorAndTimesOut) {
  auto listener = LoopbackListener::Start();
  ASSERT_TRUE(listener);
  std::string answer;
  std::thread browser([&] {
    answer = HttpExchange(listener->port(),
                          Get("/callback?error=access_denied&error_description=no+way&state=s"));
  });
  auto fields = listener->WaitForCallback("s", std::chrono::seconds(30));
  browser.join();
  ASSERT_FALSE(fields);
  EXPECT_NE(fields.error().detail().find("access_denied (no way)"), std::string::npos);

  auto nothing = listener->WaitForCallback("s", std::chrono::milliseconds(0));
  ASSERT_FALSE(nothing);
  EXPECT_EQ(nothing.error().code(), ErrorCode::kUnavailable);
}

// A fake IdP token endpoint driven by a queue of answers; checks every DPoP proof.
class OidcLoginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
    ASSERT_TRUE(key);
    key_.emplace(std::move(*key));
    discovery_.issuer = "http://127.0.0.1:9/realms/wire";
    discovery_.authorization_endpoint = discovery_.issuer + "/protocol/openid-connect/auth";
    discovery_.token_endpoint = discovery_.issuer + "/protocol/openid-connect/token";
    discovery_.device_authorization_endpoint =
        discovery_.issuer + "/protocol/openid-connect/auth/device";
  }

  Result<oidc::FetchResponse> Handle(const oidc::FetchRequest& r) {
    requests_.push_back(r);
    if (r.url == discovery_.token_endpoint) {
      auto proof = FindHeader(r.headers, "DPoP");
      EXPECT_TRUE(proof);
      if (proof) {
        auto jws = crypto::ParseCompactJws(*proof);
        EXPECT_TRUE(jws);
        auto pub = key_->public_key();
        EXPECT_TRUE(jws && crypto::VerifyJws(*jws, *pub));
        if (jws) {
          auto claims = ParseJson(AsString(jws->payload));
          EXPECT_EQ((*claims)["htm"], "POST");
          EXPECT_EQ((*claims)["htu"], discovery_.token_endpoint);
          proofs_.push_back(*claims);
        }
      }
    }
    if (answers_.empty()) {
      ADD_FAILURE() << "unexpected request to " << r.url;
      return Fail(Error(ErrorCode::kConnection, "no answer"));
    }
    auto a = answers_.front();
    answers_.pop_front();
    return a;
  }

  OidcLogin MakeLogin() {
    return OidcLogin(http_, discovery_, "wireapp", *key_, clock_, rng_,
                     [this](std::chrono::milliseconds d) { sleeps_.push_back(d.count() / 1000); });
  }

  Json Tokens(const std::string& access = "at", const std::string& refresh = "rt") {
    return {{"access_token", access},
            {"token_type", "DPoP"},
            {"refresh_token", refresh},
            {"expires_in", 300}};
  }

  std::optional<crypto::PrivateKey> key_;
  oidc::Discovery discovery_;
  FakeClock clock_{kNow};
  crypto::SecureRandom rng_;
  std::deque<oidc::FetchResponse> answers_;
  std::vector<oidc::FetchRequest> requests_;
  std::vector<Json> proofs_;
  std::vector<int64_t> sleeps_;
  FakeHttpClient http_{[this](const oidc::FetchRequest& r) { return Handle(r); }};
};

TEST_F(OidcLoginTest, RefreshRetriesWithTheDpopNonce) {
  answers_.push_back(JsonResponse(400, {{"error", "use_dpop_nonce"}}, {{"DPoP-Nonce", "n-1"}}));
  answers_.push_back(JsonResponse(200, Tokens("at-2", "rt-2"), {{"DPoP-Nonce", "n-2"}}));
  answers_.push_back(JsonResponse(200, Tokens("at-3", "rt-3")));
  OidcLogin login = MakeLogin();
  auto t = login.Refresh("rt-1");
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(t->access_token, "at-2");
  EXPECT_EQ(t->refresh_token, "rt-2");
  EXPECT_EQ(t->token_type, "DPoP");
  ASSERT_EQ(proofs_.size(), 2u);
  EXPECT_FALSE(proofs_[0].contains("nonce"));
  EXPECT_EQ(proofs_[1]["nonce"], "n-1");
  auto form = ParseQuery(requests_[1].body);
  ASSERT_TRUE(form);
  EXPECT_EQ(FindField(*form, "grant_type"), "refresh_token");
  EXPECT_EQ(FindField(*form, "refresh_token"), "rt-1");
  EXPECT_EQ(FindField(*form, "client_id"), "wireapp");
  EXPECT_EQ(FindHeader(requests_[1].headers, "Content-Type"), "application/x-www-form-urlencoded");
  // The next request uses the nonce the IdP sent last.
  ASSERT_TRUE(login.Refresh("rt-2"));
  EXPECT_EQ(proofs_[2]["nonce"], "n-2");
}

TEST_F(OidcLoginTest, RefusedRefreshIsForbiddenWithAClearMessage) {
  answers_.push_back(
      JsonResponse(400, {{"error", "invalid_grant"}, {"error_description", "Session not active"}}));
  auto t = MakeLogin().Refresh("rt");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), ErrorCode::kForbidden);
  EXPECT_EQ(t.error().detail(),
            "the identity provider refused the refresh token (invalid_grant: Session not "
            "active); run e2eid enrol again");

  answers_.push_back(JsonResponse(401, {{"error", "invalid_client"}}));
  auto other = MakeLogin().Refresh("rt");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(other.error().detail().find("invalid_client"), std::string::npos);

  oidc::FetchResponse html;
  html.status = 502;
  html.body = "<html>bad gateway</html>";
  answers_.push_back(html);
  auto down = MakeLogin().Refresh("rt");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), ErrorCode::kUnavailable);
}

TEST_F(OidcLoginTest, DeviceGrantPollsWithIntervalAndSlowDown) {
  answers_.push_back(JsonResponse(200, {{"device_code", "dc"},
                                        {"user_code", "ABCD-EFGH"},
                                        {"verification_uri", "https://idp/device"},
                                        {"verification_uri_complete", "https://idp/device?c=1"},
                                        {"expires_in", 600},
                                        {"interval", 5}}));
  answers_.push_back(JsonResponse(400, {{"error", "authorization_pending"}}));
  answers_.push_back(JsonResponse(400, {{"error", "slow_down"}}));
  answers_.push_back(JsonResponse(200, Tokens()));
  std::vector<std::string> printed;
  LoginOptions o;
  o.print = [&](const std::string& line) { printed.push_back(line); };
  o.claims = Json{{"id_token", {{"acme_aud", {{"essential", true}}}}}};
  auto t = MakeLogin().LoginWithDeviceCode(o);
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(t->access_token, "at");
  EXPECT_EQ(printed, (std::vector<std::string>{"Visit https://idp/device?c=1 (code ABCD-EFGH)"}));
  EXPECT_EQ(sleeps_, (std::vector<int64_t>{5, 5, 10}));
  auto auth_form = ParseQuery(requests_[0].body);
  ASSERT_TRUE(auth_form);
  EXPECT_EQ(FindField(*auth_form, "scope"), "openid profile email offline_access");
  EXPECT_EQ(ParseJson(*FindField(*auth_form, "claims")).value(), *o.claims);
  auto poll_form = ParseQuery(requests_[1].body);
  EXPECT_EQ(FindField(*poll_form, "grant_type"), "urn:ietf:params:oauth:grant-type:device_code");
  EXPECT_EQ(FindField(*poll_form, "device_code"), "dc");
  EXPECT_EQ(proofs_.size(), 3u);  // every token request carries a proof
}

TEST_F(OidcLoginTest, DeviceGrantStopsOnDenialAndExpiry) {
  answers_.push_back(JsonResponse(200, {{"device_code", "dc"},
                                        {"user_code", "U"},
                                        {"verification_uri", "https://idp/device"},
                                        {"expires_in", 12},
                                        {"interval", 5}}));
  answers_.push_back(JsonResponse(400, {{"error", "access_denied"}}));
  LoginOptions o;
  std::vector<std::string> printed;
  o.print = [&](const std::string& line) { printed.push_back(line); };
  auto denied = MakeLogin().LoginWithDeviceCode(o);
  ASSERT_FALSE(denied);
  EXPECT_NE(denied.error().detail().find("access_denied"), std::string::npos);
  EXPECT_EQ(printed[0], "Visit https://idp/device (code U)");

  answers_.push_back(JsonResponse(200, {{"device_code", "dc"},
                                        {"user_code", "U"},
                                        {"verification_uri", "https://idp/device"},
                                        {"expires_in", 12},
                                        {"interval", 5}}));
  for (int i = 0; i < 3; ++i) {
    answers_.push_back(JsonResponse(400, {{"error", "authorization_pending"}}));
  }
  sleeps_.clear();
  auto expired = MakeLogin().LoginWithDeviceCode(o);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(sleeps_, (std::vector<int64_t>{5, 5, 5}));

  discovery_.device_authorization_endpoint.clear();
  EXPECT_FALSE(MakeLogin().LoginWithDeviceCode(o));
}

TEST_F(OidcLoginTest, BrowserLoginWithPkceStateNonceAndDpop) {
  std::thread browser;
  std::string callback_answer;
  std::string auth_url;
  LoginOptions o;
  o.print = [&](const std::string& line) {
    const std::string prefix = "Open this URL to log in: ";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
    auth_url = line.substr(prefix.size());
    auto q = ParseQuery(auth_url.substr(auth_url.find('?') + 1));
    ASSERT_TRUE(q);
    const std::string redirect = *FindField(*q, "redirect_uri");
    const std::string state = *FindField(*q, "state");
    const uint16_t port =
        static_cast<uint16_t>(std::stoi(redirect.substr(std::string("http://127.0.0.1:").size())));
    // The IdP would now answer the token request with an ID token carrying the nonce.
    answers_.push_back(
        JsonResponse(200, {{"access_token", "at"},
                           {"token_type", "DPoP"},
                           {"refresh_token", "rt"},
                           {"id_token", UnsignedJwt({{"iss", discovery_.issuer},
                                                     {"aud", "wireapp"},
                                                     {"nonce", *FindField(*q, "nonce")}})}}));
    browser = std::thread([&, port, state] {
      callback_answer = HttpExchange(port, Get("/callback?code=c0de&state=" + state));
    });
  };
  auto t = MakeLogin().LoginWithBrowser(o);
  if (browser.joinable()) browser.join();
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(t->refresh_token, "rt");
  EXPECT_EQ(callback_answer.rfind("HTTP/1.1 200", 0), 0u);

  ASSERT_EQ(auth_url.rfind(discovery_.authorization_endpoint + "?", 0), 0u);
  auto q = ParseQuery(auth_url.substr(auth_url.find('?') + 1));
  EXPECT_EQ(FindField(*q, "response_type"), "code");
  EXPECT_EQ(FindField(*q, "client_id"), "wireapp");
  EXPECT_EQ(FindField(*q, "scope"), "openid profile email offline_access");
  EXPECT_EQ(FindField(*q, "code_challenge_method"), "S256");
  auto pub = key_->public_key();
  EXPECT_EQ(FindField(*q, "dpop_jkt"), *crypto::JwkThumbprint(*pub));
  EXPECT_EQ(FindField(*q, "claims"), std::nullopt);
  // The token request proves possession of the PKCE verifier.
  auto form = ParseQuery(requests_.back().body);
  ASSERT_TRUE(form);
  EXPECT_EQ(FindField(*form, "grant_type"), "authorization_code");
  EXPECT_EQ(FindField(*form, "code"), "c0de");
  EXPECT_EQ(FindField(*form, "redirect_uri"), FindField(*q, "redirect_uri"));
  EXPECT_EQ(PkceS256(*FindField(*form, "code_verifier")), *FindField(*q, "code_challenge"));
  EXPECT_EQ(proofs_.size(), 1u);
}

TEST_F(OidcLoginTest, BrowserLoginRefusesAnIdTokenWithAnotherNonce) {
  std::thread browser;
  LoginOptions o;
  o.claims = Json{{"id_token", {{"keyauth", {{"essential", true}, {"value", "t.k"}}}}}};
  std::string claims_param;
  o.print = [&](const std::string& line) {
    const std::string url = line.substr(line.find("http"));
    auto q = ParseQuery(url.substr(url.find('?') + 1));
    claims_param = FindField(*q, "claims").value_or("");
    answers_.push_back(JsonResponse(
        200,
        {{"access_token", "at"},
         {"token_type", "DPoP"},
         {"id_token",
          UnsignedJwt({{"iss", discovery_.issuer}, {"aud", "wireapp"}, {"nonce", "replayed"}})}}));
    const std::string redirect = *FindField(*q, "redirect_uri");
    const uint16_t port =
        static_cast<uint16_t>(std::stoi(redirect.substr(std::string("http://127.0.0.1:").size())));
    const std::string state = *FindField(*q, "state");
    browser =
        std::thread([port, state] { HttpExchange(port, Get("/callback?code=c&state=" + state)); });
  };
  auto t = MakeLogin().LoginWithBrowser(o);
  if (browser.joinable()) browser.join();
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().detail().find("nonce"), std::string::npos);
  EXPECT_EQ(ParseJson(claims_param).value(), *o.claims);
}

}  // namespace
}  // namespace e2eid::cli
