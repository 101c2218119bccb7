//! The crate's one error type. Client failures name the request; simulator
//! failures carry the CC error they answer with (status, code, `CF-<Name>`).

use std::path::PathBuf;

/// Everything that can go wrong in the client, the simulator or `cube push`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A URL could not be parsed or joined.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL (credentials removed).
        url: String,
        /// Why.
        reason: String,
    },
    /// A file the configuration names could not be read.
    #[error("cannot read {what} {path}: {cause}")]
    ReadFile {
        /// What the file is for (`CA certificate`, …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (shown in the message, so not also a `source`).
        cause: std::io::Error,
    },
    /// The TLS or HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    ClientSetup(String),
    /// The request did not get an answer (connect error, timeout, …), after retries.
    #[error("{method} {url}: {message}")]
    Unreachable {
        /// HTTP method.
        method: String,
        /// URL (credentials removed).
        url: String,
        /// What happened.
        message: String,
    },
    /// CC answered with an error status (after retries, for 5xx).
    #[error("{method} {url}: CC answered {status}: {body}")]
    Status {
        /// HTTP method.
        method: String,
        /// URL (credentials removed).
        url: String,
        /// Status code.
        status: u16,
        /// The answer's body (CC's error description when it sent one).
        body: String,
    },
    /// CC's answer could not be decoded.
    #[error("{method} {url}: cannot decode the answer: {message}")]
    Decode {
        /// HTTP method.
        method: String,
        /// URL (credentials removed).
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A CC API error the simulator answers with.
    #[error("{description}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Numeric CC error code.
        code: u32,
        /// CC error name (without the `CF-` prefix).
        name: &'static str,
        /// What is wrong, naming the field or object.
        description: String,
    },
    /// The stager could not serve a staging log (the staging request itself
    /// fails as CC fails it: [`Error::runner_error`], [`Error::stager_error`]).
    #[error("stager {url}: {message}")]
    Stager {
        /// The stager's URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// Reading or writing the simulator's data directory failed.
    #[error("{action} {path}: {cause}")]
    Io {
        /// What we were doing (`write`, `read`, `rename`…).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (shown in the message, so not also a `source`).
        cause: std::io::Error,
    },
    /// The simulator's state file is not valid JSON of the expected shape.
    #[error("state file {path} is corrupt: {message}")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The HTTP server could not bind or serve.
    #[error(transparent)]
    Runtime(#[from] cube_runtime::Error),
    /// A call to the simulator's `/sim` API (what `cube push` and friends use)
    /// failed in a way the user must act on.
    #[error("{0}")]
    Push(String),
}

impl Error {
    /// 400 `CF-MessageParseError`: the body is not what the endpoint takes.
    pub fn message_parse(description: impl Into<String>) -> Self {
        Self::api(400, 1001, "MessageParseError", description)
    }

    /// 400 `CF-BadQueryParameter`: a query parameter is missing or invalid.
    pub fn bad_query(description: impl Into<String>) -> Self {
        Self::api(400, 10005, "BadQueryParameter", description)
    }

    /// 422 `CF-UnprocessableEntity`: well-formed but not acceptable now.
    pub fn unprocessable(description: impl Into<String>) -> Self {
        Self::api(422, 10008, "UnprocessableEntity", description)
    }

    /// 404 `CF-ResourceNotFound`.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::api(404, 10010, "ResourceNotFound", description)
    }

    /// 409 `CF-Conflict` (the name is the simulator's; CC uses specific names).
    pub fn conflict(description: impl Into<String>) -> Self {
        Self::api(409, 10016, "Conflict", description)
    }

    /// 400 `CF-InvalidRequest`: the request contradicts itself or the state.
    pub fn api_invalid_request(description: impl Into<String>) -> Self {
        Self::api(400, 10004, "InvalidRequest", description)
    }

    /// 413 `CF-PayloadTooLarge` (the simulator's name): the body is over
    /// the route's limit.
    pub fn too_large(limit: usize) -> Self {
        Self::api(
            413,
            10013,
            "PayloadTooLarge",
            format!("the request body is over this route's limit of {limit} bytes"),
        )
    }

    /// 500 `CF-RunnerError` (170016, `Runner error: %s`): what an Eirini-era
    /// CC raises when the stager answers `POST /stage/{guid}` with anything
    /// but 202, `message` being the answer's top-level `message`.
    pub fn runner_error(message: &str) -> Self {
        Self::api(
            500,
            170016,
            "RunnerError",
            format!("Runner error: {message}"),
        )
    }

    /// 500 `CF-StagerError` (170011, `Stager error: %s`): CC could not ask the
    /// stager, or could not read its answer.
    pub fn stager_error(message: impl std::fmt::Display) -> Self {
        Self::api(
            500,
            170011,
            "StagerError",
            format!("Stager error: {message}"),
        )
    }

    /// 401 `CF-NotAuthenticated`.
    pub fn not_authenticated() -> Self {
        Self::api(
            401,
            10002,
            "NotAuthenticated",
            "Authentication error: this endpoint takes HTTP Basic credentials",
        )
    }

    fn api(status: u16, code: u32, name: &'static str, description: impl Into<String>) -> Self {
        Error::Api {
            status,
            code,
            name,
            description: description.into(),
        }
    }

    /// The HTTP status an error answers with: its own for API errors, 502 when the
    /// stager failed, 500 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Error::Api { status, .. } => *status,
            Error::Stager { .. } => 502,
            _ => 500,
        }
    }

    /// Whether this is a client error that retrying cannot fix (an answered 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(self, Error::Status { status, .. } if (400..500).contains(status))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
