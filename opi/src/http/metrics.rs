//! Request metrics of the OPI API: `cube_opi_requests_total{route,code}` and
//! `cube_opi_request_duration_seconds{route}`.

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

impl ApiMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "cube_opi_requests_total",
                "OPI API requests by route and status code",
            ),
            &["route", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "cube_opi_request_duration_seconds",
                "OPI API request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    /// Metrics registered nowhere (tests, or when metrics are not wanted).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).unwrap_or_else(|_| unreachable!("fresh registry"))
    }
}

/// Middleware recording one request.
pub(super) async fn track(
    State(metrics): State<ApiMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = format!("{method} {route}");
    metrics
        .requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    metrics
        .duration
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}
