//! The in-memory backend: the executable specification of [`Scheduler`].
//!
//! Every instance is `RUNNING` as soon as it is desired; crashes and task
//! completions happen only when a test asks for them through the inherent
//! methods ([`MemoryScheduler::crash`], [`MemoryScheduler::complete_task`]), and
//! [`MemoryScheduler::set_unavailable`] simulates an unreachable scheduler. It
//! passes the conformance kit and backs `cube opi --backend memory`, router
//! tests and the Sink's tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::events::EventBus;
use crate::model::{
    CrashEvent, DesiredLrp, Event, Instance, InstanceState, LrpId, LrpUpdate, SchedulingInfo, Task,
    TaskCompletion, TaskState, TaskStatus, TaskStep, now_unix_nanos, step_failure_reason,
};
use crate::{Error, Scheduler};

#[derive(Default)]
struct State {
    lrps: HashMap<LrpId, LrpRecord>,
    tasks: HashMap<String, TaskRecord>,
}

impl State {
    fn instance_mut(&mut self, id: &LrpId, index: u32) -> Result<&mut InstanceRecord, Error> {
        self.lrps
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("LRP {id}")))?
            .instances
            .get_mut(usize::try_from(index).unwrap_or(usize::MAX))
            .ok_or_else(|| Error::NotFound(format!("instance {index} of LRP {id}")))
    }
}

struct LrpRecord {
    lrp: DesiredLrp,
    instances: Vec<InstanceRecord>,
}

#[derive(Clone)]
struct InstanceRecord {
    since: i64,
    state: InstanceState,
    crash_count: u32,
    crash_reason: String,
}

impl InstanceRecord {
    fn fresh() -> Self {
        Self {
            since: now_unix_nanos(),
            state: InstanceState::Running,
            crash_count: 0,
            crash_reason: String::new(),
        }
    }
}

impl LrpRecord {
    fn resize(&mut self) {
        let want = usize::try_from(self.lrp.instances).unwrap_or(usize::MAX);
        self.instances.truncate(want);
        while self.instances.len() < want {
            self.instances.push(InstanceRecord::fresh());
        }
    }
}

struct TaskRecord {
    task: Task,
    state: TaskState,
}

/// A scheduler that keeps everything in memory.
#[derive(Default)]
pub struct MemoryScheduler {
    state: Mutex<State>,
    events: EventBus,
    unavailable: AtomicBool,
}

impl MemoryScheduler {
    /// An empty scheduler.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, Error> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(Error::Unavailable(
                "memory scheduler is switched off (simulated outage)".into(),
            ));
        }
        // A poisoned lock only means a test panicked while holding it; the
        // maps are still consistent because every mutation is a single step.
        Ok(match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        })
    }

    /// Simulates the scheduler being unreachable: every call fails with
    /// [`Error::Unavailable`] until switched back.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Makes instance `index` of `id` crash with `exit_status`, emitting a crash
    /// event. The instance stays `CRASHED` until [`Scheduler::stop_instance`] or a
    /// re-desire restarts it.
    pub fn crash(
        &self,
        id: &LrpId,
        index: u32,
        exit_status: i32,
        reason: &str,
    ) -> Result<(), Error> {
        let event = {
            let mut state = self.state()?;
            let instance = state.instance_mut(id, index)?;
            let now = now_unix_nanos();
            instance.state = InstanceState::Crashed;
            instance.since = now;
            instance.crash_count += 1;
            instance.crash_reason = format!("exited with status {exit_status}");
            CrashEvent {
                id: id.clone(),
                instance: format!("{}-{index}", id.process_guid()),
                index,
                cell_id: "memory".into(),
                reason: reason.to_owned(),
                exit_status,
                exit_description: instance.crash_reason.clone(),
                crash_count: instance.crash_count,
                crash_timestamp: now,
            }
        };
        self.events.publish(Event::Crashed(event));
        Ok(())
    }

    /// Plays the scheduler running a task's steps: in order, each exiting
    /// with `exit_status(step)`; the first non-zero one ends the task as
    /// failed with [`crate::model::step_failure_reason`], else it succeeds.
    /// A task without steps completes as its lifecycle's `exit_status`
    /// (called with a step named `task` and the lifecycle's command).
    pub fn run_steps(
        &self,
        guid: &str,
        exit_status: impl Fn(&TaskStep) -> i32,
    ) -> Result<(), Error> {
        let steps = {
            let state = self.state()?;
            let record = state
                .tasks
                .get(guid)
                .ok_or_else(|| Error::NotFound(format!("task {guid}")))?;
            if record.task.steps.is_empty() {
                let command = match &record.task.lifecycle {
                    crate::model::LrpLifecycle::Docker { command, .. } => command.clone(),
                    crate::model::LrpLifecycle::Buildpack { start_command, .. } => {
                        vec![start_command.clone()]
                    }
                };
                vec![TaskStep {
                    name: "task".into(),
                    command,
                }]
            } else {
                record.task.steps.clone()
            }
        };
        let failure = steps.iter().find_map(|step| {
            let status = exit_status(step);
            (status != 0)
                .then(|| step_failure_reason(&step.name, &format!("exited with status {status}")))
        });
        match failure {
            Some(reason) => self.complete_task(guid, true, &reason, ""),
            None => self.complete_task(guid, false, "", ""),
        }
    }

    /// Completes a running task, emitting a task-completed event.
    pub fn complete_task(
        &self,
        guid: &str,
        failed: bool,
        failure_reason: &str,
        result: &str,
    ) -> Result<(), Error> {
        let completion = {
            let mut state = self.state()?;
            let record = state
                .tasks
                .get_mut(guid)
                .ok_or_else(|| Error::NotFound(format!("task {guid}")))?;
            if matches!(record.state, TaskState::Completed { .. }) {
                return Err(Error::Conflict(format!(
                    "task {guid} has already completed"
                )));
            }
            record.state = TaskState::Completed {
                failed,
                failure_reason: failure_reason.to_owned(),
                result: result.to_owned(),
            };
            TaskCompletion {
                guid: guid.to_owned(),
                completion_callback: record.task.completion_callback.clone(),
                failed,
                failure_reason: failure_reason.to_owned(),
                result: result.to_owned(),
            }
        };
        self.events.publish(Event::TaskCompleted(completion));
        Ok(())
    }
}

fn status(record: &TaskRecord) -> TaskStatus {
    TaskStatus {
        guid: record.task.guid.clone(),
        name: record.task.name.clone(),
        app_guid: record.task.app.guid.clone(),
        state: record.state.clone(),
    }
}

#[async_trait::async_trait]
impl Scheduler for MemoryScheduler {
    async fn desire(&self, lrp: DesiredLrp) -> Result<(), Error> {
        let mut state = self.state()?;
        match state.lrps.get_mut(&lrp.id) {
            Some(record) if record.lrp == lrp => {}
            Some(record) => {
                // New content: every instance restarts with it.
                record.lrp = lrp;
                record.instances.clear();
                record.resize();
            }
            None => {
                let mut record = LrpRecord {
                    lrp,
                    instances: Vec::new(),
                };
                record.resize();
                state.lrps.insert(record.lrp.id.clone(), record);
            }
        }
        Ok(())
    }

    async fn update(&self, id: &LrpId, update: LrpUpdate) -> Result<(), Error> {
        let mut state = self.state()?;
        let record = state
            .lrps
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("LRP {id}")))?;
        record.lrp.apply(&update);
        record.resize();
        Ok(())
    }

    async fn get(&self, id: &LrpId) -> Result<DesiredLrp, Error> {
        self.state()?
            .lrps
            .get(id)
            .map(|record| record.lrp.clone())
            .ok_or_else(|| Error::NotFound(format!("LRP {id}")))
    }

    async fn list(&self) -> Result<Vec<SchedulingInfo>, Error> {
        Ok(self
            .state()?
            .lrps
            .values()
            .map(|record| record.lrp.scheduling_info())
            .collect())
    }

    async fn stop(&self, id: &LrpId) -> Result<(), Error> {
        self.state()?
            .lrps
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| Error::NotFound(format!("LRP {id}")))
    }

    async fn stop_instance(&self, id: &LrpId, index: u32) -> Result<(), Error> {
        let mut state = self.state()?;
        *state.instance_mut(id, index)? = InstanceRecord::fresh();
        Ok(())
    }

    async fn instances(&self, id: &LrpId) -> Result<Vec<Instance>, Error> {
        let state = self.state()?;
        let record = state
            .lrps
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("LRP {id}")))?;
        Ok(record
            .instances
            .iter()
            .zip(0u32..)
            .map(|(instance, index)| Instance {
                index,
                since: instance.since,
                state: instance.state,
                placement_error: String::new(),
                crash_count: instance.crash_count,
                crash_reason: instance.crash_reason.clone(),
            })
            .collect())
    }

    async fn desire_task(&self, task: Task) -> Result<(), Error> {
        let mut state = self.state()?;
        if state.tasks.contains_key(&task.guid) {
            return Err(Error::Conflict(format!(
                "task {} already exists",
                task.guid
            )));
        }
        state.tasks.insert(
            task.guid.clone(),
            TaskRecord {
                task,
                state: TaskState::Running,
            },
        );
        Ok(())
    }

    async fn get_task(&self, guid: &str) -> Result<TaskStatus, Error> {
        self.state()?
            .tasks
            .get(guid)
            .map(status)
            .ok_or_else(|| Error::NotFound(format!("task {guid}")))
    }

    async fn list_tasks(&self) -> Result<Vec<TaskStatus>, Error> {
        Ok(self.state()?.tasks.values().map(status).collect())
    }

    async fn cancel_task(&self, guid: &str) -> Result<(), Error> {
        let already_done = matches!(
            self.state()?.tasks.get(guid).map(|r| &r.state),
            Some(TaskState::Completed { .. })
        );
        if already_done {
            return Ok(());
        }
        self.complete_task(guid, true, "cancelled", "")
    }

    fn event_bus(&self) -> &EventBus {
        &self.events
    }

    async fn ready(&self) -> Result<(), String> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err("memory scheduler is switched off (simulated outage)".into())
        } else {
            Ok(())
        }
    }
}
