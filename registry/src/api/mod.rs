//! The registry's HTTP API: OCI distribution v1.1 (read and push) plus droplet
//! import, as one axum [`Router`]. Names contain slashes, so everything under
//! `/v2/` goes through one handler that splits the path ([`path`]).

mod blobs;
mod droplets;
mod listing;
mod manifests;
pub mod path;
pub mod range;
mod uploads;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{StreamExt, TryStreamExt};

use crate::auth::{Action, Auth};
use crate::image::Importer;
use crate::store::{ByteStream, Store};
use crate::{Error, metrics::Metrics};
use path::Route;

/// What every handler shares.
pub struct AppState {
    /// Blobs, manifests, tags, uploads.
    pub store: Arc<Store>,
    /// Credentials and policy.
    pub auth: Auth,
    /// Droplet → image.
    pub importer: Importer,
    /// Counters.
    pub metrics: Metrics,
    /// Mount a blob named by `?mount=` without `from` from wherever the
    /// registry holds it ([`crate::config::Config::automatic_crossmount`]).
    pub automatic_crossmount: bool,
}

/// Shared state handle.
pub type Shared = Arc<AppState>;

/// The API router.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v2/", get(base))
        .route("/v2", get(base))
        .route("/v2/_catalog", get(listing::catalog))
        .route("/v2/{*rest}", axum::routing::any(dispatch))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        // The token endpoint authenticates by itself.
        .route("/v2/token", get(token))
        .with_state(state)
}

/// `Docker-Distribution-API-Version`, which Docker-lineage clients look for.
const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

async fn base() -> impl IntoResponse {
    ([API_VERSION], axum::Json(serde_json::json!({})))
}

async fn authorize(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let action = match *request.method() {
        Method::GET | Method::HEAD | Method::OPTIONS => Action::Pull,
        _ => Action::Push,
    };
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let peer = request
        .extensions()
        .get::<cube_runtime::access::PeerCertificate>();
    match state.auth.check_request(header, peer, action) {
        Ok(_) => {
            let mut response = next.run(request).await;
            response
                .headers_mut()
                .insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
            response
        }
        Err(error) => {
            let reason = if matches!(error, Error::Denied(_)) {
                "denied"
            } else {
                "unauthorized"
            };
            state.metrics.refused(reason);
            error.into_response()
        }
    }
}

async fn token(State(state): State<Shared>, headers: HeaderMap) -> Result<Response, Error> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (token, ttl) = state.auth.issue_token(header)?;
    Ok(axum::Json(serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": ttl.as_secs(),
    }))
    .into_response())
}

async fn dispatch(
    State(state): State<Shared>,
    rest: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    request: Request,
) -> Response {
    let method = request.method().clone();
    let query = Query::parse(query.as_deref());
    let result = async {
        // A path axum cannot decode (invalid UTF-8 escapes) is a bad name,
        // answered in the OCI error format like every other.
        let axum::extract::Path(rest) =
            rest.map_err(|e| Error::NameInvalid(format!("the path: {}", e.body_text())))?;
        let route = path::parse(&rest)?;
        let (parts, body) = request.into_parts();
        let headers = &parts.headers;
        let head = method == Method::HEAD;
        match (route, method.clone()) {
            (Route::Manifest(name, reference), Method::GET | Method::HEAD) => {
                manifests::get(&state, &name, &reference, head).await
            }
            (Route::Manifest(name, reference), Method::PUT) => {
                manifests::put(&state, &name, &reference, headers, body).await
            }
            (Route::Manifest(name, reference), Method::DELETE) => {
                manifests::delete(&state, &name, &reference).await
            }
            (Route::Blob(name, digest), Method::GET | Method::HEAD) => {
                blobs::get(&state, &name, &digest, headers, head).await
            }
            (Route::Blob(name, digest), Method::DELETE) => {
                blobs::delete(&state, &name, &digest).await
            }
            (Route::UploadStart(name), Method::POST) => {
                uploads::start(&state, &name, &query, body).await
            }
            (Route::Upload(name, id), Method::GET) => uploads::status(&state, &name, &id).await,
            (Route::Upload(name, id), Method::PATCH) => {
                uploads::patch(&state, &name, &id, headers, body).await
            }
            (Route::Upload(name, id), Method::PUT) => {
                uploads::finish(&state, &name, &id, &query, body).await
            }
            (Route::Upload(name, id), Method::DELETE) => uploads::cancel(&state, &name, &id).await,
            (Route::Tags(name), Method::GET) => listing::tags(&state, &name, &query).await,
            (Route::Referrers(name, digest), Method::GET) => {
                listing::referrers(&state, &name, &digest, &query).await
            }
            (Route::Droplets(name), Method::POST) => {
                droplets::import(&state, &name, &query, headers, body).await
            }
            (route, method) => Err(Error::Unsupported(format!("{method} on {route:?}"))),
        }
    }
    .await;
    state.metrics.request(method.as_str(), &result);
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Query parameters of registry requests.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect();
        Self(pairs)
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decoding (and `+` as space) for query values.
fn decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request body as a byte stream.
pub fn body_stream(body: Body) -> ByteStream {
    body.into_data_stream()
        .map_err(std::io::Error::other)
        .boxed()
}

/// A response with `status`, headers and an empty body.
fn empty(status: StatusCode, headers: &[(&str, String)]) -> Result<Response, Error> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .map_err(|e| Error::Storage(format!("building a response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let query = Query::parse(Some(
            "digest=sha256%3Aab&n=2&last=a%2Fb&x=%zz&y=%E2%9C%93+z",
        ));
        assert_eq!(query.get("digest"), Some("sha256:ab"));
        assert_eq!(query.get("n"), Some("2"));
        assert_eq!(query.get("last"), Some("a/b"));
        assert_eq!(query.get("x"), Some("%zz"));
        assert_eq!(query.get("y"), Some("\u{2713} z"));
        assert_eq!(query.get("missing"), None);
    }
}
