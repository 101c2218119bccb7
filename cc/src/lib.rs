//! Cloud Controller's internal APIs as Cube sees them.
//!
//! - [`model`]: serde types for the CC side of every contract — the bulk API
//!   (fingerprints, `DesireAppRequestFromCC`), the staging request CC sends to a
//!   stager and the completion it expects back, crash and task callbacks, the
//!   droplet upload job and where a droplet goes (cc-uploader or CC itself),
//!   and how CC reads OPI's instances answer (`model::lrp_instances`).
//!   Pure data, checked against fixtures of real payloads in `cc/testdata/`
//!   (each named after the CC commit it follows in `cc/testdata/README.md`).
//! - [`client`]: a reqwest client for those APIs (Basic auth, rustls TLS with an
//!   optional CA and client certificate, timeouts, retry with backoff on 5xx and
//!   connect errors only).
//! - [`sim`]: `cube cc-sim`, a simulator of exactly those APIs with persistent
//!   state, plus a small JSON API that `cube push` drives, and its client
//!   ([`sim::SimClient`]). The `cube push` family itself lives in the `cube`
//!   binary (`src/push/`).
//!
//! This crate stands alone: it does not depend on the `opi` crate, so the CC
//! contract is defined once, here, from CC's point of view.

#![warn(missing_docs)]
pub mod client;
mod error;
pub mod guid;
pub mod model;
pub mod sim;

pub use client::{Client, ClientConfig, RetryPolicy};
pub use error::{Error, Result};
