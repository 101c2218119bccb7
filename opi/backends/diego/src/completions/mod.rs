//! Task completions, reported once: through BBS reconnects and OPI restarts.
//!
//! The BBS streams task changes (`/v1/events/tasks.r1`) but never replays
//! what a subscriber missed. So after every subscribe and resubscribe the
//! backend lists the `cf-tasks` domain (`/v1/tasks/list.r3`) and reports
//! every `COMPLETED` task not reported yet. The BBS record is what makes a
//! completion durable. OPI is the task's consumer in Diego's protocol (the
//! BBS's own completion callback is left unset):
//!
//! 1. **hand off**: the completion is recorded in this process's ledger
//!    and published on the event bus, once a subscriber (OPI's forwarder)
//!    listens. An event published with no listener would be lost.
//! 2. **resolve**: `/v1/tasks/resolving` moves it to `RESOLVING`, the
//!    durable mark "reported".
//! 3. **delete**: `/v1/tasks/delete` removes it.
//!
//! Each listed task gets the step it still needs ([`step`]): `COMPLETED` and
//! not in the ledger, all three; `COMPLETED` and in the ledger, 2–3 (a
//! resolve that failed); `RESOLVING`, 3 only: it was reported (by this
//! process or one that stopped before deleting) and is never reported again.
//! A completion from the stream gets all three unless the ledger has it.
//! Resolve and delete failures are left to the next listing.
//!
//! The stream and the listing are handled one at a time in one loop. The
//! stream is opened before the listing, so an event that arrives during the
//! listing waits in the stream. The ledger (task guid and creation time,
//! kept [`REMEMBERED_FOR`]) drops the second sighting of a completion seen
//! both ways.
//!
//! **Guarantee.** The backend never drops a completion. A task stays in the
//! BBS until its completion was handed off. Within one process each
//! completion is handed off once. Across restarts it is handed off once as
//! well, unless OPI stops between hand-off and resolve (one BBS round
//! trip); then the next OPI reports it again, so it is never lost.
//! **Limits.** The hand-off goes to the forwarder's in-memory queue, so a
//! completion that CC had not accepted yet dies with the process. Diego
//! deletes `COMPLETED` tasks 2 minutes after they complete
//! (`expire_completed_task_duration`), so an OPI down longer misses them.
//! Diego also puts a `RESOLVING` task back to `COMPLETED` after 30 s
//! (`kick_task_duration`), which matters only when a delete failed and OPI
//! restarted within that time. One OPI per BBS is assumed: each replica
//! would report what the stream shows it.

mod ledger;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use opi::events::EventBus;
use opi::model::{Event, TaskStatus};
use tokio::sync::watch;

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

/// What a listed task still needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Hand its completion off, then resolve and delete it.
    Report,
    /// Reported already: resolve and delete it.
    Resolve,
    /// Reported and resolving: delete it.
    Delete,
    /// Not completed yet: nothing.
    Wait,
}

/// The step `task` needs, given whether this process reported it already.
pub fn step(task: &proto::Task, reported: bool) -> Step {
    match State::try_from(task.state) {
        Ok(State::Completed) if reported => Step::Resolve,
        Ok(State::Completed) => Step::Report,
        Ok(State::Resolving) => Step::Delete,
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
}

impl Completions {
    /// Completions of the tasks `client`'s BBS holds.
    pub(crate) fn new(client: BbsClient) -> Self {
        Self {
            client,
            bus: EventBus::default(),
            listeners: watch::Sender::new(0),
            ledger: Mutex::new(Ledger::new(REMEMBERED_FOR, REMEMBERED_MAX)),
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
            match step(task, self.reported(task)) {
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
        if after.domain != TASKS_DOMAIN || !completed || self.reported(after) {
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

    fn reported(&self, task: &proto::Task) -> bool {
        self.ledger().has(&task.task_guid, task.created_at)
    }

    /// Hands the completion of `task` off, then resolves and deletes it.
    async fn report(&self, task: &proto::Task) {
        let Some(done) = task::completion(None, task) else {
            return;
        };
        self.until_listened(&task.task_guid).await;
        self.ledger()
            .record(task.created_at, task::status(task), Instant::now());
        self.bus.publish(Event::TaskCompleted(done));
        self.resolve(&task.task_guid).await;
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

    /// Marks a reported task `RESOLVING` and deletes it.
    async fn resolve(&self, guid: &str) {
        match self.client.resolving_task(guid).await {
            Ok(()) => {}
            // Resolving already (an earlier attempt): only the delete is left.
            Err(e) if e.is_invalid_transition() => {}
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                tracing::warn!(task_guid = guid, error = %e, "cannot resolve a reported task; retried after the next subscribe");
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
                tracing::warn!(task_guid = guid, error = %e, "cannot delete a reported task; retried after the next subscribe");
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
        for (state, reported, want) in [
            (State::Completed, false, Step::Report),
            (State::Completed, true, Step::Resolve),
            (State::Resolving, false, Step::Delete),
            (State::Resolving, true, Step::Delete),
            (State::Running, false, Step::Wait),
            (State::Pending, false, Step::Wait),
            (State::Invalid, false, Step::Wait),
        ] {
            assert_eq!(
                step(&in_state(state), reported),
                want,
                "{state:?}, reported {reported}"
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
