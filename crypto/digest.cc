#include "crypto/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace e2eid::crypto {
namespace {

Bytes Digest(const EVP_MD* md, const char* name, std::span<const uint8_t> data) {
  Bytes out(static_cast<size_t>(EVP_MD_get_size(md)));
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1 ||
      len != out.size()) {
    // Returning anything would be returning a wrong digest.
    std::fprintf(stderr, "e2eid: fatal: OpenSSL cannot compute %s\n", name);
    std::abort();
  }
  return out;
}

}  // namespace

Bytes Sha256(std::span<const uint8_t> data) { return Digest(EVP_sha256(), "SHA-256", data); }
Bytes Sha384(std::span<const uint8_t> data) { return Digest(EVP_sha384(), "SHA-384", data); }
Bytes Sha512(std::span<const uint8_t> data) { return Digest(EVP_sha512(), "SHA-512", data); }

bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace e2eid::crypto
