//! The route emitter's one error type.

/// Why the route emitter could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A NATS server address does not parse.
    #[error("invalid NATS server URL {url:?}: {message}")]
    InvalidUrl {
        /// The address as given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// No NATS server address was given.
    #[error("no NATS server URL given")]
    NoServers,
    /// Connecting failed in a way retrying cannot fix (bad options).
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// Subscribing to a gorouter subject failed.
    #[error("cannot subscribe to {subject}: {message}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        message: String,
    },
    /// The metrics could not be registered (a name is taken).
    #[error("cannot register route emitter metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}
