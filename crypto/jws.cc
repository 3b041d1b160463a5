#include "crypto/jws.h"

#include <openssl/err.h>

#include <array>

#include "crypto/openssl.h"

namespace e2eid::crypto {
namespace {

constexpr std::string_view kHeaderWhat = "JWS protected header";

// Coordinate (and thus half-signature) size of an EC key type, 0 for others.
size_t EcScalarSize(KeyType type) {
  switch (type) {
    case KeyType::kP256:
      return 32;
    case KeyType::kP384:
      return 48;
    case KeyType::kP521:
      return 66;
    default:
      return 0;
  }
}

KeyType KeyTypeFor(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kES256:
      return KeyType::kP256;
    case JwsAlg::kES384:
      return KeyType::kP384;
    case JwsAlg::kES512:
      return KeyType::kP521;
    case JwsAlg::kEdDSA:
      return KeyType::kEd25519;
    case JwsAlg::kRS256:
      return KeyType::kRsa;
  }
  return KeyType::kRsa;
}

const EVP_MD* DigestFor(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kES256:
    case JwsAlg::kRS256:
      return EVP_sha256();
    case JwsAlg::kES384:
      return EVP_sha384();
    case JwsAlg::kES512:
      return EVP_sha512();
    case JwsAlg::kEdDSA:
      return nullptr;
  }
  return nullptr;
}

Error VerificationFailed() { return Error::Malformed("JWS signature verification failed"); }

Status CheckHeader(const Json& header) {
  if (header.contains("crit")) {
    const Json& crit = header["crit"];
    std::string names;
    if (crit.is_array()) {
      for (const Json& n : crit) {
        if (!names.empty()) names += ", ";
        names += n.is_string() ? n.get<std::string>() : DumpJson(n);
      }
    }
    return Fail(
        Error::Malformed(std::string(kHeaderWhat) + ": unsupported critical header parameter(s)" +
                         (names.empty() ? std::string() : " '" + names + "'") + " in 'crit'"));
  }
  if (header.contains("b64")) {
    const Json& b64 = header["b64"];
    if (!b64.is_boolean()) {
      return Fail(Error::Malformed(std::string(kHeaderWhat) + ": member 'b64' must be a boolean"));
    }
    if (!b64.get<bool>()) {
      return Fail(Error::Malformed(std::string(kHeaderWhat) +
                                   ": unencoded payloads (b64: false) are not supported"));
    }
  }
  return Ok();
}

Result<Jws> ParseParts(std::string_view protected_b64, std::string_view payload_b64,
                       std::string_view signature_b64) {
  if (protected_b64.empty()) return Fail(Error::Malformed("JWS protected header is empty"));
  if (signature_b64.empty()) return Fail(Error::Malformed("JWS signature is empty"));
  Jws jws;
  jws.protected_b64 = std::string(protected_b64);
  jws.payload_b64 = std::string(payload_b64);
  auto header_bytes = Base64UrlDecode(protected_b64);
  if (!header_bytes) {
    return Fail(Error::Malformed("JWS protected header is not valid base64url: " +
                                 header_bytes.error().detail()));
  }
  auto payload = Base64UrlDecode(payload_b64);
  if (!payload) {
    return Fail(
        Error::Malformed("JWS payload is not valid base64url: " + payload.error().detail()));
  }
  auto signature = Base64UrlDecode(signature_b64);
  if (!signature) {
    return Fail(
        Error::Malformed("JWS signature is not valid base64url: " + signature.error().detail()));
  }
  E2EID_TRY(header, ParseJson(AsString(*header_bytes), kHeaderWhat));
  if (!header.is_object()) {
    return Fail(Error::Malformed(std::string(kHeaderWhat) + " must be a JSON object"));
  }
  E2EID_TRY(alg_name, GetString(header, "alg", kHeaderWhat));
  E2EID_TRY(alg, ParseJwsAlg(alg_name));
  E2EID_CHECK_OK(CheckHeader(header));
  jws.header = std::move(header);
  jws.alg = alg;
  jws.payload = std::move(*payload);
  jws.signature = std::move(*signature);
  return jws;
}

Result<std::string> SigningInputFor(const PrivateKey& key, JwsAlg alg, const Json& header_in,
                                    std::string_view payload, std::string* protected_b64,
                                    std::string* payload_b64, std::string* signature_b64) {
  if (!header_in.is_object()) {
    return Fail(Error::InvalidArgument("JWS protected header must be a JSON object"));
  }
  Json header = header_in;
  const std::string alg_name(JwsAlgName(alg));
  if (header.contains("alg") && header["alg"] != alg_name) {
    return Fail(Error::InvalidArgument("JWS protected header 'alg' " + DumpJson(header["alg"]) +
                                       " differs from the signing algorithm " + alg_name));
  }
  header["alg"] = alg_name;
  *protected_b64 = Base64UrlEncode(DumpJson(header));
  *payload_b64 = Base64UrlEncode(payload);
  std::string input = *protected_b64 + "." + *payload_b64;
  E2EID_TRY(sig, SignJose(key, alg, AsBytes(input)));
  *signature_b64 = Base64UrlEncode(sig);
  return input;
}

}  // namespace

std::string_view JwsAlgName(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kES256:
      return "ES256";
    case JwsAlg::kES384:
      return "ES384";
    case JwsAlg::kES512:
      return "ES512";
    case JwsAlg::kEdDSA:
      return "EdDSA";
    case JwsAlg::kRS256:
      return "RS256";
  }
  return "unknown";
}

Result<JwsAlg> ParseJwsAlg(std::string_view name) {
  for (JwsAlg a :
       {JwsAlg::kES256, JwsAlg::kES384, JwsAlg::kES512, JwsAlg::kEdDSA, JwsAlg::kRS256}) {
    if (name == JwsAlgName(a)) return a;
  }
  if (name.empty()) return Fail(Error::BadSignatureAlgorithm("JWS algorithm is empty"));
  if (name == "none") {
    return Fail(Error::BadSignatureAlgorithm("JWS algorithm 'none' is not allowed"));
  }
  if (name.size() >= 2 && name.substr(0, 2) == "HS") {
    return Fail(Error::BadSignatureAlgorithm("HMAC JWS algorithm '" + std::string(name) +
                                             "' is not allowed"));
  }
  std::string shown(name.substr(0, 32));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return Fail(Error::BadSignatureAlgorithm("unsupported JWS algorithm '" + shown +
                                           "' (supported: ES256, ES384, ES512, EdDSA, RS256)"));
}

JwsAlg DefaultJwsAlg(KeyType type) {
  switch (type) {
    case KeyType::kP256:
      return JwsAlg::kES256;
    case KeyType::kP384:
      return JwsAlg::kES384;
    case KeyType::kP521:
      return JwsAlg::kES512;
    case KeyType::kEd25519:
      return JwsAlg::kEdDSA;
    case KeyType::kRsa:
      return JwsAlg::kRS256;
  }
  return JwsAlg::kES256;
}

Status CheckAlgMatchesKey(JwsAlg alg, KeyType type) {
  if (KeyTypeFor(alg) != type) {
    return Fail(Error::BadSignatureAlgorithm("JWS algorithm " + std::string(JwsAlgName(alg)) +
                                             " does not match the key type " +
                                             std::string(KeyTypeName(type))));
  }
  return Ok();
}

Result<Bytes> EcdsaJoseToDer(std::span<const uint8_t> jose, KeyType type) {
  const size_t n = EcScalarSize(type);
  if (n == 0) return Fail(Error::InvalidArgument("not an EC key type"));
  if (jose.size() != 2 * n) {
    return Fail(Error::Malformed("ECDSA signature has length " + std::to_string(jose.size()) +
                                 ", expected " + std::to_string(2 * n)));
  }
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!sig) return Fail(OpenSslError("ECDSA_SIG_new"));
  BignumPtr r(BN_bin2bn(jose.data(), static_cast<int>(n), nullptr));
  BignumPtr s(BN_bin2bn(jose.data() + n, static_cast<int>(n), nullptr));
  if (!r || !s) return Fail(OpenSslError("BN_bin2bn"));
  BIGNUM* r_raw = r.release();  // owned by sig once ECDSA_SIG_set0 succeeds
  BIGNUM* s_raw = s.release();
  if (ECDSA_SIG_set0(sig.get(), r_raw, s_raw) != 1) {
    BN_free(r_raw);
    BN_free(s_raw);
    return Fail(OpenSslError("ECDSA_SIG_set0"));
  }
  unsigned char* raw = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &raw);
  OpenSslBufferPtr der(raw);
  if (len <= 0) return Fail(OpenSslError("i2d_ECDSA_SIG"));
  return Bytes(der.get(), der.get() + len);
}

Result<Bytes> EcdsaDerToJose(std::span<const uint8_t> der, KeyType type) {
  const size_t n = EcScalarSize(type);
  if (n == 0) return Fail(Error::InvalidArgument("not an EC key type"));
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));  // NOLINT
  if (!sig) {
    ClearOpenSslErrors();
    return Fail(Error::Malformed("ECDSA signature is not valid DER"));
  }
  if (p != der.data() + der.size()) {
    return Fail(Error::Malformed("trailing bytes after the DER ECDSA signature"));
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  if (BN_is_negative(r) || BN_is_negative(s) || static_cast<size_t>(BN_num_bytes(r)) > n ||
      static_cast<size_t>(BN_num_bytes(s)) > n) {
    return Fail(Error::Malformed("ECDSA signature integers do not fit the curve"));
  }
  Bytes out(2 * n);
  if (BN_bn2binpad(r, out.data(), static_cast<int>(n)) < 0 ||
      BN_bn2binpad(s, out.data() + n, static_cast<int>(n)) < 0) {
    return Fail(OpenSslError("BN_bn2binpad"));
  }
  return out;
}

Result<Bytes> SignJose(const PrivateKey& key, JwsAlg alg, std::span<const uint8_t> data) {
  E2EID_CHECK_OK(CheckAlgMatchesKey(alg, key.type()));
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return Fail(OpenSslError("EVP_MD_CTX_new"));
  if (EVP_DigestSignInit(ctx.get(), nullptr, DigestFor(alg), nullptr, key.get()) != 1) {
    return Fail(OpenSslError("EVP_DigestSignInit"));
  }
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
    return Fail(OpenSslError("EVP_DigestSign (size)"));
  }
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) != 1) {
    return Fail(OpenSslError("EVP_DigestSign"));
  }
  sig.resize(len);
  if (EcScalarSize(key.type()) != 0) return EcdsaDerToJose(sig, key.type());
  return sig;
}

Status VerifyJose(const PublicKey& key, JwsAlg alg, std::span<const uint8_t> data,
                  std::span<const uint8_t> signature) {
  E2EID_CHECK_OK(CheckAlgMatchesKey(alg, key.type()));
  size_t expected = 0;
  if (const size_t n = EcScalarSize(key.type()); n != 0) {
    expected = 2 * n;
  } else if (key.type() == KeyType::kEd25519) {
    expected = 64;
  } else {
    expected = static_cast<size_t>(EVP_PKEY_get_size(key.get()));
  }
  if (signature.size() != expected) {
    return Fail(Error::Malformed("JWS signature has length " + std::to_string(signature.size()) +
                                 ", expected " + std::to_string(expected)));
  }
  Bytes der;
  std::span<const uint8_t> to_verify = signature;
  if (EcScalarSize(key.type()) != 0) {
    E2EID_TRY(converted, EcdsaJoseToDer(signature, key.type()));
    der = std::move(converted);
    to_verify = der;
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return Fail(OpenSslError("EVP_MD_CTX_new"));
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(alg), nullptr, key.get()) != 1) {
    return Fail(OpenSslError("EVP_DigestVerifyInit"));
  }
  const int ok =
      EVP_DigestVerify(ctx.get(), to_verify.data(), to_verify.size(), data.data(), data.size());
  if (ok != 1) {
    ClearOpenSslErrors();
    return Fail(VerificationFailed());
  }
  return Ok();
}

Result<Jws> ParseFlattenedJws(std::string_view body) {
  E2EID_TRY(obj, ParseJson(body, "JWS"));
  if (!obj.is_object()) return Fail(Error::Malformed("JWS must be a JSON object"));
  for (const auto& [name, value] : obj.items()) {
    if (name == "protected" || name == "payload" || name == "signature") continue;
    if (name == "header") {
      return Fail(Error::Malformed("JWS unprotected header is not allowed"));
    }
    if (name == "signatures") {
      return Fail(Error::Malformed(
          "JWS general serialization ('signatures') is not supported; use the flattened "
          "serialization"));
    }
    return Fail(Error::Malformed("JWS has an unexpected member '" + name + "'"));
  }
  E2EID_TRY(protected_b64, GetString(obj, "protected", "JWS"));
  E2EID_TRY(payload_b64, GetString(obj, "payload", "JWS"));
  E2EID_TRY(signature_b64, GetString(obj, "signature", "JWS"));
  return ParseParts(protected_b64, payload_b64, signature_b64);
}

Result<Jws> ParseCompactJws(std::string_view token) {
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return Fail(Error::Malformed("compact JWS must have exactly three '.'-separated parts"));
  }
  return ParseParts(token.substr(0, first), token.substr(first + 1, second - first - 1),
                    token.substr(second + 1));
}

Status VerifyJws(const Jws& jws, const PublicKey& key) {
  E2EID_TRY(alg_name, GetString(jws.header, "alg", kHeaderWhat));
  E2EID_TRY(alg, ParseJwsAlg(alg_name));
  if (alg != jws.alg) {
    return Fail(Error::Malformed("JWS algorithm does not match the protected header"));
  }
  E2EID_CHECK_OK(CheckAlgMatchesKey(alg, key));
  const std::string input = jws.protected_b64 + "." + jws.payload_b64;
  return VerifyJose(key, alg, AsBytes(input), jws.signature);
}

Result<std::string> SignFlattenedJws(const PrivateKey& key, JwsAlg alg,
                                     const Json& protected_header, std::string_view payload) {
  std::string protected_b64, payload_b64, signature_b64;
  E2EID_CHECK_OK(SigningInputFor(key, alg, protected_header, payload, &protected_b64, &payload_b64,
                                 &signature_b64));
  Json body = {
      {"protected", protected_b64}, {"payload", payload_b64}, {"signature", signature_b64}};
  return DumpJson(body);
}

Result<std::string> SignCompactJws(const PrivateKey& key, JwsAlg alg, const Json& protected_header,
                                   std::string_view payload) {
  std::string protected_b64, payload_b64, signature_b64;
  E2EID_TRY(input, SigningInputFor(key, alg, protected_header, payload, &protected_b64,
                                   &payload_b64, &signature_b64));
  return input + "." + signature_b64;
}

}  // namespace e2eid::crypto
