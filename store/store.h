// Store: the persistence interface of e2eid. A Transaction is the unit of work; every typed
// operation runs inside one, so the ACME engine can read, check and write atomically (finalize:
// read the order, check `ready`, set `processing`).
//
// The interface names no database types: the embedded implementation is SQLite
// (store/sqlite_store.h); a PostgreSQL implementation of the same interface may follow.
//
// Error contract of every Transaction operation:
//   kNotFound       the addressed row does not exist (Get*, Update*, compare-and-set)
//   kAlreadyExists  a primary key or unique column is already taken (Insert*, ReserveSerial,
//                   UpdateAccount changing key_thumbprint to one in use)
//   kConflict       compare-and-set found another state; a referenced row (account, order, user,
//                   reserved serial) does not exist
//   kInvalidArgument a value the store refuses (non-canonical serial, bad revocation reason, bad
//                   paging cursor or limit)
//   kBadNonce       ConsumeNonce: unknown, already used or expired
//   kInternal       a write operation was called in a ReadOnly transaction
//   kUnavailable    the database is locked by another process beyond the busy timeout
//   kStore          the database failed (I/O, corruption, full disk); the detail is for logs
// A failed operation leaves the transaction usable (each statement is atomic); whether the whole
// transaction commits is decided by the status the function returns.
#ifndef E2EID_STORE_STORE_H_
#define E2EID_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "store/records.h"

namespace e2eid::store {

inline constexpr int kMaxPageLimit = 1000;

// Keyset paging. `after` is an opaque cursor: "" for the first page, then the `next` of the page
// before. Results come in a stable order documented per operation.
struct PageRequest {
  std::string after;
  int limit = 100;  // 1..kMaxPageLimit
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next;  // cursor for the following page; "" when this page is the last
};

struct RevocationScope {
  RevocationScopeKind kind = RevocationScopeKind::kCertificate;
  // Serial (lowercase hex), device id, user id, SPKI SHA-256 hex, or an RFC 3339 time for kBefore.
  std::string value;
};

// Tables, for CountRows (used by tests and metrics).
enum class Table {
  kAccounts,
  kOrders,
  kAuthorizations,
  kChallenges,
  kCertificates,
  kSerials,
  kNonces,
  kDevices,
  kUsers,
  kRevocationEvents,
  kCrlState,
  kAuditEvents,
};

// All typed operations. A Transaction exists only while the function given to
// Store::InTransaction / Store::ReadOnly runs: do not keep a reference to it, do not use it from
// another thread. Reads see the transaction's own writes.
class Transaction {
 public:
  virtual ~Transaction() = default;

  // ---- accounts ----
  virtual Status InsertAccount(const Account& a) = 0;
  virtual Result<Account> GetAccount(std::string_view id) = 0;
  virtual Result<Account> GetAccountByThumbprint(std::string_view key_thumbprint) = 0;
  // Replaces every member but id and created_at (key rollover changes jwk and key_thumbprint).
  virtual Status UpdateAccount(const Account& a) = 0;

  // ---- orders ----
  virtual Status InsertOrder(const Order& o) = 0;
  virtual Result<Order> GetOrder(std::string_view id) = 0;
  // Replaces every member but id, account_id and created_at.
  virtual Status UpdateOrder(const Order& o) = 0;
  // Compare-and-set: sets status `to` and updated_at `now` only when the current status is `from`.
  // kConflict (naming the current status) otherwise; kNotFound when the order does not exist.
  virtual Status UpdateOrderStatus(std::string_view id, OrderStatus from, OrderStatus to,
                                   TimePoint now) = 0;
  // Orders of an account, by (created_at, id).
  virtual Result<Page<Order>> ListOrdersForAccount(std::string_view account_id,
                                                   const PageRequest& page) = 0;
  // Orders whose `replaces` is `cert_id` (RFC 9773), oldest first.
  virtual Result<std::vector<Order>> ListOrdersReplacing(std::string_view cert_id) = 0;

  // ---- authorizations ----
  virtual Status InsertAuthorization(const Authorization& a) = 0;
  virtual Result<Authorization> GetAuthorization(std::string_view id) = 0;
  // Replaces status, expires and wildcard.
  virtual Status UpdateAuthorization(const Authorization& a) = 0;
  virtual Status UpdateAuthorizationStatus(std::string_view id, AuthorizationStatus from,
                                           AuthorizationStatus to) = 0;
  // By (identifier_type, identifier_value, id).
  virtual Result<std::vector<Authorization>> ListAuthorizationsForOrder(
      std::string_view order_id) = 0;

  // ---- challenges ----
  virtual Status InsertChallenge(const Challenge& c) = 0;
  virtual Result<Challenge> GetChallenge(std::string_view id) = 0;
  // Replaces status, target, validated_at, error and validation_claims.
  virtual Status UpdateChallenge(const Challenge& c) = 0;
  virtual Status UpdateChallengeStatus(std::string_view id, ChallengeStatus from,
                                       ChallengeStatus to) = 0;
  // By (type, id).
  virtual Result<std::vector<Challenge>> ListChallengesForAuthorization(
      std::string_view authz_id) = 0;

  // ---- serials and certificates ----
  // Records a serial before the CA signs with it. kAlreadyExists when it was ever reserved, so a
  // serial is never issued twice; kInvalidArgument unless IsCanonicalSerialHex.
  virtual Status ReserveSerial(std::string_view serial_hex, TimePoint now) = 0;
  // kConflict when the serial was not reserved or a referenced account/order does not exist.
  virtual Status InsertCertificate(const Certificate& c) = 0;
  virtual Result<Certificate> GetCertificate(std::string_view serial_hex) = 0;
  // Listings by (issued_at, serial).
  virtual Result<Page<Certificate>> ListCertificatesByUser(std::string_view user_id,
                                                           const PageRequest& page) = 0;
  virtual Result<Page<Certificate>> ListCertificatesByDevice(std::string_view device_id,
                                                             const PageRequest& page) = 0;
  virtual Result<Page<Certificate>> ListCertificatesBySpki(std::string_view spki_sha256,
                                                           const PageRequest& page) = 0;
  virtual Result<Page<Certificate>> ListCertificatesIssuedBefore(TimePoint before,
                                                                 const PageRequest& page) = 0;
  // Revokes, in one statement, every `good` certificate in scope, setting revoked_at = at, the
  // reason and the comment. Rewrites only the small per-certificate rows, never the DER or chain:
  // 100,000 certificates take about 0.6 s of CPU including the commit (bench/README.md). Returns
  // how many changed: already-revoked certificates keep their first revocation and are not counted,
  // so repeating a revocation returns 0. An unknown serial also gives 0 (use GetCertificate to tell
  // the cases apart). kInvalidArgument for an invalid reason or a kBefore value that is not RFC
  // 3339.
  virtual Result<int64_t> RevokeCertificates(const RevocationScope& scope, int reason,
                                             std::string_view comment, TimePoint at) = 0;
  // Revoked certificates, whole records (DER and chain included), by serial. `issuer_id` limits to
  // one issuer; `unexpired_at` leaves out certificates whose not_after is before it. To build a
  // CRL, use ListCrlEntries: it reads only what an entry needs.
  virtual Result<Page<Certificate>> ListRevokedCertificates(
      std::optional<std::string_view> issuer_id, std::optional<TimePoint> unexpired_at,
      const PageRequest& page) = 0;
  // The CRL view of revoked certificates, by serial (the cursor is the last serial). `issuer_id`
  // limits to that issuer's certificates and those with an empty issuer_id (recorded when there
  // was only one issuer); `unexpired_at` leaves out certificates whose not_after is before it.
  // Served from an index that holds exactly these columns: a million entries page through in
  // about a second of CPU (bench/README.md, "Revocation").
  virtual Result<Page<RevokedEntry>> ListCrlEntries(std::optional<std::string_view> issuer_id,
                                                    std::optional<TimePoint> unexpired_at,
                                                    const PageRequest& page) = 0;

  // ---- revocation events and CRL numbers ----
  // Returns the id assigned (the `id` member of `e` is ignored).
  virtual Result<int64_t> InsertRevocationEvent(const RevocationEvent& e) = 0;
  // By id.
  virtual Result<Page<RevocationEvent>> ListRevocationEvents(const PageRequest& page) = 0;
  // Allocates the CRL number for the issuer's next CRL: 1 for the first, then one more each
  // call; records `now` as last_issued_at. A rolled-back transaction gives the number back.
  virtual Result<int64_t> NextCrlNumber(std::string_view issuer_id, TimePoint now) = 0;
  virtual Result<CrlState> GetCrlState(std::string_view issuer_id) = 0;

  // ---- users and devices ----
  virtual Status InsertUser(const User& u) = 0;
  virtual Result<User> GetUser(std::string_view id) = 0;
  // Replaces every member but id and first_seen.
  virtual Status UpdateUser(const User& u) = 0;
  // By id.
  virtual Result<Page<User>> ListUsers(const PageRequest& page) = 0;
  // kConflict when the user does not exist.
  virtual Status InsertDevice(const Device& d) = 0;
  virtual Result<Device> GetDevice(std::string_view id) = 0;
  // Replaces every member but id, user_id and first_seen.
  virtual Status UpdateDevice(const Device& d) = 0;
  // By id.
  virtual Result<std::vector<Device>> ListDevicesForUser(std::string_view user_id) = 0;
  // Every device, by id; only those with `status` when it is given. The cursor is the last id.
  virtual Result<Page<Device>> ListDevices(std::optional<DeviceStatus> status,
                                           const PageRequest& page) = 0;

  // ---- nonces ----
  virtual Status InsertNonce(const Nonce& n) = 0;
  // Single use: deletes the nonce and succeeds only when exactly one unexpired row (expires_at >
  // now) was deleted. kBadNonce when it is unknown, already used or expired.
  virtual Status ConsumeNonce(std::string_view value, TimePoint now) = 0;
  // Deletes nonces with expires_at <= now; returns how many.
  virtual Result<int64_t> PurgeExpiredNonces(TimePoint now) = 0;

  // ---- audit (append-only) ----
  // Returns the id assigned (the `id` member of `e` is ignored).
  virtual Result<int64_t> AppendAudit(const AuditEvent& e) = 0;
  // By id.
  virtual Result<Page<AuditEvent>> ListAuditEvents(const PageRequest& page) = 0;

  // ---- counters ----
  virtual Result<int64_t> CountRows(Table table) = 0;
};

// Thread-safe: any number of threads may call InTransaction and ReadOnly concurrently. The Store
// must outlive every call. A Store is not copyable.
class Store {
 public:
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  virtual ~Store() = default;

  // Runs `fn` in one read-write transaction: commits when fn returns Ok and returns Ok; rolls back
  // and returns fn's error otherwise. Write transactions are serialised (one at a time across all
  // threads and processes using the database); fn runs exactly once and is never retried, so it
  // may have side effects outside the store. If committing fails, the transaction is rolled back
  // and kStore is returned. kUnavailable when another process holds the write lock beyond the busy
  // timeout (fn did not run). An exception escaping fn rolls back and becomes kInternal.
  // fn must not call InTransaction or ReadOnly on the same store (kInternal: would deadlock).
  virtual Status InTransaction(const std::function<Status(Transaction&)>& fn) = 0;

  // InTransaction whose commit need not survive a power loss or an OS crash on its own: it
  // becomes durable with the next InTransaction commit (of any thread) and until then a crash may
  // roll it back — only it and later relaxed commits, never in part, never reordered. Saves one
  // disk flush. For state a client recreates by retrying: a new order, a challenge or order moved
  // to processing, a validation outcome, a serial reserved for a certificate that is stored with
  // a durable commit before it leaves the server. The default is InTransaction.
  virtual Status InTransactionRelaxed(const std::function<Status(Transaction&)>& fn) {
    return InTransaction(fn);
  }

  // Runs `fn` in a read-only transaction over one consistent snapshot. Read-only transactions run
  // concurrently with each other and with a writer, and never see uncommitted writes. Write
  // operations inside fn fail with kInternal. Returns fn's status.
  virtual Status ReadOnly(const std::function<Status(Transaction&)>& fn) = 0;

  // ---- ACME replay nonces (RFC 8555 §6.5), each call atomic on its own ----
  // Outside any transaction (do not call them from inside fn of InTransaction / ReadOnly). Nonces
  // need not survive a restart: a client whose nonce is lost gets badNonce with a fresh
  // Replay-Nonce and retries. So a back end keeps them where they are cheapest while every
  // instance sharing the store still sees every nonce. The defaults run Transaction::InsertNonce /
  // ConsumeNonce in a write transaction; SqliteStore keeps them in the memory of the process
  // (one `e2eid serve` per SQLite file), which spares two durable commits per ACME request.
  // IssueNonce: kAlreadyExists when the value is taken. UseNonce: Ok exactly once per issued,
  // unexpired value (and deletes it), kBadNonce otherwise. Thread-safe.
  virtual Status IssueNonce(const Nonce& n) {
    return InTransaction([&](Transaction& tx) { return tx.InsertNonce(n); });
  }
  virtual Status UseNonce(std::string_view value, TimePoint now) {
    return InTransaction([&](Transaction& tx) { return tx.ConsumeNonce(value, now); });
  }
};

}  // namespace e2eid::store

#endif  // E2EID_STORE_STORE_H_
