//! Tasks, as the BBS keeps them — accepted and stored only.
//!
//! **Cube does not run a BBS task's action tree yet** (a later issue): a
//! desired task stays `Pending` until it is cancelled or, as on a BBS whose
//! cells never start it, expires after [`Timing::expire_pending`] as failed
//! ("not started within time limit"). What Cloud Controller reads back works
//! as on a BBS: list, get, cancel with the BBS's errors, and the completion
//! callback of a cancelled or expired task ([`callback`]).
//!
//! The store is in memory: a restart forgets the tasks, as Cube's BBS front
//! keeps no state of its own. Cloud Controller's task sync then finds its
//! running tasks missing and fails them ("Unable to determine completion
//! status"), which is what a lost task is.
//!
//! State changes follow cloudfoundry/bbs `db/sqldb/task_db.go` and
//! `task_convergence.go`: Pending → Completed (cancel, expiry) → Resolving
//! (callback under way) → deleted (callback answered other than 503/504,
//! or completed for longer than [`Timing::expire_completed`]).

pub mod callback;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use bbs_models::task::State;
use bbs_models::{DesireTaskRequest, Task};

use crate::error::Error;

/// The failure reason of a cancelled task (BBS `CancelTask`).
pub const CANCELLED: &str = "task was cancelled";
/// The failure reason of a task no cell started in time (BBS convergence).
pub const NOT_STARTED: &str = "not started within time limit";

/// The BBS's task convergence durations (its defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A completed task's callback is retried this long after the last try
    /// (`kick_task_duration`, 30 s).
    pub kick: Duration,
    /// A pending task fails after this long (`expire_pending_task_duration`, 30 min).
    pub expire_pending: Duration,
    /// A completed task is deleted this long after it completed, delivered
    /// or not (`expire_completed_task_duration`, 2 min).
    pub expire_completed: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            kick: Duration::from_secs(30),
            expire_pending: Duration::from_secs(30 * 60),
            expire_completed: Duration::from_secs(120),
        }
    }
}

/// Task guid → task, in memory.
#[derive(Debug, Default)]
pub struct Tasks {
    tasks: Mutex<BTreeMap<String, Task>>,
}

/// `duration` in nanoseconds, as the BBS's timestamps.
fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

/// The state's name as the BBS prints it (`Completed`).
fn state_name(task: &Task) -> &'static str {
    State::try_from(task.state).map_or("Invalid", |state| state.as_str_name())
}

/// Marks `task` completed (failed, with `reason`) at `now`, as the BBS's
/// `completeTask`: no result, no cell.
fn complete(task: &mut Task, reason: &str, now: i64) {
    task.state = State::Completed as i32;
    task.updated_at = now;
    task.first_completed_at = now;
    task.failed = true;
    task.failure_reason = reason.to_owned();
    task.result.clear();
    task.cell_id.clear();
}

impl Tasks {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Task>> {
        // Each change below is made on one entry at a time.
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a validated task request as a `Pending` task created at `now`.
    ///
    /// Errors: [`Error::Exists`] when the guid is taken.
    pub fn desire(&self, request: DesireTaskRequest, now: i64) -> Result<(), Error> {
        let mut tasks = self.map();
        if tasks.contains_key(&request.task_guid) {
            return Err(Error::Exists);
        }
        let task = Task {
            task_definition: request.task_definition,
            task_guid: request.task_guid.clone(),
            domain: request.domain,
            created_at: now,
            updated_at: now,
            state: State::Pending as i32,
            ..Task::default()
        };
        tasks.insert(request.task_guid, task);
        Ok(())
    }

    /// The tasks in `domain` on `cell_id` (empty filters match all), by guid.
    pub fn list(&self, domain: &str, cell_id: &str) -> Vec<Task> {
        self.map()
            .values()
            .filter(|task| domain.is_empty() || task.domain == domain)
            .filter(|task| cell_id.is_empty() || task.cell_id == cell_id)
            .cloned()
            .collect()
    }

    /// One task. Errors: [`Error::NotFound`].
    pub fn get(&self, guid: &str) -> Result<Task, Error> {
        self.map().get(guid).cloned().ok_or(Error::NotFound)
    }

    /// Cancels a pending or running task: it completes as failed with
    /// [`CANCELLED`]. Returns it, for its completion callback.
    ///
    /// Errors: [`Error::NotFound`]; [`Error::Transition`] for a task
    /// already completed or resolving.
    pub fn cancel(&self, guid: &str, now: i64) -> Result<Task, Error> {
        let mut tasks = self.map();
        let task = tasks.get_mut(guid).ok_or(Error::NotFound)?;
        match State::try_from(task.state) {
            Ok(State::Pending | State::Running) => {
                complete(task, CANCELLED, now);
                Ok(task.clone())
            }
            _ => Err(Error::Transition {
                from: state_name(task),
                to: "Completed",
            }),
        }
    }

    /// Moves a completed task with a completion callback to `Resolving` and
    /// returns it: its callback may be sent now. `None` when it is not (or
    /// no longer) a completed task with a callback.
    pub fn start_resolving(&self, guid: &str, now: i64) -> Option<Task> {
        let mut tasks = self.map();
        let task = tasks.get_mut(guid)?;
        let callback = task
            .task_definition
            .as_ref()
            .is_some_and(|definition| !definition.completion_callback_url.is_empty());
        if task.state != State::Completed as i32 || !callback {
            return None;
        }
        task.state = State::Resolving as i32;
        task.updated_at = now;
        Some(task.clone())
    }

    /// The callback of a resolving task was answered: the task is done with.
    pub fn resolved(&self, guid: &str) {
        let mut tasks = self.map();
        if tasks
            .get(guid)
            .is_some_and(|task| task.state == State::Resolving as i32)
        {
            tasks.remove(guid);
        }
    }

    /// One round of the BBS's task convergence at `now`: pending tasks too
    /// old fail; resolving tasks whose callback has not been answered for
    /// [`Timing::kick`] are completed again; tasks completed longer than
    /// [`Timing::expire_completed`] ago are deleted. Returns the guids of
    /// completed tasks whose callback is due (completed, and untouched for
    /// [`Timing::kick`] — or just expired).
    pub fn converge(&self, now: i64, timing: &Timing) -> Vec<String> {
        let mut tasks = self.map();
        let mut due = Vec::new();
        tasks.retain(|guid, task| {
            let idle = now.saturating_sub(task.updated_at);
            match State::try_from(task.state) {
                Ok(State::Pending)
                    if now.saturating_sub(task.created_at) >= nanos(timing.expire_pending) =>
                {
                    complete(task, NOT_STARTED, now);
                    due.push(guid.clone());
                    return true;
                }
                Ok(State::Resolving) if idle >= nanos(timing.kick) => {
                    task.state = State::Completed as i32;
                }
                _ => {}
            }
            if task.state != State::Completed as i32 {
                return true;
            }
            if now.saturating_sub(task.first_completed_at) >= nanos(timing.expire_completed) {
                return false;
            }
            if idle >= nanos(timing.kick) {
                due.push(guid.clone());
            }
            true
        });
        due
    }
}

#[cfg(test)]
mod tests;
