// JSON Web Key Sets (RFC 7517 §5) as identity providers publish them at their "jwks_uri".
//
// IdP key sets mix keys e2eid can use for signature verification with keys it cannot (encryption
// keys, unsupported types, keys that are too small). ParseJwks keeps the usable signature keys and
// lists every other entry, with the reason, under Jwks::rejected, so that a token naming such a
// key gets a precise error instead of "unknown kid" (and an IdP adding, say, an RSA-OAEP key does
// not break verification).
//
// Thread safety: a const Jwks may be read by several threads at once; ParseJwks is thread-safe.
#ifndef E2EID_OIDC_JWKS_H_
#define E2EID_OIDC_JWKS_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "crypto/key.h"

namespace e2eid::oidc {

// One usable signature key.
struct JwksKey {
  std::string kid;                 // "" when the entry has no "kid"
  std::optional<std::string> alg;  // the entry's "alg", when given
  crypto::PublicKey key;           // passed the key policy of crypto/key.h (RSA >= 2048 bits)
  std::string pem;                 // the key as a "PUBLIC KEY" PEM block (what cpp-jwt takes)
};

// An entry that cannot be used to verify signatures, and why.
struct RejectedJwk {
  std::string kid;  // "" when the entry has no (string) "kid"
  std::string reason;
};

class Jwks {
 public:
  Jwks() = default;
  Jwks(Jwks&&) noexcept = default;
  Jwks& operator=(Jwks&&) noexcept = default;
  Jwks(const Jwks&) = delete;
  Jwks& operator=(const Jwks&) = delete;

  const std::vector<JwksKey>& keys() const { return keys_; }
  const std::vector<RejectedJwk>& rejected() const { return rejected_; }

  // The usable key with this kid, or nullptr.
  const JwksKey* Find(std::string_view kid) const;
  // The rejected entry with this kid, or nullptr.
  const RejectedJwk* FindRejected(std::string_view kid) const;

 private:
  friend Result<Jwks> ParseJwks(std::string_view body);
  std::vector<JwksKey> keys_;
  std::vector<RejectedJwk> rejected_;
};

inline constexpr size_t kMaxJwksEntries = 100;

// Parses a JWKS document. The document itself must be a JSON object (duplicate members refused)
// with a "keys" array of at most kMaxJwksEntries objects; otherwise kMalformed naming the problem.
// Each entry is then either usable or rejected (never an error for the whole set):
//   - "use", when present, must be "sig"; "key_ops", when present, must be an array containing
//     "verify"; "kid" and "alg", when present, must be strings;
//   - the key members must make a public key that crypto::PublicKeyFromJwk accepts (it ignores
//     members such as "x5c", "x5t", "use", "alg" and refuses private members), and RSA keys must
//     have at least 2048 bits;
//   - several usable entries with the same kid are all rejected unless they hold the same key with
//     the same "alg" (then the first is kept): a kid must name one key.
Result<Jwks> ParseJwks(std::string_view body);

}  // namespace e2eid::oidc

#endif  // E2EID_OIDC_JWKS_H_
