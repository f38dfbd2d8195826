//! Store reads this process made in the last few seconds, so that a client's burst of requests
//! reads the store once instead of once per request (API keys: `key_cache.rs`; credentials:
//! `credential_cache.rs`). What this process changes is forgotten at once; what another process
//! changes is seen once the lifetime has passed.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// More entries than this within one lifetime, and the cache starts over: it bounds the memory,
/// and a deployment with that many busy keys pays one read per key and lifetime.
pub(crate) const MAX_ENTRIES: usize = 10_000;

pub(crate) struct RecentReads<K, V> {
    lifetime: Duration,
    entries: Mutex<Entries<K, V>>,
}

struct Entries<K, V> {
    values: HashMap<K, (V, Instant)>,
    /// Counts what was forgotten, so that a value read before a change here is not kept after it.
    changes: u64,
}

/// What [`RecentReads::before_read`] saw; handed back to [`RecentReads::keep`].
#[derive(Clone, Copy)]
pub(crate) struct ReadStart(u64);

impl<K: Eq + Hash, V: Clone> RecentReads<K, V> {
    /// A zero `lifetime` keeps nothing: every request reads the store.
    pub fn new(lifetime: Duration) -> Self {
        Self { lifetime, entries: Mutex::new(Entries { values: HashMap::new(), changes: 0 }) }
    }

    /// Taken before reading from the store: a change in this process between the read and
    /// [`RecentReads::keep`] makes `keep` drop what was read.
    pub fn before_read(&self) -> ReadStart {
        ReadStart(self.entries.lock().map_or(u64::MAX, |entries| entries.changes))
    }

    pub fn get(&self, key: &K) -> Option<V> {
        if self.lifetime.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (value, at) = entries.values.get(key)?;
        (at.elapsed() < self.lifetime).then(|| value.clone())
    }

    /// Keeps a value read from the store since `started`, unless this process changed
    /// something since.
    pub fn keep(&self, key: K, value: V, started: ReadStart) {
        if self.lifetime.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.changes != started.0 {
            return;
        }
        if entries.values.len() >= MAX_ENTRIES {
            entries.values.retain(|_, (_, at)| at.elapsed() < self.lifetime);
            if entries.values.len() >= MAX_ENTRIES {
                entries.values.clear();
            }
        }
        entries.values.insert(key, (value, Instant::now()));
    }

    /// Drops the entries `changed` picks, after a change in this process, so that it applies
    /// here from now on.
    pub fn forget(&self, changed: impl Fn(&K, &V) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.values.retain(|key, (value, _)| !changed(key, value));
            entries.changes += 1;
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.values.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_value_is_found_until_its_lifetime_ends() {
        let cache = RecentReads::new(Duration::from_millis(80));
        assert_eq!(cache.get(&1), None);
        cache.keep(1, "one", cache.before_read());
        assert_eq!(cache.get(&1), Some("one"));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(cache.get(&1), None, "past its lifetime the store decides again");
    }

    #[test]
    fn forgetting_drops_the_picked_entries_at_once() {
        let cache = RecentReads::new(Duration::from_secs(60));
        cache.keep(1, "one", cache.before_read());
        cache.keep(2, "two", cache.before_read());
        cache.forget(|key, _| *key == 1);
        assert_eq!((cache.get(&1), cache.get(&2)), (None, Some("two")), "only the picked entry is dropped");
    }

    #[test]
    fn a_value_read_before_a_change_here_is_not_kept_after_it() {
        let cache = RecentReads::new(Duration::from_secs(60));
        let started = cache.before_read();
        // The store answered; meanwhile this process changed what was read.
        cache.forget(|_, _| false);
        cache.keep(1, "stale", started);
        assert_eq!(cache.get(&1), None);
        cache.keep(1, "fresh", cache.before_read());
        assert_eq!(cache.get(&1), Some("fresh"), "a read that started after the change is kept");
    }

    #[test]
    fn a_zero_lifetime_keeps_nothing() {
        let cache = RecentReads::new(Duration::ZERO);
        cache.keep(1, "one", cache.before_read());
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn a_full_cache_starts_over_instead_of_growing() {
        let cache = RecentReads::new(Duration::from_secs(60));
        for key in 0..=MAX_ENTRIES {
            cache.keep(key, (), cache.before_read());
        }
        assert!(cache.len() <= MAX_ENTRIES, "{} entries", cache.len());
        assert_eq!(cache.get(&0), None, "the cache started over when it filled");
    }
}
