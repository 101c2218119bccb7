//! The registry's one error type. Each variant is one OCI distribution error
//! code with one HTTP status; [`IntoResponse`] renders
//! `{"errors":[{"code","message","detail"}]}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Everything that can go wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A blob is not in the repository (404 `BLOB_UNKNOWN`).
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(String),
    /// An upload session does not exist (404 `BLOB_UPLOAD_UNKNOWN`).
    #[error("blob upload unknown to registry: {0}")]
    UploadUnknown(String),
    /// An upload request is malformed (400 `BLOB_UPLOAD_INVALID`).
    #[error("blob upload invalid: {0}")]
    UploadInvalid(String),
    /// A chunk does not continue the upload where it stands (416 `BLOB_UPLOAD_INVALID`).
    #[error("chunk out of order: {0}")]
    UploadRange(String),
    /// A digest is malformed, unsupported or does not match the content (400 `DIGEST_INVALID`).
    #[error("provided digest did not match uploaded content or is invalid: {0}")]
    DigestInvalid(String),
    /// A manifest references a blob the repository does not have (400 `MANIFEST_BLOB_UNKNOWN`).
    #[error("manifest references a blob unknown to the repository: {0}")]
    ManifestBlobUnknown(String),
    /// A manifest is malformed (400 `MANIFEST_INVALID`).
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    /// A tag or reference is malformed (400 `MANIFEST_INVALID`).
    #[error("invalid reference: {0}")]
    ReferenceInvalid(String),
    /// A manifest is not in the repository (404 `MANIFEST_UNKNOWN`).
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    /// A repository name is malformed (400 `NAME_INVALID`).
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    /// A repository does not exist (404 `NAME_UNKNOWN`).
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    /// Content is larger than allowed (413 `SIZE_INVALID`).
    #[error("content too large: {0}")]
    TooLarge(String),
    /// A declared size does not match (400 `SIZE_INVALID`).
    #[error("size invalid: {0}")]
    SizeInvalid(String),
    /// A pagination parameter is malformed (400 `PAGINATION_NUMBER_INVALID`).
    #[error("invalid pagination: {0}")]
    PaginationInvalid(String),
    /// A `Range` cannot be satisfied (416 `BLOB_UNKNOWN` range).
    #[error("requested range not satisfiable: {0}")]
    RangeInvalid(String),
    /// A droplet is malformed or hostile (400 `DROPLET_INVALID`).
    #[error("droplet refused: {0}")]
    DropletInvalid(String),
    /// Credentials are missing or wrong (401 `UNAUTHORIZED`).
    #[error("authentication required")]
    Unauthorized,
    /// Credentials are fine but the action is not allowed (403 `DENIED`).
    #[error("requested access to the resource is denied: {0}")]
    Denied(String),
    /// The operation is not supported (405 `UNSUPPORTED`).
    #[error("the operation is unsupported: {0}")]
    Unsupported(String),
    /// An upstream (CC droplet download, rootfs registry) failed (502 `UPSTREAM`).
    #[error("upstream failed: {0}")]
    Upstream(String),
    /// Local configuration is wrong (500 `UNKNOWN`); also used at start-up.
    #[error("configuration: {0}")]
    Config(String),
    /// The blob store failed (500 `UNKNOWN`).
    #[error("storage: {0}")]
    Storage(String),
}

impl Error {
    /// The OCI error code and HTTP status of this error.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        use StatusCode as S;
        match self {
            Self::BlobUnknown(_) => ("BLOB_UNKNOWN", S::NOT_FOUND),
            Self::UploadUnknown(_) => ("BLOB_UPLOAD_UNKNOWN", S::NOT_FOUND),
            Self::UploadInvalid(_) => ("BLOB_UPLOAD_INVALID", S::BAD_REQUEST),
            Self::UploadRange(_) => ("BLOB_UPLOAD_INVALID", S::RANGE_NOT_SATISFIABLE),
            Self::DigestInvalid(_) => ("DIGEST_INVALID", S::BAD_REQUEST),
            Self::ManifestBlobUnknown(_) => ("MANIFEST_BLOB_UNKNOWN", S::BAD_REQUEST),
            Self::ManifestInvalid(_) | Self::ReferenceInvalid(_) => {
                ("MANIFEST_INVALID", S::BAD_REQUEST)
            }
            Self::ManifestUnknown(_) => ("MANIFEST_UNKNOWN", S::NOT_FOUND),
            Self::NameInvalid(_) => ("NAME_INVALID", S::BAD_REQUEST),
            Self::NameUnknown(_) => ("NAME_UNKNOWN", S::NOT_FOUND),
            Self::TooLarge(_) => ("SIZE_INVALID", S::PAYLOAD_TOO_LARGE),
            Self::SizeInvalid(_) => ("SIZE_INVALID", S::BAD_REQUEST),
            Self::PaginationInvalid(_) => ("PAGINATION_NUMBER_INVALID", S::BAD_REQUEST),
            Self::RangeInvalid(_) => ("RANGE_INVALID", S::RANGE_NOT_SATISFIABLE),
            Self::DropletInvalid(_) => ("DROPLET_INVALID", S::BAD_REQUEST),
            Self::Unauthorized => ("UNAUTHORIZED", S::UNAUTHORIZED),
            Self::Denied(_) => ("DENIED", S::FORBIDDEN),
            Self::Unsupported(_) => ("UNSUPPORTED", S::METHOD_NOT_ALLOWED),
            Self::Upstream(_) => ("UPSTREAM", S::BAD_GATEWAY),
            Self::Config(_) | Self::Storage(_) => ("UNKNOWN", S::INTERNAL_SERVER_ERROR),
        }
    }

    /// What exactly is wrong: the text the variant carries (empty for
    /// [`Error::Unauthorized`]). Sent as the OCI error's `detail`.
    pub fn detail(&self) -> &str {
        match self {
            Self::Unauthorized => "",
            Self::BlobUnknown(d)
            | Self::UploadUnknown(d)
            | Self::UploadInvalid(d)
            | Self::UploadRange(d)
            | Self::DigestInvalid(d)
            | Self::ManifestBlobUnknown(d)
            | Self::ManifestInvalid(d)
            | Self::ReferenceInvalid(d)
            | Self::ManifestUnknown(d)
            | Self::NameInvalid(d)
            | Self::NameUnknown(d)
            | Self::TooLarge(d)
            | Self::SizeInvalid(d)
            | Self::PaginationInvalid(d)
            | Self::RangeInvalid(d)
            | Self::DropletInvalid(d)
            | Self::Denied(d)
            | Self::Unsupported(d)
            | Self::Upstream(d)
            | Self::Config(d)
            | Self::Storage(d) => d,
        }
    }

    /// Wraps an I/O error of the blob store.
    pub fn storage(context: impl std::fmt::Display, error: impl std::fmt::Display) -> Self {
        Self::Storage(format!("{context}: {error}"))
    }
}

/// The challenge sent with 401s.
pub const CHALLENGE: &str = r#"Basic realm="cube-registry""#;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let detail = match self.detail() {
            "" => serde_json::Value::Null,
            text => serde_json::Value::from(text),
        };
        let body = serde_json::json!({
            "errors": [{ "code": code, "message": self.to_string(), "detail": detail }]
        });
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, Self::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(CHALLENGE),
            );
        }
        response
    }
}
