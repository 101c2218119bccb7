//! End-to-end: the `cube opi` binary as a new user runs it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Running, opi_fixture};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts `cube <args>` with JSON logs and reads the bound addresses from its
/// "cube opi started" log line.
fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cube"));
    command
        .args(["--log-format", "json"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    common::start_service(command, "cube opi started")
}

const GUID: &str = "a6f0a0a2-6b7b-4d8e-9a3f-4c2b1e0d9f11";
const VERSION: &str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";

#[tokio::test]
async fn a_new_user_desires_lists_gets_and_sees_metrics() {
    let cube = start(
        &[
            "opi",
            "--backend",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let http = opi::http::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let api = format!("http://{}", cube.api);

    let response = http
        .put(format!("{api}/apps/{GUID}-{VERSION}"))
        .body(opi_fixture("desire_buildpack.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    let list: serde_json::Value = http
        .get(format!("{api}/apps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["desired_lrp_scheduling_infos"][0]["process_guid"],
        format!("{GUID}-{VERSION}")
    );

    let lrp: serde_json::Value = http
        .get(format!("{api}/apps/{GUID}/{VERSION}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(lrp["desired_lrp"]["app_name"], "myapp");

    let response = http
        .put(format!("{api}/apps/{GUID}-{VERSION}"))
        .body(r#"{"guid":"x","version":"y","instances":"many"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("instances"), "{message}");

    let metrics = http
        .get(format!("http://{}/metrics", cube.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains(r#"cube_opi_requests_total{code="202",route="PUT /apps/{process_guid}"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"cube_opi_requests_total{code="400",route="PUT /apps/{process_guid}"} 1"#),
        "{metrics}"
    );
    let ready = http
        .get(format!("http://{}/readyz", cube.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn flags_beat_env_and_env_beats_the_yaml_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cube.yaml");
    // The YAML asks for a max body of 10 bytes; the environment overrides it
    // with 100 KiB, so a normal desire fits. The YAML's listen address is
    // overridden by the flag.
    std::fs::write(
        &config,
        "opi:\n  listen: 127.0.0.1:1\n  admin-listen: 127.0.0.1:0\n  max-body-bytes: 10\n",
    )
    .unwrap();
    let cube = start(
        &[
            "--config",
            config.to_str().unwrap(),
            "opi",
            "--listen",
            "127.0.0.1:0",
        ],
        &[("CUBE_MAX_BODY_BYTES", "102400")],
    );
    assert_ne!(cube.api, "127.0.0.1:1", "the flag beats the YAML file");
    let response = opi::http::http_client_builder()
        .build()
        .unwrap()
        .put(format!("http://{}/apps/{GUID}-{VERSION}", cube.api))
        .body(opi_fixture("desire_buildpack.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        202,
        "the environment beats the YAML file"
    );
}

#[test]
fn a_bad_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cube.yaml");
    std::fs::write(&config, "opi:\n  lisen: 127.0.0.1:1\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cube"))
        .args(["--config", config.to_str().unwrap(), "opi"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown setting `lisen`"), "{stderr}");
    assert!(stderr.contains("cube.yaml"), "{stderr}");
}

#[test]
fn routing_flags_without_kubernetes_are_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    for (args, named, hint) in [
        (
            vec!["up", "--data-dir", &data, "--routing", "ingress"],
            "--routing",
            "--kubeconfig",
        ),
        (
            vec!["up", "--data-dir", &data, "--gateway-name", "gw"],
            "--gateway-name",
            "--kubeconfig",
        ),
        (
            vec!["opi", "--backend", "memory", "--routing", "gateway"],
            "--routing",
            "--backend k8s",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_cube"))
            .args(&args)
            .env_remove("CUBE_ROUTING")
            .output()
            .unwrap();
        assert!(!output.status.success(), "cube {args:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named) && stderr.contains(hint), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "up", "opi", "sink", "registry", "stager", "cc-sim", "push", "apps",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_cube"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success(), "cube {sub} --help failed");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: cube"), "cube {sub} --help: {text}");
    }
}
