//! API keys this process authenticated in the last few seconds, so that a client's burst of
//! requests (an MCP session is several POSTs; a model calls tools in quick succession) reads
//! the store once instead of once per request. Only keys found active are kept, never misses:
//! a key created elsewhere works at once, and presenting random keys cannot fill the cache.
//!
//! The price: a key revoked by another process (the CLI, the account page in another Lambda)
//! keeps working here for at most the cache's lifetime. A revocation through this process's
//! gateway takes effect at once.

use std::time::Duration;

use crate::recent::{ReadStart, RecentReads};
use crate::{ApiKeyHash, ApiKeyId, ApiKeyRecord, CustomerId};

/// How long an authenticated key is trusted without reading the store, unless configured
/// (`SQUAREMCP_API_KEY_CACHE_SECONDS`).
pub const DEFAULT_API_KEY_CACHE: Duration = Duration::from_secs(5);

/// What a request needs of a cached key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CachedKey {
    pub id: ApiKeyId,
    pub customer_id: CustomerId,
}

pub(crate) struct KeyCache(RecentReads<ApiKeyHash, CachedKey>);

impl KeyCache {
    /// A zero `lifetime` keeps nothing: every request reads the store.
    pub fn new(lifetime: Duration) -> Self {
        Self(RecentReads::new(lifetime))
    }

    /// Taken before reading a key from the store: a revocation in this process between the
    /// read and [`KeyCache::keep`] makes `keep` drop what was read.
    pub fn before_read(&self) -> ReadStart {
        self.0.before_read()
    }

    pub fn get(&self, hash: &ApiKeyHash) -> Option<CachedKey> {
        self.0.get(hash)
    }

    /// Keeps an active key read from the store since `started`; a revoked one is never kept,
    /// nor one read before a revocation in this process.
    pub fn keep(&self, record: &ApiKeyRecord, started: ReadStart) {
        if record.is_active() {
            let key = CachedKey { id: record.id.clone(), customer_id: record.customer_id.clone() };
            self.0.keep(record.hash.clone(), key, started);
        }
    }

    /// Drops a revoked key, so that this process refuses it from now on.
    pub fn forget(&self, id: &ApiKeyId) {
        self.0.forget(|_, key| &key.id == id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{ApiKey, Timestamp};

    fn key_record(customer: &CustomerId) -> (ApiKeyHash, ApiKeyRecord) {
        let key = ApiKey::generate();
        let record = ApiKeyRecord {
            id: ApiKeyId::generate(),
            customer_id: customer.clone(),
            name: "laptop".to_owned(),
            hash: key.hash(),
            prefix: key.display_prefix(),
            created_at: Timestamp::from_unix(1_800_000_000),
            revoked_at: None,
        };
        (key.hash(), record)
    }

    #[test]
    fn revoked_keys_are_never_kept_and_forgetting_drops_them_at_once() {
        let cache = KeyCache::new(Duration::from_secs(60));
        let (hash, mut record) = key_record(&CustomerId::generate());
        let (other_hash, other) = key_record(&CustomerId::generate());
        cache.keep(&record, cache.before_read());
        cache.keep(&other, cache.before_read());
        cache.forget(&record.id);
        assert_eq!(cache.get(&hash), None);
        assert!(cache.get(&other_hash).is_some(), "only the revoked key is dropped");

        record.revoked_at = Some(Timestamp::from_unix(1_800_000_100));
        cache.keep(&record, cache.before_read());
        assert_eq!(cache.get(&hash), None, "a revoked record is not kept");
    }

    #[test]
    fn a_key_read_before_a_revocation_here_is_not_kept_after_it() {
        let cache = KeyCache::new(Duration::from_secs(60));
        let (hash, record) = key_record(&CustomerId::generate());
        let started = cache.before_read();
        // The store answered "active"; meanwhile this process revoked the key.
        cache.forget(&record.id);
        cache.keep(&record, started);
        assert_eq!(cache.get(&hash), None);
        cache.keep(&record, cache.before_read());
        assert!(cache.get(&hash).is_some(), "a read that started after the revocation is kept");
    }
}
