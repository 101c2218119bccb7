//! Faults that need a process to die, proven on the real `cube` binary (each
//! service its own process on 127.0.0.1, killed with SIGKILL by PID at a
//! chosen moment, restarted on the same data):
//!
//! - the Registry killed while a droplet import streams in: after a restart
//!   nothing partial is listed or served, every stored blob still matches its
//!   digest, and the retried import makes an image `skopeo` copies;
//! - `cube opi` (local backend) killed while its apps run: the restarted OPI
//!   rebuilds the same LRPs and instances, and no instance runs twice;
//! - the Sink killed in the middle of its first cycle: the restarted Sink
//!   converges OPI to exactly CC's apps, and no stop is ever sent for an app
//!   CC desires (a recording proxy in front of OPI sees every call).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, free_port, opi_fixture};
use serde_json::{Value, json};

/// A `cube` subcommand running as a child process; killed when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn start(args: &[String], log: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cube"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { child }
    }

    /// SIGKILL, as a crash or the OOM killer would.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The HTTP status of `GET url`, 0 when nothing answers.
fn status(url: &str) -> u16 {
    curl_status(&["--max-time", "5", url], None)
}

/// The HTTP status curl reports for `args` (with `stdin` as the body), 0 when
/// nothing answers.
fn curl_status(args: &[&str], stdin: Option<&[u8]>) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.unwrap_or_default())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn get_json(url: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", url])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn send_json(method: &str, url: &str, body: &Value) -> u16 {
    let args = [
        "--max-time",
        "30",
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
    ];
    let args: Vec<&str> = args
        .into_iter()
        .chain(["--data-binary", "@-", url])
        .collect();
    curl_status(&args, Some(body.to_string().as_bytes()))
}

fn registry(data: &Path, port: u16, log: &Path) -> Proc {
    let proc = Proc::start(
        &args(&[
            "registry",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
            data.to_str().unwrap(),
        ]),
        log,
    );
    eventually("the registry to answer", || {
        (status(&format!("http://127.0.0.1:{port}/v2/")) == 200).then_some(())
    });
    proc
}

/// A droplet `.tgz` with an app script and `filler` bytes that do not
/// compress (so streaming it takes a while and the import is caught mid-way).
fn droplet(filler: usize) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut append = |name: &str, mode: u32, body: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, name, body).unwrap();
    };
    append("app/run.sh", 0o755, b"#!/bin/sh\nexec sleep 3600\n");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..filler)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    append("app/noise.bin", 0o644, &noise);
    tar.into_inner().unwrap().finish().unwrap()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn a_registry_killed_mid_import_serves_nothing_partial_and_the_import_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry");
    let log = dir.path().join("registry.log");
    let port = free_port();
    let mut registry_proc = registry(&data, port, &log);
    let body = droplet(24 << 20);
    let repo = "cloudfoundry/dg-killed";
    let tag = "droplet-v1";
    let path = format!("/v2/{repo}/droplets?hash={tag}");

    // Stream half the droplet slowly; once the import is writing its temp
    // files, kill the registry.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let tmp = data.join("_tmp");
    let half = body.len() / 2;
    for chunk in body[..half].chunks(256 << 10) {
        stream.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    eventually("the import to write temp files", || {
        (!files(&tmp).is_empty()).then_some(())
    });
    registry_proc.kill();
    drop(stream);
    assert!(
        !files(&tmp).is_empty(),
        "the kill left a partial import behind to be ignored"
    );

    let registry_proc = registry(&data, port, &log);
    let base = format!("http://127.0.0.1:{port}");
    let catalog = get_json(&format!("{base}/v2/_catalog"));
    assert!(
        !catalog["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == repo),
        "a half-imported droplet is listed: {catalog}"
    );
    assert_eq!(status(&format!("{base}/v2/{repo}/manifests/{tag}")), 404);
    assert!(files(&tmp).is_empty(), "temp files are cleared at start");
    let blobs = files(&data.join("blobs"));
    for blob in &blobs {
        let name = blob.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            sha256(blob),
            name,
            "{} is not what its name says",
            blob.display()
        );
    }

    // The retried import succeeds and the image is whole.
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "--max-time",
            "120",
            "-X",
            "POST",
        ])
        .args([
            "-H",
            "Content-Type: application/gzip",
            "--data-binary",
            "@-",
        ])
        .arg(format!("{base}{path}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(&body)?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("201"), "retried import: {text}");
    let layout = dir.path().join("pulled");
    let copy = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--retry-times", "0"])
        .arg(format!("docker://127.0.0.1:{port}/{repo}:{tag}"))
        .arg(format!("oci:{}:{tag}", layout.display()))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&copy.stderr)
    );
    // Every blob skopeo fetched matches its digest.
    let pulled = files(&layout.join("blobs/sha256"));
    assert!(
        pulled.len() >= 3,
        "manifest, config and the droplet layer: {pulled:?}"
    );
    for blob in pulled {
        let name = blob.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(sha256(&blob), name);
    }
    drop(registry_proc);
}

/// Process groups (one per instance) whose working directory is under `dir`.
fn instance_groups(dir: &Path) -> Vec<i32> {
    let mut groups: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // pid (comm) state ppid pgrp …; comm may hold spaces.
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().nth(2)?.parse().ok()
        })
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

fn opi_local(data: &Path, port: u16, registry_port: u16, log: &Path) -> Proc {
    let proc = Proc::start(
        &args(&[
            "opi",
            "--backend",
            "local",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
            data.to_str().unwrap(),
            "--registry-url",
            &format!("http://127.0.0.1:{registry_port}"),
        ]),
        log,
    );
    eventually("OPI to answer", || {
        (status(&format!("http://127.0.0.1:{port}/apps")) == 200).then_some(())
    });
    proc
}

fn running(opi: &str, guid: &str, version: &str) -> Vec<(u64, String)> {
    let instances = get_json(&format!("{opi}/apps/{guid}/{version}/instances"));
    instances["instances"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|i| i["state"] == "RUNNING")
                .map(|i| (i["index"].as_u64().unwrap_or(0), i["state"].to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_restarted_opi_rebuilds_its_apps_and_runs_no_instance_twice() {
    let dir = tempfile::tempdir().unwrap();
    let registry_port = free_port();
    let _registry = registry(
        &dir.path().join("registry"),
        registry_port,
        &dir.path().join("registry.log"),
    );
    let droplet_body = droplet(1024);
    let droplet_file = dir.path().join("droplet.tgz");
    std::fs::write(&droplet_file, &droplet_body).unwrap();
    let imported = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/gzip",
            "--data-binary",
        ])
        .arg(format!("@{}", droplet_file.display()))
        .arg(format!(
            "http://127.0.0.1:{registry_port}/v2/cloudfoundry/dg-opi/droplets?hash=h1"
        ))
        .status()
        .unwrap();
    assert!(imported.success());

    let data = dir.path().join("local");
    let log = dir.path().join("opi.log");
    let port = free_port();
    let opi = format!("http://127.0.0.1:{port}");
    let mut opi_proc = opi_local(&data, port, registry_port, &log);
    let mut body: Value = serde_json::from_str(&opi_fixture("desire_buildpack.json")).unwrap();
    let (guid, version) = ("app-restart", "v1");
    body["guid"] = json!(guid);
    body["version"] = json!(version);
    body["process_guid"] = json!(format!("{guid}-{version}"));
    body["instances"] = json!(3);
    body["health_check_type"] = json!("process");
    body["lifecycle"] = json!({"buildpack_lifecycle": {
        "droplet_guid": "dg-opi", "droplet_hash": "h1", "start_command": "./run.sh"}});
    assert_eq!(
        send_json("PUT", &format!("{opi}/apps/{guid}-{version}"), &body),
        202
    );
    eventually("3 running instances", || {
        (running(&opi, guid, version).len() == 3).then_some(())
    });
    let before = instance_groups(&data);
    assert_eq!(
        before.len(),
        3,
        "one process group per instance: {before:?}"
    );
    let listed_before = get_json(&format!("{opi}/apps"));

    opi_proc.kill();
    let _opi_proc = opi_local(&data, port, registry_port, &log);
    assert_eq!(
        get_json(&format!("{opi}/apps")),
        listed_before,
        "the restarted OPI lists the same LRPs"
    );
    eventually("3 running instances again", || {
        (running(&opi, guid, version).len() == 3).then_some(())
    });
    // Give a duplicate the time to appear, then count: one group per instance.
    std::thread::sleep(Duration::from_secs(2));
    let after = instance_groups(&data);
    assert_eq!(
        after.len(),
        3,
        "instances after the restart: {after:?} (before: {before:?})"
    );
    let indexes: Vec<u64> = running(&opi, guid, version)
        .iter()
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(indexes.len(), 3, "{indexes:?}");
}

/// A proxy in front of OPI that records every call and slows each by
/// `delay`, so a Sink cycle lasts long enough to be interrupted.
async fn recording_proxy(
    opi: String,
    delay: Duration,
) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let calls: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let recorded = calls.clone();
    let http = opi::http::http_client_builder().build().unwrap();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let recorded = recorded.clone();
        let http = http.clone();
        let opi = opi.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap();
            recorded
                .lock()
                .unwrap()
                .push((parts.method.to_string(), parts.uri.path().to_owned()));
            tokio::time::sleep(delay).await;
            let mut outgoing = http
                .request(parts.method.clone(), format!("{opi}{}", parts.uri))
                .body(bytes);
            if let Some(ct) = parts.headers.get("content-type") {
                outgoing = outgoing.header("content-type", ct);
            }
            let answer = outgoing.send().await.unwrap();
            let status = answer.status();
            let body = answer.bytes().await.unwrap();
            axum::response::IntoResponse::into_response((status, body))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_killed_mid_cycle_converges_after_a_restart_and_stops_nothing_desired() {
    const APPS: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let cc_port = free_port();
    let cc = format!("http://127.0.0.1:{cc_port}");
    let _cc = Proc::start(
        &args(&[
            "cc-sim",
            "--listen",
            &format!("127.0.0.1:{cc_port}"),
            "--admin-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data-dir",
            dir.path().join("cc").to_str().unwrap(),
            "--fake-apps",
            &APPS.to_string(),
        ]),
        &dir.path().join("cc.log"),
    );
    let opi_port = free_port();
    let opi = format!("http://127.0.0.1:{opi_port}");
    let _opi = Proc::start(
        &args(&[
            "opi",
            "--listen",
            &format!("127.0.0.1:{opi_port}"),
            "--admin-listen",
            &format!("127.0.0.1:{}", free_port()),
        ]),
        &dir.path().join("opi.log"),
    );
    let ready = |url: String| {
        tokio::task::spawn_blocking(move || {
            eventually("a service to answer", || {
                (status(&url) == 200).then_some(())
            })
        })
    };
    ready(format!("{opi}/apps")).await.unwrap();
    ready(format!("{cc}/sim/apps")).await.unwrap();
    // An LRP CC does not desire: the one stop the Sink should send.
    let mut stray: Value = serde_json::from_str(&opi_fixture("desire_docker.json")).unwrap();
    stray["guid"] = json!("stray");
    stray["version"] = json!("v1");
    stray["process_guid"] = json!("stray-v1");
    let put = opi::http::http_client_builder()
        .build()
        .unwrap()
        .put(format!("{opi}/apps/stray-v1"))
        .json(&stray)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 202);

    let (proxy, calls) = recording_proxy(opi.clone(), Duration::from_millis(5)).await;
    let sink_args = args(&[
        "sink",
        "--cc-url",
        &cc,
        "--opi-url",
        &proxy,
        "--registry-url",
        "",
        "--interval",
        "1s",
        "--parallel",
        "8",
        "--admin-listen",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    let sink_log = dir.path().join("sink.log");
    let desires = |calls: &Arc<Mutex<Vec<(String, String)>>>| {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p)| m == "PUT" && p.starts_with("/apps/") && !p.contains("/stop"))
            .count()
    };
    let mut sink = Proc::start(&sink_args, &sink_log);
    for _ in 0..6000 {
        if desires(&calls) >= APPS / 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sink.kill();
    let at_kill = desires(&calls);
    assert!(
        (APPS / 10..APPS).contains(&at_kill),
        "the Sink was killed mid-cycle ({at_kill} of {APPS} desired)"
    );

    let _sink = Proc::start(&sink_args, &sink_log);
    let listed = |opi: String| {
        tokio::task::spawn_blocking(move || {
            let apps = get_json(&format!("{opi}/apps"));
            apps["desired_lrp_scheduling_infos"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|i| i["process_guid"].as_str().unwrap_or("").to_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let mut lrps = Vec::new();
    for _ in 0..600 {
        lrps = listed(opi.clone()).await.unwrap();
        if lrps.len() == APPS && !lrps.iter().any(|p| p == "stray-v1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(lrps.len(), APPS, "OPI ends with exactly CC's apps");
    assert!(
        !lrps.iter().any(|p| p == "stray-v1"),
        "the undesired LRP was stopped"
    );
    let stops: Vec<String> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, p)| m == "PUT" && p.contains("/stop"))
        .map(|(_, p)| p.clone())
        .collect();
    assert_eq!(
        stops,
        vec!["/apps/stray/v1/stop".to_owned()],
        "the only stop is of the LRP CC does not desire"
    );
}
