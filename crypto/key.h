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
  //
  // The canonical forms of the accepted key types are read with crypto/der.h and built with
  // EVP_PKEY_fromdata / EVP_PKEY_new_raw_public_key_ex, without OpenSSL 3.0's decoder framework
  // (which costs ~150 us per call): EC with a namedCurve P-256/P-384/P-521 and an uncompressed
  // point (the import refuses points off the curve), Ed25519 without parameters, and
  // rsaEncryption with NULL parameters and minimal INTEGERs. Every other input (compressed
  // points, absent RSA parameters, unsupported algorithms, anything malformed) goes through
  // d2i_X509_PUBKEY as before, so the accepted set and the errors are those of OpenSSL's decoder.
  static Result<PublicKey> FromDer(std::span<const uint8_t> spki_der);
  // Copies the public part of any EVP_PKEY (e.g. X509_REQ_get0_pubkey, X509_get0_pubkey) and
  // applies the policy. The argument is not consumed; the result is a new EVP_PKEY holding only
  // public material. Reads the public components (encoded point, raw Ed25519 key, RSA n and e)
  // instead of an i2d/d2i round trip where it can. Errors: kInvalidArgument for null,
  // kBadPublicKey per policy, kCrypto when OpenSSL fails.
  static Result<PublicKey> FromEvpPkey(const EVP_PKEY* pkey);

  // DER / PEM SubjectPublicKeyInfo, as i2d_PUBKEY / PEM_write_bio_PUBKEY write it (the DER is
  // computed once, when the key is made). Errors: kCrypto when OpenSSL fails (PEM only).
  Result<Bytes> ToDer() const { return Bytes(spki_.begin(), spki_.end()); }
  Result<std::string> ToPem() const;
  // The same DER, without a copy; valid as long as this object.
  std::span<const uint8_t> spki_der() const { return spki_; }
  // SHA-256 of ToDer() (the "SPKI pin", e.g. for key-change detection and logs).
  Result<Bytes> SpkiSha256() const;

  // Sets `out` (e.g. X509_get_X509_PUBKEY(cert) of a certificate being built) to this key, from
  // the cached DER: the same AlgorithmIdentifier and subjectPublicKey X509_PUBKEY_set writes,
  // without its encoder/decoder round trip. `out` then holds no decoded EVP_PKEY, so
  // X509_PUBKEY_get0(out) / X509_get0_pubkey(cert) return null until the structure is encoded
  // and parsed again. Errors: kCrypto when OpenSSL fails.
  Status SetX509Pubkey(X509_PUBKEY* out) const;

  // True when both hold the same public key (EVP_PKEY_eq).
  bool Equals(const PublicKey& other) const;
  // Another owner of the same (immutable) key.
  PublicKey Clone() const;

  KeyType type() const { return type_; }
  int bits() const;
  EVP_PKEY* get() const { return pkey_.get(); }  // still owned by this object

 private:
  PublicKey(EvpPkeyPtr pkey, KeyType type, Bytes spki)
      : pkey_(std::move(pkey)), type_(type), spki_(std::move(spki)) {}
  // FromDer through d2i_X509_PUBKEY (OpenSSL's decoder): everything the fast path leaves out.
  static Result<PublicKey> FromDerWithDecoder(std::span<const uint8_t> spki_der);
  EvpPkeyPtr pkey_;
  KeyType type_;
  Bytes spki_;  // DER SubjectPublicKeyInfo of pkey_
};

// Classifies an EVP_PKEY against the policy above (used by the constructors; exposed for code that
// meets keys inside certificates and CSRs). Errors: kBadPublicKey with a precise detail.
Result<KeyType> CheckKeyPolicy(const EVP_PKEY* pkey);

}  // namespace e2eid::crypto

#endif  // E2EID_CRYPTO_KEY_H_
