//! The Sink's error type.

/// Why a cycle (or the Sink) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Cloud Controller could not be walked or read.
    #[error("Cloud Controller: {0}")]
    Cc(#[from] cc::Error),
    /// OPI could not be listed.
    #[error("OPI: {0}")]
    Opi(#[from] opi::Error),
    /// The registry could not be asked or could not import a droplet.
    #[error("registry: {0}")]
    Registry(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}
