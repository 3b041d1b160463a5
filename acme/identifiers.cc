#include "acme/identifiers.h"

#include <arpa/inet.h>

#include <algorithm>

namespace e2eid::acme {
namespace {

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool LooksLikeIpAddress(const std::string& s) {
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) return true;
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) return true;
  std::string inner = s;
  if (inner.size() > 2 && inner.front() == '[' && inner.back() == ']') {
    inner = inner.substr(1, inner.size() - 2);
    if (inet_pton(AF_INET6, inner.c_str(), &v6) == 1) return true;
  }
  // Dotted digits only (e.g. "10.1", "127.0.0.1.") are IP-like too: refuse rather than guess.
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

// Syntax of a (lower-cased) DNS name. kMalformed naming the problem.
Status CheckDnsSyntax(const std::string& name) {
  const std::string quoted = "'" + name + "'";
  if (name.empty()) return Fail(Error::Malformed("DNS identifier is empty"));
  if (name.size() > 253) {
    return Fail(Error::Malformed("DNS identifier " + quoted + " is longer than 253 characters"));
  }
  if (name.back() == '.') {
    return Fail(Error::Malformed("DNS identifier " + quoted + " ends with a dot"));
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    const std::string_view label(name.data() + start, dot - start);
    if (label.empty()) {
      return Fail(Error::Malformed("DNS identifier " + quoted + " has an empty label"));
    }
    if (label.size() > 63) {
      return Fail(Error::Malformed("DNS identifier " + quoted + " has a label over 63 characters"));
    }
    for (char c : label) {
      if (!IsAlnum(c) && c != '-') {
        return Fail(Error::Malformed("DNS identifier " + quoted +
                                     " contains a character other than letters, digits, '-' "
                                     "and '.'"));
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return Fail(Error::Malformed("DNS identifier " + quoted +
                                   " has a label starting or ending with '-'"));
    }
    start = dot + 1;
  }
  return Ok();
}

bool ValidEmailLocalChar(char c) {
  if (IsAlnum(Lower(c))) return true;
  static constexpr std::string_view kSpecials = "!#$%&'*+-/=^_`{|}~.";
  return kSpecials.find(c) != std::string_view::npos;
}

}  // namespace

Json IdentifierToJson(const Identifier& id) { return {{"type", id.type}, {"value", id.value}}; }

Json IdentifiersToJson(const std::vector<Identifier>& ids) {
  Json out = Json::array();
  for (const auto& id : ids) out.push_back(IdentifierToJson(id));
  return out;
}

Result<std::vector<Identifier>> ParseIdentifiers(const Json& json) {
  if (!json.is_array()) return Fail(Error::Malformed("identifiers must be an array"));
  std::vector<Identifier> out;
  for (size_t i = 0; i < json.size(); ++i) {
    const Json& e = json[i];
    const std::string what = "identifiers[" + std::to_string(i) + "]";
    if (!e.is_object()) return Fail(Error::Malformed(what + " must be an object"));
    E2EID_TRY(type, GetString(e, "type", what));
    E2EID_TRY(value, GetString(e, "value", what));
    out.push_back({std::move(type), std::move(value)});
  }
  return out;
}

bool DnsNameUnderSuffix(std::string_view name, std::string_view suffix) {
  if (suffix.empty()) return false;
  if (name == suffix) return true;
  return name.size() > suffix.size() + 1 && name.ends_with(suffix) &&
         name[name.size() - suffix.size() - 1] == '.';
}

Result<std::string> CheckDnsIdentifier(std::string_view value, const IdentifierPolicy& policy) {
  std::string name;
  name.reserve(value.size());
  for (char c : value) name.push_back(Lower(c));
  if (LooksLikeIpAddress(name)) {
    return Fail(Error::RejectedIdentifier("'" + name +
                                          "' is an IP address; this CA issues for DNS names only "
                                          "(identifiers of type \"dns\" must not be IP literals)"));
  }
  if (name.starts_with("*.")) {
    return Fail(Error::RejectedIdentifier("wildcard name '" + name + "' is not supported"));
  }
  E2EID_CHECK_OK(CheckDnsSyntax(name));
  for (const auto& suffix : policy.dns_suffixes) {
    if (DnsNameUnderSuffix(name, suffix)) return name;
  }
  std::string allowed;
  for (const auto& s : policy.dns_suffixes) allowed += (allowed.empty() ? "" : ", ") + s;
  return Fail(Error::RejectedIdentifier("this CA does not issue for '" + name +
                                        "' (allowed DNS suffixes: " + allowed + ")"));
}

Status CheckContact(std::string_view contact) {
  if (contact == kAnonymousContact) return Ok();
  constexpr std::string_view kMailto = "mailto:";
  if (!contact.starts_with(kMailto)) {
    return Fail(ErrorCode::kUnsupportedContact,
                "contact '" + std::string(contact) + "' is not supported (only mailto: is)");
  }
  const std::string_view address = contact.substr(kMailto.size());
  const std::string quoted = "'" + std::string(contact) + "'";
  if (address.find('?') != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidContact, "contact " + quoted + " must not have header fields");
  }
  if (address.find(',') != std::string_view::npos || address.find('%') != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidContact,
                "contact " + quoted + " must name exactly one address, not encoded");
  }
  if (address.size() > 254) {
    return Fail(ErrorCode::kInvalidContact, "contact " + quoted + " is too long");
  }
  const size_t at = address.find('@');
  if (at == std::string_view::npos || address.find('@', at + 1) != std::string_view::npos) {
    return Fail(ErrorCode::kInvalidContact, "contact " + quoted + " must have exactly one '@'");
  }
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  if (local.empty() || local.size() > 64 || local.front() == '.' || local.back() == '.' ||
      !std::all_of(local.begin(), local.end(), ValidEmailLocalChar)) {
    return Fail(ErrorCode::kInvalidContact, "contact " + quoted + " has an invalid local part");
  }
  std::string lower_domain;
  for (char c : domain) lower_domain.push_back(Lower(c));
  if (lower_domain.find('.') == std::string::npos || !CheckDnsSyntax(lower_domain) ||
      LooksLikeIpAddress(lower_domain)) {
    return Fail(ErrorCode::kInvalidContact, "contact " + quoted + " has an invalid domain");
  }
  return Ok();
}

}  // namespace e2eid::acme
