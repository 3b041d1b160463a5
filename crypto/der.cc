#include "crypto/der.h"

#include <cstdio>

namespace e2eid::crypto::der {
namespace {

Error Bad(std::string_view what, std::string_view problem) {
  return Error::Malformed("DER: " + std::string(what) + ": " + std::string(problem));
}

std::string TagText(uint8_t tag) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", tag);
  return buf;
}

// Appends the minimal definite length.
void AppendLength(Bytes& out, size_t len) {
  if (len < 0x80) {
    out.push_back(static_cast<uint8_t>(len));
    return;
  }
  uint8_t octets[sizeof(size_t)];
  size_t n = 0;
  for (size_t v = len; v != 0; v >>= 8) octets[n++] = static_cast<uint8_t>(v & 0xff);
  out.push_back(static_cast<uint8_t>(0x80 | n));
  while (n > 0) out.push_back(octets[--n]);
}

}  // namespace

Result<Element> Reader::Next(std::string_view what) {
  if (rest_.empty()) return Fail(Bad(what, "missing (end of data)"));
  const uint8_t tag = rest_[0];
  if ((tag & 0x1f) == 0x1f) return Fail(Bad(what, "high-tag-number form is not supported"));
  if (tag == 0x00) return Fail(Bad(what, "end-of-contents octets are not DER"));
  if (rest_.size() < 2) return Fail(Bad(what, "truncated (no length)"));
  const uint8_t first = rest_[1];
  size_t header = 2;
  size_t len = 0;
  if (first < 0x80) {
    len = first;
  } else if (first == 0x80) {
    return Fail(Bad(what, "indefinite length is not DER"));
  } else {
    const size_t octets = first & 0x7f;
    if (octets > kMaxLengthOctets) return Fail(Bad(what, "length is too large"));
    if (rest_.size() < 2 + octets) return Fail(Bad(what, "truncated (length octets)"));
    if (rest_[2] == 0) return Fail(Bad(what, "length has a leading zero octet (not minimal)"));
    for (size_t i = 0; i < octets; ++i) len = (len << 8) | rest_[2 + i];
    if (len < 0x80) return Fail(Bad(what, "long-form length below 128 (not minimal)"));
    header += octets;
  }
  if (len > rest_.size() - header) {
    return Fail(Bad(what, "length " + std::to_string(len) + " exceeds the " +
                              std::to_string(rest_.size() - header) + " remaining bytes"));
  }
  Element e;
  e.tag = tag;
  e.contents = rest_.subspan(header, len);
  e.encoding = rest_.first(header + len);
  rest_ = rest_.subspan(header + len);
  return e;
}

Result<Element> Reader::Next(uint8_t tag, std::string_view what) {
  if (rest_.empty()) return Fail(Bad(what, "missing (end of data)"));
  if (rest_[0] != tag) {
    return Fail(Bad(what, "expected tag " + TagText(tag) + ", found " + TagText(rest_[0])));
  }
  return Next(what);
}

Result<std::optional<Element>> Reader::Optional(uint8_t tag, std::string_view what) {
  if (rest_.empty() || rest_[0] != tag) return std::optional<Element>();
  E2EID_TRY(e, Next(what));
  return std::optional<Element>(e);
}

Status Reader::ExpectEnd(std::string_view what) const {
  if (!rest_.empty()) return Fail(Bad(what, "unexpected trailing bytes"));
  return Ok();
}

Result<Element> ReadExactlyOne(std::span<const uint8_t> data, uint8_t tag, std::string_view what) {
  Reader r(data);
  E2EID_TRY(e, r.Next(tag, what));
  E2EID_CHECK_OK(r.ExpectEnd(what));
  return e;
}

Result<std::span<const uint8_t>> UnsignedInteger(const Element& e, std::string_view what) {
  if (e.tag != kInteger) return Fail(Bad(what, "not an INTEGER"));
  const auto c = e.contents;
  if (c.empty()) return Fail(Bad(what, "empty INTEGER"));
  if (c.size() > 1 && ((c[0] == 0x00 && (c[1] & 0x80) == 0) || (c[0] == 0xff && (c[1] & 0x80)))) {
    return Fail(Bad(what, "INTEGER is not minimally encoded"));
  }
  if (c[0] & 0x80) return Fail(Bad(what, "INTEGER is negative"));
  if (c.size() > 1 && c[0] == 0x00) return c.subspan(1);
  return c;
}

Result<std::span<const uint8_t>> BitStringBytes(const Element& e, std::string_view what) {
  if (e.tag != kBitString) return Fail(Bad(what, "not a BIT STRING"));
  if (e.contents.empty()) return Fail(Bad(what, "BIT STRING without the unused-bits octet"));
  if (e.contents[0] != 0) return Fail(Bad(what, "BIT STRING has unused bits"));
  return e.contents.subspan(1);
}

Result<bool> Boolean(const Element& e, std::string_view what) {
  if (e.tag != kBoolean) return Fail(Bad(what, "not a BOOLEAN"));
  if (e.contents.size() != 1 || (e.contents[0] != 0x00 && e.contents[0] != 0xff)) {
    return Fail(Bad(what, "BOOLEAN is not 0x00 or 0xff"));
  }
  return e.contents[0] == 0xff;
}

Result<std::span<const uint8_t>> Oid(const Element& e, std::string_view what) {
  if (e.tag != kOid) return Fail(Bad(what, "not an OBJECT IDENTIFIER"));
  const auto c = e.contents;
  if (c.empty()) return Fail(Bad(what, "empty OBJECT IDENTIFIER"));
  if (c.back() & 0x80) return Fail(Bad(what, "OBJECT IDENTIFIER ends inside an arc"));
  bool arc_start = true;
  for (uint8_t b : c) {
    if (arc_start && b == 0x80) return Fail(Bad(what, "OBJECT IDENTIFIER arc is not minimal"));
    arc_start = (b & 0x80) == 0;
  }
  return c;
}

Result<std::string> OidToText(std::span<const uint8_t> contents) {
  Element e{kOid, contents, {}};
  E2EID_TRY(c, Oid(e, "OBJECT IDENTIFIER"));
  std::string out;
  uint64_t arc = 0;
  bool first = true;
  for (uint8_t b : c) {
    if (arc > (UINT64_MAX >> 7)) return Fail(Bad("OBJECT IDENTIFIER", "arc is too large"));
    arc = (arc << 7) | (b & 0x7f);
    if (b & 0x80) continue;
    if (first) {
      // The first subidentifier packs two arcs: 40 * X + Y with X in {0, 1, 2}.
      const uint64_t x = arc < 40 ? 0 : arc < 80 ? 1 : 2;
      out = std::to_string(x) + "." + std::to_string(arc - 40 * x);
      first = false;
    } else {
      out += "." + std::to_string(arc);
    }
    arc = 0;
  }
  return out;
}

void AppendElement(Bytes& out, uint8_t tag, std::span<const uint8_t> contents) {
  out.push_back(tag);
  AppendLength(out, contents.size());
  out.insert(out.end(), contents.begin(), contents.end());
}

void AppendUnsignedInteger(Bytes& out, std::span<const uint8_t> magnitude) {
  while (!magnitude.empty() && magnitude[0] == 0) magnitude = magnitude.subspan(1);
  const bool pad = magnitude.empty() || (magnitude[0] & 0x80) != 0;
  out.push_back(kInteger);
  AppendLength(out, magnitude.size() + (pad ? 1 : 0));
  if (pad) out.push_back(0x00);
  out.insert(out.end(), magnitude.begin(), magnitude.end());
}

void AppendBitString(Bytes& out, std::span<const uint8_t> bytes) {
  out.push_back(kBitString);
  AppendLength(out, bytes.size() + 1);
  out.push_back(0x00);
  out.insert(out.end(), bytes.begin(), bytes.end());
}

}  // namespace e2eid::crypto::der
