//! The local HTTP router: one port where `Host: <route>` reaches a healthy
//! instance of the app that has that route, round-robin — what the gorouter
//! does for Cloud Foundry, for `cube up` on a laptop.
//!
//! - Unknown host → 404 saying no app has that route.
//! - Known route, no healthy instance → 503 saying so.
//! - The request and response bodies stream through; `X-Forwarded-*` headers
//!   are added; an instance that refuses the connection gets the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use opi::routing::{Endpoint, RouteSource};

/// Headers that belong to one hop and are not forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

struct Shared {
    source: Arc<dyn RouteSource>,
    http: reqwest::Client,
    next: AtomicUsize,
}

/// The router over `source`'s ready instances (the local backend's, in
/// `cube up`).
pub fn router(source: Arc<dyn RouteSource>) -> Result<Router, crate::Error> {
    let http = opi::http::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| crate::Error::Droplet {
            droplet: String::new(),
            message: format!("cannot build the router's HTTP client: {e}"),
        })?;
    let shared = Arc::new(Shared {
        source,
        http,
        next: AtomicUsize::new(0),
    });
    Ok(Router::new().fallback(proxy).with_state(shared))
}

/// The host a request is for, lower-cased, without port.
fn request_host(request: &Request) -> Option<String> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().host())?;
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// Endpoints with a route for `host` (route paths are ignored), one per
/// instance and port (an instance reached through several routed container
/// ports is one candidate, not several).
pub fn matching(endpoints: &[Endpoint], host: &str) -> Vec<Endpoint> {
    let mut found: Vec<Endpoint> = endpoints
        .iter()
        .filter(|endpoint| {
            endpoint.hostnames.iter().any(|hostname| {
                let route_host = hostname.split('/').next().unwrap_or_default();
                route_host.eq_ignore_ascii_case(host)
            })
        })
        .cloned()
        .collect();
    found.dedup_by(|a, b| a.instance_guid == b.instance_guid && a.port == b.port);
    found
}

fn page(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

async fn proxy(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let Some(host) = request_host(&request) else {
        return page(StatusCode::BAD_REQUEST, "the request names no host".into());
    };
    let endpoints = shared.source.endpoints();
    let candidates = matching(&endpoints, &host);
    if candidates.is_empty() {
        let known = shared.source.routed_hosts().contains(&host);
        return if known {
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("503 Service Unavailable: the app for {host} has no running instances"),
            )
        } else {
            page(
                StatusCode::NOT_FOUND,
                format!("404 Not Found: no app has the route {host}; `cube apps` lists the routes"),
            )
        };
    }
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let mut headers = parts.headers.clone();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if let Ok(value) = HeaderValue::from_str(&host) {
        headers.insert("x-forwarded-host", value);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    // Buffer nothing: stream the body to the first instance; retry on other
    // instances only when the body is empty (a refused connection consumed nothing).
    let start = shared.next.fetch_add(1, Ordering::Relaxed);
    let may_retry = body_is_empty(&parts.headers, &parts.method);
    let mut body = Some(body);
    let attempts = if may_retry { candidates.len() } else { 1 };
    let mut last_error = String::new();
    for offset in 0..attempts {
        let endpoint = &candidates[(start + offset) % candidates.len()];
        let url = format!("http://{}:{}{path}", endpoint.host, endpoint.port);
        let outgoing_body = match body.take() {
            Some(body) => reqwest::Body::wrap_stream(body.into_data_stream()),
            None => reqwest::Body::from(Vec::new()),
        };
        let outgoing = shared
            .http
            .request(parts.method.clone(), &url)
            .headers(headers.clone())
            .body(outgoing_body);
        match outgoing.send().await {
            Ok(response) => return relay(response),
            Err(error) => {
                tracing::debug!(%host, instance = endpoint.index, %error, "instance did not answer");
                last_error = error.to_string();
            }
        }
    }
    page(
        StatusCode::BAD_GATEWAY,
        format!("502 Bad Gateway: the app for {host} did not answer: {last_error}"),
    )
}

fn body_is_empty(headers: &axum::http::HeaderMap, method: &axum::http::Method) -> bool {
    let length_zero = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    length_zero
        || (!chunked
            && !headers.contains_key(header::CONTENT_LENGTH)
            && matches!(
                *method,
                axum::http::Method::GET
                    | axum::http::Method::HEAD
                    | axum::http::Method::DELETE
                    | axum::http::Method::OPTIONS
            ))
}

fn relay(response: reqwest::Response) -> Response {
    let status = response.status();
    let mut headers = response.headers().clone();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let body = Body::from_stream(response.bytes_stream().map_err(std::io::Error::other));
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str, index: u32) -> Endpoint {
        Endpoint {
            process_guid: "g-v".into(),
            app_guid: "g".into(),
            instance_guid: format!("instance-{index}"),
            index,
            host: "127.0.0.1".into(),
            port: 1000 + u16::try_from(index).unwrap(),
            container_port: 8080,
            hostnames: vec![host.into()],
        }
    }

    #[test]
    fn hosts_match_case_insensitively_and_ignore_paths() {
        let endpoints = vec![
            endpoint("Hello.localhost", 0),
            endpoint("hello.localhost/api", 1),
            endpoint("other.localhost", 2),
        ];
        let found = matching(&endpoints, "hello.localhost");
        assert_eq!(
            found.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert!(matching(&endpoints, "nope.localhost").is_empty());
    }
}
