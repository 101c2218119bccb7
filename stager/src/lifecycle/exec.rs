//! Runs one buildpack script (`bin/detect`, `bin/supply`, …) as a child process.
//! Its stderr (and stdout, unless captured) is read line by line as it comes
//! and passed on through [`crate::output`] (our stdout/stderr, and St8ge), so
//! staging output streams as it happens. When the future is dropped (staging
//! timed out, or the step got SIGTERM) the script and every process it started
//! are killed.
//!
//! Scripts stay in our process group on purpose: a scheduler cancelling the
//! task kills that group, and may do so before we get to clean up, so the
//! group must already hold every buildpack process. Descendants are found
//! through `/proc` for the timeout case, where we kill them but live on.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Most bytes of a script's stdout kept when it is captured.
const MAX_CAPTURE: usize = 1 << 20;
/// Longer output lines are passed on in pieces of this size.
const MAX_LINE: usize = 16 << 10;
/// How long output is still read after the script exited: a process it left
/// running may hold the pipe open for ever.
const DRAIN_AFTER_EXIT: std::time::Duration = std::time::Duration::from_secs(2);

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

/// Kills the script and its descendants when dropped.
struct Tree(Option<i32>);

impl Drop for Tree {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_tree(pid);
        }
    }
}

/// SIGKILLs `root` and every descendant (found via `/proc`; twice, to catch
/// processes forked while the first pass ran).
pub fn kill_tree(root: i32) {
    for _ in 0..2 {
        let mut victims = descendants(root);
        victims.push(root);
        for pid in victims {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The descendants of `root`, from each process's parent in `/proc/<pid>/stat`.
fn descendants(root: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        index += 1;
    }
    found.remove(0);
    found
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
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = spawn(&mut command).await?;
    let mut tree = Tree(child.id().and_then(|id| i32::try_from(id).ok()));
    let mut captured = Vec::new();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let status = {
        let out = async {
            match stdout {
                Some(out) if capture => read_all(out, &mut captured).await,
                Some(out) => pass_on(out, |l| crate::output::say(l)).await,
                None => Ok(()),
            }
        };
        let err = async {
            match stderr {
                Some(err) => pass_on(err, |l| crate::output::warn(l)).await,
                None => Ok(()),
            }
        };
        let mut output = std::pin::pin!(async { tokio::try_join!(out, err).map(drop) });
        let mut wait = std::pin::pin!(child.wait());
        let mut status = None;
        let mut drained = false;
        while !drained || status.is_none() {
            tokio::select! {
                exited = &mut wait, if status.is_none() => status = Some(exited?),
                read = &mut output, if !drained => {
                    read?;
                    drained = true;
                }
                () = tokio::time::sleep(DRAIN_AFTER_EXIT), if status.is_some() => break,
            }
        }
        status.ok_or_else(|| std::io::Error::other("the script's exit status was lost"))?
    };
    // Reaped: its pid may be reused, so do not kill by it any more; orphans it
    // left behind now belong to init and to our process group.
    tree.0 = None;
    Ok(Ran {
        status,
        stdout: String::from_utf8_lossy(&captured).into_owned(),
    })
}

/// Reads `from` to its end, keeping the first [`MAX_CAPTURE`] bytes in `into`.
async fn read_all(mut from: impl AsyncRead + Unpin, into: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buffer = [0u8; 8192];
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        let room = MAX_CAPTURE.saturating_sub(into.len()).min(n);
        into.extend_from_slice(&buffer[..room]);
    }
}

/// Reads `from` to its end and hands each line (without its newline; long
/// lines in [`MAX_LINE`] pieces) to `line` as it arrives.
async fn pass_on(mut from: impl AsyncRead + Unpin, line: fn(&str)) -> std::io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            if !pending.is_empty() {
                line(&String::from_utf8_lossy(&pending));
            }
            return Ok(());
        }
        pending.extend_from_slice(&buffer[..n]);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            let text = &pending[start..start + end];
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            line(&String::from_utf8_lossy(text));
            start += end + 1;
        }
        pending.drain(..start);
        while pending.len() >= MAX_LINE {
            let piece: Vec<u8> = pending.drain(..MAX_LINE).collect();
            line(&String::from_utf8_lossy(&piece));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().to_owned())
            })
            .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
    }

    #[tokio::test]
    async fn a_process_left_holding_the_output_does_not_hold_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        std::fs::write(
            &path,
            "#!/bin/sh\nsleep 300 &\necho $! > \"$1\"\necho detected\necho warning >&2\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let pid_file = dir.path().join("pid");
        let script = Script {
            path,
            args: vec![pid_file.clone().into()],
            cwd: dir.path().to_owned(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        };
        // The background sleep keeps both pipes open for 300 s.
        let ran = tokio::time::timeout(std::time::Duration::from_secs(60), run(&script, true))
            .await
            .expect("run returns soon after the script exits")
            .unwrap();
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        kill_tree(pid);
        assert!(ran.status.success());
        assert_eq!(ran.stdout, "detected\n");
    }

    #[tokio::test]
    async fn dropping_a_running_script_kills_it_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        std::fs::write(
            &path,
            "#!/bin/sh\nsleep 300 &\necho $$ $! > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"\nsleep 300\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let pids = dir.path().join("pids");
        let script = Script {
            path,
            args: vec![pids.clone().into()],
            cwd: dir.path().to_owned(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        };
        let mut running = Box::pin(run(&script, false));
        let mut seen = None;
        for _ in 0..500 {
            tokio::select! {
                _ = &mut running => panic!("the script ended by itself"),
                () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
            }
            if let Ok(text) = std::fs::read_to_string(&pids) {
                seen = Some(text);
                break;
            }
        }
        let text = seen.expect("the script wrote its pids");
        let pids: Vec<i32> = text
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert!(pids.iter().all(|p| alive(*p)));
        drop(running);
        let mut dead = false;
        for _ in 0..500 {
            if pids.iter().all(|p| !alive(*p)) {
                dead = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(dead, "script and background child must be killed: {pids:?}");
    }
}
