//! The README's promise, end to end with the built binary: `cube up`, then
//! `cube push examples/python-hello --name hello`, the app answers through the
//! router, `cube scale hello -i 3` gives three running instances, a killed
//! instance comes back and CC hears of the crash, `cube delete hello` stops
//! everything.

#![allow(clippy::unwrap_used)]

mod common;

use common::{cube_ok, eventually, free_port};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Up {
    child: Child,
    data: PathBuf,
    cc: String,
    opi: String,
    router: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Up {
    fn drop(&mut self) {
        // SIGTERM first, so cube stops the apps' processes itself.
        let _ = Command::new("sh")
            .args(["-c", &format!("kill {}", self.child.id())])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cube() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cube"))
}

fn start() -> Up {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cube");
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let child = cube()
        .args(["up", "--data-dir", data.to_str().unwrap()])
        .args(["--router-listen", &addr(0), "--cc-listen", &addr(1)])
        .args(["--opi-listen", &addr(2), "--stager-listen", &addr(3)])
        .args(["--registry-listen", &addr(4), "--admin-listen", &addr(5)])
        .args(["--interval", "1s"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = Up {
        child,
        data,
        cc: format!("http://{}", addr(1)),
        opi: format!("http://{}", addr(2)),
        router: ports[0],
        _dir: dir,
    };
    let ready = format!("http://{}/readyz", addr(5));
    eventually("cube up to be ready", || {
        let out = Command::new("curl").args(["-sf", &ready]).output().ok()?;
        out.status.success().then_some(())
    });
    up
}

fn run(up: &Up, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--cc-url", &up.cc]);
    cube_ok(&all)
}

fn get_through_router(up: &Up, host: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}"])
        .args(["-H", &format!("Host: {host}")])
        .arg(format!("http://127.0.0.1:{}/", up.router))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn json(url: &str) -> serde_json::Value {
    let out = Command::new("curl").args(["-sf", url]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn running_instances(up: &Up) -> Option<(usize, String)> {
    let apps = json(&format!("{}/apps", up.opi));
    let info = apps["desired_lrp_scheduling_infos"].get(0)?;
    let (guid, version) = (info["guid"].as_str()?, info["version"].as_str()?);
    let instances = json(&format!("{}/apps/{guid}/{version}/instances", up.opi));
    let running = instances["instances"]
        .as_array()?
        .iter()
        .filter(|i| i["state"] == "RUNNING")
        .count();
    Some((running, format!("{guid}-{version}")))
}

/// Processes whose working directory is inside `dir` (the app's instances).
fn processes_in(dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
                && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.contains("app.py"))
        })
        .collect()
}

#[test]
fn push_scale_crash_and_delete_like_a_new_user() {
    let up = start();
    let out = run(
        &up,
        &[
            "push",
            "examples/python-hello",
            "--name",
            "hello",
            "--opi-url",
            &up.opi,
            "--router-url",
            &format!("http://localhost:{}", up.router),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 of 1 instances running"), "{text}");
    // The buildpack's own output, streamed while staging, before the instances.
    let finalized = text
        .find("-----> Python buildpack: done")
        .unwrap_or_else(|| panic!("push shows the buildpack's output: {text}"));
    assert!(
        finalized < text.find("1 of 1 instances running").unwrap(),
        "{text}"
    );
    assert!(text.contains("-----> Staging complete"), "{text}");
    assert!(
        text.contains(&format!("http://hello.localhost:{}", up.router)),
        "push prints the app's URL: {text}"
    );
    // The router may see the instance a moment after OPI reports it.
    let body = eventually("the app to answer through the router", || {
        let (code, body) = get_through_router(&up, "hello.localhost");
        (code == 200).then_some(body)
    });
    assert_eq!(body.trim(), "Hello from Cube");

    run(&up, &["scale", "hello", "-i", "3"]);
    let process_guid = eventually("3 running instances", || {
        running_instances(&up)
            .filter(|(n, _)| *n == 3)
            .map(|(_, pg)| pg)
    });

    let droplets = up.data.join("local");
    let victims = processes_in(&droplets);
    assert!(victims.len() >= 3, "app processes: {victims:?}");
    Command::new("sh")
        .args(["-c", &format!("kill -9 {}", victims[0])])
        .status()
        .unwrap();
    let crash = eventually("CC to record the crash", || {
        let events = json(&format!("{}/sim/events", up.cc));
        events["events"]
            .as_array()?
            .iter()
            .find(|e| e["kind"] == "app_crashed")
            .cloned()
    });
    assert_eq!(
        crash["path"],
        format!("/internal/v4/apps/{process_guid}/crashed")
    );
    assert_eq!(crash["body"]["crash_count"], 1);
    eventually("the crashed instance to run again", || {
        running_instances(&up).filter(|(n, _)| *n == 3)
    });

    run(&up, &["delete", "hello"]);
    eventually("OPI to stop everything", || {
        let apps = json(&format!("{}/apps", up.opi));
        apps["desired_lrp_scheduling_infos"]
            .as_array()
            .filter(|a| a.is_empty())
            .map(|_| ())
    });
    eventually("no app process to remain", || {
        processes_in(&droplets).is_empty().then_some(())
    });
    let (code, body) = get_through_router(&up, "hello.localhost");
    assert_eq!(code, 404, "{body}");

    // No buildpack takes a lone HTML file: push shows why, then one error line.
    let site = up.data.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "hi").unwrap();
    let out = cube()
        .args(["push", site.to_str().unwrap(), "--name", "site"])
        .args(["--cc-url", &up.cc, "--opi-url", &up.opi])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("-----> Staging failed (NoAppDetectedError)"),
        "the staging output is shown: {stdout}"
    );
    assert!(
        stderr.starts_with("error: staging site failed: NoAppDetectedError"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
