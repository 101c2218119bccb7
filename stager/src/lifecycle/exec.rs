//! Runs one buildpack script (`bin/detect`, `bin/supply`, …) as a child process
//! in its own process group. Its stderr (and stdout, unless captured) goes
//! straight to ours, so staging output streams as it happens. When the future
//! is dropped (staging timed out) the whole group is killed, grandchildren too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::AsyncReadExt;

/// Most bytes of a script's stdout kept when it is captured.
const MAX_CAPTURE: u64 = 1 << 20;

/// One script to run.
#[derive(Debug, Clone)]
pub struct Script {
    /// The script's path.
    pub path: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The complete environment.
    pub env: Vec<(String, String)>,
}

/// What a script did.
#[derive(Debug, Clone)]
pub struct Ran {
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout, when captured (else empty).
    pub stdout: String,
}

impl Ran {
    /// The exit code, or 128 + signal for a killed script (as shells show it).
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status
            .code()
            .or_else(|| self.status.signal().map(|s| 128 + s))
            .unwrap_or(-1)
    }
}

/// Kills the process group when dropped (the script may have left children).
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Whether `path` is a file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `script`; with `capture` its stdout is returned instead of streamed.
pub async fn run(script: &Script, capture: bool) -> std::io::Result<Ran> {
    let mut command = tokio::process::Command::new(&script.path);
    command
        .args(&script.args)
        .current_dir(&script.cwd)
        .env_clear()
        .envs(script.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(if capture {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = spawn(&mut command).await?;
    let _group = Group(child.id().and_then(|id| i32::try_from(id).ok()));
    let mut stdout = String::new();
    if let Some(out) = child.stdout.take() {
        let mut bytes = Vec::new();
        out.take(MAX_CAPTURE).read_to_end(&mut bytes).await?;
        stdout = String::from_utf8_lossy(&bytes).into_owned();
    }
    let status = child.wait().await?;
    Ok(Ran { status, stdout })
}

/// Spawns, retrying briefly on "text file busy": a script written a moment ago
/// may still be open for writing in a child forked by another thread.
async fn spawn(command: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(26) && attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            other => return other,
        }
    }
}
