//! Forwarder tests against a fake CC on 127.0.0.1 that can fail on demand.

use super::*;
use crate::conformance::{Harness, TaskOutcome, sample_lrp, sample_task};
use crate::memory::MemoryScheduler;
use crate::model::{
    DesiredLrp, Instance, LrpId, LrpLifecycle, LrpUpdate, SchedulingInfo, Task, TaskStatus,
};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Default)]
struct FakeCc {
    received: Mutex<Vec<(String, serde_json::Value)>>,
    /// The `Authorization` header of every request, failed ones included.
    authorization: Mutex<Vec<Option<String>>>,
    /// Every request, failed ones included.
    requests: AtomicU32,
    fail_next: AtomicU32,
    status_when_failing: Mutex<u16>,
}

async fn record(State(cc): State<Arc<FakeCc>>, request: Request) -> StatusCode {
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap().to_owned());
    cc.authorization.lock().unwrap().push(authorization);
    cc.requests.fetch_add(1, Ordering::SeqCst);
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

/// The scheduler the forwarder runs over: memory, recording which task
/// completions it was told are delivered.
struct Recording {
    memory: Arc<MemoryScheduler>,
    delivered: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Scheduler for Recording {
    async fn desire(&self, lrp: DesiredLrp) -> Result<(), Error> {
        self.memory.desire(lrp).await
    }
    async fn update(&self, id: &LrpId, update: LrpUpdate) -> Result<(), Error> {
        self.memory.update(id, update).await
    }
    async fn get(&self, id: &LrpId) -> Result<DesiredLrp, Error> {
        self.memory.get(id).await
    }
    async fn list(&self) -> Result<Vec<SchedulingInfo>, Error> {
        self.memory.list().await
    }
    async fn stop(&self, id: &LrpId) -> Result<(), Error> {
        self.memory.stop(id).await
    }
    async fn stop_instance(&self, id: &LrpId, index: u32) -> Result<(), Error> {
        self.memory.stop_instance(id, index).await
    }
    async fn instances(&self, id: &LrpId) -> Result<Vec<Instance>, Error> {
        self.memory.instances(id).await
    }
    async fn desire_task(&self, task: Task) -> Result<(), Error> {
        self.memory.desire_task(task).await
    }
    async fn get_task(&self, guid: &str) -> Result<TaskStatus, Error> {
        self.memory.get_task(guid).await
    }
    async fn list_tasks(&self) -> Result<Vec<TaskStatus>, Error> {
        self.memory.list_tasks().await
    }
    async fn cancel_task(&self, guid: &str) -> Result<(), Error> {
        self.memory.cancel_task(guid).await
    }
    fn event_bus(&self) -> &crate::events::EventBus {
        self.memory.event_bus()
    }
    async fn completion_delivered(&self, guid: &str) {
        self.delivered.lock().unwrap().push(guid.to_owned());
    }
}

struct Setup {
    cc: Arc<FakeCc>,
    url: Url,
    memory: Arc<MemoryScheduler>,
    recording: Arc<Recording>,
    registry: Registry,
    shutdown: CancellationToken,
    harness: MemoryHarness,
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// A forwarder over a fresh memory scheduler to a fresh fake CC, its config
/// changed by `tune` (the CC URL is the fake's).
async fn setup_with(tune: impl FnOnce(&mut ForwarderConfig)) -> Setup {
    let (cc, url) = start_cc().await;
    let memory = Arc::new(MemoryScheduler::new());
    let recording = Arc::new(Recording {
        memory: memory.clone(),
        delivered: Mutex::new(Vec::new()),
    });
    let registry = Registry::new();
    let mut config = ForwarderConfig::new(url.clone());
    config.initial_backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(40);
    tune(&mut config);
    let forwarder = Forwarder::new(
        config,
        &ClientAccess::default(),
        ForwarderMetrics::register(&registry).unwrap(),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(forwarder.run(recording.clone(), shutdown.clone()));
    // Let the forwarder subscribe before events are produced.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    Setup {
        cc,
        url,
        memory,
        recording,
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

#[tokio::test]
async fn passwords_never_reach_the_reasons_logged() {
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let registry = Registry::new();
    let url = Url::parse(&format!("http://opi:s3cret@{closed}/")).unwrap();
    let forwarder = Forwarder::new(
        ForwarderConfig::new(url),
        &ClientAccess::default(),
        ForwarderMetrics::register(&registry).unwrap(),
    )
    .unwrap();
    let crash = CrashEvent {
        id: LrpId {
            guid: "app-guid".into(),
            version: "v1".into(),
        },
        instance: "app-guid-v1-0".into(),
        index: 0,
        cell_id: String::new(),
        reason: "CRASHED".into(),
        exit_status: 1,
        exit_description: String::new(),
        crash_count: 1,
        crash_timestamp: 1,
    };
    let Outcome::Retry(why) = forwarder.deliver_crash(&crash).await else {
        panic!("an unreachable CC is retried");
    };
    assert!(!why.contains("s3cret"), "{why}");
    assert!(why.contains(&closed.to_string()), "names CC: {why}");
    let done = TaskCompletion {
        guid: "t1".into(),
        completion_callback: format!("http://cb:t0ken@{closed}/internal/v4/tasks/t1/completed"),
        failed: false,
        failure_reason: String::new(),
        result: String::new(),
    };
    let Outcome::Retry(why) = forwarder.deliver_task(&done).await else {
        panic!("an unreachable callback is retried");
    };
    assert!(!why.contains("t0ken"), "{why}");
}

#[tokio::test]
async fn the_cc_urls_userinfo_is_the_only_credential_sent() {
    // Without userinfo: no Authorization at all (not the CC client's
    // default user).
    let s = setup().await;
    let lrp = sample_lrp(&s.harness, "app", "v1", 1);
    s.memory.desire(lrp.clone()).await.unwrap();
    s.memory.crash(&lrp.id, 0, 1, "CRASHED").unwrap();
    wait_for(&s.cc, 1).await;
    assert_eq!(*s.cc.authorization.lock().unwrap(), vec![None]);
    s.shutdown.cancel();

    // With userinfo: Basic from the CC URL for crashes (CC is `cc` here),
    // from the callback URL for a task completion (to the setup's own CC).
    let (cc, url) = start_cc().await;
    let mut with_user = url.clone();
    with_user.set_username("opi").unwrap();
    with_user.set_password(Some("s3cret")).unwrap();
    let s = setup_with(|config| config.cc_url = with_user).await;
    s.memory.desire(lrp.clone()).await.unwrap();
    s.memory.crash(&lrp.id, 0, 1, "CRASHED").unwrap();
    wait_for(&cc, 1).await;
    assert_eq!(
        *cc.authorization.lock().unwrap(),
        vec![Some("Basic b3BpOnMzY3JldA==".to_owned())]
    );
    let mut callback = s.url.join("internal/v4/tasks/t1/completed").unwrap();
    callback.set_username("cb").unwrap();
    callback.set_password(Some("t0ken")).unwrap();
    complete_with_callback(&s, "t1", callback.to_string()).await;
    wait_for(&s.cc, 1).await;
    assert_eq!(
        *s.cc.authorization.lock().unwrap(),
        vec![Some("Basic Y2I6dDBrZW4=".to_owned())]
    );
    s.shutdown.cancel();
}

/// Desires task `guid` reporting to `callback` and completes it.
async fn complete_with_callback(s: &Setup, guid: &str, callback: String) {
    let mut task = sample_task(&s.harness, guid, TaskOutcome::Succeed);
    task.completion_callback = callback;
    s.memory.desire_task(task).await.unwrap();
    s.memory.complete_task(guid, false, "", "ok").unwrap();
}

/// Waits until `probe` holds, or fails naming `what`.
async fn until(what: &str, probe: impl Fn() -> bool) {
    for _ in 0..500 {
        if probe() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

impl Setup {
    fn delivered(&self) -> Vec<String> {
        self.recording.delivered.lock().unwrap().clone()
    }

    fn callback(&self, guid: &str) -> String {
        format!("{}internal/v4/tasks/{guid}/completed", self.cc_url())
    }
}

#[tokio::test]
async fn a_completion_is_acknowledged_once_cc_has_it_not_while_retrying() {
    let s = setup().await;
    s.cc.fail_next.store(u32::MAX, Ordering::SeqCst);
    complete_with_callback(&s, "t1", s.callback("t1")).await;
    until("three failed tries", || {
        s.cc.requests.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert!(s.delivered().is_empty(), "acknowledged while CC refused it");

    s.cc.fail_next.store(0, Ordering::SeqCst);
    wait_for(&s.cc, 1).await;
    until("the acknowledgement", || !s.delivered().is_empty()).await;
    // Another completion goes through after it: the first is not acknowledged twice.
    complete_with_callback(&s, "t2", s.callback("t2")).await;
    until("the second acknowledgement", || s.delivered().len() >= 2).await;
    assert_eq!(s.delivered(), ["t1", "t2"]);
    s.shutdown.cancel();
}

#[tokio::test]
async fn a_completion_dropped_for_good_is_acknowledged() {
    let s = setup().await;
    *s.cc.status_when_failing.lock().unwrap() = 404;
    s.cc.fail_next.store(1, Ordering::SeqCst);
    complete_with_callback(&s, "rejected", s.callback("rejected")).await;
    complete_with_callback(&s, "no-callback", String::new()).await;
    complete_with_callback(&s, "bad-url", "not a url".into()).await;
    until("three acknowledgements", || s.delivered().len() >= 3).await;
    let mut delivered = s.delivered();
    delivered.sort();
    assert_eq!(delivered, ["bad-url", "no-callback", "rejected"]);
    for reason in ["rejected", "no_callback", "bad_url"] {
        assert_eq!(
            metric(&s.registry, "cube_opi_events_dropped_total", reason),
            1.0,
            "{reason}"
        );
    }
    assert!(s.cc.received.lock().unwrap().is_empty());
    s.shutdown.cancel();
}

#[tokio::test]
async fn a_completion_lost_to_a_full_queue_is_not_acknowledged() {
    let s = setup_with(|config| config.max_pending = 1).await;
    s.cc.fail_next.store(u32::MAX, Ordering::SeqCst);
    complete_with_callback(&s, "t1", s.callback("t1")).await;
    until("a failed try of t1", || {
        s.cc.requests.load(Ordering::SeqCst) >= 1
    })
    .await;
    complete_with_callback(&s, "t2", s.callback("t2")).await;
    until("t1 dropped", || {
        metric(&s.registry, "cube_opi_events_dropped_total", "queue_full") == 1.0
    })
    .await;
    s.cc.fail_next.store(0, Ordering::SeqCst);
    until("t2 acknowledged", || !s.delivered().is_empty()).await;
    assert_eq!(s.delivered(), ["t2"]);
    let received = s.cc.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].1["task_guid"], "t2");
    s.shutdown.cancel();
}

#[test]
fn a_cc_url_that_cannot_take_a_path_is_refused() {
    let registry = Registry::new();
    let refused = Forwarder::new(
        ForwarderConfig::new(Url::parse("mailto:cc@example.com").unwrap()),
        &ClientAccess::default(),
        ForwarderMetrics::register(&registry).unwrap(),
    );
    assert!(matches!(refused, Err(Error::Internal(_))));
}

impl Setup {
    fn cc_url(&self) -> String {
        self.url.to_string()
    }
}
