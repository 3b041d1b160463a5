#include "core/error.h"

#include <gtest/gtest.h>

namespace e2eid {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Fail(Error::Malformed("odd: " + std::to_string(x)));
  return x / 2;
}

Result<int> Quarter(int x) {
  E2EID_TRY(h, Half(x));
  E2EID_TRY(q, Half(h));
  return q;
}

TEST(ErrorTest, TryPropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(r.error().detail(), "odd: 3");
}

TEST(ErrorTest, NamesMatchRfc8555ProblemTypes) {
  EXPECT_EQ(ErrorCodeName(ErrorCode::kBadNonce), "badNonce");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kBadCsr), "badCSR");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kAlreadyReplaced), "alreadyReplaced");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kUserActionRequired), "userActionRequired");
}

TEST(ErrorTest, InternalCodesAreNotClientFacing) {
  EXPECT_TRUE(IsClientFacing(ErrorCode::kMalformed));
  EXPECT_TRUE(IsClientFacing(ErrorCode::kNotFound));
  EXPECT_FALSE(IsClientFacing(ErrorCode::kInternal));
  EXPECT_FALSE(IsClientFacing(ErrorCode::kStore));
  EXPECT_FALSE(IsClientFacing(ErrorCode::kIo));
  EXPECT_FALSE(IsClientFacing(ErrorCode::kCrypto));
}

TEST(ErrorTest, SubproblemsContextAndRetryAfter) {
  Error e = Error(ErrorCode::kCompound, "two identifiers refused")
                .WithSubproblem({ErrorCode::kRejectedIdentifier, "not allowed", "dns", "a.example"})
                .WithRetryAfter(std::chrono::seconds(30));
  e = std::move(e).Context("newOrder");
  EXPECT_EQ(e.detail(), "newOrder: two identifiers refused");
  ASSERT_EQ(e.subproblems().size(), 1u);
  EXPECT_EQ(e.retry_after(), std::chrono::seconds(30));
  EXPECT_EQ(e.ToString(),
            "compound: newOrder: two identifiers refused; [rejectedIdentifier dns:a.example] not "
            "allowed");
}

TEST(ErrorTest, CheckOkReturnsError) {
  auto f = []() -> Status {
    E2EID_CHECK_OK(Half(3));
    return Ok();
  };
  EXPECT_FALSE(f());
}

}  // namespace
}  // namespace e2eid
