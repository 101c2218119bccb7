//! The local backend's error type; converts into [`opi::Error`].

use std::path::PathBuf;

/// What can go wrong running processes locally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What we were doing.
        context: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A droplet could not be fetched or is malformed.
    #[error("droplet {droplet}: {message}")]
    Droplet {
        /// `<guid>:<hash>`.
        droplet: String,
        /// What is wrong.
        message: String,
    },
    /// A persisted desired LRP could not be read back.
    #[error("state file {path}: {message}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            context,
            path,
            source,
        }
    }
}

impl From<Error> for opi::Error {
    fn from(error: Error) -> Self {
        match error {
            // The registry may be back soon: let callers retry.
            Error::Droplet { .. } => opi::Error::Unavailable(error.to_string()),
            Error::Io { .. } | Error::State { .. } => opi::Error::Internal(error.to_string()),
        }
    }
}
