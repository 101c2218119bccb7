//! The simulator's Prometheus metrics.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::state::State;
use crate::{Error, Result};

/// Counters and gauges of one simulator.
pub struct Metrics {
    /// Bulk pages served.
    pub bulk_pages: IntCounter,
    /// Callbacks accepted, by kind.
    pub callbacks: IntCounterVec,
    /// Apps known.
    pub apps: IntGauge,
    /// Apps the bulk API lists.
    pub desired_apps: IntGauge,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self> {
        let setup = |e: prometheus::Error| Error::ClientSetup(format!("metrics: {e}"));
        let metrics = Metrics {
            bulk_pages: IntCounter::new("cc_sim_bulk_pages_total", "Bulk API pages served")
                .map_err(setup)?,
            callbacks: IntCounterVec::new(
                Opts::new("cc_sim_callbacks_total", "Callbacks accepted, by kind"),
                &["kind"],
            )
            .map_err(setup)?,
            apps: IntGauge::new("cc_sim_apps", "Apps known to the simulator").map_err(setup)?,
            desired_apps: IntGauge::new("cc_sim_desired_apps", "Apps the bulk API lists")
                .map_err(setup)?,
        };
        registry
            .register(Box::new(metrics.bulk_pages.clone()))
            .map_err(setup)?;
        registry
            .register(Box::new(metrics.callbacks.clone()))
            .map_err(setup)?;
        registry
            .register(Box::new(metrics.apps.clone()))
            .map_err(setup)?;
        registry
            .register(Box::new(metrics.desired_apps.clone()))
            .map_err(setup)?;
        Ok(metrics)
    }

    /// Sets the gauges from the state.
    pub fn refresh(&self, state: &State) {
        self.apps.set(state.apps.len() as i64);
        self.desired_apps
            .set(state.apps.values().filter(|a| a.is_desired()).count() as i64);
    }
}
