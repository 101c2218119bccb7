//! Forwarder tests against a fake CC on 127.0.0.1 that can fail on demand.

use super::*;
use crate::conformance::{Harness, TaskOutcome, sample_lrp, sample_task};
use crate::memory::MemoryScheduler;
use crate::model::{LrpId, LrpLifecycle};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Default)]
struct FakeCc {
    received: Mutex<Vec<(String, serde_json::Value)>>,
    fail_next: AtomicU32,
    status_when_failing: Mutex<u16>,
}

async fn record(State(cc): State<Arc<FakeCc>>, request: Request) -> StatusCode {
    let path = request.uri().path().to_owned();
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    if cc
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::from_u16(*cc.status_when_failing.lock().unwrap()).unwrap();
    }
    let body = serde_json::from_slice(&bytes).unwrap();
    cc.received.lock().unwrap().push((path, body));
    StatusCode::OK
}

async fn start_cc() -> (Arc<FakeCc>, Url) {
    let cc = Arc::new(FakeCc::default());
    *cc.status_when_failing.lock().unwrap() = 503;
    let router = Router::new()
        .route("/{*path}", post(record))
        .with_state(cc.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (cc, Url::parse(&format!("http://{addr}")).unwrap())
}

struct MemoryHarness(MemoryScheduler);

#[async_trait::async_trait]
impl Harness for MemoryHarness {
    fn scheduler(&self) -> &dyn Scheduler {
        &self.0
    }
    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: "busybox".into(),
            command: vec![],
            credentials: None,
        }
    }
    fn task_lifecycle(&self, _outcome: TaskOutcome) -> LrpLifecycle {
        self.lrp_lifecycle(0)
    }
    async fn crash_instance(&self, _: &LrpId, _: u32, _: i32) -> Result<(), String> {
        Ok(())
    }
    async fn finish_task(&self, _: &str, _: TaskOutcome) -> Result<(), String> {
        Ok(())
    }
}

struct Setup {
    cc: Arc<FakeCc>,
    url: Url,
    memory: Arc<MemoryScheduler>,
    registry: Registry,
    shutdown: CancellationToken,
    harness: MemoryHarness,
}

async fn setup() -> Setup {
    let (cc, url) = start_cc().await;
    let memory = Arc::new(MemoryScheduler::new());
    let registry = Registry::new();
    let mut config = ForwarderConfig::new(url.clone());
    config.initial_backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(40);
    let forwarder = Forwarder::new(
        config,
        crate::http::http_client_builder().build().unwrap(),
        ForwarderMetrics::register(&registry).unwrap(),
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(forwarder.run(memory.clone(), shutdown.clone()));
    // Let the forwarder subscribe before events are produced.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    Setup {
        cc,
        url,
        memory,
        registry,
        shutdown,
        harness: MemoryHarness(MemoryScheduler::new()),
    }
}

async fn wait_for(cc: &FakeCc, count: usize) -> Vec<(String, serde_json::Value)> {
    for _ in 0..500 {
        let received = cc.received.lock().unwrap().clone();
        if received.len() >= count {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "CC received {:?}, wanted {count} calls",
        cc.received.lock().unwrap()
    );
}

fn metric(registry: &Registry, name: &str, label: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().to_vec())
        .filter(|m| m.get_label().iter().any(|l| l.value() == label))
        .map(|m| m.get_counter().get_value())
        .sum()
}

#[tokio::test]
async fn crash_reaches_cc_with_its_details() {
    let s = setup().await;
    let lrp = sample_lrp(&s.harness, "app", "v1", 2);
    s.memory.desire(lrp.clone()).await.unwrap();
    s.memory.crash(&lrp.id, 1, 137, "OOMKilled").unwrap();
    let received = wait_for(&s.cc, 1).await;
    assert_eq!(received[0].0, "/internal/v4/apps/app-guid-v1/crashed");
    let body = &received[0].1;
    assert_eq!(body["index"], 1);
    assert_eq!(body["reason"], "OOMKilled");
    assert_eq!(body["exit_status"], 137);
    assert_eq!(body["crash_count"], 1);
    assert!(body["crash_timestamp"].as_i64().unwrap() > 0);
    assert_eq!(body["instance"], "app-guid-v1-1");
    s.shutdown.cancel();
}

#[tokio::test]
async fn cc_outage_loses_no_event() {
    let s = setup().await;
    s.cc.fail_next.store(4, Ordering::SeqCst);
    let lrp = sample_lrp(&s.harness, "app", "v1", 1);
    s.memory.desire(lrp.clone()).await.unwrap();
    let mut task = sample_task(&s.harness, "t1", TaskOutcome::Succeed);
    task.completion_callback = format!("{}internal/v4/tasks/t1/completed", s.cc_url());
    s.memory.desire_task(task).await.unwrap();

    s.memory.crash(&lrp.id, 0, 1, "CRASHED").unwrap();
    s.memory.complete_task("t1", false, "", "ok").unwrap();
    let received = wait_for(&s.cc, 2).await;
    assert_eq!(
        s.cc.fail_next.load(Ordering::SeqCst),
        0,
        "the outage happened"
    );
    let paths: Vec<&str> = received.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        paths.contains(&"/internal/v4/apps/app-guid-v1/crashed"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/internal/v4/tasks/t1/completed"),
        "{paths:?}"
    );
    let task_body = &received
        .iter()
        .find(|(p, _)| p.ends_with("completed"))
        .unwrap()
        .1;
    assert_eq!(task_body["task_guid"], "t1");
    assert_eq!(task_body["failed"], false);
    assert_eq!(task_body["result"], "ok");
    assert_eq!(
        metric(&s.registry, "cube_opi_events_delivered_total", "crash"),
        1.0
    );
    s.shutdown.cancel();
}

#[tokio::test]
async fn crash_of_a_stopped_lrp_is_dropped_after_an_outage() {
    let s = setup().await;
    s.cc.fail_next.store(u32::MAX, Ordering::SeqCst);
    let lrp = sample_lrp(&s.harness, "app", "v1", 1);
    s.memory.desire(lrp.clone()).await.unwrap();
    s.memory.crash(&lrp.id, 0, 1, "CRASHED").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.memory.stop(&lrp.id).await.unwrap();
    for _ in 0..500 {
        if metric(
            &s.registry,
            "cube_opi_events_dropped_total",
            "no_longer_desired",
        ) == 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        metric(
            &s.registry,
            "cube_opi_events_dropped_total",
            "no_longer_desired"
        ),
        1.0
    );
    assert!(s.cc.received.lock().unwrap().is_empty());
    s.shutdown.cancel();
}

#[tokio::test]
async fn permanent_rejection_is_dropped_not_retried() {
    let s = setup().await;
    *s.cc.status_when_failing.lock().unwrap() = 404;
    s.cc.fail_next.store(1, Ordering::SeqCst);
    let lrp = sample_lrp(&s.harness, "app", "v1", 1);
    s.memory.desire(lrp.clone()).await.unwrap();
    s.memory.crash(&lrp.id, 0, 1, "CRASHED").unwrap();
    for _ in 0..500 {
        if metric(&s.registry, "cube_opi_events_dropped_total", "rejected") == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        metric(&s.registry, "cube_opi_events_dropped_total", "rejected"),
        1.0
    );
    // A second crash goes through: the first was not retried into it.
    s.memory.crash(&lrp.id, 0, 1, "CRASHED").unwrap();
    let received = wait_for(&s.cc, 1).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1["crash_count"], 2);
    s.shutdown.cancel();
}

#[test]
fn backoff_doubles_and_caps() {
    let initial = Duration::from_millis(100);
    let max = Duration::from_secs(1);
    assert_eq!(backoff(initial, max, 1), Duration::from_millis(100));
    assert_eq!(backoff(initial, max, 2), Duration::from_millis(200));
    assert_eq!(backoff(initial, max, 4), Duration::from_millis(800));
    assert_eq!(backoff(initial, max, 5), max);
    assert_eq!(backoff(initial, max, u32::MAX), max);
}

#[test]
fn passwords_are_redacted_in_logs() {
    let url = Url::parse("http://user:s3cret@cc.local/internal").unwrap();
    let shown = redact(&url);
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("user:redacted@"), "{shown}");
}

impl Setup {
    fn cc_url(&self) -> String {
        self.url.to_string()
    }
}
