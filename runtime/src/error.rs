//! The runtime's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong while starting or running a service's plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound (in use, no permission, …).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The HTTP server stopped with an I/O error.
    #[error("server on {addr} failed: {source}")]
    Serve {
        /// The address served.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The YAML config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML config file is not valid or names an unknown setting.
    #[error("config file {path}: {message}")]
    ConfigInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// TLS or credential settings are unusable (names the flag and the problem).
    #[error("{0}")]
    Access(String),
    /// Logging could not be initialised.
    #[error("cannot set up logging: {0}")]
    Telemetry(String),
    /// A metric could not be registered (usually a duplicate name).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The command line is invalid (or `--help`/`--version` was asked for).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// Any other I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
