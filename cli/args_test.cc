#include "cli/args.h"

#include <gtest/gtest.h>

namespace e2eid::cli {
namespace {

const std::vector<OptionSpec> kSpecs = {
    {"dir", true, true, "", "DIR"},
    {"domain", true, false, "", "DOMAIN"},
    {"verbose", false, false, ""},
};

TEST(ArgsTest, ParsesSpaceAndEqualsForms) {
  auto a = Args::Parse("init", kSpecs, {"--dir", "/x", "--domain=example.com", "--verbose"});
  ASSERT_TRUE(a) << a.error().detail();
  EXPECT_EQ(*a->Get("dir"), "/x");
  EXPECT_EQ(*a->Get("domain"), "example.com");
  EXPECT_TRUE(a->Has("verbose"));
  EXPECT_EQ(a->GetOr("missing", "fallback"), "fallback");
}

TEST(ArgsTest, ErrorsNameTheOptionAndCommand) {
  struct Case {
    std::vector<std::string> argv;
    const char* expected;
  };
  const Case cases[] = {
      {{"--dir", "/x", "--dmain", "a"}, "e2eid init: unknown option --dmain"},
      {{"--dir"}, "e2eid init: option --dir needs a value (DIR)"},
      {{"--dir", "/x", "--dir", "/y"}, "e2eid init: option --dir given twice"},
      {{"--domain", "a"}, "e2eid init: missing required option --dir"},
      {{"--dir", "/x", "--verbose=yes"}, "e2eid init: option --verbose takes no value"},
      {{"--dir="}, "e2eid init: option --dir must not be empty"},
  };
  for (const auto& c : cases) {
    auto a = Args::Parse("init", kSpecs, c.argv);
    ASSERT_FALSE(a) << c.expected;
    EXPECT_EQ(a.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(a.error().detail().rfind(c.expected, 0), 0u) << a.error().detail();
  }
}

TEST(ArgsTest, PositionalArguments) {
  auto a = Args::Parse("x", kSpecs, {"one", "--dir", "/d", "--", "--not-an-option"});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->positional(), (std::vector<std::string>{"one", "--not-an-option"}));
}

TEST(ArgsTest, HelpListsOptions) {
  const std::string help = FormatOptions(kSpecs);
  EXPECT_NE(help.find("--dir DIR"), std::string::npos);
  EXPECT_NE(help.find("(required)"), std::string::npos);
}

}  // namespace
}  // namespace e2eid::cli
