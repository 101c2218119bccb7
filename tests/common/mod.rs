//! What the end-to-end tests of the `cube` binary share.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

/// How long an end-to-end state may take to appear.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `probe` every 200 ms until it returns `Some`, for at most [`PATIENCE`].
pub fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes a droplet `.tgz` holding `files` (path, contents), all executable.
pub fn write_droplet(path: &Path, files: &[(&str, &str)]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, name, body.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

/// Runs `cube args…` in the repo and returns its output; panics with both
/// streams when it fails.
pub fn cube_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cube"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    assert!(
        output.status.success(),
        "cube {}: {}{}",
        shown.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The text of `opi/testdata/<name>` (CC-shaped OPI payloads).
pub fn opi_fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/opi/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A `cube` service a test started; killed when dropped.
pub struct Running {
    /// The process.
    pub child: std::process::Child,
    /// Its API address, from its "started" log line.
    pub api: String,
    /// Its admin address, likewise.
    pub admin: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `command` (which logs JSON to a piped stderr) and reads the bound
/// addresses from its `started` log line (e.g. "cube opi started"); panics
/// with what it printed when that line does not come.
pub fn start_service(mut command: std::process::Command, started: &str) -> Running {
    use std::io::{BufRead, BufReader};
    let mut child = command.spawn().expect("cube starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    for _ in 0..50 {
        let Some(Ok(line)) = lines.next() else { break };
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            seen.push(line);
            continue;
        };
        if entry["message"] == started {
            let api = entry["api"].as_str().unwrap().to_owned();
            let admin = entry["admin"].as_str().unwrap().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return Running { child, api, admin };
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{started:?} never logged; stderr:\n{}", seen.join("\n"));
}
