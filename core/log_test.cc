#include "core/log.h"

#include <gtest/gtest.h>

#include <vector>

namespace e2eid {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](std::string_view l) { lines_.emplace_back(l); });
    SetLogLevel(LogLevel::kInfo);
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogLevel(LogLevel::kInfo);
  }
  std::vector<std::string> lines_;
};

TEST_F(LogTest, WritesOneJsonObjectPerLine) {
  LogInfo("issued", {{"serial", "0a1b"}, {"ms", 3}});
  ASSERT_EQ(lines_.size(), 1u);
  auto j = ParseJson(lines_[0]);
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["msg"], "issued");
  EXPECT_EQ((*j)["level"], "info");
  EXPECT_EQ((*j)["serial"], "0a1b");
  EXPECT_EQ((*j)["ms"], 3);
  EXPECT_TRUE(j->contains("ts"));
}

TEST_F(LogTest, FieldsCannotOverrideReservedKeys) {
  LogWarn("real", {{"msg", "forged"}, {"level", "debug"}});
  auto j = *ParseJson(lines_.at(0));
  EXPECT_EQ(j["msg"], "real");
  EXPECT_EQ(j["level"], "warn");
}

TEST_F(LogTest, LevelFilters) {
  LogDebug("hidden");
  SetLogLevel(LogLevel::kError);
  LogWarn("hidden too");
  LogError("shown");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_NE(lines_[0].find("shown"), std::string::npos);
}

TEST_F(LogTest, ParseLogLevel) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarn);
  auto bad = ParseLogLevel("loud");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace e2eid
