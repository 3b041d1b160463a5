// The CA hierarchy: a root (self-signed, CA:TRUE pathlen:1) and an issuing intermediate (CA:TRUE
// pathlen:0, optionally name-constrained to the organisation's domain), created once by `e2eid
// init` and loaded at every start of the service.
#ifndef E2EID_CA_AUTHORITY_H_
#define E2EID_CA_AUTHORITY_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/random.h"
#include "crypto/key.h"
#include "crypto/openssl.h"

namespace e2eid::ca {

// Where the CA's files live inside its directory.
struct CaPaths {
  std::string root_cert;          // root.pem
  std::string root_key;           // root.key (0600; encrypted when a passphrase was given)
  std::string intermediate_cert;  // intermediate.pem
  std::string intermediate_key;   // intermediate.key (0600)
  std::string chain;              // chain.pem: intermediate then root

  static CaPaths In(const std::string& dir);
};

struct InitOptions {
  std::string dir;
  // When set: the organisation (O=) of both CA certificates and a critical nameConstraints
  // extension on the intermediate that permits URI names whose host is exactly this domain.
  std::string domain;
  // When false, the intermediate carries no nameConstraints even with a domain. For relying
  // parties whose X.509 library mis-parses URI name constraints: OpenSSL 3.0/3.1 take the
  // userinfo of "wireapp://%40alice@domain" as part of the host and reject every Wire URI
  // ("permitted subtree violation"); Go, rustls and BoringSSL handle it.
  bool name_constraints = true;
  crypto::KeySpec key_spec;               // both CA keys (default P-256)
  std::optional<std::string> passphrase;  // encrypts both private keys (PKCS#8, AES-256-CBC)
  std::chrono::seconds root_validity = std::chrono::hours(24 * 3650);
  std::chrono::seconds intermediate_validity = std::chrono::hours(24 * 1825);
};

struct InitResult {
  CaPaths paths;
  std::string root_fingerprint;  // SHA-256 of the DER, lowercase hex
  std::string intermediate_fingerprint;
};

// Creates the directory (0700) when missing, generates both keys and certificates, and writes the
// five files. Refuses with kAlreadyExists, naming the file, when any of them exists: an existing CA
// is never overwritten. Files are created with O_EXCL; keys with mode 0600, certificates 0644.
// Errors: kAlreadyExists, kInvalidArgument (bad domain / options), kIo, kCrypto.
Result<InitResult> InitCa(const InitOptions& options, const Clock& clock, RandomSource& random);

// The issuing side of a loaded CA: the intermediate's certificate and key, and the root.
// Immutable after Load; safe to share between threads.
class CertificateAuthority {
 public:
  CertificateAuthority(CertificateAuthority&&) noexcept = default;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept = default;
  CertificateAuthority(const CertificateAuthority&) = delete;
  CertificateAuthority& operator=(const CertificateAuthority&) = delete;

  // Loads and checks: the intermediate key matches its certificate, the intermediate is a CA
  // signed by the root, the root is self-signed. `passphrase` decrypts an encrypted key.
  // Errors: kNotFound for a missing file, kMalformed for unreadable PEM, kInvalidArgument for a
  // wrong passphrase or an inconsistent hierarchy.
  static Result<CertificateAuthority> Load(const CaPaths& paths,
                                           std::optional<std::string_view> passphrase);

  X509* root() const { return root_.get(); }
  X509* intermediate() const { return intermediate_.get(); }
  const crypto::PrivateKey& intermediate_key() const { return intermediate_key_; }
  // PEM of the intermediate followed by the root: appended after a leaf it forms the full chain.
  const std::string& chain_pem() const { return chain_pem_; }
  const std::string& root_pem() const { return root_pem_; }
  TimePoint intermediate_not_after() const { return intermediate_not_after_; }

 private:
  CertificateAuthority(crypto::X509Ptr root, crypto::X509Ptr intermediate, crypto::PrivateKey key)
      : root_(std::move(root)),
        intermediate_(std::move(intermediate)),
        intermediate_key_(std::move(key)) {}
  crypto::X509Ptr root_;
  crypto::X509Ptr intermediate_;
  crypto::PrivateKey intermediate_key_;
  std::string chain_pem_;
  std::string root_pem_;
  TimePoint intermediate_not_after_{};
};

// 16 random bytes: a positive 128-bit serial number (RFC 5280 allows up to 20 octets; the DER
// encoding adds a leading zero when the top bit is set). Never all-zero.
Result<Bytes> RandomSerial(RandomSource& random);

}  // namespace e2eid::ca

#endif  // E2EID_CA_AUTHORITY_H_
