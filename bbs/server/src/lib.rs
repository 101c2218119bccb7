//! # bbs — Diego's BBS API for Cloud Controller, over Cube's schedulers
//!
//! `cube bbs` serves the routes today's Cloud Controller calls on Diego's
//! BBS (`diego.bbs.url`, mutual TLS) over any [`opi::Scheduler`] backend:
//! point CC at Cube and its apps run on Kubernetes, local processes or
//! another Diego, unchanged.
//!
//! ```text
//!  Cloud Controller ──POST protobuf, mTLS──▶ api::router ──translate──▶ dyn Scheduler ──▶ K8s / BBS / processes
//!        ▲      (desire, get, update, remove,        │ droplets: Registry import
//!        │       scheduling infos, actual LRPs,      │ tasks: stored here
//!        │       retire, tasks, domains)             ▼
//!        └──── crashes (opi::forward) ◀──── Scheduler::events()
//!        └──── task callbacks (tasks::callback)
//! ```
//!
//! - [`api`]: the routes, the protobuf envelope (errors inside HTTP 200
//!   responses, as the BBS answers), per-route metrics.
//! - [`translate`]: BBS models ⇄ OPI domain, pure.
//! - [`validate`]: the BBS's request validation, pure.
//! - [`domains`]: the domains' freshness (kept, never acted on).
//! - [`tasks`]: tasks accepted and stored, **not run yet** (a later issue),
//!   with the BBS's states, errors and completion callbacks.
//! - [`droplets`]: a buildpack LRP's droplet image imported into the
//!   Registry when desired.
//! - [`service`]: [`run`], the service around it all.
//! - [`Error`]: every failure as one BBS error type.
//!
//! Not yet: running BBS tasks; the `readiness_changed` and `rescheduling`
//! callbacks (only crashes are reported to CC); the event streams
//! (`/v1/events/…`, which only tps-watcher reads).

#![warn(missing_docs)]

pub mod api;
pub mod domains;
pub mod droplets;
pub mod error;
pub mod service;
pub mod tasks;
pub mod translate;
pub mod validate;

pub use error::Error;
pub use service::{Config, Transport, run};
