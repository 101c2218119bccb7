//! What the BBS server's tests share: a BBS over a memory scheduler, and
//! CC's way of calling it (POST, protobuf body).

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bbs::api::{ApiMetrics, Bbs, router};
use bbs::translate::fixtures;
use bbs_models::error::Type;
use cube_runtime::access::ClientAccess;
use http_body_util::BodyExt;
use opi::memory::MemoryScheduler;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// A BBS over a memory scheduler, with CC's stacks.
pub struct Front {
    pub router: Router,
    pub scheduler: Arc<MemoryScheduler>,
    pub metrics: prometheus::Registry,
    pub shutdown: CancellationToken,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A BBS over a fresh memory scheduler.
pub fn front() -> Front {
    front_with(|bbs| bbs)
}

/// [`front`], its state changed by `configure` (droplets, limits).
pub fn front_with(configure: impl FnOnce(Bbs) -> Bbs) -> Front {
    let scheduler = Arc::new(MemoryScheduler::new());
    let shutdown = CancellationToken::new();
    let bbs = Bbs::new(
        scheduler.clone(),
        fixtures::settings(),
        &ClientAccess::default(),
        shutdown.clone(),
    )
    .unwrap();
    let metrics = prometheus::Registry::new();
    let router = router(
        Arc::new(configure(bbs)),
        ApiMetrics::register(&metrics).unwrap(),
    );
    Front {
        router,
        scheduler,
        metrics,
        shutdown,
    }
}

impl Front {
    /// POSTs `body` to `path` as CC does; the status and the body.
    pub async fn raw(&self, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>, Option<String>) {
        let request = Request::post(path)
            .header("content-type", "application/x-protobuf")
            .header("x-vcap-request-id", "cc-request-1")
            .body(Body::from(body))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec(), content_type)
    }

    /// POSTs `request` to `path`; the answer, which must be a 200 with the
    /// protobuf media type.
    pub async fn call<A: Message + Default>(&self, path: &str, request: &impl Message) -> A {
        let (status, body, content_type) = self.raw(path, request.encode_to_vec()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(content_type.as_deref(), Some("application/x-protobuf"));
        A::decode(body.as_slice()).unwrap()
    }
}

/// The BBS error in an answer's `error` field.
pub fn error_of(error: Option<&bbs_models::Error>) -> Option<(Type, String)> {
    error.map(|e| (Type::try_from(e.r#type).unwrap(), e.message.clone()))
}

/// `(ResourceNotFound, canonical text)`.
pub fn not_found() -> Option<(Type, String)> {
    Some((
        Type::ResourceNotFound,
        "the requested resource could not be found".to_owned(),
    ))
}

/// `(ResourceExists, canonical text)`.
pub fn exists() -> Option<(Type, String)> {
    Some((
        Type::ResourceExists,
        "the requested resource already exists".to_owned(),
    ))
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `patience`.
pub async fn eventually<T, F, Fut>(patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of `name{labels}` in `registry`, 0 when absent.
pub fn counter(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric().iter())
        .filter(|metric| {
            labels.iter().all(|(key, value)| {
                metric
                    .get_label()
                    .iter()
                    .any(|label| label.name() == *key && label.value() == *value)
            })
        })
        .map(|metric| metric.get_counter().get_value() as u64)
        .sum()
}
