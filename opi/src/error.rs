//! The one error type of the `opi` crate. Backends return it from every
//! [`crate::Scheduler`] method; the HTTP server maps each variant to one status
//! code and error code; the client maps them back.

use axum::http::StatusCode;

use crate::model::validate::Invalid;

/// What went wrong with an OPI operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request is malformed or a field is out of range (400). The message
    /// names the field.
    #[error("invalid request: {0}")]
    Invalid(#[from] Invalid),
    /// The body is not valid JSON or has the wrong shape (400).
    #[error("invalid request body: {0}")]
    BadBody(String),
    /// No such LRP, instance or task (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The thing exists already in a way that conflicts (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The body is larger than the server accepts (413).
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Valid, but this backend cannot do it (422).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// The scheduler (apiserver, BBS, …) cannot be reached or is overloaded (503).
    /// Retrying later may succeed.
    #[error("scheduler unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend failed at (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::BadBody(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotSupported(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code in the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) | Self::BadBody(_) => "InvalidRequest",
            Self::NotFound(_) => "NotFound",
            Self::Conflict(_) => "Conflict",
            Self::PayloadTooLarge { .. } => "PayloadTooLarge",
            Self::NotSupported(_) => "NotSupported",
            Self::Unavailable(_) => "Unavailable",
            Self::Internal(_) => "Internal",
        }
    }

    /// Rebuilds an error from a response's status and message (used by the client).
    pub fn from_status(status: StatusCode, message: String) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::BadBody(message),
            StatusCode::NOT_FOUND => Self::NotFound(message),
            StatusCode::CONFLICT => Self::Conflict(message),
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge { limit: 0 },
            StatusCode::UNPROCESSABLE_ENTITY => Self::NotSupported(message),
            StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS => Self::Unavailable(message),
            _ => Self::Internal(format!("HTTP {status}: {message}")),
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
