#include "ca/profile.h"

#include <gtest/gtest.h>

namespace e2eid::ca {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

const TimePoint kNow = FromUnix(1'800'000'000);
const TimePoint kCaEnd = kNow + hours(24 * 365);

TEST(ProfileTest, ParseAndName) {
  for (Profile p : {Profile::kDevice, Profile::kTlsServer, Profile::kOcspResponder}) {
    EXPECT_EQ(*ParseProfile(ProfileName(p)), p);
  }
  EXPECT_EQ(ParseProfile("server").error().code(), ErrorCode::kInvalidArgument);
}

TEST(ProfileTest, DefaultWindowIsDefaultValidityFromNow) {
  ValidityPolicy policy;
  auto v = ClampValidity(policy, kNow, std::nullopt, std::nullopt, kCaEnd);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->not_before, kNow);
  EXPECT_EQ(v->not_after, kNow + hours(24));
}

TEST(ProfileTest, TooLongIsClampedToMax) {
  ValidityPolicy policy;
  auto v = ClampValidity(policy, kNow, kNow, kNow + hours(24 * 90), kCaEnd);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->not_after - v->not_before, hours(24 * 7));
}

TEST(ProfileTest, TooShortIsRaisedToMin) {
  ValidityPolicy policy;
  auto v = ClampValidity(policy, kNow, std::nullopt, kNow + seconds(10), kCaEnd);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->not_after - v->not_before, minutes(5));
}

TEST(ProfileTest, StartInThePastBeginsNowAndFutureStartIsKept) {
  ValidityPolicy policy;
  auto past = ClampValidity(policy, kNow, kNow - hours(5), kNow + hours(2), kCaEnd);
  ASSERT_TRUE(past);
  EXPECT_EQ(past->not_before, kNow);
  EXPECT_EQ(past->not_after, kNow + hours(2));
  auto future = ClampValidity(policy, kNow, kNow + hours(1), std::nullopt, kCaEnd);
  ASSERT_TRUE(future);
  EXPECT_EQ(future->not_before, kNow + hours(1));
  EXPECT_EQ(future->not_after, kNow + hours(25));
}

TEST(ProfileTest, BackdateMovesNotBeforeOnly) {
  ValidityPolicy policy;
  policy.backdate = minutes(2);
  auto v = ClampValidity(policy, kNow, std::nullopt, std::nullopt, kCaEnd);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->not_before, kNow - minutes(2));
  EXPECT_EQ(v->not_after, kNow + hours(24));
}

TEST(ProfileTest, RejectsInvertedWindowAndFarFutureStart) {
  ValidityPolicy policy;
  EXPECT_EQ(ClampValidity(policy, kNow, kNow + hours(2), kNow + hours(1), kCaEnd).error().code(),
            ErrorCode::kMalformed);
  EXPECT_EQ(ClampValidity(policy, kNow, kNow + hours(48), std::nullopt, kCaEnd).error().code(),
            ErrorCode::kMalformed);
}

TEST(ProfileTest, NeverOutlivesTheCa) {
  ValidityPolicy policy;
  auto v = ClampValidity(policy, kNow, std::nullopt, std::nullopt, kNow + hours(3));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->not_after, kNow + hours(3));
  auto dying = ClampValidity(policy, kNow, std::nullopt, std::nullopt, kNow + minutes(1));
  ASSERT_FALSE(dying);
  EXPECT_EQ(dying.error().code(), ErrorCode::kInternal);
}

TEST(ProfileTest, PolicyValidation) {
  EXPECT_TRUE(ValidityPolicy{}.Validate());
  ValidityPolicy bad;
  bad.default_validity = hours(24 * 30);
  EXPECT_EQ(bad.Validate().error().code(), ErrorCode::kConfig);
  ValidityPolicy zero;
  zero.min_validity = seconds(0);
  EXPECT_FALSE(zero.Validate());
}

}  // namespace
}  // namespace e2eid::ca
