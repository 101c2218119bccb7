//! `registry`: an OCI distribution registry (spec v1.1) that also turns Cloud
//! Foundry droplets into runnable images.
//!
//! - [`digest`], [`name`], [`manifest`], [`droplet`]: the pure core — digest and
//!   name grammar, manifest parsing, droplet re-rooting — with no I/O.
//! - [`store`]: content-addressed storage over a [`store::Backend`] (filesystem or
//!   `object_store`), where nothing half-written is ever visible.
//! - [`api`]: the HTTP API (read, push, droplet import) as an axum router.
//! - [`auth`]: Basic users and bearer tokens, optional anonymous pull.
//! - [`rootfs`]: the base layers every droplet image starts from.
//! - [`gc`]: removal of blobs no manifest references.

#![warn(missing_docs)]
pub mod api;
pub mod auth;
pub mod config;
pub mod digest;
pub mod droplet;
pub mod error;
pub mod gc;
pub mod image;
pub mod manifest;
pub mod metrics;
pub mod name;
pub mod rootfs;
pub mod server;
pub mod store;

pub use config::Config;
pub use digest::Digest;
pub use error::Error;
pub use name::{Name, Reference, Tag};
pub use server::run;
