//! # OPI — the Orchestrator Provider Interface
//!
//! One declarative API for long-running processes (LRPs) and one-off tasks,
//! spoken by Cloud Controller (the Eirini-compatible HTTP API) and implemented
//! by scheduler backends (Kubernetes, Diego, local processes — or yours).
//!
//! - [`model`]: the wire bodies CC sends ([`model::wire`]), their validation
//!   ([`model::validate`]) and the validated domain types backends receive.
//! - [`Scheduler`]: the whole contract a backend implements; its doc comments
//!   are the spec.
//! - [`http`]: the axum server serving every OPI route over any [`Scheduler`],
//!   and [`http::OpiClient`], a reqwest client for the same API.
//! - [`forward`]: delivers backend events (crashes, task completions) to
//!   Cloud Controller's callbacks, retrying through CC outages.
//! - [`memory`]: the in-memory backend, the executable specification.
//! - [`routing`]: [`routing::RouteSource`], the endpoints of ready instances
//!   that routers (local Host-header router, gorouter via NATS) publish.
//! - `conformance` (feature `conformance`): the suite every backend must pass.
//!
//! ```text
//!  Cloud Controller ──HTTP/JSON──▶ http::router ──validate──▶ dyn Scheduler ──▶ K8s / BBS / processes
//!         ▲                                                        │ events()
//!         └──────────────── forward::Forwarder ◀────────────────────┘
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod events;
pub mod forward;
pub mod http;
pub mod memory;
pub mod model;
pub mod routing;
pub mod scheduler;
pub mod service;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::Error;
pub use scheduler::Scheduler;
