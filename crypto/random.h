// Cryptographically secure randomness from OpenSSL's DRBG.
#ifndef E2EID_CRYPTO_RANDOM_H_
#define E2EID_CRYPTO_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/encoding.h"
#include "core/error.h"
#include "core/random.h"

namespace e2eid::crypto {

// RandomSource over RAND_bytes (OpenSSL's public DRBG, seeded from the OS). Stateless and
// thread-safe: one instance may be shared by all threads, or each caller may make its own.
class SecureRandom final : public RandomSource {
 public:
  SecureRandom() = default;
  SecureRandom(const SecureRandom&) = delete;
  SecureRandom& operator=(const SecureRandom&) = delete;

  // Errors: kCrypto when the DRBG fails (not seeded, entropy source gone). `out` is then zeroed.
  Status Fill(std::span<uint8_t> out) override;
};

// `n` random bytes from `rng`. Errors: those of rng.Fill().
Result<Bytes> RandomBytes(RandomSource& rng, size_t n);

// `bytes` random bytes from `rng`, base64url-encoded without padding (ACME nonces, challenge
// tokens, identifiers). Use at least 16 bytes (128 bits) for anything an attacker must not guess.
// Errors: kInvalidArgument when bytes == 0; those of rng.Fill().
Result<std::string> RandomToken(RandomSource& rng, size_t bytes);

}  // namespace e2eid::crypto

#endif  // E2EID_CRYPTO_RANDOM_H_
