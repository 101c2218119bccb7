//! [`BlobCache`]: hot blobs in memory, least recently used out first,
//! bounded by their total size.
//!
//! A blob served from memory costs one copy (into the socket) instead of
//! three hops (a read on the blocking pool into a buffer, then the copy into
//! the socket): what many kubelets pulling the same droplet layer at once
//! (an app scaling out) pay. Blobs are content-addressed, so an entry is
//! never stale; the caller checks that the blob still exists before asking.
//! Concurrent first requests for one blob read it once.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::{Digest, Error};

#[derive(Debug)]
struct Entry {
    blob: Arc<OnceCell<Bytes>>,
    /// Its place in the recency order.
    used_at: u64,
    /// Its size once read (0 while being read).
    size: u64,
}

#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<Digest, Entry>,
    /// Recency order: use tick → digest.
    order: BTreeMap<u64, Digest>,
    tick: u64,
    /// Bytes held by read entries.
    held: u64,
}

impl Lru {
    fn touch(&mut self, digest: &Digest) -> Option<Arc<OnceCell<Bytes>>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(digest)?;
        self.order.remove(&entry.used_at);
        entry.used_at = tick;
        self.order.insert(tick, digest.clone());
        Some(entry.blob.clone())
    }

    fn remove(&mut self, digest: &Digest) {
        if let Some(entry) = self.entries.remove(digest) {
            self.order.remove(&entry.used_at);
            self.held -= entry.size;
        }
    }
}

/// The cache; a capacity of 0 turns it off.
#[derive(Debug)]
pub struct BlobCache {
    capacity: u64,
    inner: Mutex<Lru>,
}

impl BlobCache {
    /// A cache holding at most `capacity` bytes of blobs.
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // Every mutation completes under the lock.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a blob of `size` bytes is kept: at most half the capacity,
    /// so one huge blob cannot evict everything else.
    pub fn admits(&self, size: u64) -> bool {
        size > 0 && size <= self.capacity / 2
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.lock().held
    }

    /// Blob `digest` of `size` bytes: from memory, or read with `read` (once,
    /// however many ask at the same time) and kept. A blob that `admits`
    /// refuses is read and not kept.
    pub async fn get_or_read<F, Fut>(
        &self,
        digest: &Digest,
        size: u64,
        read: F,
    ) -> Result<Bytes, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, Error>>,
    {
        if !self.admits(size) {
            return read().await;
        }
        let slot = {
            let mut lru = self.lock();
            match lru.touch(digest) {
                Some(slot) => slot,
                None => {
                    let slot = Arc::new(OnceCell::new());
                    lru.tick += 1;
                    let used_at = lru.tick;
                    lru.order.insert(used_at, digest.clone());
                    lru.entries.insert(
                        digest.clone(),
                        Entry {
                            blob: slot.clone(),
                            used_at,
                            size: 0,
                        },
                    );
                    slot
                }
            }
        };
        let mut filled = false;
        let result = slot
            .get_or_try_init(|| async {
                filled = true;
                read().await
            })
            .await
            .cloned();
        let mut lru = self.lock();
        match &result {
            Err(_) => {
                // Let the next request try again.
                if lru
                    .entries
                    .get(digest)
                    .is_some_and(|e| Arc::ptr_eq(&e.blob, &slot))
                {
                    lru.remove(digest);
                }
            }
            Ok(blob) if filled => {
                let size = blob.len() as u64;
                if let Some(entry) = lru
                    .entries
                    .get_mut(digest)
                    .filter(|e| Arc::ptr_eq(&e.blob, &slot))
                {
                    entry.size = size;
                    lru.held += size;
                }
                while lru.held > self.capacity {
                    let Some((_, oldest)) = lru.order.pop_first() else {
                        break;
                    };
                    if let Some(entry) = lru.entries.remove(&oldest) {
                        lru.held -= entry.size;
                    }
                }
            }
            Ok(_) => {}
        }
        result
    }
}

#[cfg(test)]
mod tests;
