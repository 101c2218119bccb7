//! End-to-end: `cube cc-sim` with `cube push`, `apps`, `scale`, `stop`, `start`
//! and `delete`, as a user runs them; and a restart on the same data directory.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Sim {
    child: Child,
    url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cube cc-sim` on port 0 and reads its address from the
/// "cc-sim serving" log line (waiting at most 60 s).
fn start_sim(data_dir: &Path, extra: &[&str]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cube"))
        .args(["--log-format", "json", "cc-sim", "--listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cube starts");
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(60)) {
        if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
            && entry["message"] == "cc-sim serving"
        {
            let addr = entry["addr"].as_str().unwrap().to_owned();
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines_rx {});
            return Sim {
                child,
                url: format!("http://{addr}"),
            };
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("cube cc-sim did not start; stderr:\n{}", seen.join("\n"));
}

fn cube(sim: &Sim, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cube"))
        .args(args)
        .args(["--cc-url", &sim.url])
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn failure(output: &Output) -> String {
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

#[test]
fn push_a_docker_app_manage_it_and_keep_it_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sim = start_sim(&data, &["--fake-apps", "2"]);

    let out = stdout(&cube(
        &sim,
        &[
            "push",
            "--no-wait",
            "--name",
            "web",
            "--docker-image",
            "nginx:1.27",
            "-i",
            "2",
            "-m",
            "128M",
        ],
    ));
    assert!(out.contains("Staged"), "{out}");
    assert!(out.contains("desired: 2 instance(s) of web"), "{out}");

    let out = stdout(&cube(&sim, &["scale", "web", "-i", "3"]));
    assert!(out.contains("3 instance(s)"), "{out}");

    let apps = stdout(&cube(&sim, &["apps"]));
    let web = apps.lines().find(|l| l.starts_with("web ")).unwrap();
    assert!(
        web.contains("started") && web.contains(" 3 ") && web.contains("128M"),
        "{apps}"
    );
    assert!(web.contains("web.localhost"), "{apps}");
    assert!(apps.contains("fake-app-1"), "{apps}");

    stdout(&cube(&sim, &["stop", "web"]));
    drop(sim);

    // Restart on the same data directory: nothing is lost.
    let sim = start_sim(&data, &["--fake-apps", "2"]);
    let apps = stdout(&cube(&sim, &["apps"]));
    let web = apps.lines().find(|l| l.starts_with("web ")).unwrap();
    assert!(web.contains("stopped") && web.contains(" 3 "), "{apps}");
    assert_eq!(
        apps.lines().count(),
        4,
        "header, two fake apps, web: {apps}"
    );

    stdout(&cube(&sim, &["start", "web"]));
    stdout(&cube(&sim, &["delete", "web"]));
    let err = failure(&cube(&sim, &["delete", "web"]));
    assert_eq!(err, "error: app `web` not found");
}

#[test]
fn errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(&dir.path().join("data"), &[]);
    let app_dir = dir.path().join("app");
    std::fs::create_dir(&app_dir).unwrap();
    std::fs::write(app_dir.join("index.html"), "hi").unwrap();

    let err = failure(&cube(
        &sim,
        &["push", app_dir.to_str().unwrap(), "--name", "site"],
    ));
    assert!(err.contains("no stager configured"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let err = failure(&cube(&sim, &["push", "/nonexistent/app", "--name", "x"]));
    assert!(
        err.contains("/nonexistent/app") && err.lines().count() == 1,
        "{err}"
    );

    let err = failure(&cube(&sim, &["push", "--name", "bad name", "-o", "nginx"]));
    assert!(err.contains("app name `bad name` is invalid"), "{err}");

    let err = failure(&cube(&sim, &["scale", "site"]));
    assert!(err.contains("nothing to scale"), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cube"))
        .args(["apps", "--cc-url", &format!("http://{closed}")])
        .output()
        .unwrap();
    let err = failure(&out);
    assert!(err.starts_with("error: cannot reach CC at"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // push says the same, before anything else.
    let out = Command::new(env!("CARGO_BIN_EXE_cube"))
        .args(["push", app_dir.to_str().unwrap(), "--name", "site"])
        .args(["--cc-url", &format!("http://{closed}")])
        .output()
        .unwrap();
    let err = failure(&out);
    assert!(err.starts_with("error: cannot reach CC at"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
