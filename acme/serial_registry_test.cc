#include "acme/serial_registry.h"

#include <gtest/gtest.h>

#include "ca/authority.h"
#include "crypto/random.h"
#include "store/sqlite_store.h"
#include "tests/test_util.h"

namespace e2eid::acme {
namespace {

TEST(StoreSerialRegistryTest, ReservesInTheStoreAndRefusesDuplicates) {
  testing::TempDir tmp;
  auto store = store::OpenSqliteStore({.path = tmp / "e2eid.db"});
  ASSERT_TRUE(store) << store.error().ToString();
  FakeClock clock(FromUnix(1'800'000'000));
  StoreSerialRegistry registry(**store, clock);
  ASSERT_TRUE(registry.Reserve("1a2b3c"));
  auto again = registry.Reserve("1a2b3c");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  // And it survives reopening the database.
  store->reset();
  auto reopened = store::OpenSqliteStore({.path = tmp / "e2eid.db"});
  ASSERT_TRUE(reopened);
  StoreSerialRegistry registry2(**reopened, clock);
  EXPECT_EQ(registry2.Reserve("1a2b3c").error().code(), ErrorCode::kAlreadyExists);
}

TEST(StoreSerialRegistryTest, IssuerSerialsAreUniqueInTheStore) {
  testing::TempDir tmp;
  auto store = store::OpenSqliteStore({.path = tmp / "e2eid.db"});
  ASSERT_TRUE(store);
  SystemClock clock;
  crypto::SecureRandom random;
  ca::InitOptions o;
  o.dir = tmp / "ca";
  ASSERT_TRUE(ca::InitCa(o, clock, random));
  auto authority = ca::CertificateAuthority::Load(ca::CaPaths::In(o.dir), std::nullopt);
  ASSERT_TRUE(authority);
  StoreSerialRegistry registry(**store, clock);
  ca::Issuer issuer(*authority, {}, {}, registry, clock, random);
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  auto pub = key->public_key();
  ca::LeafRequest req;
  req.public_key = &*pub;
  req.dns_names = {"device.example.com"};
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(issuer.Issue(req));
  int64_t rows = -1;
  ASSERT_TRUE((*store)->ReadOnly([&](store::Transaction& tx) -> Status {
    E2EID_TRY(n, tx.CountRows(store::Table::kSerials));
    rows = n;
    return Ok();
  }));
  EXPECT_EQ(rows, 20);
}

}  // namespace
}  // namespace e2eid::acme
