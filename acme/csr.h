// Certificate signing requests as the ACME finalize endpoint receives them (RFC 8555 §7.4).
//
// Only the public key and the requested names are taken from a CSR; every other attribute and
// requested extension is ignored (the certificate profile decides the extensions).
//
// Pure functions: thread-safe.
#ifndef E2EID_ACME_CSR_H_
#define E2EID_ACME_CSR_H_

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "crypto/key.h"
#include "crypto/openssl.h"

namespace e2eid::acme {

struct ParsedCsr {
  crypto::PublicKey public_key;
  // subjectAltName dNSName entries, lower-cased, in CSR order (duplicates kept).
  std::vector<std::string> dns_names;
  // The subject's commonName (lower-cased), when present.
  std::optional<std::string> common_name;
};

// The first steps of every CSR check: DER PKCS#10 without trailing bytes, a signature algorithm
// without a broken digest (MD5/SHA-1), a public key inside the policy of crypto/key.h, and a valid
// self-signature. Errors: kBadCsr with a precise detail.
struct DecodedCsr {
  crypto::X509ReqPtr req;
  crypto::PublicKey public_key;
};
Result<DecodedCsr> DecodeCsr(std::span<const uint8_t> der);

// The text of an ASN.1 string in a CSR as UTF-8. Errors: kBadCsr naming `what` for an invalid
// string or an embedded NUL.
Result<std::string> CsrString(const ASN1_STRING* s, std::string_view what);

// Parses a DER PKCS#10 request and checks it. Errors, all kBadCsr with a precise detail:
//   not DER / trailing bytes; the self-signature does not verify; a signature algorithm using
//   MD5 or SHA-1; a public key outside the policy of crypto/key.h (e.g. RSA < 2048 bits);
//   a subject with more than one commonName; a subjectAltName with a type other than dNSName
//   (IP address, URI, e-mail, ...); more than one subjectAltName extension request.
Result<ParsedCsr> ParseCsr(std::span<const uint8_t> der);

// Checks that the CSR asks for exactly `dns_names` (canonical, lower case): the union of its
// dNSNames and its commonName equals the set of `dns_names` (none extra, none missing), and the
// commonName, when present, is one of them. Errors: kBadCsr naming an extra or missing name.
Status CheckCsrNames(const ParsedCsr& csr, const std::vector<std::string>& dns_names);

}  // namespace e2eid::acme

#endif  // E2EID_ACME_CSR_H_
