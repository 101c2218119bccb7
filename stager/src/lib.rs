//! St8ge: staging as one-off scheduler tasks.
//!
//! Cloud Controller sends `POST /stage/{staging_guid}`; St8ge turns the request
//! into an OPI task ([`recipe`], pure) that runs `cube stage run` (or, on
//! Kubernetes, a Job whose containers run `cube stage download|build|upload`,
//! [`k8s_job`]). The steps ([`step`]) download app bits and buildpacks
//! ([`zip`]), run the buildpack lifecycle ([`lifecycle`]), upload the droplet
//! to CC and the Registry, and report the outcome to St8ge, which forwards it
//! to CC's completion callback ([`report`]). St8ge keeps no state: CC's
//! callback URL travels inside the URL the task reports to. Docker apps stage
//! without a task: St8ge reads the image config ([`docker`]).
//!
//! See `stager/README.md` for routes, flags and the step contract.

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
pub mod k8s_job;
