#include "core/json.h"

#include <gtest/gtest.h>

namespace e2eid {
namespace {

TEST(JsonTest, ParsesValidDocument) {
  auto j = ParseJson(R"({"a":"x","n":5,"b":true,"o":{"k":[1,2]}})");
  ASSERT_TRUE(j);
  EXPECT_EQ(*GetString(*j, "a"), "x");
  EXPECT_EQ(*GetInt(*j, "n"), 5);
  EXPECT_TRUE(*GetBool(*j, "b"));
}

TEST(JsonTest, RejectsInvalidAndTrailingGarbage) {
  for (const char* bad : {"", "{", "{\"a\":}", "{} {}", "[1,]", "{'a':1}", "nul"}) {
    auto j = ParseJson(bad, "payload");
    ASSERT_FALSE(j) << bad;
    EXPECT_EQ(j.error().code(), ErrorCode::kMalformed);
    EXPECT_NE(j.error().detail().find("payload"), std::string::npos);
  }
}

TEST(JsonTest, RejectsDuplicateKeysAtAnyDepth) {
  auto top = ParseJson(R"({"alg":"ES256","alg":"none"})", "header");
  ASSERT_FALSE(top);
  EXPECT_NE(top.error().detail().find("duplicate member 'alg'"), std::string::npos);
  EXPECT_FALSE(ParseJson(R"({"o":{"k":1,"k":2}})"));
  EXPECT_TRUE(ParseJson(R"({"o":{"k":1},"p":{"k":2}})"));  // same key in different objects is fine
}

TEST(JsonTest, BoundsNesting) {
  std::string deep(40, '[');
  deep += std::string(40, ']');
  EXPECT_FALSE(ParseJson(deep));
  EXPECT_TRUE(ParseJson(deep, "x", JsonLimits{.max_depth = 64}));
}

TEST(JsonTest, AccessorsNameTheMember) {
  auto j = *ParseJson(R"({"s":1,"i":"x","b":"y","nil":null})");
  auto s = GetString(j, "s", "order");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().detail(), "order: member 's' must be a string");
  auto missing = GetString(j, "zz", "order");
  EXPECT_EQ(missing.error().detail(), "order: member 'zz' is missing");
  EXPECT_FALSE(GetInt(j, "i"));
  EXPECT_FALSE(GetBool(j, "b"));
  EXPECT_FALSE(GetString(Json::array(), "a"));
}

TEST(JsonTest, OptionalAccessors) {
  auto j = *ParseJson(R"({"s":"v","n":3,"nil":null,"bad":1})");
  EXPECT_EQ(**GetOptionalString(j, "s"), "v");
  EXPECT_FALSE(GetOptionalString(j, "absent")->has_value());
  EXPECT_FALSE(GetOptionalString(j, "nil")->has_value());
  EXPECT_FALSE(GetOptionalString(j, "bad"));
  EXPECT_EQ(**GetOptionalInt(j, "n"), 3);
  EXPECT_FALSE(GetOptionalBool(j, "n"));
}

TEST(JsonTest, DumpReplacesInvalidUtf8InsteadOfThrowing) {
  Json j = std::string(
      "a\xff"
      "b");
  EXPECT_NO_THROW({
    auto s = DumpJson(j);
    EXPECT_FALSE(s.empty());
  });
}

TEST(JsonTest, LenientMembersOnlyReturnTheRightType) {
  auto j = ParseJson(R"({"s":"x","i":7,"f":1.5,"n":null,"b":true,"si":"7"})");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(StringMember(*j, "s"), std::optional<std::string>("x"));
  EXPECT_EQ(StringMember(*j, "i"), std::nullopt);
  EXPECT_EQ(StringMember(*j, "n"), std::nullopt);
  EXPECT_EQ(StringMember(*j, "missing"), std::nullopt);
  EXPECT_EQ(IntMember(*j, "i"), std::optional<int64_t>(7));
  EXPECT_EQ(IntMember(*j, "f"), std::nullopt);
  EXPECT_EQ(IntMember(*j, "b"), std::nullopt);
  EXPECT_EQ(IntMember(*j, "si"), std::nullopt);
  EXPECT_EQ(StringMember(Json::array({"s"}), "s"), std::nullopt);
  EXPECT_EQ(IntMember(Json("text"), "i"), std::nullopt);
}

}  // namespace
}  // namespace e2eid
