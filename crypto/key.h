// Asymmetric keys: the key types e2eid accepts, and move-only PrivateKey / PublicKey wrappers over
// EVP_PKEY that enforce that policy wherever a key enters the process.
//
// Policy (applied by every constructor: Generate, FromPem, FromDer, FromEvpPkey, and by
// PublicKeyFromJwk in crypto/jwk.h):
//   - Ed25519;
//   - ECDSA on P-256, P-384, P-521 (named curves only; explicit curve parameters are refused);
//   - RSA (PKCS#1 rsaEncryption keys, not RSA-PSS-restricted keys) with a modulus of 2048 to
//     8192 bits and an odd public exponent 65537 <= e < 2^32 (SP 800-56B's lower bound).
// Anything else (Ed448, X25519/X448, DSA, DH, secp256k1, brainpool, RSA < 2048 bits, ...) fails
// with kBadPublicKey "unsupported key type ..." / "RSA key too small ...".
//
// Thread safety: a const PrivateKey / PublicKey may be used by several threads at once (OpenSSL 3
// EVP_PKEY is safe for concurrent read-only use such as signing and verifying with separate
// contexts). Never log or serialise a private key except through ToPem().
#ifndef E2EID_CRYPTO_KEY_H_
#define E2EID_CRYPTO_KEY_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"
#include "crypto/openssl.h"

namespace e2eid::crypto {

enum class KeyType { kEd25519, kP256, kP384, kP521, kRsa };

// "ed25519", "p256", "p384", "p521", "rsa".
std::string_view KeyTypeName(KeyType type);

// Accepts exactly the names KeyTypeName() returns (lower case). Errors: kInvalidArgument
// "unsupported key type 'x' (accepted: ed25519, p256, p384, p521, rsa)".
Result<KeyType> ParseKeyType(std::string_view name);

// A key type plus the RSA modulus size: what configuration files and the CLI name a key with.
struct KeySpec {
  KeyType type = KeyType::kP256;
  int rsa_bits = 0;  // 2048, 3072 or 4096 for kRsa; 0 otherwise
};
// Accepts "ed25519", "p256", "p384", "p521", "rsa2048", "rsa3072", "rsa4096".
// Errors: kInvalidArgument naming the accepted values.
Result<KeySpec> ParseKeySpec(std::string_view name);
std::string KeySpecName(const KeySpec& spec);  // inverse of ParseKeySpec

// The digest to pass to X509_sign / X509_REQ_sign / X509_CRL_sign / OCSP_basic_sign for a signing
// key of this type: SHA-256 for P-256 and RSA, SHA-384 for P-384, SHA-512 for P-521, and nullptr
// for Ed25519 (EdDSA signs the message itself; OpenSSL requires a null digest).
const EVP_MD* SignatureDigest(KeyType type);

class PublicKey;

class PrivateKey {
 public:
  PrivateKey(PrivateKey&&) noexcept = default;
  PrivateKey& operator=(PrivateKey&&) noexcept = default;
  PrivateKey(const PrivateKey&) = delete;
  PrivateKey& operator=(const PrivateKey&) = delete;

  // A fresh key from OpenSSL's DRBG. `rsa_bits` is used only for kRsa and must be 2048..8192
  // (kInvalidArgument otherwise). Errors: kCrypto when generation fails.
  static Result<PrivateKey> Generate(KeyType type, int rsa_bits = 3072);
  static Result<PrivateKey> Generate(const KeySpec& spec) {
    return Generate(spec.type, spec.type == KeyType::kRsa ? spec.rsa_bits : 3072);
  }

  // Parses one PEM private key: PKCS#8 ("PRIVATE KEY"), encrypted PKCS#8 ("ENCRYPTED PRIVATE
  // KEY") or a traditional "RSA/EC PRIVATE KEY" block (also with "Proc-Type: 4,ENCRYPTED"); other
  // PEM blocks before it (e.g. "EC PARAMETERS") are skipped. Never prompts on a terminal.
  // `passphrase` is used only when the key is encrypted.
  // Errors:
  //   kMalformed       no PEM private key found, bad base64, truncated, bad DER inside;
  //   kInvalidArgument "private key is encrypted but no passphrase was given" /
  //                    "wrong passphrase or corrupt encrypted private key";
  //   kBadPublicKey    the key is outside the policy above.
  static Result<PrivateKey> FromPem(std::string_view pem,
                                    std::optional<std::string_view> passphrase = std::nullopt);

  // Takes ownership of an EVP_PKEY that holds a private key, applying the policy.
  // Errors: kInvalidArgument for null or a key without private part; kBadPublicKey per policy.
  static Result<PrivateKey> FromEvpPkey(EvpPkeyPtr pkey);

  // PKCS#8 PEM. Without a passphrase: "PRIVATE KEY" (unencrypted). With one: "ENCRYPTED PRIVATE
  // KEY", PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256 (kPbkdf2Iterations iterations, random
  // 16-byte salt). An empty passphrase is refused (kInvalidArgument).
  // Errors: kCrypto when OpenSSL fails. The result is secret: write it with mode 0600.
  Result<std::string> ToPem(std::optional<std::string_view> passphrase = std::nullopt) const;
  static constexpr int kPbkdf2Iterations = 600000;

  // The matching public key (a separate EVP_PKEY holding only public material).
  // Errors: kCrypto when OpenSSL fails.
  Result<PublicKey> public_key() const;

  KeyType type() const { return type_; }
  int bits() const;  // modulus size for RSA, field size for EC, 256 for Ed25519
  EVP_PKEY* get() const { return pkey_.get(); }  // still owned by this object

 private:
  PrivateKey(EvpPkeyPtr pkey, KeyType type) : pkey_(std::move(pkey)), type_(type) {}
  EvpPkeyPtr pkey_;
  KeyType type_;
};

class PublicKey {
 public:
  PublicKey(PublicKey&&) noexcept = default;
  PublicKey& operator=(PublicKey&&) noexcept = default;
  PublicKey(const PublicKey&) = delete;
  PublicKey& operator=(const PublicKey&) = delete;

  // Parses a "PUBLIC KEY" PEM block (SubjectPublicKeyInfo). Errors: kMalformed for bad PEM/DER,
  // kBadPublicKey per policy (including EC points that are not on the curve).
  static Result<PublicKey> FromPem(std::string_view pem);
  // Parses a DER SubjectPublicKeyInfo; trailing bytes after it are rejected (kMalformed).
  static Result<PublicKey> FromDer(std::span<const uint8_t> spki_der);
  // Copies the public part of any EVP_PKEY (e.g. X509_REQ_get0_pubkey, X509_get0_pubkey) and
  // applies the policy. The argument is not consumed. Errors: kInvalidArgument for null,
  // kBadPublicKey per policy, kCrypto when OpenSSL fails.
  static Result<PublicKey> FromEvpPkey(const EVP_PKEY* pkey);

  // DER / PEM SubjectPublicKeyInfo. Errors: kCrypto when OpenSSL fails.
  Result<Bytes> ToDer() const;
  Result<std::string> ToPem() const;
  // SHA-256 of ToDer() (the "SPKI pin", e.g. for key-change detection and logs).
  Result<Bytes> SpkiSha256() const;

  // True when both hold the same public key (EVP_PKEY_eq).
  bool Equals(const PublicKey& other) const;
  // Another owner of the same (immutable) key.
  PublicKey Clone() const;

  KeyType type() const { return type_; }
  int bits() const;
  EVP_PKEY* get() const { return pkey_.get(); }  // still owned by this object

 private:
  friend class PrivateKey;
  PublicKey(EvpPkeyPtr pkey, KeyType type) : pkey_(std::move(pkey)), type_(type) {}
  EvpPkeyPtr pkey_;
  KeyType type_;
};

// Classifies an EVP_PKEY against the policy above (used by the constructors; exposed for code that
// meets keys inside certificates and CSRs). Errors: kBadPublicKey with a precise detail.
Result<KeyType> CheckKeyPolicy(const EVP_PKEY* pkey);

}  // namespace e2eid::crypto

#endif  // E2EID_CRYPTO_KEY_H_
