#include "acme/wire.h"

#include <openssl/x509v3.h>

#include <set>

#include "acme/csr.h"
#include "core/json.h"

namespace e2eid::acme {
namespace {

constexpr std::string_view kScheme = "wireapp://";
constexpr std::string_view kDisplayNameOid = "2.16.840.1.113730.3.1.241";

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool IsHandleChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool IsDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

Status CheckDomain(std::string_view domain, std::string_view what) {
  if (domain.empty() || domain.size() > 253) {
    return Fail(Error::Malformed(std::string(what) + ": the domain is empty or too long"));
  }
  for (char c : domain) {
    if (!IsDomainChar(c)) {
      return Fail(Error::Malformed(std::string(what) + ": the domain '" + std::string(domain) +
                                   "' is not a lower-case DNS name"));
    }
  }
  return Ok();
}

Error BadCsr(std::string d) { return Error(ErrorCode::kBadCsr, std::move(d)); }

}  // namespace

Result<WireClientId> ParseWireClientId(std::string_view uri) {
  const std::string what = "client-id '" + std::string(uri) + "'";
  if (!uri.starts_with(kScheme)) {
    return Fail(Error::Malformed(what + " does not start with wireapp://"));
  }
  std::string_view rest = uri.substr(kScheme.size());
  const size_t at = rest.find('@');
  if (at == std::string_view::npos || rest.find('@', at + 1) != std::string_view::npos) {
    return Fail(Error::Malformed(what + " must contain exactly one '@'"));
  }
  std::string_view ids = rest.substr(0, at);
  WireClientId out;
  out.domain = std::string(rest.substr(at + 1));
  E2EID_CHECK_OK(CheckDomain(out.domain, what));
  size_t sep = ids.find('!');
  size_t sep_len = 1;
  if (sep == std::string_view::npos) {
    sep = ids.find("%21");
    sep_len = 3;
  }
  if (sep == std::string_view::npos) {
    return Fail(Error::Malformed(what + " must separate user and device id with '!'"));
  }
  out.user_id = std::string(ids.substr(0, sep));
  out.device_id = std::string(ids.substr(sep + sep_len));
  auto user_bytes = Base64UrlDecode(out.user_id);
  if (out.user_id.size() != 22 || !user_bytes || user_bytes->size() != 16) {
    return Fail(Error::Malformed(what + ": the user id is not base64url of 16 bytes"));
  }
  if (out.device_id.empty() || out.device_id.size() > 16 || out.device_id[0] == '0') {
    return Fail(Error::Malformed(
        what + ": the device id must be 1 to 16 lower-case hex digits without leading zeros"));
  }
  for (char c : out.device_id) {
    if (!IsLowerHex(c)) {
      return Fail(Error::Malformed(what + ": the device id is not lower-case hex"));
    }
  }
  return out;
}

std::string WireHandleUri(std::string_view handle, std::string_view domain) {
  return std::string(kScheme) + "%40" + std::string(handle) + "@" + std::string(domain);
}

Result<std::pair<std::string, std::string>> ParseWireHandleUri(std::string_view uri) {
  const std::string what = "handle '" + std::string(uri) + "'";
  const std::string prefix = std::string(kScheme) + "%40";
  if (!uri.starts_with(prefix)) {
    return Fail(Error::Malformed(what + " does not start with wireapp://%40"));
  }
  std::string_view rest = uri.substr(prefix.size());
  const size_t at = rest.find('@');
  if (at == std::string_view::npos || rest.find('@', at + 1) != std::string_view::npos) {
    return Fail(Error::Malformed(what + " must contain exactly one '@' after the handle"));
  }
  std::string handle(rest.substr(0, at));
  std::string domain(rest.substr(at + 1));
  if (handle.empty() || handle.size() > 256) {
    return Fail(Error::Malformed(what + ": the handle is empty or too long"));
  }
  for (char c : handle) {
    if (!IsHandleChar(c)) {
      return Fail(Error::Malformed(what + ": the handle may only contain [a-z0-9_.-]"));
    }
  }
  E2EID_CHECK_OK(CheckDomain(domain, what));
  return std::make_pair(std::move(handle), std::move(domain));
}

Result<std::string> WireUserIdFromUuid(std::string_view uuid) {
  if (uuid.size() != 36) {
    return Fail(Error::InvalidArgument("'" + std::string(uuid) + "' is not a UUID"));
  }
  std::string hex;
  for (size_t i = 0; i < uuid.size(); ++i) {
    const char c = uuid[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return Fail(Error::InvalidArgument("'" + std::string(uuid) + "' is not a UUID"));
      continue;
    }
    const char lower = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!IsLowerHex(lower)) {
      return Fail(Error::InvalidArgument("'" + std::string(uuid) + "' is not a UUID"));
    }
    hex.push_back(lower);
  }
  E2EID_TRY(bytes, HexDecode(hex));
  return Base64UrlEncode(bytes);
}

Result<WireIdentity> ParseWireIdentifier(std::string_view type, std::string_view value,
                                         std::string_view domain) {
  const bool device = type == kWireDeviceType;
  if (!device && type != kWireUserType) {
    return Fail(Error(ErrorCode::kUnsupportedIdentifier,
                      "identifier type '" + std::string(type) + "' is not a Wire identifier"));
  }
  const std::string what = std::string(type) + " identifier";
  auto parsed = ParseJson(value, what);
  if (!parsed || !parsed->is_object()) {
    return Fail(
        Error::Malformed(what + ": the value must be a JSON object serialised as a string"));
  }
  const Json& j = *parsed;
  std::set<std::string> allowed = {"name", "domain", "handle"};
  if (device) allowed.insert("client-id");
  for (const auto& [key, member] : j.items()) {
    if (!allowed.contains(key)) {
      return Fail(Error::Malformed(what + ": unknown member '" + key + "'"));
    }
    if (!member.is_string() || member.get_ref<const std::string&>().empty()) {
      return Fail(Error::Malformed(what + ": member '" + key + "' must be a non-empty string"));
    }
  }
  for (const auto& key : allowed) {
    if (!j.contains(key)) return Fail(Error::Malformed(what + ": member '" + key + "' is missing"));
  }
  WireIdentity out;
  out.display_name = j.at("name").get<std::string>();
  out.domain = j.at("domain").get<std::string>();
  out.handle_uri = j.at("handle").get<std::string>();
  if (out.display_name.size() > 256) {
    return Fail(Error::Malformed(what + ": 'name' is longer than 256 characters"));
  }
  if (out.domain != domain) {
    return Fail(Error::RejectedIdentifier(what + ": domain '" + out.domain +
                                          "' is not this CA's domain '" + std::string(domain) +
                                          "'"));
  }
  auto handle = ParseWireHandleUri(out.handle_uri);
  if (!handle) return Fail(std::move(handle.error()).Context(what));
  if (handle->second != out.domain) {
    return Fail(Error::RejectedIdentifier(what + ": the handle's domain '" + handle->second +
                                          "' differs from 'domain'"));
  }
  out.handle = handle->first;
  if (device) {
    auto client = ParseWireClientId(j.at("client-id").get<std::string>());
    if (!client) return Fail(std::move(client.error()).Context(what));
    if (client->domain != out.domain) {
      return Fail(Error::RejectedIdentifier(what + ": the client-id's domain '" + client->domain +
                                            "' differs from 'domain'"));
    }
    out.client = std::move(*client);
  }
  return out;
}

Result<WireIdentity> MatchWireIdentifiers(const WireIdentity& user, const WireIdentity& device) {
  if (user.display_name != device.display_name) {
    return Fail(Error::RejectedIdentifier(
        "the wireapp-user and wireapp-device identifiers have different 'name' values"));
  }
  if (user.handle_uri != device.handle_uri) {
    return Fail(Error::RejectedIdentifier(
        "the wireapp-user and wireapp-device identifiers have different 'handle' values"));
  }
  if (user.domain != device.domain) {
    return Fail(Error::RejectedIdentifier(
        "the wireapp-user and wireapp-device identifiers have different 'domain' values"));
  }
  return device;
}

Result<crypto::PublicKey> CheckWireCsr(std::span<const uint8_t> der, const WireIdentity& identity) {
  E2EID_TRY(decoded, DecodeCsr(der));
  crypto::PublicKey key = std::move(decoded.public_key);
  if (key.type() == crypto::KeyType::kRsa) {
    return Fail(BadCsr("device certificates need an Ed25519, P-256, P-384 or P-521 key, not RSA"));
  }

  // Subject: O = domain, displayName = name, optionally CN = name; nothing else.
  bool have_o = false;
  bool have_display = false;
  for (const auto& attribute : decoded.subject) {
    if (attribute.oid == kOidOrganizationName) {
      E2EID_TRY(o, CsrString(attribute.value, "organizationName"));
      if (have_o || o != identity.domain) {
        return Fail(BadCsr("CSR subject O must be the domain '" + identity.domain + "'"));
      }
      have_o = true;
    } else if (attribute.oid == kDisplayNameOid) {
      E2EID_TRY(name, CsrString(attribute.value, "displayName"));
      if (have_display || name != identity.display_name) {
        return Fail(BadCsr("CSR subject displayName must be the identifier's name '" +
                           identity.display_name + "'"));
      }
      have_display = true;
    } else if (attribute.oid == kOidCommonName) {
      E2EID_TRY(cn, CsrString(attribute.value, "commonName"));
      if (cn != identity.display_name) {
        return Fail(BadCsr("CSR subject CN, when present, must be the identifier's name"));
      }
    } else {
      return Fail(BadCsr("CSR subject has an attribute other than O, displayName and CN"));
    }
  }
  if (!have_o) return Fail(BadCsr("CSR subject has no O (the domain)"));
  if (!have_display) {
    return Fail(BadCsr("CSR subject has no displayName (OID 2.16.840.1.113730.3.1.241)"));
  }

  // subjectAltName: exactly the client-id and handle URIs.
  int san_count = 0;
  std::multiset<std::string> uris;
  for (const auto& names : decoded.subject_alt_names) {
    if (++san_count > 1) return Fail(BadCsr("CSR requests more than one subjectAltName"));
    for (const auto& gn : names) {
      if (gn.type != GEN_URI) {
        return Fail(BadCsr("CSR subjectAltName holds a name that is not a URI"));
      }
      E2EID_TRY(text, CsrString(gn.text, "subjectAltName URI"));
      uris.insert(std::move(text));
    }
  }
  if (san_count == 0) return Fail(BadCsr("CSR has no subjectAltName"));
  if (uris.size() != 2) {
    return Fail(BadCsr("CSR subjectAltName must hold exactly two URIs (client-id and handle)"));
  }
  bool have_client = false;
  bool have_handle = false;
  for (const auto& uri : uris) {
    if (uri == identity.handle_uri && !have_handle) {
      have_handle = true;
      continue;
    }
    auto client = ParseWireClientId(uri);
    if (client && client->Uri() == identity.client.Uri() && !have_client) {
      have_client = true;
      continue;
    }
    return Fail(BadCsr("CSR requests URI '" + uri + "', which is not an identifier of the order"));
  }
  if (!have_client || !have_handle) {
    return Fail(BadCsr("CSR must request the client-id and the handle URIs"));
  }
  return key;
}

}  // namespace e2eid::acme
