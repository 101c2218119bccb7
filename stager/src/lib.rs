//! St8ge: staging as one-off scheduler tasks.
//!
//! Cloud Controller sends `POST /stage/{staging_guid}`; St8ge turns the request
//! into an OPI task ([`recipe`], pure) whose steps run `cube stage
//! download|build|upload` one after another over a shared workspace (on
//! Kubernetes init containers, on the local backend processes, on Diego a
//! serial action), within St8ge's staging timeout ([`deadline`]). The steps
//! ([`step`]) download app bits and buildpacks
//! ([`zip`]), run the buildpack lifecycle ([`lifecycle`]), upload the droplet
//! to CC and the Registry, and report the outcome to St8ge, which forwards it
//! to CC's completion callback ([`report`]). St8ge keeps no state it needs
//! after a restart: CC's callback URL travels inside the URL the task reports
//! to. Docker apps stage
//! without a task: St8ge reads the image config ([`docker`]).
//!
//! See `stager/README.md` for routes, flags and the step contract.

#![warn(missing_docs)]
pub mod api;
mod error;
pub mod lifecycle;
pub mod logs;
pub mod output;
pub mod service;
pub mod zip;

pub use error::{Error, Result};
pub mod buildpacks;
pub mod docker;
pub mod recipe;
pub mod report;
pub mod step;

pub use service::{Config, run};
pub mod deadline;
pub mod peers;
