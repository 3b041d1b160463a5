#include "crypto/key.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>

#include <array>
#include <climits>
#include <cstring>

#include "crypto/digest.h"

namespace e2eid::crypto {
namespace {

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;
constexpr std::string_view kSupported =
    "supported: Ed25519, ECDSA P-256/P-384/P-521, RSA 2048-8192 bits";

Error Unsupported(std::string_view what) {
  return Error::BadPublicKey("unsupported key type " + std::string(what) + " (" +
                             std::string(kSupported) + ")");
}

Result<KeyType> CheckEcKey(const EVP_PKEY* pkey) {
  // RFC 5480 requires namedCurve; explicit parameters (even ones equal to a named curve) are the
  // stuff of curve-substitution attacks and would be re-encoded explicitly downstream.
  char encoding[32] = {};
  size_t enc_len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, encoding, sizeof(encoding),
                                     &enc_len) == 1 &&
      std::string_view(encoding, enc_len) != OSSL_PKEY_EC_ENCODING_GROUP) {
    return Fail(Unsupported("EC with explicit curve parameters"));
  }
  ClearOpenSslErrors();
  char name[80] = {};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(pkey, name, sizeof(name), &len) != 1 || len == 0) {
    ClearOpenSslErrors();
    return Fail(Unsupported("EC with explicit curve parameters"));
  }
  int nid = OBJ_sn2nid(name);
  if (nid == NID_undef) nid = EC_curve_nist2nid(name);
  KeyType type;
  switch (nid) {
    case NID_X9_62_prime256v1:
      type = KeyType::kP256;
      break;
    case NID_secp384r1:
      type = KeyType::kP384;
      break;
    case NID_secp521r1:
      type = KeyType::kP521;
      break;
    default:
      return Fail(Unsupported("EC curve " + std::string(name)));
  }
  // Point on the curve, not at infinity, of the right order. Decoding already checks the first
  // two; this makes the policy independent of how the key was built.
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(pkey), nullptr));
  if (!ctx) return Fail(OpenSslError("EVP_PKEY_CTX_new_from_pkey"));
  if (EVP_PKEY_public_check(ctx.get()) != 1) {
    ClearOpenSslErrors();
    return Fail(Error::BadPublicKey("EC public key is not a valid point on curve " +
                                    std::string(KeyTypeName(type))));
  }
  return type;
}

Result<KeyType> CheckRsaKey(const EVP_PKEY* pkey) {
  const int bits = EVP_PKEY_get_bits(pkey);
  if (bits < kMinRsaBits) {
    return Fail(Error::BadPublicKey("RSA key too small: " + std::to_string(bits) +
                                    " bits, at least " + std::to_string(kMinRsaBits) +
                                    " required"));
  }
  if (bits > kMaxRsaBits) {
    return Fail(Error::BadPublicKey("RSA key too large: " + std::to_string(bits) +
                                    " bits, at most " + std::to_string(kMaxRsaBits) + " allowed"));
  }
  BIGNUM* raw_n = nullptr;
  BIGNUM* raw_e = nullptr;
  const int got_n = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &raw_n);
  BignumPtr n(raw_n);
  const int got_e = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &raw_e);
  BignumPtr e(raw_e);
  if (got_n != 1 || got_e != 1) return Fail(OpenSslError("reading RSA public key"));
  if (!BN_is_odd(n.get())) return Fail(Error::BadPublicKey("RSA modulus is even"));
  if (!BN_is_odd(e.get()) || BN_num_bits(e.get()) < 17 || BN_num_bits(e.get()) > 32) {
    return Fail(
        Error::BadPublicKey("RSA public exponent must be odd, at least 65537 and less than 2^32"));
  }
  return KeyType::kRsa;
}

// Passphrase callback state: OpenSSL calls the callback only for encrypted keys, so `asked`
// tells "encrypted" from "not a key" after a failure.
struct PassphraseState {
  std::optional<std::string_view> passphrase;
  bool asked = false;
};

int PassphraseCallback(char* buf, int size, int /*rwflag*/, void* u) {
  auto* state = static_cast<PassphraseState*>(u);
  state->asked = true;
  if (!state->passphrase || size <= 0) return -1;
  const std::string_view p = *state->passphrase;
  if (p.size() > static_cast<size_t>(size)) return -1;
  std::memcpy(buf, p.data(), p.size());
  return static_cast<int>(p.size());
}

bool HasPrivatePart(const EVP_PKEY* pkey, KeyType type) {
  if (type == KeyType::kEd25519) {
    size_t len = 0;
    return EVP_PKEY_get_raw_private_key(pkey, nullptr, &len) == 1 && len == 32;
  }
  BIGNUM* raw = nullptr;
  const char* name = type == KeyType::kRsa ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
  const int ok = EVP_PKEY_get_bn_param(pkey, name, &raw);
  SecretBignumPtr d(raw);
  return ok == 1 && d != nullptr;
}

}  // namespace

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kEd25519:
      return "ed25519";
    case KeyType::kP256:
      return "p256";
    case KeyType::kP384:
      return "p384";
    case KeyType::kP521:
      return "p521";
    case KeyType::kRsa:
      return "rsa";
  }
  return "unknown";
}

Result<KeyType> ParseKeyType(std::string_view name) {
  for (KeyType t :
       {KeyType::kEd25519, KeyType::kP256, KeyType::kP384, KeyType::kP521, KeyType::kRsa}) {
    if (name == KeyTypeName(t)) return t;
  }
  return Fail(Error::InvalidArgument("unsupported key type '" + std::string(name) +
                                     "' (accepted: ed25519, p256, p384, p521, rsa)"));
}

Result<KeySpec> ParseKeySpec(std::string_view name) {
  if (name == "rsa2048") return KeySpec{KeyType::kRsa, 2048};
  if (name == "rsa3072") return KeySpec{KeyType::kRsa, 3072};
  if (name == "rsa4096") return KeySpec{KeyType::kRsa, 4096};
  if (name != "rsa") {
    auto t = ParseKeyType(name);
    if (t) return KeySpec{*t, 0};
  }
  return Fail(
      Error::InvalidArgument("unsupported key type '" + std::string(name) +
                             "' (accepted: ed25519, p256, p384, p521, rsa2048, rsa3072, rsa4096)"));
}

std::string KeySpecName(const KeySpec& spec) {
  if (spec.type == KeyType::kRsa) return "rsa" + std::to_string(spec.rsa_bits);
  return std::string(KeyTypeName(spec.type));
}

const EVP_MD* SignatureDigest(KeyType type) {
  switch (type) {
    case KeyType::kEd25519:
      return nullptr;
    case KeyType::kP384:
      return EVP_sha384();
    case KeyType::kP521:
      return EVP_sha512();
    case KeyType::kP256:
    case KeyType::kRsa:
      return EVP_sha256();
  }
  return nullptr;
}

Result<KeyType> CheckKeyPolicy(const EVP_PKEY* pkey) {
  if (pkey == nullptr) return Fail(Error::InvalidArgument("key is missing"));
  if (EVP_PKEY_is_a(pkey, "ED25519")) return KeyType::kEd25519;
  if (EVP_PKEY_is_a(pkey, "EC")) return CheckEcKey(pkey);
  if (EVP_PKEY_is_a(pkey, "RSA")) return CheckRsaKey(pkey);
  if (EVP_PKEY_is_a(pkey, "RSA-PSS")) return Fail(Unsupported("RSA-PSS"));
  const char* name = EVP_PKEY_get0_type_name(pkey);
  return Fail(Unsupported(name != nullptr ? name : "unknown"));
}

// ---- PrivateKey ----

Result<PrivateKey> PrivateKey::Generate(KeyType type, int rsa_bits) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::kEd25519:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
    case KeyType::kP256:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::kP384:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
      break;
    case KeyType::kP521:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521");
      break;
    case KeyType::kRsa:
      if (rsa_bits < kMinRsaBits || rsa_bits > kMaxRsaBits) {
        return Fail(Error::InvalidArgument("RSA key size " + std::to_string(rsa_bits) +
                                           " is outside 2048..8192 bits"));
      }
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits));
      break;
  }
  EvpPkeyPtr pkey(raw);
  if (!pkey) return Fail(OpenSslError("generating a " + std::string(KeyTypeName(type)) + " key"));
  return PrivateKey(std::move(pkey), type);
}

Result<PrivateKey> PrivateKey::FromEvpPkey(EvpPkeyPtr pkey) {
  if (!pkey) return Fail(Error::InvalidArgument("private key is missing"));
  E2EID_TRY(type, CheckKeyPolicy(pkey.get()));
  if (!HasPrivatePart(pkey.get(), type)) {
    ClearOpenSslErrors();
    return Fail(Error::InvalidArgument("key has no private part"));
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!ctx) return Fail(OpenSslError("EVP_PKEY_CTX_new_from_pkey"));
  if (EVP_PKEY_pairwise_check(ctx.get()) != 1) {
    ClearOpenSslErrors();
    return Fail(
        Error::BadPublicKey("private key is inconsistent (public and private parts do "
                            "not match)"));
  }
  return PrivateKey(std::move(pkey), type);
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem,
                                       std::optional<std::string_view> passphrase) {
  if (pem.find("-----BEGIN ") == std::string_view::npos) {
    return Fail(Error::Malformed("no PEM block found in private key input"));
  }
  E2EID_TRY(bio, MemBioOver(pem));
  PassphraseState state{passphrase, false};
  ClearOpenSslErrors();
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, PassphraseCallback, &state));
  if (!pkey) {
    if (state.asked) {
      ClearOpenSslErrors();
      if (!passphrase) {
        return Fail(Error::InvalidArgument("private key is encrypted but no passphrase was given"));
      }
      return Fail(Error::InvalidArgument("wrong passphrase or corrupt encrypted private key"));
    }
    if (pem.find("PRIVATE KEY-----") == std::string_view::npos) {
      ClearOpenSslErrors();
      return Fail(Error::Malformed("no PEM private key block found"));
    }
    return Fail(OpenSslError("invalid PEM private key", ErrorCode::kMalformed));
  }
  return FromEvpPkey(std::move(pkey));
}

Result<std::string> PrivateKey::ToPem(std::optional<std::string_view> passphrase) const {
  E2EID_TRY(bio, NewMemBio());
  if (!passphrase) {
    if (PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                      nullptr) != 1) {
      return Fail(OpenSslError("PEM_write_bio_PKCS8PrivateKey"));
    }
  } else {
    if (passphrase->empty()) return Fail(Error::InvalidArgument("passphrase is empty"));
    if (passphrase->size() > 1024) {
      return Fail(Error::InvalidArgument("passphrase longer than 1024 bytes"));
    }
    Pkcs8PrivKeyInfoPtr p8(EVP_PKEY2PKCS8(pkey_.get()));
    if (!p8) return Fail(OpenSslError("EVP_PKEY2PKCS8"));
    std::array<unsigned char, 16> salt;
    if (RAND_bytes(salt.data(), salt.size()) != 1) return Fail(OpenSslError("RAND_bytes"));
    // pbe_nid -1: PBES2 with `cipher`; the PRF defaults to hmacWithSHA256.
    X509SigPtr encrypted(PKCS8_encrypt(-1, EVP_aes_256_cbc(), passphrase->data(),
                                       static_cast<int>(passphrase->size()), salt.data(),
                                       salt.size(), kPbkdf2Iterations, p8.get()));
    if (!encrypted) return Fail(OpenSslError("PKCS8_encrypt"));
    if (PEM_write_bio_PKCS8(bio.get(), encrypted.get()) != 1) {
      return Fail(OpenSslError("PEM_write_bio_PKCS8"));
    }
  }
  std::string out = BioToString(bio.get());
  return out;
}

Result<PublicKey> PrivateKey::public_key() const { return PublicKey::FromEvpPkey(pkey_.get()); }

int PrivateKey::bits() const { return EVP_PKEY_get_bits(pkey_.get()); }

// ---- PublicKey ----

Result<PublicKey> PublicKey::FromDer(std::span<const uint8_t> der) {
  if (der.empty()) return Fail(Error::Malformed("public key is empty"));
  if (der.size() > size_t{64} * 1024) return Fail(Error::Malformed("public key is too large"));
  // Parse the SubjectPublicKeyInfo structure first: a structural failure is kMalformed, a key
  // that does not decode inside a well-formed structure (off-curve point, unknown algorithm) is
  // kBadPublicKey.
  const unsigned char* p = der.data();
  X509_PUBKEY* raw_spki = d2i_X509_PUBKEY(nullptr, &p, static_cast<long>(der.size()));  // NOLINT
  std::unique_ptr<X509_PUBKEY, Deleter<X509_PUBKEY_free>> spki(raw_spki);
  if (!spki) {
    ClearOpenSslErrors();
    return Fail(Error::Malformed("public key is not a DER SubjectPublicKeyInfo"));
  }
  if (p != der.data() + der.size()) {
    return Fail(Error::Malformed("trailing bytes after the DER SubjectPublicKeyInfo"));
  }
  EVP_PKEY* borrowed = X509_PUBKEY_get0(spki.get());
  if (borrowed == nullptr) {
    ClearOpenSslErrors();
    ASN1_OBJECT* alg = nullptr;
    X509_PUBKEY_get0_param(&alg, nullptr, nullptr, nullptr, spki.get());
    const int nid = alg != nullptr ? OBJ_obj2nid(alg) : NID_undef;
    if (nid == NID_X9_62_id_ecPublicKey) {
      return Fail(Error::BadPublicKey(
          "EC public key does not decode (point not on the curve or unsupported curve)"));
    }
    if (nid == NID_undef) return Fail(Unsupported("with an unknown algorithm identifier"));
    return Fail(Error::BadPublicKey("public key of type " + std::string(OBJ_nid2sn(nid)) +
                                    " does not decode"));
  }
  E2EID_TRY(type, CheckKeyPolicy(borrowed));
  if (EVP_PKEY_up_ref(borrowed) != 1) return Fail(OpenSslError("EVP_PKEY_up_ref"));
  EvpPkeyPtr pkey(borrowed);
  return PublicKey(std::move(pkey), type);
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  E2EID_TRY(bio, MemBioOver(pem));
  // Skip other blocks (e.g. a certificate before the key) until a PUBLIC KEY block.
  while (true) {
    char* raw_name = nullptr;
    char* raw_header = nullptr;
    unsigned char* raw_data = nullptr;
    long len = 0;  // NOLINT(runtime/int)
    const int ok = PEM_read_bio(bio.get(), &raw_name, &raw_header, &raw_data, &len);
    OpenSslStringPtr name(raw_name);
    OpenSslStringPtr header(raw_header);
    OpenSslBufferPtr data(raw_data);
    if (ok != 1) {
      const unsigned long e = ERR_peek_last_error();  // NOLINT(runtime/int)
      ClearOpenSslErrors();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        return Fail(Error::Malformed("no PEM PUBLIC KEY block found"));
      }
      return Fail(Error::Malformed("invalid PEM public key (bad base64 or truncated)"));
    }
    if (std::strcmp(name.get(), "PUBLIC KEY") == 0) {
      return FromDer(std::span<const uint8_t>(data.get(), static_cast<size_t>(len)));
    }
  }
}

Result<PublicKey> PublicKey::FromEvpPkey(const EVP_PKEY* pkey) {
  if (pkey == nullptr) return Fail(Error::InvalidArgument("public key is missing"));
  unsigned char* raw = nullptr;
  const int len = i2d_PUBKEY(pkey, &raw);
  OpenSslBufferPtr der(raw);
  if (len <= 0) return Fail(OpenSslError("i2d_PUBKEY"));
  return FromDer(std::span<const uint8_t>(der.get(), static_cast<size_t>(len)));
}

Result<Bytes> PublicKey::ToDer() const {
  unsigned char* raw = nullptr;
  const int len = i2d_PUBKEY(pkey_.get(), &raw);
  OpenSslBufferPtr der(raw);
  if (len <= 0) return Fail(OpenSslError("i2d_PUBKEY"));
  return Bytes(der.get(), der.get() + len);
}

Result<std::string> PublicKey::ToPem() const {
  E2EID_TRY(bio, NewMemBio());
  if (PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) {
    return Fail(OpenSslError("PEM_write_bio_PUBKEY"));
  }
  return BioToString(bio.get());
}

Result<Bytes> PublicKey::SpkiSha256() const {
  E2EID_TRY(der, ToDer());
  return Sha256(der);
}

bool PublicKey::Equals(const PublicKey& other) const {
  const bool eq = EVP_PKEY_eq(pkey_.get(), other.pkey_.get()) == 1;
  ClearOpenSslErrors();
  return eq;
}

PublicKey PublicKey::Clone() const {
  EVP_PKEY_up_ref(pkey_.get());  // cannot fail: an atomic increment
  return PublicKey(EvpPkeyPtr(pkey_.get()), type_);
}

int PublicKey::bits() const { return EVP_PKEY_get_bits(pkey_.get()); }

}  // namespace e2eid::crypto
