#include "core/clock.h"

#include <gtest/gtest.h>

namespace e2eid {
namespace {

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock(FromUnix(1'700'000'000));
  EXPECT_EQ(ToUnix(clock.Now()), 1'700'000'000);
  clock.Advance(std::chrono::seconds(90));
  EXPECT_EQ(ToUnix(clock.Now()), 1'700'000'090);
  clock.Set(FromUnix(5));
  EXPECT_EQ(ToUnix(clock.Now()), 5);
}

TEST(ClockTest, SystemClockIsNearTheRealTime) {
  SystemClock clock;
  const auto real = std::chrono::system_clock::now();
  EXPECT_LE(std::chrono::abs(clock.Now() - real), std::chrono::seconds(2));
}

TEST(ClockTest, FormatRfc3339) {
  EXPECT_EQ(FormatRfc3339(FromUnix(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(FromUnix(1'700'000'000)), "2023-11-14T22:13:20Z");
}

TEST(ClockTest, ParseRfc3339RoundTripsAndHonoursOffsets) {
  EXPECT_EQ(ToUnix(*ParseRfc3339("2023-11-14T22:13:20Z")), 1'700'000'000);
  EXPECT_EQ(ToUnix(*ParseRfc3339("2023-11-14T22:13:20.123456Z")), 1'700'000'000);
  EXPECT_EQ(ToUnix(*ParseRfc3339("2023-11-15T00:13:20+02:00")), 1'700'000'000);
  EXPECT_EQ(ToUnix(*ParseRfc3339("2023-11-14T21:13:20-01:00")), 1'700'000'000);
}

TEST(ClockTest, ParseRfc3339RejectsMalformed) {
  for (const char* bad :
       {"", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z", "2023-02-30T22:13:20Z",
        "2023-11-14T25:13:20Z", "2023-11-14T22:13:20ZZ", "2023-11-14T22:13:20.Z",
        "2023-11-14 22:13:20Z", "2023-11-14T22:13:20+2:00", "x023-11-14T22:13:20Z"}) {
    auto r = ParseRfc3339(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << bad;
  }
}

}  // namespace
}  // namespace e2eid
