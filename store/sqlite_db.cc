#include "store/sqlite_db.h"

#include <utility>

namespace e2eid::store::sqlite {

Error SqliteError(sqlite3* db, int rc, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
      return Error::AlreadyExists(std::move(msg));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return Error::Conflict(std::move(msg) + " (a referenced row does not exist)");
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
      return Error::InvalidArgument(std::move(msg));
    case SQLITE_CONSTRAINT_TRIGGER:
      return Error::Forbidden(std::move(msg));
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error::Unavailable(std::move(msg));
    default:
      return Error::Store(std::move(msg) + " (SQLite code " + std::to_string(rc) + ")");
  }
}

// ---- Statement ---------------------------------------------------------------------------------

Statement::Statement(sqlite3* db, sqlite3_stmt* stmt, bool* in_use, std::string_view context)
    : db_(db), stmt_(stmt), in_use_(in_use), context_(context) {
  *in_use_ = true;
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)),
      context_(std::move(other.context_)),
      bind_error_(other.bind_error_),
      bind_error_index_(other.bind_error_index_) {}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
}

void Statement::NoteBind(int rc, int i) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) {
    bind_error_ = rc;
    bind_error_index_ = i;
  }
}

void Statement::BindText(int i, std::string_view v) {
  NoteBind(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), i);
}
void Statement::BindInt(int i, int64_t v) { NoteBind(sqlite3_bind_int64(stmt_, i, v), i); }
void Statement::BindBlob(int i, std::span<const uint8_t> v) {
  // A zero-length blob must still be a blob, not NULL: sqlite3_bind_zeroblob does that.
  if (v.empty()) {
    NoteBind(sqlite3_bind_zeroblob(stmt_, i, 0), i);
    return;
  }
  NoteBind(sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT), i);
}
void Statement::BindNull(int i) { NoteBind(sqlite3_bind_null(stmt_, i), i); }
void Statement::BindOptText(int i, const std::optional<std::string>& v) {
  if (v) {
    BindText(i, *v);
  } else {
    BindNull(i);
  }
}
void Statement::BindOptText(int i, std::optional<std::string_view> v) {
  if (v) {
    BindText(i, *v);
  } else {
    BindNull(i);
  }
}
void Statement::BindOptTime(int i, const std::optional<TimePoint>& v) {
  if (v) {
    BindTime(i, *v);
  } else {
    BindNull(i);
  }
}
void Statement::BindOptInt(int i, const std::optional<int64_t>& v) {
  if (v) {
    BindInt(i, *v);
  } else {
    BindNull(i);
  }
}

Result<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) {
    return Fail(Error::Store(context_ + ": binding parameter " + std::to_string(bind_error_index_) +
                             " failed: " + sqlite3_errstr(bind_error_)));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // With the v2 prepare interface the step's code is already the specific error.
  return Fail(SqliteError(db_, rc, context_));
}

Status Statement::Run() {
  E2EID_TRY(row, Step());
  if (row) return Fail(Error::Internal(context_ + ": statement unexpectedly returned a row"));
  return Ok();
}

int64_t Statement::Changes() const { return sqlite3_changes64(db_); }

bool Statement::IsNull(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
int64_t Statement::Int(int c) const { return sqlite3_column_int64(stmt_, c); }
std::string Statement::Text(int c) const {
  const auto* p = sqlite3_column_text(stmt_, c);
  const int n = sqlite3_column_bytes(stmt_, c);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}
Bytes Statement::Blob(int c) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, c));
  const int n = sqlite3_column_bytes(stmt_, c);
  if (p == nullptr || n <= 0) return {};
  return Bytes(p, p + n);
}
std::optional<std::string> Statement::OptText(int c) const {
  if (IsNull(c)) return std::nullopt;
  return Text(c);
}
std::optional<TimePoint> Statement::OptTime(int c) const {
  if (IsNull(c)) return std::nullopt;
  return Time(c);
}
std::optional<int64_t> Statement::OptInt(int c) const {
  if (IsNull(c)) return std::nullopt;
  return Int(c);
}

// ---- Connection --------------------------------------------------------------------------------

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, int flags,
                                                     int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &raw,
      flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOFOLLOW, nullptr);
  DbPtr db(raw);  // sqlite3_open_v2 allocates a handle even when it fails
  if (rc != SQLITE_OK) {
    return Fail(SqliteError(db.get(), rc, "opening database " + path));
  }
  std::unique_ptr<Connection> conn(new Connection(std::move(db)));
  sqlite3* h = conn->db();
  sqlite3_extended_result_codes(h, 1);
  if (int r = sqlite3_busy_timeout(h, busy_timeout_ms); r != SQLITE_OK) {
    return Fail(SqliteError(h, r, "setting busy timeout"));
  }
  // Defensive mode forbids writable_schema and other ways of corrupting the file from SQL; DQS off
  // makes a double-quoted identifier typo an error instead of a string literal.
  const std::pair<int, const char*> configs[] = {
      {SQLITE_DBCONFIG_DEFENSIVE, "SQLITE_DBCONFIG_DEFENSIVE"},
      {SQLITE_DBCONFIG_ENABLE_FKEY, "SQLITE_DBCONFIG_ENABLE_FKEY"},
      {SQLITE_DBCONFIG_ENABLE_TRIGGER, "SQLITE_DBCONFIG_ENABLE_TRIGGER"},
  };
  for (const auto& [op, name] : configs) {
    int enabled = 0;
    if (int r = sqlite3_db_config(h, op, 1, &enabled); r != SQLITE_OK || enabled != 1) {
      return Fail(Error::Store(std::string("enabling ") + name + " failed"));
    }
  }
  const std::pair<int, const char*> off_configs[] = {
      {SQLITE_DBCONFIG_DQS_DML, "SQLITE_DBCONFIG_DQS_DML"},
      {SQLITE_DBCONFIG_DQS_DDL, "SQLITE_DBCONFIG_DQS_DDL"},
  };
  for (const auto& [op, name] : off_configs) {
    int enabled = 1;
    if (int r = sqlite3_db_config(h, op, 0, &enabled); r != SQLITE_OK || enabled != 0) {
      return Fail(Error::Store(std::string("disabling ") + name + " failed"));
    }
  }
  E2EID_CHECK_OK(conn->Exec("PRAGMA trusted_schema = OFF", "disabling trusted_schema"));
  E2EID_TRY(fk, conn->QueryText("PRAGMA foreign_keys", "reading foreign_keys"));
  if (fk != "1") return Fail(Error::Store("foreign keys are not enabled on " + path));
  return conn;
}

Result<Statement> Connection::Prepare(const char* sql, std::string_view context) {
  auto it = cache_.find(std::string_view(sql));
  const bool inserted = it == cache_.end();
  if (inserted) it = cache_.try_emplace(std::string(sql)).first;
  CacheEntry& entry = it->second;
  if (!inserted && entry.in_use) {
    return Fail(Error::Internal(std::string(context) + ": statement is already in use"));
  }
  if (entry.stmt == nullptr) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK || stmt == nullptr) {
      cache_.erase(it);
      return Fail(SqliteError(db(), rc == SQLITE_OK ? SQLITE_ERROR : rc,
                              std::string(context) + ": preparing statement"));
    }
    entry.stmt = std::move(stmt);
  }
  return Statement(db(), entry.stmt.get(), &entry.in_use, context);
}

Status Connection::Run(const char* sql, std::string_view context) {
  E2EID_TRY(st, Prepare(sql, context));
  return st.Run();
}

Status Connection::Exec(const char* sql, std::string_view context) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db(), sql, nullptr, nullptr, &err);
  std::unique_ptr<char, decltype(&sqlite3_free)> err_owner(err, &sqlite3_free);
  if (rc != SQLITE_OK) return Fail(SqliteError(db(), rc, context));
  return Ok();
}

Result<std::string> Connection::QueryText(const char* sql, std::string_view context) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db(), sql, -1, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK || stmt == nullptr) {
    return Fail(SqliteError(db(), rc == SQLITE_OK ? SQLITE_ERROR : rc, context));
  }
  const int step = sqlite3_step(stmt.get());
  if (step == SQLITE_DONE) return std::string();
  if (step != SQLITE_ROW) return Fail(SqliteError(db(), step, context));
  const auto* p = sqlite3_column_text(stmt.get(), 0);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p),
                                    static_cast<size_t>(sqlite3_column_bytes(stmt.get(), 0)));
}

}  // namespace e2eid::store::sqlite
