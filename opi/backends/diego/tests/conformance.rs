//! The Diego backend passes the OPI conformance kit against the fake BBS,
//! over mutual TLS: crashes are cells reporting to the BBS, task completions
//! are cells running the tasks' actions (steps as a serial action), both
//! observed through the BBS event streams.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use opi::Scheduler;
use opi::conformance::{self, Harness, TaskOutcome};
use opi::model::{LrpId, LrpLifecycle};
use opi_diego::DiegoScheduler;
use testkit::bbs::FakeBbs;

struct DiegoHarness {
    bbs: FakeBbs,
    scheduler: DiegoScheduler,
}

#[async_trait::async_trait]
impl Harness for DiegoHarness {
    fn scheduler(&self) -> &dyn Scheduler {
        &self.scheduler
    }

    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        LrpLifecycle::Buildpack {
            droplet_guid: "droplet-guid".into(),
            droplet_hash: "0123abcd".into(),
            start_command: "bundle exec rackup -p $PORT".into(),
        }
    }

    fn task_lifecycle(&self, outcome: TaskOutcome) -> LrpLifecycle {
        let command = match outcome {
            TaskOutcome::Succeed => vec!["/bin/true".to_owned()],
            TaskOutcome::Fail => vec!["/bin/false".to_owned()],
            TaskOutcome::RunUntilCancelled => vec!["sleep".to_owned(), "3600".to_owned()],
        };
        LrpLifecycle::Docker {
            image: "docker.io/library/busybox:1.36".into(),
            command,
            credentials: None,
        }
    }

    async fn crash_instance(&self, id: &LrpId, index: u32, exit_status: i32) -> Result<(), String> {
        self.bbs.crash(&id.process_guid(), index, exit_status)
    }

    /// A cell runs the task's action; `/bin/false` exits 1.
    async fn finish_task(&self, guid: &str, outcome: TaskOutcome) -> Result<(), String> {
        if outcome == TaskOutcome::RunUntilCancelled {
            return Ok(());
        }
        self.bbs
            .run_task(guid, |run| i32::from(run.path == "/bin/false"))
    }

    /// A second backend on the same BBS.
    async fn restart(&self) -> Result<Arc<dyn Scheduler>, String> {
        let scheduler =
            DiegoScheduler::new(common::config(&self.bbs)).map_err(|e| e.to_string())?;
        common::until_ready(&scheduler).await;
        Ok(Arc::new(scheduler))
    }

    fn can_cut_off(&self) -> bool {
        true
    }

    async fn set_reachable(&self, reachable: bool) -> Result<(), String> {
        self.bbs.set_unavailable(!reachable);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diego_backend_passes_the_conformance_kit_over_mtls() {
    conformance::run(|| async {
        let (bbs, scheduler) = common::connected().await;
        DiegoHarness { bbs, scheduler }
    })
    .await;
}
