//! The in-memory backend passes the OPI conformance kit — and shows backend
//! authors how to run it.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use opi::Scheduler;
use opi::conformance::{self, Harness, TaskOutcome};
use opi::memory::MemoryScheduler;
use opi::model::{LrpId, LrpLifecycle};

struct MemoryHarness {
    scheduler: Arc<MemoryScheduler>,
}

#[async_trait::async_trait]
impl Harness for MemoryHarness {
    fn scheduler(&self) -> &dyn Scheduler {
        self.scheduler.as_ref()
    }

    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: "docker.io/library/nginx:1.27".into(),
            command: Vec::new(),
            credentials: None,
        }
    }

    fn task_lifecycle(&self, outcome: TaskOutcome) -> LrpLifecycle {
        task_lifecycle(outcome)
    }

    async fn crash_instance(&self, id: &LrpId, index: u32, exit_status: i32) -> Result<(), String> {
        self.scheduler
            .crash(id, index, exit_status, "CRASHED")
            .map_err(|e| e.to_string())
    }

    async fn finish_task(&self, guid: &str, outcome: TaskOutcome) -> Result<(), String> {
        finish(&self.scheduler, guid, outcome)
    }

    /// The memory backend is its own scheduler: a restarted OPI finds the
    /// same memory.
    async fn restart(&self) -> Result<Arc<dyn Scheduler>, String> {
        Ok(self.scheduler.clone())
    }

    fn can_cut_off(&self) -> bool {
        true
    }

    async fn set_reachable(&self, reachable: bool) -> Result<(), String> {
        self.scheduler.set_unavailable(!reachable);
        Ok(())
    }
}

/// `/bin/false` for a task that fails, `/bin/true` otherwise.
fn task_lifecycle(outcome: TaskOutcome) -> LrpLifecycle {
    let program = if outcome == TaskOutcome::Fail {
        "/bin/false"
    } else {
        "/bin/true"
    };
    LrpLifecycle::Docker {
        image: "docker.io/library/busybox:1.36".into(),
        command: vec![program.into()],
        credentials: None,
    }
}

/// Plays the scheduler: every step (or the task's command) runs, and
/// `/bin/false` exits 1.
fn finish(scheduler: &MemoryScheduler, guid: &str, outcome: TaskOutcome) -> Result<(), String> {
    if outcome == TaskOutcome::RunUntilCancelled {
        return Ok(());
    }
    scheduler
        .run_steps(guid, |step| i32::from(step.command == ["/bin/false"]))
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn memory_backend_passes_the_conformance_kit() {
    conformance::run(|| async {
        MemoryHarness {
            scheduler: Arc::new(MemoryScheduler::new()),
        }
    })
    .await;
}

/// A memory backend with one fault the kit must catch.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// `update` changes nothing.
    ForgetsUpdates,
    /// Tasks run their lifecycle and never their steps.
    IgnoresSteps,
    /// A restarted backend starts empty (state kept in the backend).
    ForgetsOnRestart,
    /// `get` fails with an error that quotes the environment.
    LeaksSecrets,
    /// An unreachable scheduler is reported as an internal error.
    HidesOutages,
}

struct Faulty(Arc<MemoryScheduler>, Fault);

#[async_trait::async_trait]
impl Scheduler for Faulty {
    async fn desire(&self, lrp: opi::model::DesiredLrp) -> Result<(), opi::Error> {
        match self.0.desire(lrp).await {
            Err(opi::Error::Unavailable(why)) if self.1 == Fault::HidesOutages => {
                Err(opi::Error::Internal(why))
            }
            other => other,
        }
    }
    async fn update(&self, id: &LrpId, update: opi::model::LrpUpdate) -> Result<(), opi::Error> {
        if self.1 == Fault::ForgetsUpdates {
            return self.0.get(id).await.map(drop);
        }
        self.0.update(id, update).await
    }
    async fn get(&self, id: &LrpId) -> Result<opi::model::DesiredLrp, opi::Error> {
        let lrp = self.0.get(id).await?;
        if self.1 == Fault::LeaksSecrets {
            let values: Vec<&String> = lrp.environment.values().collect();
            return Err(opi::Error::Internal(format!("cannot read {values:?}")));
        }
        Ok(lrp)
    }
    async fn list(&self) -> Result<Vec<opi::model::SchedulingInfo>, opi::Error> {
        self.0.list().await
    }
    async fn stop(&self, id: &LrpId) -> Result<(), opi::Error> {
        self.0.stop(id).await
    }
    async fn stop_instance(&self, id: &LrpId, index: u32) -> Result<(), opi::Error> {
        self.0.stop_instance(id, index).await
    }
    async fn instances(&self, id: &LrpId) -> Result<Vec<opi::model::Instance>, opi::Error> {
        self.0.instances(id).await
    }
    async fn desire_task(&self, mut task: opi::model::Task) -> Result<(), opi::Error> {
        if self.1 == Fault::IgnoresSteps {
            task.steps.clear();
        }
        self.0.desire_task(task).await
    }
    async fn get_task(&self, guid: &str) -> Result<opi::model::TaskStatus, opi::Error> {
        self.0.get_task(guid).await
    }
    async fn list_tasks(&self) -> Result<Vec<opi::model::TaskStatus>, opi::Error> {
        self.0.list_tasks().await
    }
    async fn cancel_task(&self, guid: &str) -> Result<(), opi::Error> {
        self.0.cancel_task(guid).await
    }
    fn event_bus(&self) -> &opi::events::EventBus {
        self.0.event_bus()
    }
}

struct FaultyHarness(Arc<Faulty>);

#[async_trait::async_trait]
impl Harness for FaultyHarness {
    fn scheduler(&self) -> &dyn Scheduler {
        self.0.as_ref()
    }
    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: "nginx".into(),
            command: Vec::new(),
            credentials: None,
        }
    }
    fn task_lifecycle(&self, outcome: TaskOutcome) -> LrpLifecycle {
        task_lifecycle(outcome)
    }
    async fn crash_instance(&self, id: &LrpId, index: u32, status: i32) -> Result<(), String> {
        self.0
            .0
            .crash(id, index, status, "CRASHED")
            .map_err(|e| e.to_string())
    }
    async fn finish_task(&self, guid: &str, outcome: TaskOutcome) -> Result<(), String> {
        finish(&self.0.0, guid, outcome)
    }
    fn patience(&self) -> std::time::Duration {
        std::time::Duration::from_millis(200)
    }
    async fn restart(&self) -> Result<Arc<dyn Scheduler>, String> {
        if self.0.1 == Fault::ForgetsOnRestart {
            return Ok(Arc::new(Faulty(Arc::new(MemoryScheduler::new()), self.0.1)));
        }
        Ok(self.0.clone())
    }
    fn can_cut_off(&self) -> bool {
        true
    }
    async fn set_reachable(&self, reachable: bool) -> Result<(), String> {
        self.0.0.set_unavailable(!reachable);
        Ok(())
    }
}

/// Runs the kit against a backend with `fault`; the panic message.
async fn kit_failure(fault: Fault) -> String {
    let outcome = tokio::spawn(conformance::run(move || async move {
        FaultyHarness(Arc::new(Faulty(Arc::new(MemoryScheduler::new()), fault)))
    }))
    .await;
    let panic = outcome.expect_err("the kit must fail a faulty backend");
    panic
        .into_panic()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default()
}

/// The kit must be able to fail: a backend that forgets updates is caught.
#[tokio::test]
async fn the_kit_catches_a_backend_that_ignores_updates() {
    let message = kit_failure(Fault::ForgetsUpdates).await;
    assert!(
        message.contains("update_changes_only_what_it_names"),
        "{message}"
    );
    assert!(!message.contains("task_steps_run_in_order"), "{message}");
}

/// … and one that runs a task's lifecycle instead of its steps.
#[tokio::test]
async fn the_kit_catches_a_backend_that_ignores_steps() {
    let message = kit_failure(Fault::IgnoresSteps).await;
    assert!(message.contains("task_steps_run_in_order"), "{message}");
    assert!(message.contains("second"), "{message}");
    assert!(
        !message.contains("update_changes_only_what_it_names"),
        "{message}"
    );
}

/// … one that keeps its state in itself, not in the scheduler …
#[tokio::test]
async fn the_kit_catches_a_backend_that_forgets_on_restart() {
    let message = kit_failure(Fault::ForgetsOnRestart).await;
    assert!(message.contains("list_survives_restart"), "{message}");
    assert!(!message.contains("secrets_stay_secret"), "{message}");
}

/// … one whose answers quote environment values …
#[tokio::test]
async fn the_kit_catches_a_backend_that_leaks_secrets() {
    let message = kit_failure(Fault::LeaksSecrets).await;
    assert!(message.contains("secrets_stay_secret"), "{message}");
    assert!(!message.contains("list_survives_restart"), "{message}");
}

/// … and one that reports an outage as an internal error.
#[tokio::test]
async fn the_kit_catches_a_backend_that_hides_outages() {
    let message = kit_failure(Fault::HidesOutages).await;
    assert!(
        message.contains("unreachable_scheduler_is_unavailable"),
        "{message}"
    );
    assert!(!message.contains("secrets_stay_secret"), "{message}");
}
