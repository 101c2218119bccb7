//! How the simulator answers errors: the status and CC's error body
//! (`{"code", "description", "error_code": "CF-<Name>"}`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::Error;
use crate::model::CcErrorBody;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (code, name) = match &self {
            Error::Api { code, name, .. } => (*code, *name),
            Error::Stager { .. } => (170_015, "RunnerUnavailable"),
            _ => (10_001, "ServerError"),
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "cc-sim request failed");
        }
        let body = CcErrorBody {
            code,
            description: self.to_string(),
            error_code: format!("CF-{name}"),
        };
        (status, Json(body)).into_response()
    }
}

/// Parses a JSON body, turning any problem into CC's `MessageParseError` that
/// names the field.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.is_empty() {
        return Err(Error::message_parse("Missing request body"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Error::message_parse(format!("Request invalid due to parse error: {e}")))
}
