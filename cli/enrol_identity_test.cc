#include "cli/enrol_identity.h"

#include <gtest/gtest.h>

#include "cli/enrol_test_util.h"

namespace e2eid::cli {
namespace {

WireIdentity Alice() {
  return WireIdentity{"Alice Smith", "example.com", "alice", "bxwt3FqLSiudng8eLTxLWg", "abc123"};
}

TEST(EnrolIdentityTest, UserIdIsBase64UrlOfTheUuidBytes) {
  auto id = UserIdFromUuid("6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5a");
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(*id, "bxwt3FqLSiudng8eLTxLWg");
  EXPECT_EQ(id->size(), 22u);
  auto upper = UserIdFromUuid("6F1C2DDC-5A8B-4A2B-9D9E-0F1E2D3C4B5A");
  ASSERT_TRUE(upper);
  EXPECT_EQ(*upper, *id);
  auto zero = UserIdFromUuid("00000000-0000-0000-0000-000000000000");
  ASSERT_TRUE(zero);
  EXPECT_EQ(*zero, "AAAAAAAAAAAAAAAAAAAAAA");
}

TEST(EnrolIdentityTest, UserIdRefusesWhatIsNotAUuid) {
  for (const char* bad :
       {"", "alice", "6f1c2ddc5a8b4a2b9d9e0f1e2d3c4b5a", "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5",
        "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5a0", "6f1c2ddc-5a8b-4a2b-9d9e_0f1e2d3c4b5a",
        "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5g", "6f1c2ddc-5a8b-4a2b9-d9e-0f1e2d3c4b5a"}) {
    auto id = UserIdFromUuid(bad);
    EXPECT_FALSE(id) << bad;
    if (!id) {
      EXPECT_EQ(id.error().code(), ErrorCode::kInvalidArgument);
    }
  }
}

TEST(EnrolIdentityTest, DeviceIdIsLowercaseHexWithoutLeadingZeros) {
  EXPECT_EQ(FormatDeviceId(0), "0");
  EXPECT_EQ(FormatDeviceId(1), "1");
  EXPECT_EQ(FormatDeviceId(0xab), "ab");
  EXPECT_EQ(FormatDeviceId(0x0123456789abcdefULL), "123456789abcdef");
  EXPECT_EQ(FormatDeviceId(0xffffffffffffffffULL), "ffffffffffffffff");
  EXPECT_TRUE(IsValidDeviceId("123456789abcdef"));
  EXPECT_TRUE(IsValidDeviceId("ffffffffffffffff"));
  for (const char* bad : {"", "0", "0ab", "AB", "xyz", "1ffffffffffffffff"}) {
    EXPECT_FALSE(IsValidDeviceId(bad)) << bad;
  }
}

TEST(EnrolIdentityTest, NewDeviceIdUsesEightRandomBytesAndIsNeverZero) {
  // The first draw is all zeros and must be discarded; the second is 00..0abc.
  testing::ScriptedRandom rng(
      {0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0xbc});
  auto id = NewDeviceId(rng);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, "abc");
  testing::ScriptedRandom full({0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04});
  EXPECT_EQ(*NewDeviceId(full), "deadbeef01020304");
}

TEST(EnrolIdentityTest, UrisAndIdentifierValues) {
  const WireIdentity id = Alice();
  EXPECT_EQ(id.HandleUri(), "wireapp://%40alice@example.com");
  EXPECT_EQ(id.ClientIdUri(), "wireapp://bxwt3FqLSiudng8eLTxLWg!abc123@example.com");
  EXPECT_EQ(
      UserIdentifierValue(id),
      R"({"name":"Alice Smith","domain":"example.com","handle":"wireapp://%40alice@example.com"})");
  EXPECT_EQ(
      DeviceIdentifierValue(id),
      R"({"name":"Alice Smith","domain":"example.com","handle":"wireapp://%40alice@example.com",)"
      R"("client-id":"wireapp://bxwt3FqLSiudng8eLTxLWg!abc123@example.com"})");
}

TEST(EnrolIdentityTest, NonAsciiNamesStayUtf8) {
  WireIdentity id = Alice();
  id.display_name = "Zoë Ünal";
  auto parsed = ParseJson(UserIdentifierValue(id));
  ASSERT_TRUE(parsed);
  EXPECT_EQ((*parsed)["name"], "Zoë Ünal");
}

TEST(EnrolIdentityTest, NewOrderPayload) {
  const WireIdentity id = Alice();
  const Json minimal = NewOrderPayload(id, std::nullopt, std::nullopt);
  EXPECT_EQ(minimal.size(), 1u);
  ASSERT_EQ(minimal["identifiers"].size(), 2u);
  EXPECT_EQ(minimal["identifiers"][0]["type"], "wireapp-device");
  EXPECT_EQ(minimal["identifiers"][0]["value"], DeviceIdentifierValue(id));
  EXPECT_EQ(minimal["identifiers"][1]["type"], "wireapp-user");
  EXPECT_EQ(minimal["identifiers"][1]["value"], UserIdentifierValue(id));

  const TimePoint nb = FromUnix(1'700'000'000);
  const Json full = NewOrderPayload(id, nb, nb + std::chrono::hours(24), "aki.serial");
  EXPECT_EQ(full["notBefore"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(full["notAfter"], "2023-11-15T22:13:20Z");
  EXPECT_EQ(full["replaces"], "aki.serial");
}

TEST(EnrolIdentityTest, IdentityFromClaims) {
  const Json claims = {{"sub", "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5a"},
                       {"name", "Alice Smith"},
                       {"preferred_username", "alice"},
                       {"email", "alice@example.com"}};
  auto id = IdentityFromClaims(claims, "example.com", "abc123");
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->ClientIdUri(), Alice().ClientIdUri());
  EXPECT_EQ(id->HandleUri(), Alice().HandleUri());
  EXPECT_EQ(id->display_name, "Alice Smith");

  struct Case {
    Json claims;
    const char* expected;
  };
  const Case cases[] = {
      {Json{{"name", "A"}, {"preferred_username", "a"}}, "\"sub\""},
      {Json{{"sub", "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5a"}, {"preferred_username", "a"}},
       "\"name\""},
      {Json{{"sub", "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5a"}, {"name", "A"}},
       "\"preferred_username\""},
      {Json{{"sub", "alice"}, {"name", "A"}, {"preferred_username", "a"}}, "not a UUID"},
      {Json{{"sub", "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5a"},
            {"name", ""},
            {"preferred_username", "a"}},
       "empty"},
      {Json{{"sub", "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5a"},
            {"name", "A"},
            {"preferred_username", "Alice@x"}},
       "not a Wire handle"},
      {Json{{"sub", 42}, {"name", "A"}, {"preferred_username", "a"}}, "\"sub\""},
  };
  for (const auto& c : cases) {
    auto r = IdentityFromClaims(c.claims, "example.com", "abc");
    ASSERT_FALSE(r) << c.expected;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().detail().find(c.expected), std::string::npos) << r.error().detail();
  }
  EXPECT_FALSE(IdentityFromClaims(claims, "", "abc"));
  EXPECT_FALSE(IdentityFromClaims(claims, "example.com", "0abc"));
}

}  // namespace
}  // namespace e2eid::cli
