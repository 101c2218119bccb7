//! [`PodCache`]: the pod watch's cache — a [`PodRecord`] per LRP pod and
//! what crash detection remembers of it (pure: no I/O; fed by
//! [`crate::watch::pods`]).
//!
//! A relist (`Init…InitDone`) updates records in place and drops, at its
//! end, the ones it did not list again: memory never doubles, a pod deleted
//! while the watch was down disappears, and a pod listed again keeps its
//! [`Seen`], so its old crash is not reported twice.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use opi::model::{CrashEvent, Instance, LrpId};

use super::{PodRecord, PodView, Seen, Strings, instance, observe, record, serving};
use crate::routes::Changes;

/// Removals between two purges of unused interned strings.
const PURGE_EVERY: usize = 1024;

#[derive(Debug)]
struct Cached {
    record: PodRecord,
    seen: Seen,
    /// The listing this record was last seen in.
    generation: u32,
}

#[derive(Debug, Default)]
struct Pods {
    by_uid: HashMap<Arc<str>, Cached>,
    strings: Strings,
    generation: u32,
    removed: usize,
}

impl Pods {
    fn removed(&mut self, count: usize) {
        self.removed += count;
        if self.removed >= PURGE_EVERY {
            self.strings.purge();
            self.removed = 0;
        }
    }
}

/// The cache; shared by the backend and the pod watch.
#[derive(Debug)]
pub struct PodCache {
    inner: RwLock<Pods>,
    changes: Changes,
}

impl PodCache {
    /// An empty cache that bumps `changes` whenever a pod starts or stops
    /// serving, or a serving pod's IP, ports or identity change.
    pub fn new(changes: Changes) -> Self {
        Self {
            inner: RwLock::new(Pods::default()),
            changes,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Pods> {
        // Every mutation completes under the lock.
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Pods> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A relist began.
    pub fn relisting(&self) {
        let mut pods = self.write();
        pods.generation = pods.generation.wrapping_add(1);
    }

    /// A pod was listed (`listing`) or changed. Returns its crash, if it
    /// shows one not reported before. A pod first met while listing may
    /// show a crash from before Cube started: that is remembered, not
    /// reported.
    pub fn apply(&self, pod: &PodView, listing: bool) -> Option<CrashEvent> {
        let mut pods = self.write();
        let next = record(pod, &mut pods.strings);
        let generation = pods.generation;
        let previous = pods.by_uid.get(&next.uid);
        let report = !listing || previous.is_some();
        let (seen, crash) = observe(previous.map(|c| &c.seen), &next, report);
        let changed = previous.and_then(|c| serving(&c.record)) != serving(&next);
        pods.by_uid.insert(
            next.uid.clone(),
            Cached {
                record: next,
                seen,
                generation,
            },
        );
        drop(pods);
        if changed {
            self.changes.bump();
        }
        crash
    }

    /// A relist ended: forgets the pods it did not list again.
    pub fn listed(&self) {
        let mut pods = self.write();
        let generation = pods.generation;
        let before = pods.by_uid.len();
        let mut was_serving = false;
        pods.by_uid.retain(|_, c| {
            let keep = c.generation == generation;
            was_serving |= !keep && serving(&c.record).is_some();
            keep
        });
        if pods.by_uid.len() != before {
            pods.strings.purge();
        }
        pods.removed = 0;
        drop(pods);
        if was_serving {
            self.changes.bump();
        }
    }

    /// A pod was deleted.
    pub fn delete(&self, pod: &PodView) {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let mut pods = self.write();
        let Some(gone) = pods.by_uid.remove(uid) else {
            return;
        };
        pods.removed(1);
        drop(pods);
        if serving(&gone.record).is_some() {
            self.changes.bump();
        }
    }

    /// The instances of `id` in `namespace` (unsorted; a pod being deleted
    /// is none).
    pub fn instances(&self, namespace: &str, id: &LrpId) -> Vec<Instance> {
        self.read()
            .by_uid
            .values()
            .map(|c| &c.record)
            .filter(|r| &*r.namespace == namespace)
            .filter(|r| r.process.as_ref().is_some_and(|p| p.is(id)))
            .filter_map(instance)
            .collect()
    }

    /// Calls `f` with every record.
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &PodRecord>) -> R) -> R {
        let pods = self.read();
        f(&mut pods.by_uid.values().map(|c| &c.record))
    }

    /// How many pods are cached.
    pub fn len(&self) -> usize {
        self.read().by_uid.len()
    }

    /// Whether no pod is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
