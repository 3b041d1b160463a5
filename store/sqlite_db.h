// Internal to store/: thin RAII wrappers over the SQLite C API used by SqliteStore. Not part of the
// public interface (the Store interface names no SQLite types).
//
// Not thread-safe: a Connection and its Statements are used by one thread at a time (SqliteStore
// hands each connection to one transaction at a time).
#ifndef E2EID_STORE_SQLITE_DB_H_
#define E2EID_STORE_SQLITE_DB_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/error.h"

namespace e2eid::store::sqlite {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Maps an SQLite (extended) result code to an Error whose detail starts with `context`:
// PRIMARY KEY/UNIQUE -> kAlreadyExists, FOREIGN KEY -> kConflict, CHECK/NOT NULL ->
// kInvalidArgument, a trigger's RAISE(ABORT) -> kForbidden, BUSY/LOCKED -> kUnavailable, anything
// else -> kStore.
Error SqliteError(sqlite3* db, int rc, std::string_view context);

// A cached prepared statement lent to one operation. Binding errors are remembered and reported by
// the next Step/Run. On destruction the statement is reset, its bindings cleared and it goes back
// to the connection's cache.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use, std::string_view context);
  Statement(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Parameters are 1-based (?1, ?2, ...). Values are copied.
  void BindText(int i, std::string_view v);
  void BindInt(int i, int64_t v);
  void BindTime(int i, TimePoint t) { BindInt(i, ToUnix(t)); }
  void BindBlob(int i, std::span<const uint8_t> v);
  void BindNull(int i);
  void BindOptText(int i, const std::optional<std::string>& v);
  void BindOptText(int i, std::optional<std::string_view> v);
  void BindOptTime(int i, const std::optional<TimePoint>& v);
  void BindOptInt(int i, const std::optional<int64_t>& v);

  // Advances: true when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion; kInternal if the statement returns a row.
  Status Run();
  // Rows changed by the last completed INSERT/UPDATE/DELETE on this connection.
  int64_t Changes() const;

  // Column accessors for the current row (0-based).
  bool IsNull(int c) const;
  int64_t Int(int c) const;
  TimePoint Time(int c) const { return FromUnix(Int(c)); }
  std::string Text(int c) const;
  Bytes Blob(int c) const;
  std::optional<std::string> OptText(int c) const;
  std::optional<TimePoint> OptTime(int c) const;
  std::optional<int64_t> OptInt(int c) const;

 private:
  void NoteBind(int rc, int i);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
  std::string context_;
  int bind_error_ = SQLITE_OK;
  int bind_error_index_ = 0;
};

// One database connection with its statement cache.
class Connection {
 public:
  // Opens `path` with `flags` (SQLITE_OPEN_*; NOMUTEX, EXRESCODE and NOFOLLOW are added) and
  // applies the settings every e2eid connection has: extended result codes, busy timeout,
  // defensive mode, no double-quoted string literals, foreign keys on, trusted_schema off.
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, int flags,
                                                  int busy_timeout_ms);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_.get(); }

  // Returns the cached statement for `sql` (a constant: SQL is never built from values),
  // preparing it on first use. kInternal when the same statement is already lent out.
  Result<Statement> Prepare(const char* sql, std::string_view context);

  // Runs constant SQL without parameters (BEGIN, COMMIT, DDL, PRAGMA without results). Compiles
  // `sql` on every call and may hold several statements.
  Status Exec(const char* sql, std::string_view context);

  // Runs one constant statement without parameters or results through the statement cache
  // (compiled once): for the BEGIN/COMMIT/ROLLBACK of every transaction.
  Status Run(const char* sql, std::string_view context);

  // Runs a PRAGMA or query returning one text value in its first row's first column.
  Result<std::string> QueryText(const char* sql, std::string_view context);

 private:
  struct CacheEntry {
    StmtPtr stmt;
    bool in_use = false;
  };
  explicit Connection(DbPtr db) : db_(std::move(db)) {}

  // Looks statements up by string_view: no key string is built on a cache hit.
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view sql) const { return std::hash<std::string_view>{}(sql); }
  };

  DbPtr db_;  // declared first: destroyed after the statements below
  std::unordered_map<std::string, CacheEntry, SqlHash, std::equal_to<>> cache_;
};

}  // namespace e2eid::store::sqlite

#endif  // E2EID_STORE_SQLITE_DB_H_
