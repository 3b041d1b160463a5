#include "ca/x509.h"

#include <openssl/pem.h>

#include "crypto/digest.h"

namespace e2eid::ca {

using crypto::OpenSslError;

Result<std::string> CertificateToPem(X509* cert) {
  E2EID_TRY(bio, crypto::NewMemBio());
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return Fail(OpenSslError("PEM_write_bio_X509"));
  return crypto::BioToString(bio.get());
}

Result<Bytes> CertificateToDer(X509* cert) {
  unsigned char* raw = nullptr;
  const int len = i2d_X509(cert, &raw);
  crypto::OpenSslBufferPtr owned(raw);
  if (len <= 0) return Fail(OpenSslError("i2d_X509"));
  return Bytes(raw, raw + len);
}

Result<crypto::X509Ptr> CertificateFromPem(std::string_view pem) {
  E2EID_TRY(bio, crypto::MemBioOver(pem));
  crypto::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    crypto::ClearOpenSslErrors();
    return Fail(Error::Malformed("no PEM certificate found"));
  }
  return cert;
}

Result<crypto::X509Ptr> CertificateFromDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  crypto::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) {
    crypto::ClearOpenSslErrors();
    return Fail(Error::Malformed("certificate is not valid DER"));
  }
  if (p != der.data() + der.size()) {
    return Fail(Error::Malformed("trailing data after the DER certificate"));
  }
  return cert;
}

Result<std::string> CertificateFingerprint(X509* cert) {
  E2EID_TRY(der, CertificateToDer(cert));
  return HexEncode(crypto::Sha256(der));
}

Result<std::string> SerialHex(X509* cert) {
  E2EID_TRY(bytes, crypto::Asn1IntegerToBytes(X509_get0_serialNumber(cert)));
  std::string hex = HexEncode(bytes);
  const size_t first = hex.find_first_not_of('0');
  return first == std::string::npos ? std::string("0") : hex.substr(first);
}

Result<crypto::X509NamePtr> BuildName(
    const std::vector<std::pair<std::string, std::string>>& attributes) {
  crypto::X509NamePtr name(X509_NAME_new());
  if (!name) return Fail(OpenSslError("X509_NAME_new"));
  for (const auto& [attr, value] : attributes) {
    int nid = NID_undef;
    if (attr == "CN")
      nid = NID_commonName;
    else if (attr == "O")
      nid = NID_organizationName;
    else if (attr == "OU")
      nid = NID_organizationalUnitName;
    else if (attr == "C")
      nid = NID_countryName;
    else if (attr == "L")
      nid = NID_localityName;
    else if (attr == "ST")
      nid = NID_stateOrProvinceName;
    else if (attr == "serialNumber")
      nid = NID_serialNumber;
    if (value.empty()) {
      return Fail(Error::Malformed("subject attribute " + attr + " must not be empty"));
    }
    int ok = 0;
    if (nid != NID_undef) {
      ok = X509_NAME_add_entry_by_NID(name.get(), nid, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0);
    } else if (attr == "displayName") {
      // Netscape/Wire displayName: 2.16.840.1.113730.3.1.241, UTF8String.
      crypto::Asn1ObjectPtr oid(OBJ_txt2obj("2.16.840.1.113730.3.1.241", 1));
      if (!oid) return Fail(OpenSslError("OBJ_txt2obj"));
      ok = X509_NAME_add_entry_by_OBJ(name.get(), oid.get(), V_ASN1_UTF8STRING,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0);
    } else {
      return Fail(Error::Malformed("unsupported subject attribute '" + attr + "'"));
    }
    if (ok != 1) {
      crypto::ClearOpenSslErrors();
      return Fail(Error::Malformed("subject attribute " + attr +
                                   " is not acceptable (too long or invalid characters)"));
    }
  }
  return name;
}

Status AddConfExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
  crypto::X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext) return Fail(OpenSslError(std::string("building extension ") + OBJ_nid2sn(nid)));
  if (X509_add_ext(cert, ext.get(), -1) != 1) return Fail(OpenSslError("X509_add_ext"));
  return Ok();
}

namespace {

bool IsPrintableAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return !s.empty();
}

}  // namespace

Status CheckIa5Name(std::string_view name) {
  if (!IsPrintableAscii(name)) {
    return Fail(Error::Malformed("name '" + std::string(name) +
                                 "' must be non-empty printable ASCII without spaces"));
  }
  return Ok();
}

namespace {

Result<crypto::GeneralNamePtr> MakeGeneralName(int type, std::string_view value) {
  E2EID_CHECK_OK(CheckIa5Name(value));
  crypto::GeneralNamePtr gn(GENERAL_NAME_new());
  if (!gn) return Fail(OpenSslError("GENERAL_NAME_new"));
  crypto::Asn1StringPtr ia5(ASN1_IA5STRING_new());
  if (!ia5) return Fail(OpenSslError("ASN1_IA5STRING_new"));
  if (ASN1_STRING_set(ia5.get(), value.data(), static_cast<int>(value.size())) != 1) {
    return Fail(OpenSslError("ASN1_STRING_set"));
  }
  GENERAL_NAME_set0_value(gn.get(), type, ia5.release());
  return gn;
}

Status AddGeneralNames(GENERAL_NAMES* names, int type, const std::vector<std::string>& values) {
  for (const auto& v : values) {
    E2EID_TRY(gn, MakeGeneralName(type, v));
    GENERAL_NAME* raw = gn.release();
    if (sk_GENERAL_NAME_push(names, raw) == 0) {
      GENERAL_NAME_free(raw);
      return Fail(OpenSslError("sk_GENERAL_NAME_push"));
    }
  }
  return Ok();
}

Status AddExtension(X509* cert, int nid, bool critical, void* value) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1) {
    return Fail(OpenSslError(std::string("adding extension ") + OBJ_nid2sn(nid)));
  }
  return Ok();
}

}  // namespace

Status AddSubjectAltName(X509* cert, const std::vector<std::string>& dns_names,
                         const std::vector<std::string>& uris, bool critical) {
  crypto::GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) return Fail(OpenSslError("GENERAL_NAMES_new"));
  E2EID_CHECK_OK(AddGeneralNames(names.get(), GEN_DNS, dns_names));
  E2EID_CHECK_OK(AddGeneralNames(names.get(), GEN_URI, uris));
  return AddExtension(cert, NID_subject_alt_name, critical, names.get());
}

Status AddUriNameConstraints(X509* cert, const std::vector<std::string>& permitted_uri_hosts) {
  using NameConstraintsPtr =
      std::unique_ptr<NAME_CONSTRAINTS, crypto::Deleter<NAME_CONSTRAINTS_free>>;
  NameConstraintsPtr nc(NAME_CONSTRAINTS_new());
  if (!nc) return Fail(OpenSslError("NAME_CONSTRAINTS_new"));
  nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
  if (nc->permittedSubtrees == nullptr) return Fail(OpenSslError("sk_GENERAL_SUBTREE_new_null"));
  for (const auto& host : permitted_uri_hosts) {
    E2EID_TRY(gn, MakeGeneralName(GEN_URI, host));
    GENERAL_SUBTREE* subtree = GENERAL_SUBTREE_new();
    if (subtree == nullptr) return Fail(OpenSslError("GENERAL_SUBTREE_new"));
    GENERAL_NAME_free(subtree->base);
    subtree->base = gn.release();
    if (sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, subtree) == 0) {
      GENERAL_SUBTREE_free(subtree);
      return Fail(OpenSslError("sk_GENERAL_SUBTREE_push"));
    }
  }
  return AddExtension(cert, NID_name_constraints, /*critical=*/true, nc.get());
}

Status AddCrlDistributionPoint(X509* cert, std::string_view url) {
  crypto::CrlDistPointsPtr points(sk_DIST_POINT_new_null());
  if (!points) return Fail(OpenSslError("sk_DIST_POINT_new_null"));
  crypto::DistPointPtr point(DIST_POINT_new());
  if (!point) return Fail(OpenSslError("DIST_POINT_new"));
  point->distpoint = DIST_POINT_NAME_new();
  if (point->distpoint == nullptr) return Fail(OpenSslError("DIST_POINT_NAME_new"));
  point->distpoint->type = 0;  // fullName
  point->distpoint->name.fullname = GENERAL_NAMES_new();
  if (point->distpoint->name.fullname == nullptr) return Fail(OpenSslError("GENERAL_NAMES_new"));
  E2EID_CHECK_OK(AddGeneralNames(point->distpoint->name.fullname, GEN_URI, {std::string(url)}));
  DIST_POINT* raw = point.release();
  if (sk_DIST_POINT_push(points.get(), raw) == 0) {
    DIST_POINT_free(raw);
    return Fail(OpenSslError("sk_DIST_POINT_push"));
  }
  return AddExtension(cert, NID_crl_distribution_points, false, points.get());
}

Status AddAuthorityInfoAccess(X509* cert, std::string_view ocsp_url,
                              std::string_view ca_issuers_url) {
  crypto::AuthorityInfoAccessPtr aia(sk_ACCESS_DESCRIPTION_new_null());
  if (!aia) return Fail(OpenSslError("sk_ACCESS_DESCRIPTION_new_null"));
  auto add = [&](int method_nid, std::string_view url) -> Status {
    if (url.empty()) return Ok();
    crypto::AccessDescriptionPtr ad(ACCESS_DESCRIPTION_new());
    if (!ad) return Fail(OpenSslError("ACCESS_DESCRIPTION_new"));
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(method_nid);
    E2EID_TRY(gn, MakeGeneralName(GEN_URI, url));
    GENERAL_NAME_free(ad->location);
    ad->location = gn.release();
    ACCESS_DESCRIPTION* raw = ad.release();
    if (sk_ACCESS_DESCRIPTION_push(aia.get(), raw) == 0) {
      ACCESS_DESCRIPTION_free(raw);
      return Fail(OpenSslError("sk_ACCESS_DESCRIPTION_push"));
    }
    return Ok();
  };
  E2EID_CHECK_OK(add(NID_ad_OCSP, ocsp_url));
  E2EID_CHECK_OK(add(NID_ad_ca_issuers, ca_issuers_url));
  if (sk_ACCESS_DESCRIPTION_num(aia.get()) == 0) return Ok();
  return AddExtension(cert, NID_info_access, false, aia.get());
}

Status AddOcspNoCheck(X509* cert) {
  return AddConfExtension(cert, nullptr, NID_id_pkix_OCSP_noCheck, "");
}

namespace {

// Everything of SetBasics but the key.
Status SetBasicsWithoutKey(X509* cert, std::span<const uint8_t> serial, X509_NAME* subject,
                           X509_NAME* issuer_name, TimePoint not_before, TimePoint not_after) {
  if (X509_set_version(cert, X509_VERSION_3) != 1) return Fail(OpenSslError("X509_set_version"));
  E2EID_TRY(serial_int, crypto::Asn1IntegerFromBytes(serial));
  if (X509_set_serialNumber(cert, serial_int.get()) != 1) {
    return Fail(OpenSslError("X509_set_serialNumber"));
  }
  if (X509_set_subject_name(cert, subject) != 1 || X509_set_issuer_name(cert, issuer_name) != 1) {
    return Fail(OpenSslError("X509_set_*_name"));
  }
  E2EID_TRY(nb, crypto::Asn1TimeFromTimePoint(not_before));
  E2EID_TRY(na, crypto::Asn1TimeFromTimePoint(not_after));
  if (X509_set1_notBefore(cert, nb.get()) != 1 || X509_set1_notAfter(cert, na.get()) != 1) {
    return Fail(OpenSslError("X509_set1_notBefore/notAfter"));
  }
  return Ok();
}

}  // namespace

Status SetBasics(X509* cert, std::span<const uint8_t> serial, X509_NAME* subject,
                 X509_NAME* issuer_name, TimePoint not_before, TimePoint not_after,
                 const crypto::PublicKey& public_key) {
  E2EID_CHECK_OK(SetBasicsWithoutKey(cert, serial, subject, issuer_name, not_before, not_after));
  return public_key.SetX509Pubkey(X509_get_X509_PUBKEY(cert));
}

Status SetBasics(X509* cert, std::span<const uint8_t> serial, X509_NAME* subject,
                 X509_NAME* issuer_name, TimePoint not_before, TimePoint not_after,
                 EVP_PKEY* public_key) {
  E2EID_CHECK_OK(SetBasicsWithoutKey(cert, serial, subject, issuer_name, not_before, not_after));
  if (X509_set_pubkey(cert, public_key) != 1) return Fail(OpenSslError("X509_set_pubkey"));
  return Ok();
}

Status SignCertificate(X509* cert, const crypto::PrivateKey& key) {
  if (X509_sign(cert, key.get(), crypto::SignatureDigest(key.type())) <= 0) {
    return Fail(OpenSslError("X509_sign"));
  }
  return Ok();
}

}  // namespace e2eid::ca
