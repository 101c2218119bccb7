//! # bbs-models — Diego's BBS protobuf models
//!
//! Every message of cloudfoundry/bbs `models/*.proto` (package `models`),
//! transcribed by Cube into `proto/*.proto` — same message names, field
//! names, numbers, types and enums, so bytes written by a real BBS, by Cloud
//! Controller's Ruby models or by Cube decode the same on every side — and
//! compiled by prost at build time (`build.rs`, no `protoc` needed).
//!
//! - [`models`]: the generated types, also re-exported at the crate root
//!   (`bbs_models::DesiredLrp`, `bbs_models::desired_lrp::UpdateStrategy`).
//! - [`version`]: the BBS's down-conversion of a DesiredLRP or task to format
//!   V2, the form its deprecated `.r2` reads answer in.
//!
//! Pure: no I/O. Users are `opi-diego` (Cube as a BBS client), `testkit`'s
//! fake BBS, and Cube's own BBS front for Cloud Controller.

#![warn(missing_docs)]

pub mod version;

/// The generated models (prost), one struct per BBS message, nested enums
/// and oneofs in a module named after their message (`task::State`).
///
/// Maps are `BTreeMap`s, so encoding is deterministic: fields in number
/// order, map entries sorted by key.
pub mod models {
    #![allow(missing_docs, clippy::all, rust_2018_idioms)]

    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

pub use models::*;
