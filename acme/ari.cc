#include "acme/ari.h"

namespace e2eid::acme {
namespace {

std::string HexWithoutLeadingZeros(std::span<const uint8_t> magnitude) {
  std::string hex = HexEncode(magnitude);
  const size_t first = hex.find_first_not_of('0');
  if (first == std::string::npos) return "0";
  return hex.substr(first);
}

}  // namespace

Result<AriCertId> ParseAriCertId(std::string_view text) {
  const size_t dot = text.find('.');
  if (dot == std::string_view::npos || text.find('.', dot + 1) != std::string_view::npos) {
    return Fail(
        Error::Malformed("certificate identifier must be base64url(AKI) '.' base64url(serial)"));
  }
  auto aki = Base64UrlDecode(text.substr(0, dot));
  auto serial = Base64UrlDecode(text.substr(dot + 1));
  if (!aki || aki->empty()) {
    return Fail(
        Error::Malformed("certificate identifier: the key identifier part is not "
                         "non-empty base64url"));
  }
  if (!serial || serial->empty()) {
    return Fail(
        Error::Malformed("certificate identifier: the serial part is not non-empty base64url"));
  }
  const Bytes& s = *serial;
  if ((s[0] & 0x80) != 0) {
    return Fail(Error::Malformed("certificate identifier: the serial is negative"));
  }
  if (s.size() > 1 && s[0] == 0 && (s[1] & 0x80) == 0) {
    return Fail(Error::Malformed(
        "certificate identifier: the serial is not a minimal DER INTEGER encoding"));
  }
  std::span<const uint8_t> magnitude(s);
  if (magnitude.size() > 1 && magnitude[0] == 0) magnitude = magnitude.subspan(1);
  if (magnitude.size() > 20) {
    return Fail(Error::Malformed("certificate identifier: the serial is longer than 20 octets"));
  }
  AriCertId out;
  out.key_identifier = std::move(*aki);
  out.serial_hex = HexWithoutLeadingZeros(magnitude);
  out.canonical = Base64UrlEncode(out.key_identifier) + "." + Base64UrlEncode(s);
  return out;
}

Result<Bytes> AuthorityKeyIdOf(X509* cert) {
  const ASN1_OCTET_STRING* keyid = X509_get0_authority_key_id(cert);
  if (keyid == nullptr || ASN1_STRING_length(keyid) <= 0) {
    crypto::ClearOpenSslErrors();
    return Fail(Error::Malformed("certificate has no authorityKeyIdentifier keyIdentifier"));
  }
  const uint8_t* data = ASN1_STRING_get0_data(keyid);
  return Bytes(data, data + ASN1_STRING_length(keyid));
}

Result<std::string> AriCertIdOf(X509* cert) {
  E2EID_TRY(aki, AuthorityKeyIdOf(cert));
  E2EID_TRY(magnitude, crypto::Asn1IntegerToBytes(X509_get0_serialNumber(cert)));
  Bytes content;
  if (!magnitude.empty() && (magnitude[0] & 0x80) != 0) content.push_back(0);
  content.insert(content.end(), magnitude.begin(), magnitude.end());
  return Base64UrlEncode(aki) + "." + Base64UrlEncode(content);
}

RenewalWindow SuggestedRenewalWindow(TimePoint not_before, TimePoint not_after, bool revoked,
                                     TimePoint now) {
  if (revoked) return {now - std::chrono::hours(1), now - std::chrono::seconds(1)};
  const auto lifetime = not_after - not_before;
  return {not_before + lifetime * 2 / 3, not_before + lifetime * 5 / 6};
}

}  // namespace e2eid::acme
