#include "revocation/http_util.h"

#include <gtest/gtest.h>

namespace e2eid::revocation {
namespace {

TEST(HttpUtilTest, HttpDate) {
  EXPECT_EQ(HttpDate(FromUnix(784111777)), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(HttpDate(FromUnix(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(HttpDate(FromUnix(1709164800)), "Thu, 29 Feb 2024 00:00:00 GMT");
}

TEST(HttpUtilTest, PercentDecode) {
  EXPECT_EQ(PercentDecode("a%2Fb%2bc%3D"), "a/b+c=");
  EXPECT_EQ(PercentDecode("plain+text"), "plain+text");
  EXPECT_EQ(PercentDecode(""), "");
  EXPECT_FALSE(PercentDecode("%"));
  EXPECT_FALSE(PercentDecode("%4"));
  EXPECT_FALSE(PercentDecode("ab%zz"));
}

TEST(HttpUtilTest, QueryParam) {
  EXPECT_EQ(QueryParam("format=pem", "format"), "pem");
  EXPECT_EQ(QueryParam("a=1&format=der&b", "format"), "der");
  EXPECT_EQ(QueryParam("a=1&b", "b"), "");
  EXPECT_EQ(QueryParam("formats=pem", "format"), std::nullopt);
  EXPECT_EQ(QueryParam("", "format"), std::nullopt);
}

TEST(HttpUtilTest, IfNoneMatch) {
  EXPECT_TRUE(IfNoneMatchHits("\"1-der\"", "\"1-der\""));
  EXPECT_TRUE(IfNoneMatchHits("\"x\", \"1-der\"", "\"1-der\""));
  EXPECT_TRUE(IfNoneMatchHits("W/\"1-der\"", "\"1-der\""));
  EXPECT_TRUE(IfNoneMatchHits("*", "\"1-der\""));
  EXPECT_FALSE(IfNoneMatchHits("\"2-der\"", "\"1-der\""));
  EXPECT_FALSE(IfNoneMatchHits(std::nullopt, "\"1-der\""));
  EXPECT_FALSE(IfNoneMatchHits("", "\"1-der\""));
}

}  // namespace
}  // namespace e2eid::revocation
