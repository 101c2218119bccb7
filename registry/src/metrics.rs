//! Prometheus counters of the registry.

use prometheus::{IntCounterVec, Opts, Registry};

use crate::Error;

/// The registry's counters.
#[derive(Clone)]
pub struct Metrics {
    requests: IntCounterVec,
    imports: IntCounterVec,
    refused: IntCounterVec,
}

impl Metrics {
    /// Creates the counters and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, Error> {
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, Error> {
            let counter = IntCounterVec::new(Opts::new(name, help), labels)
                .map_err(|e| Error::Config(format!("metric {name}: {e}")))?;
            registry
                .register(Box::new(counter.clone()))
                .map_err(|e| Error::Config(format!("metric {name}: {e}")))?;
            Ok(counter)
        };
        Ok(Self {
            requests: counter(
                "registry_requests_total",
                "Registry API requests by method and OCI error code (OK when none).",
                &["method", "code"],
            )?,
            imports: counter(
                "registry_droplet_imports_total",
                "Droplet imports by outcome (created, exists, refused).",
                &["outcome"],
            )?,
            refused: counter(
                "registry_auth_refused_total",
                "Requests refused by authentication.",
                &["reason"],
            )?,
        })
    }

    /// Counters registered nowhere (tests).
    pub fn unregistered() -> Self {
        match Self::new(&Registry::new()) {
            Ok(metrics) => metrics,
            Err(error) => unreachable!("a fresh registry accepts every metric: {error}"),
        }
    }

    /// Counts one API request.
    pub fn request<T>(&self, method: &str, result: &Result<T, Error>) {
        let code = match result {
            Ok(_) => "OK",
            Err(error) => error.code_and_status().0,
        };
        self.requests.with_label_values(&[method, code]).inc();
    }

    /// Counts one droplet import.
    pub fn import(&self, outcome: &str) {
        self.imports.with_label_values(&[outcome]).inc();
    }

    /// Counts one refused request.
    pub fn refused(&self, reason: &str) {
        self.refused.with_label_values(&[reason]).inc();
    }
}
