//! Instances a killed backend left running.
//!
//! Instances run in process groups of their own, so they outlive a backend
//! that is killed (SIGKILL, OOM) without its clean shutdown. Each instance's
//! run directory names its group in [`GROUP_FILE`]; a starting backend ends
//! those groups before it brings the stored LRPs back, so no instance ever
//! runs twice (two processes on two ports, both answering as index 0).

use std::path::Path;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The file in an instance's run directory naming its process group.
pub const GROUP_FILE: &str = "pgid";

/// Records process group `group` in `run_dir` (best effort: without it an
/// orphan is only left behind after a crash of the backend itself).
pub fn record(run_dir: &Path, group: i32) {
    let path = run_dir.join(GROUP_FILE);
    let temp = run_dir.join(format!(".{GROUP_FILE}.tmp"));
    let written = std::fs::create_dir_all(run_dir)
        .and_then(|()| std::fs::write(&temp, format!("{group}\n")))
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot record the instance's process group");
    }
}

/// Forgets the group recorded in `run_dir` (it has been stopped).
pub fn forget(run_dir: &Path) {
    let _ = std::fs::remove_file(run_dir.join(GROUP_FILE));
}

/// Kills every process group recorded under `instances` (`<process
/// guid>/<index>/pgid`) that still has a member working under `root` — the
/// check that a recycled process id is not someone else's. Returns how many
/// groups were ended.
pub fn reap(instances: &Path, root: &Path) -> usize {
    let mut groups = Vec::new();
    for lrp in read_dirs(instances) {
        for instance in read_dirs(&lrp) {
            let file = instance.join(GROUP_FILE);
            if let Some(group) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok())
                .filter(|group| *group > 1)
            {
                groups.push(group);
            }
            let _ = std::fs::remove_file(&file);
        }
    }
    let mut reaped = 0;
    for group in groups {
        if group_works_under(group, root) && killpg(Pid::from_raw(group), Signal::SIGKILL).is_ok() {
            tracing::warn!(group, "ended an instance left running by a previous run");
            reaped += 1;
        }
    }
    reaped
}

fn read_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a process of group `group` has its working directory under `root`.
fn group_works_under(group: i32, root: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .any(|pid| {
            process_group(pid) == Some(group)
                && std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(root))
        })
}

/// The process group of `pid`, from `/proc/<pid>/stat`
/// (`pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses).
fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after) = stat.rsplit_once(')')?;
    after.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{self, Launch};

    fn alive(pid: i32) -> bool {
        // A zombie is dead for our purpose.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
    }

    #[tokio::test]
    async fn recorded_groups_working_under_the_root_are_ended_others_are_not() {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("droplets/d/app");
        std::fs::create_dir_all(&app).unwrap();
        let launch = |cwd: &Path| Launch {
            command: "sleep 300".into(),
            cwd: cwd.to_owned(),
            env: Vec::new(),
            log_name: "orphan/0".into(),
        };
        let mut orphan = process::spawn(&launch(&app)).unwrap();
        let orphan_pid = i32::try_from(orphan.child.id().unwrap()).unwrap();
        let run_dir = root.path().join("instances/pg-v1/0");
        record(&run_dir, orphan_pid);
        // A recorded group that works elsewhere (a recycled id) survives.
        let elsewhere = tempfile::tempdir().unwrap();
        let mut stranger = process::spawn(&launch(elsewhere.path())).unwrap();
        let stranger_pid = i32::try_from(stranger.child.id().unwrap()).unwrap();
        record(&root.path().join("instances/pg-v1/1"), stranger_pid);

        assert_eq!(reap(&root.path().join("instances"), root.path()), 1);
        let _ = orphan.child.wait().await;
        assert!(!alive(orphan_pid), "the orphan was ended");
        assert!(
            alive(stranger_pid),
            "a process working elsewhere is left alone"
        );
        assert!(!run_dir.join(GROUP_FILE).exists(), "the record is gone");
        stranger.terminate(std::time::Duration::from_secs(1)).await;
    }
}
