//! Request metrics of the BBS API: `cube_bbs_requests_total{route,error}`
//! (`error` = the BBS error type answered, `none` on success,
//! `Unavailable` for a 503) and `cube_bbs_request_duration_seconds{route}`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The API's request counters and latency histogram.
#[derive(Clone)]
pub struct ApiMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

/// How a request ended, put into its response's extensions by the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome(pub &'static str);

impl Outcome {
    /// Answered without an error.
    pub const SUCCESS: Self = Self("none");
}

impl ApiMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "cube_bbs_requests_total",
                "BBS API requests by route and BBS error type",
            ),
            &["route", "error"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "cube_bbs_request_duration_seconds",
                "BBS API request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    /// Metrics registered nowhere (tests).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).unwrap_or_else(|_| unreachable!("fresh registry"))
    }
}

/// Middleware recording one request under its route (`unmatched` for a
/// path no route has) and outcome (`http_<status>` when the route set none,
/// as for a 404).
pub(super) async fn track(
    State(metrics): State<ApiMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let outcome = match response.extensions().get::<Outcome>() {
        Some(outcome) => outcome.0.to_owned(),
        None => format!("http_{}", response.status().as_u16()),
    };
    metrics
        .requests
        .with_label_values(&[route.as_str(), outcome.as_str()])
        .inc();
    metrics
        .duration
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}
