// The client's messages against the server's own parsers (acme/wire.h): what `e2eid enrol` sends
// must be exactly what `e2eid serve` accepts.
#include <gtest/gtest.h>

#include "acme/wire.h"
#include "cli/enrol_cert.h"
#include "cli/enrol_identity.h"

namespace e2eid::cli {
namespace {

WireIdentity Alice() {
  return WireIdentity{"Alice Smith", "example.com", "alice", "bxwt3FqLSiudng8eLTxLWg",
                      "123456789abcdef"};
}

TEST(EnrolInteropTest, UserIdMatchesTheServer) {
  const char* uuid = "6f1c2ddc-5a8b-4a2b-9d9e-0f1e2d3c4b5a";
  EXPECT_EQ(UserIdFromUuid(uuid).value(), acme::WireUserIdFromUuid(uuid).value());
  EXPECT_EQ(Alice().HandleUri(), acme::WireHandleUri("alice", "example.com"));
}

TEST(EnrolInteropTest, IdentifiersParseOnTheServer) {
  const WireIdentity id = Alice();
  auto user = acme::ParseWireIdentifier(acme::kWireUserType, UserIdentifierValue(id), id.domain);
  ASSERT_TRUE(user) << user.error().ToString();
  auto device =
      acme::ParseWireIdentifier(acme::kWireDeviceType, DeviceIdentifierValue(id), id.domain);
  ASSERT_TRUE(device) << device.error().ToString();
  auto matched = acme::MatchWireIdentifiers(*user, *device);
  ASSERT_TRUE(matched) << matched.error().ToString();
  EXPECT_EQ(matched->display_name, "Alice Smith");
  EXPECT_EQ(matched->handle, "alice");
  EXPECT_EQ(matched->client.Uri(), id.ClientIdUri());
  EXPECT_EQ(device->client.device_id, id.device_id);
  EXPECT_EQ(device->client.user_id, id.user_id);
}

TEST(EnrolInteropTest, CsrPassesTheServerCheckForEveryKeyType) {
  const WireIdentity id = Alice();
  auto server_identity =
      acme::ParseWireIdentifier(acme::kWireDeviceType, DeviceIdentifierValue(id), id.domain);
  ASSERT_TRUE(server_identity);
  for (auto type : {crypto::KeyType::kP256, crypto::KeyType::kP384, crypto::KeyType::kP521,
                    crypto::KeyType::kEd25519}) {
    auto key = crypto::PrivateKey::Generate(type);
    ASSERT_TRUE(key);
    auto der = BuildDeviceCsr(*key, id);
    ASSERT_TRUE(der);
    auto checked = acme::CheckWireCsr(*der, *server_identity);
    ASSERT_TRUE(checked) << crypto::KeyTypeName(type) << ": " << checked.error().ToString();
    EXPECT_TRUE(checked->Equals(*key->public_key()));
  }
  // And a CSR for someone else is refused by the server (the check can fail).
  WireIdentity other = id;
  other.device_id = "abc";
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kP256);
  auto der = BuildDeviceCsr(*key, other);
  ASSERT_TRUE(der);
  EXPECT_FALSE(acme::CheckWireCsr(*der, *server_identity));
}

}  // namespace
}  // namespace e2eid::cli
