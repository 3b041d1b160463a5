#include "crypto/random.h"

#include <gtest/gtest.h>

#include <set>

namespace e2eid::crypto {
namespace {

// A RandomSource that always fails, to check error propagation.
class FailingRandom final : public RandomSource {
 public:
  Status Fill(std::span<uint8_t>) override { return Fail(Error::Crypto("no entropy")); }
};

// A deterministic source: bytes 0, 1, 2, ...
class CountingRandom final : public RandomSource {
 public:
  Status Fill(std::span<uint8_t> out) override {
    for (auto& b : out) b = next_++;
    return Ok();
  }

 private:
  uint8_t next_ = 0;
};

TEST(RandomTest, FillsWithDistinctValues) {
  SecureRandom rng;
  Bytes a(32), b(32);
  ASSERT_TRUE(rng.Fill(a));
  ASSERT_TRUE(rng.Fill(b));
  EXPECT_NE(a, b);  // 2^-256 chance of a false failure
  EXPECT_NE(a, Bytes(32, 0));
}

TEST(RandomTest, EmptyFillSucceeds) {
  SecureRandom rng;
  EXPECT_TRUE(rng.Fill(std::span<uint8_t>()));
}

TEST(RandomTest, RandomBytesLength) {
  SecureRandom rng;
  auto b = RandomBytes(rng, 100);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->size(), 100u);
}

TEST(RandomTest, TokenIsBase64UrlOfRequestedLength) {
  SecureRandom rng;
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    auto t = RandomToken(rng, 16);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->size(), 22u);  // ceil(16 * 4 / 3) without padding
    auto decoded = Base64UrlDecode(*t);
    ASSERT_TRUE(decoded) << *t;
    EXPECT_EQ(decoded->size(), 16u);
    seen.insert(*t);
  }
  EXPECT_EQ(seen.size(), 50u);
}

TEST(RandomTest, TokenUsesTheGivenSource) {
  CountingRandom rng;
  auto t = RandomToken(rng, 3);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, Base64UrlEncode(Bytes{0, 1, 2}));
}

TEST(RandomTest, TokenErrors) {
  SecureRandom rng;
  auto zero = RandomToken(rng, 0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), ErrorCode::kInvalidArgument);

  FailingRandom bad;
  auto t = RandomToken(bad, 16);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code(), ErrorCode::kCrypto);
  EXPECT_FALSE(RandomBytes(bad, 1));
}

}  // namespace
}  // namespace e2eid::crypto
