//! What only the SQLite store can show: its file, pragmas, raw columns and refusals. The
//! behaviour every store shares is in the conformance suite (`tests/conformance.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use squaremcp_core::{
    AccountName, ApiKey, ApiKeyId, ApiKeyRecord, CredentialRecord, Customer, CustomerId, Email, PlanName, Platform,
    SealedSecret, Store, StoreError, Timestamp, random,
};

use super::SqliteStore;

const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("squaremcp-sqlite-{}", random::hex_id::<8>())))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn customer() -> Customer {
    Customer {
        id: CustomerId::generate(),
        email: Email::parse(&format!("{}@example.com", random::hex_id::<4>())).unwrap(),
        plan: PlanName::parse("free").unwrap(),
        password_hash: None,
        created_at: NOW,
    }
}

fn credential(owner: &CustomerId) -> CredentialRecord {
    CredentialRecord {
        customer_id: owner.clone(),
        platform: Platform::Telegram,
        account: AccountName::default_account(),
        sealed: SealedSecret { key_version: 3, nonce: vec![1; 12], ciphertext: vec![0, 2, 255] },
        created_at: NOW,
        updated_at: NOW,
    }
}

/// A pragma as the writer's connection sees it (some are per connection).
async fn pragma(store: &SqliteStore, name: &'static str) -> String {
    store
        .write(move |connection| {
            let value = connection.pragma_query_value(None, name, |row| row.get::<_, rusqlite::types::Value>(0));
            Ok(value.map_or_else(
                |e| e.to_string(),
                |value| match value {
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Text(text) => text,
                    other => format!("{other:?}"),
                },
            ))
        })
        .await
        .unwrap()
}

/// Runs raw SQL on the writer, as another program could.
async fn write_raw(store: &SqliteStore, sql: &'static str, parameter: &str) {
    let parameter = parameter.to_owned();
    store.write(move |connection| connection.execute(sql, [parameter]).map_err(super::db_error)).await.unwrap();
}

#[tokio::test]
async fn open_creates_the_file_and_schema_and_reopening_keeps_the_data() {
    let dir = ScratchDir::new();
    let path = dir.0.join("nested/squaremcp.db");
    let stored = customer();
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(pragma(&store, "journal_mode").await, "wal");
        assert_eq!(pragma(&store, "foreign_keys").await, "1");
        assert_eq!(pragma(&store, "busy_timeout").await, "5000");
        assert_eq!(pragma(&store, "user_version").await, "5");
        store.insert_customer(&stored).await.unwrap();
    }
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.customer(&stored.id).await.unwrap(), Some(stored));
}

#[tokio::test]
async fn sealed_secrets_are_stored_as_columns_with_their_key_version() {
    let store = SqliteStore::open_temporary().unwrap();
    let owner = customer();
    store.insert_customer(&owner).await.unwrap();
    store.put_credential(&credential(&owner.id)).await.unwrap();
    let columns: (i64, Vec<u8>, Vec<u8>) = store
        .reader()
        .query_row("SELECT key_version, nonce, ciphertext FROM credentials", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap();
    assert_eq!(columns, (3, vec![1; 12], vec![0, 2, 255]));
}

#[tokio::test]
async fn records_of_an_unknown_customer_are_refused() {
    let store = SqliteStore::open_temporary().unwrap();
    let stranger = CustomerId::generate();
    let key = ApiKey::generate();
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(),
        customer_id: stranger.clone(),
        name: "orphan".into(),
        hash: key.hash(),
        prefix: key.display_prefix(),
        created_at: NOW,
        revoked_at: None,
    };
    let refused = store.insert_api_key(&record).await;
    assert!(matches!(&refused, Err(StoreError::Unavailable(m)) if m.contains("does not exist")), "{refused:?}");
    let refused = store.put_credential(&credential(&stranger)).await;
    assert!(matches!(&refused, Err(StoreError::Unavailable(m)) if m.contains("does not exist")), "{refused:?}");
    assert!(store.credentials(&stranger, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn undecodable_rows_are_reported_as_corrupt() {
    let store = SqliteStore::open_temporary().unwrap();
    let owner = customer();
    let sql = "INSERT INTO customers (id, email, plan, created_at) VALUES (?1, 'not an email', 'free', 0)";
    write_raw(&store, sql, owner.id.as_str()).await;
    let read = store.customer(&owner.id).await;
    assert!(matches!(&read, Err(StoreError::Corrupt(m)) if m.contains("email")), "{read:?}");

    let other = customer();
    store.insert_customer(&other).await.unwrap();
    let sql = "INSERT INTO credentials VALUES (?1, 'myspace', 'default', 1, x'00', x'00', 0, 0)";
    write_raw(&store, sql, other.id.as_str()).await;
    let read = store.credentials(&other.id, None).await;
    assert!(matches!(&read, Err(StoreError::Corrupt(m)) if m.contains("platform")), "{read:?}");
}

#[tokio::test]
async fn a_page_of_zero_customers_is_read_as_a_page_of_one() {
    let store = SqliteStore::open_temporary().unwrap();
    store.insert_customer(&customer()).await.unwrap();
    store.insert_customer(&customer()).await.unwrap();
    let page = store.list_customers(None, 0).await.unwrap();
    assert_eq!(page.items.len(), 1, "an empty page could not say where the next one starts");
    assert_eq!(page.next.as_deref(), Some(page.items[0].id.as_str()));
}

#[tokio::test]
async fn counter_values_beyond_sqlite_integers_are_refused() {
    let store = SqliteStore::open_temporary().unwrap();
    assert!(matches!(store.add_to_counter("big", u64::MAX, None).await, Err(StoreError::Unavailable(_))));
    assert_eq!(store.add_to_counter("big", 7, Some(u64::MAX)).await.unwrap(), 7, "a huge limit is no limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_committed_together_fail_alone() {
    let store = std::sync::Arc::new(SqliteStore::open_temporary().unwrap());
    let taken = customer();
    store.insert_customer(&taken).await.unwrap();
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..200 {
        let store = store.clone();
        // Every tenth write reuses an email and must fail; the others must all land.
        let mut candidate = customer();
        if n % 10 == 0 {
            candidate.email = taken.email.clone();
        }
        writes.spawn(async move { (candidate.clone(), store.insert_customer(&candidate).await) });
    }
    let (mut landed, mut refused) = (0, 0);
    while let Some(joined) = writes.join_next().await {
        let (candidate, outcome) = joined.unwrap();
        match outcome {
            Ok(()) => {
                assert_eq!(store.customer(&candidate.id).await.unwrap(), Some(candidate));
                landed += 1;
            }
            Err(StoreError::Conflict(_)) => {
                assert_eq!(candidate.email, taken.email);
                assert_eq!(store.customer(&candidate.id).await.unwrap(), None);
                refused += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((landed, refused), (180, 20));
    assert_eq!(store.list_customers(None, 1000).await.unwrap().items.len(), 181);
}

#[tokio::test]
async fn a_temporary_database_leaves_no_file_behind() {
    let store = SqliteStore::open_temporary().unwrap();
    store.insert_customer(&customer()).await.unwrap();
    let file = store._temporary.as_ref().map(|t| t.0.clone()).unwrap();
    assert!(file.exists());
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.clone().into_os_string();
        path.push(suffix);
        assert!(!std::path::Path::new(&path).exists(), "{path:?} is left");
    }
}

#[tokio::test]
async fn a_new_store_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = ScratchDir::new();
    let directory = scratch.0.join("data");
    let store = SqliteStore::open(&directory.join("squaremcp.db")).unwrap();
    store.insert_customer(&customer()).await.unwrap();
    let mode = |path: PathBuf| std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(directory.clone()), 0o700, "the data directory");
    assert_eq!(mode(directory.join("squaremcp.db")), 0o600, "the database");
    assert_eq!(mode(directory.join("squaremcp.db-wal")), 0o600, "its write-ahead log");
}

/// Rows in `table`, expired or not (reads through the port never show expired ones).
async fn rows(store: &SqliteStore, table: &'static str) -> i64 {
    store
        .write(move |connection| {
            connection.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0)).map_err(super::db_error)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn expired_rows_are_deleted_by_a_later_write_not_only_hidden() {
    use squaremcp_core::ports::PutMode;
    let store = SqliteStore::open_temporary().unwrap();
    let later = NOW.plus_seconds(super::SWEEP_EVERY_SECONDS + 1);
    // This first write sweeps (nothing yet); the next sweep is due a minute later.
    store.put_item("session:a", b"a", Some(NOW.plus_seconds(10)), PutMode::Replace, NOW).await.unwrap();
    store.put_item("settings", b"kept", None, PutMode::Replace, NOW).await.unwrap();
    store.put_item("lease:b", b"b", Some(later.plus_seconds(3600)), PutMode::Replace, NOW).await.unwrap();
    store.put_single_use("code:c", b"c", NOW.plus_seconds(10), NOW).await.unwrap();
    store.add_to_expiring_counter("ratelimit:hour:1", 1, Some(5), NOW.plus_seconds(10)).await.unwrap();
    store.add_to_expiring_counter("ratelimit:hour:2", 1, Some(5), later.plus_seconds(3600)).await.unwrap();
    store.add_to_counter("usage:2027-01", 1, None).await.unwrap();
    assert_eq!(rows(&store, "items").await, 3);
    assert_eq!(rows(&store, "counters").await, 3);

    // A write after the expiry and after the sweep interval removes what expired, and only that.
    store.put_item("other", b"x", None, PutMode::Replace, later).await.unwrap();
    assert_eq!(rows(&store, "items").await, 3, "session:a is gone; settings, lease:b and other remain");
    assert_eq!(store.get_item("session:a", NOW).await.unwrap(), None, "deleted, not merely hidden");
    assert_eq!(store.get_item("settings", later).await.unwrap().as_deref(), Some(&b"kept"[..]));
    assert_eq!(store.get_item("lease:b", later).await.unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(rows(&store, "single_use").await, 0, "the expired code went with the same sweep");
    assert_eq!(rows(&store, "counters").await, 2, "the expired window's counter too; the later window and usage stay");
    assert_eq!(store.counter("ratelimit:hour:1").await.unwrap(), 0);
    assert_eq!(store.counter("usage:2027-01").await.unwrap(), 1);
}

#[tokio::test]
async fn the_sweep_runs_at_most_once_a_minute() {
    use squaremcp_core::ports::PutMode;
    let store = SqliteStore::open_temporary().unwrap();
    store.put_item("first", b"1", None, PutMode::Replace, NOW).await.unwrap();
    store.put_item("short", b"s", Some(NOW.plus_seconds(5)), PutMode::Replace, NOW).await.unwrap();
    // Expired, but the last sweep was less than a minute ago: the row stays (hidden) until the next.
    store.put_item("second", b"2", None, PutMode::Replace, NOW.plus_seconds(30)).await.unwrap();
    assert_eq!(rows(&store, "items").await, 3);
    assert_eq!(store.get_item("short", NOW.plus_seconds(30)).await.unwrap(), None);
    store.put_item("third", b"3", None, PutMode::Replace, NOW.plus_seconds(61)).await.unwrap();
    assert_eq!(rows(&store, "items").await, 3, "short is gone");
}
