//! The store contract against SQLite files, plus the two-process variants: two `SqliteStore`s
//! on one file, each with its own connection, stand for `squaremcp serve` and the CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::ScratchDir;
use squaremcp_core::Store;
use squaremcp_embedded::SqliteStore;

/// Each store gets its own file, removed with its directory when the store is dropped.
fn fresh_store() -> Arc<dyn Store> {
    let dir = ScratchDir::new("conformance");
    let store = SqliteStore::open(&dir.file("squaremcp.db")).expect("opening a fresh SQLite file");
    squaremcp_store_conformance::guarded(store, dir)
}

squaremcp_store_conformance::store_conformance_tests!(fresh_store());

/// Two handles on one file, as two processes would have.
fn two_handles(dir: &ScratchDir) -> Vec<Arc<dyn Store>> {
    let path = dir.file("shared.db");
    let first = SqliteStore::open(&path).expect("opening the file once");
    let second = SqliteStore::open(&path).expect("opening the same file again");
    vec![Arc::new(first), Arc::new(second)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_is_exact_across_two_handles_on_one_file() {
    let dir = ScratchDir::new("two-handles");
    squaremcp_store_conformance::counter_respects_limit_exactly_across_handles(two_handles(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_use_is_taken_once_across_two_handles_on_one_file() {
    let dir = ScratchDir::new("two-handles");
    squaremcp_store_conformance::single_use_items_are_taken_once_across_handles(two_handles(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_store_passes_a_smoke_test() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_temporary().unwrap());
    squaremcp_store_conformance::customers_round_trip(Arc::clone(&store)).await;
    squaremcp_store_conformance::counter_respects_limit_exactly_under_concurrency(store).await;
}

/// Copies a credential row with plain SQL on a connection of its own, as anyone who can
/// write the file could.
struct RawSqlite(std::path::PathBuf);

#[async_trait::async_trait]
impl squaremcp_store_conformance::RawCredentials for RawSqlite {
    async fn copy_credential(&self, from: &squaremcp_store_conformance::CredentialKeys, to: &squaremcp_store_conformance::CredentialKeys) {
        let db = rusqlite::Connection::open(&self.0).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let copied = db
            .execute(
                "INSERT OR REPLACE INTO credentials
                     (customer_id, platform, account, key_version, nonce, ciphertext, created_at, updated_at)
                 SELECT ?4, ?5, ?6, key_version, nonce, ciphertext, created_at, updated_at
                 FROM credentials WHERE customer_id = ?1 AND platform = ?2 AND account = ?3",
                rusqlite::params![
                    from.customer_id.as_str(),
                    from.platform.as_str(),
                    from.account.as_str(),
                    to.customer_id.as_str(),
                    to.platform.as_str(),
                    to.account.as_str(),
                ],
            )
            .unwrap();
        assert_eq!(copied, 1, "one row copied");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_copied_to_other_keys_do_not_open() {
    let dir = ScratchDir::new("bound-credentials");
    let path = dir.file("squaremcp.db");
    let store = SqliteStore::open(&path).expect("opening a fresh SQLite file");
    squaremcp_store_conformance::credentials_copied_to_other_keys_do_not_open(Arc::new(store), Arc::new(RawSqlite(path))).await;
}
