// Small shared pieces of the enrolment client.
#ifndef E2EID_CLI_ENROL_UTIL_H_
#define E2EID_CLI_ENROL_UTIL_H_

#include <chrono>
#include <functional>
#include <thread>

namespace e2eid::cli {

// Blocks for the given time. Production uses RealSleeper(); tests pass a function that records
// the waits (and may advance a FakeClock), so no test sleeps for real.
using Sleeper = std::function<void(std::chrono::milliseconds)>;

inline Sleeper RealSleeper() {
  return [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

}  // namespace e2eid::cli

#endif  // E2EID_CLI_ENROL_UTIL_H_
