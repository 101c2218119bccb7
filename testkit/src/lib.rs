//! # testkit — fakes and fixtures for Cube's tests (dev-dependency only)
//!
//! - [`apiserver`]: a fake Kubernetes apiserver behind [`kube::Client`],
//!   strict enough that a backend passing against it does the right thing on
//!   a real cluster, with failure injection and optional controllers.
//! - [`nats::NatsServer`]: a real `nats-server` on a free port (gorouter's bus).

#![warn(missing_docs)]

pub mod access;
pub mod apiserver;
pub mod bbs;
pub mod kubeconfig;
pub mod nats;

pub use apiserver::FakeApiServer;
