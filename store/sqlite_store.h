// SqliteStore: the embedded Store implementation.
//
// Durability and isolation:
// - WAL journal mode: readers never block the writer and see a consistent snapshot.
// - synchronous=FULL by default: every commit is fsync'd before InTransaction returns. A CA must
//   not forget a certificate it has issued or a serial it has reserved after a power loss (with
//   NORMAL, the last commits can roll back on power loss, though not on a process crash).
//   SqliteOptions::synchronous_full = false selects NORMAL for benchmarks and throw-away data.
// - foreign_keys=ON; SQLite "defensive" mode; double-quoted string literals disabled.
// - A process crash at any point leaves the database at its last commit.
//
// Connections: one writer connection (write transactions are serialised by a mutex in-process and
// by BEGIN IMMEDIATE plus the busy timeout across processes) and `reader_pool_size` reader
// connections (query_only) for ReadOnly; a ReadOnly call waits when all readers are busy. Every
// connection caches its prepared statements; SQL is never built from values.
//
// Schema: versioned migrations (PRAGMA user_version) run at open inside one transaction; opening is
// idempotent; a database whose version is newer than this build knows is refused (kStore).
//
// A new database file is created with mode 0600 (SQLite gives the -wal and -shm files the same
// mode). The path ":memory:" opens a private in-memory database (for tests): there are no reader
// connections and ReadOnly shares the writer connection, serialised with writes.
#ifndef E2EID_STORE_SQLITE_STORE_H_
#define E2EID_STORE_SQLITE_STORE_H_

#include <chrono>
#include <memory>
#include <string>

#include "core/error.h"
#include "store/store.h"

namespace e2eid::store {

struct SqliteOptions {
  std::string path;  // database file, or ":memory:"
  // How long a write transaction waits for another process's write lock before kUnavailable.
  std::chrono::milliseconds busy_timeout{5000};
  int reader_pool_size = 4;  // 1..64; ignored for ":memory:"
  bool synchronous_full = true;
  // Page cache of the writer connection, in KiB (1024..1048576; allocated as pages are used).
  // Large scopes need it: revoking 100,000 certificates dirties ~25 MB of pages, and with SQLite's
  // default 2 MB the writer spills pages to the WAL mid-transaction (2-3 times the system CPU).
  // Reader connections keep SQLite's default.
  int writer_cache_kib = 65536;
  bool create_if_missing = true;  // false: kNotFound when the file does not exist
};

class SqliteStore final : public Store {
 public:
  // Opens (creating when allowed) and migrates the database. Errors: kInvalidArgument for bad
  // options, kNotFound for a missing file with create_if_missing = false, kIo when the file cannot
  // be created, kStore when SQLite fails or the schema version is newer than LatestSchemaVersion().
  static Result<std::unique_ptr<SqliteStore>> Open(const SqliteOptions& options);

  // The schema version this build migrates to.
  static int LatestSchemaVersion();

  ~SqliteStore() override;

  Status InTransaction(const std::function<Status(Transaction&)>& fn) override;
  Status ReadOnly(const std::function<Status(Transaction&)>& fn) override;
  // With synchronous_full: this commit runs with PRAGMA synchronous = NORMAL (WAL: no fsync of
  // its own; the WAL's checksummed frames make the next FULL commit persist it too).
  Status InTransactionRelaxed(const std::function<Status(Transaction&)>& fn) override;
  // In the memory of this process (store/memory_nonces.h): no commit per nonce. Nonces written
  // with Transaction::InsertNonce (device authority, admin API proofs) stay in the nonces table.
  Status IssueNonce(const Nonce& n) override;
  Status UseNonce(std::string_view value, TimePoint now) override;

  // Runs PRAGMA integrity_check and PRAGMA foreign_key_check. Ok when both find nothing; kStore
  // listing the problems otherwise.
  Status IntegrityCheck();
  // PRAGMA user_version of the open database.
  Result<int> SchemaVersion();
  const std::string& path() const;

  struct Impl;  // defined in sqlite_store.cc

 private:
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  Status RunWrite(const std::function<Status(Transaction&)>& fn, bool relaxed);
  std::unique_ptr<Impl> impl_;
};

// Same as SqliteStore::Open.
Result<std::unique_ptr<SqliteStore>> OpenSqliteStore(const SqliteOptions& options);

}  // namespace e2eid::store

#endif  // E2EID_STORE_SQLITE_STORE_H_
