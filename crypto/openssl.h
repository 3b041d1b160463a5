// Thin C++ glue over OpenSSL 3: RAII owners for every OpenSSL handle e2eid uses, conversion of the
// OpenSSL error queue into an e2eid Error, and a few memory-BIO / ASN.1 helpers.
//
// Every handle returned by an OpenSSL allocator must be wrapped in one of the *Ptr aliases below on
// the very line that allocates it:
//
//   X509Ptr cert(X509_new());
//   if (!cert) return Fail(OpenSslError("X509_new"));
//
// The aliases are plain std::unique_ptr with a stateless deleter, so they are as cheap as the raw
// pointer, move-only, and accept nullptr. Deleters call the matching OpenSSL *_free function
// (which accept nullptr).
//
// Thread safety: the helpers are thread-safe. OpenSSL's error queue is per thread, so
// OpenSslError() only sees errors raised by the calling thread.
#ifndef E2EID_CRYPTO_OPENSSL_H_
#define E2EID_CRYPTO_OPENSSL_H_

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/error.h"

namespace e2eid::crypto {

// Deleter calling `Fn` (an OpenSSL *_free function or a wrapper around a macro).
template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    Fn(p);
  }
};

// Wrappers for frees that are macros or need an element free function.
inline void OpenSslFree(void* p) { OPENSSL_free(p); }
inline void FreeX509Stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
inline void FreeX509ExtensionStack(STACK_OF(X509_EXTENSION) * s) {
  sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
}

// ---- keys and digests ----
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using EvpMdPtr = std::unique_ptr<EVP_MD, Deleter<EVP_MD_free>>;  // from EVP_MD_fetch
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;
using OsslParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using OsslParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;
using X509SigPtr = std::unique_ptr<X509_SIG, Deleter<X509_SIG_free>>;
using Pkcs8PrivKeyInfoPtr = std::unique_ptr<PKCS8_PRIV_KEY_INFO, Deleter<PKCS8_PRIV_KEY_INFO_free>>;

// ---- generic ----
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using SecretBignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_clear_free>>;  // zeroes on free
using BnCtxPtr = std::unique_ptr<BN_CTX, Deleter<BN_CTX_free>>;
// Buffers OpenSSL allocated for us (i2d_* with a null output pointer, BN_bn2hex, ...).
using OpenSslBufferPtr = std::unique_ptr<unsigned char, Deleter<OpenSslFree>>;
using OpenSslStringPtr = std::unique_ptr<char, Deleter<OpenSslFree>>;

// ---- ASN.1 ----
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;
using Asn1EnumeratedPtr = std::unique_ptr<ASN1_ENUMERATED, Deleter<ASN1_ENUMERATED_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME_free>>;
using Asn1GeneralizedTimePtr =
    std::unique_ptr<ASN1_GENERALIZEDTIME, Deleter<ASN1_GENERALIZEDTIME_free>>;
using Asn1OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING_free>>;
using Asn1BitStringPtr = std::unique_ptr<ASN1_BIT_STRING, Deleter<ASN1_BIT_STRING_free>>;
using Asn1StringPtr = std::unique_ptr<ASN1_STRING, Deleter<ASN1_STRING_free>>;
using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT_free>>;

// ---- X.509 ----
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), Deleter<FreeX509Stack>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using X509RevokedPtr = std::unique_ptr<X509_REVOKED, Deleter<X509_REVOKED_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using X509ExtensionStackPtr =
    std::unique_ptr<STACK_OF(X509_EXTENSION), Deleter<FreeX509ExtensionStack>>;
using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using X509AlgorPtr = std::unique_ptr<X509_ALGOR, Deleter<X509_ALGOR_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, Deleter<BASIC_CONSTRAINTS_free>>;
using AuthorityKeyIdPtr = std::unique_ptr<AUTHORITY_KEYID, Deleter<AUTHORITY_KEYID_free>>;
using ExtendedKeyUsagePtr = std::unique_ptr<EXTENDED_KEY_USAGE, Deleter<EXTENDED_KEY_USAGE_free>>;
using CrlDistPointsPtr = std::unique_ptr<CRL_DIST_POINTS, Deleter<CRL_DIST_POINTS_free>>;
using DistPointPtr = std::unique_ptr<DIST_POINT, Deleter<DIST_POINT_free>>;
using IssuingDistPointPtr = std::unique_ptr<ISSUING_DIST_POINT, Deleter<ISSUING_DIST_POINT_free>>;
using AuthorityInfoAccessPtr =
    std::unique_ptr<AUTHORITY_INFO_ACCESS, Deleter<AUTHORITY_INFO_ACCESS_free>>;
using AccessDescriptionPtr = std::unique_ptr<ACCESS_DESCRIPTION, Deleter<ACCESS_DESCRIPTION_free>>;

// ---- OCSP ----
using OcspRequestPtr = std::unique_ptr<OCSP_REQUEST, Deleter<OCSP_REQUEST_free>>;
using OcspResponsePtr = std::unique_ptr<OCSP_RESPONSE, Deleter<OCSP_RESPONSE_free>>;
using OcspBasicRespPtr = std::unique_ptr<OCSP_BASICRESP, Deleter<OCSP_BASICRESP_free>>;
using OcspCertIdPtr = std::unique_ptr<OCSP_CERTID, Deleter<OCSP_CERTID_free>>;

// Drains the calling thread's OpenSSL error queue into one Error with `code` (kCrypto by default):
// "<what>: <lib>:<reason>; <lib>:<reason>". When the queue is empty the detail is
// "<what>: unknown OpenSSL error". The detail is meant for logs (kCrypto is internal); pass a
// client-facing code only when `what` alone is a good client message, since the queue text is
// appended.
Error OpenSslError(std::string_view what, ErrorCode code = ErrorCode::kCrypto);

// Discards the calling thread's OpenSSL error queue (after an expected failure that is reported
// with a different error, so stale entries do not leak into a later OpenSslError()).
void ClearOpenSslErrors();

// Returns everything written to a memory BIO (BIO_s_mem) so far. Returns "" for nullptr or a BIO
// that is not a memory BIO.
std::string BioToString(BIO* bio);

// A read-only memory BIO over `data`. The BIO does not copy: `data` must outlive it.
// Errors: kInvalidArgument when data is larger than INT_MAX, kCrypto on allocation failure.
Result<BioPtr> MemBioOver(std::span<const uint8_t> data);
inline Result<BioPtr> MemBioOver(std::string_view data) { return MemBioOver(AsBytes(data)); }
// A new, empty, writable memory BIO. Errors: kCrypto on allocation failure.
Result<BioPtr> NewMemBio();

// A public-only EVP_PKEY of `key_type` ("EC", "RSA", ...) imported from `params` with
// EVP_PKEY_fromdata (the provider's import checks the values, e.g. an EC point on its curve).
Result<EvpPkeyPtr> PublicKeyFromParams(const char* key_type, OSSL_PARAM* params);

// ASN1_TIME <-> TimePoint. The encoder picks UTCTime for years 1950-2049 and GeneralizedTime
// otherwise (RFC 5280 §4.1.2.5). The decoder accepts both forms.
// Errors: kCrypto on allocation failure; kMalformed for an ASN1_TIME that does not parse.
Result<Asn1TimePtr> Asn1TimeFromTimePoint(TimePoint t);
Result<TimePoint> Asn1TimeToTimePoint(const ASN1_TIME* t);

// ASN1_INTEGER <-> unsigned big-endian magnitude (certificate serial numbers, CRL numbers).
// Leading zero bytes of `magnitude` are ignored; negative integers are rejected by the decoder
// (kMalformed). Zero decodes as one 0x00 byte; otherwise no leading zeros. Errors: kCrypto on
// allocation failure.
Result<Asn1IntegerPtr> Asn1IntegerFromBytes(std::span<const uint8_t> magnitude);
Result<Bytes> Asn1IntegerToBytes(const ASN1_INTEGER* i);

}  // namespace e2eid::crypto

#endif  // E2EID_CRYPTO_OPENSSL_H_
