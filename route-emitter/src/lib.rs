//! `route-emitter`: tells Cloud Foundry's gorouter where apps run, the way
//! CF's own route-emitter does for Diego.
//!
//! For every ready instance a backend reports through
//! [`opi::routing::RouteSource`], it publishes `router.register` on NATS with
//! the instance's address and route hostnames; it repeats every registration
//! on an interval (gorouter prunes routes not repeated within 120 s), and
//! publishes `router.unregister` as soon as an instance stops, becomes
//! unready, or loses a hostname — and for everything on shutdown.
//!
//! - [`message`]: the JSON bodies gorouter reads.
//! - [`diff`]: the pure core — which messages move gorouter from the last
//!   published endpoints to the current ones.
//! - [`run`]: the loop over a NATS connection (`async-nats`, rustls with ring).
//!
//! ```text
//!  backend ──endpoints()/changes()──▶ diff ──▶ NATS router.register / router.unregister ──▶ gorouter
//!                                             ◀── router.start (interval) ──
//! ```

#![warn(missing_docs)]
pub mod diff;
mod emitter;
mod error;
pub mod message;
mod metrics;

pub use emitter::{DEFAULT_DEBOUNCE, DEFAULT_REGISTER_INTERVAL, EmitterConfig, run};
pub use error::Error;
pub use metrics::EmitterMetrics;
