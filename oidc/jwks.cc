#include "oidc/jwks.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "core/json.h"
#include "crypto/jwk.h"
#include "oidc/quote.h"

namespace e2eid::oidc {
namespace {

// Checks the non-key members of one entry and builds the key. Errors: the reason the entry is
// not usable (the code does not matter: the entry is rejected, not the set).
Result<JwksKey> ParseEntry(const Json& entry, const std::string& kid) {
  if (const auto use = entry.find("use"); use != entry.end()) {
    if (!use->is_string()) return Fail(Error::BadPublicKey("\"use\" is not a string"));
    if (use->get<std::string>() != "sig") {
      return Fail(
          Error::BadPublicKey("\"use\" is " + Quote(use->get<std::string>()) + ", not \"sig\""));
    }
  }
  if (const auto ops = entry.find("key_ops"); ops != entry.end()) {
    if (!ops->is_array()) return Fail(Error::BadPublicKey("\"key_ops\" is not an array"));
    const bool verify = std::any_of(ops->begin(), ops->end(), [](const Json& op) {
      return op.is_string() && op.get<std::string>() == "verify";
    });
    if (!verify) return Fail(Error::BadPublicKey("\"key_ops\" does not contain \"verify\""));
  }
  std::optional<std::string> alg;
  if (const auto a = entry.find("alg"); a != entry.end()) {
    if (!a->is_string()) return Fail(Error::BadPublicKey("\"alg\" is not a string"));
    alg = a->get<std::string>();
  }
  auto key = crypto::PublicKeyFromJwk(entry);
  if (!key) return Fail(std::move(key).error());
  // PublicKeyFromJwk applies the key policy already; this states the rule where it matters.
  if (key->type() == crypto::KeyType::kRsa && key->bits() < 2048) {
    return Fail(Error::BadPublicKey("RSA key has " + std::to_string(key->bits()) +
                                    " bits, at least 2048 are required"));
  }
  auto pem = key->ToPem();
  if (!pem) return Fail(std::move(pem).error());
  return JwksKey{kid, std::move(alg), std::move(*key), std::move(*pem)};
}

}  // namespace

const JwksKey* Jwks::Find(std::string_view kid) const {
  for (const JwksKey& k : keys_) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

const RejectedJwk* Jwks::FindRejected(std::string_view kid) const {
  for (const RejectedJwk& r : rejected_) {
    if (r.kid == kid) return &r;
  }
  return nullptr;
}

Result<Jwks> ParseJwks(std::string_view body) {
  auto parsed = ParseJson(body, "JWKS");
  if (!parsed) return Fail(std::move(parsed).error());
  const Json& doc = *parsed;
  if (!doc.is_object()) return Fail(Error::Malformed("JWKS is not a JSON object"));
  const auto keys = doc.find("keys");
  if (keys == doc.end()) return Fail(Error::Malformed("JWKS: member \"keys\" is missing"));
  if (!keys->is_array()) return Fail(Error::Malformed("JWKS: member \"keys\" must be an array"));
  if (keys->size() > kMaxJwksEntries) {
    return Fail(Error::Malformed("JWKS has " + std::to_string(keys->size()) +
                                 " keys, more than the limit of " +
                                 std::to_string(kMaxJwksEntries)));
  }

  Jwks out;
  std::vector<JwksKey> candidates;
  for (const Json& entry : *keys) {
    if (!entry.is_object()) {
      return Fail(Error::Malformed("JWKS: an entry of \"keys\" is not an object"));
    }
    std::string kid;
    if (const auto k = entry.find("kid"); k != entry.end()) {
      if (!k->is_string()) {
        out.rejected_.push_back({"", "\"kid\" is not a string"});
        continue;
      }
      kid = k->get<std::string>();
    }
    auto key = ParseEntry(entry, kid);
    if (!key) {
      out.rejected_.push_back({kid, key.error().detail()});
      continue;
    }
    candidates.push_back(std::move(*key));
  }
  // A kid must name one key: identical repeats collapse, different keys under one kid are all
  // refused.
  std::set<std::string> ambiguous;
  for (size_t i = 0; i < candidates.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (candidates[j].kid == candidates[i].kid && !(candidates[j].key.Equals(candidates[i].key) &&
                                                      candidates[j].alg == candidates[i].alg)) {
        ambiguous.insert(candidates[i].kid);
      }
    }
  }
  for (const std::string& kid : ambiguous) {
    out.rejected_.push_back({kid, "several different keys in the JWKS have this kid"});
  }
  for (JwksKey& candidate : candidates) {
    if (ambiguous.contains(candidate.kid) || out.Find(candidate.kid) != nullptr) continue;
    out.keys_.push_back(std::move(candidate));
  }
  return out;
}

}  // namespace e2eid::oidc
