//! Where a router may send traffic: the cf-router routes of each process
//! (from its StatefulSet's annotations, fed by [`crate::watch::statefulsets`])
//! joined with its ready pods (from the pod cache), as
//! [`opi::routing::Endpoint`]s.
//!
//! Routes are read from the StatefulSet, not the pod: a route update must
//! not touch the pod template (it would restart every instance), so pods do
//! not carry them. An old version's pods still running during a rolling
//! update serve the process's current routes, as on Diego.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use opi::model::Routes;
use tokio::sync::watch;

use crate::instances::{PodRecord, serving};
use crate::labels;

/// A counter bumped whenever the endpoints may have changed.
#[derive(Debug, Clone)]
pub struct Changes(Arc<watch::Sender<u64>>);

impl Default for Changes {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

impl Changes {
    /// Bumps the counter, waking every receiver.
    pub fn bump(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver of the counter.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    /// The counter now.
    pub fn current(&self) -> u64 {
        *self.0.borrow()
    }
}

/// The routes of one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessRoutes {
    /// The app guid.
    pub app_guid: String,
    /// Container port → the cf-router hostnames routed to it (sorted,
    /// without duplicates).
    pub hostnames: BTreeMap<u16, Vec<String>>,
}

/// The part of the LRP annotation the routes need.
#[derive(serde::Deserialize)]
struct AppOf {
    app_guid: String,
}

/// The process guid and routes a StatefulSet's annotations carry; `None`
/// for a StatefulSet Cube did not write.
pub fn of_statefulset(meta: &ObjectMeta) -> Option<(String, ProcessRoutes)> {
    let annotations = meta.annotations.as_ref()?;
    let guid = annotations.get(labels::PROCESS_GUID)?.clone();
    let app_guid = annotations
        .get(labels::LRP_SPEC)
        .and_then(|spec| serde_json::from_str::<AppOf>(spec).ok())
        .map(|app| app.app_guid)
        .unwrap_or_default();
    let routes: Routes = annotations
        .get(labels::ROUTES)
        .and_then(|routes| serde_json::from_str(routes).ok())
        .unwrap_or_default();
    Some((
        guid,
        ProcessRoutes {
            app_guid,
            hostnames: opi::routing::route_hostnames(&routes),
        },
    ))
}

/// The routes of every process with a StatefulSet; shared by the backend
/// and the StatefulSet watch. A relist (`Init…InitDone`) updates entries in
/// place and drops the ones not listed again.
#[derive(Debug)]
pub struct RouteTable {
    inner: Mutex<Table>,
    changes: Changes,
}

#[derive(Debug, Default)]
struct Table {
    by_guid: HashMap<String, (ProcessRoutes, u32)>,
    /// The current listing; entries of older ones are dropped when a relist ends.
    generation: u32,
}

impl RouteTable {
    /// An empty table that bumps `changes`.
    pub fn new(changes: Changes) -> Self {
        Self {
            inner: Mutex::new(Table::default()),
            changes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every mutation completes under the lock.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A relist began.
    pub fn relisting(&self) {
        let mut table = self.lock();
        table.generation = table.generation.wrapping_add(1);
    }

    /// A StatefulSet was listed or changed.
    pub fn seen(&self, meta: &ObjectMeta) {
        let Some((guid, routes)) = of_statefulset(meta) else {
            return;
        };
        let mut table = self.lock();
        let generation = table.generation;
        let changed = table
            .by_guid
            .insert(guid, (routes.clone(), generation))
            .is_none_or(|(old, _)| old != routes);
        if changed {
            self.changes.bump();
        }
    }

    /// A relist ended: forgets the processes not listed again.
    pub fn listed(&self) {
        let mut table = self.lock();
        let generation = table.generation;
        let before = table.by_guid.len();
        table.by_guid.retain(|_, (_, g)| *g == generation);
        if table.by_guid.len() != before {
            self.changes.bump();
        }
    }

    /// A StatefulSet was deleted.
    pub fn gone(&self, meta: &ObjectMeta) {
        let Some((guid, _)) = of_statefulset(meta) else {
            return;
        };
        if self.lock().by_guid.remove(&guid).is_some() {
            self.changes.bump();
        }
    }

    /// Calls `f` with the table (locked meanwhile).
    pub fn with<R>(&self, f: impl FnOnce(&Lookup<'_>) -> R) -> R {
        let table = self.lock();
        f(&Lookup(&table.by_guid))
    }
}

/// Read access to a [`RouteTable`], while it is locked.
#[derive(Debug)]
pub struct Lookup<'a>(&'a HashMap<String, (ProcessRoutes, u32)>);

impl Lookup<'_> {
    /// The routes of process `guid`.
    pub fn get(&self, guid: &str) -> Option<&ProcessRoutes> {
        self.0.get(guid).map(|(routes, _)| routes)
    }
}

/// One endpoint per routed port of a serving pod, for each pod of `pods`
/// whose process has routes: host = pod IP, port = container port, instance
/// guid = pod uid. Sorted.
pub fn endpoints<'a>(
    pods: impl IntoIterator<Item = &'a PodRecord>,
    routes: &Lookup<'_>,
) -> Vec<opi::routing::Endpoint> {
    let mut found = Vec::new();
    for pod in pods {
        let Some((process, index, ip, ports)) = serving(pod) else {
            continue;
        };
        let Some(routes) = routes.get(&process.guid) else {
            continue;
        };
        for port in ports {
            let Some(hostnames) = routes.hostnames.get(port) else {
                continue;
            };
            found.push(opi::routing::Endpoint {
                process_guid: process.id().process_guid(),
                app_guid: routes.app_guid.clone(),
                instance_guid: pod.uid.to_string(),
                index,
                host: ip.to_string(),
                port: *port,
                container_port: *port,
                hostnames: hostnames.clone(),
            });
        }
    }
    found.sort();
    found
}

impl opi::routing::RouteSource for crate::K8sScheduler {
    fn endpoints(&self) -> Vec<opi::routing::Endpoint> {
        self.routes
            .with(|routes| self.pods.with(|pods| endpoints(pods, routes)))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests;
