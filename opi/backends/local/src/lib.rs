//! `opi-local`: an OPI backend that runs each instance as a child process on
//! this machine — the scheduler behind `cube up`.
//!
//! - Each droplet is fetched once (from Cube's registry, or files) and
//!   unpacked atomically under `<root>/droplets/<guid>-<hash>/`
//!   ([`droplet`]); every instance and task of that droplet runs from it.
//! - Each instance is supervised by its own task ([`supervisor`]): it gets a
//!   free `PORT`, `CF_INSTANCE_INDEX`, `CF_INSTANCE_GUID`, `VCAP_APPLICATION`
//!   and `HOME`, its `profile.d` scripts are sourced, and it is `RUNNING` only
//!   once its health check (port, http or process) passes. Crashes are reported
//!   and restarted with Diego's policy ([`restart`]).
//! - Desired LRPs are persisted atomically under `<root>/lrps/` ([`store`]); on
//!   start the backend reloads them and brings their instances back.
//! - Docker-image LRPs are refused with [`opi::Error::NotSupported`]: there is
//!   no container runtime here. Tasks whose docker image equals the configured
//!   `host_exec_image` run their command directly on the host (St8ge uses this
//!   for staging on the local backend).

#![warn(missing_docs)]
mod backend;
pub mod droplet;
mod error;
pub mod health;
pub mod orphans;
pub mod process;
pub mod restart;
pub mod router;
pub mod store;
mod supervisor;
mod task;

pub use backend::{LocalConfig, LocalScheduler};
pub use error::Error;
