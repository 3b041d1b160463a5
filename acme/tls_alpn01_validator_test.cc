#include "acme/tls_alpn01_validator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "crypto/digest.h"
#include "crypto/openssl.h"

namespace e2eid::acme {
namespace {

constexpr char kHost[] = "anything.localhost";
constexpr char kKeyAuthorization[] =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";

using SslCtxPtr = std::unique_ptr<SSL_CTX, crypto::Deleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, crypto::Deleter<SSL_free>>;

// DER of the acmeIdentifier extension value: OCTET STRING (32 bytes) of SHA-256(key
// authorization).
Bytes AcmeIdentifierValue(std::string_view key_authorization) {
  Bytes der = {0x04, 0x20};
  const Bytes digest = crypto::Sha256(key_authorization);
  der.insert(der.end(), digest.begin(), digest.end());
  return der;
}

struct CertSpec {
  std::vector<std::string> dns_names = {kHost};
  std::optional<Bytes> acme_value = AcmeIdentifierValue(kKeyAuthorization);  // nullopt: absent
  bool critical = true;
};

struct TestCert {
  crypto::X509Ptr cert;
  crypto::EvpPkeyPtr key;
};

// A self-signed P-256 certificate built with the OpenSSL API.
void MakeCert(const CertSpec& spec, TestCert* out) {
  crypto::EvpPkeyPtr key(EVP_EC_gen("P-256"));
  ASSERT_TRUE(key);
  crypto::X509Ptr cert(X509_new());
  ASSERT_TRUE(cert);
  ASSERT_EQ(X509_set_version(cert.get(), X509_VERSION_3), 1);
  ASSERT_EQ(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 42), 1);
  ASSERT_TRUE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600));
  ASSERT_TRUE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600));
  X509_NAME* subject = X509_get_subject_name(cert.get());
  ASSERT_EQ(
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("acme tls"), -1, -1, 0),
      1);
  ASSERT_EQ(X509_set_issuer_name(cert.get(), subject), 1);
  ASSERT_EQ(X509_set_pubkey(cert.get(), key.get()), 1);

  if (!spec.dns_names.empty()) {
    crypto::GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    ASSERT_TRUE(names);
    for (const std::string& dns : spec.dns_names) {
      crypto::GeneralNamePtr name(GENERAL_NAME_new());
      crypto::Asn1StringPtr text(ASN1_IA5STRING_new());
      ASSERT_TRUE(name && text);
      ASSERT_EQ(ASN1_STRING_set(text.get(), dns.data(), static_cast<int>(dns.size())), 1);
      GENERAL_NAME_set0_value(name.get(), GEN_DNS, text.release());
      GENERAL_NAME* pushed = name.release();  // the stack owns it once pushed
      if (sk_GENERAL_NAME_push(names.get(), pushed) <= 0) {
        GENERAL_NAME_free(pushed);
        FAIL() << "sk_GENERAL_NAME_push failed";
      }
    }
    ASSERT_EQ(
        X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT), 1);
  }
  if (spec.acme_value) {
    crypto::Asn1ObjectPtr oid(OBJ_txt2obj(kAcmeIdentifierOid, 1));
    crypto::Asn1OctetStringPtr value(ASN1_OCTET_STRING_new());
    ASSERT_TRUE(oid && value);
    ASSERT_EQ(ASN1_OCTET_STRING_set(value.get(), spec.acme_value->data(),
                                    static_cast<int>(spec.acme_value->size())),
              1);
    crypto::X509ExtensionPtr ext(
        X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), spec.critical ? 1 : 0, value.get()));
    ASSERT_TRUE(ext);
    ASSERT_EQ(X509_add_ext(cert.get(), ext.get(), -1), 1);
  }
  ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  out->cert = std::move(cert);
  out->key = std::move(key);
}

// Binds a TCP socket to an ephemeral port on 127.0.0.1 (or ::1 when `ipv6`) and, when `listen_too`,
// listens on it. Returns the socket and sets *port, or returns -1.
int BindLoopback(bool ipv6, bool listen_too, uint16_t* port) {
  const int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  socklen_t len = 0;
  if (ipv6) {
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_loopback;
    len = sizeof *v6;
  } else {
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *v4;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      (listen_too && ::listen(fd, 64) != 0) ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(ipv6 ? v6->sin6_port : v4->sin_port);
  return fd;
}

// How the test server behaves.
enum class Mode {
  kAcmeTls,     // TLS, selects acme-tls/1 when offered
  kNoAlpn,      // TLS without any ALPN support
  kRefuseAlpn,  // TLS, aborts the handshake with no_application_protocol
  kPlainText,   // not TLS: answers with an HTTP error and closes
  kSilent,      // accepts the connection and never says anything
};

// A TLS server on 127.0.0.1:<ephemeral> in a thread, one connection at a time. It records the SNI
// and ALPN list each client sent.
class TestTlsServer {
 public:
  // With `ipv6` the server listens on ::1; ok() is false when that is not possible.
  TestTlsServer(const TestCert& cert, Mode mode, bool ipv6 = false) : mode_(mode) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    if (!ctx_ || SSL_CTX_use_certificate(ctx_.get(), cert.cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx_.get(), cert.key.get()) != 1 ||
        SSL_CTX_set_num_tickets(ctx_.get(), 0) != 1) {
      ADD_FAILURE() << "cannot set up the server SSL_CTX";
      return;
    }
    // Recorded while the ClientHello is processed, so before the client can finish.
    SSL_CTX_set_tlsext_servername_callback(ctx_.get(), &TestTlsServer::OnServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx_.get(), this);
    if (mode_ == Mode::kAcmeTls || mode_ == Mode::kRefuseAlpn) {
      SSL_CTX_set_alpn_select_cb(ctx_.get(), &TestTlsServer::SelectAlpn, this);
    }
    listen_fd_ = BindLoopback(ipv6, /*listen_too=*/true, &port_);
    if (listen_fd_ < 0 || ::pipe2(wake_, O_CLOEXEC) != 0) {
      if (!ipv6) ADD_FAILURE() << "cannot start the test TLS server";
      return;
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~TestTlsServer() {
    if (thread_.joinable()) {
      (void)!::write(wake_[1], "x", 1);
      thread_.join();
    }
    for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
  TestTlsServer(const TestTlsServer&) = delete;
  TestTlsServer& operator=(const TestTlsServer&) = delete;

  bool ok() const { return thread_.joinable(); }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::string last_sni() const {
    std::lock_guard lock(mu_);
    return sni_;
  }
  std::string last_alpn_offer() const {  // in wire format (length-prefixed names)
    std::lock_guard lock(mu_);
    return alpn_offer_;
  }

 private:
  static int OnServerName(SSL* ssl, int* /*alert*/, void* arg) {
    auto* self = static_cast<TestTlsServer*>(arg);
    const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    std::lock_guard lock(self->mu_);
    self->sni_ = sni != nullptr ? sni : "";
    return SSL_TLSEXT_ERR_OK;
  }

  static int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen,
                        const unsigned char* in, unsigned int inlen, void* arg) {
    auto* self = static_cast<TestTlsServer*>(arg);
    {
      std::lock_guard lock(self->mu_);
      self->alpn_offer_.assign(reinterpret_cast<const char*>(in), inlen);
    }
    if (self->mode_ == Mode::kRefuseAlpn) return SSL_TLSEXT_ERR_ALERT_FATAL;
    static const unsigned char kOurs[] =
        "\x0a"
        "acme-tls/1";
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, kOurs, sizeof kOurs - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }

  // True when `fd` is readable; false when the server is stopping.
  bool WaitReadable(int fd) {
    pollfd p[2] = {{wake_[0], POLLIN, 0}, {fd, POLLIN, 0}};
    while (true) {
      const int n = ::poll(p, fd >= 0 ? 2 : 1, -1);
      if (n < 0 && errno == EINTR) continue;
      return n > 0 && p[0].revents == 0;
    }
  }

  void Run() {
    sigset_t pipe_set;  // a client that goes away must not kill the test with SIGPIPE
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
    while (WaitReadable(listen_fd_)) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      ++connections_;
      Serve(client);
      ::close(client);
    }
    ERR_clear_error();
  }

  void Serve(int client) {
    if (mode_ == Mode::kSilent) {
      WaitReadable(-1);  // until the server stops
      return;
    }
    if (mode_ == Mode::kPlainText) {
      if (!WaitReadable(client)) return;
      static constexpr char kReply[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
      (void)!::send(client, kReply, sizeof kReply - 1, MSG_NOSIGNAL);
      return;
    }
    timeval tv{5, 0};  // never block the test forever on a broken client
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SslPtr ssl(SSL_new(ctx_.get()));
    if (!ssl || SSL_set_fd(ssl.get(), client) != 1) return;
    (void)SSL_accept(ssl.get());
    // Wait until the client closes (it sends nothing after the handshake).
    char buf[256];
    (void)SSL_read(ssl.get(), buf, sizeof buf);
    ERR_clear_error();
  }

  Mode mode_;
  SslCtxPtr ctx_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::string sni_;
  std::string alpn_offer_;
};

// A port on 127.0.0.1 that is bound but not listening: connections are refused.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = BindLoopback(/*ipv6=*/false, /*listen_too=*/false, &port_);
    if (fd_ < 0) ADD_FAILURE() << "cannot bind a port";
  }
  ~ClosedPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

ValidationRequest Request(std::string host = kHost) {
  ValidationRequest r;
  r.challenge_type = "tls-alpn-01";
  r.identifier_type = "dns";
  r.identifier_value = std::move(host);
  r.token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
  r.key_authorization = kKeyAuthorization;
  return r;
}

std::unique_ptr<TlsAlpn01Validator> MakeValidator(
    uint16_t port, const std::function<void(TlsAlpn01Options&)>& tweak = nullptr) {
  TlsAlpn01Options o;
  o.port = port;
  o.resolver_overrides = {{"*.localhost", "127.0.0.1"}};
  if (tweak) tweak(o);
  auto v = TlsAlpn01Validator::Create(std::move(o));
  EXPECT_TRUE(v) << v.error().ToString();
  return v ? std::move(*v) : nullptr;
}

std::string ExpectError(const Status& s, ErrorCode code) {
  EXPECT_FALSE(s);
  if (s) return "";
  EXPECT_EQ(s.error().code(), code) << s.error().ToString();
  return s.error().detail();
}

// Runs one validation against a server presenting a certificate built from `spec`.
Status ValidateAgainst(const CertSpec& spec, Mode mode = Mode::kAcmeTls,
                       const ValidationRequest& request = Request()) {
  TestCert cert;
  MakeCert(spec, &cert);
  if (!cert.cert) return Fail(Error::Internal("test certificate not built"));
  TestTlsServer server(cert, mode);
  auto v = MakeValidator(server.port());
  if (!v) return Fail(Error::Internal("validator not built"));
  auto s = v->Validate(request);
  EXPECT_EQ(server.connections(), 1);
  return s;
}

TEST(TlsAlpn01ValidatorTest, CorrectCertificateIsOk) {
  TestCert cert;
  MakeCert({}, &cert);
  ASSERT_TRUE(cert.cert);
  TestTlsServer server(cert, Mode::kAcmeTls);
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  auto s = v->Validate(Request());
  EXPECT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(server.last_sni(), kHost);
  EXPECT_EQ(server.last_alpn_offer(), std::string("\x0a") + "acme-tls/1");  // and nothing else
}

TEST(TlsAlpn01ValidatorTest, SanComparesCaseInsensitively) {
  CertSpec spec;
  spec.dns_names = {"Anything.LOCALHOST"};
  auto s = ValidateAgainst(spec);
  EXPECT_TRUE(s) << s.error().ToString();
}

TEST(TlsAlpn01ValidatorTest, Ipv6OverrideAddress) {
  TestCert cert;
  MakeCert({}, &cert);
  ASSERT_TRUE(cert.cert);
  TestTlsServer server(cert, Mode::kAcmeTls, /*ipv6=*/true);
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  auto v = MakeValidator(server.port(), [](TlsAlpn01Options& o) {
    o.resolver_overrides = {{"*.localhost", "::1"}};
  });
  ASSERT_TRUE(v);
  auto s = v->Validate(Request());
  EXPECT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(server.connections(), 1);
}

TEST(TlsAlpn01ValidatorTest, ManyThreadsAtOnce) {
  TestCert cert;
  MakeCert({}, &cert);
  ASSERT_TRUE(cert.cert);
  TestTlsServer server(cert, Mode::kAcmeTls);
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 3; ++i) {
        if (v->Validate(Request())) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 12);
}

TEST(TlsAlpn01ValidatorTest, WrongDigestIsIncorrectResponse) {
  CertSpec spec;
  spec.acme_value = AcmeIdentifierValue("some-other-token.thumbprint");
  const std::string detail = ExpectError(ValidateAgainst(spec), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("SHA-256"), std::string::npos) << detail;
}

TEST(TlsAlpn01ValidatorTest, NonCriticalExtensionIsRefused) {
  CertSpec spec;
  spec.critical = false;
  const std::string detail = ExpectError(ValidateAgainst(spec), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("critical"), std::string::npos) << detail;
}

TEST(TlsAlpn01ValidatorTest, MissingExtensionIsRefused) {
  CertSpec spec;
  spec.acme_value.reset();
  const std::string detail = ExpectError(ValidateAgainst(spec), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("no acmeIdentifier"), std::string::npos) << detail;
}

TEST(TlsAlpn01ValidatorTest, DigestNotWrappedInOctetStringIsRefused) {
  CertSpec spec;
  spec.acme_value = crypto::Sha256(kKeyAuthorization);  // the raw 32 bytes, no DER wrapping
  const std::string detail = ExpectError(ValidateAgainst(spec), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("OCTET STRING"), std::string::npos) << detail;
}

TEST(TlsAlpn01ValidatorTest, ExtraSanIsRefused) {
  CertSpec spec;
  spec.dns_names = {kHost, "other.localhost"};
  const std::string detail = ExpectError(ValidateAgainst(spec), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("exactly one"), std::string::npos) << detail;
}

TEST(TlsAlpn01ValidatorTest, WrongSanIsRefused) {
  CertSpec spec;
  spec.dns_names = {"other.localhost"};
  const std::string detail = ExpectError(ValidateAgainst(spec), ErrorCode::kIncorrectResponse);
  EXPECT_NE(detail.find("other.localhost"), std::string::npos) << detail;
}

TEST(TlsAlpn01ValidatorTest, MissingSanIsRefused) {
  CertSpec spec;
  spec.dns_names.clear();
  ExpectError(ValidateAgainst(spec), ErrorCode::kIncorrectResponse);
}

TEST(TlsAlpn01ValidatorTest, ServerWithoutAlpnIsTlsError) {
  const std::string detail = ExpectError(ValidateAgainst({}, Mode::kNoAlpn), ErrorCode::kTls);
  EXPECT_NE(detail.find("acme-tls/1"), std::string::npos) << detail;
}

TEST(TlsAlpn01ValidatorTest, ServerRefusingAcmeTlsIsTlsError) {
  ExpectError(ValidateAgainst({}, Mode::kRefuseAlpn), ErrorCode::kTls);
}

TEST(TlsAlpn01ValidatorTest, PlainTextServerIsTlsError) {
  ExpectError(ValidateAgainst({}, Mode::kPlainText), ErrorCode::kTls);
}

TEST(TlsAlpn01ValidatorTest, SilentServerTimesOut) {
  TestCert cert;
  MakeCert({}, &cert);
  ASSERT_TRUE(cert.cert);
  TestTlsServer server(cert, Mode::kSilent);
  auto v = MakeValidator(server.port(), [](TlsAlpn01Options& o) {
    o.connect_timeout = std::chrono::milliseconds(300);
    o.total_timeout = std::chrono::milliseconds(300);
  });
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request()), ErrorCode::kConnection);
  EXPECT_NE(detail.find("timed out"), std::string::npos) << detail;
}

TEST(TlsAlpn01ValidatorTest, NothingListeningIsConnectionError) {
  ClosedPort closed;
  auto v = MakeValidator(closed.port());
  ASSERT_TRUE(v);
  ExpectError(v->Validate(Request()), ErrorCode::kConnection);
}

TEST(TlsAlpn01ValidatorTest, UnresolvableNameIsDnsError) {
  auto v = MakeValidator(443, [](TlsAlpn01Options& o) { o.resolver_overrides.clear(); });
  ASSERT_TRUE(v);
  const std::string detail = ExpectError(v->Validate(Request("nope.invalid")), ErrorCode::kDns);
  EXPECT_NE(detail.find("nope.invalid"), std::string::npos) << detail;
}

TEST(TlsAlpn01ValidatorTest, RefusesWhatItCannotValidate) {
  TestCert cert;
  MakeCert({}, &cert);
  ASSERT_TRUE(cert.cert);
  TestTlsServer server(cert, Mode::kAcmeTls);
  auto v = MakeValidator(server.port());
  ASSERT_TRUE(v);
  std::vector<ValidationRequest> bad;
  bad.push_back(Request("127.0.0.1"));
  bad.push_back(Request("::1"));
  bad.push_back(Request("bad_name.localhost"));
  bad.push_back(Request("*.localhost"));
  bad.push_back(Request());
  bad.back().identifier_type = "ip";
  bad.push_back(Request());
  bad.back().challenge_type = "http-01";
  bad.push_back(Request());
  bad.back().key_authorization = "";
  for (const auto& r : bad) {
    SCOPED_TRACE(r.identifier_type + " " + r.identifier_value);
    ExpectError(v->Validate(r), ErrorCode::kMalformed);
  }
  EXPECT_EQ(server.connections(), 0);
}

TEST(TlsAlpn01ValidatorTest, CreateChecksOptions) {
  TlsAlpn01Options o;
  o.port = 0;
  auto v = TlsAlpn01Validator::Create(o);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kConfig);
  o.port = 443;
  o.resolver_overrides = {{"*.localhost", "not-an-address"}};
  v = TlsAlpn01Validator::Create(o);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kConfig);
  o.resolver_overrides.clear();
  EXPECT_TRUE(TlsAlpn01Validator::Create(o));
}

}  // namespace
}  // namespace e2eid::acme
