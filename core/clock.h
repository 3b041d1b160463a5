// Clock: the only source of "now" in e2eid. Production code takes a Clock& in its constructor so
// tests can pass a FakeClock and move time by hand. Thread-safe: both implementations may be shared
// by threads.
#ifndef E2EID_CORE_CLOCK_H_
#define E2EID_CORE_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace e2eid {

using TimePoint = std::chrono::sys_time<std::chrono::seconds>;

class Clock {
 public:
  virtual ~Clock() = default;
  // Current time, truncated to whole seconds (certificates, tokens and the store use seconds).
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override;
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start) : now_(start.time_since_epoch().count()) {}
  TimePoint Now() const override { return TimePoint(std::chrono::seconds(now_.load())); }
  void Set(TimePoint t) { now_.store(t.time_since_epoch().count()); }
  void Advance(std::chrono::seconds d) { now_.fetch_add(d.count()); }

 private:
  std::atomic<int64_t> now_;
};

inline int64_t ToUnix(TimePoint t) { return t.time_since_epoch().count(); }
inline TimePoint FromUnix(int64_t s) { return TimePoint(std::chrono::seconds(s)); }

// RFC 3339 in UTC with a "Z" suffix, e.g. "2026-11-26T09:02:38Z" (the form RFC 8555 uses).
std::string FormatRfc3339(TimePoint t);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)"; fractions are truncated.
Result<TimePoint> ParseRfc3339(std::string_view s);

}  // namespace e2eid

#endif  // E2EID_CORE_CLOCK_H_
