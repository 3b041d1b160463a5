#include "acme/csr.h"

#include <openssl/objects.h>

#include <set>

#include "crypto/openssl.h"

namespace e2eid::acme {
namespace {

using crypto::ClearOpenSslErrors;

Error BadCsr(std::string detail) { return Error(ErrorCode::kBadCsr, std::move(detail)); }

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace

Result<std::string> CsrString(const ASN1_STRING* s, std::string_view what) {
  unsigned char* raw = nullptr;
  const int len = ASN1_STRING_to_UTF8(&raw, s);
  crypto::OpenSslBufferPtr owned(raw);
  if (len < 0 || raw == nullptr) {
    ClearOpenSslErrors();
    return Fail(BadCsr("CSR " + std::string(what) + " is not a valid string"));
  }
  std::string out(reinterpret_cast<const char*>(raw), static_cast<size_t>(len));
  if (out.find('\0') != std::string::npos) {
    return Fail(BadCsr("CSR " + std::string(what) + " contains a NUL character"));
  }
  return out;
}

Result<DecodedCsr> DecodeCsr(std::span<const uint8_t> der) {
  if (der.empty()) return Fail(BadCsr("CSR is empty"));
  const unsigned char* p = der.data();
  crypto::X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!req) {
    ClearOpenSslErrors();
    return Fail(BadCsr("CSR is not a DER PKCS#10 certification request"));
  }
  if (p != der.data() + der.size()) {
    return Fail(BadCsr("CSR has trailing bytes after the DER structure"));
  }

  // Signature algorithm: no MD5/SHA-1.
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  const int sig_nid = X509_REQ_get_signature_nid(req.get());
  if (OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) != 1) {
    ClearOpenSslErrors();
    return Fail(BadCsr("CSR signature algorithm is not recognised"));
  }
  if (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_md4 || md_nid == NID_md5_sha1) {
    return Fail(BadCsr("CSR signature algorithm " + std::string(OBJ_nid2sn(sig_nid)) +
                       " uses a broken digest"));
  }

  EVP_PKEY* pkey = X509_REQ_get0_pubkey(req.get());
  if (pkey == nullptr) {
    ClearOpenSslErrors();
    return Fail(BadCsr("CSR public key cannot be decoded"));
  }
  auto key = crypto::PublicKey::FromEvpPkey(pkey);
  if (!key) return Fail(BadCsr("CSR public key is not acceptable: " + key.error().detail()));
  if (X509_REQ_verify(req.get(), pkey) != 1) {
    ClearOpenSslErrors();
    return Fail(BadCsr("CSR signature is invalid (not signed by the CSR's own key)"));
  }
  return DecodedCsr{std::move(req), std::move(*key)};
}

Result<ParsedCsr> ParseCsr(std::span<const uint8_t> der) {
  E2EID_TRY(decoded, DecodeCsr(der));
  crypto::X509ReqPtr req = std::move(decoded.req);
  ParsedCsr out{std::move(decoded.public_key), {}, std::nullopt};

  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  if (subject != nullptr) {
    const int cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (cn >= 0) {
      if (X509_NAME_get_index_by_NID(subject, NID_commonName, cn) >= 0) {
        return Fail(BadCsr("CSR subject has more than one commonName"));
      }
      const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn));
      E2EID_TRY(text, CsrString(data, "commonName"));
      out.common_name = Lower(std::move(text));
    }
  }

  crypto::X509ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
  ClearOpenSslErrors();  // absent extension requests leave an error on some versions
  int san_count = 0;
  for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    if (++san_count > 1) return Fail(BadCsr("CSR requests more than one subjectAltName"));
    crypto::GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
    if (!names) {
      ClearOpenSslErrors();
      return Fail(BadCsr("CSR subjectAltName cannot be decoded"));
    }
    for (int j = 0; j < sk_GENERAL_NAME_num(names.get()); ++j) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), j);
      if (gn->type != GEN_DNS) {
        return Fail(BadCsr(
            "CSR subjectAltName contains a name that is not a DNS name (IP address, URI, e-mail "
            "and other names are not issued)"));
      }
      E2EID_TRY(text, CsrString(gn->d.dNSName, "subjectAltName dNSName"));
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
