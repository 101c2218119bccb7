//! Task completions are never lost and reported once: through a dropped
//! event stream, across an OPI restart, and when both the stream and the
//! catch-up listing see the same completion (see `opi_diego::completions`).
//!
//! "Once" is checked with a barrier: after the task under test was
//! reported, a second task completes, and its completion comes through the
//! stream after anything the backend could still report about the first
//! one (stream and listing are handled in one loop, in order).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use opi::Scheduler;
use opi::conformance::{TaskOutcome, eventually, sample_task};
use opi::model::{Event, Task, TaskCompletion, TaskState};
use opi_diego::{BbsClient, DiegoScheduler, proto};
use testkit::bbs::FakeBbs;

use common::Samples;

/// The route the backend lists tasks with.
const LIST: &str = "/v1/tasks/list.r3";
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
    // Resolved and deleted, so no later listing can report it again; still
    // readable as completed.
    assert_eq!(state(&bbs, "t-1"), None);
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
    assert_eq!(state(&bbs, "t-1"), None, "not resolved and deleted");
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
    until("t-1 deleted", || state(&bbs, "t-1").is_none()).await;
}
