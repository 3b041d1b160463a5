// Byte encodings used on the wire: base64url without padding (RFC 4648 §5, as JOSE and ACME use
// it), standard base64 (PEM bodies, DPoP headers that some clients wrap once more) and lowercase
// hex.
//
// Decoders are strict: they reject padding, characters outside the alphabet, white space, and
// encodings whose unused trailing bits are not zero (so every byte string has exactly one accepted
// encoding).
#ifndef E2EID_CORE_ENCODING_H_
#define E2EID_CORE_ENCODING_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace e2eid {

using Bytes = std::vector<uint8_t>;

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsString(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string Base64UrlEncode(std::span<const uint8_t> data);
inline std::string Base64UrlEncode(std::string_view s) { return Base64UrlEncode(AsBytes(s)); }
// Errors: kMalformed naming the offending position ("padding is not allowed", "invalid character").
Result<Bytes> Base64UrlDecode(std::string_view text);

// Standard alphabet with padding (RFC 4648 §4). The decoder requires correct padding.
std::string Base64Encode(std::span<const uint8_t> data);
Result<Bytes> Base64Decode(std::string_view text);

std::string HexEncode(std::span<const uint8_t> data);
// Accepts upper and lower case; rejects odd lengths and non-hex characters.
Result<Bytes> HexDecode(std::string_view text);

}  // namespace e2eid

#endif  // E2EID_CORE_ENCODING_H_
