//! [`Placements`]: where the backend's StatefulSets and space namespaces
//! are, so that a desire needs no cluster-wide LIST (pure: no I/O).
//!
//! Two sources feed it:
//!
//! - **Watches** ([`crate::watch::statefulsets`], [`crate::watch::namespaces`]):
//!   every StatefulSet in Cube's scope (Cube's own *and* others, so the
//!   collision check sees what a GET would: a name held by another process
//!   guid or by a StatefulSet Cube did not write) and every namespace
//!   labelled with a space guid. A relist (`Init…InitDone`) updates entries
//!   in place and drops the ones not listed, so it never doubles memory.
//! - **This process's own writes** (*reservations*): a name chosen for a new
//!   process (or a namespace applied for a space) is recorded before it is
//!   written and kept until the watch shows that object, so a lookup right
//!   after a write — before the watch caught up — still finds it, and two
//!   concurrent desires can never pick the same name for two guids.
//!
//! Lookups answer `None` until the watches have synced; the backend then asks
//! the apiserver, as it did before it had this index. After a restart the
//! index is rebuilt from the watches: nothing here is state Cube cannot
//! rebuild. A stale entry is harmless by construction: a found location is
//! always read back with a GET (and a miss there falls back to a LIST), and a
//! stale owner only makes a new process take its hashed collision name.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::names;

/// A StatefulSet's namespace and name.
pub type Location = (String, String);

/// The index; shared by the backend and its watch loops.
#[derive(Debug, Default)]
pub struct Placements {
    sets_synced: AtomicBool,
    spaces_synced: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every StatefulSet in scope → the process guid it carries (`None`
    /// for one Cube did not write).
    owners: Relisted<Location, Option<String>>,
    /// Process guid → its StatefulSet, for the entries of `owners`.
    by_guid: HashMap<String, Location>,
    /// Names this process chose for new processes, not seen by the watch yet.
    reserved: HashMap<Location, String>,
    /// The same, by process guid.
    reserved_by_guid: HashMap<String, Location>,
    /// Space guid label value → namespace name.
    spaces: Relisted<String, String>,
    /// Namespaces this process applied, not seen by the watch yet.
    spaces_applied: HashMap<String, String>,
}

/// A map kept equal to a watched collection across relists.
#[derive(Debug)]
struct Relisted<K, V> {
    map: HashMap<K, V>,
    /// Keys seen since the relist began, while one is under way.
    listed: Option<HashSet<K>>,
}

impl<K, V> Default for Relisted<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            listed: None,
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> Relisted<K, V> {
    fn begin(&mut self) {
        self.listed = Some(HashSet::new());
    }

    fn listed(&mut self, key: K, value: V) -> Option<V> {
        if let Some(listed) = &mut self.listed {
            listed.insert(key.clone());
        }
        self.map.insert(key, value)
    }

    /// Ends a relist; returns the entries that were not listed again.
    fn end(&mut self) -> Vec<(K, V)> {
        let Some(listed) = self.listed.take() else {
            return Vec::new();
        };
        let gone: Vec<K> = self
            .map
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|k| self.map.remove(&k).map(|v| (k, v)))
            .collect()
    }
}

/// What the index knows about a process guid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// The index is synced and has no StatefulSet for it.
    Absent,
    /// Its StatefulSet is (or was, a moment ago) here.
    At(Location),
}

impl Placements {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation completes under the lock; a panic cannot leave a
        // half-updated index.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the StatefulSet watch has listed everything once.
    pub fn statefulsets_synced(&self) -> bool {
        self.sets_synced.load(Ordering::SeqCst)
    }

    /// Whether the namespace watch has listed everything once.
    pub fn namespaces_synced(&self) -> bool {
        self.spaces_synced.load(Ordering::SeqCst)
    }

    /// Marks the namespace index synced without a watch (one fixed
    /// namespace: there is nothing to look up).
    pub fn no_namespaces_to_watch(&self) {
        self.spaces_synced.store(true, Ordering::SeqCst);
    }

    // ---- StatefulSets ----------------------------------------------------

    /// Where process `guid`'s StatefulSet is; `None` when not synced yet.
    pub fn statefulset(&self, guid: &str) -> Option<Known> {
        if !self.statefulsets_synced() {
            return None;
        }
        let inner = self.lock();
        let found = inner
            .reserved_by_guid
            .get(guid)
            .or_else(|| inner.by_guid.get(guid));
        Some(found.map_or(Known::Absent, |at| Known::At(at.clone())))
    }

    /// The StatefulSet name for new process `guid` in `namespace`, reserved
    /// for it: the plain name unless another guid (or a StatefulSet Cube did
    /// not write) holds it, else the hashed collision name. `None` when not
    /// synced yet.
    pub fn reserve_name(
        &self,
        namespace: &str,
        app_name: &str,
        process_type: &str,
        guid: &str,
    ) -> Option<String> {
        if !self.statefulsets_synced() {
            return None;
        }
        let mut inner = self.lock();
        let plain = names::statefulset_name(app_name, process_type, guid);
        let key = (namespace.to_owned(), plain);
        let owner = inner
            .reserved
            .get(&key)
            .map(|g| Some(g.as_str()))
            .or_else(|| inner.owners.map.get(&key).map(Option::as_deref));
        let name = match owner {
            Some(owner) if owner != Some(guid) => {
                names::statefulset_name_on_collision(app_name, process_type, guid)
            }
            _ => key.1,
        };
        inner.reserve(namespace, &name, guid);
        Some(name)
    }

    /// Records that this process wrote process `guid`'s StatefulSet at
    /// `namespace`/`name` (a name it chose without the index).
    pub fn written(&self, namespace: &str, name: &str, guid: &str) {
        self.lock().reserve(namespace, name, guid);
    }

    /// Forgets process `guid`'s StatefulSet: it was deleted, or a lookup
    /// found it gone.
    pub fn forget(&self, guid: &str) {
        let mut inner = self.lock();
        if let Some(at) = inner.reserved_by_guid.remove(guid) {
            inner.reserved.remove(&at);
        }
        if let Some(at) = inner.by_guid.remove(guid) {
            inner.owners.map.remove(&at);
        }
    }

    /// A relist of StatefulSets begins.
    pub fn statefulsets_relisting(&self) {
        self.lock().owners.begin();
    }

    /// The watch shows a StatefulSet (listed or changed).
    pub fn statefulset_seen(&self, at: Location, guid: Option<String>) {
        let mut inner = self.lock();
        if let Some(guid) = &guid
            && inner.reserved.get(&at) == Some(guid)
        {
            inner.reserved.remove(&at);
            inner.reserved_by_guid.remove(guid);
        }
        if let Some(guid) = &guid {
            inner.by_guid.insert(guid.clone(), at.clone());
        }
        if let Some(Some(old)) = inner.owners.listed(at.clone(), guid.clone())
            && guid.as_ref() != Some(&old)
        {
            inner.unindex(&old, &at);
        }
    }

    /// The watch shows a StatefulSet deleted.
    pub fn statefulset_gone(&self, at: &Location) {
        let mut inner = self.lock();
        if let Some(Some(guid)) = inner.owners.map.remove(at) {
            inner.unindex(&guid, at);
        }
    }

    /// A relist of StatefulSets ended: drops what was not listed again and
    /// marks the index synced.
    pub fn statefulsets_listed(&self) {
        let mut inner = self.lock();
        for (at, guid) in inner.owners.end() {
            if let Some(guid) = guid {
                inner.unindex(&guid, &at);
            }
        }
        drop(inner);
        self.sets_synced.store(true, Ordering::SeqCst);
    }

    // ---- namespaces ------------------------------------------------------

    /// The namespace of the space whose guid label value is `space`;
    /// `Some(None)` when synced and unknown, `None` when not synced yet.
    pub fn namespace(&self, space: &str) -> Option<Option<String>> {
        if !self.namespaces_synced() {
            return None;
        }
        let inner = self.lock();
        Some(
            inner
                .spaces_applied
                .get(space)
                .or_else(|| inner.spaces.map.get(space))
                .cloned(),
        )
    }

    /// Records that this process applied namespace `name` for `space`.
    pub fn namespace_written(&self, space: &str, name: &str) {
        self.lock()
            .spaces_applied
            .insert(space.to_owned(), name.to_owned());
    }

    /// A relist of namespaces begins.
    pub fn namespaces_relisting(&self) {
        self.lock().spaces.begin();
    }

    /// The watch shows namespace `name` labelled with `space`.
    pub fn namespace_seen(&self, space: String, name: String) {
        let mut inner = self.lock();
        if inner.spaces_applied.get(&space) == Some(&name) {
            inner.spaces_applied.remove(&space);
        }
        inner.spaces.listed(space, name);
    }

    /// The watch shows namespace `name` deleted (or no longer labelled).
    pub fn namespace_gone(&self, name: &str) {
        self.lock().spaces.map.retain(|_, n| n != name);
    }

    /// A relist of namespaces ended.
    pub fn namespaces_listed(&self) {
        self.lock().spaces.end();
        self.spaces_synced.store(true, Ordering::SeqCst);
    }
}

impl Inner {
    fn reserve(&mut self, namespace: &str, name: &str, guid: &str) {
        let at = (namespace.to_owned(), name.to_owned());
        if let Some(old) = self.reserved_by_guid.insert(guid.to_owned(), at.clone())
            && old != at
        {
            self.reserved.remove(&old);
        }
        self.reserved.insert(at, guid.to_owned());
    }

    /// Drops `guid → at` from the guid index (unless it moved elsewhere).
    fn unindex(&mut self, guid: &str, at: &Location) {
        if self.by_guid.get(guid) == Some(at) {
            self.by_guid.remove(guid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ns: &str, name: &str) -> Location {
        (ns.to_owned(), name.to_owned())
    }

    fn synced() -> Placements {
        let index = Placements::default();
        index.statefulsets_relisting();
        index.statefulsets_listed();
        index
    }

    #[test]
    fn nothing_is_answered_before_the_first_list() {
        let index = Placements::default();
        assert_eq!(index.statefulset("g1"), None);
        assert_eq!(index.reserve_name("ns", "app", "web", "g1"), None);
        assert_eq!(index.namespace("s1"), None);
    }

    #[test]
    fn names_follow_the_collision_rules() {
        let index = synced();
        index.statefulset_seen(at("ns", "app"), Some("g1".into()));
        assert_eq!(index.statefulset("g1"), Some(Known::At(at("ns", "app"))));
        assert_eq!(index.statefulset("g2"), Some(Known::Absent));
        // Its own name stays its own; another guid gets the hashed name.
        assert_eq!(
            index.reserve_name("ns", "app", "web", "g1").as_deref(),
            Some("app")
        );
        let hashed = names::statefulset_name_on_collision("app", "web", "g2");
        assert_eq!(
            index.reserve_name("ns", "app", "web", "g2"),
            Some(hashed.clone())
        );
        // A StatefulSet Cube did not write is a collision too.
        index.statefulset_seen(at("ns", "db"), None);
        assert_ne!(
            index.reserve_name("ns", "db", "web", "g3").as_deref(),
            Some("db")
        );
        // Another namespace is free.
        assert_eq!(
            index.reserve_name("other", "app", "web", "g4").as_deref(),
            Some("app")
        );
        assert_eq!(index.statefulset("g2"), Some(Known::At(at("ns", &hashed))));
    }

    #[test]
    fn concurrent_new_processes_never_share_a_name() {
        let index = synced();
        let first = index.reserve_name("ns", "app", "web", "g1");
        let second = index.reserve_name("ns", "app", "web", "g2");
        assert_eq!(first.as_deref(), Some("app"));
        assert_ne!(first, second);
        // Seen by the watch: the reservation gives way to the watched entry.
        index.statefulset_seen(at("ns", "app"), Some("g1".into()));
        assert_eq!(index.statefulset("g1"), Some(Known::At(at("ns", "app"))));
    }

    #[test]
    fn a_relist_drops_what_is_gone_and_keeps_reservations() {
        let index = synced();
        index.statefulset_seen(at("ns", "a"), Some("g1".into()));
        index.statefulset_seen(at("ns", "b"), Some("g2".into()));
        index.written("ns", "c", "g3");
        index.statefulsets_relisting();
        index.statefulset_seen(at("ns", "a"), Some("g1".into()));
        index.statefulsets_listed();
        assert_eq!(index.statefulset("g1"), Some(Known::At(at("ns", "a"))));
        assert_eq!(index.statefulset("g2"), Some(Known::Absent));
        assert_eq!(index.statefulset("g3"), Some(Known::At(at("ns", "c"))));
    }

    #[test]
    fn deletes_and_forgets_free_the_name() {
        let index = synced();
        index.statefulset_seen(at("ns", "app"), Some("g1".into()));
        index.statefulset_gone(&at("ns", "app"));
        assert_eq!(index.statefulset("g1"), Some(Known::Absent));
        index.written("ns", "app", "g1");
        index.forget("g1");
        assert_eq!(
            index.reserve_name("ns", "app", "web", "g2").as_deref(),
            Some("app")
        );
    }

    #[test]
    fn namespaces_are_found_by_space_until_gone() {
        let index = Placements::default();
        index.namespaces_relisting();
        index.namespace_seen("s1".into(), "acme-dev".into());
        assert_eq!(index.namespace("s1"), None, "not synced yet");
        index.namespaces_listed();
        assert_eq!(index.namespace("s1"), Some(Some("acme-dev".into())));
        assert_eq!(index.namespace("s2"), Some(None));
        index.namespace_written("s2", "acme-prod");
        assert_eq!(index.namespace("s2"), Some(Some("acme-prod".into())));
        index.namespace_gone("acme-dev");
        assert_eq!(index.namespace("s1"), Some(None));
    }
}
