//! The staging path Cloud Controller takes through OPI. An Eirini-era CC sends
//! staging requests to `opi.url` (Eirini served both), so `/stage/…` is
//! forwarded to St8ge (`--stager-url`) unchanged and St8ge's answer comes back:
//! CC → OPI `/stage` → St8ge → OPI `/tasks` → forwarder → St8ge → CC. It is not
//! part of the OPI API; [`super::router`] mounts these routes beside it.
//!
//! | route | forwarded |
//! |---|---|
//! | `POST`, `DELETE /stage/{staging_guid}` | staging request, cancel |
//! | `POST /stage/{staging_guid}/completed` | a staging outcome |
//! | `POST`, `GET /stage/{staging_guid}/logs` | log lines; the log, streamed |

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::server::Params;
use crate::Error;
use crate::model::validate;

/// How long a forwarded staging log may stream (it ends when staging does).
const STAGING_LOG_TIMEOUT: Duration = Duration::from_secs(2 * 3600);

/// Where staging goes.
#[derive(Clone)]
struct Proxy {
    stager: Option<reqwest::Url>,
    http: reqwest::Client,
    max_body_bytes: usize,
}

/// The `/stage/…` routes, forwarding to `stager` with `http` (bodies up to
/// `max_body_bytes`); without a stager they answer 404 saying so.
pub(super) fn routes(
    stager: Option<reqwest::Url>,
    http: reqwest::Client,
    max_body_bytes: usize,
) -> Router {
    let proxy = Proxy {
        stager,
        http,
        max_body_bytes,
    };
    Router::new()
        .route("/stage/{staging_guid}", post(forward).delete(forward))
        .route("/stage/{staging_guid}/completed", post(forward))
        .route("/stage/{staging_guid}/logs", get(forward).post(forward))
        .with_state(proxy)
}

/// Forwards a staging request (or cancel, completion, log lines) to St8ge
/// unchanged, and St8ge's answer back; a `GET` (the staging log) is streamed
/// as St8ge sends it.
async fn forward(
    State(proxy): State<Proxy>,
    Params(staging_guid): Params<String>,
    request: Request,
) -> Result<Response, Error> {
    validate::guid("staging_guid", &staging_guid)?;
    let Some(stager) = proxy.stager.clone() else {
        return Err(Error::NotFound(
            "staging route (this OPI has no --stager-url; send staging requests to St8ge)".into(),
        ));
    };
    let streamed = request.method() == Method::GET;
    let (url, outgoing) = proxy.outgoing(stager, request).await?;
    let answer = outgoing.send().await.map_err(|e| {
        Error::Unavailable(format!(
            "St8ge at {}: {e}",
            url.origin().ascii_serialization()
        ))
    })?;
    relay(answer, streamed).await
}

impl Proxy {
    /// The request to St8ge for `request`: same method, path, query, body and
    /// content type.
    async fn outgoing(
        &self,
        mut url: reqwest::Url,
        request: Request,
    ) -> Result<(reqwest::Url, reqwest::RequestBuilder), Error> {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, self.max_body_bytes)
            .await
            .map_err(|_| Error::PayloadTooLarge {
                limit: self.max_body_bytes,
            })?;
        url.set_path(parts.uri.path());
        url.set_query(parts.uri.query());
        let mut outgoing = self
            .http
            .request(parts.method.clone(), url.clone())
            .body(bytes);
        if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
            outgoing = outgoing.header(header::CONTENT_TYPE, content_type);
        }
        if parts.method == Method::GET {
            outgoing = outgoing.timeout(STAGING_LOG_TIMEOUT);
        }
        Ok((url, outgoing))
    }
}

/// St8ge's answer as OPI's: status, content type, and the body (streamed when
/// `streamed`).
async fn relay(answer: reqwest::Response, streamed: bool) -> Result<Response, Error> {
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let mut response = if streamed {
        (status, axum::body::Body::from_stream(answer.bytes_stream())).into_response()
    } else {
        let body = answer
            .bytes()
            .await
            .map_err(|e| Error::Unavailable(format!("St8ge's answer: {e}")))?;
        (status, body).into_response()
    };
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}
