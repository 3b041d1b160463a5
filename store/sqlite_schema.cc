#include "store/sqlite_schema.h"

#include <algorithm>
#include <charconv>
#include <string>

namespace e2eid::store::sqlite {
namespace {

// Each migration's SQL ends by setting user_version to its version, so the version moves with the
// schema inside the same transaction. Append new migrations; never edit a released one. Keep the
// SQL portable where cheap (the PostgreSQL store mirrors this schema).
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE accounts (
  id TEXT PRIMARY KEY NOT NULL,
  key_thumbprint TEXT NOT NULL UNIQUE,
  jwk TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
  contacts TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  eab_key_id TEXT
);

CREATE TABLE orders (
  id TEXT PRIMARY KEY NOT NULL,
  account_id TEXT NOT NULL REFERENCES accounts (id),
  status TEXT NOT NULL
    CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
  identifiers TEXT NOT NULL,
  not_before INTEGER,
  not_after INTEGER,
  expires INTEGER NOT NULL,
  error TEXT,
  certificate_serial TEXT,
  replaces TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  user_id TEXT,
  device_id TEXT,
  display_name TEXT,
  handle TEXT,
  domain TEXT
);
CREATE INDEX orders_by_account ON orders (account_id, created_at, id);
CREATE INDEX orders_by_status_expires ON orders (status, expires);
CREATE INDEX orders_by_replaces ON orders (replaces) WHERE replaces IS NOT NULL;

CREATE TABLE authorizations (
  id TEXT PRIMARY KEY NOT NULL,
  order_id TEXT NOT NULL REFERENCES orders (id),
  account_id TEXT NOT NULL REFERENCES accounts (id),
  identifier_type TEXT NOT NULL,
  identifier_value TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated',
                                         'expired', 'revoked')),
  expires INTEGER NOT NULL,
  wildcard INTEGER NOT NULL CHECK (wildcard IN (0, 1))
);
CREATE INDEX authorizations_by_order ON authorizations (order_id);
CREATE INDEX authorizations_by_account ON authorizations (account_id);

CREATE TABLE challenges (
  id TEXT PRIMARY KEY NOT NULL,
  authz_id TEXT NOT NULL REFERENCES authorizations (id),
  type TEXT NOT NULL,
  token TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
  target TEXT,
  validated_at INTEGER,
  error TEXT,
  validation_claims TEXT
);
CREATE INDEX challenges_by_authz ON challenges (authz_id);

CREATE TABLE serials (
  serial TEXT PRIMARY KEY NOT NULL,
  reserved_at INTEGER NOT NULL
);

CREATE TABLE certificates (
  serial TEXT PRIMARY KEY NOT NULL REFERENCES serials (serial),
  issuer_id TEXT NOT NULL,
  account_id TEXT REFERENCES accounts (id),
  order_id TEXT REFERENCES orders (id),
  user_id TEXT NOT NULL,
  device_id TEXT,
  spki_sha256 TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  der BLOB NOT NULL,
  chain_pem TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('good', 'revoked')),
  revoked_at INTEGER,
  revocation_reason INTEGER,
  revocation_comment TEXT,
  CHECK (status = 'revoked' OR (revoked_at IS NULL AND revocation_reason IS NULL)),
  CHECK (status = 'good' OR (revoked_at IS NOT NULL AND revocation_reason IS NOT NULL))
);
CREATE INDEX certificates_by_user ON certificates (user_id, issued_at, serial);
CREATE INDEX certificates_by_device ON certificates (device_id, issued_at, serial);
CREATE INDEX certificates_by_spki ON certificates (spki_sha256, issued_at, serial);
CREATE INDEX certificates_by_issued_at ON certificates (issued_at, serial);
CREATE INDEX certificates_by_not_after ON certificates (not_after);
CREATE INDEX certificates_revoked ON certificates (serial) WHERE status = 'revoked';
CREATE INDEX certificates_revoked_by_issuer ON certificates (issuer_id, serial)
  WHERE status = 'revoked';
CREATE INDEX certificates_by_account ON certificates (account_id);
CREATE INDEX certificates_by_order ON certificates (order_id);

CREATE TABLE nonces (
  value TEXT PRIMARY KEY NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

CREATE TABLE users (
  id TEXT PRIMARY KEY NOT NULL,
  handle TEXT NOT NULL,
  display_name TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
);
CREATE INDEX users_by_handle ON users (handle);

CREATE TABLE devices (
  id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL REFERENCES users (id),
  display_name TEXT NOT NULL,
  handle TEXT NOT NULL,
  key_thumbprint TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'blocked', 'removed')),
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  blocked_reason TEXT
);
CREATE INDEX devices_by_user ON devices (user_id, id);
CREATE INDEX devices_by_status ON devices (status);

CREATE TABLE revocation_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  scope_kind TEXT NOT NULL
    CHECK (scope_kind IN ('certificate', 'device', 'user', 'key', 'before')),
  scope_value TEXT NOT NULL,
  reason INTEGER NOT NULL,
  comment TEXT NOT NULL,
  actor TEXT NOT NULL,
  at INTEGER NOT NULL,
  affected INTEGER NOT NULL
);

CREATE TABLE crl_state (
  issuer_id TEXT PRIMARY KEY NOT NULL,
  next_number INTEGER NOT NULL CHECK (next_number >= 1),
  last_issued_at INTEGER
);

CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  source TEXT NOT NULL,
  outcome TEXT NOT NULL,
  details TEXT NOT NULL
);
CREATE INDEX audit_events_by_at ON audit_events (at);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
  SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;

PRAGMA user_version = 1;
)sql"},
    // 2: revocation at scale. The DER and the chain (~3 KB a row) move to certificate_blobs, so
    // revoking rewrites ~200-byte rows; the two partial indexes on revoked rows become one covering
    // index that answers the CRL listing without reading the table. The table is rebuilt (rename,
    // create, copy, drop) because SQLite cannot drop the columns and keep rows compact otherwise.
    {2, R"sql(
ALTER TABLE certificates RENAME TO certificates_v1;

CREATE TABLE certificates (
  serial TEXT PRIMARY KEY NOT NULL REFERENCES serials (serial),
  issuer_id TEXT NOT NULL,
  account_id TEXT REFERENCES accounts (id),
  order_id TEXT REFERENCES orders (id),
  user_id TEXT NOT NULL,
  device_id TEXT,
  spki_sha256 TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('good', 'revoked')),
  revoked_at INTEGER,
  revocation_reason INTEGER,
  revocation_comment TEXT,
  CHECK (status = 'revoked' OR (revoked_at IS NULL AND revocation_reason IS NULL)),
  CHECK (status = 'good' OR (revoked_at IS NOT NULL AND revocation_reason IS NOT NULL))
);
INSERT INTO certificates (serial, issuer_id, account_id, order_id, user_id, device_id,
                          spki_sha256, not_before, not_after, issued_at, status, revoked_at,
                          revocation_reason, revocation_comment)
  SELECT serial, issuer_id, account_id, order_id, user_id, device_id, spki_sha256, not_before,
         not_after, issued_at, status, revoked_at, revocation_reason, revocation_comment
  FROM certificates_v1 ORDER BY rowid;

-- Written once at issuance, read when a certificate is served or inspected; never updated.
CREATE TABLE certificate_blobs (
  serial TEXT PRIMARY KEY NOT NULL REFERENCES certificates (serial),
  der BLOB NOT NULL,
  chain_pem TEXT NOT NULL
);
INSERT INTO certificate_blobs (serial, der, chain_pem)
  SELECT serial, der, chain_pem FROM certificates_v1 ORDER BY rowid;

DROP TABLE certificates_v1;

CREATE INDEX certificates_by_user ON certificates (user_id, issued_at, serial);
CREATE INDEX certificates_by_device ON certificates (device_id, issued_at, serial);
CREATE INDEX certificates_by_spki ON certificates (spki_sha256, issued_at, serial);
CREATE INDEX certificates_by_issued_at ON certificates (issued_at, serial);
CREATE INDEX certificates_by_not_after ON certificates (not_after);
CREATE INDEX certificates_by_account ON certificates (account_id);
CREATE INDEX certificates_by_order ON certificates (order_id);
-- Covers the CRL listing (ListCrlEntries): revoked rows in serial order with every column a CRL
-- entry needs (status too: without it SQLite reads the table row to test the WHERE). Replaces
-- certificates_revoked and certificates_revoked_by_issuer of version 1.
CREATE INDEX certificates_crl ON certificates
  (serial, not_after, revoked_at, revocation_reason, issuer_id, status) WHERE status = 'revoked';

PRAGMA user_version = 2;
)sql"},
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

consteval bool MigrationsAreContiguous() {
  int expected = 1;
  for (const auto& m : kMigrations) {
    if (m.version != expected++) return false;
  }
  return true;
}
static_assert(MigrationsAreContiguous(), "migration versions must be 1, 2, 3, ...");

Result<int> ReadUserVersion(Connection& conn) {
  E2EID_TRY(text, conn.QueryText("PRAGMA user_version", "reading schema version"));
  int v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return Fail(Error::Store("schema version '" + text + "' is not a number"));
  }
  return v;
}

Status ApplyMigrations(Connection& conn, int target) {
  E2EID_TRY(current, ReadUserVersion(conn));
  if (current > kLatestVersion) {
    return Fail(Error::Store("database schema version " + std::to_string(current) +
                             " is newer than this build of e2eid supports (" +
                             std::to_string(kLatestVersion) +
                             "); refusing to open it: upgrade e2eid"));
  }
  if (current < 0) {
    return Fail(Error::Store("database schema version " + std::to_string(current) + " is invalid"));
  }
  for (const auto& m : kMigrations) {
    if (m.version <= current || m.version > target) continue;
    E2EID_CHECK_OK(conn.Exec(m.sql, "applying schema migration " + std::to_string(m.version)));
  }
  const int expected = std::max(current, target);
  E2EID_TRY(after, ReadUserVersion(conn));
  if (after != expected) {
    return Fail(Error::Internal("schema version is " + std::to_string(after) +
                                " after migrating, expected " + std::to_string(expected)));
  }
  return Ok();
}

}  // namespace

int LatestSchemaVersion() { return kLatestVersion; }

Status Migrate(Connection& conn) { return MigrateTo(conn, kLatestVersion); }

Status MigrateTo(Connection& conn, int version) {
  if (version < 1 || version > kLatestVersion) {
    return Fail(Error::InvalidArgument("no schema version " + std::to_string(version) +
                                       " (this build knows 1 to " + std::to_string(kLatestVersion) +
                                       ")"));
  }
  E2EID_CHECK_OK(conn.Exec("BEGIN IMMEDIATE", "starting schema migration"));
  auto st = ApplyMigrations(conn, version);
  if (!st) {
    (void)conn.Exec("ROLLBACK", "rolling back schema migration");
    return st;
  }
  auto commit = conn.Exec("COMMIT", "committing schema migration");
  if (!commit) {
    (void)conn.Exec("ROLLBACK", "rolling back schema migration");
    return commit;
  }
  return Ok();
}

}  // namespace e2eid::store::sqlite
