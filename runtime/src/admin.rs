//! The admin port every service exposes: `/metrics` (Prometheus text format),
//! `/healthz` (liveness: the process answers) and `/readyz` (readiness: every
//! registered dependency check passes and the process is not shutting down).

use std::sync::Arc;
use std::sync::RwLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, TextEncoder};

use crate::Shutdown;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency that must be healthy for the service to take traffic
/// (a cache synced, a store writable, a backend reachable).
#[async_trait::async_trait]
pub trait ReadyCheck: Send + Sync {
    /// Short name shown in `/readyz` output.
    fn name(&self) -> &str;
    /// `Ok` when ready; otherwise why not.
    async fn check(&self) -> Result<(), String>;
}

/// A readiness check from a synchronous closure, for flags and counters.
struct FnCheck<F> {
    name: String,
    f: F,
}

#[async_trait::async_trait]
impl<F> ReadyCheck for FnCheck<F>
where
    F: Fn() -> Result<(), String> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }
    async fn check(&self) -> Result<(), String> {
        (self.f)()
    }
}

/// The set of readiness checks of one process. Cheap to clone; services add
/// their checks at start-up.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<RwLock<Vec<Arc<dyn ReadyCheck>>>>,
}

impl Readiness {
    /// Adds a check.
    pub fn add(&self, check: Arc<dyn ReadyCheck>) {
        match self.checks.write() {
            Ok(mut checks) => checks.push(check),
            Err(poisoned) => poisoned.into_inner().push(check),
        }
    }

    /// Adds a check from a synchronous closure.
    pub fn add_fn<F>(&self, name: impl Into<String>, f: F)
    where
        F: Fn() -> Result<(), String> + Send + Sync + 'static,
    {
        self.add(Arc::new(FnCheck {
            name: name.into(),
            f,
        }));
    }

    /// Runs every check (each bounded by a timeout) and returns the failures as
    /// `(name, reason)`.
    pub async fn failures(&self) -> Vec<(String, String)> {
        let checks: Vec<Arc<dyn ReadyCheck>> = match self.checks.read() {
            Ok(checks) => checks.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut failures = Vec::new();
        for check in checks {
            let outcome = tokio::time::timeout(CHECK_TIMEOUT, check.check()).await;
            let reason = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(reason)) => reason,
                Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
            };
            failures.push((check.name().to_owned(), reason));
        }
        failures
    }
}

/// The admin HTTP server.
#[derive(Clone)]
pub struct AdminServer {
    registry: prometheus::Registry,
    readiness: Readiness,
    shutdown: Shutdown,
}

impl AdminServer {
    /// An admin server exporting `registry` and reporting `readiness`. Once
    /// `shutdown` fires, `/readyz` answers 503 so load balancers stop sending traffic.
    pub fn new(registry: prometheus::Registry, readiness: Readiness, shutdown: Shutdown) -> Self {
        Self {
            registry,
            readiness,
            shutdown,
        }
    }

    /// The admin routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(self.clone())
    }

    /// Serves the admin routes on `listener` until shutdown.
    pub async fn run(self, listener: tokio::net::TcpListener) -> Result<(), crate::Error> {
        let shutdown = self.shutdown.clone();
        crate::serve(listener, self.router(), shutdown).await
    }
}

async fn metrics(State(admin): State<AdminServer>) -> Response {
    let families = admin.registry.gather();
    let mut body = Vec::new();
    match TextEncoder::new().encode(&families, &mut body) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {error}\n"),
        )
            .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(admin): State<AdminServer>) -> Response {
    if admin.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let failures = admin.readiness.failures().await;
    if failures.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let body: String = failures
        .iter()
        .map(|(name, reason)| format!("{name}: {reason}\n"))
        .collect();
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_follows_checks_and_shutdown() {
        let ready = Arc::new(AtomicBool::new(false));
        let readiness = Readiness::default();
        let flag = ready.clone();
        readiness.add_fn("cache", move || {
            if flag.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("not synced".into())
            }
        });
        let shutdown = Shutdown::new();
        let admin = AdminServer::new(prometheus::Registry::new(), readiness, shutdown.clone());

        let (status, body) = get(admin.router(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "cache: not synced\n");

        ready.store(true, Ordering::SeqCst);
        assert_eq!(get(admin.router(), "/readyz").await.0, StatusCode::OK);
        assert_eq!(get(admin.router(), "/healthz").await.0, StatusCode::OK);

        shutdown.cancel();
        assert_eq!(
            get(admin.router(), "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into())
        );
    }

    #[tokio::test]
    async fn metrics_exports_the_registry() {
        let registry = prometheus::Registry::new();
        let counter = prometheus::IntCounter::new("cube_test_total", "a test counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc_by(3);
        let admin = AdminServer::new(registry, Readiness::default(), Shutdown::new());
        let (status, body) = get(admin.router(), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("cube_test_total 3"), "{body}");
    }
}
