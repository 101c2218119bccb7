//! Task completions: never lost, reported once per process, forgotten only
//! once CC has them.
//!
//! The BBS streams task changes (`/v1/events/tasks.r1`) but never replays
//! what a subscriber missed. So after every subscribe and resubscribe the
//! backend lists the `cf-tasks` domain (`/v1/tasks/list.r3`) and reports
//! every `COMPLETED` task not reported yet. The BBS record is what makes a
//! completion durable, so it stays `COMPLETED` until CC has the completion.
//! OPI is the task's consumer in Diego's protocol (the BBS's own completion
//! callback is left unset):
//!
//! 1. **hand off**: the completion is recorded in this process's ledger
//!    and published on the event bus, once a subscriber (OPI's forwarder)
//!    listens. An event published with no listener would be lost.
//! 2. **delivered**: the forwarder calls
//!    [`opi::Scheduler::completion_delivered`] once CC accepted the
//!    completion or refused it for good; the ledger marks it delivered.
//!    Nothing else marks it: not a retry, not a forwarder that dropped it
//!    from a full queue or stopped with it queued.
//! 3. **resolve**: `/v1/tasks/resolving` moves it to `RESOLVING`, the
//!    durable mark "CC has it".
//! 4. **delete**: `/v1/tasks/delete` removes it.
//!
//! Steps 3–4 run in their own loop ([`Completions::forget_delivered`]), one
//! task at a time, so the forwarder never waits for the BBS.
//!
//! Each listed task gets the step it still needs ([`step`]): `COMPLETED` and
//! not in the ledger (never handed off, or so long ago that the ledger
//! forgot it), report it; `COMPLETED` and handed off, nothing: the forwarder
//! is on it; `COMPLETED` and delivered, resolve and delete (a resolve that
//! failed); `RESOLVING`, delete only: CC had it (this process's, or one that
//! stopped before deleting). A completion from the stream is reported unless
//! the ledger has it. Resolve and delete failures are left to the next
//! listing.
//!
//! The stream and the listing are handled one at a time in one loop. The
//! stream is opened before the listing, so an event that arrives during the
//! listing waits in the stream. The ledger (task guid, creation time and
//! whether CC has it, kept [`REMEMBERED_FOR`]) drops the second sighting of
//! a completion seen both ways.
//!
//! **Guarantee.** The backend never loses a completion: a task stays in the
//! BBS until CC has its completion, so one CC had not accepted when OPI
//! stopped or was killed is reported again by the next OPI. Within one
//! process each completion is reported once (while the ledger remembers
//! it: one the forwarder has still not delivered after [`REMEMBERED_FOR`] is
//! reported again by the next listing). Across a restart it is reported
//! once as well, except in one window: CC accepted it, but OPI stopped
//! before resolving it; then the next OPI reports it again (at least once).
//! **Limits.** Diego deletes `COMPLETED` tasks 2 minutes after they
//! complete (`expire_completed_task_duration`), resolved or not, so an OPI
//! down longer misses them, and a completion CC has not accepted by then
//! survives only in the forwarder's queue. Diego also puts a `RESOLVING`
//! task back to `COMPLETED` after 30 s (`kick_task_duration`), which matters
//! only when a delete failed: this process resolves it again, a restarted
//! one reports it again. One OPI per BBS is assumed: each replica would
//! report what the stream shows it.

mod ledger;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use opi::events::EventBus;
use opi::model::{Event, TaskStatus};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::client::BbsClient;
use crate::error::DiegoError;
use crate::proto::{self, task::State};
use crate::translate::{TASKS_DOMAIN, task};
use ledger::Ledger;

/// How long a reported completion is remembered: to drop a second sighting,
/// and to answer for a completed task after it was deleted from the BBS.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(10 * 60);

/// Most reported completions remembered (the oldest are forgotten first).
pub const REMEMBERED_MAX: usize = 100_000;

/// How far this process got with a task's completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Not handed off: never, or so long ago that the ledger forgot it.
    New,
    /// Handed off to the event subscriber; CC does not have it yet.
    HandedOff,
    /// CC has it (or refused it for good): only resolve and delete are left.
    Delivered,
}

/// What a listed task still needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Hand its completion off (resolved and deleted once CC has it).
    Report,
    /// CC has it: resolve and delete it.
    Resolve,
    /// Resolving: CC had it; delete it.
    Delete,
    /// Not completed yet, or handed off and not delivered yet: nothing.
    Wait,
}

/// The step `task` needs, given how far this process got with it.
pub fn step(task: &proto::Task, progress: Progress) -> Step {
    match (State::try_from(task.state), progress) {
        (Ok(State::Completed), Progress::New) => Step::Report,
        (Ok(State::Completed), Progress::HandedOff) => Step::Wait,
        (Ok(State::Completed), Progress::Delivered) => Step::Resolve,
        (Ok(State::Resolving), _) => Step::Delete,
        _ => Step::Wait,
    }
}

/// The backend's event bus, with task completions reported once (see the
/// module docs).
pub(crate) struct Completions {
    client: BbsClient,
    bus: EventBus,
    /// How many event subscribers are alive.
    listeners: watch::Sender<usize>,
    ledger: Mutex<Ledger>,
    /// Delivered completions waiting to be resolved and deleted, in order.
    delivered: mpsc::UnboundedSender<String>,
    /// Their receiving end, read by [`Completions::forget_delivered`].
    to_forget: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
}

impl Completions {
    /// Completions of the tasks `client`'s BBS holds.
    pub(crate) fn new(client: BbsClient) -> Self {
        let (delivered, to_forget) = mpsc::unbounded_channel();
        Self {
            client,
            bus: EventBus::default(),
            listeners: watch::Sender::new(0),
            ledger: Mutex::new(Ledger::new(REMEMBERED_FOR, REMEMBERED_MAX)),
            delivered,
            to_forget: tokio::sync::Mutex::new(to_forget),
        }
    }

    /// The bus events go out on.
    pub(crate) fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Publishes an event that nothing replays (a crash).
    pub(crate) fn publish(&self, event: Event) {
        self.bus.publish(event);
    }

    /// The events from now on; the subscriber counts as a listener until
    /// the stream is dropped.
    pub(crate) fn subscribe(&self) -> BoxStream<'static, Event> {
        let events = self.bus.subscribe();
        let listener = Listener::new(self.listeners.clone());
        events
            .map(move |event| {
                let _alive = &listener;
                event
            })
            .boxed()
    }

    /// After a (re)subscription: lists the domain's tasks and gives each
    /// the [`step`] it still needs.
    pub(crate) async fn catch_up(&self) -> Result<(), DiegoError> {
        let tasks = self.client.tasks(TASKS_DOMAIN).await?;
        for task in &tasks {
            match step(task, self.progress(task)) {
                Step::Report => self.report(task).await,
                Step::Resolve => self.resolve(&task.task_guid).await,
                Step::Delete => self.delete(&task.task_guid).await,
                Step::Wait => {}
            }
        }
        Ok(())
    }

    /// A task change from the stream (`before` is `None` for a new task):
    /// reports a completion not reported yet.
    pub(crate) async fn changed(&self, before: Option<&proto::Task>, after: &proto::Task) {
        let completed = after.state == State::Completed as i32;
        if after.domain != TASKS_DOMAIN || !completed || self.progress(after) != Progress::New {
            return;
        }
        if task::completion(before, after).is_some() {
            self.report(after).await;
        }
    }

    /// The final status of a task reported lately (it may be gone from the BBS).
    pub(crate) fn reported_status(&self, guid: &str) -> Option<TaskStatus> {
        let mut ledger = self.ledger();
        ledger.forget_old(Instant::now());
        ledger.status(guid)
    }

    /// The final status of every task reported lately.
    pub(crate) fn reported_statuses(&self) -> Vec<TaskStatus> {
        let mut ledger = self.ledger();
        ledger.forget_old(Instant::now());
        ledger.statuses()
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn progress(&self, task: &proto::Task) -> Progress {
        self.ledger().progress(&task.task_guid, task.created_at)
    }

    /// Hands the completion of `task` off; it stays `COMPLETED` in the BBS
    /// until CC has it ([`Completions::delivered`]).
    async fn report(&self, task: &proto::Task) {
        let Some(done) = task::completion(None, task) else {
            return;
        };
        self.until_listened(&task.task_guid).await;
        // Recorded before it is published: the subscriber may say it is
        // delivered at once.
        self.ledger()
            .record(task.created_at, task::status(task), Instant::now());
        self.bus.publish(Event::TaskCompleted(done));
    }

    /// CC has the completion of task `guid`, or refused it for good: marks
    /// it delivered and queues its resolve and delete, without waiting for
    /// the BBS.
    pub(crate) fn delivered(&self, guid: &str) {
        if !self.ledger().deliver(guid) {
            tracing::debug!(
                task_guid = guid,
                "delivered completion no longer in the ledger; resolving it all the same"
            );
        }
        // The receiver lives in `self`: sending cannot fail.
        let _ = self.delivered.send(guid.to_owned());
    }

    /// Resolves and deletes delivered completions ([`Completions::delivered`]),
    /// one at a time, until `stop`. What is still queued then stays
    /// `COMPLETED` in the BBS, for the next OPI to report again.
    pub(crate) async fn forget_delivered(&self, stop: CancellationToken) {
        let mut queue = self.to_forget.lock().await;
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = queue.recv() => next,
            };
            let Some(guid) = next else {
                return;
            };
            self.resolve(&guid).await;
        }
    }

    /// Waits until someone subscribed to the events.
    async fn until_listened(&self, guid: &str) {
        let mut listeners = self.listeners.subscribe();
        if *listeners.borrow_and_update() == 0 {
            tracing::info!(
                task_guid = guid,
                "task completion waits for an event subscriber"
            );
        }
        // The sender lives in `self`: waiting cannot fail.
        let _ = listeners.wait_for(|n| *n > 0).await;
    }

    /// Marks a delivered task `RESOLVING` and deletes it.
    async fn resolve(&self, guid: &str) {
        match self.client.resolving_task(guid).await {
            Ok(()) => {}
            // Resolving already (an earlier attempt): only the delete is left.
            Err(e) if e.is_invalid_transition() => {}
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                tracing::warn!(task_guid = guid, error = %e, "cannot resolve a delivered task; retried after the next subscribe");
                return;
            }
        }
        self.delete(guid).await;
    }

    /// Deletes a `RESOLVING` task.
    async fn delete(&self, guid: &str) {
        match self.client.delete_task(guid).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                tracing::warn!(task_guid = guid, error = %e, "cannot delete a delivered task; retried after the next subscribe");
            }
        }
    }
}

/// One live event subscriber, counted while it lives.
struct Listener(watch::Sender<usize>);

impl Listener {
    fn new(count: watch::Sender<usize>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_state(state: State) -> proto::Task {
        proto::Task {
            task_guid: "t".into(),
            domain: TASKS_DOMAIN.into(),
            state: state as i32,
            ..proto::Task::default()
        }
    }

    #[test]
    fn each_listed_task_gets_the_step_it_still_needs() {
        use Progress::{Delivered, HandedOff, New};
        for (state, progress, want) in [
            (State::Completed, New, Step::Report),
            (State::Completed, HandedOff, Step::Wait),
            (State::Completed, Delivered, Step::Resolve),
            (State::Resolving, New, Step::Delete),
            (State::Resolving, HandedOff, Step::Delete),
            (State::Resolving, Delivered, Step::Delete),
            (State::Running, New, Step::Wait),
            (State::Running, Delivered, Step::Wait),
            (State::Pending, New, Step::Wait),
            (State::Invalid, New, Step::Wait),
        ] {
            assert_eq!(
                step(&in_state(state), progress),
                want,
                "{state:?}, {progress:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_subscriber_counts_as_a_listener_until_its_stream_is_dropped() {
        let client = BbsClient::new("http://127.0.0.1:9".parse().unwrap(), None).unwrap();
        let completions = Completions::new(client);
        assert_eq!(*completions.listeners.borrow(), 0);
        let first = completions.subscribe();
        let second = completions.subscribe();
        assert_eq!(*completions.listeners.borrow(), 2);
        drop(first);
        assert_eq!(*completions.listeners.borrow(), 1);
        drop(second);
        assert_eq!(*completions.listeners.borrow(), 0);
    }
}
