// MemoryNonces: the ACME replay nonces of one process, kept in memory (see Store::IssueNonce).
//
// Each issued value can be used exactly once before it expires. Memory is bounded: expired values
// are dropped as values are used, and when `max_entries` live values exist the oldest is
// dropped (its client gets badNonce with a fresh nonce and retries, RFC 8555 §6.5).
//
// Thread-safe (one mutex; every operation is O(1) amortised). Not copyable.
#ifndef E2EID_STORE_MEMORY_NONCES_H_
#define E2EID_STORE_MEMORY_NONCES_H_

#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/clock.h"
#include "core/error.h"
#include "store/records.h"

namespace e2eid::store {

class MemoryNonces {
 public:
  explicit MemoryNonces(size_t max_entries = 1'000'000);
  MemoryNonces(const MemoryNonces&) = delete;
  MemoryNonces& operator=(const MemoryNonces&) = delete;

  // kAlreadyExists when the value is live already; kInvalidArgument for an empty value.
  Status Issue(const Nonce& n);
  // Ok exactly once per issued value while now < expires_at (the value is gone afterwards);
  // kBadNonce when it is unknown, already used, dropped or expired.
  Status Use(std::string_view value, TimePoint now);
  // Live (issued, not used, not yet dropped) values; expired ones may still be counted until the
  // next Issue drops them.
  size_t size() const;

 private:
  // Drops used values and, while over the bounds or (with `now`) expired, the oldest.
  void DropLocked(std::optional<TimePoint> now);

  const size_t max_entries_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, TimePoint> live_;
  // Issue order, for dropping the oldest and the expired. Used values stay here until they reach
  // the front (so it can hold more than live_).
  std::deque<std::pair<TimePoint, std::string>> order_;
};

}  // namespace e2eid::store

#endif  // E2EID_STORE_MEMORY_NONCES_H_
