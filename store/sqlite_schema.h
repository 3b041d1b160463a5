// Internal to store/: the versioned schema of the SQLite store.
#ifndef E2EID_STORE_SQLITE_SCHEMA_H_
#define E2EID_STORE_SQLITE_SCHEMA_H_

#include "core/error.h"
#include "store/sqlite_db.h"

namespace e2eid::store::sqlite {

// The version the last migration brings the schema to (PRAGMA user_version).
int LatestSchemaVersion();

// Brings the database to LatestSchemaVersion() in one BEGIN IMMEDIATE transaction: reads
// user_version, applies each later migration in order and sets user_version. Idempotent. Refuses
// (kStore, "newer than this build") a database whose version is above LatestSchemaVersion(). On any
// failure nothing is changed.
Status Migrate(Connection& conn);

// Same as Migrate, but stops at `version` (1..LatestSchemaVersion(); kInvalidArgument otherwise):
// for tests that create a database with an older schema and check its upgrade. A database already
// at or above `version` is left as it is (a newer-than-this-build one is still refused).
Status MigrateTo(Connection& conn, int version);

}  // namespace e2eid::store::sqlite

#endif  // E2EID_STORE_SQLITE_SCHEMA_H_
