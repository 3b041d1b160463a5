// RandomSource: where e2eid gets random bytes (serials, nonces, tokens, identifiers). Production
// uses crypto::SecureRandom (OpenSSL's DRBG); tests may pass a deterministic source.
// Implementations must be thread-safe.
#ifndef E2EID_CORE_RANDOM_H_
#define E2EID_CORE_RANDOM_H_

#include <cstdint>
#include <span>

#include "core/error.h"

namespace e2eid {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Fills `out` with random bytes. Fails only when the underlying generator fails.
  virtual Status Fill(std::span<uint8_t> out) = 0;
};

}  // namespace e2eid

#endif  // E2EID_CORE_RANDOM_H_
