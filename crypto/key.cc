#include "crypto/key.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

#include "crypto/der.h"
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
  // Point on the curve, not at infinity, coordinates in range (SP 800-56A 5.6.2.3.3 steps 1-3).
  // Decoding already checks most of it; this makes the policy independent of how the key was
  // built. Step 4 (order * Q = infinity, a full scalar multiplication that OpenSSL 3.0's
  // EVP_PKEY_public_check always does) is implied here: P-256, P-384 and P-521 have cofactor 1,
  // so every point on the curve other than infinity has the prime order n. OpenSSL >= 3.1 skips
  // it for cofactor-1 curves for the same reason.
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(pkey), nullptr));
  if (!ctx) return Fail(OpenSslError("EVP_PKEY_CTX_new_from_pkey"));
  if (EVP_PKEY_public_check_quick(ctx.get()) != 1) {
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

namespace {

// OBJECT IDENTIFIER contents octets.
constexpr uint8_t kOidEcPublicKey[] = {0x2a, 0x86, 0x48, 0xce,
                                       0x3d, 0x02, 0x01};  // 1.2.840.10045.2.1
constexpr uint8_t kOidP256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};  // prime256v1
constexpr uint8_t kOidP384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};                    // secp384r1
constexpr uint8_t kOidP521[] = {0x2b, 0x81, 0x04, 0x00, 0x23};                    // secp521r1
constexpr uint8_t kOidEd25519[] = {0x2b, 0x65, 0x70};                             // 1.3.101.112
constexpr uint8_t kOidRsaEncryption[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                         0x0d, 0x01, 0x01, 0x01};  // 1.2.840.113549.1.1.1
constexpr uint8_t kDerNull[] = {der::kNull, 0x00};
constexpr size_t kEd25519KeyBytes = 32;

struct EcCurve {
  KeyType type;
  std::span<const uint8_t> oid;
  const char* group_name;  // OSSL_PKEY_PARAM_GROUP_NAME
  int nid;
  size_t field_bytes;
};
constexpr EcCurve kEcCurves[] = {
    {KeyType::kP256, kOidP256, "P-256", NID_X9_62_prime256v1, 32},
    {KeyType::kP384, kOidP384, "P-384", NID_secp384r1, 48},
    {KeyType::kP521, kOidP521, "P-521", NID_secp521r1, 66},
};

bool SameBytes(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

const EcCurve* CurveByOid(std::span<const uint8_t> oid) {
  for (const EcCurve& c : kEcCurves) {
    if (SameBytes(c.oid, oid)) return &c;
  }
  return nullptr;
}

const EcCurve* CurveByType(KeyType type) {
  for (const EcCurve& c : kEcCurves) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

// SEQUENCE { SEQUENCE { algorithm, parameters }, BIT STRING key_bits }. `parameters` is a whole
// DER element, or empty when absent.
Bytes MakeSpki(std::span<const uint8_t> algorithm, std::span<const uint8_t> parameters,
               std::span<const uint8_t> key_bits) {
  Bytes alg;
  der::AppendElement(alg, der::kOid, algorithm);
  alg.insert(alg.end(), parameters.begin(), parameters.end());
  Bytes body;
  der::AppendElement(body, der::kSequence, alg);
  der::AppendBitString(body, key_bits);
  Bytes out;
  out.reserve(body.size() + 4);
  der::AppendElement(out, der::kSequence, body);
  return out;
}

Bytes EcSpki(const EcCurve& curve, std::span<const uint8_t> point) {
  Bytes params;
  der::AppendElement(params, der::kOid, curve.oid);
  return MakeSpki(kOidEcPublicKey, params, point);
}

Bytes RsaSpki(std::span<const uint8_t> n, std::span<const uint8_t> e) {
  Bytes ints;
  der::AppendUnsignedInteger(ints, n);
  der::AppendUnsignedInteger(ints, e);
  Bytes rsa_public_key;
  der::AppendElement(rsa_public_key, der::kSequence, ints);
  return MakeSpki(kOidRsaEncryption, kDerNull, rsa_public_key);
}

// The parts of a SubjectPublicKeyInfo in one of the canonical forms the fast path builds.
struct SpkiParts {
  KeyType type = KeyType::kEd25519;
  const EcCurve* curve = nullptr;     // EC only
  std::span<const uint8_t> key_bits;  // EC point (04 || x || y) or the raw Ed25519 key
  std::span<const uint8_t> rsa_n;     // RSA only: minimal magnitudes
  std::span<const uint8_t> rsa_e;
};

// Reads `der` when it is exactly one canonical SPKI of the accepted forms; fails (with a
// detail nobody shows) for anything else, which then goes to OpenSSL's decoder.
Result<SpkiParts> ParseCanonicalSpki(std::span<const uint8_t> der) {
  E2EID_TRY(spki, der::ReadExactlyOne(der, der::kSequence, "SubjectPublicKeyInfo"));
  der::Reader body(spki.contents);
  E2EID_TRY(alg, body.Next(der::kSequence, "algorithm"));
  E2EID_TRY(bits_element, body.Next(der::kBitString, "subjectPublicKey"));
  E2EID_CHECK_OK(body.ExpectEnd("SubjectPublicKeyInfo"));
  E2EID_TRY(bits, der::BitStringBytes(bits_element, "subjectPublicKey"));
  der::Reader alg_reader(alg.contents);
  E2EID_TRY(oid_element, alg_reader.Next(der::kOid, "algorithm"));
  E2EID_TRY(oid, der::Oid(oid_element, "algorithm"));
  SpkiParts parts;
  if (SameBytes(oid, kOidEcPublicKey)) {
    E2EID_TRY(curve_element, alg_reader.Next(der::kOid, "namedCurve"));
    E2EID_TRY(curve_oid, der::Oid(curve_element, "namedCurve"));
    E2EID_CHECK_OK(alg_reader.ExpectEnd("algorithm"));
    parts.curve = CurveByOid(curve_oid);
    if (parts.curve == nullptr) return Fail(Error::Malformed("not a fast-path curve"));
    // Uncompressed points only: that is what i2d_PUBKEY writes for such keys.
    if (bits.size() != 1 + 2 * parts.curve->field_bytes || bits[0] != 0x04) {
      return Fail(Error::Malformed("not an uncompressed point"));
    }
    parts.type = parts.curve->type;
    parts.key_bits = bits;
    return parts;
  }
  if (SameBytes(oid, kOidEd25519)) {
    E2EID_CHECK_OK(alg_reader.ExpectEnd("algorithm"));  // RFC 8410: parameters absent
    if (bits.size() != kEd25519KeyBytes) return Fail(Error::Malformed("not 32 bytes"));
    parts.type = KeyType::kEd25519;
    parts.key_bits = bits;
    return parts;
  }
  if (SameBytes(oid, kOidRsaEncryption)) {
    E2EID_TRY(null, alg_reader.Next(der::kNull, "parameters"));
    if (!null.contents.empty()) return Fail(Error::Malformed("NULL with contents"));
    E2EID_CHECK_OK(alg_reader.ExpectEnd("algorithm"));
    E2EID_TRY(rsa, der::ReadExactlyOne(bits, der::kSequence, "RSAPublicKey"));
    der::Reader ints(rsa.contents);
    E2EID_TRY(n_element, ints.Next(der::kInteger, "modulus"));
    E2EID_TRY(e_element, ints.Next(der::kInteger, "publicExponent"));
    E2EID_CHECK_OK(ints.ExpectEnd("RSAPublicKey"));
    E2EID_TRY(n, der::UnsignedInteger(n_element, "modulus"));
    E2EID_TRY(e, der::UnsignedInteger(e_element, "publicExponent"));
    parts.type = KeyType::kRsa;
    parts.rsa_n = n;
    parts.rsa_e = e;
    return parts;
  }
  return Fail(Error::Malformed("not a fast-path algorithm"));
}

// The subjectPublicKey BIT STRING contents of a well-formed SPKI.
Result<std::span<const uint8_t>> SpkiKeyBits(std::span<const uint8_t> der) {
  E2EID_TRY(spki, der::ReadExactlyOne(der, der::kSequence, "SubjectPublicKeyInfo"));
  der::Reader body(spki.contents);
  E2EID_CHECK_OK(body.Next(der::kSequence, "algorithm"));
  E2EID_TRY(bits, body.Next(der::kBitString, "subjectPublicKey"));
  return der::BitStringBytes(bits, "subjectPublicKey");
}

// Builds the EVP_PKEY of a canonical SPKI. Fails for an EC point that is not on the curve (the
// EC import decodes the point and checks it) and when OpenSSL fails.
Result<EvpPkeyPtr> KeyFromParts(const SpkiParts& parts) {
  switch (parts.type) {
    case KeyType::kEd25519: {
      EvpPkeyPtr pkey(EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr,
                                                     parts.key_bits.data(), parts.key_bits.size()));
      if (!pkey) return Fail(OpenSslError("EVP_PKEY_new_raw_public_key_ex"));
      return pkey;
    }
    case KeyType::kP256:
    case KeyType::kP384:
    case KeyType::kP521: {
      OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                           const_cast<char*>(parts.curve->group_name), 0),
          OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                            const_cast<uint8_t*>(parts.key_bits.data()),
                                            parts.key_bits.size()),
          OSSL_PARAM_construct_end()};
      return PublicKeyFromParams("EC", params);
    }
    case KeyType::kRsa: {
      BignumPtr n(BN_bin2bn(parts.rsa_n.data(), static_cast<int>(parts.rsa_n.size()), nullptr));
      BignumPtr e(BN_bin2bn(parts.rsa_e.data(), static_cast<int>(parts.rsa_e.size()), nullptr));
      if (!n || !e) return Fail(OpenSslError("BN_bin2bn"));
      OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
      if (!bld) return Fail(OpenSslError("OSSL_PARAM_BLD_new"));
      if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
          OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
        return Fail(OpenSslError("OSSL_PARAM_BLD_push_BN"));
      }
      OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
      if (!params) return Fail(OpenSslError("OSSL_PARAM_BLD_to_param"));
      return PublicKeyFromParams("RSA", params.get());
    }
  }
  return Fail(Error::Internal("unknown key type"));
}

// Big-endian magnitude of a BIGNUM parameter. Fails when the key has no such parameter.
std::optional<Bytes> BnParam(const EVP_PKEY* pkey, const char* name) {
  BIGNUM* raw = nullptr;
  const int ok = EVP_PKEY_get_bn_param(pkey, name, &raw);
  BignumPtr bn(raw);
  if (ok != 1 || !bn) return std::nullopt;
  Bytes out(static_cast<size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

// The canonical SPKI DER of `pkey` built from its public components, when it is one of the forms
// the fast path handles (an EC key on a named P-256/P-384/P-521 curve whose point is kept in
// uncompressed form, Ed25519, RSA); nullopt otherwise (the caller then uses i2d_PUBKEY).
std::optional<Bytes> CanonicalSpkiOf(const EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "ED25519")) {
    uint8_t raw[kEd25519KeyBytes];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != sizeof raw) {
      return std::nullopt;
    }
    return MakeSpki(kOidEd25519, {}, raw);
  }
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char encoding[32] = {};
    size_t enc_len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                       sizeof(encoding), &enc_len) == 1 &&
        std::string_view(encoding, enc_len) != OSSL_PKEY_EC_ENCODING_GROUP) {
      return std::nullopt;  // explicit parameters: the decoder path refuses them
    }
    char name[80] = {};
    size_t name_len = 0;
    if (EVP_PKEY_get_group_name(pkey, name, sizeof(name), &name_len) != 1 || name_len == 0) {
      return std::nullopt;
    }
    int nid = OBJ_sn2nid(name);
    if (nid == NID_undef) nid = EC_curve_nist2nid(name);
    const EcCurve* curve = nullptr;
    for (const EcCurve& c : kEcCurves) {
      if (c.nid == nid) curve = &c;
    }
    if (curve == nullptr) return std::nullopt;
    // i2d_PUBKEY writes the point in the key's conversion form; only "uncompressed" is built here
    // (OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY returns it uncompressed whatever that form is).
    char format[32] = {};
    size_t format_len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format,
                                       sizeof(format), &format_len) != 1 ||
        std::string_view(format, format_len) != OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) {
      return std::nullopt;
    }
    uint8_t point[1 + 2 * 66];
    size_t point_len = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                        sizeof(point), &point_len) != 1 ||
        point_len != 1 + 2 * curve->field_bytes || point[0] != 0x04) {
      return std::nullopt;
    }
    return EcSpki(*curve, std::span<const uint8_t>(point, point_len));
  }
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    auto n = BnParam(pkey, OSSL_PKEY_PARAM_RSA_N);
    auto e = BnParam(pkey, OSSL_PKEY_PARAM_RSA_E);
    if (!n || !e) return std::nullopt;
    return RsaSpki(*n, *e);
  }
  return std::nullopt;
}

}  // namespace

Result<PublicKey> PublicKey::FromDer(std::span<const uint8_t> der) {
  if (der.empty()) return Fail(Error::Malformed("public key is empty"));
  if (der.size() > size_t{64} * 1024) return Fail(Error::Malformed("public key is too large"));
  if (auto parts = ParseCanonicalSpki(der)) {
    if (auto pkey = KeyFromParts(*parts)) {
      E2EID_TRY(type, CheckKeyPolicy(pkey->get()));
      return PublicKey(std::move(*pkey), type, Bytes(der.begin(), der.end()));
    }
    // An EC point off the curve, or an OpenSSL failure: the decoder path gives the same answer
    // (and the same error) as before.
    ClearOpenSslErrors();
  }
  return FromDerWithDecoder(der);
}

Result<PublicKey> PublicKey::FromDerWithDecoder(std::span<const uint8_t> der) {
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
  // The canonical re-encoding (e.g. NULL RSA parameters, the point in the key's own form), as
  // ToDer() always returned it.
  unsigned char* raw_der = nullptr;
  const int len = i2d_PUBKEY(borrowed, &raw_der);
  OpenSslBufferPtr canonical(raw_der);
  if (len <= 0) return Fail(OpenSslError("i2d_PUBKEY"));
  if (EVP_PKEY_up_ref(borrowed) != 1) return Fail(OpenSslError("EVP_PKEY_up_ref"));
  EvpPkeyPtr pkey(borrowed);
  return PublicKey(std::move(pkey), type, Bytes(canonical.get(), canonical.get() + len));
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
  if (auto spki = CanonicalSpkiOf(pkey)) return FromDer(*spki);
  ClearOpenSslErrors();
  unsigned char* raw = nullptr;
  const int len = i2d_PUBKEY(pkey, &raw);
  OpenSslBufferPtr der(raw);
  if (len <= 0) return Fail(OpenSslError("i2d_PUBKEY"));
  return FromDer(std::span<const uint8_t>(der.get(), static_cast<size_t>(len)));
}

Result<std::string> PublicKey::ToPem() const {
  E2EID_TRY(bio, NewMemBio());
  // What PEM_write_bio_PUBKEY writes, from the cached DER instead of OpenSSL's encoder.
  if (PEM_write_bio(bio.get(), "PUBLIC KEY", "", spki_.data(), static_cast<long>(spki_.size())) <=
      0) {
    return Fail(OpenSslError("PEM_write_bio"));
  }
  return BioToString(bio.get());
}

Result<Bytes> PublicKey::SpkiSha256() const { return Sha256(spki_); }

Status PublicKey::SetX509Pubkey(X509_PUBKEY* out) const {
  if (out == nullptr) return Fail(Error::InvalidArgument("no X509_PUBKEY given"));
  // spki_ is well-formed DER (built here or written by i2d_PUBKEY).
  auto bits = SpkiKeyBits(spki_);
  if (!bits) return Fail(Error::Internal("cached SPKI does not parse: " + bits.error().detail()));

  // The AlgorithmIdentifier X509_PUBKEY_set writes for these key types.
  int algorithm = NID_undef;
  int param_type = V_ASN1_UNDEF;
  void* param = nullptr;
  switch (type_) {
    case KeyType::kEd25519:
      algorithm = NID_ED25519;  // parameters absent (RFC 8410)
      break;
    case KeyType::kP256:
    case KeyType::kP384:
    case KeyType::kP521:
      algorithm = NID_X9_62_id_ecPublicKey;
      param_type = V_ASN1_OBJECT;
      param = OBJ_nid2obj(CurveByType(type_)->nid);  // a static object: nothing to free
      break;
    case KeyType::kRsa:
      algorithm = NID_rsaEncryption;
      param_type = V_ASN1_NULL;
      break;
  }
  // X509_PUBKEY_set0_param takes an OPENSSL_malloc'ed copy of the key bits on success.
  OpenSslBufferPtr key_bits(static_cast<unsigned char*>(OPENSSL_malloc(bits->size())));
  if (!key_bits) return Fail(OpenSslError("OPENSSL_malloc"));
  std::memcpy(key_bits.get(), bits->data(), bits->size());
  if (X509_PUBKEY_set0_param(out, OBJ_nid2obj(algorithm), param_type, param, key_bits.get(),
                             static_cast<int>(bits->size())) != 1) {
    return Fail(OpenSslError("X509_PUBKEY_set0_param"));
  }
  static_cast<void>(key_bits.release());  // owned by `out` now
  return Ok();
}

bool PublicKey::Equals(const PublicKey& other) const {
  const bool eq = EVP_PKEY_eq(pkey_.get(), other.pkey_.get()) == 1;
  ClearOpenSslErrors();
  return eq;
}

PublicKey PublicKey::Clone() const {
  EVP_PKEY_up_ref(pkey_.get());  // cannot fail: an atomic increment
  return PublicKey(EvpPkeyPtr(pkey_.get()), type_, spki_);
}

int PublicKey::bits() const { return EVP_PKEY_get_bits(pkey_.get()); }

}  // namespace e2eid::crypto
