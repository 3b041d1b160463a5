#include "crypto/openssl.h"

#include <openssl/err.h>

#include <climits>
#include <ctime>

namespace e2eid::crypto {

Error OpenSslError(std::string_view what, ErrorCode code) {
  std::string detail(what);
  detail += ": ";
  bool first = true;
  const char* data = nullptr;
  int flags = 0;
  unsigned long e;  // NOLINT(runtime/int): OpenSSL's type
  while ((e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
    if (!first) detail += "; ";
    first = false;
    const char* lib = ERR_lib_error_string(e);
    const char* reason = ERR_reason_error_string(e);
    detail += lib != nullptr ? lib : "OpenSSL";
    detail += ":";
    if (reason != nullptr) {
      detail += reason;
    } else {
      detail += "reason " + std::to_string(ERR_GET_REASON(e));
    }
    if (data != nullptr && (flags & ERR_TXT_STRING) != 0 && *data != '\0') {
      detail += " (";
      detail += data;
      detail += ")";
    }
  }
  if (first) detail += "unknown OpenSSL error";
  return Error(code, std::move(detail));
}

void ClearOpenSslErrors() { ERR_clear_error(); }

std::string BioToString(BIO* bio) {
  if (bio == nullptr || BIO_method_type(bio) != BIO_TYPE_MEM) return "";
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int)
  if (len <= 0 || data == nullptr) return "";
  return std::string(data, static_cast<size_t>(len));
}

Result<BioPtr> MemBioOver(std::span<const uint8_t> data) {
  if (data.size() > static_cast<size_t>(INT_MAX)) {
    return Fail(Error::InvalidArgument("buffer too large for a memory BIO"));
  }
  // BIO_new_mem_buf needs a non-null pointer even for an empty buffer.
  static const uint8_t kEmpty = 0;
  BioPtr bio(BIO_new_mem_buf(data.empty() ? &kEmpty : data.data(), static_cast<int>(data.size())));
  if (!bio) return Fail(OpenSslError("BIO_new_mem_buf"));
  return bio;
}

Result<BioPtr> NewMemBio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return Fail(OpenSslError("BIO_new"));
  return bio;
}

Result<Asn1TimePtr> Asn1TimeFromTimePoint(TimePoint t) {
  // ASN1_TIME_set picks UTCTime for 1950..2049 and GeneralizedTime otherwise.
  Asn1TimePtr out(ASN1_TIME_set(nullptr, static_cast<time_t>(ToUnix(t))));
  if (!out) return Fail(OpenSslError("ASN1_TIME_set"));
  return out;
}

Result<TimePoint> Asn1TimeToTimePoint(const ASN1_TIME* t) {
  if (t == nullptr) return Fail(Error::Malformed("ASN.1 time is missing"));
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) {
    ClearOpenSslErrors();
    return Fail(Error::Malformed("ASN.1 time does not parse"));
  }
  const time_t secs = timegm(&tm);
  return FromUnix(static_cast<int64_t>(secs));
}

Result<Asn1IntegerPtr> Asn1IntegerFromBytes(std::span<const uint8_t> magnitude) {
  if (magnitude.size() > static_cast<size_t>(INT_MAX)) {
    return Fail(Error::InvalidArgument("integer too large"));
  }
  BignumPtr bn(BN_bin2bn(magnitude.data(), static_cast<int>(magnitude.size()), nullptr));
  if (!bn) return Fail(OpenSslError("BN_bin2bn"));
  Asn1IntegerPtr out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!out) return Fail(OpenSslError("BN_to_ASN1_INTEGER"));
  return out;
}

Result<Bytes> Asn1IntegerToBytes(const ASN1_INTEGER* i) {
  if (i == nullptr) return Fail(Error::Malformed("ASN.1 integer is missing"));
  BignumPtr bn(ASN1_INTEGER_to_BN(i, nullptr));
  if (!bn) return Fail(OpenSslError("ASN1_INTEGER_to_BN", ErrorCode::kMalformed));
  if (BN_is_negative(bn.get())) return Fail(Error::Malformed("ASN.1 integer is negative"));
  if (BN_is_zero(bn.get())) return Bytes{0};
  Bytes out(static_cast<size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

Result<EvpPkeyPtr> PublicKeyFromParams(const char* key_type, OSSL_PARAM* params) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, key_type, nullptr));
  if (!ctx) return Fail(OpenSslError("EVP_PKEY_CTX_new_from_name"));
  if (EVP_PKEY_fromdata_init(ctx.get()) != 1) return Fail(OpenSslError("EVP_PKEY_fromdata_init"));
  EVP_PKEY* raw = nullptr;
  const int ok = EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params);
  EvpPkeyPtr pkey(raw);
  if (ok != 1 || !pkey) return Fail(OpenSslError("EVP_PKEY_fromdata"));
  return pkey;
}

}  // namespace e2eid::crypto
