//! The local backend passes the OPI conformance kit with real processes:
//! instances are `busybox httpd` servers started from a droplet, crashes are
//! real exits, tasks are real commands.

#![allow(clippy::unwrap_used)]

mod common;

use common::{DROPLET_GUID, DROPLET_HASH, write_droplet};
use std::sync::Arc;

use opi::Scheduler;
use opi::conformance::{self, Harness, TaskOutcome};
use opi::model::{LrpId, LrpLifecycle};
use opi_local::droplet::FileDroplets;
use opi_local::{LocalConfig, LocalScheduler};

/// The image whose tasks run on the host: tasks with steps use it.
const HOST_EXEC: &str = "cube/host-exec";

struct LocalHarness {
    scheduler: LocalScheduler,
    dir: tempfile::TempDir,
}

impl LocalHarness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("droplet-store")).unwrap();
        write_droplet(&dir.path().join("droplet-store"));
        let scheduler = start(dir.path()).await.unwrap();
        Self { scheduler, dir }
    }
}

/// The local backend over `dir`'s root and droplet store.
async fn start(dir: &std::path::Path) -> Result<LocalScheduler, opi_local::Error> {
    LocalScheduler::start(
        LocalConfig {
            root: dir.join("root"),
            host_exec_image: Some(HOST_EXEC.into()),
        },
        Arc::new(FileDroplets::new(dir.join("droplet-store"))),
    )
    .await
}

impl Drop for LocalHarness {
    fn drop(&mut self) {
        let scheduler = self.scheduler.clone();
        // Stop the processes of this case before the next one starts.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(scheduler.shutdown());
        })
        .join();
    }
}

fn droplet(start_command: &str) -> LrpLifecycle {
    LrpLifecycle::Buildpack {
        droplet_guid: DROPLET_GUID.into(),
        droplet_hash: DROPLET_HASH.into(),
        start_command: start_command.into(),
    }
}

#[async_trait::async_trait]
impl Harness for LocalHarness {
    fn scheduler(&self) -> &dyn Scheduler {
        &self.scheduler
    }

    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        // Empty: the droplet's staging_info.yml names the start command.
        droplet("")
    }

    fn task_lifecycle(&self, outcome: TaskOutcome) -> LrpLifecycle {
        droplet(match outcome {
            TaskOutcome::Succeed => "test -f index.html",
            TaskOutcome::Fail => "exit 3",
            TaskOutcome::RunUntilCancelled => "sleep 300",
        })
    }

    fn steps_lifecycle(&self) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: HOST_EXEC.into(),
            command: Vec::new(),
            credentials: None,
        }
    }

    fn step_command(&self, name: &str, before: &[&str], outcome: TaskOutcome) -> Vec<String> {
        conformance::recording_step(name, before, outcome)
    }

    async fn crash_instance(&self, id: &LrpId, index: u32, exit_status: i32) -> Result<(), String> {
        let dir = self
            .scheduler
            .droplet_dir(id)
            .ok_or_else(|| format!("no droplet dir for {id}"))?;
        let trigger = dir.join("app").join(format!("crash-{index}"));
        let tmp = dir.join("app").join(format!(".crash-{index}"));
        std::fs::write(&tmp, exit_status.to_string()).map_err(|e| e.to_string())?;
        std::fs::rename(tmp, trigger).map_err(|e| e.to_string())
    }

    async fn finish_task(&self, _guid: &str, _outcome: TaskOutcome) -> Result<(), String> {
        Ok(()) // real commands end by themselves
    }

    /// A second backend in the same directory, as `cube up` restarted.
    async fn restart(&self) -> Result<Arc<dyn Scheduler>, String> {
        let scheduler = start(self.dir.path()).await.map_err(|e| e.to_string())?;
        Ok(Arc::new(scheduler))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_backend_passes_the_conformance_kit() {
    conformance::run(LocalHarness::new).await;
}
