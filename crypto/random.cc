#include "crypto/random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "crypto/openssl.h"

namespace e2eid::crypto {

Status SecureRandom::Fill(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const size_t chunk = std::min<size_t>(out.size() - done, INT_MAX);
    if (RAND_bytes(out.data() + done, static_cast<int>(chunk)) != 1) {
      OPENSSL_cleanse(out.data(), out.size());
      return Fail(OpenSslError("RAND_bytes"));
    }
    done += chunk;
  }
  return Ok();
}

Result<Bytes> RandomBytes(RandomSource& rng, size_t n) {
  Bytes out(n);
  E2EID_CHECK_OK(rng.Fill(out));
  return out;
}

Result<std::string> RandomToken(RandomSource& rng, size_t bytes) {
  if (bytes == 0) return Fail(Error::InvalidArgument("random token length must be positive"));
  E2EID_TRY(raw, RandomBytes(rng, bytes));
  std::string token = Base64UrlEncode(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return token;
}

}  // namespace e2eid::crypto
