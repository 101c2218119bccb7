//! Task completions are never lost and reported once per process: through
//! a dropped event stream, across an OPI restart, and when both the stream
//! and the catch-up listing see the same completion; a task leaves the BBS
//! only once CC has its completion (`Scheduler::completion_delivered`), so
//! one CC never accepted is reported again by the next OPI (see
//! `opi_diego::completions`).
//!
//! "Once" is checked with a barrier: after the task under test was
//! reported, a second task completes, and its completion comes through the
//! stream after anything the backend could still report about the first
//! one (stream and listing are handled in one loop, in order).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use opi::Scheduler;
use opi::conformance::{TaskOutcome, eventually, sample_task};
use opi::forward::{Forwarder, ForwarderConfig, ForwarderMetrics};
use opi::model::{Event, Task, TaskCompletion, TaskState};
use opi_diego::{BbsClient, DiegoScheduler, proto};
use testkit::bbs::FakeBbs;

use common::Samples;

/// The route the backend lists tasks with.
const LIST: &str = "/v1/tasks/list.r3";
/// The route the backend resolves tasks with.
const RESOLVING: &str = "/v1/tasks/resolving";
/// How long a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(20);

fn task(guid: &str) -> Task {
    sample_task(&Samples, guid, TaskOutcome::Succeed)
}

async fn desire(scheduler: &DiegoScheduler, guids: &[&str]) {
    for guid in guids {
        scheduler.desire_task(task(guid)).await.unwrap();
    }
}

fn succeed(bbs: &FakeBbs, guid: &str) {
    bbs.complete_task(guid, false, "", "").unwrap();
}

/// The next task completion on `events`.
async fn next_completion(events: &mut BoxStream<'static, Event>) -> TaskCompletion {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("no task completion reported in time")
            .expect("the event stream ended");
        if let Event::TaskCompleted(done) = event {
            return done;
        }
    }
}

/// Completes `barrier` and returns the guids of every completion reported
/// before it.
async fn reported_before(
    bbs: &FakeBbs,
    events: &mut BoxStream<'static, Event>,
    barrier: &str,
) -> Vec<String> {
    succeed(bbs, barrier);
    let mut before = Vec::new();
    loop {
        let done = next_completion(events).await;
        if done.guid == barrier {
            return before;
        }
        before.push(done.guid);
    }
}

async fn until(what: &str, probe: impl Fn() -> bool) {
    eventually(PATIENCE, || async {
        if probe() {
            Ok(())
        } else {
            Err(what.to_owned())
        }
    })
    .await
    .unwrap();
}

fn state(bbs: &FakeBbs, guid: &str) -> Option<proto::task::State> {
    bbs.task(guid)
        .map(|t| proto::task::State::try_from(t.state).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_completed_while_the_stream_is_down_is_reported_once_after_resubscribing() {
    let (bbs, scheduler) = common::connected().await;
    let mut events = scheduler.events();
    desire(&scheduler, &["t-1", "barrier"]).await;

    // The stream breaks and cannot be reopened while the task completes:
    // its event reaches nobody.
    bbs.set_unavailable(true);
    bbs.drop_event_streams();
    succeed(&bbs, "t-1");
    bbs.set_unavailable(false);

    let done = next_completion(&mut events).await;
    assert_eq!(done.guid, "t-1");
    assert!(!done.failed);
    assert_eq!(done.completion_callback, task("t-1").completion_callback);
    let again = reported_before(&bbs, &mut events, "barrier").await;
    assert!(again.is_empty(), "reported again: {again:?}");
    // Kept until CC has it...
    assert_eq!(state(&bbs, "t-1"), Some(proto::task::State::Completed));
    // ...then resolved and deleted, so no later listing can report it
    // again; still readable as completed.
    scheduler.completion_delivered("t-1").await;
    until("t-1 deleted", || state(&bbs, "t-1").is_none()).await;
    let status = scheduler.get_task("t-1").await.unwrap();
    assert!(matches!(
        status.state,
        TaskState::Completed { failed: false, .. }
    ));
    let listed = scheduler.list_tasks().await.unwrap();
    assert!(listed.contains(&status), "{listed:?}");
    assert!(matches!(
        scheduler.cancel_task("t-1").await,
        Err(opi::Error::Conflict(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_completed_while_opi_was_down_is_reported_once_by_the_next_opi() {
    let bbs = FakeBbs::start().await;
    let before = DiegoScheduler::new(common::config(&bbs)).unwrap();
    common::until_ready(&before).await;
    desire(&before, &["t-1", "barrier"]).await;
    drop(before);

    bbs.complete_task("t-1", true, "Exited with status 1", "")
        .unwrap();

    let next = DiegoScheduler::new(common::config(&bbs)).unwrap();
    let mut events = next.events();
    let done = next_completion(&mut events).await;
    assert_eq!(done.guid, "t-1");
    assert!(done.failed);
    assert_eq!(done.failure_reason, "Exited with status 1");
    let again = reported_before(&bbs, &mut events, "barrier").await;
    assert!(again.is_empty(), "reported again: {again:?}");
    assert_eq!(state(&bbs, "t-1"), Some(proto::task::State::Completed));
    next.completion_delivered("t-1").await;
    until("t-1 deleted", || state(&bbs, "t-1").is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_reported_by_an_opi_that_stopped_before_deleting_it_is_not_reported_again() {
    let bbs = FakeBbs::start().await;
    let before = DiegoScheduler::new(common::config(&bbs)).unwrap();
    common::until_ready(&before).await;
    desire(&before, &["t-1", "barrier"]).await;
    drop(before);
    // What an OPI leaves when stopped between resolving and deleting.
    succeed(&bbs, "t-1");
    let client = BbsClient::new(bbs.url().parse().unwrap(), Some(&common::client_tls())).unwrap();
    client.resolving_task("t-1").await.unwrap();

    let next = DiegoScheduler::new(common::config(&bbs)).unwrap();
    let mut events = next.events();
    // The catch-up deletes what the last OPI left resolving...
    until("t-1 deleted", || state(&bbs, "t-1").is_none()).await;
    // ...and reports nothing of it.
    let again = reported_before(&bbs, &mut events, "barrier").await;
    assert!(again.is_empty(), "reported again: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_seen_by_both_the_stream_and_the_listing_is_reported_once() {
    let (bbs, scheduler) = common::connected().await;
    let mut events = scheduler.events();
    desire(&scheduler, &["first", "t-1", "barrier"]).await;
    // Once "first" is reported the stream is read: the first catch-up is over.
    let early = reported_before(&bbs, &mut events, "first").await;
    assert!(early.is_empty(), "nothing had completed: {early:?}");

    // The stream breaks; the backend resubscribes and lists, and the
    // listing waits while the task completes: the new stream carries the
    // completion, and the listing shows it.
    let lists = bbs.requests(LIST);
    bbs.hold(LIST);
    bbs.drop_event_streams();
    until("listing after resubscribing", || bbs.requests(LIST) > lists).await;
    succeed(&bbs, "t-1");
    bbs.release(LIST);

    assert_eq!(next_completion(&mut events).await.guid, "t-1");
    let again = reported_before(&bbs, &mut events, "barrier").await;
    assert!(again.is_empty(), "reported again: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_stays_in_the_bbs_until_someone_listens() {
    let bbs = FakeBbs::start().await;
    let before = DiegoScheduler::new(common::config(&bbs)).unwrap();
    common::until_ready(&before).await;
    desire(&before, &["t-1"]).await;
    drop(before);
    succeed(&bbs, "t-1");
    let lists = bbs.requests(LIST);

    let next = DiegoScheduler::new(common::config(&bbs)).unwrap();
    until("catch-up listing", || bbs.requests(LIST) > lists).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Found by the listing, but with nobody subscribed it is not handed off
    // (it would be lost) nor resolved.
    assert_eq!(state(&bbs, "t-1"), Some(proto::task::State::Completed));

    let mut events = next.events();
    assert_eq!(next_completion(&mut events).await.guid, "t-1");
    next.completion_delivered("t-1").await;
    until("t-1 deleted", || state(&bbs, "t-1").is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_cc_never_accepted_is_reported_again_by_the_next_opi() {
    let bbs = FakeBbs::start().await;
    let before = DiegoScheduler::new(common::config(&bbs)).unwrap();
    common::until_ready(&before).await;
    let mut events = before.events();
    desire(&before, &["t-1", "barrier"]).await;
    succeed(&bbs, "t-1");
    // Handed off, but CC never accepted it: the subscriber never says
    // it was delivered.
    assert_eq!(next_completion(&mut events).await.guid, "t-1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state(&bbs, "t-1"), Some(proto::task::State::Completed));
    assert_eq!(bbs.requests(RESOLVING), 0, "resolved before CC had it");
    // OPI stops with the completion undelivered.
    drop(events);
    drop(before);

    let next = DiegoScheduler::new(common::config(&bbs)).unwrap();
    let mut events = next.events();
    let done = next_completion(&mut events).await;
    assert_eq!(done.guid, "t-1");
    assert_eq!(done.completion_callback, task("t-1").completion_callback);
    next.completion_delivered("t-1").await;
    until("t-1 deleted", || state(&bbs, "t-1").is_none()).await;
    let again = reported_before(&bbs, &mut events, "barrier").await;
    assert!(again.is_empty(), "reported again: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_completion_whose_resolve_failed_is_resolved_by_the_next_listing() {
    let (bbs, scheduler) = common::connected().await;
    let mut events = scheduler.events();
    desire(&scheduler, &["t-1", "barrier"]).await;
    succeed(&bbs, "t-1");
    assert_eq!(next_completion(&mut events).await.guid, "t-1");

    // CC has it, but the BBS cannot take the resolve.
    bbs.set_unavailable(true);
    scheduler.completion_delivered("t-1").await;
    until("a resolve tried", || bbs.requests(RESOLVING) > 0).await;
    // Long enough for the refusal to reach the backend.
    tokio::time::sleep(Duration::from_millis(300)).await;
    bbs.set_unavailable(false);
    assert_eq!(state(&bbs, "t-1"), Some(proto::task::State::Completed));

    // The next listing resolves and deletes it, and reports nothing again.
    bbs.drop_event_streams();
    until("t-1 deleted", || state(&bbs, "t-1").is_none()).await;
    let again = reported_before(&bbs, &mut events, "barrier").await;
    assert!(again.is_empty(), "reported again: {again:?}");
}

/// A CC that answers every callback with `status`, recording the task
/// guids of those it accepted.
#[derive(Default)]
struct FakeCc {
    status: AtomicU16,
    tries: AtomicU16,
    accepted: Mutex<Vec<String>>,
}

async fn cc_callback(
    axum::extract::State(cc): axum::extract::State<Arc<FakeCc>>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> axum::http::StatusCode {
    cc.tries.fetch_add(1, Ordering::SeqCst);
    let status = cc.status.load(Ordering::SeqCst);
    if status == 200 {
        let guid = body["task_guid"].as_str().unwrap_or_default().to_owned();
        cc.accepted.lock().unwrap().push(guid);
    }
    axum::http::StatusCode::from_u16(status).unwrap()
}

/// A fake CC answering `status`, and its base URL.
async fn start_cc(status: u16) -> (Arc<FakeCc>, String) {
    let cc = Arc::new(FakeCc::default());
    cc.status.store(status, Ordering::SeqCst);
    let router = axum::Router::new()
        .route("/{*path}", axum::routing::post(cc_callback))
        .with_state(cc.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (cc, url)
}

/// An OPI: a backend over `bbs` and a forwarder to `cc_url`, until
/// `shutdown`; the handle ends once both are gone.
fn start_opi(
    bbs: &FakeBbs,
    cc_url: &str,
    shutdown: &tokio_util::sync::CancellationToken,
) -> (DiegoScheduler, tokio::task::JoinHandle<()>) {
    let scheduler = DiegoScheduler::new(common::config(bbs)).unwrap();
    let mut config = ForwarderConfig::new(cc_url.parse().unwrap());
    config.initial_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(100);
    let metrics = ForwarderMetrics::register(&prometheus::Registry::new()).unwrap();
    let access = cube_runtime::access::ClientAccess::default();
    let forwarder = Forwarder::new(config, &access, metrics).unwrap();
    let running = tokio::spawn(forwarder.run(Arc::new(scheduler.clone()), shutdown.clone()));
    (scheduler, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_leaves_the_bbs_only_once_cc_accepted_it_through_the_forwarder() {
    let bbs = FakeBbs::start().await;
    let (cc, cc_url) = start_cc(503).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (before, running) = start_opi(&bbs, &cc_url, &shutdown);
    common::until_ready(&before).await;
    let mut t = task("t-1");
    t.completion_callback = format!("{cc_url}/internal/v4/tasks/t-1/completed");
    before.desire_task(t).await.unwrap();
    succeed(&bbs, "t-1");

    // CC is down: the forwarder retries, the task stays in the BBS.
    until("retries", || cc.tries.load(Ordering::SeqCst) >= 3).await;
    assert_eq!(state(&bbs, "t-1"), Some(proto::task::State::Completed));
    assert_eq!(bbs.requests(RESOLVING), 0, "resolved before CC had it");
    // OPI stops before CC is back.
    shutdown.cancel();
    running.await.unwrap();
    drop(before);

    cc.status.store(200, Ordering::SeqCst);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_next, _running) = start_opi(&bbs, &cc_url, &shutdown);
    until("CC has t-1", || !cc.accepted.lock().unwrap().is_empty()).await;
    until("t-1 deleted", || state(&bbs, "t-1").is_none()).await;
    assert_eq!(*cc.accepted.lock().unwrap(), ["t-1"]);
    shutdown.cancel();
}
