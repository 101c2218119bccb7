//! The in-memory backend passes the OPI conformance kit — and shows backend
//! authors how to run it.

#![allow(clippy::unwrap_used)]

use opi::Scheduler;
use opi::conformance::{self, Harness, TaskOutcome};
use opi::memory::MemoryScheduler;
use opi::model::{LrpId, LrpLifecycle};

struct MemoryHarness {
    scheduler: MemoryScheduler,
}

#[async_trait::async_trait]
impl Harness for MemoryHarness {
    fn scheduler(&self) -> &dyn Scheduler {
        &self.scheduler
    }

    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: "docker.io/library/nginx:1.27".into(),
            command: Vec::new(),
            credentials: None,
        }
    }

    fn task_lifecycle(&self, _outcome: TaskOutcome) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: "docker.io/library/busybox:1.36".into(),
            command: vec!["/bin/true".into()],
            credentials: None,
        }
    }

    async fn crash_instance(&self, id: &LrpId, index: u32, exit_status: i32) -> Result<(), String> {
        self.scheduler
            .crash(id, index, exit_status, "CRASHED")
            .map_err(|e| e.to_string())
    }

    async fn finish_task(&self, guid: &str, outcome: TaskOutcome) -> Result<(), String> {
        let (failed, reason) = match outcome {
            TaskOutcome::Succeed => (false, ""),
            TaskOutcome::Fail => (true, "exited with status 1"),
            TaskOutcome::RunUntilCancelled => return Ok(()),
        };
        self.scheduler
            .complete_task(guid, failed, reason, "")
            .map_err(|e| e.to_string())
    }
}

#[tokio::test]
async fn memory_backend_passes_the_conformance_kit() {
    conformance::run(|| async {
        MemoryHarness {
            scheduler: MemoryScheduler::new(),
        }
    })
    .await;
}

/// The kit must be able to fail: a backend that forgets updates is caught.
#[tokio::test]
async fn the_kit_catches_a_backend_that_ignores_updates() {
    struct Forgetful(MemoryScheduler);

    #[async_trait::async_trait]
    impl Scheduler for Forgetful {
        async fn desire(&self, lrp: opi::model::DesiredLrp) -> Result<(), opi::Error> {
            self.0.desire(lrp).await
        }
        async fn update(&self, id: &LrpId, _: opi::model::LrpUpdate) -> Result<(), opi::Error> {
            self.0.get(id).await.map(drop)
        }
        async fn get(&self, id: &LrpId) -> Result<opi::model::DesiredLrp, opi::Error> {
            self.0.get(id).await
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
        async fn desire_task(&self, task: opi::model::Task) -> Result<(), opi::Error> {
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
        fn events(&self) -> futures::stream::BoxStream<'static, opi::model::Event> {
            self.0.events()
        }
    }

    struct ForgetfulHarness(Forgetful);

    #[async_trait::async_trait]
    impl Harness for ForgetfulHarness {
        fn scheduler(&self) -> &dyn Scheduler {
            &self.0
        }
        fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
            LrpLifecycle::Docker {
                image: "nginx".into(),
                command: Vec::new(),
                credentials: None,
            }
        }
        fn task_lifecycle(&self, _outcome: TaskOutcome) -> LrpLifecycle {
            self.lrp_lifecycle(0)
        }
        async fn crash_instance(&self, id: &LrpId, index: u32, status: i32) -> Result<(), String> {
            self.0
                .0
                .crash(id, index, status, "CRASHED")
                .map_err(|e| e.to_string())
        }
        async fn finish_task(&self, guid: &str, outcome: TaskOutcome) -> Result<(), String> {
            let failed = outcome == TaskOutcome::Fail;
            self.0
                .0
                .complete_task(guid, failed, if failed { "exit 1" } else { "" }, "")
                .map_err(|e| e.to_string())
        }
        fn patience(&self) -> std::time::Duration {
            std::time::Duration::from_millis(200)
        }
    }

    let outcome = tokio::spawn(conformance::run(|| async {
        ForgetfulHarness(Forgetful(MemoryScheduler::new()))
    }))
    .await;
    let panic = outcome.expect_err("the kit must fail a backend that ignores updates");
    let message = panic
        .into_panic()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(
        message.contains("update_changes_only_what_it_names"),
        "{message}"
    );
}
