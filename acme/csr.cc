#include "acme/csr.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <set>

#include "crypto/der.h"
#include "crypto/openssl.h"

namespace e2eid::acme {
namespace {

namespace der = crypto::der;
using crypto::ClearOpenSslErrors;

Error BadCsr(std::string detail) { return Error(ErrorCode::kBadCsr, std::move(detail)); }

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

bool SameBytes(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// ---- object identifiers (contents octets) ----
constexpr uint8_t kOidExtensionRequest[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                            0x0d, 0x01, 0x09, 0x0e};  // 1.2.840.113549.1.9.14
// Microsoft's 1.3.6.1.4.1.311.2.1.14, which X509_REQ_get_extensions also reads.
constexpr uint8_t kOidMsExtensionRequest[] = {0x2b, 0x06, 0x01, 0x04, 0x01,
                                              0x82, 0x37, 0x02, 0x01, 0x0e};
constexpr uint8_t kOidSubjectAltName[] = {0x55, 0x1d, 0x11};  // 2.5.29.17

enum class KeyFamily { kEc, kRsa, kEd25519 };

struct SignatureAlgorithm {
  std::span<const uint8_t> oid;
  const char* name;
  KeyFamily family;
  const char* digest;  // for EVP_DigestVerifyInit_ex; nullptr for Ed25519
};
constexpr uint8_t kOidEcdsaSha256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
constexpr uint8_t kOidEcdsaSha384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
constexpr uint8_t kOidEcdsaSha512[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04};
constexpr uint8_t kOidRsaSha256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
constexpr uint8_t kOidRsaSha384[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c};
constexpr uint8_t kOidRsaSha512[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d};
constexpr uint8_t kOidEd25519[] = {0x2b, 0x65, 0x70};
constexpr SignatureAlgorithm kSignatureAlgorithms[] = {
    {kOidEcdsaSha256, "ecdsa-with-SHA256", KeyFamily::kEc, "SHA256"},
    {kOidEcdsaSha384, "ecdsa-with-SHA384", KeyFamily::kEc, "SHA384"},
    {kOidEcdsaSha512, "ecdsa-with-SHA512", KeyFamily::kEc, "SHA512"},
    {kOidRsaSha256, "sha256WithRSAEncryption", KeyFamily::kRsa, "SHA256"},
    {kOidRsaSha384, "sha384WithRSAEncryption", KeyFamily::kRsa, "SHA384"},
    {kOidRsaSha512, "sha512WithRSAEncryption", KeyFamily::kRsa, "SHA512"},
    {kOidEd25519, "Ed25519", KeyFamily::kEd25519, nullptr},
};
constexpr std::string_view kAcceptedAlgorithms =
    "accepted: ecdsa-with-SHA256, ecdsa-with-SHA384, ecdsa-with-SHA512, sha256WithRSAEncryption, "
    "sha384WithRSAEncryption, sha512WithRSAEncryption, Ed25519";

KeyFamily FamilyOf(crypto::KeyType type) {
  switch (type) {
    case crypto::KeyType::kEd25519:
      return KeyFamily::kEd25519;
    case crypto::KeyType::kRsa:
      return KeyFamily::kRsa;
    case crypto::KeyType::kP256:
    case crypto::KeyType::kP384:
    case crypto::KeyType::kP521:
      return KeyFamily::kEc;
  }
  return KeyFamily::kEc;
}

// The error for a signature algorithm outside the table, in OpenSSL's words (as before).
Error RefusedAlgorithm(const der::Element& oid_element) {
  const unsigned char* p = oid_element.encoding.data();
  crypto::Asn1ObjectPtr obj(
      d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(oid_element.encoding.size())));  // NOLINT
  const int sig_nid = obj ? OBJ_obj2nid(obj.get()) : NID_undef;
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  if (sig_nid == NID_undef || OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) != 1) {
    ClearOpenSslErrors();
    return BadCsr("CSR signature algorithm is not recognised");
  }
  const std::string name = OBJ_nid2sn(sig_nid);
  if (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_md4 || md_nid == NID_md5_sha1 ||
      md_nid == NID_md2) {
    return BadCsr("CSR signature algorithm " + name + " uses a broken digest");
  }
  return BadCsr("CSR signature algorithm " + name + " is not supported (" +
                std::string(kAcceptedAlgorithms) + ")");
}

// AlgorithmIdentifier of the signature -> one of the accepted algorithms.
Result<const SignatureAlgorithm*> ReadSignatureAlgorithm(const der::Element& alg) {
  der::Reader r(alg.contents);
  auto oid_element = r.Next(der::kOid, "signatureAlgorithm");
  if (!oid_element || !der::Oid(*oid_element, "signatureAlgorithm")) {
    return Fail(BadCsr("CSR is not a DER PKCS#10 certification request (bad signatureAlgorithm)"));
  }
  const SignatureAlgorithm* found = nullptr;
  for (const auto& a : kSignatureAlgorithms) {
    if (SameBytes(a.oid, oid_element->contents)) found = &a;
  }
  if (found == nullptr) return Fail(RefusedAlgorithm(*oid_element));
  // Parameters: absent for Ed25519 (RFC 8410); absent (RFC 5758) or NULL for ECDSA; NULL (RFC
  // 4055) or absent for RSA.
  if (!r.empty()) {
    auto params = r.Next("signatureAlgorithm parameters");
    const bool null = params && params->tag == der::kNull && params->contents.empty();
    if (!null || !r.empty() || found->family == KeyFamily::kEd25519) {
      return Fail(BadCsr("CSR signature algorithm " + std::string(found->name) +
                         " has unexpected parameters"));
    }
  }
  return found;
}

Status VerifySignature(const crypto::PublicKey& key, const SignatureAlgorithm& alg,
                       std::span<const uint8_t> tbs, std::span<const uint8_t> signature) {
  const Error invalid = BadCsr("CSR signature is invalid (not signed by the CSR's own key)");
  if (FamilyOf(key.type()) != alg.family) return Fail(invalid);
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return Fail(crypto::OpenSslError("EVP_MD_CTX_new"));
  if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, alg.digest, nullptr, nullptr, key.get(),
                              nullptr) != 1) {
    return Fail(crypto::OpenSslError("EVP_DigestVerifyInit_ex"));
  }
  if (EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), tbs.data(), tbs.size()) !=
      1) {
    ClearOpenSslErrors();
    return Fail(invalid);
  }
  return Ok();
}

// Name ::= SEQUENCE OF RelativeDistinguishedName (SET SIZE (1..MAX) OF AttributeTypeAndValue).
Result<std::vector<CsrSubjectAttribute>> ReadSubject(const der::Element& name) {
  std::vector<CsrSubjectAttribute> out;
  der::Reader rdns(name.contents);
  while (!rdns.empty()) {
    E2EID_TRY(rdn, rdns.Next(der::kSet, "subject RDN"));
    if (rdn.contents.empty()) return Fail(Error::Malformed("DER: subject RDN: empty SET"));
    der::Reader atvs(rdn.contents);
    while (!atvs.empty()) {
      E2EID_TRY(atv, atvs.Next(der::kSequence, "subject attribute"));
      der::Reader parts(atv.contents);
      E2EID_TRY(type, parts.Next(der::kOid, "subject attribute type"));
      E2EID_TRY(oid, der::Oid(type, "subject attribute type"));
      E2EID_TRY(value, parts.Next("subject attribute value"));
      E2EID_CHECK_OK(parts.ExpectEnd("subject attribute"));
      E2EID_TRY(text, der::OidToText(oid));
      out.push_back(
          {std::move(text), {value.tag, Bytes(value.contents.begin(), value.contents.end())}});
    }
  }
  return out;
}

// GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName (empty tolerated, as OpenSSL does).
Result<std::vector<CsrGeneralName>> ReadGeneralNames(std::span<const uint8_t> extn_value) {
  E2EID_TRY(seq, der::ReadExactlyOne(extn_value, der::kSequence, "GeneralNames"));
  std::vector<CsrGeneralName> out;
  der::Reader r(seq.contents);
  while (!r.empty()) {
    E2EID_TRY(gn, r.Next("GeneralName"));
    CsrGeneralName name;
    name.type = gn.tag & 0x1f;
    const bool constructed = (gn.tag & 0x20) != 0;
    if ((gn.tag & 0xc0) != 0x80 || name.type > 8) {
      return Fail(Error::Malformed("DER: GeneralName: unknown tag"));
    }
    // otherName, x400Address, directoryName and ediPartyName are constructed; the rest are
    // primitive (IMPLICIT IA5String / OCTET STRING / OBJECT IDENTIFIER).
    const bool want_constructed =
        name.type == 0 || name.type == 3 || name.type == 4 || name.type == 5;
    if (constructed != want_constructed) {
      return Fail(Error::Malformed("DER: GeneralName: wrong form"));
    }
    if (name.type == GEN_EMAIL || name.type == GEN_DNS || name.type == GEN_URI) {
      name.text = {der::kIa5String, Bytes(gn.contents.begin(), gn.contents.end())};
    }
    out.push_back(std::move(name));
  }
  return out;
}

// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.
struct Extension {
  std::span<const uint8_t> oid;
  std::span<const uint8_t> value;
};
Result<Extension> ReadExtension(der::Reader& r) {
  E2EID_TRY(ext, r.Next(der::kSequence, "Extension"));
  der::Reader parts(ext.contents);
  E2EID_TRY(id, parts.Next(der::kOid, "extnID"));
  E2EID_TRY(oid, der::Oid(id, "extnID"));
  E2EID_TRY(critical, parts.Optional(der::kBoolean, "critical"));
  if (critical) E2EID_CHECK_OK(der::Boolean(*critical, "critical"));
  E2EID_TRY(value, parts.Next(der::kOctetString, "extnValue"));
  E2EID_CHECK_OK(parts.ExpectEnd("Extension"));
  return Extension{oid, value.contents};
}

// Extensions ::= SEQUENCE OF Extension; appends the subjectAltName ones to `sans`.
Status ReadExtensionRequest(const der::Element& extensions,
                            std::vector<std::vector<CsrGeneralName>>& sans) {
  der::Reader r(extensions.contents);
  while (!r.empty()) {
    auto ext = ReadExtension(r);
    if (!ext) return Fail(BadCsr("CSR extensionRequest attribute cannot be decoded"));
    if (!SameBytes(ext->oid, kOidSubjectAltName)) continue;
    auto names = ReadGeneralNames(ext->value);
    if (!names) return Fail(BadCsr("CSR subjectAltName cannot be decoded"));
    sans.push_back(std::move(*names));
  }
  return Ok();
}

// Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET OF ANY }.
struct Attribute {
  std::span<const uint8_t> oid;
  der::Element values;
};
Result<Attribute> ReadAttribute(der::Reader& r) {
  E2EID_TRY(attr, r.Next(der::kSequence, "attribute"));
  der::Reader parts(attr.contents);
  E2EID_TRY(type, parts.Next(der::kOid, "attribute type"));
  E2EID_TRY(oid, der::Oid(type, "attribute type"));
  E2EID_TRY(values, parts.Next(der::kSet, "attribute values"));
  E2EID_CHECK_OK(parts.ExpectEnd("attribute"));
  // Each value must be one DER element (as for OpenSSL's ANY).
  der::Reader vals(values.contents);
  while (!vals.empty()) E2EID_CHECK_OK(vals.Next("attribute value"));
  return Attribute{oid, values};
}

// attributes [0] IMPLICIT SET OF Attribute. Only an extensionRequest is read; other attributes
// (challengePassword, ...) are ignored.
Status ReadAttributes(const der::Element& attributes,
                      std::vector<std::vector<CsrGeneralName>>& sans) {
  bool have_extension_request = false;
  der::Reader r(attributes.contents);
  while (!r.empty()) {
    auto attr = ReadAttribute(r);
    if (!attr) {
      return Fail(
          BadCsr("CSR is not a DER PKCS#10 certification request (" + attr.error().detail() + ")"));
    }
    if (!SameBytes(attr->oid, kOidExtensionRequest) &&
        !SameBytes(attr->oid, kOidMsExtensionRequest)) {
      continue;
    }
    if (have_extension_request) {
      return Fail(BadCsr("CSR has more than one extensionRequest attribute"));
    }
    have_extension_request = true;
    der::Reader vals(attr->values.contents);
    auto extensions = vals.Next(der::kSequence, "extensionRequest");
    if (!extensions || !vals.empty()) {
      return Fail(BadCsr("CSR extensionRequest attribute cannot be decoded"));
    }
    E2EID_CHECK_OK(ReadExtensionRequest(*extensions, sans));
  }
  return Ok();
}

// UTF-8 encoding of one code point (below 0x110000, not a surrogate).
void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::span<const uint8_t> s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = s[i];
    size_t extra = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xe0) == 0xc0) {
      extra = 1, cp = b & 0x1f, min = 0x80;
    } else if ((b & 0xf0) == 0xe0) {
      extra = 2, cp = b & 0x0f, min = 0x800;
    } else if ((b & 0xf8) == 0xf0) {
      extra = 3, cp = b & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace

Result<std::string> CsrString(const CsrText& s, std::string_view what) {
  const auto invalid = [&] {
    return BadCsr("CSR " + std::string(what) + " is not a valid string");
  };
  std::string out;
  switch (s.tag) {
    case der::kUtf8String:
      if (!IsValidUtf8(s.value)) return Fail(invalid());
      out.assign(s.value.begin(), s.value.end());
      break;
    case der::kPrintableString:
    case der::kIa5String:
      for (uint8_t b : s.value) AppendUtf8(out, b);  // one octet per character (Latin-1)
      break;
    case der::kBmpString:
      if (s.value.size() % 2 != 0) return Fail(invalid());
      for (size_t i = 0; i < s.value.size(); i += 2) {
        const uint32_t cp = (uint32_t{s.value[i]} << 8) | s.value[i + 1];
        if (cp >= 0xd800 && cp <= 0xdfff) return Fail(invalid());  // UCS-2 has no surrogates
        AppendUtf8(out, cp);
      }
      break;
    default:
      return Fail(BadCsr("CSR " + std::string(what) +
                         " has an unsupported string type (accepted: UTF8String, "
                         "PrintableString, IA5String, BMPString)"));
  }
  if (out.find('\0') != std::string::npos) {
    return Fail(BadCsr("CSR " + std::string(what) + " contains a NUL character"));
  }
  return out;
}

namespace {

// The top-level fields of a CertificationRequest.
struct CsrFields {
  der::Element info;  // certificationRequestInfo, whose encoding is what was signed
  der::Element signature_algorithm;
  std::span<const uint8_t> signature;
  der::Element version;
  der::Element subject;
  der::Element spki;
  std::optional<der::Element> attributes;
  bool trailing_bytes = false;
};

// CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }
// CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, [0] attributes }
// The attributes may be missing: OpenSSL has always tolerated encoders that leave an empty set
// out. Errors: kMalformed from the DER reader.
Result<CsrFields> ReadFields(std::span<const uint8_t> der) {
  CsrFields f;
  der::Reader top(der);
  E2EID_TRY(request, top.Next(der::kSequence, "CertificationRequest"));
  f.trailing_bytes = !top.empty();
  der::Reader outer(request.contents);
  E2EID_TRY(info, outer.Next(der::kSequence, "certificationRequestInfo"));
  E2EID_TRY(sig_alg, outer.Next(der::kSequence, "signatureAlgorithm"));
  E2EID_TRY(sig, outer.Next(der::kBitString, "signature"));
  E2EID_CHECK_OK(outer.ExpectEnd("CertificationRequest"));
  E2EID_TRY(signature, der::BitStringBytes(sig, "signature"));
  der::Reader cri(info.contents);
  E2EID_TRY(version, cri.Next(der::kInteger, "version"));
  E2EID_TRY(subject, cri.Next(der::kSequence, "subject"));
  E2EID_TRY(spki, cri.Next(der::kSequence, "subjectPKInfo"));
  E2EID_TRY(attributes, cri.Optional(der::ContextTag(0, true), "attributes"));
  E2EID_CHECK_OK(cri.ExpectEnd("certificationRequestInfo"));
  f.info = info;
  f.signature_algorithm = sig_alg;
  f.signature = signature;
  f.version = version;
  f.subject = subject;
  f.spki = spki;
  f.attributes = attributes;
  return f;
}

}  // namespace

Result<DecodedCsr> DecodeCsr(std::span<const uint8_t> der) {
  if (der.empty()) return Fail(BadCsr("CSR is empty"));
  auto fields = ReadFields(der);
  if (!fields) {
    return Fail(
        BadCsr("CSR is not a DER PKCS#10 certification request (" + fields.error().detail() + ")"));
  }
  if (fields->trailing_bytes) return Fail(BadCsr("CSR has trailing bytes after the DER structure"));
  auto version = der::UnsignedInteger(fields->version, "version");
  if (!version || version->size() != 1 || (*version)[0] != 0) {
    return Fail(BadCsr("CSR version must be 1 (INTEGER 0)"));
  }

  E2EID_TRY(alg, ReadSignatureAlgorithm(fields->signature_algorithm));
  auto key = crypto::PublicKey::FromDer(fields->spki.encoding);
  if (!key) return Fail(BadCsr("CSR public key is not acceptable: " + key.error().detail()));
  E2EID_CHECK_OK(VerifySignature(*key, *alg, fields->info.encoding, fields->signature));

  DecodedCsr out{std::move(*key), {}, {}};
  auto names = ReadSubject(fields->subject);
  if (!names) {
    return Fail(
        BadCsr("CSR is not a DER PKCS#10 certification request (" + names.error().detail() + ")"));
  }
  out.subject = std::move(*names);
  if (fields->attributes) {
    E2EID_CHECK_OK(ReadAttributes(*fields->attributes, out.subject_alt_names));
  }
  return out;
}

Result<ParsedCsr> ParseCsr(std::span<const uint8_t> der) {
  E2EID_TRY(decoded, DecodeCsr(der));
  ParsedCsr out{std::move(decoded.public_key), {}, std::nullopt};

  const CsrSubjectAttribute* cn = nullptr;
  for (const auto& attribute : decoded.subject) {
    if (attribute.oid != kOidCommonName) continue;
    if (cn != nullptr) return Fail(BadCsr("CSR subject has more than one commonName"));
    cn = &attribute;
  }
  if (cn != nullptr) {
    E2EID_TRY(text, CsrString(cn->value, "commonName"));
    out.common_name = Lower(std::move(text));
  }

  int san_count = 0;
  for (const auto& names : decoded.subject_alt_names) {
    if (++san_count > 1) return Fail(BadCsr("CSR requests more than one subjectAltName"));
    for (const auto& gn : names) {
      if (gn.type != GEN_DNS) {
        return Fail(BadCsr(
            "CSR subjectAltName contains a name that is not a DNS name (IP address, URI, e-mail "
            "and other names are not issued)"));
      }
      E2EID_TRY(text, CsrString(gn.text, "subjectAltName dNSName"));
      out.dns_names.push_back(Lower(std::move(text)));
    }
  }
  return out;
}

Status CheckCsrNames(const ParsedCsr& csr, const std::vector<std::string>& dns_names) {
  const std::set<std::string> wanted(dns_names.begin(), dns_names.end());
  std::set<std::string> requested(csr.dns_names.begin(), csr.dns_names.end());
  if (csr.common_name) {
    if (!wanted.contains(*csr.common_name)) {
      return Fail(BadCsr("CSR commonName '" + *csr.common_name +
                         "' is not one of the order's identifiers"));
    }
    requested.insert(*csr.common_name);
  }
  for (const auto& name : requested) {
    if (!wanted.contains(name)) {
      return Fail(BadCsr("CSR requests '" + name + "', which is not an identifier of the order"));
    }
  }
  for (const auto& name : wanted) {
    if (!requested.contains(name)) {
      return Fail(BadCsr("CSR does not request '" + name + "', an identifier of the order"));
    }
  }
  return Ok();
}

}  // namespace e2eid::acme
