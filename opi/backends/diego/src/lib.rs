//! # opi-diego — the OPI backend for Diego's BBS
//!
//! Runs OPI's LRPs and tasks on a Diego deployment by speaking the BBS API:
//! protobuf bodies POSTed over mutual TLS, errors returned inside the 200
//! response as `Error{type,message}`, instance changes and crashes streamed
//! as server-sent events.
//!
//! - [`proto`]: the BBS models — the `bbs-models` crate, re-exported under
//!   the name this crate has always used.
//! - [`translate`]: pure OPI ⇄ BBS mapping (LRPs, updates, tasks, instances,
//!   crash events).
//! - [`client`]: [`BbsClient`], one method per BBS route.
//! - [`events`]: the SSE parser and the BBS event decoder.
//! - [`backend`]: [`DiegoScheduler`], the [`opi::Scheduler`] over a BBS.
//! - [`completions`]: task completions never lost and reported once per
//!   process, through stream reconnects and OPI restarts; a task leaves the
//!   BBS only once CC has its completion (the protocol and its guarantee).
//!
//! ```text
//!  OPI ──▶ DiegoScheduler ──translate──▶ BbsClient ──POST protobuf, mTLS──▶ BBS
//!              ▲                                                          │
//!              └──── EventBus ◀── events (SSE: crashes, task changes) ◀───┘
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod client;
pub mod completions;
pub mod error;
pub mod events;
pub mod translate;

/// The BBS models (the `bbs-models` crate).
pub use bbs_models as proto;

pub use backend::{DEFAULT_DOMAIN_TTL, DiegoConfig, DiegoScheduler};
pub use client::{BbsClient, TlsPem};
pub use error::DiegoError;
