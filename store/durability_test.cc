// Which commits of the SQLite store flush to disk. A counting VFS, registered as SQLite's default
// for this process, wraps the real one and counts xSync calls, so the test sees exactly what the
// store asks the operating system to make durable.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>

#include "store/sqlite_store.h"

namespace e2eid::store {
namespace {

std::atomic<int> g_syncs{0};
sqlite3_vfs* g_real = nullptr;
sqlite3_io_methods g_methods{};
const sqlite3_io_methods* g_real_methods = nullptr;

// A file of the counting VFS: the real file follows this header in the same allocation.
struct CountingFile {
  sqlite3_file base;
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

CountingFile* Wrap(sqlite3_file* f) { return reinterpret_cast<CountingFile*>(f); }

int CountingOpen(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  CountingFile* cf = Wrap(file);
  const int rc = g_real->xOpen(g_real, name, cf->real(), flags, out_flags);
  if (rc != SQLITE_OK || cf->real()->pMethods == nullptr) {
    cf->base.pMethods = nullptr;
    return rc;
  }
  if (g_real_methods == nullptr) {
    g_real_methods = cf->real()->pMethods;
    g_methods = *g_real_methods;
    g_methods.xClose = [](sqlite3_file* f) {
      const int r = Wrap(f)->real()->pMethods->xClose(Wrap(f)->real());
      return r;
    };
    g_methods.xRead = [](sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
      return Wrap(f)->real()->pMethods->xRead(Wrap(f)->real(), b, n, o);
    };
    g_methods.xWrite = [](sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
      return Wrap(f)->real()->pMethods->xWrite(Wrap(f)->real(), b, n, o);
    };
    g_methods.xTruncate = [](sqlite3_file* f, sqlite3_int64 s) {
      return Wrap(f)->real()->pMethods->xTruncate(Wrap(f)->real(), s);
    };
    g_methods.xSync = [](sqlite3_file* f, int flags) {
      g_syncs.fetch_add(1);
      return Wrap(f)->real()->pMethods->xSync(Wrap(f)->real(), flags);
    };
    g_methods.xFileSize = [](sqlite3_file* f, sqlite3_int64* s) {
      return Wrap(f)->real()->pMethods->xFileSize(Wrap(f)->real(), s);
    };
    g_methods.xLock = [](sqlite3_file* f, int l) {
      return Wrap(f)->real()->pMethods->xLock(Wrap(f)->real(), l);
    };
    g_methods.xUnlock = [](sqlite3_file* f, int l) {
      return Wrap(f)->real()->pMethods->xUnlock(Wrap(f)->real(), l);
    };
    g_methods.xCheckReservedLock = [](sqlite3_file* f, int* r) {
      return Wrap(f)->real()->pMethods->xCheckReservedLock(Wrap(f)->real(), r);
    };
    g_methods.xFileControl = [](sqlite3_file* f, int op, void* a) {
      return Wrap(f)->real()->pMethods->xFileControl(Wrap(f)->real(), op, a);
    };
    g_methods.xSectorSize = [](sqlite3_file* f) {
      return Wrap(f)->real()->pMethods->xSectorSize(Wrap(f)->real());
    };
    g_methods.xDeviceCharacteristics = [](sqlite3_file* f) {
      return Wrap(f)->real()->pMethods->xDeviceCharacteristics(Wrap(f)->real());
    };
    g_methods.xShmMap = [](sqlite3_file* f, int p, int s, int e, void volatile** out) {
      return Wrap(f)->real()->pMethods->xShmMap(Wrap(f)->real(), p, s, e, out);
    };
    g_methods.xShmLock = [](sqlite3_file* f, int o, int n, int fl) {
      return Wrap(f)->real()->pMethods->xShmLock(Wrap(f)->real(), o, n, fl);
    };
    g_methods.xShmBarrier = [](sqlite3_file* f) {
      Wrap(f)->real()->pMethods->xShmBarrier(Wrap(f)->real());
    };
    g_methods.xShmUnmap = [](sqlite3_file* f, int d) {
      return Wrap(f)->real()->pMethods->xShmUnmap(Wrap(f)->real(), d);
    };
    g_methods.xFetch = [](sqlite3_file* f, sqlite3_int64 o, int n, void** p) {
      return Wrap(f)->real()->pMethods->xFetch(Wrap(f)->real(), o, n, p);
    };
    g_methods.xUnfetch = [](sqlite3_file* f, sqlite3_int64 o, void* p) {
      return Wrap(f)->real()->pMethods->xUnfetch(Wrap(f)->real(), o, p);
    };
  }
  cf->base.pMethods = &g_methods;
  return rc;
}

sqlite3_vfs g_counting{};

void RegisterCountingVfs() {
  if (g_real != nullptr) return;
  g_real = sqlite3_vfs_find(nullptr);
  ASSERT_NE(g_real, nullptr);
  g_counting = *g_real;
  g_counting.zName = "e2eid-counting";
  g_counting.szOsFile = static_cast<int>(sizeof(CountingFile)) + g_real->szOsFile;
  g_counting.xOpen = &CountingOpen;
  ASSERT_EQ(sqlite3_vfs_register(&g_counting, /*makeDflt=*/1), SQLITE_OK);
}

class DurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterCountingVfs();
    std::string tmpl = (std::filesystem::temp_directory_path() / "e2eid-durability-XXXXXX");
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = OpenSqliteStore({.path = dir_ + "/e2eid.db"});
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Syncs that one write transaction reserving `serial` asks for.
  int SyncsOf(bool relaxed, const std::string& serial) {
    const int before = g_syncs.load();
    auto fn = [&](Transaction& tx) { return tx.ReserveSerial(serial, TimePoint{}); };
    auto st = relaxed ? store_->InTransactionRelaxed(fn) : store_->InTransaction(fn);
    EXPECT_TRUE(st) << st.error().ToString();
    return g_syncs.load() - before;
  }

  int64_t Serials() {
    int64_t n = -1;
    EXPECT_TRUE(store_->ReadOnly([&](Transaction& tx) -> Status {
      E2EID_TRY(c, tx.CountRows(Table::kSerials));
      n = c;
      return Ok();
    }));
    return n;
  }

  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(DurabilityTest, DurableCommitsFlushRelaxedOnesDoNot) {
  EXPECT_GE(SyncsOf(/*relaxed=*/false, "01"), 1);
  EXPECT_EQ(SyncsOf(/*relaxed=*/true, "02"), 0);
  EXPECT_EQ(SyncsOf(/*relaxed=*/true, "03"), 0);
  // The next durable commit flushes again (and with it the relaxed ones before it).
  EXPECT_GE(SyncsOf(/*relaxed=*/false, "04"), 1);
  EXPECT_GE(SyncsOf(/*relaxed=*/false, "05"), 1);
  EXPECT_EQ(Serials(), 5);
}

TEST_F(DurabilityTest, RelaxedCommitsAreAtomicAndRollBackOnError) {
  auto st = store_->InTransactionRelaxed([&](Transaction& tx) -> Status {
    E2EID_CHECK_OK(tx.ReserveSerial("0a", TimePoint{}));
    return Fail(Error::Internal("abort"));
  });
  EXPECT_FALSE(st);
  EXPECT_EQ(Serials(), 0);
  EXPECT_EQ(SyncsOf(/*relaxed=*/true, "0b"), 0);
  EXPECT_EQ(Serials(), 1);
}

TEST_F(DurabilityTest, AcmeNoncesNeverTouchTheDisk) {
  const int before = g_syncs.load();
  for (int i = 0; i < 100; ++i) {
    const std::string v = "nonce-" + std::to_string(i);
    ASSERT_TRUE(store_->IssueNonce({v, TimePoint{} + std::chrono::hours(1)}));
    ASSERT_TRUE(store_->UseNonce(v, TimePoint{}));
  }
  EXPECT_EQ(g_syncs.load(), before);
}

}  // namespace
}  // namespace e2eid::store
