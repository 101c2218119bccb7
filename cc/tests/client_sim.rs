//! The client against the simulator (and against deliberately broken servers),
//! all on 127.0.0.1 with ports chosen by the OS.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use cc::model::BulkToken;
use cc::sim::client::SimClient;
use cc::sim::state::{AppManifest, Scale};
use cc::{Client, ClientConfig, Error, RetryPolicy};
use cube_runtime::{Service, Shutdown};

struct RunningSim {
    url: String,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<cc::Result<()>>,
}

impl RunningSim {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("sim stops within 30s")
            .unwrap()
            .unwrap();
    }
}

async fn start_sim(dir: &Path, configure: impl FnOnce(&mut cc::sim::Config)) -> RunningSim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = cc::sim::Config::new(dir);
    configure(&mut config);
    let shutdown = Shutdown::new();
    let service = Service::new(shutdown.clone());
    let task = tokio::spawn(cc::sim::run(config, listener, service));
    RunningSim {
        url: format!("http://{addr}"),
        shutdown,
        task,
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

fn client(url: &str) -> Client {
    let mut config = ClientConfig::new(url);
    config.retry = fast_retry();
    Client::new(config).unwrap()
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

#[tokio::test]
async fn walks_ten_thousand_apps_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), |c| c.fake_apps = 10_000).await;
    let cc = client(&sim.url);
    let fingerprints = cc.fingerprints(500).await.unwrap();
    assert_eq!(fingerprints.len(), 10_000);
    let unique: HashSet<_> = fingerprints
        .iter()
        .map(|f| f.process_guid.clone())
        .collect();
    assert_eq!(unique.len(), 10_000, "no app is listed twice");
    // A batch size that does not divide the total.
    assert_eq!(cc.fingerprints(333).await.unwrap(), fingerprints);
    // Full records for a chosen subset, with the same etags.
    let chosen: Vec<_> = fingerprints
        .iter()
        .step_by(10)
        .map(|f| f.process_guid.clone())
        .collect();
    let records = cc.desired_apps(&chosen).await.unwrap();
    assert_eq!(records.len(), 1_000);
    for (record, fingerprint) in records.iter().zip(fingerprints.iter().step_by(10)) {
        assert_eq!(record.process_guid, fingerprint.process_guid);
        assert_eq!(record.etag, fingerprint.etag);
        assert!(record.docker_image.is_some());
    }
    sim.stop().await;
}

#[tokio::test]
async fn an_update_changes_the_etag_and_a_restart_the_process_guid() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), |_| {}).await;
    let cc = client(&sim.url);
    let api = SimClient::new(&sim.url).unwrap();
    let manifest = AppManifest {
        docker_image: Some("nginx".into()),
        ..AppManifest::default()
    };
    api.put_app("web", &manifest).await.unwrap();
    api.stage("web", true).await.unwrap();
    let before = cc.fingerprints(10).await.unwrap();
    assert_eq!(before.len(), 1);

    let scale = Scale {
        instances: Some(4),
        ..Scale::default()
    };
    api.scale("web", &scale).await.unwrap();
    let after = cc.fingerprints(10).await.unwrap();
    assert_eq!(after[0].process_guid, before[0].process_guid);
    assert_ne!(after[0].etag, before[0].etag);
    let record = cc
        .desired_apps(&[after[0].process_guid.clone()])
        .await
        .unwrap();
    assert_eq!(record[0].num_instances, 4);

    api.stop("web").await.unwrap();
    assert!(cc.fingerprints(10).await.unwrap().is_empty());
    api.start("web").await.unwrap();
    let restarted = cc.fingerprints(10).await.unwrap();
    assert_ne!(restarted[0].process_guid, before[0].process_guid);
    assert_eq!(
        restarted[0].process_guid.app_guid(),
        before[0].process_guid.app_guid()
    );
    // The old version is gone for good.
    assert!(
        cc.desired_apps(&[before[0].process_guid.clone()])
            .await
            .unwrap()
            .is_empty()
    );
    sim.stop().await;
}

/// A CC whose first page works and whose second page fails with `status`.
async fn broken_cc(
    status: StatusCode,
    failures_before_success: usize,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let second_page_calls = Arc::new(AtomicUsize::new(0));
    let counter = second_page_calls.clone();
    let router = Router::new()
        .route(
            "/internal/bulk/apps",
            get(move |State(counter): State<Arc<AtomicUsize>>, RawQuery(query): RawQuery| async move {
                let query = query.unwrap_or_default();
                let first = query.contains("token=%7B%22id%22%3A0%7D");
                let page = |id: Option<u64>, items: serde_json::Value| {
                    axum::Json(serde_json::json!({"fingerprints": items, "token": {"id": id}}))
                };
                if first {
                    return (StatusCode::OK, page(Some(1), serde_json::json!([{"process_guid": "a", "etag": "1.0"}])));
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n < failures_before_success {
                    (status, axum::Json(serde_json::json!({"code": 10001, "description": "boom", "error_code": "CF-ServerError"})))
                } else {
                    (StatusCode::OK, page(None, serde_json::json!([])))
                }
            }),
        )
        .with_state(counter);
    (serve(router).await, second_page_calls)
}

#[tokio::test]
async fn a_server_error_mid_walk_fails_the_walk_after_retries() {
    let (addr, calls) = broken_cc(StatusCode::INTERNAL_SERVER_ERROR, usize::MAX).await;
    let error = client(&format!("http://{addr}"))
        .fingerprints(1)
        .await
        .unwrap_err();
    match &error {
        Error::Status { status, body, .. } => {
            assert_eq!(*status, 500);
            assert!(body.contains("CF-ServerError: boom"), "{body}");
        }
        other => panic!("expected a 500, got {other}"),
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "tried as often as the policy says"
    );
}

#[tokio::test]
async fn an_endless_answer_is_refused_at_the_limit_not_buffered() {
    // A bulk page that never ends (chunked, no Content-Length).
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let router = Router::new().route(
        "/internal/bulk/apps",
        get(move || {
            let counter = counter.clone();
            async move {
                let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
                let stream =
                    futures::StreamExt::map(futures::stream::repeat(chunk), move |chunk| {
                        counter.fetch_add(chunk.len(), Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(chunk)
                    });
                axum::body::Body::from_stream(stream)
            }
        }),
    );
    let addr = serve(router).await;
    let error = tokio::time::timeout(
        Duration::from_secs(60),
        client(&format!("http://{addr}")).fingerprints(1),
    )
    .await
    .expect("the client stops at the limit instead of reading on")
    .unwrap_err();
    assert!(
        matches!(&error, Error::Decode { message, .. } if message.contains("limit")),
        "{error}"
    );
    // The client hung up: the server's stream stops. What it produced past
    // the limit sat in the two sides' socket and HTTP buffers, whose size
    // depends on the kernel's TCP autotuning (16 MiB of slack was exceeded
    // once in CI), so the bound is one more limit's worth: a retry, or
    // reading on, would pass it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let settled = sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sent.load(Ordering::SeqCst), settled, "still being read");
    assert!(
        (settled as u64) < 2 * cc::client::MAX_JSON_ANSWER,
        "{settled} bytes sent"
    );
}

#[tokio::test]
async fn a_transient_server_error_is_retried_away() {
    let (addr, calls) = broken_cc(StatusCode::SERVICE_UNAVAILABLE, 1).await;
    let fingerprints = client(&format!("http://{addr}"))
        .fingerprints(1)
        .await
        .unwrap();
    assert_eq!(fingerprints.len(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (addr, calls) = broken_cc(StatusCode::BAD_REQUEST, usize::MAX).await;
    let error = client(&format!("http://{addr}"))
        .fingerprints(1)
        .await
        .unwrap_err();
    assert!(error.is_client_error(), "{error}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn wrong_credentials_are_a_401_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), |c| c.fake_apps = 1).await;
    let mut config = ClientConfig::new(&sim.url);
    config.password = Some("wrong".into());
    config.retry = fast_retry();
    let error = Client::new(config)
        .unwrap()
        .fingerprints(10)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 401, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("CF-NotAuthenticated"), "{error}");
    sim.stop().await;
}

#[tokio::test]
async fn no_answer_is_retried_then_reported() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let error = client(&format!("http://{closed}"))
        .fingerprints_page(10, BulkToken::start())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("cannot connect"), "{error}");
}

#[tokio::test]
async fn a_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), |c| c.fake_apps = 50).await;
    let api = SimClient::new(&sim.url).unwrap();
    let manifest = AppManifest {
        docker_image: Some("nginx".into()),
        instances: Some(2),
        ..AppManifest::default()
    };
    api.put_app("web", &manifest).await.unwrap();
    api.stage("web", true).await.unwrap();
    let apps_before = api.list().await.unwrap();
    let fingerprints_before = client(&sim.url).fingerprints(7).await.unwrap();
    sim.stop().await;

    // Same flag again: the fake apps are found, not added twice.
    let sim = start_sim(dir.path(), |c| c.fake_apps = 50).await;
    let api = SimClient::new(&sim.url).unwrap();
    assert_eq!(api.list().await.unwrap(), apps_before);
    assert_eq!(
        client(&sim.url).fingerprints(7).await.unwrap(),
        fingerprints_before
    );
    assert_eq!(fingerprints_before.len(), 51);
    sim.stop().await;
}

#[tokio::test]
async fn sim_client_names_an_unreachable_cc() {
    // Nothing listens on port 9 (discard) on loopback in test environments.
    let unreachable = SimClient::new("http://127.0.0.1:9").unwrap();
    let error = unreachable.list().await.unwrap_err().to_string();
    assert!(
        error.starts_with("cannot reach CC at http://127.0.0.1:9"),
        "{error}"
    );
}
