//! [`RefCache`]: tags and manifest revisions in memory.
//!
//! A manifest GET by tag reads two small objects before the manifest itself
//! (the tag, then the revision's media type); on the filesystem backend each
//! is a trip through the blocking pool, which was most of a manifest GET's
//! cost (futex wake-ups and context switches, not the reads). References are
//! written only through [`Store`](super::Store) by this process — the
//! Registry runs one replica per store, and gc deletes blobs and layer links,
//! never references — so every write and delete here invalidates its key,
//! and a cached reference is what the backend holds.
//!
//! A read that raced a write must not put the old value back: reads note the
//! generation before going to the backend, every invalidation bumps it, and
//! an insert with an older generation is dropped.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

/// References kept at most; past that the cache starts over (references are
/// tens of bytes; 65,536 of them are a few MiB).
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug, Default)]
struct Refs {
    /// Backend key → its content.
    entries: HashMap<String, Bytes>,
    /// Bumped by every invalidation.
    generation: u64,
}

/// The cache of reference objects, keyed by their backend key.
#[derive(Debug, Default)]
pub(crate) struct RefCache {
    inner: Mutex<Refs>,
}

impl RefCache {
    fn lock(&self) -> MutexGuard<'_, Refs> {
        // Every mutation completes under the lock.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached content of `key`, or the generation to pass to
    /// [`insert`](Self::insert) after reading it from the backend.
    pub(crate) fn get(&self, key: &str) -> Result<Bytes, u64> {
        let refs = self.lock();
        refs.entries.get(key).cloned().ok_or(refs.generation)
    }

    /// Keeps `content` of `key`, read from the backend at `generation`,
    /// unless a write or delete happened since.
    pub(crate) fn insert(&self, key: &str, content: Bytes, generation: u64) {
        let mut refs = self.lock();
        if refs.generation != generation {
            return;
        }
        if refs.entries.len() >= MAX_ENTRIES {
            refs.entries.clear();
        }
        refs.entries.insert(key.to_owned(), content);
    }

    /// Forgets `key`: call after writing or deleting it (whether that
    /// succeeded or not).
    pub(crate) fn invalidate(&self, key: &str) {
        let mut refs = self.lock();
        refs.generation += 1;
        refs.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = RefCache::default();
        let Err(generation) = cache.get("tags/v1") else {
            panic!("empty cache answered");
        };
        // A write lands between the backend read and the insert.
        cache.invalidate("tags/v1");
        cache.insert("tags/v1", Bytes::from_static(b"old"), generation);
        assert!(cache.get("tags/v1").is_err(), "a stale read was cached");

        let Err(generation) = cache.get("tags/v1") else {
            panic!("empty cache answered");
        };
        cache.insert("tags/v1", Bytes::from_static(b"new"), generation);
        assert_eq!(cache.get("tags/v1").ok(), Some(Bytes::from_static(b"new")));
        cache.invalidate("tags/v1");
        assert!(cache.get("tags/v1").is_err());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = RefCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            let key = format!("tags/{i}");
            let Err(generation) = cache.get(&key) else {
                panic!("{key} cached before it was read");
            };
            cache.insert(&key, Bytes::from_static(b"d"), generation);
        }
        assert!(cache.lock().entries.len() <= MAX_ENTRIES);
    }
}
