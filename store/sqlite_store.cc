#include "store/sqlite_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include "core/file.h"
#include "core/log.h"
#include "store/memory_nonces.h"
#include "store/sqlite_db.h"
#include "store/sqlite_schema.h"

namespace e2eid::store {

using sqlite::Connection;
using sqlite::Statement;

namespace {

constexpr int64_t kMinInt64 = std::numeric_limits<int64_t>::min();

// ---- column lists (SQL text is built only from these constants) --------------------------------

#define E2EID_ACCOUNT_COLS "id, key_thumbprint, jwk, status, contacts, created_at, eab_key_id"
#define E2EID_ORDER_COLS                                                                     \
  "id, account_id, status, identifiers, not_before, not_after, expires, error, "             \
  "certificate_serial, replaces, created_at, updated_at, user_id, device_id, display_name, " \
  "handle, domain"
#define E2EID_AUTHZ_COLS \
  "id, order_id, account_id, identifier_type, identifier_value, status, expires, wildcard"
#define E2EID_CHALLENGE_COLS \
  "id, authz_id, type, token, status, target, validated_at, error, validation_claims"
// A certificate is one row of `certificates` and one of `certificate_blobs` (DER and chain, kept
// apart so that revoking rewrites small rows). E2EID_CERT_SELECT reads both in ReadCertificate's
// column order; CROSS JOIN keeps `certificates` as the outer loop, so each query walks an index of
// `certificates` and looks up the blob by primary key.
#define E2EID_CERT_ROW_COLS                                                                \
  "serial, issuer_id, account_id, order_id, user_id, device_id, spki_sha256, not_before, " \
  "not_after, issued_at, status, revoked_at, revocation_reason, revocation_comment"
#define E2EID_CERT_SELECT                                                                      \
  "SELECT c.serial, c.issuer_id, c.account_id, c.order_id, c.user_id, c.device_id, "           \
  "c.spki_sha256, c.not_before, c.not_after, c.issued_at, b.der, b.chain_pem, c.status, "      \
  "c.revoked_at, c.revocation_reason, c.revocation_comment FROM certificates AS c CROSS JOIN " \
  "certificate_blobs AS b ON b.serial = c.serial"
#define E2EID_CRL_ENTRY_COLS "serial, issuer_id, not_after, revoked_at, revocation_reason"
#define E2EID_DEVICE_COLS                                                              \
  "id, user_id, display_name, handle, key_thumbprint, status, first_seen, last_seen, " \
  "blocked_reason"
#define E2EID_USER_COLS "id, handle, display_name, status, first_seen, last_seen"
#define E2EID_REVOCATION_EVENT_COLS \
  "id, scope_kind, scope_value, reason, comment, actor, at, affected"
#define E2EID_AUDIT_COLS "id, at, actor, action, target, source, outcome, details"
#define E2EID_CRL_STATE_COLS "issuer_id, next_number, last_issued_at"

// ---- row readers -------------------------------------------------------------------------------

template <typename E>
Result<E> ColumnEnum(const Statement& st, int c, Result<E> (*parse)(std::string_view),
                     const char* column) {
  const std::string v = st.Text(c);
  auto r = parse(v);
  if (!r) return Fail(Error::Store(std::string(column) + " holds an unknown value '" + v + "'"));
  return *r;
}

Result<Account> ReadAccount(const Statement& st) {
  Account a;
  a.id = st.Text(0);
  a.key_thumbprint = st.Text(1);
  a.jwk = st.Text(2);
  E2EID_TRY(status, ColumnEnum(st, 3, &ParseAccountStatus, "accounts.status"));
  a.status = status;
  a.contacts = st.Text(4);
  a.created_at = st.Time(5);
  a.eab_key_id = st.OptText(6);
  return a;
}

Result<Order> ReadOrder(const Statement& st) {
  Order o;
  o.id = st.Text(0);
  o.account_id = st.Text(1);
  E2EID_TRY(status, ColumnEnum(st, 2, &ParseOrderStatus, "orders.status"));
  o.status = status;
  o.identifiers = st.Text(3);
  o.not_before = st.OptTime(4);
  o.not_after = st.OptTime(5);
  o.expires = st.Time(6);
  o.error = st.OptText(7);
  o.certificate_serial = st.OptText(8);
  o.replaces = st.OptText(9);
  o.created_at = st.Time(10);
  o.updated_at = st.Time(11);
  o.user_id = st.OptText(12);
  o.device_id = st.OptText(13);
  o.display_name = st.OptText(14);
  o.handle = st.OptText(15);
  o.domain = st.OptText(16);
  return o;
}

Result<Authorization> ReadAuthorization(const Statement& st) {
  Authorization a;
  a.id = st.Text(0);
  a.order_id = st.Text(1);
  a.account_id = st.Text(2);
  a.identifier_type = st.Text(3);
  a.identifier_value = st.Text(4);
  E2EID_TRY(status, ColumnEnum(st, 5, &ParseAuthorizationStatus, "authorizations.status"));
  a.status = status;
  a.expires = st.Time(6);
  a.wildcard = st.Int(7) != 0;
  return a;
}

Result<Challenge> ReadChallenge(const Statement& st) {
  Challenge c;
  c.id = st.Text(0);
  c.authz_id = st.Text(1);
  c.type = st.Text(2);
  c.token = st.Text(3);
  E2EID_TRY(status, ColumnEnum(st, 4, &ParseChallengeStatus, "challenges.status"));
  c.status = status;
  c.target = st.OptText(5);
  c.validated_at = st.OptTime(6);
  c.error = st.OptText(7);
  c.validation_claims = st.OptText(8);
  return c;
}

Result<Certificate> ReadCertificate(const Statement& st) {
  Certificate c;
  c.serial = st.Text(0);
  c.issuer_id = st.Text(1);
  c.account_id = st.OptText(2);
  c.order_id = st.OptText(3);
  c.user_id = st.Text(4);
  c.device_id = st.OptText(5);
  c.spki_sha256 = st.Text(6);
  c.not_before = st.Time(7);
  c.not_after = st.Time(8);
  c.issued_at = st.Time(9);
  c.der = st.Blob(10);
  c.chain_pem = st.Text(11);
  E2EID_TRY(status, ColumnEnum(st, 12, &ParseCertificateStatus, "certificates.status"));
  c.status = status;
  c.revoked_at = st.OptTime(13);
  if (auto reason = st.OptInt(14)) c.revocation_reason = static_cast<int>(*reason);
  c.revocation_comment = st.OptText(15);
  return c;
}

Result<RevokedEntry> ReadRevokedEntry(const Statement& st) {
  RevokedEntry e;
  e.serial = st.Text(0);
  e.issuer_id = st.Text(1);
  e.not_after = st.Time(2);
  e.revoked_at = st.Time(3);
  e.revocation_reason = static_cast<int>(st.Int(4));
  return e;
}

Result<Device> ReadDevice(const Statement& st) {
  Device d;
  d.id = st.Text(0);
  d.user_id = st.Text(1);
  d.display_name = st.Text(2);
  d.handle = st.Text(3);
  d.key_thumbprint = st.Text(4);
  E2EID_TRY(status, ColumnEnum(st, 5, &ParseDeviceStatus, "devices.status"));
  d.status = status;
  d.first_seen = st.Time(6);
  d.last_seen = st.Time(7);
  d.blocked_reason = st.OptText(8);
  return d;
}

Result<User> ReadUser(const Statement& st) {
  User u;
  u.id = st.Text(0);
  u.handle = st.Text(1);
  u.display_name = st.Text(2);
  E2EID_TRY(status, ColumnEnum(st, 3, &ParseUserStatus, "users.status"));
  u.status = status;
  u.first_seen = st.Time(4);
  u.last_seen = st.Time(5);
  return u;
}

Result<RevocationEvent> ReadRevocationEvent(const Statement& st) {
  RevocationEvent e;
  e.id = st.Int(0);
  E2EID_TRY(kind, ColumnEnum(st, 1, &ParseRevocationScopeKind, "revocation_events.scope_kind"));
  e.scope_kind = kind;
  e.scope_value = st.Text(2);
  e.reason = static_cast<int>(st.Int(3));
  e.comment = st.Text(4);
  e.actor = st.Text(5);
  e.at = st.Time(6);
  e.affected = st.Int(7);
  return e;
}

Result<AuditEvent> ReadAuditEvent(const Statement& st) {
  AuditEvent e;
  e.id = st.Int(0);
  e.at = st.Time(1);
  e.actor = st.Text(2);
  e.action = st.Text(3);
  e.target = st.Text(4);
  e.source = st.Text(5);
  e.outcome = st.Text(6);
  e.details = st.Text(7);
  return e;
}

Result<CrlState> ReadCrlState(const Statement& st) {
  CrlState s;
  s.issuer_id = st.Text(0);
  s.next_number = st.Int(1);
  s.last_issued_at = st.OptTime(2);
  return s;
}

// ---- query helpers -----------------------------------------------------------------------------

template <typename T>
using Reader = Result<T> (*)(const Statement&);

// The one row of a lookup by key, or kNotFound with `missing` as detail.
template <typename T>
Result<T> QueryOne(Statement& st, Reader<T> read, std::string missing) {
  E2EID_TRY(row, st.Step());
  if (!row) return Fail(Error::NotFound(std::move(missing)));
  return read(st);
}

template <typename T>
Result<std::vector<T>> QueryAll(Statement& st, Reader<T> read) {
  std::vector<T> out;
  for (;;) {
    E2EID_TRY(row, st.Step());
    if (!row) break;
    E2EID_TRY(item, read(st));
    out.push_back(std::move(item));
  }
  return out;
}

// Reads up to `limit` rows of a statement that was given LIMIT limit + 1; the extra row only tells
// that another page exists, and `cursor_of(last item)` becomes Page::next.
template <typename T, typename CursorFn>
Result<Page<T>> QueryPage(Statement& st, int limit, Reader<T> read, CursorFn cursor_of) {
  Page<T> page;
  for (;;) {
    E2EID_TRY(row, st.Step());
    if (!row) break;
    if (static_cast<int>(page.items.size()) == limit) {
      page.next = cursor_of(page.items.back());
      break;
    }
    E2EID_TRY(item, read(st));
    page.items.push_back(std::move(item));
  }
  return page;
}

// Steps an INSERT ... RETURNING id to completion and returns the id.
Result<int64_t> RunReturningId(Statement& st) {
  E2EID_TRY(row, st.Step());
  if (!row) return Fail(Error::Internal("INSERT ... RETURNING returned no row"));
  const int64_t id = st.Int(0);
  E2EID_TRY(more, st.Step());
  if (more) return Fail(Error::Internal("INSERT ... RETURNING returned more than one row"));
  return id;
}

Status CheckLimit(const PageRequest& page) {
  if (page.limit < 1 || page.limit > kMaxPageLimit) {
    return Fail(Error::InvalidArgument("page limit must be between 1 and " +
                                       std::to_string(kMaxPageLimit) + ", got " +
                                       std::to_string(page.limit)));
  }
  return Ok();
}

Result<int64_t> ParseInt64(std::string_view s) {
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    return Fail(Error::InvalidArgument("not an integer: '" + std::string(s) + "'"));
  }
  return v;
}

// Cursor of listings ordered by an integer id: the last id, in decimal.
Result<int64_t> ParseIdCursor(std::string_view after) {
  if (after.empty()) return int64_t{0};
  auto v = ParseInt64(after);
  if (!v || *v < 0) {
    return Fail(Error::InvalidArgument("invalid page cursor '" + std::string(after) + "'"));
  }
  return *v;
}

// Cursor of listings ordered by (time, text key): "<unix seconds>:<key>".
struct TimeKeyCursor {
  int64_t time = kMinInt64;
  std::string key;
};

Result<TimeKeyCursor> ParseTimeKeyCursor(std::string_view after) {
  if (after.empty()) return TimeKeyCursor{};
  const size_t colon = after.find(':');
  auto bad = [&] {
    return Fail(Error::InvalidArgument("invalid page cursor '" + std::string(after) + "'"));
  };
  if (colon == std::string_view::npos || colon + 1 == after.size()) return bad();
  auto t = ParseInt64(after.substr(0, colon));
  if (!t) return bad();
  return TimeKeyCursor{*t, std::string(after.substr(colon + 1))};
}

std::string TimeKeyCursorOf(TimePoint t, const std::string& key) {
  return std::to_string(ToUnix(t)) + ":" + key;
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// ---- the transaction ---------------------------------------------------------------------------

class SqliteTransaction final : public Transaction {
 public:
  SqliteTransaction(Connection& conn, bool read_only) : c_(conn), read_only_(read_only) {}
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  // ---- accounts ----

  Status InsertAccount(const Account& a) override {
    E2EID_CHECK_OK(Writable("InsertAccount"));
    E2EID_TRY(st, c_.Prepare("INSERT INTO accounts (" E2EID_ACCOUNT_COLS
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                             "InsertAccount " + Quoted(a.id)));
    st.BindText(1, a.id);
    st.BindText(2, a.key_thumbprint);
    st.BindText(3, a.jwk);
    st.BindText(4, ToString(a.status));
    st.BindText(5, a.contacts);
    st.BindTime(6, a.created_at);
    st.BindOptText(7, a.eab_key_id);
    return st.Run();
  }

  Result<Account> GetAccount(std::string_view id) override {
    E2EID_TRY(
        st, c_.Prepare("SELECT " E2EID_ACCOUNT_COLS " FROM accounts WHERE id = ?1", "GetAccount"));
    st.BindText(1, id);
    return QueryOne<Account>(st, &ReadAccount, "account " + Quoted(id) + " does not exist");
  }

  Result<Account> GetAccountByThumbprint(std::string_view key_thumbprint) override {
    E2EID_TRY(st,
              c_.Prepare("SELECT " E2EID_ACCOUNT_COLS " FROM accounts WHERE key_thumbprint = ?1",
                         "GetAccountByThumbprint"));
    st.BindText(1, key_thumbprint);
    return QueryOne<Account>(st, &ReadAccount,
                             "no account has key thumbprint " + Quoted(key_thumbprint));
  }

  Status UpdateAccount(const Account& a) override {
    E2EID_CHECK_OK(Writable("UpdateAccount"));
    E2EID_TRY(st, c_.Prepare("UPDATE accounts SET key_thumbprint = ?2, jwk = ?3, status = ?4, "
                             "contacts = ?5, eab_key_id = ?6 WHERE id = ?1",
                             "UpdateAccount " + Quoted(a.id)));
    st.BindText(1, a.id);
    st.BindText(2, a.key_thumbprint);
    st.BindText(3, a.jwk);
    st.BindText(4, ToString(a.status));
    st.BindText(5, a.contacts);
    st.BindOptText(6, a.eab_key_id);
    return RunExpectingRow(st, "account " + Quoted(a.id) + " does not exist");
  }

  // ---- orders ----

  Status InsertOrder(const Order& o) override {
    E2EID_CHECK_OK(Writable("InsertOrder"));
    E2EID_TRY(st, c_.Prepare("INSERT INTO orders (" E2EID_ORDER_COLS
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                             "?14, ?15, ?16, ?17)",
                             "InsertOrder " + Quoted(o.id)));
    st.BindText(1, o.id);
    st.BindText(2, o.account_id);
    st.BindText(3, ToString(o.status));
    st.BindText(4, o.identifiers);
    st.BindOptTime(5, o.not_before);
    st.BindOptTime(6, o.not_after);
    st.BindTime(7, o.expires);
    st.BindOptText(8, o.error);
    st.BindOptText(9, o.certificate_serial);
    st.BindOptText(10, o.replaces);
    st.BindTime(11, o.created_at);
    st.BindTime(12, o.updated_at);
    st.BindOptText(13, o.user_id);
    st.BindOptText(14, o.device_id);
    st.BindOptText(15, o.display_name);
    st.BindOptText(16, o.handle);
    st.BindOptText(17, o.domain);
    return st.Run();
  }

  Result<Order> GetOrder(std::string_view id) override {
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_ORDER_COLS " FROM orders WHERE id = ?1", "GetOrder"));
    st.BindText(1, id);
    return QueryOne<Order>(st, &ReadOrder, "order " + Quoted(id) + " does not exist");
  }

  Status UpdateOrder(const Order& o) override {
    E2EID_CHECK_OK(Writable("UpdateOrder"));
    E2EID_TRY(st, c_.Prepare("UPDATE orders SET status = ?2, identifiers = ?3, not_before = ?4, "
                             "not_after = ?5, expires = ?6, error = ?7, certificate_serial = ?8, "
                             "replaces = ?9, updated_at = ?10, user_id = ?11, device_id = ?12, "
                             "display_name = ?13, handle = ?14, domain = ?15 WHERE id = ?1",
                             "UpdateOrder " + Quoted(o.id)));
    st.BindText(1, o.id);
    st.BindText(2, ToString(o.status));
    st.BindText(3, o.identifiers);
    st.BindOptTime(4, o.not_before);
    st.BindOptTime(5, o.not_after);
    st.BindTime(6, o.expires);
    st.BindOptText(7, o.error);
    st.BindOptText(8, o.certificate_serial);
    st.BindOptText(9, o.replaces);
    st.BindTime(10, o.updated_at);
    st.BindOptText(11, o.user_id);
    st.BindOptText(12, o.device_id);
    st.BindOptText(13, o.display_name);
    st.BindOptText(14, o.handle);
    st.BindOptText(15, o.domain);
    return RunExpectingRow(st, "order " + Quoted(o.id) + " does not exist");
  }

  Status UpdateOrderStatus(std::string_view id, OrderStatus from, OrderStatus to,
                           TimePoint now) override {
    E2EID_CHECK_OK(Writable("UpdateOrderStatus"));
    {
      E2EID_TRY(st, c_.Prepare("UPDATE orders SET status = ?3, updated_at = ?4 "
                               "WHERE id = ?1 AND status = ?2",
                               "UpdateOrderStatus " + Quoted(id)));
      st.BindText(1, id);
      st.BindText(2, ToString(from));
      st.BindText(3, ToString(to));
      st.BindTime(4, now);
      E2EID_CHECK_OK(st.Run());
      if (st.Changes() == 1) return Ok();
    }
    return CasFailure("SELECT status FROM orders WHERE id = ?1", "order", id, ToString(from));
  }

  Result<Page<Order>> ListOrdersForAccount(std::string_view account_id,
                                           const PageRequest& page) override {
    E2EID_CHECK_OK(CheckLimit(page));
    E2EID_TRY(cursor, ParseTimeKeyCursor(page.after));
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_ORDER_COLS " FROM orders WHERE account_id = ?1 AND "
                             "(created_at, id) > (?2, ?3) ORDER BY created_at, id LIMIT ?4",
                             "ListOrdersForAccount"));
    st.BindText(1, account_id);
    st.BindInt(2, cursor.time);
    st.BindText(3, cursor.key);
    st.BindInt(4, page.limit + 1);
    return QueryPage<Order>(st, page.limit, &ReadOrder,
                            [](const Order& o) { return TimeKeyCursorOf(o.created_at, o.id); });
  }

  Result<std::vector<Order>> ListOrdersReplacing(std::string_view cert_id) override {
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_ORDER_COLS " FROM orders WHERE replaces = ?1 "
                             "ORDER BY created_at, id",
                             "ListOrdersReplacing"));
    st.BindText(1, cert_id);
    return QueryAll<Order>(st, &ReadOrder);
  }

  // ---- authorizations ----

  Status InsertAuthorization(const Authorization& a) override {
    E2EID_CHECK_OK(Writable("InsertAuthorization"));
    E2EID_TRY(st, c_.Prepare("INSERT INTO authorizations (" E2EID_AUTHZ_COLS
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                             "InsertAuthorization " + Quoted(a.id)));
    st.BindText(1, a.id);
    st.BindText(2, a.order_id);
    st.BindText(3, a.account_id);
    st.BindText(4, a.identifier_type);
    st.BindText(5, a.identifier_value);
    st.BindText(6, ToString(a.status));
    st.BindTime(7, a.expires);
    st.BindInt(8, a.wildcard ? 1 : 0);
    return st.Run();
  }

  Result<Authorization> GetAuthorization(std::string_view id) override {
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_AUTHZ_COLS " FROM authorizations WHERE id = ?1",
                             "GetAuthorization"));
    st.BindText(1, id);
    return QueryOne<Authorization>(st, &ReadAuthorization,
                                   "authorization " + Quoted(id) + " does not exist");
  }

  Status UpdateAuthorization(const Authorization& a) override {
    E2EID_CHECK_OK(Writable("UpdateAuthorization"));
    E2EID_TRY(st, c_.Prepare("UPDATE authorizations SET status = ?2, expires = ?3, wildcard = ?4 "
                             "WHERE id = ?1",
                             "UpdateAuthorization " + Quoted(a.id)));
    st.BindText(1, a.id);
    st.BindText(2, ToString(a.status));
    st.BindTime(3, a.expires);
    st.BindInt(4, a.wildcard ? 1 : 0);
    return RunExpectingRow(st, "authorization " + Quoted(a.id) + " does not exist");
  }

  Status UpdateAuthorizationStatus(std::string_view id, AuthorizationStatus from,
                                   AuthorizationStatus to) override {
    E2EID_CHECK_OK(Writable("UpdateAuthorizationStatus"));
    {
      E2EID_TRY(st,
                c_.Prepare("UPDATE authorizations SET status = ?3 WHERE id = ?1 AND status = ?2",
                           "UpdateAuthorizationStatus " + Quoted(id)));
      st.BindText(1, id);
      st.BindText(2, ToString(from));
      st.BindText(3, ToString(to));
      E2EID_CHECK_OK(st.Run());
      if (st.Changes() == 1) return Ok();
    }
    return CasFailure("SELECT status FROM authorizations WHERE id = ?1", "authorization", id,
                      ToString(from));
  }

  Result<std::vector<Authorization>> ListAuthorizationsForOrder(
      std::string_view order_id) override {
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_AUTHZ_COLS " FROM authorizations WHERE order_id = ?1 "
                             "ORDER BY identifier_type, identifier_value, id",
                             "ListAuthorizationsForOrder"));
    st.BindText(1, order_id);
    return QueryAll<Authorization>(st, &ReadAuthorization);
  }

  // ---- challenges ----

  Status InsertChallenge(const Challenge& c) override {
    E2EID_CHECK_OK(Writable("InsertChallenge"));
    E2EID_TRY(st, c_.Prepare("INSERT INTO challenges (" E2EID_CHALLENGE_COLS
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                             "InsertChallenge " + Quoted(c.id)));
    st.BindText(1, c.id);
    st.BindText(2, c.authz_id);
    st.BindText(3, c.type);
    st.BindText(4, c.token);
    st.BindText(5, ToString(c.status));
    st.BindOptText(6, c.target);
    st.BindOptTime(7, c.validated_at);
    st.BindOptText(8, c.error);
    st.BindOptText(9, c.validation_claims);
    return st.Run();
  }

  Result<Challenge> GetChallenge(std::string_view id) override {
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_CHALLENGE_COLS " FROM challenges WHERE id = ?1",
                             "GetChallenge"));
    st.BindText(1, id);
    return QueryOne<Challenge>(st, &ReadChallenge, "challenge " + Quoted(id) + " does not exist");
  }

  Status UpdateChallenge(const Challenge& c) override {
    E2EID_CHECK_OK(Writable("UpdateChallenge"));
    E2EID_TRY(st, c_.Prepare("UPDATE challenges SET status = ?2, target = ?3, validated_at = ?4, "
                             "error = ?5, validation_claims = ?6 WHERE id = ?1",
                             "UpdateChallenge " + Quoted(c.id)));
    st.BindText(1, c.id);
    st.BindText(2, ToString(c.status));
    st.BindOptText(3, c.target);
    st.BindOptTime(4, c.validated_at);
    st.BindOptText(5, c.error);
    st.BindOptText(6, c.validation_claims);
    return RunExpectingRow(st, "challenge " + Quoted(c.id) + " does not exist");
  }

  Status UpdateChallengeStatus(std::string_view id, ChallengeStatus from,
                               ChallengeStatus to) override {
    E2EID_CHECK_OK(Writable("UpdateChallengeStatus"));
    {
      E2EID_TRY(st, c_.Prepare("UPDATE challenges SET status = ?3 WHERE id = ?1 AND status = ?2",
                               "UpdateChallengeStatus " + Quoted(id)));
      st.BindText(1, id);
      st.BindText(2, ToString(from));
      st.BindText(3, ToString(to));
      E2EID_CHECK_OK(st.Run());
      if (st.Changes() == 1) return Ok();
    }
    return CasFailure("SELECT status FROM challenges WHERE id = ?1", "challenge", id,
                      ToString(from));
  }

  Result<std::vector<Challenge>> ListChallengesForAuthorization(
      std::string_view authz_id) override {
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_CHALLENGE_COLS " FROM challenges WHERE authz_id = ?1 "
                             "ORDER BY type, id",
                             "ListChallengesForAuthorization"));
    st.BindText(1, authz_id);
    return QueryAll<Challenge>(st, &ReadChallenge);
  }

  // ---- serials and certificates ----

  Status ReserveSerial(std::string_view serial_hex, TimePoint now) override {
    E2EID_CHECK_OK(Writable("ReserveSerial"));
    if (!IsCanonicalSerialHex(serial_hex)) {
      return Fail(Error::InvalidArgument("serial " + Quoted(serial_hex) +
                                         " is not 1 to 40 lowercase hex digits"));
    }
    E2EID_TRY(st, c_.Prepare("INSERT INTO serials (serial, reserved_at) VALUES (?1, ?2)",
                             "ReserveSerial " + Quoted(serial_hex)));
    st.BindText(1, serial_hex);
    st.BindTime(2, now);
    auto r = st.Run();
    if (!r && r.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(Error::AlreadyExists("serial " + Quoted(serial_hex) + " was already reserved"));
    }
    return r;
  }

  Status InsertCertificate(const Certificate& c) override {
    E2EID_CHECK_OK(Writable("InsertCertificate"));
    if (!IsCanonicalSerialHex(c.serial)) {
      return Fail(Error::InvalidArgument("certificate serial " + Quoted(c.serial) +
                                         " is not 1 to 40 lowercase hex digits"));
    }
    if (c.revocation_reason && !IsValidRevocationReason(*c.revocation_reason)) {
      return Fail(Error::InvalidArgument("certificate " + Quoted(c.serial) +
                                         ": invalid revocation reason " +
                                         std::to_string(*c.revocation_reason)));
    }
    {
      E2EID_TRY(st, c_.Prepare("SELECT 1 FROM serials WHERE serial = ?1", "InsertCertificate"));
      st.BindText(1, c.serial);
      E2EID_TRY(reserved, st.Step());
      if (!reserved) {
        return Fail(
            Error::Conflict("certificate " + Quoted(c.serial) + ": the serial was not reserved"));
      }
    }
    // Two rows, both or neither: a savepoint makes the pair atomic like any other operation.
    E2EID_CHECK_OK(RunConstant("SAVEPOINT insert_certificate", "InsertCertificate"));
    Status inserted = InsertCertificateRows(c);
    if (!inserted) (void)RunConstant("ROLLBACK TO insert_certificate", "InsertCertificate");
    auto released = RunConstant("RELEASE insert_certificate", "InsertCertificate");
    if (!inserted) return inserted;
    return released;
  }

  Result<Certificate> GetCertificate(std::string_view serial_hex) override {
    E2EID_TRY(st, c_.Prepare(E2EID_CERT_SELECT " WHERE c.serial = ?1", "GetCertificate"));
    st.BindText(1, serial_hex);
    return QueryOne<Certificate>(st, &ReadCertificate,
                                 "certificate " + Quoted(serial_hex) + " does not exist");
  }

  Result<Page<Certificate>> ListCertificatesByUser(std::string_view user_id,
                                                   const PageRequest& page) override {
    return ListCertificatesBy(E2EID_CERT_SELECT
                              " WHERE c.user_id = ?1 AND (c.issued_at, c.serial) > (?2, ?3) "
                              "ORDER BY c.issued_at, c.serial LIMIT ?4",
                              "ListCertificatesByUser", user_id, page);
  }

  Result<Page<Certificate>> ListCertificatesByDevice(std::string_view device_id,
                                                     const PageRequest& page) override {
    return ListCertificatesBy(E2EID_CERT_SELECT
                              " WHERE c.device_id = ?1 AND (c.issued_at, c.serial) > (?2, ?3) "
                              "ORDER BY c.issued_at, c.serial LIMIT ?4",
                              "ListCertificatesByDevice", device_id, page);
  }

  Result<Page<Certificate>> ListCertificatesBySpki(std::string_view spki_sha256,
                                                   const PageRequest& page) override {
    return ListCertificatesBy(E2EID_CERT_SELECT
                              " WHERE c.spki_sha256 = ?1 AND (c.issued_at, c.serial) > (?2, ?3) "
                              "ORDER BY c.issued_at, c.serial LIMIT ?4",
                              "ListCertificatesBySpki", spki_sha256, page);
  }

  Result<Page<Certificate>> ListCertificatesIssuedBefore(TimePoint before,
                                                         const PageRequest& page) override {
    E2EID_CHECK_OK(CheckLimit(page));
    E2EID_TRY(cursor, ParseTimeKeyCursor(page.after));
    E2EID_TRY(st, c_.Prepare(E2EID_CERT_SELECT
                             " WHERE c.issued_at < ?1 AND (c.issued_at, c.serial) > (?2, ?3) "
                             "ORDER BY c.issued_at, c.serial LIMIT ?4",
                             "ListCertificatesIssuedBefore"));
    st.BindTime(1, before);
    st.BindInt(2, cursor.time);
    st.BindText(3, cursor.key);
    st.BindInt(4, page.limit + 1);
    return QueryPage<Certificate>(st, page.limit, &ReadCertificate, &CertCursor);
  }

  Result<int64_t> RevokeCertificates(const RevocationScope& scope, int reason,
                                     std::string_view comment, TimePoint at) override {
    E2EID_CHECK_OK(Writable("RevokeCertificates"));
    if (!IsValidRevocationReason(reason)) {
      return Fail(Error::InvalidArgument("invalid revocation reason " + std::to_string(reason) +
                                         " (RFC 5280 CRLReason codes are 0-6 and 8-10)"));
    }
    const char* sql = nullptr;
    switch (scope.kind) {
      case RevocationScopeKind::kCertificate:
        sql =
            "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3, "
            "revocation_comment = ?4 WHERE status = 'good' AND serial = ?1";
        break;
      case RevocationScopeKind::kDevice:
        sql =
            "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3, "
            "revocation_comment = ?4 WHERE status = 'good' AND device_id = ?1";
        break;
      case RevocationScopeKind::kUser:
        sql =
            "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3, "
            "revocation_comment = ?4 WHERE status = 'good' AND user_id = ?1";
        break;
      case RevocationScopeKind::kKey:
        sql =
            "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3, "
            "revocation_comment = ?4 WHERE status = 'good' AND spki_sha256 = ?1";
        break;
      case RevocationScopeKind::kBefore:
        sql =
            "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3, "
            "revocation_comment = ?4 WHERE status = 'good' AND issued_at < ?1";
        break;
    }
    if (sql == nullptr) return Fail(Error::InvalidArgument("unknown revocation scope kind"));
    const std::string context =
        "RevokeCertificates " + std::string(ToString(scope.kind)) + " " + Quoted(scope.value);
    if (scope.value.empty()) {
      return Fail(Error::InvalidArgument(context + ": the scope value is empty"));
    }
    std::optional<TimePoint> before;
    if (scope.kind == RevocationScopeKind::kBefore) {
      auto t = ParseRfc3339(scope.value);
      if (!t) {
        return Fail(Error::InvalidArgument(context + ": the value of a 'before' scope must be " +
                                           "an RFC 3339 time"));
      }
      before = *t;
    }
    E2EID_TRY(st, c_.Prepare(sql, context));
    if (before) {
      st.BindTime(1, *before);
    } else {
      st.BindText(1, scope.value);
    }
    st.BindTime(2, at);
    st.BindInt(3, reason);
    st.BindText(4, comment);
    E2EID_CHECK_OK(st.Run());
    return st.Changes();
  }

  Result<Page<Certificate>> ListRevokedCertificates(std::optional<std::string_view> issuer_id,
                                                    std::optional<TimePoint> unexpired_at,
                                                    const PageRequest& page) override {
    E2EID_CHECK_OK(CheckLimit(page));
    // The cursor is the last serial; serials are canonical lowercase hex.
    if (!page.after.empty() && !IsCanonicalSerialHex(page.after)) {
      return Fail(Error::InvalidArgument("invalid page cursor " + Quoted(page.after)));
    }
    // Both statements walk the covering partial index certificates_crl in serial order.
    const char* sql = issuer_id ? E2EID_CERT_SELECT
                          " WHERE c.status = 'revoked' AND c.issuer_id = ?1 AND c.not_after >= ?2 "
                          "AND c.serial > ?3 ORDER BY c.serial LIMIT ?4"
                                : E2EID_CERT_SELECT
                          " WHERE c.status = 'revoked' AND c.not_after >= ?2 AND c.serial > ?3 "
                          "ORDER BY c.serial LIMIT ?4";
    E2EID_TRY(st, c_.Prepare(sql, "ListRevokedCertificates"));
    if (issuer_id) st.BindText(1, *issuer_id);
    st.BindInt(2, unexpired_at ? ToUnix(*unexpired_at) : kMinInt64);
    st.BindText(3, page.after);
    st.BindInt(4, page.limit + 1);
    return QueryPage<Certificate>(st, page.limit, &ReadCertificate,
                                  [](const Certificate& c) { return c.serial; });
  }

  Result<Page<RevokedEntry>> ListCrlEntries(std::optional<std::string_view> issuer_id,
                                            std::optional<TimePoint> unexpired_at,
                                            const PageRequest& page) override {
    E2EID_CHECK_OK(CheckLimit(page));
    if (!page.after.empty() && !IsCanonicalSerialHex(page.after)) {
      return Fail(Error::InvalidArgument("invalid page cursor " + Quoted(page.after)));
    }
    // Answered from the covering partial index certificates_crl alone (no table reads).
    const char* sql = issuer_id ? "SELECT " E2EID_CRL_ENTRY_COLS
                                  " FROM certificates WHERE status = 'revoked' AND "
                                  "issuer_id IN (?1, '') AND not_after >= ?2 AND serial > ?3 "
                                  "ORDER BY serial LIMIT ?4"
                                : "SELECT " E2EID_CRL_ENTRY_COLS
                                  " FROM certificates WHERE status = 'revoked' AND "
                                  "not_after >= ?2 AND serial > ?3 ORDER BY serial LIMIT ?4";
    E2EID_TRY(st, c_.Prepare(sql, "ListCrlEntries"));
    if (issuer_id) st.BindText(1, *issuer_id);
    st.BindInt(2, unexpired_at ? ToUnix(*unexpired_at) : kMinInt64);
    st.BindText(3, page.after);
    st.BindInt(4, page.limit + 1);
    return QueryPage<RevokedEntry>(st, page.limit, &ReadRevokedEntry,
                                   [](const RevokedEntry& e) { return e.serial; });
  }

  // ---- revocation events and CRL numbers ----

  Result<int64_t> InsertRevocationEvent(const RevocationEvent& e) override {
    E2EID_CHECK_OK(Writable("InsertRevocationEvent"));
    E2EID_TRY(st, c_.Prepare("INSERT INTO revocation_events (scope_kind, scope_value, reason, "
                             "comment, actor, at, affected) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                             "RETURNING id",
                             "InsertRevocationEvent"));
    st.BindText(1, ToString(e.scope_kind));
    st.BindText(2, e.scope_value);
    st.BindInt(3, e.reason);
    st.BindText(4, e.comment);
    st.BindText(5, e.actor);
    st.BindTime(6, e.at);
    st.BindInt(7, e.affected);
    return RunReturningId(st);
  }

  Result<Page<RevocationEvent>> ListRevocationEvents(const PageRequest& page) override {
    E2EID_CHECK_OK(CheckLimit(page));
    E2EID_TRY(after, ParseIdCursor(page.after));
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_REVOCATION_EVENT_COLS " FROM revocation_events "
                             "WHERE id > ?1 ORDER BY id LIMIT ?2",
                             "ListRevocationEvents"));
    st.BindInt(1, after);
    st.BindInt(2, page.limit + 1);
    return QueryPage<RevocationEvent>(
        st, page.limit, &ReadRevocationEvent,
        [](const RevocationEvent& e) { return std::to_string(e.id); });
  }

  Result<int64_t> NextCrlNumber(std::string_view issuer_id, TimePoint now) override {
    E2EID_CHECK_OK(Writable("NextCrlNumber"));
    E2EID_TRY(st, c_.Prepare("INSERT INTO crl_state (issuer_id, next_number, last_issued_at) "
                             "VALUES (?1, 2, ?2) ON CONFLICT (issuer_id) DO UPDATE SET "
                             "next_number = crl_state.next_number + 1, "
                             "last_issued_at = excluded.last_issued_at "
                             "RETURNING next_number - 1",
                             "NextCrlNumber " + Quoted(issuer_id)));
    st.BindText(1, issuer_id);
    st.BindTime(2, now);
    return RunReturningId(st);
  }

  Result<CrlState> GetCrlState(std::string_view issuer_id) override {
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_CRL_STATE_COLS " FROM crl_state WHERE issuer_id = ?1",
                             "GetCrlState"));
    st.BindText(1, issuer_id);
    return QueryOne<CrlState>(st, &ReadCrlState,
                              "no CRL was numbered yet for issuer " + Quoted(issuer_id));
  }

  // ---- users and devices ----

  Status InsertUser(const User& u) override {
    E2EID_CHECK_OK(Writable("InsertUser"));
    E2EID_TRY(st,
              c_.Prepare("INSERT INTO users (" E2EID_USER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                         "InsertUser " + Quoted(u.id)));
    st.BindText(1, u.id);
    st.BindText(2, u.handle);
    st.BindText(3, u.display_name);
    st.BindText(4, ToString(u.status));
    st.BindTime(5, u.first_seen);
    st.BindTime(6, u.last_seen);
    return st.Run();
  }

  Result<User> GetUser(std::string_view id) override {
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_USER_COLS " FROM users WHERE id = ?1", "GetUser"));
    st.BindText(1, id);
    return QueryOne<User>(st, &ReadUser, "user " + Quoted(id) + " does not exist");
  }

  Status UpdateUser(const User& u) override {
    E2EID_CHECK_OK(Writable("UpdateUser"));
    E2EID_TRY(st, c_.Prepare("UPDATE users SET handle = ?2, display_name = ?3, status = ?4, "
                             "last_seen = ?5 WHERE id = ?1",
                             "UpdateUser " + Quoted(u.id)));
    st.BindText(1, u.id);
    st.BindText(2, u.handle);
    st.BindText(3, u.display_name);
    st.BindText(4, ToString(u.status));
    st.BindTime(5, u.last_seen);
    return RunExpectingRow(st, "user " + Quoted(u.id) + " does not exist");
  }

  Result<Page<User>> ListUsers(const PageRequest& page) override {
    E2EID_CHECK_OK(CheckLimit(page));
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_USER_COLS " FROM users WHERE id > ?1 ORDER BY id "
                             "LIMIT ?2",
                             "ListUsers"));
    st.BindText(1, page.after);
    st.BindInt(2, page.limit + 1);
    return QueryPage<User>(st, page.limit, &ReadUser, [](const User& u) { return u.id; });
  }

  Status InsertDevice(const Device& d) override {
    E2EID_CHECK_OK(Writable("InsertDevice"));
    E2EID_TRY(st, c_.Prepare("INSERT INTO devices (" E2EID_DEVICE_COLS
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                             "InsertDevice " + Quoted(d.id)));
    st.BindText(1, d.id);
    st.BindText(2, d.user_id);
    st.BindText(3, d.display_name);
    st.BindText(4, d.handle);
    st.BindText(5, d.key_thumbprint);
    st.BindText(6, ToString(d.status));
    st.BindTime(7, d.first_seen);
    st.BindTime(8, d.last_seen);
    st.BindOptText(9, d.blocked_reason);
    return st.Run();
  }

  Result<Device> GetDevice(std::string_view id) override {
    E2EID_TRY(st,
              c_.Prepare("SELECT " E2EID_DEVICE_COLS " FROM devices WHERE id = ?1", "GetDevice"));
    st.BindText(1, id);
    return QueryOne<Device>(st, &ReadDevice, "device " + Quoted(id) + " does not exist");
  }

  Status UpdateDevice(const Device& d) override {
    E2EID_CHECK_OK(Writable("UpdateDevice"));
    E2EID_TRY(st, c_.Prepare("UPDATE devices SET display_name = ?2, handle = ?3, "
                             "key_thumbprint = ?4, status = ?5, last_seen = ?6, "
                             "blocked_reason = ?7 WHERE id = ?1",
                             "UpdateDevice " + Quoted(d.id)));
    st.BindText(1, d.id);
    st.BindText(2, d.display_name);
    st.BindText(3, d.handle);
    st.BindText(4, d.key_thumbprint);
    st.BindText(5, ToString(d.status));
    st.BindTime(6, d.last_seen);
    st.BindOptText(7, d.blocked_reason);
    return RunExpectingRow(st, "device " + Quoted(d.id) + " does not exist");
  }

  Result<std::vector<Device>> ListDevicesForUser(std::string_view user_id) override {
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_DEVICE_COLS " FROM devices WHERE user_id = ?1 "
                             "ORDER BY id",
                             "ListDevicesForUser"));
    st.BindText(1, user_id);
    return QueryAll<Device>(st, &ReadDevice);
  }

  Result<Page<Device>> ListDevices(std::optional<DeviceStatus> status,
                                   const PageRequest& page) override {
    E2EID_CHECK_OK(CheckLimit(page));
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_DEVICE_COLS " FROM devices WHERE id > ?1 AND "
                             "(?2 IS NULL OR status = ?2) ORDER BY id LIMIT ?3",
                             "ListDevices"));
    st.BindText(1, page.after);
    if (status) {
      st.BindText(2, ToString(*status));
    } else {
      st.BindNull(2);
    }
    st.BindInt(3, page.limit + 1);
    return QueryPage<Device>(st, page.limit, &ReadDevice, [](const Device& d) { return d.id; });
  }

  // ---- nonces ----

  Status InsertNonce(const Nonce& n) override {
    E2EID_CHECK_OK(Writable("InsertNonce"));
    E2EID_TRY(st,
              c_.Prepare("INSERT INTO nonces (value, expires_at) VALUES (?1, ?2)", "InsertNonce"));
    st.BindText(1, n.value);
    st.BindTime(2, n.expires_at);
    return st.Run();
  }

  Status ConsumeNonce(std::string_view value, TimePoint now) override {
    E2EID_CHECK_OK(Writable("ConsumeNonce"));
    E2EID_TRY(
        st, c_.Prepare("DELETE FROM nonces WHERE value = ?1 AND expires_at > ?2", "ConsumeNonce"));
    st.BindText(1, value);
    st.BindTime(2, now);
    E2EID_CHECK_OK(st.Run());
    if (st.Changes() != 1) {
      return Fail(Error::BadNonce("the nonce is unknown, was already used or has expired"));
    }
    return Ok();
  }

  Result<int64_t> PurgeExpiredNonces(TimePoint now) override {
    E2EID_CHECK_OK(Writable("PurgeExpiredNonces"));
    E2EID_TRY(st, c_.Prepare("DELETE FROM nonces WHERE expires_at <= ?1", "PurgeExpiredNonces"));
    st.BindTime(1, now);
    E2EID_CHECK_OK(st.Run());
    return st.Changes();
  }

  // ---- audit ----

  Result<int64_t> AppendAudit(const AuditEvent& e) override {
    E2EID_CHECK_OK(Writable("AppendAudit"));
    E2EID_TRY(st, c_.Prepare("INSERT INTO audit_events (at, actor, action, target, source, "
                             "outcome, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                             "AppendAudit"));
    st.BindTime(1, e.at);
    st.BindText(2, e.actor);
    st.BindText(3, e.action);
    st.BindText(4, e.target);
    st.BindText(5, e.source);
    st.BindText(6, e.outcome);
    st.BindText(7, e.details);
    return RunReturningId(st);
  }

  Result<Page<AuditEvent>> ListAuditEvents(const PageRequest& page) override {
    E2EID_CHECK_OK(CheckLimit(page));
    E2EID_TRY(after, ParseIdCursor(page.after));
    E2EID_TRY(st, c_.Prepare("SELECT " E2EID_AUDIT_COLS " FROM audit_events WHERE id > ?1 "
                             "ORDER BY id LIMIT ?2",
                             "ListAuditEvents"));
    st.BindInt(1, after);
    st.BindInt(2, page.limit + 1);
    return QueryPage<AuditEvent>(st, page.limit, &ReadAuditEvent,
                                 [](const AuditEvent& e) { return std::to_string(e.id); });
  }

  // ---- counters ----

  Result<int64_t> CountRows(Table table) override {
    const char* sql = nullptr;
    switch (table) {
      case Table::kAccounts:
        sql = "SELECT COUNT(*) FROM accounts";
        break;
      case Table::kOrders:
        sql = "SELECT COUNT(*) FROM orders";
        break;
      case Table::kAuthorizations:
        sql = "SELECT COUNT(*) FROM authorizations";
        break;
      case Table::kChallenges:
        sql = "SELECT COUNT(*) FROM challenges";
        break;
      case Table::kCertificates:
        sql = "SELECT COUNT(*) FROM certificates";
        break;
      case Table::kSerials:
        sql = "SELECT COUNT(*) FROM serials";
        break;
      case Table::kNonces:
        sql = "SELECT COUNT(*) FROM nonces";
        break;
      case Table::kDevices:
        sql = "SELECT COUNT(*) FROM devices";
        break;
      case Table::kUsers:
        sql = "SELECT COUNT(*) FROM users";
        break;
      case Table::kRevocationEvents:
        sql = "SELECT COUNT(*) FROM revocation_events";
        break;
      case Table::kCrlState:
        sql = "SELECT COUNT(*) FROM crl_state";
        break;
      case Table::kAuditEvents:
        sql = "SELECT COUNT(*) FROM audit_events";
        break;
    }
    if (sql == nullptr) return Fail(Error::InvalidArgument("CountRows: unknown table"));
    E2EID_TRY(st, c_.Prepare(sql, "CountRows"));
    E2EID_TRY(row, st.Step());
    if (!row) return Fail(Error::Internal("CountRows: COUNT(*) returned no row"));
    return st.Int(0);
  }

 private:
  static std::string CertCursor(const Certificate& c) {
    return TimeKeyCursorOf(c.issued_at, c.serial);
  }

  Status Writable(const char* op) const {
    if (read_only_) {
      return Fail(Error::Internal(std::string(op) + " called in a read-only transaction"));
    }
    return Ok();
  }

  // Runs an UPDATE keyed by id; kNotFound with `missing` when no row matched.
  static Status RunExpectingRow(Statement& st, std::string missing) {
    E2EID_CHECK_OK(st.Run());
    if (st.Changes() == 0) return Fail(Error::NotFound(std::move(missing)));
    return Ok();
  }

  // After a compare-and-set matched no row: kNotFound when the row is missing, else kConflict
  // naming the status it has.
  Status CasFailure(const char* status_sql, std::string_view what, std::string_view id,
                    std::string_view expected) {
    E2EID_TRY(st, c_.Prepare(status_sql, "reading status"));
    st.BindText(1, id);
    E2EID_TRY(row, st.Step());
    if (!row) {
      return Fail(Error::NotFound(std::string(what) + " " + Quoted(id) + " does not exist"));
    }
    return Fail(Error::Conflict(std::string(what) + " " + Quoted(id) + " is " + st.Text(0) +
                                ", not " + std::string(expected)));
  }

  Result<Page<Certificate>> ListCertificatesBy(const char* sql, const char* context,
                                               std::string_view key, const PageRequest& page) {
    E2EID_CHECK_OK(CheckLimit(page));
    E2EID_TRY(cursor, ParseTimeKeyCursor(page.after));
    E2EID_TRY(st, c_.Prepare(sql, context));
    st.BindText(1, key);
    st.BindInt(2, cursor.time);
    st.BindText(3, cursor.key);
    st.BindInt(4, page.limit + 1);
    return QueryPage<Certificate>(st, page.limit, &ReadCertificate, &CertCursor);
  }

  // The rows of InsertCertificate, `certificates` first (certificate_blobs references it).
  Status InsertCertificateRows(const Certificate& c) {
    {
      E2EID_TRY(st, c_.Prepare("INSERT INTO certificates (" E2EID_CERT_ROW_COLS
                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                               "?14)",
                               "InsertCertificate " + Quoted(c.serial)));
      st.BindText(1, c.serial);
      st.BindText(2, c.issuer_id);
      st.BindOptText(3, c.account_id);
      st.BindOptText(4, c.order_id);
      st.BindText(5, c.user_id);
      st.BindOptText(6, c.device_id);
      st.BindText(7, c.spki_sha256);
      st.BindTime(8, c.not_before);
      st.BindTime(9, c.not_after);
      st.BindTime(10, c.issued_at);
      st.BindText(11, ToString(c.status));
      st.BindOptTime(12, c.revoked_at);
      st.BindOptInt(
          13, c.revocation_reason ? std::optional<int64_t>(*c.revocation_reason) : std::nullopt);
      st.BindOptText(14, c.revocation_comment);
      E2EID_CHECK_OK(st.Run());
    }
    E2EID_TRY(st, c_.Prepare("INSERT INTO certificate_blobs (serial, der, chain_pem) VALUES "
                             "(?1, ?2, ?3)",
                             "InsertCertificate " + Quoted(c.serial) + " (DER and chain)"));
    st.BindText(1, c.serial);
    st.BindBlob(2, c.der);
    st.BindText(3, c.chain_pem);
    return st.Run();
  }

  // Runs a constant statement without parameters through the statement cache.
  Status RunConstant(const char* sql, const char* context) {
    E2EID_TRY(st, c_.Prepare(sql, context));
    return st.Run();
  }

  Connection& c_;
  const bool read_only_;
};

// Stores that have a transaction running on this thread, to refuse nesting (which would deadlock
// on the writer mutex or exhaust the reader pool).
thread_local std::vector<const void*> tls_active_stores;

class ActiveGuard {
 public:
  explicit ActiveGuard(const void* store) : store_(store) { tls_active_stores.push_back(store); }
  ~ActiveGuard() {
    auto it = std::find(tls_active_stores.begin(), tls_active_stores.end(), store_);
    if (it != tls_active_stores.end()) tls_active_stores.erase(it);
  }
  ActiveGuard(const ActiveGuard&) = delete;
  ActiveGuard& operator=(const ActiveGuard&) = delete;

  static bool IsActive(const void* store) {
    return std::find(tls_active_stores.begin(), tls_active_stores.end(), store) !=
           tls_active_stores.end();
  }

 private:
  const void* store_;
};

// Calls fn, turning an escaping exception into kInternal.
Status RunGuarded(const std::function<Status(Transaction&)>& fn, Transaction& tx) {
  try {
    return fn(tx);
  } catch (const std::exception& e) {
    return Fail(Error::Internal(std::string("transaction function threw: ") + e.what()));
  } catch (...) {
    return Fail(Error::Internal("transaction function threw a non-standard exception"));
  }
}

void RollbackQuietly(Connection& c) {
  if (sqlite3_get_autocommit(c.db()) != 0) return;  // nothing open (SQLite rolled back already)
  auto st = c.Exec("ROLLBACK", "rolling back transaction");
  if (!st) LogError("store: rollback failed", {{"error", st.error().ToString()}});
}

// Creates the database file with mode 0600 unless something exists at the path.
Status CreateDatabaseFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Ok();  // created concurrently: open it as it is
    return Fail(Error::Io("creating database file " + path + ": " + std::strerror(errno)));
  }
  const int rc = ::fchmod(fd, 0600);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Fail(Error::Io("setting mode of " + path + ": " + std::strerror(err)));
  return Ok();
}

#undef E2EID_ACCOUNT_COLS
#undef E2EID_ORDER_COLS
#undef E2EID_AUTHZ_COLS
#undef E2EID_CHALLENGE_COLS
#undef E2EID_CERT_ROW_COLS
#undef E2EID_CERT_SELECT
#undef E2EID_CRL_ENTRY_COLS
#undef E2EID_DEVICE_COLS
#undef E2EID_USER_COLS
#undef E2EID_REVOCATION_EVENT_COLS
#undef E2EID_AUDIT_COLS
#undef E2EID_CRL_STATE_COLS

}  // namespace

// ---- SqliteStore -------------------------------------------------------------------------------

struct SqliteStore::Impl {
  SqliteOptions options;
  bool memory = false;
  MemoryNonces nonces;
  bool writer_relaxed = false;  // the writer runs with synchronous = NORMAL; guarded by writer_mu

  std::mutex writer_mu;  // guards writer (and, for ":memory:", all access)
  std::unique_ptr<Connection> writer;

  std::mutex readers_mu;
  std::condition_variable readers_cv;
  std::vector<std::unique_ptr<Connection>> readers;  // owns them
  std::vector<Connection*> idle_readers;             // guarded by readers_mu

  Connection* AcquireReader() {
    std::unique_lock lock(readers_mu);
    readers_cv.wait(lock, [&] { return !idle_readers.empty(); });
    Connection* c = idle_readers.back();
    idle_readers.pop_back();
    return c;
  }
  void ReleaseReader(Connection* c) {
    {
      std::lock_guard lock(readers_mu);
      idle_readers.push_back(c);
    }
    readers_cv.notify_one();
  }
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteStore::~SqliteStore() = default;

int SqliteStore::LatestSchemaVersion() { return sqlite::LatestSchemaVersion(); }

const std::string& SqliteStore::path() const { return impl_->options.path; }

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const SqliteOptions& options) {
  if (options.path.empty()) return Fail(Error::InvalidArgument("store path is empty"));
  if (options.reader_pool_size < 1 || options.reader_pool_size > 64) {
    return Fail(Error::InvalidArgument("store reader_pool_size must be 1..64, got " +
                                       std::to_string(options.reader_pool_size)));
  }
  if (options.busy_timeout.count() < 0 || options.busy_timeout.count() > INT_MAX) {
    return Fail(Error::InvalidArgument("store busy_timeout is out of range"));
  }
  if (options.writer_cache_kib < 1024 || options.writer_cache_kib > 1048576) {
    return Fail(Error::InvalidArgument("store writer_cache_kib must be 1024..1048576, got " +
                                       std::to_string(options.writer_cache_kib)));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->memory = options.path == ":memory:";
  const int timeout_ms = static_cast<int>(options.busy_timeout.count());

  int flags = SQLITE_OPEN_READWRITE;
  if (impl->memory) {
    flags |= SQLITE_OPEN_CREATE;
  } else if (!PathExists(options.path)) {
    if (!options.create_if_missing) {
      return Fail(Error::NotFound("database file " + options.path + " does not exist"));
    }
    E2EID_CHECK_OK(CreateDatabaseFile(options.path));
  }

  E2EID_TRY(writer, Connection::Open(options.path, flags, timeout_ms));
  if (!impl->memory) {
    E2EID_TRY(mode, writer->QueryText("PRAGMA journal_mode = WAL", "enabling WAL"));
    if (mode != "wal") {
      return Fail(Error::Store("could not enable WAL on " + options.path + " (journal mode is '" +
                               mode + "')"));
    }
  }
  E2EID_CHECK_OK(writer->Exec(
      options.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
      "setting synchronous"));
  {
    // A negative cache_size is in KiB. A PRAGMA takes no bound parameters: the text is built from
    // the range-checked integer alone.
    const std::string pragma = "PRAGMA cache_size = -" + std::to_string(options.writer_cache_kib);
    E2EID_CHECK_OK(writer->Exec(pragma.c_str(), "setting the writer's page cache size"));
  }
  if (auto st = sqlite::Migrate(*writer); !st) {
    return Fail(std::move(st).error().Context("migrating " + options.path));
  }
  impl->writer = std::move(writer);

  if (!impl->memory) {
    for (int i = 0; i < options.reader_pool_size; ++i) {
      E2EID_TRY(reader, Connection::Open(options.path, SQLITE_OPEN_READWRITE, timeout_ms));
      E2EID_CHECK_OK(reader->Exec("PRAGMA query_only = ON", "making reader query-only"));
      impl->idle_readers.push_back(reader.get());
      impl->readers.push_back(std::move(reader));
    }
  }
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

Result<std::unique_ptr<SqliteStore>> OpenSqliteStore(const SqliteOptions& options) {
  return SqliteStore::Open(options);
}

Status SqliteStore::InTransaction(const std::function<Status(Transaction&)>& fn) {
  return RunWrite(fn, /*relaxed=*/false);
}

Status SqliteStore::InTransactionRelaxed(const std::function<Status(Transaction&)>& fn) {
  return RunWrite(fn, /*relaxed=*/true);
}

Status SqliteStore::RunWrite(const std::function<Status(Transaction&)>& fn, bool relaxed) {
  if (ActiveGuard::IsActive(impl_.get())) {
    return Fail(Error::Internal("InTransaction called inside a transaction of the same store"));
  }
  std::lock_guard lock(impl_->writer_mu);
  Connection& c = *impl_->writer;
  // synchronous is a property of the connection, read at each commit, and cannot change inside a
  // transaction: it is set before BEGIN to what this transaction needs. A durable transaction
  // that cannot switch back to FULL fails instead of committing without the flush.
  if (impl_->options.synchronous_full && !impl_->memory && impl_->writer_relaxed != relaxed) {
    E2EID_CHECK_OK(c.Run(relaxed ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
                         "switching synchronous"));
    impl_->writer_relaxed = relaxed;
  }
  E2EID_CHECK_OK(c.Run("BEGIN IMMEDIATE", "starting write transaction"));
  ActiveGuard guard(impl_.get());
  SqliteTransaction tx(c, /*read_only=*/false);
  Status st = RunGuarded(fn, tx);
  if (!st) {
    RollbackQuietly(c);
    return st;
  }
  if (sqlite3_get_autocommit(c.db()) != 0) {
    return Fail(
        Error::Store("SQLite rolled the transaction back after an error; nothing was "
                     "committed"));
  }
  if (auto commit = c.Run("COMMIT", "committing transaction"); !commit) {
    RollbackQuietly(c);
    return Fail(Error::Store(commit.error().detail()));
  }
  return Ok();
}

Status SqliteStore::IssueNonce(const Nonce& n) { return impl_->nonces.Issue(n); }

Status SqliteStore::UseNonce(std::string_view value, TimePoint now) {
  return impl_->nonces.Use(value, now);
}

Status SqliteStore::ReadOnly(const std::function<Status(Transaction&)>& fn) {
  if (ActiveGuard::IsActive(impl_.get())) {
    return Fail(Error::Internal("ReadOnly called inside a transaction of the same store"));
  }
  auto run = [&](Connection& c) -> Status {
    E2EID_CHECK_OK(c.Run("BEGIN", "starting read transaction"));
    ActiveGuard guard(impl_.get());
    SqliteTransaction tx(c, /*read_only=*/true);
    Status st = RunGuarded(fn, tx);
    if (!st) {
      RollbackQuietly(c);
      return st;
    }
    if (sqlite3_get_autocommit(c.db()) != 0) return Ok();
    if (auto end = c.Run("COMMIT", "ending read transaction"); !end) {
      RollbackQuietly(c);
      return Fail(Error::Store(end.error().detail()));
    }
    return Ok();
  };
  if (impl_->memory) {
    std::lock_guard lock(impl_->writer_mu);
    return run(*impl_->writer);
  }
  Connection* reader = impl_->AcquireReader();
  struct Release {
    Impl* impl;
    Connection* c;
    ~Release() { impl->ReleaseReader(c); }
  } release{impl_.get(), reader};
  return run(*reader);
}

Status SqliteStore::IntegrityCheck() {
  if (ActiveGuard::IsActive(impl_.get())) {
    return Fail(Error::Internal("IntegrityCheck called inside a transaction of the same store"));
  }
  std::lock_guard lock(impl_->writer_mu);
  Connection& c = *impl_->writer;
  std::vector<std::string> problems;
  {
    E2EID_TRY(st, c.Prepare("PRAGMA integrity_check", "integrity_check"));
    for (;;) {
      E2EID_TRY(row, st.Step());
      if (!row) break;
      std::string line = st.Text(0);
      if (line != "ok") problems.push_back(std::move(line));
    }
  }
  {
    E2EID_TRY(st, c.Prepare("PRAGMA foreign_key_check", "foreign_key_check"));
    for (;;) {
      E2EID_TRY(row, st.Step());
      if (!row) break;
      problems.push_back("foreign key violation in table " + st.Text(0) + " row " +
                         std::to_string(st.Int(1)) + " referencing " + st.Text(2));
    }
  }
  if (problems.empty()) return Ok();
  std::string detail = "integrity check of " + impl_->options.path + " failed:";
  for (const auto& p : problems) detail += " " + p + ";";
  return Fail(Error::Store(std::move(detail)));
}

Result<int> SqliteStore::SchemaVersion() {
  if (ActiveGuard::IsActive(impl_.get())) {
    return Fail(Error::Internal("SchemaVersion called inside a transaction of the same store"));
  }
  std::lock_guard lock(impl_->writer_mu);
  E2EID_TRY(text, impl_->writer->QueryText("PRAGMA user_version", "reading schema version"));
  auto v = ParseInt64(text);
  if (!v) return Fail(Error::Store("schema version '" + text + "' is not a number"));
  return static_cast<int>(*v);
}

}  // namespace e2eid::store
