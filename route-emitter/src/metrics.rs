//! The route emitter's Prometheus metrics.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Counters and gauges of one emitter, registered on a service's registry.
#[derive(Clone)]
pub struct EmitterMetrics {
    /// Messages published, by subject (`router.register`, `router.unregister`).
    pub messages: IntCounterVec,
    /// Publishes or flushes that failed, and skipped cycles while disconnected.
    pub nats_errors: IntCounter,
    /// Endpoints currently registered with gorouter.
    pub endpoints: IntGauge,
    /// Router greetings (`router.start` or answers to `router.greet`) received.
    pub greetings: IntCounter,
}

impl EmitterMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            messages: IntCounterVec::new(
                Opts::new(
                    "cube_route_emitter_messages_total",
                    "Route registration messages published to NATS, by subject",
                ),
                &["subject"],
            )?,
            nats_errors: IntCounter::new(
                "cube_route_emitter_nats_errors_total",
                "NATS publishes that failed or were skipped while disconnected",
            )?,
            endpoints: IntGauge::new(
                "cube_route_emitter_endpoints",
                "Instance endpoints currently registered with gorouter",
            )?,
            greetings: IntCounter::new(
                "cube_route_emitter_router_greetings_total",
                "router.start announcements and router.greet answers received",
            )?,
        };
        registry.register(Box::new(metrics.messages.clone()))?;
        registry.register(Box::new(metrics.nats_errors.clone()))?;
        registry.register(Box::new(metrics.endpoints.clone()))?;
        registry.register(Box::new(metrics.greetings.clone()))?;
        Ok(metrics)
    }
}
