#include "crypto/jwk.h"

#include <openssl/core_names.h>

#include <array>

#include "core/encoding.h"
#include "crypto/digest.h"
#include "crypto/openssl.h"

namespace e2eid::crypto {
namespace {

constexpr std::string_view kWhat = "JWK";

struct Curve {
  KeyType type;
  const char* jwk_name;      // "crv"
  const char* openssl_name;  // OSSL_PKEY_PARAM_GROUP_NAME
  size_t size;               // coordinate length in bytes
};
constexpr std::array<Curve, 3> kCurves = {{
    {KeyType::kP256, "P-256", "prime256v1", 32},
    {KeyType::kP384, "P-384", "secp384r1", 48},
    {KeyType::kP521, "P-521", "secp521r1", 66},
}};

const Curve* CurveFor(KeyType type) {
  for (const Curve& c : kCurves) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

Result<Bytes> GetBnParam(const EVP_PKEY* pkey, const char* name, size_t pad_to) {
  BIGNUM* raw = nullptr;
  const int ok = EVP_PKEY_get_bn_param(pkey, name, &raw);
  BignumPtr bn(raw);
  if (ok != 1 || !bn) return Fail(OpenSslError(std::string("reading key parameter ") + name));
  const size_t len = pad_to != 0 ? pad_to : static_cast<size_t>(BN_num_bytes(bn.get()));
  Bytes out(len);
  if (BN_bn2binpad(bn.get(), out.data(), static_cast<int>(len)) < 0) {
    return Fail(OpenSslError("BN_bn2binpad"));
  }
  return out;
}

// A required base64url member. Errors: kMalformed.
Result<Bytes> GetB64(const Json& jwk, std::string_view member) {
  E2EID_TRY(text, GetString(jwk, member, kWhat));
  auto decoded = Base64UrlDecode(text);
  if (!decoded) {
    return Fail(Error::Malformed("JWK member '" + std::string(member) +
                                 "' is not valid base64url: " + decoded.error().detail()));
  }
  return std::move(*decoded);
}

Result<PublicKey> EcFromJwk(const Json& jwk) {
  E2EID_TRY(crv, GetString(jwk, "crv", kWhat));
  const Curve* curve = nullptr;
  for (const Curve& c : kCurves) {
    if (crv == c.jwk_name) curve = &c;
  }
  if (curve == nullptr) {
    return Fail(
        Error::BadPublicKey("unsupported EC curve '" + crv + "' (supported: P-256, P-384, P-521)"));
  }
  E2EID_TRY(x, GetB64(jwk, "x"));
  E2EID_TRY(y, GetB64(jwk, "y"));
  if (x.size() != curve->size || y.size() != curve->size) {
    return Fail(Error::BadPublicKey("JWK " + crv + " coordinates must be " +
                                    std::to_string(curve->size) + " bytes each (x has " +
                                    std::to_string(x.size()) + ", y has " +
                                    std::to_string(y.size()) + ")"));
  }
  Bytes point;
  point.reserve(1 + 2 * curve->size);
  point.push_back(0x04);  // uncompressed
  point.insert(point.end(), x.begin(), x.end());
  point.insert(point.end(), y.begin(), y.end());
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) return Fail(OpenSslError("OSSL_PARAM_BLD_new"));
  if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve->openssl_name,
                                      0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return Fail(OpenSslError("OSSL_PARAM_BLD_push"));
  }
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return Fail(OpenSslError("OSSL_PARAM_BLD_to_param"));
  auto pkey = PublicKeyFromParams("EC", params.get());
  if (!pkey) {
    // The only input-dependent failure left is a point that does not decode: not on the curve
    // or coordinates not below the field prime.
    ClearOpenSslErrors();
    return Fail(Error::BadPublicKey("JWK EC point is not on curve " + crv));
  }
  return PublicKey::FromEvpPkey(pkey->get());
}

Result<PublicKey> OkpFromJwk(const Json& jwk) {
  E2EID_TRY(crv, GetString(jwk, "crv", kWhat));
  if (crv != "Ed25519") {
    return Fail(Error::BadPublicKey("unsupported OKP curve '" + crv + "' (supported: Ed25519)"));
  }
  E2EID_TRY(x, GetB64(jwk, "x"));
  if (x.size() != 32) {
    return Fail(
        Error::BadPublicKey("JWK Ed25519 key must be 32 bytes, got " + std::to_string(x.size())));
  }
  EvpPkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, x.data(), x.size()));
  if (!pkey) return Fail(OpenSslError("EVP_PKEY_new_raw_public_key"));
  return PublicKey::FromEvpPkey(pkey.get());
}

Result<PublicKey> RsaFromJwk(const Json& jwk) {
  E2EID_TRY(n, GetB64(jwk, "n"));
  E2EID_TRY(e, GetB64(jwk, "e"));
  if (n.empty() || n[0] == 0) {
    return Fail(Error::BadPublicKey("JWK RSA 'n' must be a minimal big-endian integer"));
  }
  if (e.empty() || e[0] == 0) {
    return Fail(Error::BadPublicKey("JWK RSA 'e' must be a minimal big-endian integer"));
  }
  if (n.size() > 8192 / 8 || e.size() > 4) {
    // Bounds checked again precisely by the key policy; this keeps absurd inputs out of OpenSSL.
    return Fail(Error::BadPublicKey(n.size() > 8192 / 8 ? "RSA key too large: more than 8192 bits"
                                                        : "RSA public exponent must be odd, at "
                                                          "least 65537 and less than 2^32"));
  }
  BignumPtr bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  BignumPtr bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  if (!bn_n || !bn_e) return Fail(OpenSslError("BN_bin2bn"));
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) return Fail(OpenSslError("OSSL_PARAM_BLD_new"));
  if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return Fail(OpenSslError("OSSL_PARAM_BLD_push_BN"));
  }
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return Fail(OpenSslError("OSSL_PARAM_BLD_to_param"));
  E2EID_TRY(pkey, PublicKeyFromParams("RSA", params.get()));
  return PublicKey::FromEvpPkey(pkey.get());
}

}  // namespace

Result<Json> PublicKeyToJwk(const PublicKey& key) {
  const EVP_PKEY* pkey = key.get();
  switch (key.type()) {
    case KeyType::kEd25519: {
      Bytes x(32);
      size_t len = x.size();
      if (EVP_PKEY_get_raw_public_key(pkey, x.data(), &len) != 1 || len != 32) {
        return Fail(OpenSslError("EVP_PKEY_get_raw_public_key"));
      }
      return Json{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", Base64UrlEncode(x)}};
    }
    case KeyType::kP256:
    case KeyType::kP384:
    case KeyType::kP521: {
      const Curve* curve = CurveFor(key.type());
      E2EID_TRY(x, GetBnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_X, curve->size));
      E2EID_TRY(y, GetBnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, curve->size));
      return Json{{"kty", "EC"},
                  {"crv", curve->jwk_name},
                  {"x", Base64UrlEncode(x)},
                  {"y", Base64UrlEncode(y)}};
    }
    case KeyType::kRsa: {
      E2EID_TRY(n, GetBnParam(pkey, OSSL_PKEY_PARAM_RSA_N, 0));
      E2EID_TRY(e, GetBnParam(pkey, OSSL_PKEY_PARAM_RSA_E, 0));
      return Json{{"kty", "RSA"}, {"n", Base64UrlEncode(n)}, {"e", Base64UrlEncode(e)}};
    }
  }
  return Fail(Error::Internal("unknown key type"));
}

Result<PublicKey> PublicKeyFromJwk(const Json& jwk) {
  if (!jwk.is_object()) return Fail(Error::Malformed("JWK must be a JSON object"));
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    if (jwk.contains(member)) {
      return Fail(Error::BadPublicKey("JWK must not contain the private key member '" +
                                      std::string(member) + "'"));
    }
  }
  E2EID_TRY(kty, GetString(jwk, "kty", kWhat));
  if (kty == "EC") return EcFromJwk(jwk);
  if (kty == "OKP") return OkpFromJwk(jwk);
  if (kty == "RSA") return RsaFromJwk(jwk);
  return Fail(
      Error::BadPublicKey("unsupported JWK key type '" + kty + "' (supported: EC, OKP, RSA)"));
}

Result<std::string> JwkThumbprint(const PublicKey& key) {
  E2EID_TRY(jwk, PublicKeyToJwk(key));
  // RFC 7638 §3.2: required members only, lexicographic order, no white space. The values are
  // base64url or fixed names, so no JSON escaping is needed.
  std::string canonical;
  auto member = [&](const char* name, bool last = false) {
    canonical += '"';
    canonical += name;
    canonical += "\":\"";
    canonical += jwk[name].get<std::string>();
    canonical += last ? "\"" : "\",";
  };
  canonical += '{';
  switch (key.type()) {
    case KeyType::kEd25519:
      member("crv");
      member("kty");
      member("x", true);
      break;
    case KeyType::kP256:
    case KeyType::kP384:
    case KeyType::kP521:
      member("crv");
      member("kty");
      member("x");
      member("y", true);
      break;
    case KeyType::kRsa:
      member("e");
      member("kty");
      member("n", true);
      break;
  }
  canonical += '}';
  return Base64UrlEncode(Sha256(canonical));
}

Result<std::string> JwkThumbprint(const Json& jwk) {
  E2EID_TRY(key, PublicKeyFromJwk(jwk));
  return JwkThumbprint(key);
}

}  // namespace e2eid::crypto
