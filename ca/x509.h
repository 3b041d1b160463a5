// X.509 building blocks shared by the CA hierarchy and the issuer: encoding, names, extensions.
//
// Extensions whose values come from outside (names, URLs) are built as ASN.1 structures, never
// through OpenSSL's text configuration syntax, so a comma or a colon inside a name cannot inject
// another value. All functions are thread-safe (they touch only their arguments).
#ifndef E2EID_CA_X509_H_
#define E2EID_CA_X509_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/error.h"
#include "crypto/key.h"
#include "crypto/openssl.h"

namespace e2eid::ca {

// ---- encoding ----
Result<std::string> CertificateToPem(X509* cert);
Result<Bytes> CertificateToDer(X509* cert);
// Exactly one certificate. Errors: kMalformed for bad PEM/DER or trailing data that is not a cert.
Result<crypto::X509Ptr> CertificateFromPem(std::string_view pem);
Result<crypto::X509Ptr> CertificateFromDer(std::span<const uint8_t> der);
// Lowercase hex SHA-256 of the DER encoding ("fingerprint").
Result<std::string> CertificateFingerprint(X509* cert);
// Lowercase hex of the serial number's magnitude, without leading zeros.
Result<std::string> SerialHex(X509* cert);

// ---- names ----
// Attribute short names accepted in subjects: CN, O, OU, C, L, ST, serialNumber, and
// "displayName" (OID 2.16.840.1.113730.3.1.241, used by Wire CSRs). Values are UTF-8.
// Errors: kMalformed for an unknown attribute, an empty value, or a value over the attribute's
// upper bound (e.g. CN at most 64 characters).
Result<crypto::X509NamePtr> BuildName(
    const std::vector<std::pair<std::string, std::string>>& attributes);

// ---- extensions ----
// Adds an extension given in OpenSSL's configuration syntax. Only for fixed, trusted values
// (e.g. "critical,CA:TRUE,pathlen:0"); `issuer` is used for authorityKeyIdentifier.
Status AddConfExtension(X509* cert, X509* issuer, int nid, const char* value);
// Checks that `name` can be a DNS name or URI in a certificate: non-empty printable ASCII
// (IA5String) without spaces. Errors: kMalformed naming the value.
Status CheckIa5Name(std::string_view name);
// subjectAltName with DNS names and URIs; `critical` when the subject is empty (RFC 5280 §4.2.1.6).
// Errors: kMalformed for a name that is not printable ASCII (IA5String) or is empty.
Status AddSubjectAltName(X509* cert, const std::vector<std::string>& dns_names,
                         const std::vector<std::string>& uris, bool critical);
// Critical nameConstraints with permitted URI subtrees.
Status AddUriNameConstraints(X509* cert, const std::vector<std::string>& permitted_uri_hosts);
// cRLDistributionPoints with one full-name URI.
Status AddCrlDistributionPoint(X509* cert, std::string_view url);
// authorityInfoAccess with an OCSP URL and/or a caIssuers URL (either may be empty).
Status AddAuthorityInfoAccess(X509* cert, std::string_view ocsp_url,
                              std::string_view ca_issuers_url);
// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
Status AddOcspNoCheck(X509* cert);

// Sets version 3, serial, subject, issuer name, validity and public key. The key is written from
// its cached SubjectPublicKeyInfo (crypto::PublicKey::SetX509Pubkey), without OpenSSL's
// encoder/decoder round trip in X509_set_pubkey; the encoded certificate is the same. Until the
// certificate is encoded and parsed again, X509_get0_pubkey(cert) returns null (the subject key
// identifier "hash", signing and encoding do not need it).
Status SetBasics(X509* cert, std::span<const uint8_t> serial, X509_NAME* subject,
                 X509_NAME* issuer_name, TimePoint not_before, TimePoint not_after,
                 const crypto::PublicKey& public_key);
// The same with any EVP_PKEY, through X509_set_pubkey (slower: OpenSSL 3.0 encodes and decodes
// the key; X509_get0_pubkey(cert) works afterwards). For tests and one-off certificates.
Status SetBasics(X509* cert, std::span<const uint8_t> serial, X509_NAME* subject,
                 X509_NAME* issuer_name, TimePoint not_before, TimePoint not_after,
                 EVP_PKEY* public_key);
// Signs with the digest that fits the key type (crypto::SignatureDigest).
Status SignCertificate(X509* cert, const crypto::PrivateKey& key);

}  // namespace e2eid::ca

#endif  // E2EID_CA_X509_H_
