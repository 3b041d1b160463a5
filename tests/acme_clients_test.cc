// Independent, unmodified ACME clients against a freshly started `e2eid serve`: certbot and lego
// each obtain a certificate for a *.localhost name via http-01 (their own standalone http-01
// server answers e2eid's validation), renew it and revoke it. Every certificate they save must
// verify with `openssl verify` against the test root alone, name exactly the requested host and
// stay within the configured maximum validity; e2eid's store must agree on what happened.
//
// Each test keeps a transcript of every command it ran (command line, exit code, output) and puts
// it, with the service's log and the client's own log, into every failure message.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <iomanip>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "core/file.h"
#include "tests/test_util.h"

namespace e2eid {
namespace {

using testing::CommandResult;
using testing::Process;
using testing::RunCommand;
using testing::ShellQuote;
using testing::TempDir;

// What the service is configured to issue (clients ask for no particular validity).
constexpr char kDefaultValidity[] = "2h";
constexpr char kMaxValidity[] = "3h";
constexpr std::chrono::seconds kMaxValiditySeconds = std::chrono::hours(3);

// Every client run is bounded so that a hung client fails its test instead of the whole run.
constexpr char kClientTimeout[] = "timeout 300 ";

// The clients talk to localhost only: keep any proxy configured in the environment out of it.
constexpr char kNoProxy[] = "NO_PROXY=localhost,127.0.0.1 no_proxy=localhost,127.0.0.1 ";

// A TCP socket, closed when the object goes away.
class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// `n` distinct TCP ports on 127.0.0.1 that the kernel just handed out as free (each socket binds
// port 0 while the others are still held, so the ports differ). Empty on failure.
std::vector<int> FreePorts(size_t n) {
  std::vector<std::unique_ptr<Socket>> held;
  std::vector<int> ports;
  for (size_t i = 0; i < n; ++i) {
    auto s = std::make_unique<Socket>();
    if (s->fd() < 0) return {};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(s->fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
    socklen_t len = sizeof addr;
    if (::getsockname(s->fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return {};
    ports.push_back(ntohs(addr.sin_port));
    held.push_back(std::move(s));
  }
  return ports;
}

// A random DNS label such as "certbot-3f9a12c4" (fresh names per run: no state is shared).
std::string RandomHostLabel(const std::string& prefix) {
  std::random_device rd;
  std::ostringstream out;
  out << prefix << "-" << std::hex << std::setw(8) << std::setfill('0') << rd();
  return out.str();
}

// The last `n` characters of `s`.
std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : "[...]\n" + s.substr(s.size() - n);
}

std::string ReadOrEmpty(const std::string& path) {
  auto r = ReadFile(path);
  return r ? *r : std::string();
}

// The lines of `log` that contain every one of `needles`.
std::vector<std::string> LinesWith(const std::string& log,
                                   const std::vector<std::string>& needles) {
  std::vector<std::string> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

// A certificate serial as e2eid's store keys it: lower-case hex without leading zeros.
std::string CanonicalSerial(std::string hex) {
  for (char& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t first = hex.find_first_not_of('0');
  return first == std::string::npos ? "0" : hex.substr(first);
}

// "2026-11-26 10:36:12Z" (openssl -dateopt iso_8601) as a time_t; nullopt if it does not parse.
std::optional<time_t> ParseIsoTime(const std::string& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%d %H:%M:%S");
  if (in.fail()) return std::nullopt;
  return ::timegm(&tm);
}

// What the openssl CLI reads from the first certificate of a PEM file.
struct CertFacts {
  std::string serial;              // CanonicalSerial
  std::vector<std::string> names;  // subjectAltName entries, e.g. "DNS:a.localhost"
  time_t not_before = 0;
  time_t not_after = 0;
};

class AcmeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(
        Step("e2eid init", std::string(E2EID_BINARY) + " init --dir " + ShellQuote(tmp_ / "ca"))
            .exit_code,
        0)
        << Transcript();
    root_pem_ = tmp_ / "ca/root.pem";

    // The service's port must be known before it starts: it is part of every ACME URL
    // (server.external_url) and the service's TLS certificate names "localhost".
    const std::vector<int> ports = FreePorts(2);
    ASSERT_EQ(ports.size(), 2u) << "cannot find free TCP ports on 127.0.0.1";
    const int service_port = ports[0];
    http01_port_ = ports[1];
    const std::string base = "https://localhost:" + std::to_string(service_port);
    std::ostringstream config_text;
    config_text << "[server]\n"
                << "listen = \"127.0.0.1:" << service_port << "\"\n"
                << "external_url = \"" << base << "\"\n"
                << "[ca]\ndir = \"ca\"\n"
                << "[store]\npath = \"e2eid.db\"\n"
                << "[validity]\n"
                << "default = \"" << kDefaultValidity << "\"\n"
                << "max = \"" << kMaxValidity << "\"\n"
                << "[acme]\n"
                << "dns_suffixes = [\"localhost\"]\n"
                << "http01_port = " << http01_port_ << "\n"
                << "resolve = [\"*.localhost=127.0.0.1\"]\n"
                << "[log]\nlevel = \"debug\"\n";
    const std::string config = config_text.str();
    ASSERT_TRUE(WriteFileAtomic(tmp_ / "e2eid.toml", config, 0600));
    transcript_ += "==== e2eid.toml ====\n" + config + "\n";

    serve_ = std::make_unique<Process>(
        std::vector<std::string>{E2EID_BINARY, "serve", "--config", tmp_ / "e2eid.toml"},
        tmp_ / "serve.log");
    ASSERT_TRUE(serve_->WaitForLog("e2eid is serving")) << Transcript();
    // The service reports the port it bound, and the directory it announces.
    std::smatch m;
    const std::string log = serve_->Log();
    static const std::regex kListen(R"re("listen":"127\.0\.0\.1:(\d+)")re");
    ASSERT_TRUE(std::regex_search(log, m, kListen)) << Transcript();
    ASSERT_EQ(std::stoi(m[1]), service_port) << Transcript();
    directory_url_ = base + "/acme/directory";
    ASSERT_NE(log.find("\"acme_directory\":\"" + directory_url_ + "\""), std::string::npos)
        << Transcript();
  }

  void TearDown() override {
    if (serve_) {
      EXPECT_EQ(serve_->SignalAndWait(SIGTERM), 0) << Transcript();
    }
  }

  // Runs `command` (through /bin/sh) and records it in the transcript.
  CommandResult Step(const std::string& title, const std::string& command) {
    CommandResult r = RunCommand(command);
    transcript_ += "==== " + title + " ====\n$ " + command + "\nexit code " +
                   std::to_string(r.exit_code) + "\n" + r.output + "\n";
    return r;
  }

  // Everything a failure message needs: the steps so far, the service's log and the client's log.
  std::string Transcript() const {
    std::string out = "\n" + transcript_;
    if (serve_) out += "==== e2eid serve log ====\n" + Tail(serve_->Log(), 30000) + "\n";
    if (!client_log_.empty()) {
      out += "==== " + client_log_ + " ====\n" + Tail(ReadOrEmpty(client_log_), 30000) + "\n";
    }
    return out;
  }

  // Reads serial, names and validity period of the first certificate in `pem_file`.
  void Inspect(const std::string& pem_file, CertFacts* facts) {
    auto r = Step("inspect " + pem_file,
                  "openssl x509 -noout -serial -dateopt iso_8601 "
                  "-startdate -enddate -ext subjectAltName -in " +
                      ShellQuote(pem_file));
    ASSERT_EQ(r.exit_code, 0) << Transcript();
    std::istringstream in(r.output);
    bool in_san = false;
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("serial=")) {
        facts->serial = CanonicalSerial(line.substr(7));
      } else if (line.starts_with("notBefore=")) {
        auto t = ParseIsoTime(line.substr(10));
        ASSERT_TRUE(t) << line << Transcript();
        facts->not_before = *t;
      } else if (line.starts_with("notAfter=")) {
        auto t = ParseIsoTime(line.substr(9));
        ASSERT_TRUE(t) << line << Transcript();
        facts->not_after = *t;
      } else if (line.starts_with("X509v3 Subject Alternative Name")) {
        in_san = true;
      } else if (in_san && line.starts_with("    ")) {
        std::istringstream entries(line.substr(line.find_first_not_of(' ')));
        for (std::string e; std::getline(entries, e, ',');) {
          facts->names.push_back(e.substr(e.find_first_not_of(' ')));
        }
      } else {
        in_san = false;
      }
    }
    ASSERT_FALSE(facts->serial.empty()) << Transcript();
  }

  // The checks every certificate a client saved must pass: `openssl verify` accepts `leaf_pem`
  // as a TLS server certificate for `name`, from the test root alone plus the chain the client
  // saved; the certificate names exactly `name` and lives no longer than the configured maximum;
  // e2eid's store knows it as good, issued through a valid http-01 challenge for `name`.
  void CheckIssued(const std::string& leaf_pem, const std::string& chain_pem,
                   const std::string& name, CertFacts* facts) {
    auto verify = Step("openssl verify " + leaf_pem,
                       "openssl verify -CAfile " + ShellQuote(root_pem_) + " -untrusted " +
                           ShellQuote(chain_pem) + " -purpose sslserver -verify_hostname " +
                           ShellQuote(name) + " " + ShellQuote(leaf_pem));
    EXPECT_EQ(verify.exit_code, 0) << Transcript();
    EXPECT_EQ(verify.output, leaf_pem + ": OK\n") << Transcript();

    ASSERT_NO_FATAL_FAILURE(Inspect(leaf_pem, facts));
    EXPECT_EQ(facts->names, std::vector<std::string>{"DNS:" + name}) << Transcript();
    EXPECT_GT(facts->not_after, facts->not_before) << Transcript();
    EXPECT_LE(facts->not_after - facts->not_before, kMaxValiditySeconds.count()) << Transcript();

    EXPECT_EQ(StoreStatus(facts->serial), "good/-") << Transcript();
    EXPECT_EQ(Sql("SELECT DISTINCT c.type FROM certificates AS cert"
                  " JOIN authorizations AS a ON a.order_id = cert.order_id"
                  " JOIN challenges AS c ON c.authz_id = a.id"
                  " WHERE cert.serial = :serial AND a.identifier_value = :name"
                  " AND c.status = 'valid'",
                  {{"serial", facts->serial}, {"name", name}}),
              "http-01")
        << Transcript();
  }

  // Runs `query` on e2eid's store with the sqlite3 CLI, read-only, binding `params` (values are
  // restricted to [0-9a-z.-] so they can be written as SQL literals in `.parameter set`).
  // Returns the output without the final newline.
  std::string Sql(const std::string& query, const std::map<std::string, std::string>& params) {
    static const std::regex kSafe("[0-9a-z.-]+");
    std::string command = "sqlite3 -readonly";
    for (const auto& [key, value] : params) {
      if (!std::regex_match(value, kSafe)) {
        ADD_FAILURE() << "unexpected SQL parameter value '" << value << "'";
        return "";
      }
      command += " -cmd " + ShellQuote(".parameter set :" + key + " \"'" + value + "'\"");
    }
    command += " " + ShellQuote(tmp_ / "e2eid.db") + " " + ShellQuote(query);
    auto r = Step("store query", command);
    EXPECT_EQ(r.exit_code, 0) << Transcript();
    if (!r.output.empty() && r.output.back() == '\n') r.output.pop_back();
    return r.output;
  }

  // "good/-" or "revoked/<reason code>" from the store's certificates table.
  std::string StoreStatus(const std::string& serial) {
    return Sql(
        "SELECT status || '/' || ifnull(revocation_reason, '-') FROM certificates"
        " WHERE serial = :serial",
        {{"serial", serial}});
  }

  // The service logged the revocation of `serial`.
  bool ServiceLoggedRevocation(const std::string& serial) const {
    return !LinesWith(serve_->Log(),
                      {"\"msg\":\"certificate revoked\"", "\"serial\":\"" + serial + "\""})
                .empty();
  }

  TempDir tmp_;
  std::string root_pem_;
  int http01_port_ = 0;
  std::string directory_url_;
  std::unique_ptr<Process> serve_;
  std::string transcript_;
  std::string client_log_;  // a log file the client writes, shown on failure
};

// ---- certbot ---------------------------------------------------------------------------------

TEST_F(AcmeClientTest, CertbotObtainsRenewsAndRevokesViaHttp01) {
  const std::string name = RandomHostLabel("certbot") + ".localhost";
  const std::string dirs = " --config-dir " + ShellQuote(tmp_ / "certbot/config") + " --work-dir " +
                           ShellQuote(tmp_ / "certbot/work") + " --logs-dir " +
                           ShellQuote(tmp_ / "certbot/logs") + " --non-interactive";
  // certbot trusts only the test root for its connections to e2eid.
  const std::string certbot = std::string(kNoProxy) +
                              "REQUESTS_CA_BUNDLE=" + ShellQuote(root_pem_) + " " + kClientTimeout +
                              "certbot";
  client_log_ = tmp_ / "certbot/logs/letsencrypt.log";
  const std::string live = tmp_ / ("certbot/config/live/" + name);

  // 1. Obtain: a new account, an order, http-01 answered by certbot's standalone server.
  auto obtain = Step("certbot certonly",
                     certbot + " certonly --server " + ShellQuote(directory_url_) +
                         " --standalone --http-01-port " + std::to_string(http01_port_) +
                         " --http-01-address 127.0.0.1 --agree-tos" +
                         " --register-unsafely-without-email -d " + ShellQuote(name) + dirs);
  ASSERT_EQ(obtain.exit_code, 0) << Transcript();
  EXPECT_NE(obtain.output.find("Successfully received certificate"), std::string::npos)
      << Transcript();
  CertFacts first;
  ASSERT_NO_FATAL_FAILURE(CheckIssued(live + "/cert.pem", live + "/chain.pem", name, &first));
  // The full chain certbot saved for servers verifies too (its first certificate is the leaf).
  auto full =
      Step("openssl verify fullchain.pem",
           "openssl verify -CAfile " + ShellQuote(root_pem_) + " -untrusted " +
               ShellQuote(live + "/fullchain.pem") + " " + ShellQuote(live + "/fullchain.pem"));
  EXPECT_EQ(full.exit_code, 0) << Transcript();

  // 2. Renew from certbot's stored renewal configuration (server, port, authenticator), now,
  //    without certbot's random pre-renewal delay.
  auto renew = Step("certbot renew", certbot + " renew --force-renewal --no-random-sleep-on-renew" +
                                         " --cert-name " + ShellQuote(name) + dirs);
  ASSERT_EQ(renew.exit_code, 0) << Transcript();
  EXPECT_NE(renew.output.find("all renewals succeeded"), std::string::npos) << Transcript();
  CertFacts renewed;
  ASSERT_NO_FATAL_FAILURE(CheckIssued(live + "/cert.pem", live + "/chain.pem", name, &renewed));
  EXPECT_NE(renewed.serial, first.serial) << Transcript();

  // 3. Revoke the renewed certificate (signed with the account key) for keyCompromise.
  const std::string revoke_command = certbot + " revoke --server " + ShellQuote(directory_url_) +
                                     " --cert-path " + ShellQuote(live + "/cert.pem") +
                                     " --reason keycompromise --no-delete-after-revoke" + dirs;
  auto revoke = Step("certbot revoke", revoke_command);
  ASSERT_EQ(revoke.exit_code, 0) << Transcript();
  EXPECT_NE(revoke.output.find("successfully revoked"), std::string::npos) << Transcript();
  EXPECT_EQ(StoreStatus(renewed.serial), "revoked/1") << Transcript();  // 1: keyCompromise
  EXPECT_EQ(StoreStatus(first.serial), "good/-") << Transcript();
  EXPECT_TRUE(ServiceLoggedRevocation(renewed.serial)) << Transcript();

  // A second revocation is refused with alreadyRevoked. certbot 2.1 on Python 3.11 reports any
  // ACME error of `revoke` as "AttributeError: can't set attribute" on the console (its error
  // display fails), so the server's answer is read from the debug log of this run.
  const size_t log_before = ReadOrEmpty(client_log_).size();
  auto again = Step("certbot revoke (again)", revoke_command);
  EXPECT_NE(again.exit_code, 0) << Transcript();
  std::string this_run = ReadOrEmpty(client_log_);
  if (this_run.size() >= log_before) this_run = this_run.substr(log_before);  // else: rotated
  EXPECT_NE(this_run.find("urn:ietf:params:acme:error:alreadyRevoked"), std::string::npos)
      << Transcript();
  EXPECT_EQ(StoreStatus(renewed.serial), "revoked/1") << Transcript();
}

// ---- lego ------------------------------------------------------------------------------------

// Writes the first certificate of the PEM bundle `bundle_path` to `leaf_path`.
void ExtractLeaf(const std::string& bundle_path, const std::string& leaf_path) {
  auto bundle = ReadFile(bundle_path);
  ASSERT_TRUE(bundle) << bundle.error().ToString();
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----\n";
  const size_t end = bundle->find(kEnd);
  ASSERT_NE(end, std::string::npos) << *bundle;
  ASSERT_TRUE(WriteFileAtomic(leaf_path, bundle->substr(0, end + kEnd.size()), 0600));
}

TEST_F(AcmeClientTest, LegoObtainsRenewsAndRevokesViaHttp01) {
  const std::string name = RandomHostLabel("lego") + ".localhost";
  // lego trusts only the test root for its connections to e2eid; it insists on an account email.
  const std::string lego = std::string(kNoProxy) + "LEGO_CA_CERTIFICATES=" + ShellQuote(root_pem_) +
                           " " + kClientTimeout + "lego --server " + ShellQuote(directory_url_) +
                           " --path " + ShellQuote(tmp_ / "lego") +
                           " --accept-tos --email lego-test@example.com --domains " +
                           ShellQuote(name) + " --http --http.port " +
                           ShellQuote("127.0.0.1:" + std::to_string(http01_port_));
  const std::string bundle = tmp_ / ("lego/certificates/" + name + ".crt");  // leaf + chain
  const std::string issuer = tmp_ / ("lego/certificates/" + name + ".issuer.crt");
  const std::string leaf = tmp_ / "lego-leaf.pem";

  // 1. Obtain.
  auto obtain = Step("lego run", lego + " run");
  ASSERT_EQ(obtain.exit_code, 0) << Transcript();
  ASSERT_NO_FATAL_FAILURE(ExtractLeaf(bundle, leaf));
  CertFacts first;
  ASSERT_NO_FATAL_FAILURE(CheckIssued(leaf, issuer, name, &first));
  // The bundle lego saved for servers carries the chain too.
  auto full = Step("openssl verify bundle", "openssl verify -CAfile " + ShellQuote(root_pem_) +
                                                " -untrusted " + ShellQuote(bundle) + " " +
                                                ShellQuote(leaf));
  EXPECT_EQ(full.exit_code, 0) << Transcript();

  // 2. Renew now: any certificate with less than 10000 days left is due; no random delay.
  auto renew = Step("lego renew", lego + " renew --days 10000 --no-random-sleep");
  ASSERT_EQ(renew.exit_code, 0) << Transcript();
  EXPECT_NE(renew.output.find("Server responded with a certificate"), std::string::npos)
      << Transcript();
  ASSERT_NO_FATAL_FAILURE(ExtractLeaf(bundle, leaf));
  CertFacts renewed;
  ASSERT_NO_FATAL_FAILURE(CheckIssued(leaf, issuer, name, &renewed));
  EXPECT_NE(renewed.serial, first.serial) << Transcript();

  // 3. Revoke the renewed certificate for keyCompromise (keeping the files for the retry).
  auto revoke = Step("lego revoke", lego + " revoke --reason 1 --keep");
  ASSERT_EQ(revoke.exit_code, 0) << Transcript();
  EXPECT_NE(revoke.output.find("Certificate was revoked."), std::string::npos) << Transcript();
  EXPECT_EQ(StoreStatus(renewed.serial), "revoked/1") << Transcript();
  EXPECT_EQ(StoreStatus(first.serial), "good/-") << Transcript();
  EXPECT_TRUE(ServiceLoggedRevocation(renewed.serial)) << Transcript();

  // A second revocation is refused with alreadyRevoked, and lego says so.
  auto again = Step("lego revoke (again)", lego + " revoke --reason 1 --keep");
  EXPECT_NE(again.exit_code, 0) << Transcript();
  EXPECT_NE(again.output.find("urn:ietf:params:acme:error:alreadyRevoked"), std::string::npos)
      << Transcript();
  EXPECT_EQ(StoreStatus(renewed.serial), "revoked/1") << Transcript();
}

}  // namespace
}  // namespace e2eid
