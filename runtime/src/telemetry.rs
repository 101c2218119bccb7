//! Logging setup with `tracing`.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Human-readable lines, for terminals.
    #[default]
    Pretty,
}

/// Installs the global subscriber. `filter` is an `EnvFilter` directive such as
/// `info` or `cube=debug,tower_http=info`.
pub fn init(format: LogFormat, filter: &str) -> Result<(), crate::Error> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| crate::Error::Telemetry(format!("invalid log filter {filter:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    result.map_err(|e| crate::Error::Telemetry(e.to_string()))
}
