// End-to-end identity: a real OpenID provider (npm oidc-provider shaped like a Keycloak realm,
// tests/idp/server.js), a freshly started `e2eid serve` with the built-in device authority, and
// the `e2eid enrol` / `e2eid renew` client. Users log in through the provider's own login pages
// (tests/idp/browser.py acts as the person at the browser); no token is minted out of band.
// Certificates are checked with the openssl CLI, the store with sqlite3.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

#include "core/file.h"
#include "tests/test_util.h"

namespace e2eid::testing {
namespace {

constexpr const char* kDomain = "wire.example.com";

class IdentityE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_ = new Suite();
    suite_->Start();
  }
  static void TearDownTestSuite() {
    delete suite_;
    suite_ = nullptr;
  }

  struct Suite {
    TempDir dir;
    std::unique_ptr<Process> idp;
    std::unique_ptr<Process> other_idp;  // another realm: a foreign issuer
    std::string other_issuer;
    std::unique_ptr<Process> server;
    std::string issuer;
    std::string directory;
    std::string base;  // https://localhost:PORT
    std::string ok;    // empty when the set-up worked, else what failed

    void Start() {
      issuer = StartTestIdp(&idp, dir / "idp.log", "e2eid", /*test_control=*/true);
      if (issuer.empty()) {
        ok = "the identity provider did not start: " + idp->Log();
        return;
      }
      other_issuer = StartTestIdp(&other_idp, dir / "other-idp.log", "other");
      if (other_issuer.empty()) {
        ok = "the second identity provider did not start: " + other_idp->Log();
        return;
      }
      base = StartIdentityServer(dir, kDomain, issuer, "max_devices_per_user = 5\n", &server, &ok);
      if (base.empty()) return;
      directory = base + "/acme/directory";
    }
  };

  void SetUp() override { ASSERT_TRUE(suite_->ok.empty()) << suite_->ok; }

  static std::string Root() { return suite_->dir / "ca/root.pem"; }

  // Runs `e2eid enrol` for `user`, logging in through the IdP's pages with browser.py.
  // Returns the exit code; `log` receives the client's output.
  int Enrol(const std::string& state, const std::string& user, const std::string& password,
            const std::vector<std::string>& extra, std::string* log,
            const std::string& login = "browser", const std::string& issuer = "",
            const std::string& client_id = "e2eid-device") {
    std::vector<std::string> argv = {E2EID_BINARY,      "enrol",
                                     "--state-dir",     state,
                                     "--server",        suite_->directory,
                                     "--issuer",        issuer.empty() ? suite_->issuer : issuer,
                                     "--client-id",     client_id,
                                     "--domain",        kDomain,
                                     "--ca-file",       Root(),
                                     "--login",         login,
                                     "--login-timeout", "60"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunWithLogins(argv, state + ".log", login, user, password, log);
  }

  // Runs `argv`; every login it asks for ("Open this URL to log in: " / "Visit ") is done by
  // browser.py as `user`. Returns the exit code (-2 when the browser login failed).
  static int RunWithLogins(const std::vector<std::string>& argv, const std::string& log_path,
                           const std::string& login, const std::string& user,
                           const std::string& password, std::string* log) {
    Process enrol(argv, log_path);
    const std::string prefix = login == "browser" ? "Open this URL to log in: " : "Visit ";
    // Each login the client asks for (claims mode asks twice) is done by browser.py.
    for (size_t handled = 0;;) {
      const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(90);
      std::string url;
      bool exited = false;
      while (std::chrono::steady_clock::now() < end) {
        const std::string text = enrol.Log();
        size_t at = 0;
        size_t seen = 0;
        while ((at = text.find(prefix, at)) != std::string::npos) {
          if (seen++ == handled) {
            const size_t eol = text.find('\n', at);
            if (eol != std::string::npos)
              url = text.substr(at + prefix.size(), eol - at - prefix.size());
            break;
          }
          at += prefix.size();
        }
        if (!url.empty()) break;
        if (enrol.WaitForLog("\x01never", std::chrono::milliseconds(100))) break;
        if (enrol.Exited()) {
          exited = true;
          break;
        }
      }
      if (exited || url.empty()) break;
      ++handled;
      std::string mode = "login";
      if (login == "device") {
        url = url.substr(0, url.find(' '));
        mode = "device";
      }
      auto browser =
          RunCommand("python3 " + ShellQuote(Src("tests/idp/browser.py")) + " " + mode + " --url " +
                     ShellQuote(url) + " --user " + user + " --password " + ShellQuote(password));
      if (browser.exit_code != 0) {
        *log = "browser.py failed: " + browser.output + "\n" + enrol.Log();
        enrol.SignalAndWait(SIGTERM);
        return -2;
      }
    }
    const int code = enrol.SignalAndWait(0);
    *log = enrol.Log();
    return code;
  }

  static std::string X509Text(const std::string& pem_path) {
    return RunCommand("openssl x509 -in " + ShellQuote(pem_path) + " -noout -text").output;
  }

  static void ExpectWireCertificate(const std::string& state, const std::string& handle,
                                    const std::string& name) {
    const std::string cert = state + "/cert.pem";
    const std::string chain = state + "/chain.pem";
    // Chain: leaf <- intermediate <- root (the root given explicitly, the rest from chain.pem).
    auto verify = RunCommand("openssl verify -purpose sslclient -CAfile " + ShellQuote(Root()) +
                             " -untrusted " + ShellQuote(chain) + " " + ShellQuote(cert));
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    const std::string text = X509Text(cert);
    EXPECT_NE(text.find("Subject: O = wire.example.com, CN = " + name), std::string::npos) << text;
    EXPECT_NE(text.find("URI:wireapp://%40" + handle + "@wire.example.com"), std::string::npos)
        << text;
    EXPECT_TRUE(std::regex_search(
        text, std::regex("URI:wireapp://[A-Za-z0-9_-]{22}!([0-9a-f]{1,16})@wire\\.example\\.com")))
        << text;
    EXPECT_NE(text.find("TLS Web Client Authentication"), std::string::npos) << text;
    EXPECT_EQ(text.find("TLS Web Server Authentication"), std::string::npos) << text;
    EXPECT_NE(text.find("X509v3 Key Usage: critical\n                Digital Signature"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("CRL Distribution Points"), std::string::npos) << text;
    EXPECT_NE(text.find("OCSP - URI:"), std::string::npos) << text;
    // Validity within the configured maximum (7 days).
    auto dates = RunCommand("openssl x509 -in " + ShellQuote(cert) + " -noout -checkend " +
                            std::to_string(7 * 24 * 3600 + 60));
    EXPECT_NE(dates.exit_code, 0) << "the certificate outlives validity.max";
    auto alive = RunCommand("openssl x509 -in " + ShellQuote(cert) + " -noout -checkend 60");
    EXPECT_EQ(alive.exit_code, 0);
  }

  static std::string Serial(const std::string& state) {
    return RunCommand("openssl x509 -in " + ShellQuote(state + "/cert.pem") + " -noout -serial")
        .output;
  }

  static std::string Sql(const std::string& query) {
    return RunCommand("sqlite3 " + ShellQuote(suite_->dir / "e2eid.db") + " " + ShellQuote(query))
        .output;
  }

  static int IdpControl(const std::string& path) {
    const std::string base = suite_->issuer.substr(0, suite_->issuer.find("/realms/"));
    return RunCommand("curl -sf -X POST " + ShellQuote(base + path)).exit_code;
  }

  // ---- revocation and the admin API ----

  // An access token of `user` for the admin CLI client, obtained with `e2eid admin login`
  // through the IdP's login page; the path of the token file.
  static std::string AdminToken(const std::string& user, const std::string& password) {
    const std::string out = suite_->dir / (user + ".token");
    if (PathExists(out)) return out;
    std::string log;
    const int code = RunWithLogins(
        {E2EID_BINARY, "admin", "login", "--issuer", suite_->issuer, "--client-id",
         "e2eid-admin-cli", "--login", "browser", "--login-timeout", "60", "--out", out},
        out + ".log", "browser", user, password, &log);
    EXPECT_EQ(code, 0) << log;
    return out;
  }

  static CommandResult Admin(const std::string& token_file, const std::string& args) {
    std::string cmd = std::string(E2EID_BINARY) + " admin --server " + suite_->base +
                      " --ca-file " + ShellQuote(Root());
    if (!token_file.empty()) cmd += " --token-file " + ShellQuote(token_file);
    return RunCommand(cmd + " " + args);
  }

  // The client-id URI in a device certificate.
  static std::string ClientIdOf(const std::string& state) {
    std::smatch m;
    const std::string text = X509Text(state + "/cert.pem");
    if (!std::regex_search(
            text, m, std::regex("URI:(wireapp://[A-Za-z0-9_-]{22}![0-9a-f]{1,16}@[a-z.]+)"))) {
      ADD_FAILURE() << text;
      return "";
    }
    return m[1];
  }

  // SHA-256 (hex) of the certificate's SubjectPublicKeyInfo.
  static std::string SpkiSha256(const std::string& state) {
    auto r = RunCommand("openssl x509 -in " + ShellQuote(state + "/cert.pem") +
                        " -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum");
    return r.output.substr(0, 64);
  }

  // What the OCSP responder says about the certificate in `state`, as `openssl ocsp` prints it
  // after verifying the signed response against the root ("<file>: good|revoked|unknown" plus
  // "Reason:" and "Response verify OK").
  static std::string Ocsp(const std::string& state) {
    const std::string req = state + "/ocsp.req";
    const std::string resp = state + "/ocsp.resp";
    const std::string issuer = suite_->dir / "ca/intermediate.pem";
    RunCommand("openssl ocsp -no_nonce -issuer " + ShellQuote(issuer) + " -cert " +
               ShellQuote(state + "/cert.pem") + " -reqout " + ShellQuote(req));
    RunCommand("curl -sf --cacert " + ShellQuote(Root()) +
               " -H 'Content-Type: application/ocsp-request' --data-binary @" + ShellQuote(req) +
               " -o " + ShellQuote(resp) + " " + suite_->base + "/ocsp");
    return RunCommand("openssl ocsp -respin " + ShellQuote(resp) + " -issuer " +
                      ShellQuote(issuer) + " -cert " + ShellQuote(state + "/cert.pem") +
                      " -CAfile " + ShellQuote(Root()))
        .output;
  }

  // openssl verify with the CRL just fetched from /crl: 0 when the certificate passes.
  static CommandResult VerifyWithCrl(const std::string& state) {
    const std::string crl = suite_->dir / "crl.pem";
    RunCommand("curl -sf --cacert " + ShellQuote(Root()) + " -o " + ShellQuote(crl) + " " +
               ShellQuote(suite_->base + "/crl?format=pem"));
    return RunCommand("openssl verify -crl_check -CAfile " + ShellQuote(Root()) + " -untrusted " +
                      ShellQuote(state + "/chain.pem") + " -CRLfile " + ShellQuote(crl) + " " +
                      ShellQuote(state + "/cert.pem"));
  }

  // Polls OCSP until it reports `status` for the certificate; the seconds it took, or -1.
  static double SecondsUntilOcsp(const std::string& state, const std::string& status) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
      if (Ocsp(state).find("cert.pem: " + status) != std::string::npos) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    }
    return -1;
  }

  static int Renew(const std::string& state, std::string* output) {
    auto r = RunCommand(std::string(E2EID_BINARY) + " renew --state-dir " + ShellQuote(state) +
                        " --force --ca-file " + ShellQuote(Root()));
    *output = r.output;
    return r.exit_code;
  }

  void EnrolOrFail(const std::string& state, const std::string& user, const std::string& password) {
    std::string log;
    ASSERT_EQ(Enrol(state, user, password, {}, &log), 0) << log;
  }

  static Suite* suite_;
};

IdentityE2eTest::Suite* IdentityE2eTest::suite_ = nullptr;

TEST_F(IdentityE2eTest, EnrolThroughTheLoginPageThenRenewSilently) {
  const std::string state = suite_->dir / "alice-laptop";
  std::string log;
  ASSERT_EQ(Enrol(state, "alice", "alice-password", {}, &log), 0) << log;
  ExpectWireCertificate(state, "alice", "Alice Smith");
  EXPECT_EQ(Sql("SELECT count(*) FROM devices WHERE handle = 'alice';"), "1\n");

  // Renewal without any user interaction (refresh token + DPoP-bound access token).
  const std::string before = Serial(state);
  auto renew = RunCommand(std::string(E2EID_BINARY) + " renew --state-dir " + ShellQuote(state) +
                          " --force --ca-file " + ShellQuote(Root()));
  ASSERT_EQ(renew.exit_code, 0) << renew.output;
  EXPECT_NE(Serial(state), before);
  ExpectWireCertificate(state, "alice", "Alice Smith");
  // Not due yet: nothing happens.
  auto early = RunCommand(std::string(E2EID_BINARY) + " renew --state-dir " + ShellQuote(state) +
                          " --ca-file " + ShellQuote(Root()));
  EXPECT_EQ(early.exit_code, 0) << early.output;
  EXPECT_EQ(Sql("SELECT count(*) FROM devices WHERE handle = 'alice';"), "1\n");
}

TEST_F(IdentityE2eTest, DeviceGrantAfterIdpKeyRotation) {
  // The IdP rotates its signing key: e2eid refetches the JWKS and keeps working.
  ASSERT_EQ(IdpControl("/test/rotate-keys"), 0);
  const std::string state = suite_->dir / "bob-phone";
  std::string log;
  ASSERT_EQ(Enrol(state, "bob", "bob-password", {}, &log, "device"), 0) << log;
  ExpectWireCertificate(state, "bob", "Bob Jones");
}

TEST_F(IdentityE2eTest, WireClaimsModeWithKeyauthAndAcmeAud) {
  // Wire's way: the ID token echoes keyauth and acme_aud through the OIDC claims parameter.
  const std::string state = suite_->dir / "ada-desktop";
  std::string log;
  ASSERT_EQ(Enrol(state, "admin", "admin-password", {"--oidc-mode", "claims"}, &log), 0) << log;
  ExpectWireCertificate(state, "admin", "Ada Admin");
  EXPECT_NE(Sql("SELECT validation_claims FROM challenges WHERE type = 'wire-oidc-01' AND "
                "status = 'valid';")
                .find("id_token+keyauth"),
            std::string::npos);
}

TEST_F(IdentityE2eTest, DisabledUserCannotRenew) {
  const std::string state = suite_->dir / "alice-tablet";
  std::string log;
  ASSERT_EQ(Enrol(state, "alice", "alice-password", {}, &log), 0) << log;
  const std::string certs_before = Sql("SELECT count(*) FROM certificates;");
  ASSERT_EQ(IdpControl("/test/users/alice/disable"), 0);
  auto renew = RunCommand(std::string(E2EID_BINARY) + " renew --state-dir " + ShellQuote(state) +
                          " --force --ca-file " + ShellQuote(Root()));
  ASSERT_EQ(IdpControl("/test/users/alice/enable"), 0);
  EXPECT_EQ(renew.exit_code, 3) << renew.output;
  EXPECT_NE(renew.output.find("invalid_grant"), std::string::npos) << renew.output;
  EXPECT_EQ(Sql("SELECT count(*) FROM certificates;"), certs_before);
}

TEST_F(IdentityE2eTest, BlockedDeviceIsRefused) {
  const std::string state = suite_->dir / "alice-phone";
  std::string log;
  ASSERT_EQ(Enrol(state, "alice", "alice-password", {}, &log), 0) << log;
  // An administrator blocks the device (the admin API arrives with the revocation issue).
  Sql("UPDATE devices SET status = 'blocked', blocked_reason = 'phone lost' "
      "WHERE id IN (SELECT device_id FROM certificates ORDER BY issued_at DESC LIMIT 1);");
  const std::string certs_before = Sql("SELECT count(*) FROM certificates;");
  auto renew = RunCommand(std::string(E2EID_BINARY) + " renew --state-dir " + ShellQuote(state) +
                          " --force --ca-file " + ShellQuote(Root()));
  EXPECT_NE(renew.exit_code, 0) << renew.output;
  EXPECT_NE(renew.output.find("phone lost"), std::string::npos) << renew.output;
  EXPECT_EQ(Sql("SELECT count(*) FROM certificates;"), certs_before);
}

TEST_F(IdentityE2eTest, TokensOfAnotherClientOrIssuerAreRefused) {
  const std::string certs_before = Sql("SELECT count(*) FROM certificates;");
  const std::string devices_before = Sql("SELECT count(*) FROM devices;");
  std::string log;
  // Wrong audience: the user logs in with another client of the same realm.
  EXPECT_EQ(Enrol(suite_->dir / "wrong-aud", "alice", "alice-password", {}, &log, "browser", "",
                  "other-client"),
            1)
      << log;
  EXPECT_NE(log.find("client id \"e2eid-device\""), std::string::npos) << log;
  // Another issuer: a different realm with its own keys.
  EXPECT_EQ(Enrol(suite_->dir / "other-issuer", "alice", "alice-password", {}, &log, "browser",
                  suite_->other_issuer),
            1)
      << log;
  EXPECT_NE(log.find("unauthorized"), std::string::npos) << log;
  // Wire's claims mode with a foreign issuer fails on the ID token as well.
  EXPECT_EQ(Enrol(suite_->dir / "other-issuer-claims", "bob", "bob-password",
                  {"--oidc-mode", "claims"}, &log, "browser", suite_->other_issuer),
            1)
      << log;
  EXPECT_EQ(Sql("SELECT count(*) FROM certificates;"), certs_before);
  EXPECT_EQ(Sql("SELECT count(*) FROM devices;"), devices_before);
}

// Issue 5: an admin revokes one device through the admin API with a token from the real IdP;
// within a second OCSP says revoked (with the reason), the fresh CRL fails it and passes the
// others; the device cannot enrol again until unblocked.
TEST_F(IdentityE2eTest, RevokeOneDeviceShowsInOcspAndCrlAndBlocksIt) {
  const std::string a1 = suite_->dir / "rv-alice-1";
  const std::string a2 = suite_->dir / "rv-alice-2";
  const std::string b1 = suite_->dir / "rv-bob-1";
  EnrolOrFail(a1, "alice", "alice-password");
  EnrolOrFail(a2, "alice", "alice-password");
  EnrolOrFail(b1, "bob", "bob-password");
  for (const auto& st : {a1, a2, b1}) {
    EXPECT_NE(Ocsp(st).find("cert.pem: good"), std::string::npos) << Ocsp(st);
  }
  const std::string token = AdminToken("admin", "admin-password");
  const std::string device = ClientIdOf(a1);
  auto revoke = Admin(token, "revoke --scope device --value " + ShellQuote(device) +
                                 " --reason keyCompromise --comment 'laptop stolen' --json");
  ASSERT_EQ(revoke.exit_code, 0) << revoke.output;
  EXPECT_TRUE(std::regex_search(revoke.output, std::regex("\"affected\": ?1\\b"))) << revoke.output;
  const double seconds = SecondsUntilOcsp(a1, "revoked");
  ASSERT_GE(seconds, 0) << Ocsp(a1);
  EXPECT_LE(seconds, 1.0);
  const std::string ocsp = Ocsp(a1);
  EXPECT_NE(ocsp.find("Response verify OK"), std::string::npos) << ocsp;
  EXPECT_NE(ocsp.find("Reason: keyCompromise"), std::string::npos) << ocsp;
  EXPECT_NE(Ocsp(a2).find("cert.pem: good"), std::string::npos);
  // The CRL (rebuilt within a second) fails the revoked device and passes the others.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto revoked = VerifyWithCrl(a1);
  EXPECT_NE(revoked.exit_code, 0) << revoked.output;
  EXPECT_NE(revoked.output.find("certificate revoked"), std::string::npos) << revoked.output;
  EXPECT_EQ(VerifyWithCrl(a2).exit_code, 0) << VerifyWithCrl(a2).output;
  EXPECT_EQ(VerifyWithCrl(b1).exit_code, 0) << VerifyWithCrl(b1).output;
  // Idempotent.
  auto again = Admin(token, "revoke --scope device --value " + ShellQuote(device) +
                                " --reason keyCompromise --json");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(std::regex_search(again.output, std::regex("\"affected\": ?0\\b"))) << again.output;
  // The device cannot enrol again...
  std::string out;
  EXPECT_NE(Renew(a1, &out), 0) << out;
  EXPECT_NE(out.find("blocked"), std::string::npos) << out;
  // ...until an admin unblocks it.
  auto unblock = Admin(token, "unblock " + ShellQuote(device));
  ASSERT_EQ(unblock.exit_code, 0) << unblock.output;
  EXPECT_EQ(Renew(a1, &out), 0) << out;
  EXPECT_NE(Ocsp(a1).find("cert.pem: good"), std::string::npos);
}

TEST_F(IdentityE2eTest, RevokeByUserByKeyAndBeforeATime) {
  const std::string a = suite_->dir / "rs-alice";
  const std::string b1 = suite_->dir / "rs-bob-1";
  const std::string b2 = suite_->dir / "rs-bob-2";
  EnrolOrFail(a, "alice", "alice-password");
  EnrolOrFail(b1, "bob", "bob-password");
  EnrolOrFail(b2, "bob", "bob-password");
  const std::string token = AdminToken("admin", "admin-password");

  // By user: every device of Bob (his IdP subject), none of Alice's.
  auto by_user = Admin(token,
                       "revoke --scope user --value 2b0b2b0b-7c2d-4f6e-8a1b-b0b000000002 "
                       "--reason affiliationChanged --json");
  ASSERT_EQ(by_user.exit_code, 0) << by_user.output;
  EXPECT_GE(SecondsUntilOcsp(b1, "revoked"), 0);
  EXPECT_GE(SecondsUntilOcsp(b2, "revoked"), 0);
  EXPECT_NE(Ocsp(b2).find("Reason: affiliationChanged"), std::string::npos) << Ocsp(b2);
  EXPECT_NE(Ocsp(a).find("cert.pem: good"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_NE(VerifyWithCrl(b1).exit_code, 0);
  EXPECT_EQ(VerifyWithCrl(a).exit_code, 0) << VerifyWithCrl(a).output;

  // By key: the certificate holding Alice's device key.
  auto by_key = Admin(
      token, "revoke --scope key --value " + SpkiSha256(a) + " --reason keyCompromise --json");
  ASSERT_EQ(by_key.exit_code, 0) << by_key.output;
  EXPECT_TRUE(std::regex_search(by_key.output, std::regex("\"affected\": ?1\\b"))) << by_key.output;
  EXPECT_GE(SecondsUntilOcsp(a, "revoked"), 0);

  // Everything issued before T: a certificate issued before T is revoked, one after is not.
  const std::string after = suite_->dir / "rs-after";
  std::string out;
  ASSERT_EQ(Renew(a, &out), 0) << out;  // Alice's device: a new certificate, before T
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const std::string t = RunCommand("date -u +%Y-%m-%dT%H:%M:%SZ").output.substr(0, 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EnrolOrFail(after, "admin", "admin-password");
  auto by_time =
      Admin(token, "revoke --scope before --value " + t + " --reason cessationOfOperation --json");
  ASSERT_EQ(by_time.exit_code, 0) << by_time.output;
  EXPECT_GE(SecondsUntilOcsp(a, "revoked"), 0) << Ocsp(a);
  EXPECT_NE(Ocsp(after).find("cert.pem: good"), std::string::npos) << Ocsp(after);
}

TEST_F(IdentityE2eTest, AdminApiRefusesTokensWithoutRoleOrValidity) {
  const std::string audit_before =
      Sql("SELECT count(*) FROM audit_events WHERE action = 'admin.login';");
  const std::string certs = Sql("SELECT count(*) FROM certificates WHERE status = 'revoked';");
  // A user token without the admin role: 403.
  const std::string user_token = AdminToken("alice", "alice-password");
  auto forbidden =
      Admin(user_token, "revoke --scope before --value 2100-01-01T00:00:00Z --reason 0");
  EXPECT_NE(forbidden.exit_code, 0);
  EXPECT_NE(forbidden.output.find("e2eid-admin"), std::string::npos) << forbidden.output;
  // No token: 401.
  auto missing = RunCommand("curl -s -o /dev/null -w '%{http_code}' --cacert " +
                            ShellQuote(Root()) + " " + suite_->base + "/admin/v1/devices");
  EXPECT_EQ(missing.output, "401");
  // A forged / foreign token: 401.
  auto forged = RunCommand("curl -s -o /dev/null -w '%{http_code}' --cacert " + ShellQuote(Root()) +
                           " -H 'Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln' " +
                           suite_->base + "/admin/v1/devices");
  EXPECT_EQ(forged.output, "401");
  // Each attempt is in the audit trail; nothing was revoked.
  EXPECT_EQ(std::stoi(Sql("SELECT count(*) FROM audit_events WHERE action = 'admin.login';")),
            std::stoi(audit_before) + 3);
  EXPECT_EQ(Sql("SELECT count(*) FROM certificates WHERE status = 'revoked';"), certs);
  // Self-service: Alice lists her own devices with her own token.
  auto mine = Admin(user_token, "me devices --json");
  EXPECT_EQ(mine.exit_code, 0) << mine.output;
}

TEST_F(IdentityE2eTest, WrongPasswordGetsNoCertificate) {
  const std::string state = suite_->dir / "mallory";
  std::string log;
  EXPECT_EQ(Enrol(state, "alice", "not-her-password", {}, &log), -2) << log;
  EXPECT_NE(log.find("browser.py failed"), std::string::npos) << log;
}

}  // namespace
}  // namespace e2eid::testing
