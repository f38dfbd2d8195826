//! The SQLite store: one file shared by `squaremcp serve` and the CLI, possibly two processes at
//! once. Writes go through one writer thread (see `writer`) that commits in `BEGIN IMMEDIATE`
//! transactions, so it takes SQLite's write lock before reading anything and waits (up to the
//! busy timeout) instead of failing when the other process is writing. Reads use a small pool
//! of read-only connections beside it (WAL: readers never wait for a commit). Conditional writes
//! are single SQL statements, as they are in DynamoDB.

mod checkpoint;
mod error;
mod rows;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, Params, Row, params};
use squaremcp_core::ports::{Page, PutMode};
use squaremcp_core::{
    AccountName, ApiKeyHash, ApiKeyId, ApiKeyRecord, CallRecord, CredentialRecord, Customer, CustomerId, Email,
    Platform, PlanName, SealedSecret, Store, StoreError, Timestamp,
};

use self::error::{Violation, db_error, violation};
use self::rows::{API_KEY_COLUMNS, CREDENTIAL_COLUMNS, CUSTOMER_COLUMNS};
use self::writer::Writer;

/// How long a write waits for the other process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only connections beside the writer, one per core of a small machine: a tools/call's key
/// and credential lookups never queue behind another call's commit.
const READERS: usize = 2;

/// Expired rows (call records, items, single-use items, window counters) are deleted at most this often, on a
/// write that comes along (a range delete on every call showed in a profile; expired rows are
/// filtered on read anyway). DynamoDB's TTL does the same for its table, also late.
const SWEEP_EVERY_SECONDS: i64 = 60;

/// The checkpoint thread keeps the log short; should it fall behind (readers pinning old
/// snapshots under sustained load), the writer checkpoints itself once the log passes this many
/// pages (32 MiB), so the log cannot grow without bound.
const WRITER_CHECKPOINT_PAGES: i64 = 8192;

pub struct SqliteStore {
    // Fields drop in this order: the writer finishes its queue first, the file goes last.
    writer: Writer,
    /// Operations are short and never await while holding one, so blocking mutexes are right.
    readers: Vec<Mutex<Connection>>,
    /// When expired rows were last deleted (unix seconds).
    last_sweep: AtomicI64,
    _checkpointer: checkpoint::Checkpointer,
    _temporary: Option<TemporaryFile>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database file, creating it (and its directory) and the schema if missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_file(path, None)
    }

    /// A private database in a temporary file, deleted with the store: for tests.
    pub fn open_temporary() -> Result<Self, StoreError> {
        static OPENED: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "squaremcp-{}-{}-{}.db",
            std::process::id(),
            OPENED.fetch_add(1, Ordering::Relaxed),
            squaremcp_core::random::hex_id::<4>()
        );
        let path = std::env::temp_dir().join(name);
        Self::open_file(&path, Some(TemporaryFile(path.clone())))
    }

    fn open_file(path: &Path, temporary: Option<TemporaryFile>) -> Result<Self, StoreError> {
        let cannot_open = |why: String| StoreError::Unavailable(format!("cannot open {}: {why}", path.display()));
        if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            private_directory(directory).map_err(|e| cannot_open(e.to_string()))?;
        }
        create_private_file(path).map_err(|e| cannot_open(e.to_string()))?;
        let mut connection = Connection::open(path).map_err(|e| cannot_open(e.to_string()))?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
        enable_write_ahead_log(&connection)?;
        // With WAL, NORMAL syncs at checkpoints instead of every commit: a crash of the
        // process loses nothing, a power cut may lose the last commits. Every tools/call
        // writes its record, so a sync per commit would cost more than the call itself.
        connection.pragma_update(None, "synchronous", "NORMAL").map_err(db_error)?;
        connection.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES).map_err(db_error)?;
        connection.pragma_update(None, "foreign_keys", true).map_err(db_error)?;
        schema::migrate(&mut connection)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let reader = Connection::open_with_flags(path, flags).map_err(|e| cannot_open(e.to_string()))?;
            reader.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
            readers.push(Mutex::new(reader));
        }
        Ok(Self {
            writer: Writer::start(connection)?,
            readers,
            last_sweep: AtomicI64::new(i64::MIN),
            _checkpointer: checkpoint::Checkpointer::start(path, BUSY_TIMEOUT)?,
            _temporary: temporary,
        })
    }

    /// A free reader if there is one, else waits for the first.
    fn read<T>(&self, operation: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        for reader in &self.readers {
            if let Ok(connection) = reader.try_lock() {
                return operation(&connection);
            }
        }
        operation(&self.reader())
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        // A panic while a reader was held ended its statement: the connection is still sound,
        // so a poisoned lock is not a reason to stop serving.
        self.readers[0].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `operation` on the writer thread in a `BEGIN IMMEDIATE` transaction; an error rolls
    /// back its changes. It may share the transaction with other writes queued at the same time.
    async fn write<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write(operation).await
    }

    /// [`SqliteStore::write`] for a write no request's answer waits on (`writer.rs`).
    async fn write_soon<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write_soon(operation).await
    }

    /// One conditional upsert: the first add inserts (if within the limit), later ones add (if
    /// within the limit). When the condition fails nothing is written and nothing returned. An
    /// add with an expiry sets it; one without keeps what the counter had.
    async fn add(&self, key: &str, delta: u64, limit: Option<u64>, expires_at: Option<Timestamp>) -> Result<u64, StoreError> {
        let delta = counter_delta(delta)?;
        // A limit beyond what SQLite can hold can never be reached.
        let sql_limit = limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let key = key.to_owned();
        // No sweep here: a counter add is not told the time (the sweep of the next item or
        // call record deletes expired counters too).
        self.write(move |tx| {
            let sql = "INSERT INTO counters (key, value, expires_at) SELECT ?1, ?2, ?4 WHERE ?3 IS NULL OR ?2 <= ?3
                       ON CONFLICT (key) DO UPDATE SET value = counters.value + excluded.value,
                               expires_at = COALESCE(excluded.expires_at, counters.expires_at)
                           WHERE ?3 IS NULL OR counters.value + excluded.value <= ?3
                       RETURNING value";
            let added = query_optional(tx, sql, params![key, delta, sql_limit, expires_at.map(Timestamp::unix)], rows::counter_value)?;
            match (added, limit) {
                (Some(value), _) => Ok(value),
                (None, Some(limit)) => Err(StoreError::LimitReached { current: counter_value(tx, &key)?, limit }),
                (None, None) => Err(StoreError::Unavailable(format!("adding to counter {key} wrote nothing"))),
            }
        })
        .await
    }

    /// True at most once a minute: time to delete expired rows.
    fn sweep_due(&self, now: Timestamp) -> bool {
        let last = self.last_sweep.load(Ordering::Relaxed);
        now.unix().saturating_sub(last) >= SWEEP_EVERY_SECONDS
            && self.last_sweep.compare_exchange(last, now.unix(), Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// The file of [`SqliteStore::open_temporary`], removed with its log once the connections closed.
struct TemporaryFile(PathBuf);

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Deletes every row that expired by `now`, each table through its expiry index. Without it,
/// expired items (sessions, OAuth clients never used, consents, leases, delivery marks, cached
/// client documents) would only ever leave when their key is written again, which most never are.
fn sweep_expired(tx: &Connection, now: Timestamp) -> Result<(), StoreError> {
    execute(tx, "DELETE FROM call_records WHERE expires_at <= ?1", [now.unix()])?;
    execute(tx, "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1", [now.unix()])?;
    execute(tx, "DELETE FROM single_use WHERE expires_at <= ?1", [now.unix()])?;
    execute(tx, "DELETE FROM counters WHERE expires_at IS NOT NULL AND expires_at <= ?1", [now.unix()])?;
    Ok(())
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
        let customer = customer.clone();
        self.write(move |tx| {
            let sql = "INSERT INTO customers (id, email, plan, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
            let values = params![
                customer.id.as_str(),
                customer.email.as_str(),
                customer.plan.as_str(),
                customer.password_hash,
                customer.created_at.unix(),
            ];
            tx.execute(sql, values).map_err(|e| customer_insert_error(e, &customer))?;
            Ok(())
        })
        .await
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1");
        self.read(|db| query_optional(db, &sql, [id.as_str()], rows::customer))
    }

    async fn set_customer_plan(&self, id: &CustomerId, plan: &PlanName) -> Result<bool, StoreError> {
        let (id, plan) = (id.clone(), plan.clone());
        self.write(move |tx| Ok(execute(tx, "UPDATE customers SET plan = ?2 WHERE id = ?1", [id.as_str(), plan.as_str()])? == 1))
            .await
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
        let key = key.clone();
        self.write(move |tx| {
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
            tx.execute(&sql, values).map_err(|e| api_key_insert_error(e, &key))?;
            Ok(())
        })
        .await
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
        let (customer, id) = (customer.clone(), id.clone());
        self.write(move |tx| {
            let sql = "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND customer_id = ?2 AND revoked_at IS NULL";
            Ok(execute(tx, sql, params![id.as_str(), customer.as_str(), at.unix()])? == 1)
        })
        .await
    }

    async fn put_credential(&self, record: &CredentialRecord) -> Result<(), StoreError> {
        let record = record.clone();
        self.write(move |tx| {
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
            tx.execute(&sql, values).map_err(|e| credential_put_error(e, &record))?;
            Ok(())
        })
        .await
    }

    async fn credentials(
        &self,
        customer: &CustomerId,
        platform: Option<Platform>,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        // No ORDER BY: with one, SQLite re-plans the statement on every run (its plan depends on
        // the bound values), which was a tenth of a tools/call in a profile. A customer has a
        // handful of credentials; they are sorted here.
        let mut records = match platform {
            Some(platform) => {
                let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE customer_id = ?1 AND platform = ?2");
                self.read(|db| query_all(db, &sql, params![customer.as_str(), platform.as_str()], rows::credential))?
            }
            None => {
                let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE customer_id = ?1");
                self.read(|db| query_all(db, &sql, [customer.as_str()], rows::credential))?
            }
        };
        records.sort_unstable_by(|a, b| (a.platform.as_str(), &a.account).cmp(&(b.platform.as_str(), &b.account)));
        Ok(records)
    }

    async fn delete_credential(
        &self,
        customer: &CustomerId,
        platform: Platform,
        account: &AccountName,
    ) -> Result<bool, StoreError> {
        let (customer, account) = (customer.clone(), account.clone());
        self.write(move |tx| {
            let sql = "DELETE FROM credentials WHERE customer_id = ?1 AND platform = ?2 AND account = ?3";
            Ok(execute(tx, sql, params![customer.as_str(), platform.as_str(), account.as_str()])? > 0)
        })
        .await
    }

    async fn swap_credential(&self, record: &CredentialRecord, expected: &SealedSecret) -> Result<bool, StoreError> {
        let (record, expected) = (record.clone(), expected.clone());
        self.write(move |tx| {
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
        .await
    }

    async fn add_to_counter(&self, key: &str, delta: u64, limit: Option<u64>) -> Result<u64, StoreError> {
        self.add(key, delta, limit, None).await
    }

    async fn add_to_expiring_counter(
        &self,
        key: &str,
        delta: u64,
        limit: Option<u64>,
        expires_at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.add(key, delta, limit, Some(expires_at)).await
    }

    async fn counter(&self, key: &str) -> Result<u64, StoreError> {
        self.read(|db| counter_value(db, key))
    }

    async fn subtract_from_counter(&self, key: &str, delta: u64) -> Result<bool, StoreError> {
        let delta = counter_delta(delta)?;
        let key = key.to_owned();
        // One conditional update: it changes a row only when the counter holds at least `delta`.
        self.write(move |tx| {
            let sql = "UPDATE counters SET value = value - ?2 WHERE key = ?1 AND value >= ?2";
            // Taking off nothing always succeeds, even from a counter that was never written.
            Ok(execute(tx, sql, params![key, delta])? == 1 || delta == 0)
        })
        .await
    }

    async fn record_call(&self, record: &CallRecord, counter: Option<(&str, i64)>) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Expired records go when new ones come (TTL, done lazily), using the expiry index.
        let sweep = self.sweep_due(record.at);
        let (customer, id, at, expires_at) = (record.customer_id.clone(), record.id.clone(), record.at, record.expires_at);
        let counter = counter.map(|(key, delta)| (key.to_owned(), delta));
        // `squaremcp serve` writes a record after its call answered: it can share a later commit.
        self.write_soon(move |tx| {
            if sweep {
                sweep_expired(tx, at)?;
            }
            let sql = "INSERT INTO call_records (customer_id, id, at, expires_at, record) VALUES (?1, ?2, ?3, ?4, ?5)";
            let values = params![customer.as_str(), id, at.unix(), expires_at.unix(), json];
            // Cached: this insert runs on every tools/call, and parsing it showed in a profile.
            tx.prepare_cached(sql).and_then(|mut insert| insert.execute(values)).map_err(|e| match violation(&e) {
                Some(Violation::Unique(_)) => StoreError::Conflict(format!("call record {id}")),
                Some(Violation::MissingCustomer) => missing_customer(&customer),
                _ => db_error(e),
            })?;
            if let Some((key, delta)) = counter {
                let sql = "INSERT INTO counters (key, value) VALUES (?1, MAX(?2, 0))
                           ON CONFLICT (key) DO UPDATE SET value = MAX(counters.value + ?2, 0)";
                execute(tx, sql, params![key, delta])?;
            }
            Ok(())
        })
        .await
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
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write(move |tx| {
            // Expired items can only ever be replaced, so sweep them here (TTL, done lazily).
            execute(tx, "DELETE FROM single_use WHERE expires_at <= ?1", [now.unix()])?;
            let sql =
                "INSERT INTO single_use (key, value, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING";
            match execute(tx, sql, params![key, value, expires_at.unix()])? {
                0 => Err(StoreError::Conflict(format!("single-use item {key}"))),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn take_single_use(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.write(move |tx| {
            // Deleting first makes the take atomic; an expired item is deleted too, but not returned.
            let sql = "DELETE FROM single_use WHERE key = ?1 RETURNING value, expires_at";
            let taken = query_optional(tx, sql, [&key], |row| {
                let value: Vec<u8> = row.get(0).map_err(db_error)?;
                let expires_at: i64 = row.get(1).map_err(db_error)?;
                Ok((value, expires_at))
            })?;
            Ok(taken.filter(|(_, expires_at)| *expires_at > now.unix()).map(|(value, _)| value))
        })
        .await
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
        let (key, value) = (key.to_owned(), value.to_vec());
        let sweep = self.sweep_due(now);
        self.write(move |tx| {
            if sweep {
                sweep_expired(tx, now)?;
            }
            match mode {
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
            }
        })
        .await
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
        let (key, expected, value) = (key.to_owned(), expected.to_vec(), value.to_vec());
        self.write(move |tx| {
            let sql = "UPDATE items SET value = ?3, expires_at = ?4
                       WHERE key = ?1 AND value = ?2 AND (expires_at IS NULL OR expires_at > ?5)";
            Ok(execute(tx, sql, params![key, expected, value, expires_at.map(Timestamp::unix), now.unix()])? == 1)
        })
        .await
    }

    async fn delete_item(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write(move |tx| Ok(execute(tx, "DELETE FROM items WHERE key = ?1", [key])? > 0)).await
    }
}


/// Creates `directory` (and its parents) readable by this user only, when missing: it holds
/// customers' call records and, beside the database, the keyring. An existing directory keeps
/// the mode its owner gave it.
pub fn private_directory(directory: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(directory)
}

/// Creates an empty database file with mode 0600 when missing, so that SQLite (which gives its
/// `-wal` and `-shm` files the database's mode) never creates it world-readable under the umask.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
