#include "store/memory_nonces.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_store.h"

namespace e2eid::store {
namespace {

const TimePoint kT0 = TimePoint{} + std::chrono::hours(24 * 365 * 50);

TEST(MemoryNonces, EachValueWorksExactlyOnce) {
  MemoryNonces nonces;
  ASSERT_TRUE(nonces.Issue({"a", kT0 + std::chrono::seconds(60)}));
  ASSERT_TRUE(nonces.Issue({"b", kT0 + std::chrono::seconds(60)}));
  EXPECT_EQ(nonces.size(), 2u);
  EXPECT_TRUE(nonces.Use("a", kT0));
  auto again = nonces.Use("a", kT0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kBadNonce);
  EXPECT_EQ(nonces.Use("never-issued", kT0).error().code(), ErrorCode::kBadNonce);
  EXPECT_TRUE(nonces.Use("b", kT0));
  EXPECT_EQ(nonces.size(), 0u);
}

TEST(MemoryNonces, RefusesDuplicatesAndEmptyValues) {
  MemoryNonces nonces;
  ASSERT_TRUE(nonces.Issue({"a", kT0}));
  EXPECT_EQ(nonces.Issue({"a", kT0}).error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(nonces.Issue({"", kT0}).error().code(), ErrorCode::kInvalidArgument);
}

TEST(MemoryNonces, ExpiredValuesAreRefusedAndDropped) {
  MemoryNonces nonces;
  ASSERT_TRUE(nonces.Issue({"old", kT0 + std::chrono::seconds(10)}));
  ASSERT_TRUE(nonces.Issue({"new", kT0 + std::chrono::seconds(100)}));
  // At the expiry instant the nonce is no longer valid (now < expires_at is required).
  EXPECT_EQ(nonces.Use("old", kT0 + std::chrono::seconds(10)).error().code(), ErrorCode::kBadNonce);
  EXPECT_EQ(nonces.size(), 1u);
  EXPECT_TRUE(nonces.Use("new", kT0 + std::chrono::seconds(99)));
}

TEST(MemoryNonces, MemoryIsBoundedByDroppingTheOldest) {
  MemoryNonces nonces(3);
  for (const char* v : {"n1", "n2", "n3", "n4", "n5"}) {
    ASSERT_TRUE(nonces.Issue({v, kT0 + std::chrono::seconds(60)}));
  }
  EXPECT_LE(nonces.size(), 3u);
  EXPECT_EQ(nonces.Use("n1", kT0).error().code(), ErrorCode::kBadNonce);
  EXPECT_TRUE(nonces.Use("n5", kT0));
  EXPECT_TRUE(nonces.Use("n4", kT0));
}

TEST(MemoryNonces, ConcurrentUsersGetEachValueOnce) {
  MemoryNonces nonces;
  constexpr int kValues = 2000;
  for (int i = 0; i < kValues; ++i) {
    ASSERT_TRUE(nonces.Issue({"v" + std::to_string(i), kT0 + std::chrono::seconds(60)}));
  }
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kValues; ++i) {
        if (nonces.Use("v" + std::to_string(i), kT0)) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kValues);
}

// The SQLite store keeps ACME nonces in memory: no row, no commit, still single-use.
TEST(MemoryNonces, SqliteStoreUsesThemOutsideTheTable) {
  auto store = OpenSqliteStore({.path = ":memory:"});
  ASSERT_TRUE(store) << store.error().ToString();
  ASSERT_TRUE((*store)->IssueNonce({"acme-nonce", kT0 + std::chrono::seconds(60)}));
  int64_t rows = -1;
  ASSERT_TRUE((*store)->ReadOnly([&](Transaction& tx) -> Status {
    E2EID_TRY(n, tx.CountRows(Table::kNonces));
    rows = n;
    return Ok();
  }));
  EXPECT_EQ(rows, 0);
  EXPECT_TRUE((*store)->UseNonce("acme-nonce", kT0));
  EXPECT_EQ((*store)->UseNonce("acme-nonce", kT0).error().code(), ErrorCode::kBadNonce);
}

}  // namespace
}  // namespace e2eid::store
