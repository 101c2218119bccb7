//! The fake apiserver's storage: objects, resource versions, the event log
//! watches replay from, and the semantics of every write (create, replace,
//! patch, server-side apply, delete with garbage collection).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::resources::{self, Kind};
use super::selector::{FieldSelector, LabelSelector};
use super::{apply, routing, validate};

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Its kind's plural.
    pub plural: &'static str,
    /// Its namespace (`""` for cluster-scoped kinds).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted.
    Deleted,
}

/// One committed change, as watches see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resource version of the change.
    pub rv: u64,
    /// Which object.
    pub key: Key,
    /// What happened.
    pub kind: ChangeKind,
    /// The object after (for deletes: its last state).
    pub object: Value,
    /// The object before, for modifications.
    pub old: Option<Value>,
}

/// How a patch body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386 JSON merge patch.
    Merge,
    /// RFC 6902 JSON patch.
    Json,
    /// Server-side apply.
    Apply,
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `force` (apply only).
    pub force: bool,
    /// Whether the write targets the `status` subresource.
    pub status: bool,
}

type Result<T> = std::result::Result<T, ApiError>;

/// A subscription to committed changes.
pub type Subscription = broadcast::Receiver<Arc<Change>>;

/// The objects and their history.
pub struct Store {
    rv: u64,
    uids: u64,
    objects: BTreeMap<Key, Value>,
    applied: HashMap<(Key, String), Value>,
    log: VecDeque<Arc<Change>>,
    log_capacity: usize,
    /// Watches must start at or after this resource version.
    oldest_watchable: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

/// Unix seconds now as Kubernetes' RFC 3339 time.
pub fn now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let seconds = i64::try_from(seconds).unwrap_or(0);
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn metadata_mut(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object)
        && let Some(map) = object.as_object_mut()
    {
        map.insert("metadata".into(), json!({}));
    }
    match object.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(meta) => meta,
        None => unreachable_metadata(),
    }
}

#[allow(clippy::panic)]
fn unreachable_metadata() -> ! {
    panic!("objects are JSON objects with metadata (checked at the edge)")
}

/// The labels of an object.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an object matches both selectors.
pub fn selected(object: &Value, key: &Key, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    labels.matches(&labels_of(object)) && fields.matches(&key.name, &key.namespace)
}

/// `object` without the fields the server owns, for no-op detection.
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
        meta.remove("generation");
    }
    object
}

impl Store {
    /// An empty store keeping the last `log_capacity` changes for watches,
    /// with the `default` namespace.
    pub fn new(log_capacity: usize) -> Self {
        // Live watchers more than this many changes behind get 410 Gone, as
        // a real apiserver drops watchers that cannot keep up. Each queued
        // change holds whole objects, so the queue follows the change log's
        // size (the soak's memory figure would otherwise include the fake's
        // queue filling up).
        let (changes, _) = broadcast::channel(log_capacity.clamp(64, 4096));
        let mut store = Self {
            rv: 0,
            uids: 0,
            objects: BTreeMap::new(),
            applied: HashMap::new(),
            log: VecDeque::new(),
            log_capacity: log_capacity.max(1),
            oldest_watchable: 0,
            changes,
        };
        let default =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
        if let Some(kind) = resources::by_plural("namespaces") {
            let _ = store.create(kind, "", default, &WriteOptions::default());
        }
        store
    }

    /// The current resource version.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Forgets the event log: watches from any earlier resource version get
    /// 410 Gone (as after an etcd compaction).
    pub fn compact(&mut self) {
        self.log.clear();
        self.oldest_watchable = self.rv;
    }

    /// The changes after `rv` still in the log and a subscription to later
    /// ones, or 410 Gone when `rv` is older than the log.
    pub fn watch_from(&self, rv: u64) -> Result<(Vec<Arc<Change>>, Subscription)> {
        if rv < self.oldest_watchable {
            return Err(ApiError::new(
                410,
                "Expired",
                format!("too old resource version: {rv} ({})", self.oldest_watchable),
            ));
        }
        let replay = self.log.iter().filter(|c| c.rv > rv).cloned().collect();
        Ok((replay, self.changes.subscribe()))
    }

    /// A subscription to changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    fn key(kind: &Kind, namespace: &str, name: &str) -> Key {
        Key {
            plural: kind.plural,
            namespace: if kind.namespaced {
                namespace.to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }

    /// One object.
    pub fn get(&self, kind: &Kind, namespace: &str, name: &str) -> Result<Value> {
        self.objects
            .get(&Self::key(kind, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&kind.qualified(), name))
    }

    /// Whether the object exists (without copying it).
    pub fn contains(&self, kind: &Kind, namespace: &str, name: &str) -> bool {
        self.objects.contains_key(&Self::key(kind, namespace, name))
    }

    /// Objects of `kind` (in `namespace`, or all) by reference, in key order:
    /// what the controllers read on every pass without copying the store.
    pub fn objects<'a>(
        &'a self,
        kind: &Kind,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        let plural = kind.plural;
        let start = Key {
            plural,
            namespace: namespace.unwrap_or_default().to_owned(),
            name: String::new(),
        };
        self.objects.range(start..).take_while(move |(key, _)| {
            key.plural == plural && namespace.is_none_or(|ns| key.namespace == ns)
        })
    }

    /// Objects of `kind` (in `namespace`, or all) matching the selectors, in
    /// key order, and the resource version they are current at.
    pub fn list(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<(Key, Value)>, u64) {
        let items = self
            .objects(kind, namespace)
            .filter(|(key, object)| selected(object, key, labels, fields))
            .map(|(key, object)| (key.clone(), object.clone()))
            .collect();
        (items, self.rv)
    }

    fn commit(&mut self, key: Key, kind: ChangeKind, object: Value, old: Option<Value>) {
        let change = Arc::new(Change {
            rv: self.rv,
            key: key.clone(),
            kind,
            object: object.clone(),
            old,
        });
        match kind {
            ChangeKind::Deleted => {
                self.objects.remove(&key);
                self.applied.retain(|(k, _), _| k != &key);
            }
            _ => {
                self.objects.insert(key, object);
            }
        }
        self.log.push_back(change.clone());
        while self.log.len() > self.log_capacity {
            if let Some(dropped) = self.log.pop_front() {
                self.oldest_watchable = dropped.rv;
            }
        }
        // No receivers is fine.
        let _ = self.changes.send(change);
    }

    fn check_body(kind: &Kind, body: &Value) -> Result<()> {
        if !body.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        if let Some(api_version) = body.get("apiVersion").and_then(Value::as_str)
            && api_version != kind.api_version()
        {
            return Err(ApiError::bad_request(format!(
                "apiVersion {api_version:?} does not match the URL's {:?}",
                kind.api_version()
            )));
        }
        if let Some(k) = body.get("kind").and_then(Value::as_str)
            && k != kind.kind
        {
            return Err(ApiError::bad_request(format!(
                "kind {k:?} does not match the URL's {:?}",
                kind.kind
            )));
        }
        Ok(())
    }

    fn check_namespace(&self, kind: &Kind, namespace: &str, body: &Value) -> Result<()> {
        if !kind.namespaced {
            return Ok(());
        }
        if let Some(ns) = str_at(body, &["metadata", "namespace"])
            && !ns.is_empty()
            && ns != namespace
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if !self.objects.contains_key(&Key {
            plural: "namespaces",
            namespace: String::new(),
            name: namespace.to_owned(),
        }) {
            return Err(ApiError::not_found("namespaces", namespace));
        }
        Ok(())
    }

    /// Creates an object (POST).
    pub fn create(
        &mut self,
        kind: &Kind,
        namespace: &str,
        mut body: Value,
        options: &WriteOptions,
    ) -> Result<Value> {
        Self::check_body(kind, &body)?;
        self.check_namespace(kind, namespace, &body)?;
        {
            let meta = metadata_mut(&mut body);
            let has_name = meta
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !has_name && let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                let suffix = format!("{:05x}", (self.uids + 1) * 7919 % 0xfffff);
                let name = format!("{prefix}{suffix}");
                meta.insert("name".into(), Value::String(name));
            }
        }
        let name = str_at(&body, &["metadata", "name"])
            .unwrap_or("")
            .to_owned();
        let key = Self::key(kind, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", kind.qualified()),
            ));
        }
        if let Some(map) = body.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(kind.api_version()));
            map.insert("kind".into(), Value::String(kind.kind.into()));
            if kind.has_status {
                // Status is the controllers' to set.
                map.remove("status");
            }
        }
        self.prepare_for_create(kind, &mut body);
        let problems = validate::object(kind, &body);
        if !problems.is_empty() {
            return Err(ApiError::invalid(&kind.qualified_kind(), &name, &problems));
        }
        self.rv += 1;
        self.uids += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uids);
        let rv = self.rv;
        let meta = metadata_mut(&mut body);
        if kind.namespaced {
            meta.insert("namespace".into(), Value::String(namespace.to_owned()));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), Value::String(uid));
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        meta.insert("creationTimestamp".into(), Value::String(now()));
        if kind.has_generation {
            meta.insert("generation".into(), json!(1));
        }
        meta.remove("deletionTimestamp");
        meta.remove("managedFields");
        if let Some(manager) = &options.field_manager {
            self.applied.remove(&(key.clone(), manager.clone()));
        }
        self.commit(key, ChangeKind::Added, body.clone(), None);
        Ok(body)
    }

    /// Defaults the apiserver adds on create.
    fn prepare_for_create(&self, kind: &Kind, body: &mut Value) {
        match kind.plural {
            "services" => {
                // A cluster IP from 10.96.0.0/12, unique per object.
                let n = u32::try_from((self.uids + 1) % 0x000f_ffff).unwrap_or(1);
                routing::default_service(body, || {
                    std::net::Ipv4Addr::from(0x0a60_0000 + n).to_string()
                });
            }
            "pods" => {
                if let Some(map) = body.as_object_mut() {
                    map.insert("status".into(), json!({"phase": "Pending"}));
                }
            }
            "jobs" => {
                // The Job controller's selector, as the apiserver generates it.
                let uid_label = format!("{:012x}", self.uids + 1);
                let name = str_at(body, &["metadata", "name"]).unwrap_or("").to_owned();
                if let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
                    if !spec.contains_key("selector") {
                        spec.insert(
                            "selector".into(),
                            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid_label}}),
                        );
                    }
                    if let Some(template) = spec.get_mut("template").and_then(Value::as_object_mut)
                    {
                        let meta = template.entry("metadata").or_insert_with(|| json!({}));
                        if let Some(meta) = meta.as_object_mut() {
                            let labels = meta.entry("labels").or_insert_with(|| json!({}));
                            if let Some(labels) = labels.as_object_mut() {
                                labels.insert(
                                    "batch.kubernetes.io/controller-uid".into(),
                                    json!(uid_label),
                                );
                                labels.insert("batch.kubernetes.io/job-name".into(), json!(name));
                                labels.insert("controller-uid".into(), json!(uid_label));
                                labels.insert("job-name".into(), json!(name));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Replaces an object (PUT), or its status when `options.status`.
    pub fn replace(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Value> {
        Self::check_body(kind, &body)?;
        let body_name = str_at(&body, &["metadata", "name"]).unwrap_or("");
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let current = self.get(kind, namespace, name)?;
        if let Some(rv) = str_at(&body, &["metadata", "resourceVersion"]) {
            self.check_rv(kind, name, &current, rv)?;
        }
        self.write(kind, namespace, name, current, body, options)
    }

    fn check_rv(&self, kind: &Kind, name: &str, current: &Value, rv: &str) -> Result<()> {
        if !rv.is_empty() && Some(rv) != str_at(current, &["metadata", "resourceVersion"]) {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    kind.qualified()
                ),
            ));
        }
        Ok(())
    }

    /// Commits `proposed` as the new state of an existing object.
    fn write(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        current: Value,
        proposed: Value,
        options: &WriteOptions,
    ) -> Result<Value> {
        let mut next = if options.status {
            if !kind.has_status {
                return Err(ApiError::not_found(&kind.qualified(), name));
            }
            let mut next = current.clone();
            if let Some(map) = next.as_object_mut() {
                match proposed.get("status") {
                    Some(status) => map.insert("status".into(), status.clone()),
                    None => map.remove("status"),
                };
            }
            next
        } else {
            let mut next = proposed;
            if let Some(map) = next.as_object_mut() {
                map.insert("apiVersion".into(), Value::String(kind.api_version()));
                map.insert("kind".into(), Value::String(kind.kind.into()));
                if kind.has_status {
                    match current.get("status") {
                        Some(status) => map.insert("status".into(), status.clone()),
                        None => map.remove("status"),
                    };
                }
            }
            // Server-owned metadata stays.
            let keep: Vec<(String, Value)> = [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
            ]
            .iter()
            .filter_map(|k| Some(((*k).to_owned(), current.get("metadata")?.get(*k)?.clone())))
            .collect();
            let meta = metadata_mut(&mut next);
            for k in [
                "namespace",
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
            ] {
                meta.remove(k);
            }
            for (k, v) in keep {
                meta.insert(k, v);
            }
            meta.remove("managedFields");
            let mut problems = Vec::new();
            if kind.plural == "services" {
                routing::update_service(&current, &mut next, &mut problems);
                routing::default_service(&mut next, String::new);
            }
            problems.extend(validate::object(kind, &next));
            problems.extend(validate::update(kind, &current, &next));
            if !problems.is_empty() {
                return Err(ApiError::invalid(&kind.qualified_kind(), name, &problems));
            }
            next
        };
        if comparable(&next) == comparable(&current) {
            return Ok(current);
        }
        self.rv += 1;
        let rv = self.rv;
        let spec_changed = current.get("spec") != next.get("spec");
        let meta = metadata_mut(&mut next);
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        if kind.has_generation && spec_changed && !options.status {
            let generation = meta.get("generation").and_then(Value::as_i64).unwrap_or(1);
            meta.insert("generation".into(), json!(generation + 1));
        }
        let key = Self::key(kind, namespace, name);
        self.commit(key, ChangeKind::Modified, next.clone(), Some(current));
        Ok(next)
    }

    /// Patches an object: merge patch, JSON patch or server-side apply.
    pub fn patch(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Value> {
        match patch_type {
            PatchType::Merge => {
                let current = self.get(kind, namespace, name)?;
                if let Some(rv) = str_at(&body, &["metadata", "resourceVersion"]) {
                    self.check_rv(kind, name, &current, rv)?;
                }
                let mut next = current.clone();
                json_patch::merge(&mut next, &body);
                self.write(kind, namespace, name, current, next, options)
            }
            PatchType::Json => {
                let current = self.get(kind, namespace, name)?;
                let patch: json_patch::Patch = serde_json::from_value(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
                let mut next = current.clone();
                json_patch::patch(&mut next, &patch).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
                self.write(kind, namespace, name, current, next, options)
            }
            PatchType::Apply => self.apply(kind, namespace, name, body, options),
        }
    }

    fn apply(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Value> {
        let Some(manager) = options.field_manager.clone().filter(|m| !m.is_empty()) else {
            return Err(ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        };
        Self::check_body(kind, &body)?;
        if body.get("apiVersion").is_none() || body.get("kind").is_none() {
            return Err(ApiError::bad_request(
                "apply patches must name apiVersion and kind",
            ));
        }
        let body_name = str_at(&body, &["metadata", "name"]).unwrap_or("");
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let key = Self::key(kind, namespace, name);
        let result = match self.objects.get(&key).cloned() {
            None => {
                if options.status {
                    return Err(ApiError::not_found(&kind.qualified(), name));
                }
                self.create(kind, namespace, body.clone(), &WriteOptions::default())?
            }
            Some(current) => {
                if let Some(rv) = str_at(&body, &["metadata", "resourceVersion"]) {
                    self.check_rv(kind, name, &current, rv)?;
                }
                self.check_namespace(kind, namespace, &body)?;
                if !options.force {
                    let conflicts: Vec<String> = self
                        .applied
                        .iter()
                        .filter(|((k, m), _)| k == &key && m != &manager)
                        .flat_map(|((_, m), theirs)| {
                            apply::conflicts(&body, theirs)
                                .into_iter()
                                .map(move |path| format!("conflict with \"{m}\": {path}"))
                        })
                        .collect();
                    if !conflicts.is_empty() {
                        return Err(ApiError::new(
                            409,
                            "Conflict",
                            format!(
                                "Apply failed with {} conflict(s): {}",
                                conflicts.len(),
                                conflicts.join(", ")
                            ),
                        ));
                    }
                }
                let previous = self.applied.get(&(key.clone(), manager.clone()));
                let next = apply::apply(&current, previous, &body);
                self.write(kind, namespace, name, current, next, options)?
            }
        };
        if !options.status {
            self.applied.insert((key, manager), body);
        }
        Ok(result)
    }

    /// Deletes an object and (unless `orphan`) everything it owns; deleting a
    /// namespace deletes everything in it. `precondition` is a resource
    /// version the object must still have.
    pub fn delete(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        precondition: Option<&str>,
        orphan: bool,
    ) -> Result<Value> {
        let current = self.get(kind, namespace, name)?;
        if let Some(rv) = precondition {
            self.check_rv(kind, name, &current, rv)?;
        }
        if kind.plural == "namespaces" {
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| k.namespace == name && k.plural != "namespaces")
                .cloned()
                .collect();
            for key in inside {
                self.remove(key);
            }
        }
        let key = Self::key(kind, namespace, name);
        self.remove(key);
        if !orphan && let Some(uid) = str_at(&current, &["metadata", "uid"]) {
            self.collect_garbage(uid.to_owned());
        }
        Ok(current)
    }

    fn remove(&mut self, key: Key) {
        if let Some(object) = self.objects.get(&key).cloned() {
            self.rv += 1;
            self.commit(key, ChangeKind::Deleted, object, None);
        }
    }

    /// Deletes every object owned (transitively) by `uid`.
    fn collect_garbage(&mut self, uid: String) {
        let mut pending = vec![uid];
        while let Some(owner) = pending.pop() {
            let owned: Vec<(Key, Option<String>)> = self
                .objects
                .iter()
                .filter(|(_, object)| {
                    object
                        .get("metadata")
                        .and_then(|m| m.get("ownerReferences"))
                        .and_then(Value::as_array)
                        .is_some_and(|refs| {
                            refs.iter().any(|r| {
                                r.get("uid").and_then(Value::as_str) == Some(owner.as_str())
                            })
                        })
                })
                .map(|(key, object)| {
                    (
                        key.clone(),
                        str_at(object, &["metadata", "uid"]).map(str::to_owned),
                    )
                })
                .collect();
            for (key, uid) in owned {
                self.remove(key);
                pending.extend(uid);
            }
        }
    }
}

impl Store {
    /// Changes an object the way a controller with its own subresource
    /// would (e.g. the scheduler's binding sets `spec.nodeName`): no
    /// validation, but a new resource version and a watch event.
    pub fn mutate(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<Value> {
        let current = self.get(kind, namespace, name)?;
        let mut next = current.clone();
        change(&mut next);
        if comparable(&next) == comparable(&current) {
            return Ok(current);
        }
        self.rv += 1;
        let rv = self.rv;
        metadata_mut(&mut next).insert("resourceVersion".into(), Value::String(rv.to_string()));
        let key = Self::key(kind, namespace, name);
        self.commit(key, ChangeKind::Modified, next.clone(), Some(current));
        Ok(next)
    }
}
