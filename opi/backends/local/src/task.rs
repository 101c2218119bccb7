//! One-off tasks as local processes in a scratch directory: the task's
//! command, or its steps one after another (sharing the scratch directory as
//! `$CUBE_WORKSPACE`, stopping at the first that fails).

use std::sync::{Arc, Mutex};

use opi::events::EventBus;
use opi::model::{Event, Task, TaskCompletion, TaskState, step_failure_reason};
use tokio_util::sync::CancellationToken;

use crate::process::{self, Launch};

/// A task the backend knows about.
pub(crate) struct TaskRuntime {
    pub task: Task,
    pub state: Arc<Mutex<TaskState>>,
    pub cancel: CancellationToken,
}

pub(crate) fn lock(state: &Mutex<TaskState>) -> std::sync::MutexGuard<'_, TaskState> {
    match state.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// One process of a task: its step name (`None`: the task's own command).
pub(crate) struct TaskProcess {
    pub step: Option<String>,
    pub launch: Launch,
}

/// Runs `processes` for `task` one after another until one fails, all
/// succeed, or the task is cancelled (the running process's group is
/// killed), then records the completion and publishes it.
pub(crate) fn spawn(
    task: &Task,
    processes: Vec<TaskProcess>,
    state: Arc<Mutex<TaskState>>,
    cancel: CancellationToken,
    events: EventBus,
) {
    let guid = task.guid.clone();
    let callback = task.completion_callback.clone();
    tokio::spawn(async move {
        *lock(&state) = TaskState::Running;
        let mut outcome = (false, String::new());
        for process in &processes {
            if let Some(failure) = run(&process.launch, &cancel).await {
                let reason = match &process.step {
                    Some(step) if failure != CANCELLED => step_failure_reason(step, &failure),
                    _ => failure,
                };
                outcome = (true, reason);
                break;
            }
        }
        let (failed, failure_reason) = outcome;
        *lock(&state) = TaskState::Completed {
            failed,
            failure_reason: failure_reason.clone(),
            result: String::new(),
        };
        tracing::info!(task = %guid, failed, %failure_reason, "task completed");
        events.publish(Event::TaskCompleted(TaskCompletion {
            guid,
            completion_callback: callback,
            failed,
            failure_reason,
            result: String::new(),
        }));
    });
}

/// The failure reason of a cancelled task.
const CANCELLED: &str = "cancelled";

/// Runs one process to its end; why it failed, or `None` on success.
async fn run(launch: &Launch, cancel: &CancellationToken) -> Option<String> {
    if cancel.is_cancelled() {
        return Some(CANCELLED.to_owned());
    }
    let mut spawned = match process::spawn(launch) {
        Ok(spawned) => spawned,
        Err(e) => return Some(format!("cannot start the task: {e}")),
    };
    let failure = tokio::select! {
        () = cancel.cancelled() => {
            spawned.terminate(process::STOP_GRACE).await;
            Some(CANCELLED.to_owned())
        }
        exit = spawned.child.wait() => match exit {
            Ok(exit) if exit.success() => None,
            Ok(exit) => {
                let (status, _) = process::describe_exit(exit);
                Some(format!("exited with status {status}"))
            }
            Err(e) => Some(format!("cannot wait for the task: {e}")),
        },
    };
    // Nothing the process started outlives it.
    spawned.terminate(process::STOP_GRACE).await;
    failure
}
