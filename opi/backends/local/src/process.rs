//! Starting and stopping app processes.
//!
//! Each instance or task runs `/bin/sh -c <script>` in its own process group:
//! the script sources the droplet's `profile.d` scripts (as CF's launcher does)
//! and then runs the start command. Stopping sends SIGTERM to the whole group,
//! waits a grace period, then SIGKILL — so children the app forked go too.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a process gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Shell command (CF start command or task command).
    pub command: String,
    /// Working directory.
    pub cwd: PathBuf,
    /// The complete environment (nothing is inherited but `PATH`).
    pub env: Vec<(String, String)>,
    /// Prefix for the process's log lines, e.g. `hello/0`.
    pub log_name: String,
}

/// The shell script CF's launcher would run for `command` in a droplet whose
/// `app/` directory is `$HOME`: source `../profile.d/*.sh`,
/// `.profile.d/*.sh` and `.profile`, then run the command.
pub fn launch_script(command: &str) -> String {
    format!(
        "cd \"$HOME\" 2>/dev/null || true\n\
         for f in \"$HOME\"/../profile.d/*.sh \"$HOME\"/.profile.d/*.sh; do [ -f \"$f\" ] && . \"$f\"; done\n\
         [ -f \"$HOME/.profile\" ] && . \"$HOME/.profile\"\n\
         {command}\n"
    )
}

/// A started process and its process group.
pub struct Spawned {
    /// The shell running the script (the group leader).
    pub child: Child,
    group: Pid,
}

impl Spawned {
    /// The process group (the leader's pid).
    pub fn group(&self) -> i32 {
        self.group.as_raw()
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after `grace`.
    /// Works after the leader has exited too, so nothing it started lingers.
    pub async fn terminate(&mut self, grace: Duration) {
        let _ = killpg(self.group, Signal::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = killpg(self.group, Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
        // Whatever ignored SIGTERM, or outlived its leader.
        let _ = killpg(self.group, Signal::SIGKILL);
    }
}

/// Starts `launch` in a new process group, streaming its output to the log.
pub fn spawn(launch: &Launch) -> std::io::Result<Spawned> {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(launch_script(&launch.command))
        .current_dir(&launch.cwd)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("the process exited before it could be tracked"))?;
    let group = Pid::from_raw(i32::try_from(pid).map_err(std::io::Error::other)?);
    if let Some(out) = child.stdout.take() {
        forward_lines(out, launch.log_name.clone(), "OUT");
    }
    if let Some(err) = child.stderr.take() {
        forward_lines(err, launch.log_name.clone(), "ERR");
    }
    Ok(Spawned { child, group })
}

fn forward_lines<R>(reader: R, name: String, stream: &'static str)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "app", instance = %name, stream, "{line}");
        }
    });
}

/// `(exit status, description)` of a finished process: the exit code, or
/// 128 + signal number for a process killed by a signal (as shells report it).
pub fn describe_exit(status: std::process::ExitStatus) -> (i32, String) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, format!("app instance exited with status {code}")),
        (None, Some(signal)) => (
            128 + signal,
            format!("app instance was killed by signal {signal}"),
        ),
        (None, None) => (-1, "app instance exited".to_owned()),
    }
}

/// Picks a free TCP port on 127.0.0.1 for an instance's `PORT`.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Creates `dir` (and parents) if missing.
pub fn ensure_dir(dir: &Path) -> Result<(), crate::Error> {
    std::fs::create_dir_all(dir).map_err(crate::Error::io("cannot create", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn script_sources_profile_d_and_reports_exit_status() {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("app");
        std::fs::create_dir_all(app.join(".profile.d")).unwrap();
        std::fs::create_dir_all(root.path().join("profile.d")).unwrap();
        std::fs::write(
            root.path().join("profile.d/dep.sh"),
            "export FROM_DEPS=yes\n",
        )
        .unwrap();
        std::fs::write(app.join(".profile.d/app.sh"), "export FROM_APP=yes\n").unwrap();
        let launch = Launch {
            command: "[ \"$FROM_DEPS$FROM_APP$GREETING\" = yesyeshi ] && exit 7; exit 1".into(),
            cwd: app.clone(),
            env: vec![
                ("HOME".into(), app.display().to_string()),
                ("GREETING".into(), "hi".into()),
            ],
            log_name: "test/0".into(),
        };
        let mut spawned = spawn(&launch).unwrap();
        let status = spawned.child.wait().await.unwrap();
        assert_eq!(describe_exit(status).0, 7);
    }

    #[tokio::test]
    async fn terminate_kills_the_whole_group() {
        assert_group_dies("sleep 300 & echo $! > child.pid; wait", false).await;
    }

    #[tokio::test]
    async fn terminate_kills_what_an_exited_leader_left_behind() {
        // The shell dies (as when a user kills it); its child lives on in the group.
        assert_group_dies("sleep 300 & echo $! > child.pid; exit 3", true).await;
    }

    async fn assert_group_dies(command: &str, wait_for_leader: bool) {
        let dir = tempfile::tempdir().unwrap();
        let launch = Launch {
            command: command.into(),
            cwd: dir.path().to_owned(),
            env: vec![("HOME".into(), dir.path().display().to_string())],
            log_name: "test/0".into(),
        };
        let mut spawned = spawn(&launch).unwrap();
        let pid_file = dir.path().join("child.pid");
        for _ in 0..200 {
            if std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n')) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if wait_for_leader {
            assert_eq!(spawned.child.wait().await.unwrap().code(), Some(3));
        }
        spawned.terminate(Duration::from_secs(5)).await;
        // The grandchild is gone, or a zombie waiting for init to reap it.
        let mut gone = false;
        for _ in 0..200 {
            let zombie = std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .map(|stat| {
                    stat.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true);
            if zombie || nix::sys::signal::kill(Pid::from_raw(grandchild), None).is_err() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gone, "sleep {grandchild} survived");
    }
}
