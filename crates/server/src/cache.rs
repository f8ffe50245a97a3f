//! Short-lived caches of what nearly every request reads: the caller behind an API key and
//! the company's custom field definitions.
//!
//! An entry lives at most [`TTL`], so a key revoked or a field changed by another process
//! (the admin CLI, another server on the same PostgreSQL) takes effect within a second, as
//! docs/reference.md#admin-commands promises; changes made through this process drop the entry at once. Correctness never
//! rests on a cached definition: a value written for a field deleted meanwhile fails its
//! foreign key in the database.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an entry is trusted.
const TTL: Duration = Duration::from_secs(1);

/// More entries than this and the cache starts over, so no input can make it grow unbounded.
const MAX_ENTRIES: usize = 10_000;

/// A map whose entries expire after [`TTL`].
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// The fresh value for `key`, if any.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(stored, _)| stored.elapsed() < TTL)
            .map(|(_, value)| value.clone())
    }

    /// Remembers `value` for `key`.
    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// The fresh value for `key`, or else what `fetch` gives, remembered. A failed fetch
    /// is not remembered.
    pub async fn get_or_fetch<E>(
        &self,
        key: K,
        fetch: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        let value = fetch.await?;
        self.insert(key, value.clone());
        Ok(value)
    }

    /// Forgets `key`, after a change made through this process.
    pub fn remove(&self, key: &K) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(key);
    }

    /// Forgets every entry, after a change whose key is not known here.
    pub fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_dropped() {
        let cache: TtlCache<u8, &str> = TtlCache::default();
        cache.insert(1, "one");
        assert_eq!(cache.get(&1), Some("one"));
        cache.remove(&1);
        assert_eq!(cache.get(&1), None);
        cache.insert(3, "three");
        cache.clear();
        assert_eq!(cache.get(&3), None);
        cache.insert(2, "two");
        std::thread::sleep(TTL + Duration::from_millis(50));
        assert_eq!(
            cache.get(&2),
            None,
            "an entry is trusted one second at most"
        );
    }
}
