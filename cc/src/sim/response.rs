//! How the simulator answers errors: the status and CC's error body
//! (`{"code", "description", "error_code": "CF-<Name>"}`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::Error;
use crate::model::CcErrorBody;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = cc_answer(&self);
        if status.is_server_error() {
            tracing::warn!(error = %self, "cc-sim request failed");
        }
        (status, Json(body)).into_response()
    }
}

/// The status and CC error body the simulator answers `error` with.
pub fn cc_answer(error: &Error) -> (StatusCode, CcErrorBody) {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, name) = match error {
        Error::Api { code, name, .. } => (*code, *name),
        Error::Stager { .. } => (170_015, "RunnerUnavailable"),
        _ => (10_001, "ServerError"),
    };
    let body = CcErrorBody {
        code,
        description: error.to_string(),
        error_code: format!("CF-{name}"),
    };
    (status, body)
}

/// Parses a JSON body, turning any problem into CC's `MessageParseError` that
/// names the field.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.is_empty() {
        return Err(Error::message_parse("Missing request body"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let cause = e.into_inner();
        Error::message_parse(if path == "." {
            format!("Request invalid due to parse error: {cause}")
        } else {
            format!("Request invalid due to parse error: {path}: {cause}")
        })
    })
}

/// A parsed JSON body as a `T`, or CC's `MessageParseError` naming `what`
/// and the field that is wrong (`crash report: cell_id: invalid type …`).
pub fn parse_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &str,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let cause = e.into_inner();
        Error::message_parse(if path == "." {
            format!("{what}: {cause}")
        } else {
            format!("{what}: {path}: {cause}")
        })
    })
}

/// Path parameters, refused in CC's error format (a path axum cannot decode,
/// such as invalid UTF-8 escapes, is a `MessageParseError`, not plain text).
pub struct Path<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e| Error::message_parse(format!("path: {}", e.body_text())))
    }
}
