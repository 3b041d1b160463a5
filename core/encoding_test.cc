#include "core/encoding.h"

#include <gtest/gtest.h>

namespace e2eid {
namespace {

// RFC 4648 §10 test vectors.
struct Vector {
  const char* plain;
  const char* b64;
  const char* b64url;
};
constexpr Vector kVectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

TEST(EncodingTest, Rfc4648Vectors) {
  for (const auto& v : kVectors) {
    EXPECT_EQ(Base64Encode(AsBytes(v.plain)), v.b64);
    EXPECT_EQ(Base64UrlEncode(std::string_view(v.plain)), v.b64url);
    auto d = Base64UrlDecode(v.b64url);
    ASSERT_TRUE(d) << v.b64url;
    EXPECT_EQ(AsString(*d), v.plain);
    auto s = Base64Decode(v.b64);
    ASSERT_TRUE(s) << v.b64;
    EXPECT_EQ(AsString(*s), v.plain);
  }
}

TEST(EncodingTest, UrlAlphabetUsesDashAndUnderscore) {
  const Bytes data = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(Base64UrlEncode(data), "-_-_");
  EXPECT_EQ(Base64Encode(data), "+/+/");
  EXPECT_EQ(*Base64UrlDecode("-_-_"), data);
}

TEST(EncodingTest, Base64UrlRejectsPadding) {
  auto r = Base64UrlDecode("Zg==");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(r.error().detail().find("padding"), std::string::npos);
}

TEST(EncodingTest, Base64UrlRejectsForeignCharacters) {
  for (const char* bad : {"Zm9v+", "Zm9v/", "Zm 9v", "Zm9v\n", "Zm9\xff", "Zm.v"}) {
    auto r = Base64UrlDecode(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  }
}

TEST(EncodingTest, Base64UrlRejectsImpossibleLengthAndNonCanonicalBits) {
  EXPECT_FALSE(Base64UrlDecode("Z"));   // 6 bits cannot make a byte
  EXPECT_FALSE(Base64UrlDecode("Zh"));  // "Zg" is the canonical encoding of "f"
  EXPECT_TRUE(Base64UrlDecode("Zg"));
}

TEST(EncodingTest, Base64RequiresCorrectPadding) {
  EXPECT_FALSE(Base64Decode("Zg"));
  EXPECT_FALSE(Base64Decode("Zg="));
  EXPECT_FALSE(Base64Decode("Z==="));
  EXPECT_FALSE(Base64Decode("Zm9v-_-_"));
}

TEST(EncodingTest, Hex) {
  const Bytes data = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(HexEncode(data), "0001abff");
  EXPECT_EQ(*HexDecode("0001ABff"), data);
  EXPECT_FALSE(HexDecode("abc"));
  EXPECT_FALSE(HexDecode("zz"));
}

}  // namespace
}  // namespace e2eid
