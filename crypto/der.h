// A small, strict DER reader and writer (ITU-T X.690), for the few structures e2eid parses on its
// hot paths without OpenSSL's ASN.1 decoder: SubjectPublicKeyInfo (crypto/key.h) and PKCS#10
// certification requests (acme/csr.h).
//
// The reader accepts DER only:
//   - one-byte tags (the high-tag-number form 0x1f and the end-of-contents tag 0x00 are refused);
//   - definite lengths in minimal form: the short form below 128, the long form with 1 to 4
//     length octets, no leading zero octet, and never for a length below 128; the indefinite
//     form (0x80) is refused;
//   - a length never reaches past the end of the enclosing buffer.
// It checks tags and lengths only; the content decoders below check the contents (minimal
// INTEGERs, BIT STRINGs without unused bits, minimal OID arcs, DER BOOLEANs).
//
// All errors are kMalformed with a detail that names the element ("DER: <what>: ...").
// Everything here is a pure function of its arguments: thread-safe. Elements are views into the
// caller's buffer, which must outlive them.
#ifndef E2EID_CRYPTO_DER_H_
#define E2EID_CRYPTO_DER_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"

namespace e2eid::crypto::der {

// Identifier octets (class, constructed bit and tag number in one byte).
inline constexpr uint8_t kBoolean = 0x01;
inline constexpr uint8_t kInteger = 0x02;
inline constexpr uint8_t kBitString = 0x03;
inline constexpr uint8_t kOctetString = 0x04;
inline constexpr uint8_t kNull = 0x05;
inline constexpr uint8_t kOid = 0x06;
inline constexpr uint8_t kUtf8String = 0x0c;
inline constexpr uint8_t kPrintableString = 0x13;
inline constexpr uint8_t kIa5String = 0x16;
inline constexpr uint8_t kBmpString = 0x1e;
inline constexpr uint8_t kSequence = 0x30;
inline constexpr uint8_t kSet = 0x31;
// Context-specific [n] (n < 31), primitive or constructed.
constexpr uint8_t ContextTag(int n, bool constructed) {
  return static_cast<uint8_t>(0x80 | (constructed ? 0x20 : 0x00) | (n & 0x1f));
}

// Longest element the reader accepts: 4 length octets.
inline constexpr size_t kMaxLengthOctets = 4;

// One element: its identifier octet, its contents, and its whole encoding (identifier, length
// and contents), all views into the buffer that was read.
struct Element {
  uint8_t tag = 0;
  std::span<const uint8_t> contents;
  std::span<const uint8_t> encoding;
};

// Reads consecutive elements from a buffer it does not own. Small and copyable (two pointers).
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : rest_(data) {}

  bool empty() const { return rest_.empty(); }
  // The identifier octet of the next element, without reading it; nullopt at the end.
  std::optional<uint8_t> PeekTag() const {
    return rest_.empty() ? std::nullopt : std::optional<uint8_t>(rest_[0]);
  }

  // The next element, whatever its tag. Errors: kMalformed ("DER: <what>: ...") for a truncated
  // element, a bad tag or length form, or a length past the end.
  Result<Element> Next(std::string_view what);
  // The next element, which must have identifier `tag` (kMalformed otherwise, nothing consumed).
  Result<Element> Next(uint8_t tag, std::string_view what);
  // The next element when it has identifier `tag`; nullopt (nothing consumed) when the reader is
  // at its end or the next element has another tag.
  Result<std::optional<Element>> Optional(uint8_t tag, std::string_view what);
  // kMalformed ("DER: <what>: unexpected trailing bytes") unless everything was read.
  Status ExpectEnd(std::string_view what) const;

 private:
  std::span<const uint8_t> rest_;
};

// Exactly one element with identifier `tag` that fills `data` (no trailing bytes).
Result<Element> ReadExactlyOne(std::span<const uint8_t> data, uint8_t tag, std::string_view what);

// ---- content decoders ----

// An INTEGER's non-negative value as its minimal big-endian magnitude (no sign octet; zero is one
// 0x00 octet). Errors: kMalformed for another tag, empty contents, a non-minimal encoding or a
// negative value.
Result<std::span<const uint8_t>> UnsignedInteger(const Element& e, std::string_view what);
// A BIT STRING's octets; the string must have no unused bits (the first contents octet is 0).
Result<std::span<const uint8_t>> BitStringBytes(const Element& e, std::string_view what);
// A BOOLEAN: contents 0x00 (false) or 0xff (true), nothing else.
Result<bool> Boolean(const Element& e, std::string_view what);
// Checks an OBJECT IDENTIFIER's contents (non-empty, minimal base-128 arcs, the last octet ends
// an arc) and returns them. Errors: kMalformed.
Result<std::span<const uint8_t>> Oid(const Element& e, std::string_view what);
// The dotted form ("2.5.4.3") of valid OID contents. Errors: kMalformed as Oid(), and for an
// arc that does not fit in 64 bits.
Result<std::string> OidToText(std::span<const uint8_t> contents);

// ---- writer ----

// Appends identifier, minimal definite length and contents.
void AppendElement(Bytes& out, uint8_t tag, std::span<const uint8_t> contents);
// Appends an INTEGER holding the non-negative big-endian `magnitude` (leading zero octets are
// dropped; a 0x00 octet is prepended when the top bit is set; empty means zero).
void AppendUnsignedInteger(Bytes& out, std::span<const uint8_t> magnitude);
// Appends a BIT STRING with no unused bits holding `bytes`.
void AppendBitString(Bytes& out, std::span<const uint8_t> bytes);

}  // namespace e2eid::crypto::der

#endif  // E2EID_CRYPTO_DER_H_
