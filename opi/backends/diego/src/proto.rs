//! The BBS models, generated from `proto/models/*.proto` (package `models`)
//! by prost. Field numbers and types are cloudfoundry/bbs's, so these encode
//! and decode exactly what a real BBS sends and expects.

#![allow(missing_docs, clippy::all, rust_2018_idioms)]

include!(concat!(env!("OUT_DIR"), "/models.rs"));
