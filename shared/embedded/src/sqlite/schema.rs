//! The SQLite schema and its migrations, tracked by `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up; a database at version `n` has
//! run the first `n`. Never edit a released migration: append a new one.

use rusqlite::{Connection, TransactionBehavior};
use squaremcp_core::StoreError;

use super::error::db_error;

/// The tables mirror the DynamoDB items: one table per item kind, keyed as the item is.
/// Every table is STRICT so that a value of the wrong type is refused on write instead of
/// surfacing later as a corrupt read.
const V1: &str = r#"
CREATE TABLE customers (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    plan          TEXT    NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    customer_id TEXT    NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,
    prefix      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
CREATE INDEX api_keys_by_customer ON api_keys (customer_id, created_at, id);

CREATE TABLE credentials (
    customer_id TEXT    NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    platform    TEXT    NOT NULL,
    account     TEXT    NOT NULL,
    key_version INTEGER NOT NULL,
    nonce       BLOB    NOT NULL,
    ciphertext  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (customer_id, platform, account)
) STRICT, WITHOUT ROWID;

CREATE TABLE counters (
    key   TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL CHECK (value >= 0)
) STRICT, WITHOUT ROWID;

CREATE TABLE single_use (
    key        TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX single_use_by_expiry ON single_use (expires_at);
"#;

/// Items: documents by key with an optional expiry (NULL: never expires).
const V2: &str = r#"
CREATE TABLE items (
    key        TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    expires_at INTEGER
) STRICT;
"#;

/// Tool-call records (usage and audit log): the record as JSON, keyed for per-customer time ranges.
const V3: &str = r#"
CREATE TABLE call_records (
    customer_id TEXT    NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    id          TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    record      TEXT    NOT NULL,
    PRIMARY KEY (customer_id, id)
) STRICT;
CREATE INDEX call_records_by_expiry ON call_records (expires_at);
"#;

/// Expired items are deleted by the store's sweep (see `SqliteStore::sweep_expired`): an index,
/// so that the sweep reads only what it deletes. Items that never expire stay out of it.
const V4: &str = r#"
CREATE INDEX items_by_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
"#;

/// Counters of a time window (rate limits) expire and are swept like items; other counters
/// (usage per month, sequence numbers) have no expiry (NULL).
const V5: &str = r#"
ALTER TABLE counters ADD COLUMN expires_at INTEGER;
CREATE INDEX counters_by_expiry ON counters (expires_at) WHERE expires_at IS NOT NULL;
"#;

const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

/// Brings the schema up to date. Runs under `BEGIN IMMEDIATE`, so when the CLI and the server
/// start together, the second waits for the first and then finds nothing left to do.
pub(super) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_error)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(db_error)?;
    let latest = MIGRATIONS.len();
    let applied = usize::try_from(current).ok().filter(|&applied| applied <= latest).ok_or_else(|| {
        StoreError::Unavailable(format!(
            "the database has schema version {current}, this build knows versions up to {latest}: \
                 upgrade squaremcp before using this file"
        ))
    })?;
    for migration in &MIGRATIONS[applied..] {
        tx.execute_batch(migration).map_err(db_error)?;
    }
    if applied < latest {
        tx.pragma_update(None, "user_version", latest as i64).map_err(db_error)?;
    }
    tx.commit().map_err(db_error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn user_version(connection: &Connection) -> i64 {
        connection.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap()
    }

    #[test]
    fn migrating_twice_is_harmless() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection).unwrap();
        migrate(&mut connection).unwrap();
        assert_eq!(user_version(&connection), MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
        let error = migrate(&mut connection).unwrap_err();
        assert!(error.to_string().contains("schema version 99"), "{error}");
    }
}
