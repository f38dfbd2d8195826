//! The SQLite store: one file shared by `squaremcp serve` and the CLI, possibly two processes at
//! once. Every write runs in a `BEGIN IMMEDIATE` transaction, so it takes SQLite's write lock
//! before reading anything and waits (up to the busy timeout) instead of failing when the other
//! process is writing. Conditional writes are single SQL statements, as they are in DynamoDB.

mod error;
mod rows;
mod schema;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, Params, Row, Transaction, TransactionBehavior, params};
use squaremcp_core::ports::{Page, PutMode};
use squaremcp_core::{
    AccountName, ApiKeyHash, ApiKeyId, ApiKeyRecord, CallRecord, CredentialRecord, Customer, CustomerId, Email,
    Platform, PlanName, SealedSecret, Store, StoreError, Timestamp,
};

use self::error::{Violation, db_error, violation};
use self::rows::{API_KEY_COLUMNS, CREDENTIAL_COLUMNS, CUSTOMER_COLUMNS};

/// How long a write waits for the other process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SqliteStore {
    /// Operations are short and never await while holding it, so a blocking mutex is right.
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database file, creating it (and its directory) and the schema if missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let cannot_open = |why: String| StoreError::Unavailable(format!("cannot open {}: {why}", path.display()));
        if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory).map_err(|e| cannot_open(e.to_string()))?;
        }
        let connection = Connection::open(path).map_err(|e| cannot_open(e.to_string()))?;
        Self::prepare(connection, true)
    }

    /// A private database that lives as long as the store: for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::prepare(Connection::open_in_memory().map_err(db_error)?, false)
    }

    fn prepare(mut connection: Connection, on_disk: bool) -> Result<Self, StoreError> {
        connection.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
        if on_disk {
            enable_write_ahead_log(&connection)?;
            // With WAL, NORMAL syncs at checkpoints instead of every commit: a crash of the
            // process loses nothing, a power cut may lose the last commits. Every tools/call
            // writes its record, so a sync per commit would cost more than the call itself.
            connection.pragma_update(None, "synchronous", "NORMAL").map_err(db_error)?;
        }
        connection.pragma_update(None, "foreign_keys", true).map_err(db_error)?;
        schema::migrate(&mut connection)?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its transaction, which rolls back: the
        // connection is still sound, so a poisoned lock is not a reason to stop serving.
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read<T>(&self, operation: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        operation(&self.lock())
    }

    /// Runs `operation` in a `BEGIN IMMEDIATE` transaction; an error rolls everything back.
    fn write<T>(&self, operation: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_error)?;
        let result = operation(&transaction)?;
        transaction.commit().map_err(db_error)?;
        Ok(result)
    }
}

/// WAL lets readers go on while the other process commits.
fn enable_write_ahead_log(connection: &Connection) -> Result<(), StoreError> {
    let mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(db_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!("SQLite refused WAL mode (journal mode is `{mode}`)")));
    }
    Ok(())
}

fn query_optional<T>(
    connection: &Connection,
    sql: &str,
    params: impl Params,
    read_row: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(db_error)?;
    let mut rows = statement.query(params).map_err(db_error)?;
    rows.next().map_err(db_error)?.map(read_row).transpose()
}

fn query_all<T>(
    connection: &Connection,
    sql: &str,
    params: impl Params,
    read_row: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(db_error)?;
    let mut rows = statement.query(params).map_err(db_error)?;
    let mut items = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        items.push(read_row(row)?);
    }
    Ok(items)
}

/// Statements are prepared once per connection and reused (the hot path runs the same few).
fn execute(connection: &Connection, sql: &str, params: impl Params) -> Result<usize, StoreError> {
    connection.prepare_cached(sql).and_then(|mut statement| statement.execute(params)).map_err(db_error)
}

fn customer_insert_error(error: rusqlite::Error, customer: &Customer) -> StoreError {
    match violation(&error) {
        Some(Violation::Unique(message)) if message.contains("customers.email") => {
            StoreError::Conflict(format!("a customer with the email {}", customer.email.as_str()))
        }
        Some(Violation::Unique(_)) => StoreError::Conflict(format!("customer {}", customer.id)),
        _ => db_error(error),
    }
}

fn api_key_insert_error(error: rusqlite::Error, key: &ApiKeyRecord) -> StoreError {
    match violation(&error) {
        Some(Violation::Unique(message)) if message.contains("api_keys.hash") => {
            StoreError::Conflict("an API key with the same hash".into())
        }
        Some(Violation::Unique(_)) => StoreError::Conflict(format!("API key {}", key.id)),
        Some(Violation::MissingCustomer) => missing_customer(&key.customer_id),
        None => db_error(error),
    }
}

fn credential_put_error(error: rusqlite::Error, record: &CredentialRecord) -> StoreError {
    match violation(&error) {
        Some(Violation::MissingCustomer) => missing_customer(&record.customer_id),
        _ => db_error(error),
    }
}

/// Records hang off an existing customer (a foreign key). The port has no "not found" error, so
/// this is reported as a failed write; the gateway checks the customer first anyway.
fn missing_customer(customer: &CustomerId) -> StoreError {
    StoreError::Unavailable(format!("customer {customer} does not exist"))
}

/// SQLite integers are signed; a counter delta beyond `i64::MAX` could never be stored.
fn counter_delta(delta: u64) -> Result<i64, StoreError> {
    i64::try_from(delta).map_err(|_| StoreError::Unavailable(format!("counter delta {delta} is out of range")))
}

fn counter_value(connection: &Connection, key: &str) -> Result<u64, StoreError> {
    let value = query_optional(connection, "SELECT value FROM counters WHERE key = ?1", [key], rows::counter_value)?;
    Ok(value.unwrap_or(0))
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_customer(&self, customer: &Customer) -> Result<(), StoreError> {
        self.write(|tx| {
            let sql = "INSERT INTO customers (id, email, plan, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
            let values = params![
                customer.id.as_str(),
                customer.email.as_str(),
                customer.plan.as_str(),
                customer.password_hash,
                customer.created_at.unix(),
            ];
            tx.execute(sql, values).map_err(|e| customer_insert_error(e, customer))?;
            Ok(())
        })
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1");
        self.read(|db| query_optional(db, &sql, [id.as_str()], rows::customer))
    }

    async fn set_customer_plan(&self, id: &CustomerId, plan: &PlanName) -> Result<bool, StoreError> {
        self.write(|tx| Ok(execute(tx, "UPDATE customers SET plan = ?2 WHERE id = ?1", [id.as_str(), plan.as_str()])? == 1))
    }

    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>, StoreError> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE email = ?1");
        self.read(|db| query_optional(db, &sql, [email.as_str()], rows::customer))
    }

    async fn list_customers(&self, after: Option<&str>, limit: usize) -> Result<Page<Customer>, StoreError> {
        // A page of nothing could not say where the next one starts.
        let page_size = limit.max(1);
        // One row more than the page tells whether another page exists.
        let fetch = i64::try_from(page_size.saturating_add(1)).unwrap_or(i64::MAX);
        // Every id sorts after "", so no `after` is the same as starting at "" (and uses the index).
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id > ?1 ORDER BY id LIMIT ?2");
        let mut items = self.read(|db| query_all(db, &sql, params![after.unwrap_or(""), fetch], rows::customer))?;
        let next = if items.len() > page_size {
            items.truncate(page_size);
            items.last().map(|c| c.id.as_str().to_owned())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.write(|tx| {
            let sql = format!("INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
            let values = params![
                key.id.as_str(),
                key.customer_id.as_str(),
                key.name,
                key.hash.as_str(),
                key.prefix,
                key.created_at.unix(),
                key.revoked_at.map(Timestamp::unix),
            ];
            tx.execute(&sql, values).map_err(|e| api_key_insert_error(e, key))?;
            Ok(())
        })
    }

    async fn api_key_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = ?1");
        self.read(|db| query_optional(db, &sql, [hash.as_str()], rows::api_key))
    }

    async fn list_api_keys(&self, customer: &CustomerId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE customer_id = ?1 ORDER BY created_at, id");
        self.read(|db| query_all(db, &sql, [customer.as_str()], rows::api_key))
    }

    async fn revoke_api_key(&self, customer: &CustomerId, id: &ApiKeyId, at: Timestamp) -> Result<bool, StoreError> {
        self.write(|tx| {
            let sql = "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND customer_id = ?2 AND revoked_at IS NULL";
            Ok(execute(tx, sql, params![id.as_str(), customer.as_str(), at.unix()])? == 1)
        })
    }

    async fn put_credential(&self, record: &CredentialRecord) -> Result<(), StoreError> {
        self.write(|tx| {
            // A put replaces the whole record, as DynamoDB's PutItem does.
            let sql = format!(
                "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (customer_id, platform, account) DO UPDATE SET
                     key_version = excluded.key_version, nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                     created_at = excluded.created_at, updated_at = excluded.updated_at"
            );
            let values = params![
                record.customer_id.as_str(),
                record.platform.as_str(),
                record.account.as_str(),
                record.sealed.key_version,
                record.sealed.nonce,
                record.sealed.ciphertext,
                record.created_at.unix(),
                record.updated_at.unix(),
            ];
            tx.execute(&sql, values).map_err(|e| credential_put_error(e, record))?;
            Ok(())
        })
    }

    async fn credentials(
        &self,
        customer: &CustomerId,
        platform: Option<Platform>,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials
             WHERE customer_id = ?1 AND (?2 IS NULL OR platform = ?2)
             ORDER BY platform, account"
        );
        let platform = platform.map(Platform::as_str);
        self.read(|db| query_all(db, &sql, params![customer.as_str(), platform], rows::credential))
    }

    async fn delete_credential(
        &self,
        customer: &CustomerId,
        platform: Platform,
        account: &AccountName,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            let sql = "DELETE FROM credentials WHERE customer_id = ?1 AND platform = ?2 AND account = ?3";
            Ok(execute(tx, sql, params![customer.as_str(), platform.as_str(), account.as_str()])? > 0)
        })
    }

    async fn swap_credential(&self, record: &CredentialRecord, expected: &SealedSecret) -> Result<bool, StoreError> {
        self.write(|tx| {
            let sql = "UPDATE credentials SET key_version = ?4, nonce = ?5, ciphertext = ?6, created_at = ?7, updated_at = ?8
                       WHERE customer_id = ?1 AND platform = ?2 AND account = ?3
                         AND key_version = ?9 AND nonce = ?10 AND ciphertext = ?11";
            let values = params![
                record.customer_id.as_str(),
                record.platform.as_str(),
                record.account.as_str(),
                record.sealed.key_version,
                record.sealed.nonce,
                record.sealed.ciphertext,
                record.created_at.unix(),
                record.updated_at.unix(),
                expected.key_version,
                expected.nonce,
                expected.ciphertext,
            ];
            Ok(execute(tx, sql, values)? == 1)
        })
    }

    async fn add_to_counter(&self, key: &str, delta: u64, limit: Option<u64>) -> Result<u64, StoreError> {
        let delta = counter_delta(delta)?;
        // A limit beyond what SQLite can hold can never be reached.
        let sql_limit = limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        self.write(|tx| {
            // One conditional upsert: the first add inserts (if within the limit), later ones add
            // (if within the limit). When the condition fails nothing is written and nothing returned.
            let sql = "INSERT INTO counters (key, value) SELECT ?1, ?2 WHERE ?3 IS NULL OR ?2 <= ?3
                       ON CONFLICT (key) DO UPDATE SET value = counters.value + excluded.value
                           WHERE ?3 IS NULL OR counters.value + excluded.value <= ?3
                       RETURNING value";
            let added = query_optional(tx, sql, params![key, delta, sql_limit], rows::counter_value)?;
            match (added, limit) {
                (Some(value), _) => Ok(value),
                (None, Some(limit)) => Err(StoreError::LimitReached { current: counter_value(tx, key)?, limit }),
                (None, None) => Err(StoreError::Unavailable(format!("adding to counter {key} wrote nothing"))),
            }
        })
    }

    async fn counter(&self, key: &str) -> Result<u64, StoreError> {
        self.read(|db| counter_value(db, key))
    }

    async fn record_call(&self, record: &CallRecord, counter: Option<(&str, i64)>) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.write(|tx| {
            // Expired records go when new ones come (TTL, done lazily), using the expiry index.
            execute(tx, "DELETE FROM call_records WHERE expires_at <= ?1", [record.at.unix()])?;
            let sql = "INSERT INTO call_records (customer_id, id, at, expires_at, record) VALUES (?1, ?2, ?3, ?4, ?5)";
            let values = params![record.customer_id.as_str(), record.id, record.at.unix(), record.expires_at.unix(), json];
            // Cached: this insert runs on every tools/call, and parsing it showed in a profile.
            tx.prepare_cached(sql).and_then(|mut insert| insert.execute(values)).map_err(|e| match violation(&e) {
                Some(Violation::Unique(_)) => StoreError::Conflict(format!("call record {}", record.id)),
                Some(Violation::MissingCustomer) => missing_customer(&record.customer_id),
                _ => db_error(e),
            })?;
            if let Some((key, delta)) = counter {
                let sql = "INSERT INTO counters (key, value) VALUES (?1, MAX(?2, 0))
                           ON CONFLICT (key) DO UPDATE SET value = MAX(counters.value + ?2, 0)";
                execute(tx, sql, params![key, delta])?;
            }
            Ok(())
        })
    }

    async fn call_records(
        &self,
        customer: &CustomerId,
        from: Timestamp,
        until: Timestamp,
        limit: usize,
        now: Timestamp,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let sql = "SELECT record FROM call_records
                   WHERE customer_id = ?1 AND at >= ?2 AND at < ?3 AND expires_at > ?4
                   ORDER BY id DESC LIMIT ?5";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|db| {
            query_all(db, sql, params![customer.as_str(), from.unix(), until.unix(), now.unix(), limit], |row| {
                let json: String = row.get(0).map_err(db_error)?;
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("call record: {e}")))
            })
        })
    }

    async fn put_single_use(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            // Expired items can only ever be replaced, so sweep them here (TTL, done lazily).
            execute(tx, "DELETE FROM single_use WHERE expires_at <= ?1", [now.unix()])?;
            let sql =
                "INSERT INTO single_use (key, value, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING";
            match execute(tx, sql, params![key, value, expires_at.unix()])? {
                0 => Err(StoreError::Conflict(format!("single-use item {key}"))),
                _ => Ok(()),
            }
        })
    }

    async fn take_single_use(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        self.write(|tx| {
            // Deleting first makes the take atomic; an expired item is deleted too, but not returned.
            let sql = "DELETE FROM single_use WHERE key = ?1 RETURNING value, expires_at";
            let taken = query_optional(tx, sql, [key], |row| {
                let value: Vec<u8> = row.get(0).map_err(db_error)?;
                let expires_at: i64 = row.get(1).map_err(db_error)?;
                Ok((value, expires_at))
            })?;
            Ok(taken.filter(|(_, expires_at)| *expires_at > now.unix()).map(|(value, _)| value))
        })
    }

    async fn put_item(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        mode: PutMode,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let expires_at = expires_at.map(Timestamp::unix);
        self.write(|tx| match mode {
            PutMode::Replace => {
                let sql = "INSERT INTO items (key, value, expires_at) VALUES (?1, ?2, ?3)
                           ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at";
                execute(tx, sql, params![key, value, expires_at]).map(|_| ())
            }
            PutMode::CreateOnly => {
                // An expired item counts as absent (DynamoDB: `attribute_not_exists OR expires_at <= now`).
                let sql = "INSERT INTO items (key, value, expires_at) VALUES (?1, ?2, ?3)
                           ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                               WHERE items.expires_at IS NOT NULL AND items.expires_at <= ?4";
                match execute(tx, sql, params![key, value, expires_at, now.unix()])? {
                    0 => Err(StoreError::Conflict(format!("item {key}"))),
                    _ => Ok(()),
                }
            }
        })
    }

    async fn get_item(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|db| {
            let sql = "SELECT value FROM items WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
            query_optional(db, sql, params![key, now.unix()], |row| row.get(0).map_err(db_error))
        })
    }

    async fn swap_item(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            let sql = "UPDATE items SET value = ?3, expires_at = ?4
                       WHERE key = ?1 AND value = ?2 AND (expires_at IS NULL OR expires_at > ?5)";
            Ok(execute(tx, sql, params![key, expected, value, expires_at.map(Timestamp::unix), now.unix()])? == 1)
        })
    }

    async fn delete_item(&self, key: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(execute(tx, "DELETE FROM items WHERE key = ?1", [key])? > 0))
    }
}

#[cfg(test)]
mod tests;
