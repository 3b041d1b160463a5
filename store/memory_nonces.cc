#include "store/memory_nonces.h"

#include <optional>

namespace e2eid::store {

MemoryNonces::MemoryNonces(size_t max_entries) : max_entries_(max_entries == 0 ? 1 : max_entries) {}

void MemoryNonces::DropLocked(std::optional<TimePoint> now) {
  // Front entries are the oldest issued; with one lifetime they also expire first. A value that
  // expires before an older one is only dropped when it reaches the front (Use checks expiry).
  while (!order_.empty()) {
    auto& [expires_at, value] = order_.front();
    auto it = live_.find(value);
    const bool stale = it == live_.end() || it->second != expires_at;  // used (or re-issued)
    if (!stale && (!now || expires_at > *now) && live_.size() < max_entries_ &&
        order_.size() < 2 * max_entries_) {
      break;
    }
    if (!stale) live_.erase(it);
    order_.pop_front();
  }
}

Status MemoryNonces::Issue(const Nonce& n) {
  if (n.value.empty()) return Fail(Error::InvalidArgument("a nonce must not be empty"));
  std::lock_guard lock(mu_);
  DropLocked(std::nullopt);
  auto [it, inserted] = live_.try_emplace(n.value, n.expires_at);
  if (!inserted) return Fail(Error::AlreadyExists("the nonce is already issued"));
  order_.emplace_back(n.expires_at, n.value);
  return Ok();
}

Status MemoryNonces::Use(std::string_view value, TimePoint now) {
  std::lock_guard lock(mu_);
  DropLocked(now);
  auto it = live_.find(std::string(value));
  if (it == live_.end() || it->second <= now) {
    if (it != live_.end()) live_.erase(it);
    return Fail(Error::BadNonce("the nonce is unknown, was already used or has expired"));
  }
  live_.erase(it);
  return Ok();
}

size_t MemoryNonces::size() const {
  std::lock_guard lock(mu_);
  return live_.size();
}

}  // namespace e2eid::store
