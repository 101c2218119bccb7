//! One-off tasks as local processes in a scratch directory.

use std::sync::{Arc, Mutex};

use opi::events::EventBus;
use opi::model::{Event, Task, TaskCompletion, TaskState};
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

/// Runs `launch` for `task` until it exits or is cancelled, then records the
/// completion and publishes it.
pub(crate) fn spawn(
    task: &Task,
    launch: Launch,
    state: Arc<Mutex<TaskState>>,
    cancel: CancellationToken,
    events: EventBus,
) {
    let guid = task.guid.clone();
    let callback = task.completion_callback.clone();
    tokio::spawn(async move {
        *lock(&state) = TaskState::Running;
        let (failed, failure_reason) = match process::spawn(&launch) {
            Err(e) => (true, format!("cannot start the task: {e}")),
            Ok(mut spawned) => {
                let outcome = tokio::select! {
                    () = cancel.cancelled() => {
                        spawned.terminate(process::STOP_GRACE).await;
                        (true, "cancelled".to_owned())
                    }
                    exit = spawned.child.wait() => match exit {
                        Ok(exit) if exit.success() => (false, String::new()),
                        Ok(exit) => {
                            let (status, _) = process::describe_exit(exit);
                            (true, format!("exited with status {status}"))
                        }
                        Err(e) => (true, format!("cannot wait for the task: {e}")),
                    },
                };
                // Nothing the task started outlives it.
                spawned.terminate(process::STOP_GRACE).await;
                outcome
            }
        };
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
