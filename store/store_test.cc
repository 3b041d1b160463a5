#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <future>
#include <latch>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/file.h"
#include "store/records.h"
#include "store/sqlite_db.h"
#include "store/sqlite_schema.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace e2eid::store {
namespace {

using std::chrono::seconds;

const TimePoint kT0 = FromUnix(1'700'000'000);

// Keeps only the status of a Result.
template <typename T>
Status Discard(const Result<T>& r) {
  if (!r) return Fail(r.error());
  return Ok();
}

Account MakeAccount(const std::string& id, const std::string& thumbprint) {
  Account a;
  a.id = id;
  a.key_thumbprint = thumbprint;
  a.jwk = R"({"kty":"OKP","crv":"Ed25519","x":")" + thumbprint + R"("})";
  a.contacts = R"(["mailto:admin@example.com"])";
  a.created_at = kT0;
  return a;
}

Order MakeOrder(const std::string& id, const std::string& account_id, TimePoint created) {
  Order o;
  o.id = id;
  o.account_id = account_id;
  o.status = OrderStatus::kReady;
  o.identifiers = R"([{"type":"wireapp-device","value":"x"}])";
  o.expires = created + seconds(3600);
  o.created_at = created;
  o.updated_at = created;
  return o;
}

Authorization MakeAuthz(const std::string& id, const std::string& order_id,
                        const std::string& account_id, const std::string& type,
                        const std::string& value) {
  Authorization a;
  a.id = id;
  a.order_id = order_id;
  a.account_id = account_id;
  a.identifier_type = type;
  a.identifier_value = value;
  a.expires = kT0 + seconds(3600);
  return a;
}

Challenge MakeChallenge(const std::string& id, const std::string& authz_id,
                        const std::string& type) {
  Challenge c;
  c.id = id;
  c.authz_id = authz_id;
  c.type = type;
  c.token = "token-" + id;
  return c;
}

Certificate MakeCert(const std::string& serial, const std::string& user,
                     std::optional<std::string> device, const std::string& spki,
                     TimePoint issued_at, const std::string& issuer = "issuer-a") {
  Certificate c;
  c.serial = serial;
  c.issuer_id = issuer;
  c.user_id = user;
  c.device_id = std::move(device);
  c.spki_sha256 = spki;
  c.not_before = issued_at;
  c.not_after = issued_at + seconds(90 * 86400);
  c.issued_at = issued_at;
  c.der = {0x30, 0x82, 0x00, 0x00, 0xff, 0x00, 0x7f};  // includes a NUL byte on purpose
  c.chain_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  return c;
}

User MakeUser(const std::string& id) {
  User u;
  u.id = id;
  u.handle = "handle-" + id;
  u.display_name = "Name " + id;
  u.first_seen = kT0;
  u.last_seen = kT0;
  return u;
}

Device MakeDevice(const std::string& id, const std::string& user_id) {
  Device d;
  d.id = id;
  d.user_id = user_id;
  d.display_name = "Name " + user_id;
  d.handle = "handle-" + user_id;
  d.key_thumbprint = "kt-" + id;
  d.first_seen = kT0;
  d.last_seen = kT0;
  return d;
}

AuditEvent MakeAudit(const std::string& action, const std::string& details = "{}") {
  AuditEvent e;
  e.at = kT0;
  e.actor = "admin:alice";
  e.action = action;
  e.target = "serial:01";
  e.source = "127.0.0.1";
  e.outcome = "success";
  e.details = details;
  return e;
}

// A raw SQLite connection to the store's file, for what the Store API deliberately cannot do
// (attempt to rewrite audit rows, tamper with the schema version).
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3* raw = nullptr;
    rc_ = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
    db_.reset(raw);
    if (rc_ == SQLITE_OK) sqlite3_busy_timeout(db_.get(), 5000);
  }
  bool ok() const { return rc_ == SQLITE_OK; }
  // Returns the SQLite result code; `error` receives the message on failure.
  int Exec(const std::string& sql, std::string* error = nullptr) {
    char* msg = nullptr;
    const int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &msg);
    std::unique_ptr<char, decltype(&sqlite3_free)> owner(msg, &sqlite3_free);
    if (error != nullptr) *error = msg != nullptr ? msg : "";
    return rc;
  }
  // The integer in the first column of the first row, or -1 when there is none.
  int64_t QueryInt(const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return -1;
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, &sqlite3_finalize);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) return -1;
    return sqlite3_column_int64(stmt.get(), 0);
  }
  std::string QueryText(const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) return "<err>";
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, &sqlite3_finalize);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) return "<none>";
    const auto* p = sqlite3_column_text(stmt.get(), 0);
    return p != nullptr ? reinterpret_cast<const char*>(p) : "<null>";
  }

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Closer> db_;
  int rc_ = SQLITE_ERROR;
};

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "e2eid-store-test-XXXXXX");
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/e2eid.db";
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen() {
    store_.reset();
    SqliteOptions options;
    options.path = path_;
    auto s = SqliteStore::Open(options);
    ASSERT_TRUE(s) << s.error().ToString();
    store_ = std::move(*s);
  }

  Status Tx(const std::function<Status(Transaction&)>& fn) { return store_->InTransaction(fn); }
  Status Ro(const std::function<Status(Transaction&)>& fn) { return store_->ReadOnly(fn); }

  int64_t Count(Table t) {
    int64_t n = -1;
    auto st = Ro([&](Transaction& tx) -> Status {
      E2EID_TRY(c, tx.CountRows(t));
      n = c;
      return Ok();
    });
    EXPECT_TRUE(st) << st.error().ToString();
    return n;
  }

  // Inserts an account "acct" with one order "order-1" in status ready.
  void SeedAccountAndOrder() {
    ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
      E2EID_CHECK_OK(tx.InsertAccount(MakeAccount("acct", "thumb")));
      return tx.InsertOrder(MakeOrder("order-1", "acct", kT0));
    }));
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<SqliteStore> store_;
};

// Expects `r` (a Status or Result) to have failed with `code`.
#define EXPECT_CODE(r, c)                                       \
  do {                                                          \
    const auto& r_ = (r);                                       \
    EXPECT_FALSE(r_.has_value());                               \
    if (!r_.has_value()) {                                      \
      EXPECT_EQ(r_.error().code(), c) << r_.error().ToString(); \
    }                                                           \
  } while (0)

// ---- records ----------------------------------------------------------------------------------

TEST(StoreRecordsTest, StatusNamesRoundTrip) {
  for (auto s : {AccountStatus::kValid, AccountStatus::kDeactivated, AccountStatus::kRevoked}) {
    EXPECT_EQ(*ParseAccountStatus(ToString(s)), s);
  }
  for (auto s : {OrderStatus::kPending, OrderStatus::kReady, OrderStatus::kProcessing,
                 OrderStatus::kValid, OrderStatus::kInvalid}) {
    EXPECT_EQ(*ParseOrderStatus(ToString(s)), s);
  }
  for (auto s : {AuthorizationStatus::kPending, AuthorizationStatus::kValid,
                 AuthorizationStatus::kInvalid, AuthorizationStatus::kDeactivated,
                 AuthorizationStatus::kExpired, AuthorizationStatus::kRevoked}) {
    EXPECT_EQ(*ParseAuthorizationStatus(ToString(s)), s);
  }
  for (auto s : {ChallengeStatus::kPending, ChallengeStatus::kProcessing, ChallengeStatus::kValid,
                 ChallengeStatus::kInvalid}) {
    EXPECT_EQ(*ParseChallengeStatus(ToString(s)), s);
  }
  for (auto s : {CertificateStatus::kGood, CertificateStatus::kRevoked}) {
    EXPECT_EQ(*ParseCertificateStatus(ToString(s)), s);
  }
  for (auto s : {DeviceStatus::kActive, DeviceStatus::kBlocked, DeviceStatus::kRemoved}) {
    EXPECT_EQ(*ParseDeviceStatus(ToString(s)), s);
  }
  for (auto s : {UserStatus::kActive, UserStatus::kDisabled}) {
    EXPECT_EQ(*ParseUserStatus(ToString(s)), s);
  }
  for (auto k :
       {RevocationScopeKind::kCertificate, RevocationScopeKind::kDevice, RevocationScopeKind::kUser,
        RevocationScopeKind::kKey, RevocationScopeKind::kBefore}) {
    EXPECT_EQ(*ParseRevocationScopeKind(ToString(k)), k);
  }
  EXPECT_EQ(ToString(OrderStatus::kProcessing), "processing");
  EXPECT_EQ(ToString(CertificateStatus::kGood), "good");
  EXPECT_CODE(ParseOrderStatus("Ready"), ErrorCode::kInvalidArgument);
  EXPECT_CODE(ParseDeviceStatus(""), ErrorCode::kInvalidArgument);
}

TEST(StoreRecordsTest, SerialAndReasonValidation) {
  EXPECT_TRUE(IsCanonicalSerialHex("0a1b"));
  EXPECT_TRUE(IsCanonicalSerialHex(std::string(40, 'f')));
  EXPECT_FALSE(IsCanonicalSerialHex(""));
  EXPECT_FALSE(IsCanonicalSerialHex(std::string(41, 'f')));
  EXPECT_FALSE(IsCanonicalSerialHex("0A1B"));
  EXPECT_FALSE(IsCanonicalSerialHex("0x1b"));
  EXPECT_TRUE(IsValidRevocationReason(0));
  EXPECT_TRUE(IsValidRevocationReason(10));
  EXPECT_FALSE(IsValidRevocationReason(7));
  EXPECT_FALSE(IsValidRevocationReason(11));
  EXPECT_FALSE(IsValidRevocationReason(-1));
}

// ---- opening ----------------------------------------------------------------------------------

TEST_F(StoreTest, NewFileIsPrivateWalAndMigrated) {
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto version = store_->SchemaVersion();
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, SqliteStore::LatestSchemaVersion());
  EXPECT_GE(SqliteStore::LatestSchemaVersion(), 1);
  EXPECT_TRUE(store_->IntegrityCheck());
  RawDb raw(path_);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw.QueryText("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.QueryText("PRAGMA foreign_keys"), "0");  // per connection: the store sets its own
  EXPECT_EQ(store_->path(), path_);
  // SQLite gives the WAL and shared-memory files the mode of the database file.
  for (const char* suffix : {"-wal", "-shm"}) {
    ASSERT_EQ(::stat((path_ + suffix).c_str(), &st), 0) << suffix;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << suffix;
  }
}

TEST_F(StoreTest, WriteLockHeldElsewhereGivesUnavailableAndReadsGoOn) {
  ASSERT_TRUE(Tx([](Transaction& tx) { return tx.InsertAccount(MakeAccount("a", "t")); }));
  store_.reset();
  SqliteOptions options;
  options.path = path_;
  options.busy_timeout = std::chrono::milliseconds(0);  // fail at once instead of waiting
  auto s = SqliteStore::Open(options);
  ASSERT_TRUE(s) << s.error().ToString();
  RawDb other(path_);  // stands in for another process writing to the same file
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other.Exec("BEGIN IMMEDIATE"), SQLITE_OK);
  bool ran = false;
  auto st = (*s)->InTransaction([&](Transaction&) {
    ran = true;
    return Ok();
  });
  EXPECT_CODE(st, ErrorCode::kUnavailable);
  EXPECT_FALSE(ran);
  auto read = (*s)->ReadOnly([](Transaction& tx) { return Discard(tx.GetAccount("a")); });
  EXPECT_TRUE(read) << read.error().ToString();
  ASSERT_EQ(other.Exec("COMMIT"), SQLITE_OK);
  EXPECT_TRUE((*s)->InTransaction([](Transaction& tx) { return tx.InsertUser(MakeUser("u")); }));
}

TEST_F(StoreTest, OpenOptionsAreValidated) {
  SqliteOptions missing;
  missing.path = dir_ + "/absent.db";
  missing.create_if_missing = false;
  EXPECT_CODE(SqliteStore::Open(missing), ErrorCode::kNotFound);
  EXPECT_FALSE(PathExists(missing.path));

  SqliteOptions empty;
  EXPECT_CODE(SqliteStore::Open(empty), ErrorCode::kInvalidArgument);

  SqliteOptions pool;
  pool.path = dir_ + "/pool.db";
  pool.reader_pool_size = 0;
  EXPECT_CODE(SqliteStore::Open(pool), ErrorCode::kInvalidArgument);
}

TEST_F(StoreTest, RefusesAFileThatIsNotADatabase) {
  const std::string junk = dir_ + "/junk.db";
  ASSERT_TRUE(WriteNewFile(junk, std::string(4096, 'j'), 0600));
  SqliteOptions options;
  options.path = junk;
  EXPECT_CODE(SqliteStore::Open(options), ErrorCode::kStore);
}

TEST_F(StoreTest, MigrationsAreIdempotentAcrossReopens) {
  ASSERT_TRUE(Tx([](Transaction& tx) { return tx.InsertAccount(MakeAccount("a1", "t1")); }));
  Reopen();
  Reopen();
  auto version = store_->SchemaVersion();
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, SqliteStore::LatestSchemaVersion());
  EXPECT_EQ(Count(Table::kAccounts), 1);
  EXPECT_TRUE(store_->IntegrityCheck());
}

TEST_F(StoreTest, RefusesADatabaseFromANewerVersion) {
  store_.reset();
  {
    RawDb raw(path_);
    ASSERT_TRUE(raw.ok());
    const int newer = SqliteStore::LatestSchemaVersion() + 1;
    ASSERT_EQ(raw.Exec("PRAGMA user_version = " + std::to_string(newer)), SQLITE_OK);
  }
  SqliteOptions options;
  options.path = path_;
  auto s = SqliteStore::Open(options);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kStore);
  EXPECT_NE(s.error().detail().find("newer than this build"), std::string::npos)
      << s.error().detail();
  // The refusal changed nothing.
  RawDb raw(path_);
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"),
            std::to_string(SqliteStore::LatestSchemaVersion() + 1));
}

TEST_F(StoreTest, InMemoryStoreWorks) {
  SqliteOptions options;
  options.path = ":memory:";
  auto s = SqliteStore::Open(options);
  ASSERT_TRUE(s) << s.error().ToString();
  ASSERT_TRUE((*s)->InTransaction(
      [](Transaction& tx) { return tx.InsertAccount(MakeAccount("m1", "mt1")); }));
  auto st = (*s)->ReadOnly([](Transaction& tx) -> Status {
    E2EID_TRY(a, tx.GetAccount("m1"));
    EXPECT_EQ(a.key_thumbprint, "mt1");
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

// ---- accounts ---------------------------------------------------------------------------------

TEST_F(StoreTest, AccountCrud) {
  Account a = MakeAccount("acct-1", "thumb-1");
  a.eab_key_id = "eab-7";
  ASSERT_TRUE(Tx([&](Transaction& tx) { return tx.InsertAccount(a); }));

  auto st = Ro([&](Transaction& tx) -> Status {
    E2EID_TRY(got, tx.GetAccount("acct-1"));
    EXPECT_EQ(got.key_thumbprint, "thumb-1");
    EXPECT_EQ(got.jwk, a.jwk);
    EXPECT_EQ(got.contacts, a.contacts);
    EXPECT_EQ(got.status, AccountStatus::kValid);
    EXPECT_EQ(got.created_at, kT0);
    EXPECT_EQ(got.eab_key_id, std::optional<std::string>("eab-7"));
    E2EID_TRY(by_thumb, tx.GetAccountByThumbprint("thumb-1"));
    EXPECT_EQ(by_thumb.id, "acct-1");
    EXPECT_CODE(tx.GetAccount("nope"), ErrorCode::kNotFound);
    EXPECT_CODE(tx.GetAccountByThumbprint("nope"), ErrorCode::kNotFound);
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();

  // Duplicate id and duplicate thumbprint.
  EXPECT_CODE(Tx([&](Transaction& tx) { return tx.InsertAccount(MakeAccount("acct-1", "other")); }),
              ErrorCode::kAlreadyExists);
  EXPECT_CODE(
      Tx([&](Transaction& tx) { return tx.InsertAccount(MakeAccount("acct-2", "thumb-1")); }),
      ErrorCode::kAlreadyExists);

  // Key rollover and deactivation.
  a.key_thumbprint = "thumb-rolled";
  a.jwk = R"({"kty":"EC"})";
  a.status = AccountStatus::kDeactivated;
  a.eab_key_id.reset();
  ASSERT_TRUE(Tx([&](Transaction& tx) { return tx.UpdateAccount(a); }));
  st = Ro([&](Transaction& tx) -> Status {
    E2EID_TRY(got, tx.GetAccountByThumbprint("thumb-rolled"));
    EXPECT_EQ(got.status, AccountStatus::kDeactivated);
    EXPECT_EQ(got.jwk, R"({"kty":"EC"})");
    EXPECT_FALSE(got.eab_key_id.has_value());
    EXPECT_CODE(tx.GetAccountByThumbprint("thumb-1"), ErrorCode::kNotFound);
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();

  EXPECT_CODE(Tx([](Transaction& tx) { return tx.UpdateAccount(MakeAccount("ghost", "g")); }),
              ErrorCode::kNotFound);
  ASSERT_TRUE(Tx([](Transaction& tx) { return tx.InsertAccount(MakeAccount("acct-3", "t3")); }));
  Account taken = MakeAccount("acct-3", "thumb-rolled");
  EXPECT_CODE(Tx([&](Transaction& tx) { return tx.UpdateAccount(taken); }),
              ErrorCode::kAlreadyExists);
}

// ---- orders -----------------------------------------------------------------------------------

TEST_F(StoreTest, OrderCrudAndIdentityBinding) {
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.InsertOrder(MakeOrder("o", "no-acct", kT0)); }),
              ErrorCode::kConflict);
  SeedAccountAndOrder();
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.InsertOrder(MakeOrder("order-1", "acct", kT0)); }),
              ErrorCode::kAlreadyExists);

  Order o = MakeOrder("order-1", "acct", kT0);
  o.status = OrderStatus::kValid;
  o.not_before = kT0;
  o.not_after = kT0 + seconds(86400);
  o.error = R"({"type":"urn:ietf:params:acme:error:malformed"})";
  o.certificate_serial = "0abc";
  o.replaces = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
  o.updated_at = kT0 + seconds(5);
  o.user_id = "user-1";
  o.device_id = "wireapp://user-1!dev@example.com";
  o.display_name = "Alice";
  o.handle = "wireapp://%40alice@example.com";
  o.domain = "example.com";
  ASSERT_TRUE(Tx([&](Transaction& tx) { return tx.UpdateOrder(o); }));

  auto st = Ro([&](Transaction& tx) -> Status {
    E2EID_TRY(got, tx.GetOrder("order-1"));
    EXPECT_EQ(got.account_id, "acct");
    EXPECT_EQ(got.status, OrderStatus::kValid);
    EXPECT_EQ(got.identifiers, o.identifiers);
    EXPECT_EQ(got.not_before, o.not_before);
    EXPECT_EQ(got.not_after, o.not_after);
    EXPECT_EQ(got.expires, o.expires);
    EXPECT_EQ(got.error, o.error);
    EXPECT_EQ(got.certificate_serial, o.certificate_serial);
    EXPECT_EQ(got.replaces, o.replaces);
    EXPECT_EQ(got.created_at, kT0);
    EXPECT_EQ(got.updated_at, kT0 + seconds(5));
    EXPECT_EQ(got.user_id, o.user_id);
    EXPECT_EQ(got.device_id, o.device_id);
    EXPECT_EQ(got.display_name, o.display_name);
    EXPECT_EQ(got.handle, o.handle);
    EXPECT_EQ(got.domain, o.domain);
    E2EID_TRY(replacing, tx.ListOrdersReplacing("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"));
    EXPECT_EQ(replacing.size(), 1u);
    E2EID_TRY(none, tx.ListOrdersReplacing("other"));
    EXPECT_TRUE(none.empty());
    EXPECT_CODE(tx.GetOrder("missing"), ErrorCode::kNotFound);
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.UpdateOrder(MakeOrder("ghost", "acct", kT0)); }),
              ErrorCode::kNotFound);
}

TEST_F(StoreTest, OrderCompareAndSet) {
  SeedAccountAndOrder();
  ASSERT_TRUE(Tx([](Transaction& tx) {
    return tx.UpdateOrderStatus("order-1", OrderStatus::kReady, OrderStatus::kProcessing,
                                kT0 + seconds(9));
  }));
  auto again = Tx([](Transaction& tx) {
    return tx.UpdateOrderStatus("order-1", OrderStatus::kReady, OrderStatus::kProcessing, kT0);
  });
  EXPECT_CODE(again, ErrorCode::kConflict);
  if (!again) {
    EXPECT_NE(again.error().detail().find("is processing, not ready"), std::string::npos)
        << again.error().detail();
  }
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.UpdateOrderStatus("ghost", OrderStatus::kReady, OrderStatus::kProcessing,
                                            kT0);
              }),
              ErrorCode::kNotFound);
  auto st = Ro([](Transaction& tx) -> Status {
    E2EID_TRY(o, tx.GetOrder("order-1"));
    EXPECT_EQ(o.status, OrderStatus::kProcessing);
    EXPECT_EQ(o.updated_at, kT0 + seconds(9));
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

TEST_F(StoreTest, ListOrdersForAccountPages) {
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    E2EID_CHECK_OK(tx.InsertAccount(MakeAccount("acct", "thumb")));
    E2EID_CHECK_OK(tx.InsertAccount(MakeAccount("other", "thumb-o")));
    // Two orders share a creation time, so the id breaks the tie.
    for (int i = 0; i < 5; ++i) {
      E2EID_CHECK_OK(tx.InsertOrder(
          MakeOrder("o" + std::to_string(i), "acct", kT0 + seconds(i == 4 ? 3 : i))));
    }
    return tx.InsertOrder(MakeOrder("x", "other", kT0));
  }));
  std::vector<std::string> ids;
  PageRequest page;
  page.limit = 2;
  int pages = 0;
  auto st = Ro([&](Transaction& tx) -> Status {
    for (;;) {
      E2EID_TRY(p, tx.ListOrdersForAccount("acct", page));
      ++pages;
      for (const auto& o : p.items) ids.push_back(o.id);
      if (p.next.empty()) break;
      page.after = p.next;
    }
    return Ok();
  });
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(ids, (std::vector<std::string>{"o0", "o1", "o2", "o3", "o4"}));
}

TEST_F(StoreTest, PagingRejectsBadLimitsAndCursors) {
  auto st = Ro([](Transaction& tx) -> Status {
    PageRequest zero;
    zero.limit = 0;
    EXPECT_CODE(tx.ListUsers(zero), ErrorCode::kInvalidArgument);
    PageRequest big;
    big.limit = kMaxPageLimit + 1;
    EXPECT_CODE(tx.ListAuditEvents(big), ErrorCode::kInvalidArgument);
    PageRequest bad_cursor;
    bad_cursor.after = "not-a-cursor";
    EXPECT_CODE(tx.ListCertificatesByUser("u", bad_cursor), ErrorCode::kInvalidArgument);
    EXPECT_CODE(tx.ListAuditEvents(bad_cursor), ErrorCode::kInvalidArgument);
    EXPECT_CODE(tx.ListRevokedCertificates(std::nullopt, std::nullopt, bad_cursor),
                ErrorCode::kInvalidArgument);
    EXPECT_CODE(tx.ListCrlEntries(std::nullopt, std::nullopt, bad_cursor),
                ErrorCode::kInvalidArgument);
    EXPECT_CODE(tx.ListCrlEntries(std::nullopt, std::nullopt, big), ErrorCode::kInvalidArgument);
    PageRequest negative;
    negative.after = "-5";
    EXPECT_CODE(tx.ListRevocationEvents(negative), ErrorCode::kInvalidArgument);
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

// ---- authorizations and challenges ------------------------------------------------------------

TEST_F(StoreTest, AuthorizationsAndChallenges) {
  SeedAccountAndOrder();
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.InsertAuthorization(
                    MakeAuthz("az", "missing-order", "acct", "wireapp-user", "u"));
              }),
              ErrorCode::kConflict);
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    E2EID_CHECK_OK(tx.InsertAuthorization(
        MakeAuthz("az-2", "order-1", "acct", "wireapp-user", "wireapp://%40alice@example.com")));
    E2EID_CHECK_OK(tx.InsertAuthorization(
        MakeAuthz("az-1", "order-1", "acct", "wireapp-device", "wireapp://u!d@example.com")));
    E2EID_CHECK_OK(tx.InsertChallenge(MakeChallenge("ch-1", "az-1", "wire-dpop-01")));
    E2EID_CHECK_OK(tx.InsertChallenge(MakeChallenge("ch-2", "az-2", "wire-oidc-01")));
    return tx.InsertChallenge(MakeChallenge("ch-3", "az-2", "http-01"));
  }));
  EXPECT_CODE(
      Tx([](Transaction& tx) {
        return tx.InsertAuthorization(MakeAuthz("az-1", "order-1", "acct", "wireapp-user", "dup"));
      }),
      ErrorCode::kAlreadyExists);
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.InsertChallenge(MakeChallenge("ch-9", "no-authz", "http-01"));
              }),
              ErrorCode::kConflict);

  // Update, compare-and-set, listing order.
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    E2EID_TRY(az, tx.GetAuthorization("az-1"));
    az.wildcard = true;
    az.expires = kT0 + seconds(60);
    E2EID_CHECK_OK(tx.UpdateAuthorization(az));
    E2EID_CHECK_OK(tx.UpdateAuthorizationStatus("az-1", AuthorizationStatus::kPending,
                                                AuthorizationStatus::kValid));
    E2EID_TRY(ch, tx.GetChallenge("ch-2"));
    ch.target = "https://idp.example.com/realms/wire";
    ch.validated_at = kT0 + seconds(30);
    ch.validation_claims = R"({"sub":"alice"})";
    ch.status = ChallengeStatus::kValid;
    return tx.UpdateChallenge(ch);
  }));
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.UpdateAuthorizationStatus("az-1", AuthorizationStatus::kPending,
                                                    AuthorizationStatus::kInvalid);
              }),
              ErrorCode::kConflict);
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.UpdateChallengeStatus("ch-2", ChallengeStatus::kPending,
                                                ChallengeStatus::kProcessing);
              }),
              ErrorCode::kConflict);
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.UpdateChallengeStatus("ghost", ChallengeStatus::kPending,
                                                ChallengeStatus::kProcessing);
              }),
              ErrorCode::kNotFound);
  ASSERT_TRUE(Tx([](Transaction& tx) {
    return tx.UpdateChallengeStatus("ch-1", ChallengeStatus::kPending,
                                    ChallengeStatus::kProcessing);
  }));

  auto st = Ro([](Transaction& tx) -> Status {
    E2EID_TRY(list, tx.ListAuthorizationsForOrder("order-1"));
    EXPECT_EQ(list.size(), 2u);
    if (list.size() == 2) {
      EXPECT_EQ(list[0].id, "az-1");  // "wireapp-device" sorts before "wireapp-user"
      EXPECT_TRUE(list[0].wildcard);
      EXPECT_EQ(list[0].status, AuthorizationStatus::kValid);
      EXPECT_EQ(list[0].expires, kT0 + seconds(60));
      EXPECT_EQ(list[1].id, "az-2");
      EXPECT_FALSE(list[1].wildcard);
    }
    E2EID_TRY(chs, tx.ListChallengesForAuthorization("az-2"));
    EXPECT_EQ(chs.size(), 2u);
    if (chs.size() == 2) {
      EXPECT_EQ(chs[0].type, "http-01");
      EXPECT_EQ(chs[1].type, "wire-oidc-01");
      EXPECT_EQ(chs[1].status, ChallengeStatus::kValid);
      EXPECT_EQ(chs[1].target, std::optional<std::string>("https://idp.example.com/realms/wire"));
      EXPECT_EQ(chs[1].validated_at, std::optional<TimePoint>(kT0 + seconds(30)));
      EXPECT_EQ(chs[1].validation_claims, std::optional<std::string>(R"({"sub":"alice"})"));
      EXPECT_FALSE(chs[1].error.has_value());
    }
    E2EID_TRY(ch1, tx.GetChallenge("ch-1"));
    EXPECT_EQ(ch1.status, ChallengeStatus::kProcessing);
    EXPECT_EQ(ch1.token, "token-ch-1");
    EXPECT_CODE(tx.GetAuthorization("ghost"), ErrorCode::kNotFound);
    EXPECT_CODE(tx.GetChallenge("ghost"), ErrorCode::kNotFound);
    E2EID_TRY(empty, tx.ListAuthorizationsForOrder("ghost"));
    EXPECT_TRUE(empty.empty());
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.UpdateAuthorization(MakeAuthz("ghost", "order-1", "acct", "t", "v"));
              }),
              ErrorCode::kNotFound);
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.UpdateChallenge(MakeChallenge("ghost", "az-1", "http-01"));
              }),
              ErrorCode::kNotFound);
}

// ---- serials and certificates -----------------------------------------------------------------

TEST_F(StoreTest, SerialsAreUnique) {
  ASSERT_TRUE(Tx([](Transaction& tx) { return tx.ReserveSerial("7f01", kT0); }));
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.ReserveSerial("7f01", kT0); }),
              ErrorCode::kAlreadyExists);
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.ReserveSerial("7F02", kT0); }),
              ErrorCode::kInvalidArgument);
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.ReserveSerial("", kT0); }),
              ErrorCode::kInvalidArgument);
  EXPECT_EQ(Count(Table::kSerials), 1);

  // Many reservers of overlapping serials: each serial is granted exactly once.
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        char serial[8];
        std::snprintf(serial, sizeof serial, "a%03d", i);
        if (Tx([&](Transaction& tx) { return tx.ReserveSerial(serial, kT0); })) ++granted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), 25);
  EXPECT_EQ(Count(Table::kSerials), 26);
}

TEST_F(StoreTest, CertificateCrudAndListings) {
  SeedAccountAndOrder();
  Certificate full = MakeCert("01", "user-a", "dev-1", "spki-1", kT0);
  full.account_id = "acct";
  full.order_id = "order-1";
  EXPECT_CODE(Tx([&](Transaction& tx) { return tx.InsertCertificate(full); }),
              ErrorCode::kConflict);  // not reserved
  ASSERT_TRUE(Tx([&](Transaction& tx) -> Status {
    E2EID_CHECK_OK(tx.ReserveSerial("01", kT0));
    return tx.InsertCertificate(full);
  }));
  EXPECT_CODE(Tx([&](Transaction& tx) { return tx.InsertCertificate(full); }),
              ErrorCode::kAlreadyExists);
  Certificate bad_account = MakeCert("02", "user-a", "dev-1", "spki-1", kT0);
  bad_account.account_id = "no-such-account";
  EXPECT_CODE(Tx([&](Transaction& tx) -> Status {
                E2EID_CHECK_OK(tx.ReserveSerial("02", kT0));
                return tx.InsertCertificate(bad_account);
              }),
              ErrorCode::kConflict);
  EXPECT_EQ(Count(Table::kSerials), 1);  // that whole transaction rolled back

  // Certificates for listings: user-a has dev-1 (3 certs) and dev-2 (1), user-b has 1.
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    const struct {
      const char* serial;
      const char* user;
      const char* device;
      const char* spki;
      int at;
    } certs[] = {{"03", "user-a", "dev-1", "spki-2", 10},
                 {"04", "user-a", "dev-1", "spki-2", 10},
                 {"05", "user-a", "dev-2", "spki-3", 20},
                 {"06", "user-b", "dev-3", "spki-4", 30}};
    for (const auto& c : certs) {
      E2EID_CHECK_OK(tx.ReserveSerial(c.serial, kT0));
      E2EID_CHECK_OK(
          tx.InsertCertificate(MakeCert(c.serial, c.user, c.device, c.spki, kT0 + seconds(c.at))));
    }
    return Ok();
  }));

  auto st = Ro([&](Transaction& tx) -> Status {
    E2EID_TRY(got, tx.GetCertificate("01"));
    EXPECT_EQ(got.issuer_id, "issuer-a");
    EXPECT_EQ(got.account_id, std::optional<std::string>("acct"));
    EXPECT_EQ(got.order_id, std::optional<std::string>("order-1"));
    EXPECT_EQ(got.user_id, "user-a");
    EXPECT_EQ(got.device_id, std::optional<std::string>("dev-1"));
    EXPECT_EQ(got.spki_sha256, "spki-1");
    EXPECT_EQ(got.not_before, full.not_before);
    EXPECT_EQ(got.not_after, full.not_after);
    EXPECT_EQ(got.issued_at, kT0);
    EXPECT_EQ(got.der, full.der);
    EXPECT_EQ(got.chain_pem, full.chain_pem);
    EXPECT_EQ(got.status, CertificateStatus::kGood);
    EXPECT_FALSE(got.revoked_at.has_value());
    EXPECT_FALSE(got.revocation_reason.has_value());
    EXPECT_CODE(tx.GetCertificate("ff"), ErrorCode::kNotFound);

    auto serials = [](const Page<Certificate>& p) {
      std::vector<std::string> out;
      for (const auto& c : p.items) out.push_back(c.serial);
      return out;
    };
    PageRequest two;
    two.limit = 2;
    E2EID_TRY(p1, tx.ListCertificatesByUser("user-a", two));
    EXPECT_EQ(serials(p1), (std::vector<std::string>{"01", "03"}));
    EXPECT_FALSE(p1.next.empty());
    two.after = p1.next;
    E2EID_TRY(p2, tx.ListCertificatesByUser("user-a", two));
    EXPECT_EQ(serials(p2), (std::vector<std::string>{"04", "05"}));
    EXPECT_TRUE(p2.next.empty());

    E2EID_TRY(by_dev, tx.ListCertificatesByDevice("dev-1", PageRequest{}));
    EXPECT_EQ(serials(by_dev), (std::vector<std::string>{"01", "03", "04"}));
    E2EID_TRY(by_spki, tx.ListCertificatesBySpki("spki-2", PageRequest{}));
    EXPECT_EQ(serials(by_spki), (std::vector<std::string>{"03", "04"}));
    E2EID_TRY(before, tx.ListCertificatesIssuedBefore(kT0 + seconds(20), PageRequest{}));
    EXPECT_EQ(serials(before), (std::vector<std::string>{"01", "03", "04"}));
    E2EID_TRY(none, tx.ListCertificatesByUser("nobody", PageRequest{}));
    EXPECT_TRUE(none.items.empty());
    EXPECT_TRUE(none.next.empty());
    E2EID_TRY(count, tx.CountRows(Table::kCertificates));
    EXPECT_EQ(count, 5);
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

TEST_F(StoreTest, RevokeByScopeCountsAndIsIdempotent) {
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    const struct {
      const char* serial;
      const char* user;
      const char* device;
      const char* spki;
      int at;
      const char* issuer;
    } certs[] = {
        {"a1", "u1", "d1", "k1", 0, "issuer-a"},   {"a2", "u1", "d1", "k2", 10, "issuer-a"},
        {"a3", "u1", "d2", "k3", 20, "issuer-b"},  {"a4", "u2", "d3", "k4", 30, "issuer-a"},
        {"a5", "u3", "d4", "k5", 100, "issuer-a"}, {"a6", "u3", "d4", "k6", 200, "issuer-b"}};
    for (const auto& c : certs) {
      E2EID_CHECK_OK(tx.ReserveSerial(c.serial, kT0));
      E2EID_CHECK_OK(tx.InsertCertificate(
          MakeCert(c.serial, c.user, c.device, c.spki, kT0 + seconds(c.at), c.issuer)));
    }
    return Ok();
  }));
  auto revoke = [&](RevocationScopeKind kind, const std::string& value, int reason,
                    int64_t expected, TimePoint at) {
    int64_t changed = -1;
    auto st = Tx([&](Transaction& tx) -> Status {
      E2EID_TRY(n, tx.RevokeCertificates({kind, value}, reason, "test", at));
      changed = n;
      return Ok();
    });
    EXPECT_TRUE(st) << st.error().ToString();
    EXPECT_EQ(changed, expected) << ToString(kind) << " " << value;
  };
  const TimePoint r1 = kT0 + seconds(1000);
  revoke(RevocationScopeKind::kDevice, "d1", 1, 2, r1);
  revoke(RevocationScopeKind::kDevice, "d1", 1, 0, r1 + seconds(1));  // idempotent
  revoke(RevocationScopeKind::kUser, "u1", 4, 1, r1 + seconds(2));    // only a3 was still good
  revoke(RevocationScopeKind::kKey, "k4", 3, 1, r1 + seconds(3));
  revoke(RevocationScopeKind::kCertificate, "ffff", 0, 0, r1);  // unknown serial
  revoke(RevocationScopeKind::kCertificate, "a4", 0, 0, r1);    // already revoked
  revoke(RevocationScopeKind::kBefore, FormatRfc3339(kT0 + seconds(150)), 2, 1, r1 + seconds(4));
  revoke(RevocationScopeKind::kBefore, FormatRfc3339(kT0 + seconds(150)), 2, 0, r1 + seconds(5));

  EXPECT_CODE(
      Tx([](Transaction& tx) {
        return Discard(tx.RevokeCertificates({RevocationScopeKind::kUser, "u3"}, 7, "", kT0));
      }),
      ErrorCode::kInvalidArgument);
  EXPECT_CODE(Tx([](Transaction& tx) {
                return Discard(
                    tx.RevokeCertificates({RevocationScopeKind::kBefore, "yesterday"}, 0, "", kT0));
              }),
              ErrorCode::kInvalidArgument);
  EXPECT_CODE(
      Tx([](Transaction& tx) {
        return Discard(tx.RevokeCertificates({RevocationScopeKind::kDevice, ""}, 0, "", kT0));
      }),
      ErrorCode::kInvalidArgument);

  auto st = Ro([&](Transaction& tx) -> Status {
    // The first revocation is kept: a1 was revoked by device with reason 1 at r1.
    E2EID_TRY(a1, tx.GetCertificate("a1"));
    EXPECT_EQ(a1.status, CertificateStatus::kRevoked);
    EXPECT_EQ(a1.revoked_at, std::optional<TimePoint>(r1));
    EXPECT_EQ(a1.revocation_reason, std::optional<int>(1));
    EXPECT_EQ(a1.revocation_comment, std::optional<std::string>("test"));
    E2EID_TRY(a3, tx.GetCertificate("a3"));
    EXPECT_EQ(a3.revocation_reason, std::optional<int>(4));
    E2EID_TRY(a6, tx.GetCertificate("a6"));
    EXPECT_EQ(a6.status, CertificateStatus::kGood);

    auto serials = [](const Page<Certificate>& p) {
      std::vector<std::string> out;
      for (const auto& c : p.items) out.push_back(c.serial);
      return out;
    };
    E2EID_TRY(all, tx.ListRevokedCertificates(std::nullopt, std::nullopt, PageRequest{}));
    EXPECT_EQ(serials(all), (std::vector<std::string>{"a1", "a2", "a3", "a4", "a5"}));
    E2EID_TRY(issuer_b, tx.ListRevokedCertificates("issuer-b", std::nullopt, PageRequest{}));
    EXPECT_EQ(serials(issuer_b), (std::vector<std::string>{"a3"}));
    // a1 expires at kT0 + 90 days; ask from just after that.
    E2EID_TRY(unexpired, tx.ListRevokedCertificates(std::nullopt, kT0 + seconds(90 * 86400 + 1),
                                                    PageRequest{}));
    EXPECT_EQ(serials(unexpired), (std::vector<std::string>{"a2", "a3", "a4", "a5"}));
    PageRequest two;
    two.limit = 2;
    E2EID_TRY(p1, tx.ListRevokedCertificates("issuer-a", std::nullopt, two));
    EXPECT_EQ(serials(p1), (std::vector<std::string>{"a1", "a2"}));
    two.after = p1.next;
    E2EID_TRY(p2, tx.ListRevokedCertificates("issuer-a", std::nullopt, two));
    EXPECT_EQ(serials(p2), (std::vector<std::string>{"a4", "a5"}));
    EXPECT_TRUE(p2.next.empty());

    // The CRL view: the same rows, only the columns an entry needs.
    auto entry_serials = [](const Page<RevokedEntry>& p) {
      std::vector<std::string> out;
      for (const auto& e : p.items) out.push_back(e.serial);
      return out;
    };
    E2EID_TRY(crl_all, tx.ListCrlEntries(std::nullopt, std::nullopt, PageRequest{}));
    EXPECT_EQ(entry_serials(crl_all), (std::vector<std::string>{"a1", "a2", "a3", "a4", "a5"}));
    if (crl_all.items.size() != 5u) return Fail(Error::Internal("expected 5 CRL entries"));
    EXPECT_EQ(crl_all.items[0].issuer_id, "issuer-a");
    EXPECT_EQ(crl_all.items[0].not_after, kT0 + seconds(90 * 86400));
    EXPECT_EQ(crl_all.items[0].revoked_at, r1);
    EXPECT_EQ(crl_all.items[0].revocation_reason, 1);
    EXPECT_EQ(crl_all.items[2].issuer_id, "issuer-b");
    EXPECT_EQ(crl_all.items[2].revoked_at, r1 + seconds(2));
    EXPECT_EQ(crl_all.items[2].revocation_reason, 4);
    E2EID_TRY(crl_b, tx.ListCrlEntries("issuer-b", std::nullopt, PageRequest{}));
    EXPECT_EQ(entry_serials(crl_b), (std::vector<std::string>{"a3"}));
    E2EID_TRY(crl_unexpired,
              tx.ListCrlEntries(std::nullopt, kT0 + seconds(90 * 86400 + 1), PageRequest{}));
    EXPECT_EQ(entry_serials(crl_unexpired), (std::vector<std::string>{"a2", "a3", "a4", "a5"}));
    PageRequest crl_two;
    crl_two.limit = 2;
    E2EID_TRY(c1, tx.ListCrlEntries("issuer-a", std::nullopt, crl_two));
    EXPECT_EQ(entry_serials(c1), (std::vector<std::string>{"a1", "a2"}));
    EXPECT_EQ(c1.next, "a2");
    crl_two.after = c1.next;
    E2EID_TRY(c2, tx.ListCrlEntries("issuer-a", std::nullopt, crl_two));
    EXPECT_EQ(entry_serials(c2), (std::vector<std::string>{"a4", "a5"}));
    EXPECT_TRUE(c2.next.empty());
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

TEST_F(StoreTest, CrlEntriesOfAnIssuerIncludeThoseWithoutAnIssuer) {
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    for (const auto& [serial, issuer] : {std::pair<const char*, const char*>{"b1", "issuer-a"},
                                         {"b2", ""},
                                         {"b3", "issuer-b"},
                                         {"b4", "issuer-a"}}) {
      E2EID_CHECK_OK(tx.ReserveSerial(serial, kT0));
      E2EID_CHECK_OK(tx.InsertCertificate(MakeCert(serial, "u", "d", "k", kT0, issuer)));
    }
    E2EID_TRY(n, tx.RevokeCertificates({RevocationScopeKind::kUser, "u"}, 0, "", kT0));
    EXPECT_EQ(n, 4);
    return Ok();
  }));
  auto st = Ro([](Transaction& tx) -> Status {
    std::vector<std::string> got;
    E2EID_TRY(a, tx.ListCrlEntries("issuer-a", std::nullopt, PageRequest{}));
    for (const auto& e : a.items) got.push_back(e.serial + "/" + e.issuer_id);
    EXPECT_EQ(got, (std::vector<std::string>{"b1/issuer-a", "b2/", "b4/issuer-a"}));
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

// ---- schema upgrades --------------------------------------------------------------------------

// A certificate as schema version 1 stored it, written with SQL of that version.
struct V1Cert {
  std::string serial;
  std::string issuer;
  std::optional<std::string> account;
  std::optional<std::string> device;
  int64_t issued;
  Bytes der;
  std::string chain;
  std::optional<int64_t> revoked_at;  // revoked when set
  int64_t reason = 0;
  std::optional<std::string> comment;
};

class StoreUpgradeTest : public StoreTest {
 protected:
  // Replaces the store's file with a database at schema version 1 holding `certs` (and an
  // account, a user and an audit event), written with version 1's own columns.
  void CreateVersion1Database(const std::vector<V1Cert>& certs) {
    store_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
    auto conn = sqlite::Connection::Open(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
    ASSERT_TRUE(conn) << conn.error().ToString();
    ASSERT_TRUE(sqlite::MigrateTo(**conn, 1));
    ASSERT_EQ((*conn)->QueryText("PRAGMA user_version", "version").value_or(""), "1");
    auto fill = [&]() -> Status {
      E2EID_CHECK_OK((*conn)->Exec("BEGIN", "v1 transaction"));
      E2EID_CHECK_OK((*conn)->Exec(
          "INSERT INTO accounts VALUES ('acct', 'thumb', '{}', 'valid', '[]', 1, NULL);"
          "INSERT INTO users VALUES ('u1', 'h', 'n', 'active', 1, 1);"
          "INSERT INTO audit_events (at, actor, action, target, source, outcome, details) "
          "VALUES (1, 'cli', 'ca.init', '', 'cli', 'success', '{}');",
          "v1 rows"));
      for (const auto& c : certs) {
        E2EID_TRY(serial, (*conn)->Prepare("INSERT INTO serials VALUES (?1, 0)", "v1 serial"));
        serial.BindText(1, c.serial);
        E2EID_CHECK_OK(serial.Run());
        E2EID_TRY(st, (*conn)->Prepare(
                          "INSERT INTO certificates (serial, issuer_id, account_id, order_id, "
                          "user_id, device_id, spki_sha256, not_before, not_after, issued_at, der, "
                          "chain_pem, status, revoked_at, revocation_reason, revocation_comment) "
                          "VALUES (?1, ?2, ?3, NULL, 'u1', ?4, 'spki', ?5, ?6, ?5, ?7, ?8, ?9, "
                          "?10, ?11, ?12)",
                          "v1 certificate"));
        st.BindText(1, c.serial);
        st.BindText(2, c.issuer);
        st.BindOptText(3, c.account);
        st.BindOptText(4, c.device);
        st.BindInt(5, c.issued);
        st.BindInt(6, c.issued + 86400);
        st.BindBlob(7, c.der);
        st.BindText(8, c.chain);
        st.BindText(9, c.revoked_at ? "revoked" : "good");
        st.BindOptInt(10, c.revoked_at);
        st.BindOptInt(11, c.revoked_at ? std::optional<int64_t>(c.reason) : std::nullopt);
        st.BindOptText(12, c.comment);
        E2EID_CHECK_OK(st.Run());
      }
      return (*conn)->Exec("COMMIT", "v1 commit");
    };
    auto st = fill();
    ASSERT_TRUE(st) << st.error().ToString();
  }

  static std::vector<V1Cert> SampleCertificates() {
    std::vector<V1Cert> certs;
    for (int i = 0; i < 300; ++i) {
      V1Cert c;
      char serial[16];
      std::snprintf(serial, sizeof serial, "%x", 0x1000 + i * 7);
      c.serial = serial;
      c.issuer = i % 10 == 0 ? "" : (i % 3 == 0 ? "issuer-b" : "issuer-a");
      if (i % 2 == 0) c.account = "acct";
      if (i % 4 != 0) c.device = "dev-" + std::to_string(i % 5);
      c.issued = 1'700'000'000 + i;
      c.der.assign(static_cast<size_t>(600 + i), static_cast<uint8_t>(i));
      c.der[1] = 0;  // a NUL byte inside the DER
      c.chain = "-----BEGIN CERTIFICATE-----\n" +
                std::string(static_cast<size_t>(2000 + i), static_cast<char>('A' + i % 26)) +
                "\n-----END CERTIFICATE-----\n";
      if (i % 3 == 1) {
        c.revoked_at = 1'700'100'000 + i;
        c.reason = i % 11 == 7 ? 0 : i % 11;
        if (i % 2 == 1) c.comment = "comment " + std::to_string(i);
      }
      certs.push_back(std::move(c));
    }
    return certs;
  }
};

TEST_F(StoreUpgradeTest, Version1DatabaseUpgradesInPlaceKeepingEveryCertificate) {
  const std::vector<V1Cert> certs = SampleCertificates();
  CreateVersion1Database(certs);
  Reopen();  // SqliteStore::Open migrates
  auto version = store_->SchemaVersion();
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, SqliteStore::LatestSchemaVersion());
  EXPECT_TRUE(store_->IntegrityCheck());
  EXPECT_EQ(Count(Table::kCertificates), static_cast<int64_t>(certs.size()));
  EXPECT_EQ(Count(Table::kSerials), static_cast<int64_t>(certs.size()));
  EXPECT_EQ(Count(Table::kAccounts), 1);
  EXPECT_EQ(Count(Table::kUsers), 1);
  EXPECT_EQ(Count(Table::kAuditEvents), 1);

  auto st = Ro([&](Transaction& tx) -> Status {
    std::vector<std::string> revoked_serials;
    for (const auto& c : certs) {
      E2EID_TRY(got, tx.GetCertificate(c.serial));
      EXPECT_EQ(got.issuer_id, c.issuer) << c.serial;
      EXPECT_EQ(got.account_id, c.account) << c.serial;
      EXPECT_FALSE(got.order_id.has_value());
      EXPECT_EQ(got.user_id, "u1");
      EXPECT_EQ(got.device_id, c.device) << c.serial;
      EXPECT_EQ(got.spki_sha256, "spki");
      EXPECT_EQ(got.issued_at, FromUnix(c.issued));
      EXPECT_EQ(got.not_before, FromUnix(c.issued));
      EXPECT_EQ(got.not_after, FromUnix(c.issued + 86400));
      EXPECT_EQ(got.der, c.der) << c.serial;
      EXPECT_EQ(got.chain_pem, c.chain) << c.serial;
      if (c.revoked_at) {
        revoked_serials.push_back(c.serial);
        EXPECT_EQ(got.status, CertificateStatus::kRevoked) << c.serial;
        EXPECT_EQ(got.revoked_at, std::optional<TimePoint>(FromUnix(*c.revoked_at)));
        EXPECT_EQ(got.revocation_reason, std::optional<int>(static_cast<int>(c.reason)));
        EXPECT_EQ(got.revocation_comment, c.comment);
      } else {
        EXPECT_EQ(got.status, CertificateStatus::kGood) << c.serial;
        EXPECT_FALSE(got.revoked_at.has_value());
      }
    }
    std::sort(revoked_serials.begin(), revoked_serials.end());
    std::vector<std::string> listed;
    PageRequest page;
    page.limit = 7;
    for (;;) {
      E2EID_TRY(p, tx.ListCrlEntries(std::nullopt, std::nullopt, page));
      for (const auto& e : p.items) listed.push_back(e.serial);
      if (p.next.empty()) break;
      page.after = p.next;
    }
    EXPECT_EQ(listed, revoked_serials);
    E2EID_TRY(by_device, tx.ListCertificatesByDevice("dev-1", PageRequest{}));
    EXPECT_FALSE(by_device.items.empty());
    for (const auto& c : by_device.items) EXPECT_FALSE(c.der.empty());
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();

  // The upgraded database takes new certificates and revocations.
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    E2EID_CHECK_OK(tx.ReserveSerial("ffff01", kT0));
    E2EID_CHECK_OK(tx.InsertCertificate(MakeCert("ffff01", "u1", "dev-1", "spki", kT0)));
    E2EID_TRY(n, tx.RevokeCertificates({RevocationScopeKind::kUser, "u1"}, 1, "after", kT0));
    EXPECT_EQ(n, 201);  // 200 good certificates from version 1 and the new one
    return Ok();
  }));
  Reopen();  // idempotent
  EXPECT_TRUE(store_->IntegrityCheck());
  EXPECT_EQ(Count(Table::kCertificates), static_cast<int64_t>(certs.size()) + 1);

  // The DER and chain left the certificates table; the version 1 CRL indexes are gone.
  store_.reset();
  RawDb raw(path_);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw.QueryInt("SELECT COUNT(*) FROM pragma_table_info('certificates') WHERE name IN "
                         "('der', 'chain_pem')"),
            0);
  EXPECT_EQ(raw.QueryInt("SELECT COUNT(*) FROM certificate_blobs"),
            static_cast<int64_t>(certs.size()) + 1);
  EXPECT_EQ(raw.QueryInt("SELECT COUNT(*) FROM sqlite_schema WHERE name IN "
                         "('certificates_revoked', 'certificates_revoked_by_issuer', "
                         "'certificates_v1')"),
            0);
  EXPECT_EQ(raw.QueryInt("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'certificates_crl'"), 1);
}

TEST_F(StoreUpgradeTest, FailedUpgradeChangesNothing) {
  CreateVersion1Database(SampleCertificates());
  {
    // A table in the way makes migration 2 fail after it has already rebuilt `certificates`.
    RawDb raw(path_);
    ASSERT_TRUE(raw.ok());
    ASSERT_EQ(raw.Exec("CREATE TABLE certificate_blobs (x INTEGER)"), SQLITE_OK);
  }
  store_.reset();
  SqliteOptions options;
  options.path = path_;
  auto s = SqliteStore::Open(options);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kStore) << s.error().ToString();
  RawDb raw(path_);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"), "1");
  EXPECT_EQ(raw.QueryInt("SELECT COUNT(*) FROM certificates WHERE length(der) >= 600 AND "
                         "length(chain_pem) >= 2000"),
            300);
  EXPECT_EQ(raw.QueryInt("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'certificates_v1'"), 0);
  EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok");
}

TEST(StoreSchemaTest, MigrateToRefusesUnknownVersions) {
  auto conn = sqlite::Connection::Open(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 0);
  ASSERT_TRUE(conn);
  EXPECT_CODE(sqlite::MigrateTo(**conn, 0), ErrorCode::kInvalidArgument);
  EXPECT_CODE(sqlite::MigrateTo(**conn, SqliteStore::LatestSchemaVersion() + 1),
              ErrorCode::kInvalidArgument);
  EXPECT_TRUE(sqlite::MigrateTo(**conn, 1));
  EXPECT_TRUE(sqlite::MigrateTo(**conn, 1));  // already there
  EXPECT_TRUE(sqlite::Migrate(**conn));
  EXPECT_EQ((*conn)->QueryText("PRAGMA user_version", "v").value_or(""),
            std::to_string(SqliteStore::LatestSchemaVersion()));
}

TEST_F(StoreTest, RevocationEventsAndCrlNumbers) {
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    for (int i = 0; i < 3; ++i) {
      RevocationEvent e;
      e.scope_kind = RevocationScopeKind::kUser;
      e.scope_value = "u" + std::to_string(i);
      e.reason = 1;
      e.comment = "lost phone";
      e.actor = "admin:bob";
      e.at = kT0 + seconds(i);
      e.affected = i * 2;
      E2EID_TRY(id, tx.InsertRevocationEvent(e));
      EXPECT_EQ(id, i + 1);
    }
    return Ok();
  }));
  auto st = Tx([](Transaction& tx) -> Status {
    PageRequest two;
    two.limit = 2;
    E2EID_TRY(p1, tx.ListRevocationEvents(two));
    EXPECT_EQ(p1.items.size(), 2u);
    two.after = p1.next;
    E2EID_TRY(p2, tx.ListRevocationEvents(two));
    EXPECT_EQ(p2.items.size(), 1u);
    if (p2.items.size() == 1) {
      EXPECT_EQ(p2.items[0].scope_value, "u2");
      EXPECT_EQ(p2.items[0].affected, 4);
      EXPECT_EQ(p2.items[0].actor, "admin:bob");
      EXPECT_EQ(p2.items[0].at, kT0 + seconds(2));
    }
    EXPECT_TRUE(p2.next.empty());

    EXPECT_CODE(tx.GetCrlState("issuer-a"), ErrorCode::kNotFound);
    for (int64_t want = 1; want <= 3; ++want) {
      E2EID_TRY(n, tx.NextCrlNumber("issuer-a", kT0 + seconds(want)));
      EXPECT_EQ(n, want);
    }
    E2EID_TRY(b, tx.NextCrlNumber("issuer-b", kT0));
    EXPECT_EQ(b, 1);
    E2EID_TRY(state, tx.GetCrlState("issuer-a"));
    EXPECT_EQ(state.next_number, 4);
    EXPECT_EQ(state.last_issued_at, std::optional<TimePoint>(kT0 + seconds(3)));
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
  // A rolled-back allocation gives the number back.
  auto rolled = Tx([](Transaction& tx) -> Status {
    E2EID_TRY(n, tx.NextCrlNumber("issuer-a", kT0));
    EXPECT_EQ(n, 4);
    return Fail(Error::Internal("signing the CRL failed"));
  });
  EXPECT_CODE(rolled, ErrorCode::kInternal);
  st = Tx([](Transaction& tx) -> Status {
    E2EID_TRY(n, tx.NextCrlNumber("issuer-a", kT0));
    EXPECT_EQ(n, 4);
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

// ---- users and devices ------------------------------------------------------------------------

TEST_F(StoreTest, UsersAndDevices) {
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.InsertDevice(MakeDevice("d1", "no-user")); }),
              ErrorCode::kConflict);
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    for (const char* u : {"u3", "u1", "u2"}) E2EID_CHECK_OK(tx.InsertUser(MakeUser(u)));
    E2EID_CHECK_OK(tx.InsertDevice(MakeDevice("wireapp://u1!d2@example.com", "u1")));
    E2EID_CHECK_OK(tx.InsertDevice(MakeDevice("wireapp://u1!d1@example.com", "u1")));
    return tx.InsertDevice(MakeDevice("wireapp://u2!d1@example.com", "u2"));
  }));
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.InsertUser(MakeUser("u1")); }),
              ErrorCode::kAlreadyExists);
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.InsertDevice(MakeDevice("wireapp://u1!d1@example.com", "u1"));
              }),
              ErrorCode::kAlreadyExists);

  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    E2EID_TRY(d, tx.GetDevice("wireapp://u1!d1@example.com"));
    d.status = DeviceStatus::kBlocked;
    d.blocked_reason = "stolen";
    d.last_seen = kT0 + seconds(50);
    E2EID_CHECK_OK(tx.UpdateDevice(d));
    E2EID_TRY(u, tx.GetUser("u2"));
    u.status = UserStatus::kDisabled;
    u.display_name = "Renamed";
    u.last_seen = kT0 + seconds(60);
    return tx.UpdateUser(u);
  }));
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.UpdateDevice(MakeDevice("ghost", "u1")); }),
              ErrorCode::kNotFound);
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.UpdateUser(MakeUser("ghost")); }),
              ErrorCode::kNotFound);

  auto st = Ro([](Transaction& tx) -> Status {
    E2EID_TRY(d, tx.GetDevice("wireapp://u1!d1@example.com"));
    EXPECT_EQ(d.user_id, "u1");
    EXPECT_EQ(d.status, DeviceStatus::kBlocked);
    EXPECT_EQ(d.blocked_reason, std::optional<std::string>("stolen"));
    EXPECT_EQ(d.first_seen, kT0);
    EXPECT_EQ(d.last_seen, kT0 + seconds(50));
    EXPECT_EQ(d.key_thumbprint, "kt-wireapp://u1!d1@example.com");
    E2EID_TRY(devices, tx.ListDevicesForUser("u1"));
    EXPECT_EQ(devices.size(), 2u);
    if (devices.size() == 2) {
      EXPECT_EQ(devices[0].id, "wireapp://u1!d1@example.com");
      EXPECT_EQ(devices[1].id, "wireapp://u1!d2@example.com");
    }
    E2EID_TRY(u2, tx.GetUser("u2"));
    EXPECT_EQ(u2.status, UserStatus::kDisabled);
    EXPECT_EQ(u2.display_name, "Renamed");
    EXPECT_EQ(u2.handle, "handle-u2");
    EXPECT_EQ(u2.first_seen, kT0);
    EXPECT_EQ(u2.last_seen, kT0 + seconds(60));
    EXPECT_CODE(tx.GetUser("ghost"), ErrorCode::kNotFound);
    EXPECT_CODE(tx.GetDevice("ghost"), ErrorCode::kNotFound);
    PageRequest two;
    two.limit = 2;
    E2EID_TRY(p1, tx.ListUsers(two));
    two.after = p1.next;
    E2EID_TRY(p2, tx.ListUsers(two));
    EXPECT_EQ(p1.items.size(), 2u);
    EXPECT_EQ(p2.items.size(), 1u);
    if (p1.items.size() == 2 && p2.items.size() == 1) {
      EXPECT_EQ(p1.items[0].id, "u1");
      EXPECT_EQ(p1.items[1].id, "u2");
      EXPECT_EQ(p2.items[0].id, "u3");
    }
    EXPECT_TRUE(p2.next.empty());
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

TEST_F(StoreTest, ListDevicesPagesAndFiltersByStatus) {
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    for (const char* u : {"u1", "u2"}) E2EID_CHECK_OK(tx.InsertUser(MakeUser(u)));
    for (const char* d : {"wireapp://u2!a@example.com", "wireapp://u1!c@example.com",
                          "wireapp://u1!b@example.com", "wireapp://u1!a@example.com"}) {
      E2EID_CHECK_OK(tx.InsertDevice(MakeDevice(d, std::string(d).substr(10, 2))));
    }
    E2EID_TRY(d, tx.GetDevice("wireapp://u1!b@example.com"));
    d.status = DeviceStatus::kBlocked;
    return tx.UpdateDevice(d);
  }));
  auto st = Ro([](Transaction& tx) -> Status {
    PageRequest page;
    page.limit = 3;
    E2EID_TRY(p1, tx.ListDevices(std::nullopt, page));
    EXPECT_EQ(p1.items.size(), 3u);
    EXPECT_EQ(p1.next, "wireapp://u1!c@example.com");
    page.after = p1.next;
    E2EID_TRY(p2, tx.ListDevices(std::nullopt, page));
    EXPECT_EQ(p2.items.size(), 1u);
    if (!p2.items.empty()) {
      EXPECT_EQ(p2.items[0].id, "wireapp://u2!a@example.com");
    }
    EXPECT_TRUE(p2.next.empty());

    E2EID_TRY(blocked, tx.ListDevices(DeviceStatus::kBlocked, PageRequest{}));
    EXPECT_EQ(blocked.items.size(), 1u);
    if (!blocked.items.empty()) {
      EXPECT_EQ(blocked.items[0].id, "wireapp://u1!b@example.com");
    }
    E2EID_TRY(active, tx.ListDevices(DeviceStatus::kActive, PageRequest{}));
    EXPECT_EQ(active.items.size(), 3u);
    E2EID_TRY(removed, tx.ListDevices(DeviceStatus::kRemoved, PageRequest{}));
    EXPECT_TRUE(removed.items.empty());
    EXPECT_TRUE(removed.next.empty());
    EXPECT_CODE(tx.ListDevices(std::nullopt, PageRequest{.after = "", .limit = 0}),
                ErrorCode::kInvalidArgument);
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

// ---- nonces -----------------------------------------------------------------------------------

TEST_F(StoreTest, NoncesAreSingleUseAndExpire) {
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    E2EID_CHECK_OK(tx.InsertNonce({"n-live", kT0 + seconds(60)}));
    E2EID_CHECK_OK(tx.InsertNonce({"n-old", kT0 - seconds(1)}));
    return tx.InsertNonce({"n-edge", kT0});
  }));
  EXPECT_CODE(Tx([](Transaction& tx) {
                return tx.InsertNonce({"n-live", kT0});
              }),
              ErrorCode::kAlreadyExists);
  EXPECT_TRUE(Tx([](Transaction& tx) { return tx.ConsumeNonce("n-live", kT0); }));
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.ConsumeNonce("n-live", kT0); }),
              ErrorCode::kBadNonce);
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.ConsumeNonce("n-old", kT0); }),
              ErrorCode::kBadNonce);
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.ConsumeNonce("n-edge", kT0); }),
              ErrorCode::kBadNonce);  // expires_at == now is expired
  EXPECT_CODE(Tx([](Transaction& tx) { return tx.ConsumeNonce("never-issued", kT0); }),
              ErrorCode::kBadNonce);
  EXPECT_EQ(Count(Table::kNonces), 2);
  int64_t purged = -1;
  ASSERT_TRUE(Tx([&](Transaction& tx) -> Status {
    E2EID_TRY(n, tx.PurgeExpiredNonces(kT0));
    purged = n;
    return Ok();
  }));
  EXPECT_EQ(purged, 2);
  EXPECT_EQ(Count(Table::kNonces), 0);
}

TEST_F(StoreTest, NonceRaceHasExactlyOneWinner) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    const std::string nonce = "race-" + std::to_string(round);
    ASSERT_TRUE(Tx([&](Transaction& tx) { return tx.InsertNonce({nonce, kT0 + seconds(60)}); }));
    std::latch start(kThreads);
    std::atomic<int> wins{0};
    std::atomic<int> bad_nonce{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        start.arrive_and_wait();
        auto st = Tx([&](Transaction& tx) { return tx.ConsumeNonce(nonce, kT0); });
        if (st) {
          ++wins;
        } else if (st.error().code() == ErrorCode::kBadNonce) {
          ++bad_nonce;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wins.load(), 1) << "round " << round;
    EXPECT_EQ(bad_nonce.load(), kThreads - 1) << "round " << round;
  }
}

// ---- concurrency ------------------------------------------------------------------------------

TEST_F(StoreTest, FiftyConcurrentCompareAndSetsHaveExactlyOneWinner) {
  SeedAccountAndOrder();
  constexpr int kThreads = 50;
  std::latch start(kThreads);
  std::atomic<int> wins{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      auto st = Tx([](Transaction& tx) {
        return tx.UpdateOrderStatus("order-1", OrderStatus::kReady, OrderStatus::kProcessing, kT0);
      });
      if (st) {
        ++wins;
      } else if (st.error().code() == ErrorCode::kConflict) {
        ++conflicts;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(conflicts.load(), kThreads - 1);
}

// The finalize pattern: read the order, check `ready`, write `processing` — as separate statements
// in one transaction. Transactions are serialised, so exactly one of the racers sees `ready`; and
// racers on different orders each succeed once.
TEST_F(StoreTest, ReadCheckWriteFinalizeIsAtomic) {
  constexpr int kOrders = 50;
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    E2EID_CHECK_OK(tx.InsertAccount(MakeAccount("acct", "thumb")));
    for (int i = 0; i < kOrders; ++i) {
      E2EID_CHECK_OK(tx.InsertOrder(MakeOrder("o" + std::to_string(i), "acct", kT0)));
    }
    return Ok();
  }));
  auto finalize = [&](const std::string& id) {
    return Tx([&](Transaction& tx) -> Status {
      E2EID_TRY(o, tx.GetOrder(id));
      if (o.status != OrderStatus::kReady) {
        return Fail(Error::Conflict("order " + id + " is not ready"));
      }
      o.status = OrderStatus::kProcessing;
      return tx.UpdateOrder(o);
    });
  };
  // 50 threads, each finalizing every order once (in a different order per thread).
  std::latch start(kOrders);
  std::vector<std::atomic<int>> wins(kOrders);
  std::atomic<int> other_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kOrders; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int k = 0; k < kOrders; ++k) {
        const int i = (t + k) % kOrders;
        auto st = finalize("o" + std::to_string(i));
        if (st) {
          ++wins[i];
        } else if (st.error().code() != ErrorCode::kConflict) {
          ++other_errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < kOrders; ++i) EXPECT_EQ(wins[i].load(), 1) << "order o" << i;
  EXPECT_EQ(other_errors.load(), 0);
}

TEST_F(StoreTest, ReadersSeeASnapshotAndDoNotWaitForTheWriter) {
  std::promise<void> inserted;
  std::promise<void> read_done;
  auto read_done_future = read_done.get_future();
  std::thread writer([&] {
    auto st = Tx([&](Transaction& tx) -> Status {
      E2EID_CHECK_OK(tx.InsertAccount(MakeAccount("acct-w", "thumb-w")));
      inserted.set_value();
      read_done_future.wait();  // keep the write transaction open until the reader has read
      return Ok();
    });
    EXPECT_TRUE(st) << st.error().ToString();
  });
  inserted.get_future().wait();
  auto st = Ro([](Transaction& tx) -> Status {
    EXPECT_CODE(tx.GetAccount("acct-w"), ErrorCode::kNotFound);  // uncommitted: invisible
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
  read_done.set_value();
  writer.join();
  st = Ro([](Transaction& tx) { return Discard(tx.GetAccount("acct-w")); });
  EXPECT_TRUE(st) << st.error().ToString();
}

TEST_F(StoreTest, ReadOnlyTransactionsRunConcurrently) {
  constexpr int kReaders = 4;  // the default reader pool size
  std::latch all_inside(kReaders);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kReaders; ++t) {
    threads.emplace_back([&] {
      auto st = Ro([&](Transaction& tx) -> Status {
        E2EID_TRY(n, tx.CountRows(Table::kAccounts));
        EXPECT_EQ(n, 0);
        all_inside.arrive_and_wait();  // only returns when all readers are inside at once
        return Ok();
      });
      if (st) ++ok;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kReaders);
}

// ---- transactions -----------------------------------------------------------------------------

TEST_F(StoreTest, FailedTransactionLeavesNothing) {
  auto st = Tx([](Transaction& tx) -> Status {
    E2EID_CHECK_OK(tx.InsertAccount(MakeAccount("a", "t")));
    E2EID_CHECK_OK(tx.InsertOrder(MakeOrder("o", "a", kT0)));
    E2EID_CHECK_OK(tx.ReserveSerial("0b", kT0));
    E2EID_CHECK_OK(tx.InsertNonce({"n", kT0 + seconds(5)}));
    E2EID_CHECK_OK(tx.InsertUser(MakeUser("u")));
    E2EID_CHECK_OK(Discard(tx.AppendAudit(MakeAudit("x"))));
    E2EID_TRY(n, tx.CountRows(Table::kAccounts));
    EXPECT_EQ(n, 1);  // the transaction sees its own writes
    return Fail(Error::Malformed("the CSR was bad after all"));
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kMalformed);  // fn's own error comes back
  for (Table t : {Table::kAccounts, Table::kOrders, Table::kSerials, Table::kNonces, Table::kUsers,
                  Table::kAuditEvents}) {
    EXPECT_EQ(Count(t), 0) << static_cast<int>(t);
  }
}

TEST_F(StoreTest, ExceptionInTransactionRollsBack) {
  auto st = Tx([](Transaction& tx) -> Status {
    E2EID_CHECK_OK(tx.InsertAccount(MakeAccount("a", "t")));
    throw std::runtime_error("boom");
  });
  EXPECT_CODE(st, ErrorCode::kInternal);
  EXPECT_EQ(Count(Table::kAccounts), 0);
  // The store is still usable.
  EXPECT_TRUE(Tx([](Transaction& tx) { return tx.InsertAccount(MakeAccount("a", "t")); }));
}

TEST_F(StoreTest, ReadOnlyRefusesWritesAndNestingIsRefused) {
  auto st = Ro([](Transaction& tx) -> Status {
    EXPECT_CODE(tx.InsertAccount(MakeAccount("a", "t")), ErrorCode::kInternal);
    EXPECT_CODE(tx.ConsumeNonce("n", kT0), ErrorCode::kInternal);
    EXPECT_CODE(tx.AppendAudit(MakeAudit("x")), ErrorCode::kInternal);
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(Count(Table::kAccounts), 0);

  st = Tx([&](Transaction&) -> Status {
    EXPECT_CODE(store_->InTransaction([](Transaction&) { return Ok(); }), ErrorCode::kInternal);
    EXPECT_CODE(store_->ReadOnly([](Transaction&) { return Ok(); }), ErrorCode::kInternal);
    EXPECT_CODE(store_->IntegrityCheck(), ErrorCode::kInternal);
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
  // And after nesting was refused, the store still works normally.
  EXPECT_TRUE(Tx([](Transaction& tx) { return tx.InsertAccount(MakeAccount("a", "t")); }));
}

// ---- audit ------------------------------------------------------------------------------------

TEST_F(StoreTest, AuditIsAppendOnly) {
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    int64_t last = 0;
    for (int i = 0; i < 5; ++i) {
      E2EID_TRY(id, tx.AppendAudit(MakeAudit("action-" + std::to_string(i), R"({"i":1})")));
      EXPECT_GT(id, last);
      last = id;
    }
    return Ok();
  }));
  store_.reset();  // the raw connection below must not race the store's writer
  {
    RawDb raw(path_);
    ASSERT_TRUE(raw.ok());
    std::string error;
    EXPECT_EQ(raw.Exec("UPDATE audit_events SET outcome = 'forged' WHERE id = 1", &error) & 0xff,
              SQLITE_CONSTRAINT);
    EXPECT_NE(error.find("append-only"), std::string::npos) << error;
    EXPECT_EQ(raw.Exec("DELETE FROM audit_events WHERE id = 2", &error) & 0xff, SQLITE_CONSTRAINT);
    EXPECT_NE(error.find("append-only"), std::string::npos) << error;
    EXPECT_EQ(raw.Exec("DELETE FROM audit_events", &error) & 0xff, SQLITE_CONSTRAINT);
    EXPECT_EQ(raw.QueryText("SELECT COUNT(*) FROM audit_events WHERE outcome = 'success'"), "5");
  }
  Reopen();
  auto st = Ro([](Transaction& tx) -> Status {
    PageRequest three;
    three.limit = 3;
    E2EID_TRY(p1, tx.ListAuditEvents(three));
    three.after = p1.next;
    E2EID_TRY(p2, tx.ListAuditEvents(three));
    EXPECT_EQ(p1.items.size(), 3u);
    EXPECT_EQ(p2.items.size(), 2u);
    EXPECT_TRUE(p2.next.empty());
    if (p1.items.size() == 3) {
      EXPECT_EQ(p1.items[0].action, "action-0");
      EXPECT_EQ(p1.items[0].actor, "admin:alice");
      EXPECT_EQ(p1.items[0].target, "serial:01");
      EXPECT_EQ(p1.items[0].source, "127.0.0.1");
      EXPECT_EQ(p1.items[0].outcome, "success");
      EXPECT_EQ(p1.items[0].details, R"({"i":1})");
      EXPECT_EQ(p1.items[0].at, kT0);
    }
    return Ok();
  });
  EXPECT_TRUE(st) << st.error().ToString();
}

// ---- crash safety -----------------------------------------------------------------------------

// A child process opens the store and runs one transaction that first revokes every certificate
// of a large committed table (rewriting existing pages) and then appends thousands of audit rows,
// far more than the page cache holds, so uncommitted pages spill to disk. Once it is well inside
// the transaction it tells the parent through a pipe, and the parent SIGKILLs it while it keeps
// inserting. After reopening, the database must be intact and hold either none or all of that
// transaction's effects.
TEST_F(StoreTest, SigkillInsideATransactionLeavesNoneOrAllOfIt) {
  constexpr int kCerts = 3000;  // ~3 MB of committed rows that the transaction rewrites
  constexpr int kBaselineAudit = 10;
  constexpr int kRows = 20000;
  constexpr int kSignalAfter = 6000;  // ~6 MB appended: beyond the 1 MB page cache, so pages spill
  ASSERT_TRUE(Tx([](Transaction& tx) -> Status {
    for (int i = 0; i < kCerts; ++i) {
      char serial[16];
      std::snprintf(serial, sizeof serial, "c%05d", i);
      E2EID_CHECK_OK(tx.ReserveSerial(serial, kT0));
      Certificate c = MakeCert(serial, "u" + std::to_string(i % 50), std::nullopt, "k", kT0);
      c.der.assign(1000, static_cast<uint8_t>(i));
      E2EID_CHECK_OK(tx.InsertCertificate(c));
    }
    for (int i = 0; i < kBaselineAudit; ++i) {
      E2EID_CHECK_OK(Discard(tx.AppendAudit(MakeAudit("baseline"))));
    }
    return Ok();
  }));
  store_.reset();  // no SQLite connection may be carried across fork()

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    SqliteOptions options;
    options.path = path_;
    options.writer_cache_kib = 1024;  // the smallest: uncommitted pages must reach the WAL file
    auto s = SqliteStore::Open(options);
    if (!s) ::_exit(2);
    const std::string details = R"({"pad":")" + std::string(1000, 'x') + R"("})";
    auto st = (*s)->InTransaction([&](Transaction& tx) -> Status {
      E2EID_TRY(revoked, tx.RevokeCertificates(
                             {RevocationScopeKind::kBefore, FormatRfc3339(kT0 + seconds(1))}, 1,
                             "crash test", kT0 + seconds(5)));
      if (revoked != kCerts) ::_exit(5);
      for (int i = 0; i < kRows; ++i) {
        E2EID_CHECK_OK(Discard(tx.AppendAudit(MakeAudit("crash", details))));
        if (i == kSignalAfter) {
          const char b = 'x';
          if (::write(fds[1], &b, 1) != 1) ::_exit(4);
        }
      }
      return Ok();
    });
    ::_exit(st ? 0 : 3);
  }
  ::close(fds[1]);
  // Make sure the child does not outlive a failed assertion below.
  struct Reaper {
    pid_t pid;
    bool reaped = false;
    ~Reaper() {
      if (!reaped) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};

  char b = 0;
  ssize_t n;
  do {
    n = ::read(fds[0], &b, 1);
  } while (n < 0 && errno == EINTR);
  ::close(fds[0]);
  ASSERT_EQ(n, 1) << "the child did not reach the middle of its transaction";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  reaper.reaped = true;
  const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  const bool committed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  ASSERT_TRUE(killed || committed) << "child status " << status;
  RecordProperty("child_outcome", killed ? "killed inside the transaction" : "committed first");

  if (killed) {
    // Evidence that the kill hit an open transaction whose pages had reached the disk.
    std::error_code ec;
    const auto wal_size = std::filesystem::file_size(path_ + "-wal", ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_GT(wal_size, 4u * 1024 * 1024);
  }

  int64_t baseline = -1;
  int64_t crash = -1;
  int64_t revoked = -1;
  int64_t certs = -1;
  {
    RawDb raw(path_);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw.QueryText("PRAGMA integrity_check"), "ok");
    baseline = raw.QueryInt("SELECT COUNT(*) FROM audit_events WHERE action = 'baseline'");
    crash = raw.QueryInt("SELECT COUNT(*) FROM audit_events WHERE action = 'crash'");
    revoked = raw.QueryInt("SELECT COUNT(*) FROM certificates WHERE status = 'revoked'");
    certs = raw.QueryInt("SELECT COUNT(*) FROM certificates");
  }
  EXPECT_EQ(baseline, kBaselineAudit);
  EXPECT_EQ(certs, kCerts);
  if (killed) {
    EXPECT_TRUE((crash == 0 && revoked == 0) || (crash == kRows && revoked == kCerts))
        << crash << " audit rows and " << revoked << " revocations of the killed transaction";
  } else {
    EXPECT_EQ(crash, kRows);
    EXPECT_EQ(revoked, kCerts);
  }
  Reopen();
  EXPECT_TRUE(store_->IntegrityCheck());
  // The store accepts writes again after recovery.
  EXPECT_TRUE(Tx([](Transaction& tx) { return Discard(tx.AppendAudit(MakeAudit("after"))); }));
}

}  // namespace
}  // namespace e2eid::store
