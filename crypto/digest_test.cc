#include "crypto/digest.h"

#include <gtest/gtest.h>

namespace e2eid::crypto {
namespace {

// FIPS 180-2 "abc" vectors.
TEST(DigestTest, KnownAnswers) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha384("abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(HexEncode(Sha512("abc")),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(DigestTest, SpanAndStringAgree) {
  const Bytes data = {'a', 'b', 'c'};
  EXPECT_EQ(Sha256(data), Sha256("abc"));
  EXPECT_EQ(Sha256(data).size(), 32u);
  EXPECT_EQ(Sha384(data).size(), 48u);
  EXPECT_EQ(Sha512(data).size(), 64u);
}

TEST(DigestTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("token", "token"));
  EXPECT_FALSE(ConstantTimeEquals("token", "tokeN"));
  EXPECT_FALSE(ConstantTimeEquals("token", "token "));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  const Bytes a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4};
  EXPECT_TRUE(ConstantTimeEquals(a, b));
  EXPECT_FALSE(ConstantTimeEquals(a, c));
  // A prefix is not equal.
  EXPECT_FALSE(ConstantTimeEquals(std::span<const uint8_t>(a).first(2), b));
}

}  // namespace
}  // namespace e2eid::crypto
