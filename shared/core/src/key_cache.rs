//! API keys this process authenticated in the last few seconds, so that a client's burst of
//! requests (an MCP session is several POSTs; a model calls tools in quick succession) reads
//! the store once instead of once per request. Only keys found active are kept, never misses:
//! a key created elsewhere works at once, and presenting random keys cannot fill the cache.
//!
//! The price: a key revoked by another process (the CLI, the account page in another Lambda)
//! keeps working here for at most the cache's lifetime. A revocation through this process's
//! gateway takes effect at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{ApiKeyHash, ApiKeyId, ApiKeyRecord, CustomerId};

/// How long an authenticated key is trusted without reading the store, unless configured
/// (`SQUAREMCP_API_KEY_CACHE_SECONDS`).
pub const DEFAULT_API_KEY_CACHE: Duration = Duration::from_secs(5);

/// More active keys than this within one lifetime, and the cache starts over: it bounds the
/// memory, and a deployment with that many busy keys pays one read per key and lifetime.
const MAX_ENTRIES: usize = 10_000;

/// What a request needs of a cached key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CachedKey {
    pub id: ApiKeyId,
    pub customer_id: CustomerId,
}

pub(crate) struct KeyCache {
    lifetime: Duration,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    keys: HashMap<ApiKeyHash, (CachedKey, Instant)>,
    /// Counts revocations, so that a key read before one is not kept after it.
    revocations: u64,
}

/// What [`KeyCache::before_read`] saw; handed back to [`KeyCache::keep`].
#[derive(Clone, Copy)]
pub(crate) struct ReadStart(u64);

impl KeyCache {
    /// A zero `lifetime` keeps nothing: every request reads the store.
    pub fn new(lifetime: Duration) -> Self {
        Self { lifetime, entries: Mutex::new(Entries::default()) }
    }

    /// Taken before reading a key from the store: a revocation in this process between the
    /// read and [`KeyCache::keep`] makes `keep` drop what was read.
    pub fn before_read(&self) -> ReadStart {
        ReadStart(self.entries.lock().map_or(u64::MAX, |entries| entries.revocations))
    }

    pub fn get(&self, hash: &ApiKeyHash) -> Option<CachedKey> {
        if self.lifetime.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (key, at) = entries.keys.get(hash)?;
        (at.elapsed() < self.lifetime).then(|| key.clone())
    }

    /// Keeps an active key read from the store since `started`; a revoked one is never kept,
    /// nor one read before a revocation in this process.
    pub fn keep(&self, record: &ApiKeyRecord, started: ReadStart) {
        if self.lifetime.is_zero() || !record.is_active() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.revocations != started.0 {
            return;
        }
        if entries.keys.len() >= MAX_ENTRIES {
            entries.keys.retain(|_, (_, at)| at.elapsed() < self.lifetime);
            if entries.keys.len() >= MAX_ENTRIES {
                entries.keys.clear();
            }
        }
        let key = CachedKey { id: record.id.clone(), customer_id: record.customer_id.clone() };
        entries.keys.insert(record.hash.clone(), (key, Instant::now()));
    }

    /// Drops a revoked key, so that this process refuses it from now on.
    pub fn forget(&self, id: &ApiKeyId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.keys.retain(|_, (key, _)| &key.id != id);
            entries.revocations += 1;
        }
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
    fn a_kept_key_is_found_until_its_lifetime_ends() {
        let cache = KeyCache::new(Duration::from_millis(80));
        let (hash, record) = key_record(&CustomerId::generate());
        assert_eq!(cache.get(&hash), None);
        cache.keep(&record, cache.before_read());
        let found = cache.get(&hash).expect("kept");
        assert_eq!((found.id, found.customer_id), (record.id.clone(), record.customer_id.clone()));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(cache.get(&hash), None, "past its lifetime the store decides again");
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

    #[test]
    fn a_zero_lifetime_keeps_nothing() {
        let cache = KeyCache::new(Duration::ZERO);
        let (hash, record) = key_record(&CustomerId::generate());
        cache.keep(&record, cache.before_read());
        assert_eq!(cache.get(&hash), None);
    }

    #[test]
    fn a_full_cache_starts_over_instead_of_growing() {
        let cache = KeyCache::new(Duration::from_secs(60));
        let first = key_record(&CustomerId::generate());
        cache.keep(&first.1, cache.before_read());
        let other = CustomerId::generate();
        for _ in 0..MAX_ENTRIES {
            cache.keep(&key_record(&other).1, cache.before_read());
        }
        let len = cache.entries.lock().unwrap().keys.len();
        assert!(len <= MAX_ENTRIES, "{len} entries");
        assert_eq!(cache.get(&first.0), None, "the cache started over when it filled");
    }
}
