// Certificate signing requests as the ACME finalize endpoint receives them (RFC 8555 §7.4).
//
// Only the public key and the requested names are taken from a CSR; every other attribute and
// requested extension is ignored (the certificate profile decides the extensions).
//
// The PKCS#10 DER (RFC 2986) is read with crypto/der.h, not with d2i_X509_REQ: OpenSSL 3.0 runs
// its decoder framework for the key inside every X509_REQ it parses (~150 us). The signature is
// checked with EVP_DigestVerify over the exact CertificationRequestInfo bytes.
//
// Pure functions: thread-safe.
#ifndef E2EID_ACME_CSR_H_
#define E2EID_ACME_CSR_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "crypto/key.h"

namespace e2eid::acme {

struct ParsedCsr {
  crypto::PublicKey public_key;
  // subjectAltName dNSName entries, lower-cased, in CSR order (duplicates kept).
  std::vector<std::string> dns_names;
  // The subject's commonName (lower-cased), when present.
  std::optional<std::string> common_name;
};

// A value from a CSR that should be a character string: its identifier octet (the universal tag,
// e.g. crypto::der::kUtf8String; IA5String for the names of a subjectAltName) and its contents.
struct CsrText {
  uint8_t tag = 0;
  Bytes value;
};

// One AttributeTypeAndValue of the subject, in subject order (RDNs flattened).
struct CsrSubjectAttribute {
  std::string oid;  // dotted, e.g. "2.5.4.3"
  CsrText value;
};
inline constexpr std::string_view kOidCommonName = "2.5.4.3";
inline constexpr std::string_view kOidOrganizationName = "2.5.4.10";

// One GeneralName of a requested subjectAltName.
struct CsrGeneralName {
  // The CHOICE number, which is OpenSSL's GEN_* value: GEN_EMAIL 1, GEN_DNS 2, GEN_URI 6,
  // GEN_IPADD 7, ...
  int type = 0;
  CsrText text;  // rfc822Name, dNSName and URI (IA5String); empty for the other types
};

// The first steps of every CSR check: DER PKCS#10 (version 1) without trailing bytes, an accepted
// signature algorithm, a public key inside the policy of crypto/key.h, a valid self-signature,
// and a well-formed subject and extensionRequest. Errors, all kBadCsr with a precise detail:
//   "CSR is empty" / "CSR is not a DER PKCS#10 certification request (...)" / "CSR has trailing
//   bytes after the DER structure" / "CSR version must be 1 (INTEGER 0)";
//   "CSR signature algorithm <name> uses a broken digest" (MD5, SHA-1) / "... is not recognised"
//   / "... is not supported (accepted: ...)": accepted are ecdsa-with-SHA256/384/512,
//   sha256/384/512WithRSAEncryption and Ed25519 (ECDSA and RSA parameters absent or NULL,
//   Ed25519 parameters absent);
//   "CSR public key is not acceptable: <key policy detail>";
//   "CSR signature is invalid (not signed by the CSR's own key)" (also for an algorithm of
//   another key type);
//   "CSR has more than one extensionRequest attribute" / "CSR extensionRequest attribute cannot
//   be decoded" / "CSR subjectAltName cannot be decoded".
struct DecodedCsr {
  crypto::PublicKey public_key;
  std::vector<CsrSubjectAttribute> subject;
  // One entry per requested subjectAltName extension, in order (a sound CSR has at most one;
  // the callers refuse more).
  std::vector<std::vector<CsrGeneralName>> subject_alt_names;
};
Result<DecodedCsr> DecodeCsr(std::span<const uint8_t> der);

// The text of a CSR string as UTF-8: UTF8String (must be valid UTF-8), PrintableString and
// IA5String (octets >= 0x80 read as Latin-1, as OpenSSL's ASN1_STRING_to_UTF8 does) and
// BMPString (UCS-2). Errors: kBadCsr naming `what`: "CSR <what> is not a valid string", "... has
// an unsupported string type (...)", "... contains a NUL character".
Result<std::string> CsrString(const CsrText& s, std::string_view what);

// Parses a DER PKCS#10 request and checks it. Errors, all kBadCsr with a precise detail:
//   those of DecodeCsr (not DER / trailing bytes; the self-signature does not verify; a
//   signature algorithm using MD5 or SHA-1; a public key outside the policy of crypto/key.h,
//   e.g. RSA < 2048 bits); a subject with more than one commonName; a subjectAltName with a type
//   other than dNSName (IP address, URI, e-mail, ...); more than one subjectAltName extension
//   request.
Result<ParsedCsr> ParseCsr(std::span<const uint8_t> der);

// Checks that the CSR asks for exactly `dns_names` (canonical, lower case): the union of its
// dNSNames and its commonName equals the set of `dns_names` (none extra, none missing), and the
// commonName, when present, is one of them. Errors: kBadCsr naming an extra or missing name.
Status CheckCsrNames(const ParsedCsr& csr, const std::vector<std::string>& dns_names);

}  // namespace e2eid::acme

#endif  // E2EID_ACME_CSR_H_
