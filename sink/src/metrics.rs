//! The Sink's metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Metrics of the convergence loop.
#[derive(Clone)]
pub struct Metrics {
    /// `cube_sink_cycle_duration_seconds`.
    pub cycle_duration: Histogram,
    /// `cube_sink_cycles_total{outcome}`.
    pub cycles: IntCounterVec,
    /// `cube_sink_actions_total{kind}`: desire, update, stop, error.
    pub actions: IntCounterVec,
    /// `cube_sink_apps`: desired apps in CC at the last complete walk.
    pub apps: IntGauge,
    /// `cube_sink_last_success_timestamp_seconds`.
    pub last_success: IntGauge,
    /// `cube_sink_mass_stop_refused_total`.
    pub mass_stop_refused: IntCounter,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let cycle_duration = Histogram::with_opts(
            HistogramOpts::new(
                "cube_sink_cycle_duration_seconds",
                "Duration of a convergence cycle",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )?;
        let cycles = IntCounterVec::new(
            Opts::new("cube_sink_cycles_total", "Convergence cycles by outcome"),
            &["outcome"],
        )?;
        let actions = IntCounterVec::new(
            Opts::new(
                "cube_sink_actions_total",
                "Writes to OPI by kind, and failed ones",
            ),
            &["kind"],
        )?;
        let apps = IntGauge::new(
            "cube_sink_apps",
            "Apps CC desires, at the last complete walk",
        )?;
        let last_success = IntGauge::new(
            "cube_sink_last_success_timestamp_seconds",
            "Unix time of the last successful cycle",
        )?;
        let mass_stop_refused = IntCounter::new(
            "cube_sink_mass_stop_refused_total",
            "Cycles whose stops were refused because they would stop too many LRPs",
        )?;
        registry.register(Box::new(cycle_duration.clone()))?;
        registry.register(Box::new(cycles.clone()))?;
        registry.register(Box::new(actions.clone()))?;
        registry.register(Box::new(apps.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(mass_stop_refused.clone()))?;
        Ok(Self {
            cycle_duration,
            cycles,
            actions,
            apps,
            last_success,
            mass_stop_refused,
        })
    }
}
