// SHA-2 digests and a constant-time comparison.
//
// Thread-safe. The digest functions cannot fail with a working OpenSSL (the default provider
// always offers SHA-2); if OpenSSL cannot compute one anyway they abort the process rather than
// return a wrong digest.
#ifndef E2EID_CRYPTO_DIGEST_H_
#define E2EID_CRYPTO_DIGEST_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "core/encoding.h"

namespace e2eid::crypto {

Bytes Sha256(std::span<const uint8_t> data);  // 32 bytes
Bytes Sha384(std::span<const uint8_t> data);  // 48 bytes
Bytes Sha512(std::span<const uint8_t> data);  // 64 bytes
inline Bytes Sha256(std::string_view s) { return Sha256(AsBytes(s)); }
inline Bytes Sha384(std::string_view s) { return Sha384(AsBytes(s)); }
inline Bytes Sha512(std::string_view s) { return Sha512(AsBytes(s)); }

// True when a and b have the same length and the same bytes. The time taken depends only on the
// lengths, never on the contents (CRYPTO_memcmp): use it for every comparison involving a secret
// (tokens, MACs, key authorizations). Lengths are not secret: unequal lengths return false at once.
bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b);
inline bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return ConstantTimeEquals(AsBytes(a), AsBytes(b));
}

}  // namespace e2eid::crypto

#endif  // E2EID_CRYPTO_DIGEST_H_
