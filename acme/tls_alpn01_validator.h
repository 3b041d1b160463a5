// TlsAlpn01Validator: the tls-alpn-01 challenge (RFC 8737), with OpenSSL.
//
// For a dns identifier "host" the validator connects to host:port (443 by default), resolving the
// name through ResolverOverrides (acme/http01_validator.h) and then the system resolver, and runs
// a TLS 1.2 or 1.3 handshake offering only the ALPN protocol "acme-tls/1" with SNI = host. It
// succeeds when
//   - the server negotiated "acme-tls/1";
//   - the server's certificate (self-signed; no chain or validity check, as RFC 8737 intends) has
//     exactly one subjectAltName extension holding exactly one entry, a dNSName equal to host
//     (case-insensitive);
//   - the certificate has exactly one id-pe-acmeIdentifier extension (1.3.6.1.5.5.7.1.31), it is
//     critical, and its value is a DER OCTET STRING holding SHA-256(key authorization), compared in
//     constant time.
// No application data is exchanged; the connection is closed right after the checks.
//
// Errors returned by Validate() are always client-facing RFC 8555 types:
//   kMalformed         wrong challenge type, identifier type, IP address or invalid name;
//   kDns               the name did not resolve;
//   kConnection        TCP connect failure, or a timeout during connect or handshake;
//   kTls               the handshake failed, or the server did not negotiate acme-tls/1;
//   kIncorrectResponse the certificate does not satisfy the rules above (the detail says which);
//   kServerInternal    OpenSSL could not set up the connection (out of memory).
//
// Thread safety: Validate() may be called from many threads at once (each call has its own socket
// and SSL object; the shared SSL_CTX is never modified after Create()). A call blocks for at most
// about `total_timeout`, plus the time the system resolver takes.
#ifndef E2EID_ACME_TLS_ALPN01_VALIDATOR_H_
#define E2EID_ACME_TLS_ALPN01_VALIDATOR_H_

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "acme/http01_validator.h"
#include "acme/validation.h"
#include "core/error.h"
#include "crypto/openssl.h"

namespace e2eid::acme {

// The ALPN protocol name of RFC 8737 §6.2.
inline constexpr std::string_view kAcmeTlsAlpnProtocol = "acme-tls/1";
// id-pe-acmeIdentifier (RFC 8737 §6.1).
inline constexpr const char* kAcmeIdentifierOid = "1.3.6.1.5.5.7.1.31";

struct TlsAlpn01Options {
  uint16_t port = 443;
  std::map<std::string, std::string> resolver_overrides;  // see ResolverOverrides::Create
  std::chrono::milliseconds connect_timeout{5000};        // per TCP connect attempt
  std::chrono::milliseconds total_timeout{10000};         // connect + handshake
};

class TlsAlpn01Validator final : public ChallengeValidator {
 public:
  // Checks the options and builds the TLS client context.
  // Errors: kConfig for a zero port, non-positive timeouts, a connect timeout above the total
  // timeout or bad resolver overrides; kCrypto when OpenSSL cannot build the context.
  static Result<std::unique_ptr<TlsAlpn01Validator>> Create(TlsAlpn01Options options);

  TlsAlpn01Validator(const TlsAlpn01Validator&) = delete;
  TlsAlpn01Validator& operator=(const TlsAlpn01Validator&) = delete;

  // See the file comment. request.challenge_type must be "tls-alpn-01".
  Status Validate(const ValidationRequest& request) override;

 private:
  using SslCtxPtr = std::unique_ptr<SSL_CTX, crypto::Deleter<SSL_CTX_free>>;
  using BioMethodPtr = std::unique_ptr<BIO_METHOD, crypto::Deleter<BIO_meth_free>>;

  TlsAlpn01Validator(TlsAlpn01Options options, ResolverOverrides overrides, SslCtxPtr ctx,
                     BioMethodPtr bio_method)
      : options_(std::move(options)),
        overrides_(std::move(overrides)),
        ctx_(std::move(ctx)),
        bio_method_(std::move(bio_method)) {}

  const TlsAlpn01Options options_;
  const ResolverOverrides overrides_;
  const SslCtxPtr ctx_;
  const BioMethodPtr bio_method_;  // a socket BIO that never raises SIGPIPE
};

}  // namespace e2eid::acme

#endif  // E2EID_ACME_TLS_ALPN01_VALIDATOR_H_
