#include "acme/tls_alpn01_validator.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/http.h"
#include "crypto/digest.h"

namespace e2eid::acme {
namespace {

using Steady = std::chrono::steady_clock;
using SslPtr = std::unique_ptr<SSL, crypto::Deleter<SSL_free>>;
using AddrInfoPtr = std::unique_ptr<addrinfo, crypto::Deleter<freeaddrinfo>>;

// Owns a file descriptor.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_;
};

std::string ErrnoText(int err) {
  char buf[256];
  return ::strerror_r(err, buf, sizeof buf);  // the GNU variant returns the message
}

Error CannotStart(std::string_view what) {
  return Error(ErrorCode::kServerInternal,
               "tls-alpn-01 validation could not be started (" + std::string(what) + ")");
}

int MillisUntil(Steady::time_point deadline) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()).count();
  constexpr int64_t kMaxWaitMs = 86'400'000;  // a day: far above any configured timeout
  return static_cast<int>(std::clamp<int64_t>(ms, 0, kMaxWaitMs));
}

// Waits until `fd` is ready for `events` (true) or `deadline` passes (false).
bool WaitFor(int fd, short events, Steady::time_point deadline) {
  while (true) {
    const int timeout_ms = MillisUntil(deadline);
    if (timeout_ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, timeout_ms);
    if (n > 0) return true;  // ready, or an error/hang-up that the next call reports
    if (n == 0) continue;    // re-check the deadline
    if (errno != EINTR) return true;
  }
}

// ---- a socket BIO using send(MSG_NOSIGNAL), so a peer reset never raises SIGPIPE ----

// The BIO's data points at the socket descriptor (an int that outlives the BIO).
int SocketOf(BIO* bio) { return *static_cast<const int*>(BIO_get_data(bio)); }

int BioWrite(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::send(SocketOf(bio), data, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(bio);
    return -1;
  }
  return static_cast<int>(n);
}

int BioRead(BIO* bio, char* data, int len) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::recv(SocketOf(bio), data, static_cast<size_t>(len), 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(bio);
    return -1;
  }
  return static_cast<int>(n);
}

long BioCtrl(BIO*, int cmd, long, void*) {  // NOLINT(runtime/int): OpenSSL's signature
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

// ---- name resolution and connect ----

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

Result<std::vector<Address>> Resolve(const std::string& host, uint16_t port,
                                     const ResolverOverrides& overrides) {
  std::vector<Address> out;
  if (const auto fixed = overrides.Lookup(host)) {
    Address a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    if (inet_pton(AF_INET, fixed->c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(port);
      a.length = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, fixed->c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(port);
      a.length = sizeof(sockaddr_in6);
    } else {
      return Fail(CannotStart("bad resolver override address"));  // Create() checked it
    }
    out.push_back(a);
    return out;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* raw = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &raw);
  AddrInfoPtr list(raw);
  if (rc != 0) {
    std::string reason = rc == EAI_SYSTEM ? ErrnoText(errno) : ::gai_strerror(rc);
    return Fail(ErrorCode::kDns, "could not resolve '" + host + "': " + reason);
  }
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    Address a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.length = ai->ai_addrlen;
    out.push_back(a);
  }
  if (out.empty()) {
    return Fail(ErrorCode::kDns, "could not resolve '" + host + "': no IPv4 or IPv6 address");
  }
  return out;
}

// Connects to the first address that accepts, each attempt bounded by `connect_timeout`.
Result<UniqueFd> Connect(const std::vector<Address>& addresses, const std::string& where,
                         std::chrono::milliseconds connect_timeout, Steady::time_point deadline) {
  std::string last_error = "no address to try";
  for (const Address& a : addresses) {
    if (Steady::now() >= deadline) {
      last_error = "timed out";
      break;
    }
    UniqueFd fd(::socket(a.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      last_error = ErrnoText(errno);
      continue;
    }
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.storage), a.length) == 0) {
      return fd;
    }
    if (errno != EINPROGRESS) {
      last_error = ErrnoText(errno);
      continue;
    }
    const Steady::time_point attempt_deadline = std::min(deadline, Steady::now() + connect_timeout);
    if (!WaitFor(fd.get(), POLLOUT, attempt_deadline)) {
      last_error = "timed out (limit " + std::to_string(connect_timeout.count()) + " ms)";
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) return fd;
    last_error = ErrnoText(err);
  }
  return Fail(ErrorCode::kConnection, "could not connect to " + where + ": " + last_error);
}

// The reason of the first OpenSSL error on this thread's queue, then clears the queue.
std::string TakeTlsReason(int ssl_error, int saved_errno) {
  const unsigned long code = ERR_peek_error();  // NOLINT(runtime/int): OpenSSL's type
  std::string reason;
  if (code != 0) {
    const char* text = ERR_reason_error_string(code);
    reason = text != nullptr ? text : "error " + std::to_string(ERR_GET_REASON(code));
  } else if (ssl_error == SSL_ERROR_SYSCALL && saved_errno != 0) {
    reason = ErrnoText(saved_errno);
  } else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN) {
    reason = "the server closed the connection";
  } else {
    reason = "handshake failed";
  }
  crypto::ClearOpenSslErrors();
  return reason;
}

Status IncorrectCert(std::string detail) {
  return Fail(ErrorCode::kIncorrectResponse, "tls-alpn-01 certificate: " + std::move(detail));
}

Status CheckCertificate(X509* cert, const std::string& host, std::string_view key_authorization) {
  // subjectAltName: exactly one extension with exactly one entry, the dNSName being validated.
  int critical = -1;
  crypto::GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr)));
  crypto::ClearOpenSslErrors();
  if (!names) {
    if (critical == -1) return IncorrectCert("there is no subjectAltName extension");
    if (critical == -2) return IncorrectCert("there is more than one subjectAltName extension");
    return IncorrectCert("the subjectAltName extension cannot be decoded");
  }
  const int count = sk_GENERAL_NAME_num(names.get());
  if (count != 1) {
    return IncorrectCert("subjectAltName must hold exactly one entry, the dNSName '" + host +
                         "'; it holds " + std::to_string(count));
  }
  const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), 0);
  if (name->type != GEN_DNS) {
    return IncorrectCert("the subjectAltName entry is not a dNSName");
  }
  const std::string_view dns(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)),
                             static_cast<size_t>(ASN1_STRING_length(name->d.dNSName)));
  if (!EqualsIgnoreCase(dns, host)) {
    return IncorrectCert("subjectAltName names \"" + EscapeForDetail(dns, 253) + "\", not '" +
                         host + "'");
  }

  // id-pe-acmeIdentifier: exactly one, critical, OCTET STRING (32 bytes) = SHA-256(keyAuth).
  crypto::Asn1ObjectPtr oid(OBJ_txt2obj(kAcmeIdentifierOid, 1));
  if (!oid) {
    crypto::ClearOpenSslErrors();
    return Fail(CannotStart("OBJ_txt2obj failed"));
  }
  const int index = X509_get_ext_by_OBJ(cert, oid.get(), -1);
  if (index < 0) {
    return IncorrectCert(std::string("there is no acmeIdentifier extension (") +
                         kAcmeIdentifierOid + ")");
  }
  if (X509_get_ext_by_OBJ(cert, oid.get(), index) >= 0) {
    return IncorrectCert("there is more than one acmeIdentifier extension");
  }
  X509_EXTENSION* extension = X509_get_ext(cert, index);
  if (X509_EXTENSION_get_critical(extension) != 1) {
    return IncorrectCert("the acmeIdentifier extension is not marked critical");
  }
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(extension);
  const std::span<const uint8_t> der(ASN1_STRING_get0_data(value),
                                     static_cast<size_t>(ASN1_STRING_length(value)));
  // The DER encoding of an OCTET STRING of 32 bytes is 04 20 followed by the bytes.
  if (der.size() != 34 || der[0] != 0x04 || der[1] != 0x20) {
    return IncorrectCert(
        "the acmeIdentifier extension's value must be a DER OCTET STRING of 32 bytes (SHA-256)");
  }
  const Bytes expected = crypto::Sha256(key_authorization);
  if (!crypto::ConstantTimeEquals(der.subspan(2), expected)) {
    return IncorrectCert(
        "the acmeIdentifier extension does not hold the SHA-256 digest of this challenge's key "
        "authorization");
  }
  return Ok();
}

}  // namespace

Result<std::unique_ptr<TlsAlpn01Validator>> TlsAlpn01Validator::Create(TlsAlpn01Options options) {
  if (options.port == 0) return Fail(Error::Config("tls-alpn-01: port must not be 0"));
  if (options.connect_timeout.count() <= 0 || options.total_timeout.count() <= 0) {
    return Fail(Error::Config("tls-alpn-01: timeouts must be positive"));
  }
  if (options.connect_timeout > options.total_timeout) {
    return Fail(Error::Config("tls-alpn-01: connect_timeout must not exceed total_timeout"));
  }
  auto overrides = ResolverOverrides::Create(options.resolver_overrides);
  if (!overrides) return Fail(std::move(overrides).error().Context("tls-alpn-01"));

  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Fail(crypto::OpenSslError("SSL_CTX_new"));
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    return Fail(crypto::OpenSslError("SSL_CTX_set_min_proto_version"));
  }
  // The certificate is checked by CheckCertificate(), not against a trust store (RFC 8737 §3).
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  std::vector<unsigned char> alpn;
  alpn.push_back(static_cast<unsigned char>(kAcmeTlsAlpnProtocol.size()));
  alpn.insert(alpn.end(), kAcmeTlsAlpnProtocol.begin(), kAcmeTlsAlpnProtocol.end());
  if (SSL_CTX_set_alpn_protos(ctx.get(), alpn.data(), static_cast<unsigned int>(alpn.size())) !=
      0) {  // this one returns 0 on success
    return Fail(crypto::OpenSslError("SSL_CTX_set_alpn_protos"));
  }

  const int bio_index = BIO_get_new_index();
  if (bio_index == -1) return Fail(crypto::OpenSslError("BIO_get_new_index"));
  BioMethodPtr method(BIO_meth_new(bio_index | BIO_TYPE_SOURCE_SINK, "e2eid nosigpipe socket"));
  if (!method) return Fail(crypto::OpenSslError("BIO_meth_new"));
  if (BIO_meth_set_write(method.get(), BioWrite) != 1 ||
      BIO_meth_set_read(method.get(), BioRead) != 1 ||
      BIO_meth_set_ctrl(method.get(), BioCtrl) != 1) {
    return Fail(crypto::OpenSslError("BIO_meth_set_*"));
  }
  return std::unique_ptr<TlsAlpn01Validator>(new TlsAlpn01Validator(
      std::move(options), std::move(*overrides), std::move(ctx), std::move(method)));
}

Status TlsAlpn01Validator::Validate(const ValidationRequest& request) {
  E2EID_TRY(host, CheckDnsChallenge(request, "tls-alpn-01"));
  const Steady::time_point deadline = Steady::now() + options_.total_timeout;
  const std::string where = host + ":" + std::to_string(options_.port);

  E2EID_TRY(addresses, Resolve(host, options_.port, overrides_));
  E2EID_TRY(fd, Connect(addresses, where, options_.connect_timeout, deadline));

  crypto::ClearOpenSslErrors();
  int socket_fd = fd.get();  // the BIO points at this; it outlives `ssl`, declared below
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) {
    crypto::ClearOpenSslErrors();
    return Fail(CannotStart("SSL_new failed"));
  }
  crypto::BioPtr bio(BIO_new(bio_method_.get()));
  if (!bio) {
    crypto::ClearOpenSslErrors();
    return Fail(CannotStart("BIO_new failed"));
  }
  BIO_set_data(bio.get(), &socket_fd);
  BIO_set_init(bio.get(), 1);
  BIO* owned_by_ssl = bio.release();
  SSL_set_bio(ssl.get(), owned_by_ssl, owned_by_ssl);  // the SSL object takes the one reference
  if (SSL_set_tlsext_host_name(ssl.get(), host.c_str()) != 1) {
    crypto::ClearOpenSslErrors();
    return Fail(CannotStart("SSL_set_tlsext_host_name failed"));
  }
  SSL_set_connect_state(ssl.get());

  while (true) {
    errno = 0;
    const int rc = SSL_do_handshake(ssl.get());
    if (rc == 1) break;
    const int saved_errno = errno;
    const int ssl_error = SSL_get_error(ssl.get(), rc);
    if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
      if (!WaitFor(fd.get(), ssl_error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        crypto::ClearOpenSslErrors();
        return Fail(ErrorCode::kConnection,
                    "the TLS handshake with " + where + " timed out (limit " +
                        std::to_string(options_.total_timeout.count()) + " ms in total)");
      }
      continue;
    }
    return Fail(ErrorCode::kTls, "the TLS handshake with " + where +
                                     " failed: " + TakeTlsReason(ssl_error, saved_errno));
  }

  const unsigned char* protocol = nullptr;
  unsigned int protocol_length = 0;
  SSL_get0_alpn_selected(ssl.get(), &protocol, &protocol_length);
  const std::string_view selected(reinterpret_cast<const char*>(protocol), protocol_length);
  if (selected != kAcmeTlsAlpnProtocol) {
    if (selected.empty()) {
      return Fail(ErrorCode::kTls, where +
                                       " did not negotiate an ALPN protocol; tls-alpn-01 requires "
                                       "\"acme-tls/1\"");
    }
    return Fail(ErrorCode::kTls, where + " negotiated the ALPN protocol \"" +
                                     EscapeForDetail(selected) + "\" instead of \"acme-tls/1\"");
  }
  crypto::X509Ptr cert(SSL_get1_peer_certificate(ssl.get()));
  if (!cert) return Fail(ErrorCode::kTls, where + " presented no certificate");
  // RFC 8737 §3: no application data; the connection is closed once the handshake is done.
  return CheckCertificate(cert.get(), host, request.key_authorization);
}

}  // namespace e2eid::acme
