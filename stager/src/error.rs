//! The one error type of the `stager` crate. The HTTP API maps each variant to one
//! status and OPI's error body `{"error":{"code","message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What went wrong in St8ge or in a staging step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or a field is wrong (400); the message names the field.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No such staging task or buildpack (404).
    #[error("{0} not found")]
    NotFound(String),
    /// A staging task with this guid exists already (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// CC refused a staging completion for good (422): retrying will not help.
    #[error("{0}")]
    Rejected(String),
    /// OPI, CC or a registry could not be reached or refused (502).
    #[error("{0}")]
    Upstream(String),
    /// The configuration is unusable (bad URL, missing directory, …).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `extract`, …).
        action: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An archive is broken or unsafe (`..` or absolute paths).
    #[error("bad archive {what}: {message}")]
    Archive {
        /// Which archive.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// Anything else (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(
        action: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            Error::Config(_) | Error::Io { .. } | Error::Archive { .. } | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The machine-readable code of the error body (OPI's codes).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "InvalidRequest",
            Error::NotFound(_) => "NotFound",
            Error::Conflict(_) => "Conflict",
            Error::Rejected(_) => "Rejected",
            Error::Upstream(_) => "Unavailable",
            _ => "Internal",
        }
    }
}

impl From<opi::Error> for Error {
    fn from(error: opi::Error) -> Self {
        match error {
            opi::Error::Invalid(invalid) => Error::Invalid(invalid.to_string()),
            opi::Error::NotFound(what) => Error::NotFound(what),
            opi::Error::Conflict(what) => Error::Conflict(what),
            opi::Error::BadBody(what) => {
                Error::Invalid(format!("OPI refused the staging task: {what}"))
            }
            other => Error::Upstream(format!("OPI: {other}")),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = opi::model::wire::ErrorResponse::new(self.code(), self.to_string());
        (self.status(), axum::Json(body)).into_response()
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
