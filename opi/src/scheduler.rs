//! The [`Scheduler`] trait: the whole contract a backend author implements.
//!
//! The OPI HTTP server validates every request before calling a backend, so
//! methods receive domain types ([`DesiredLrp`], [`Task`], …) that are already
//! in range. The conformance kit (`opi::conformance`, feature `conformance`)
//! checks every rule written here; run it from your backend's tests.
//!
//! # Rules every backend follows
//!
//! - **CC owns what should run; the scheduler owns what runs now.** A backend
//!   keeps no state it cannot rebuild from its scheduler: a new backend over
//!   the same scheduler (a restarted OPI) lists every LRP desired before, as
//!   last updated, and knows every task not yet completed (kit:
//!   `list_survives_restart`, through `conformance::Harness::restart`).
//! - **Idempotent writes.** Desiring the same LRP twice, or stopping one twice
//!   (the second answers [`Error::NotFound`]), leaves the scheduler as the first
//!   call did (kit: `desire_is_idempotent`, `stop_forgets`).
//! - **Transient failures are [`Error::Unavailable`]**, so callers retry; a
//!   half-finished write is completed by the next identical call (kit:
//!   `unreachable_scheduler_is_unavailable`, for backends whose harness can
//!   cut the scheduler off: `conformance::Harness::set_reachable`).
//! - **Secrets stay secret.** Environment values sit in redacting types
//!   ([`crate::model::Environment`], [`crate::model::EnvironmentVariable`]) whose
//!   `Debug` prints names only, and registry passwords in
//!   [`crate::model::RegistryCredentials`]; a backend never logs them (kit:
//!   `secrets_stay_secret`).
//!
//! # What a backend may add
//!
//! Defaults cover the optional parts: [`Scheduler::routes`] (where ready
//! instances listen, for routers), [`Scheduler::shutdown`] (stop what runs on
//! this machine), [`Scheduler::completion_delivered`] (forget a completion
//! once CC has it), [`Scheduler::ready`].
//!
//! # A backend, whole
//!
//! A backend that keeps LRPs in a map and runs nothing: copy it, then make
//! each method talk to your scheduler. Events go through an [`EventBus`].
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::sync::Mutex;
//!
//! use opi::events::EventBus;
//! use opi::model::{DesiredLrp, Instance, LrpId, LrpUpdate, SchedulingInfo, Task, TaskStatus};
//! use opi::{Error, Scheduler};
//!
//! #[derive(Default)]
//! struct Ledger {
//!     lrps: Mutex<BTreeMap<LrpId, DesiredLrp>>,
//!     events: EventBus,
//! }
//!
//! impl Ledger {
//!     fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<LrpId, DesiredLrp>) -> T) -> T {
//!         f(&mut self.lrps.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
//!     }
//! }
//!
//! fn unknown(id: &LrpId) -> Error {
//!     Error::NotFound(format!("LRP {id}"))
//! }
//!
//! #[async_trait::async_trait]
//! impl Scheduler for Ledger {
//!     async fn desire(&self, lrp: DesiredLrp) -> Result<(), Error> {
//!         self.with(|lrps| lrps.insert(lrp.id.clone(), lrp));
//!         Ok(())
//!     }
//!     async fn update(&self, id: &LrpId, update: LrpUpdate) -> Result<(), Error> {
//!         self.with(|lrps| {
//!             let lrp = lrps.get_mut(id).ok_or_else(|| unknown(id))?;
//!             if let Some(instances) = update.instances {
//!                 lrp.instances = instances;
//!             }
//!             if let Some(routes) = update.routes {
//!                 lrp.routes = routes;
//!             }
//!             if let Some(annotation) = update.annotation {
//!                 lrp.annotation = annotation;
//!             }
//!             Ok(())
//!         })
//!     }
//!     async fn get(&self, id: &LrpId) -> Result<DesiredLrp, Error> {
//!         self.with(|lrps| lrps.get(id).cloned().ok_or_else(|| unknown(id)))
//!     }
//!     async fn list(&self) -> Result<Vec<SchedulingInfo>, Error> {
//!         Ok(self.with(|lrps| lrps.values().map(DesiredLrp::scheduling_info).collect()))
//!     }
//!     async fn stop(&self, id: &LrpId) -> Result<(), Error> {
//!         self.with(|lrps| lrps.remove(id).map(drop).ok_or_else(|| unknown(id)))
//!     }
//!     async fn stop_instance(&self, id: &LrpId, _index: u32) -> Result<(), Error> {
//!         self.get(id).await.map(drop)
//!     }
//!     async fn instances(&self, id: &LrpId) -> Result<Vec<Instance>, Error> {
//!         self.get(id).await.map(|_| Vec::new())
//!     }
//!     async fn desire_task(&self, _task: Task) -> Result<(), Error> {
//!         Err(Error::NotSupported("tasks".into()))
//!     }
//!     async fn get_task(&self, guid: &str) -> Result<TaskStatus, Error> {
//!         Err(Error::NotFound(format!("task {guid}")))
//!     }
//!     async fn list_tasks(&self) -> Result<Vec<TaskStatus>, Error> {
//!         Ok(Vec::new())
//!     }
//!     async fn cancel_task(&self, guid: &str) -> Result<(), Error> {
//!         Err(Error::NotFound(format!("task {guid}")))
//!     }
//!     fn event_bus(&self) -> &EventBus {
//!         &self.events
//!     }
//! }
//! ```

use std::sync::Arc;

use futures::stream::BoxStream;

use crate::Error;
use crate::events::EventBus;
use crate::model::{
    DesiredLrp, Event, Instance, LrpId, LrpUpdate, SchedulingInfo, Task, TaskStatus,
};
use crate::routing::RouteSource;

/// A scheduler backend: Kubernetes, Diego, local processes, memory, or yours.
#[async_trait::async_trait]
pub trait Scheduler: Send + Sync + 'static {
    /// Makes `lrp` run with `lrp.instances` instances.
    ///
    /// - Idempotent: desiring an identical LRP again succeeds and changes nothing.
    /// - Desiring an existing `lrp.id` with different content replaces it (CC
    ///   re-desires when more than instances/routes changed).
    /// - A *new version* of a process (same `id.guid`, new `id.version`) is a new
    ///   LRP; the old version keeps running until it is stopped. Stopping the old
    ///   version afterwards must never stop the new one.
    /// - Errors: [`Error::NotSupported`] when this backend cannot run the
    ///   lifecycle (e.g. docker images on the local backend);
    ///   [`Error::Unavailable`] when the scheduler cannot be reached.
    async fn desire(&self, lrp: DesiredLrp) -> Result<(), Error>;

    /// Changes instances, routes and/or annotation of a desired LRP; fields that
    /// are `None` stay as they are. Nothing else about the LRP changes.
    ///
    /// Errors: [`Error::NotFound`] when `id` is not desired.
    async fn update(&self, id: &LrpId, update: LrpUpdate) -> Result<(), Error>;

    /// The desired LRP as last desired and updated.
    ///
    /// Errors: [`Error::NotFound`] when `id` is not desired.
    async fn get(&self, id: &LrpId) -> Result<DesiredLrp, Error>;

    /// Every desired LRP, one entry each, in no particular order. The
    /// `annotation` is the one last desired or updated, so the Sink can tell
    /// which LRPs changed in CC.
    async fn list(&self) -> Result<Vec<SchedulingInfo>, Error>;

    /// Stops all instances of `id` and forgets it: afterwards `get(id)` is
    /// [`Error::NotFound`] and `list` omits it. Other versions of the same
    /// process are untouched.
    ///
    /// Errors: [`Error::NotFound`] when `id` is not desired.
    async fn stop(&self, id: &LrpId) -> Result<(), Error>;

    /// Stops the instance at `index`; the scheduler brings a fresh one up in
    /// its place (the LRP's instance count does not change).
    ///
    /// Errors: [`Error::NotFound`] when `id` is not desired or `index` is not
    /// below its instance count.
    async fn stop_instance(&self, id: &LrpId, index: u32) -> Result<(), Error>;

    /// The instances the scheduler knows for `id`, sorted by index, each with a
    /// distinct index below the desired count. An instance is
    /// [`crate::model::InstanceState::Running`] only once its health check passes.
    /// Each carries its crashes, as Diego's ActualLRP does (CC shows them):
    /// after an instance crashed, its `crash_count` is at least 1 and its
    /// `crash_reason` describes the exit (the crash event's
    /// `exit_description`), also once it runs again; an instance that never
    /// crashed has `0` and an empty reason (kit: `crashes_are_counted`).
    ///
    /// Errors: [`Error::NotFound`] when `id` is not desired.
    async fn instances(&self, id: &LrpId) -> Result<Vec<Instance>, Error>;

    /// Runs `task` once. When it finishes, an [`Event::TaskCompleted`] is emitted.
    ///
    /// **Steps.** A task with [`Task::steps`] (always a docker lifecycle
    /// without a command) runs each step's command in that image, one after
    /// another in order, each starting only once the one before exited 0.
    /// The steps share one scratch directory, writable by the task's user,
    /// whose path every step finds in [`crate::model::WORKSPACE_ENV`]
    /// (`CUBE_WORKSPACE`), set by the backend over any value in the task's
    /// environment; nothing else is shared but the environment itself. The
    /// first step that fails ends the task: later steps never start, and the
    /// task completes as failed with a `failure_reason` from
    /// [`crate::model::step_failure_reason`] (`step <name> failed: …`). The
    /// task succeeds only when every step does. Cancelling stops the running
    /// step (and everything it started).
    ///
    /// Errors: [`Error::Conflict`] when a task with this guid exists already;
    /// [`Error::NotSupported`] for a lifecycle the backend cannot run.
    async fn desire_task(&self, task: Task) -> Result<(), Error>;

    /// A task and its state. Completed tasks may be forgotten after a while.
    ///
    /// Errors: [`Error::NotFound`] for an unknown guid.
    async fn get_task(&self, guid: &str) -> Result<TaskStatus, Error>;

    /// All known tasks, in no particular order.
    async fn list_tasks(&self) -> Result<Vec<TaskStatus>, Error>;

    /// Cancels a task: it stops running and completes as failed with reason
    /// `cancelled`, which is reported through [`Event::TaskCompleted`].
    ///
    /// Errors: [`Error::NotFound`] for an unknown guid.
    async fn cancel_task(&self, guid: &str) -> Result<(), Error>;

    /// Where the backend publishes its events: instance crashes (one per
    /// crash, with index, reason, exit status, crash count and timestamp) and
    /// task completions.
    fn event_bus(&self) -> &EventBus;

    /// A stream of events from now on. Each call returns an independent
    /// subscription; a slow subscriber may miss events but never blocks the
    /// backend. Default: a subscription to [`Scheduler::event_bus`].
    fn events(&self) -> BoxStream<'static, Event> {
        self.event_bus().subscribe()
    }

    /// CC has the completion of task `guid` (or refused it for good): OPI's
    /// forwarder calls this once per delivered completion. A backend that keeps
    /// completions until they are delivered (so a restart reports what CC
    /// never heard) may forget this one now. Default: nothing.
    async fn completion_delivered(&self, guid: &str) {
        let _ = guid;
    }

    /// Where ready instances listen, for routers (the local Host-header router,
    /// gorouter registration): a backend that knows returns itself. Default:
    /// `None` (the scheduler routes by itself, as Diego does).
    fn routes(self: Arc<Self>) -> Option<Arc<dyn RouteSource>> {
        None
    }

    /// Stops what the backend runs on this machine (instance and task
    /// processes), when the process that serves it stops; what is desired
    /// stays, so a new backend brings it back. Default: nothing.
    async fn shutdown(&self) {}

    /// `Ok` when the backend can serve requests (caches synced, scheduler
    /// reachable); otherwise why not. Drives `/readyz`.
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}
