//! Wire compatibility, proven independently of prost: Debian's `protoc` and
//! `python3-protobuf` compile the same `proto/models/*.proto`, a Python script
//! builds a DesiredLRP and a Task field by field, and
//!
//! - the bytes Python encodes decode in Rust to exactly the messages built
//!   here, and Rust encodes them byte for byte the same (both encoders are
//!   deterministic: fields in number order, maps sorted by key);
//! - the bytes Rust encodes decode in Python to exactly Python's messages.
//!
//! Needs `protoc` and `/usr/bin/python3` with `google.protobuf`
//! (`scripts/install-deps` installs them).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use opi_diego::proto;
use prost::Message;

fn run_action() -> proto::Action {
    proto::Action {
        run_action: Some(proto::RunAction {
            path: "/bin/sh".into(),
            args: vec!["-c".into(), "bundle exec rackup -p $PORT".into()],
            dir: "/home/vcap/app".into(),
            env: vec![proto::EnvironmentVariable {
                name: "GREETING".into(),
                value: "héllo".into(),
            }],
            resource_limits: Some(proto::ResourceLimits {
                optional_nofile: Some(proto::resource_limits::OptionalNofile::Nofile(16384)),
                optional_nproc: None,
            }),
            user: "vcap".into(),
            log_source: "APP/PROC/WEB".into(),
            suppress_log_output: false,
        }),
        ..proto::Action::default()
    }
}

fn tag(value: &str) -> proto::MetricTagValue {
    proto::MetricTagValue {
        r#static: value.into(),
        dynamic: 0,
    }
}

fn desired_lrp() -> proto::DesiredLrp {
    proto::DesiredLrp {
        process_guid: "app-guid-v1".into(),
        domain: "cf-apps".into(),
        root_fs: "docker://127.0.0.1:8087/cloudfoundry/droplet#abc123".into(),
        instances: 3,
        action: Some(run_action()),
        start_timeout_ms: 60000,
        disk_mb: 1024,
        memory_mb: 256,
        cpu_weight: 20,
        ports: vec![8080, 9090],
        routes: Some(proto::ProtoRoutes {
            routes: BTreeMap::from([
                (
                    "cf-router".to_owned(),
                    br#"[{"hostnames":["dora.example.com"],"port":8080}]"#.to_vec(),
                ),
                (
                    "cube-lrp-id".to_owned(),
                    br#"{"guid":"app-guid","version":"v1"}"#.to_vec(),
                ),
            ]),
        }),
        log_source: "CELL".into(),
        log_guid: "app-guid".into(),
        annotation: "1700000000.0".into(),
        placement_tags: vec!["iso-seg-1".into()],
        image_username: "user".into(),
        image_password: "secret".into(),
        check_definition: Some(proto::CheckDefinition {
            checks: vec![proto::Check {
                tcp_check: None,
                http_check: Some(proto::HttpCheck {
                    port: 8080,
                    request_timeout_ms: 1500,
                    path: "/healthz".into(),
                    interval_ms: 0,
                }),
            }],
            log_source: "HEALTH_CHECK".into(),
            readiness_checks: Vec::new(),
        }),
        metric_tags: BTreeMap::from([
            ("source_id".to_owned(), tag("app-guid")),
            (
                "instance_id".to_owned(),
                proto::MetricTagValue {
                    r#static: String::new(),
                    dynamic: proto::metric_tag_value::DynamicValue::Index as i32,
                },
            ),
        ]),
        update_strategy: proto::desired_lrp::UpdateStrategy::Recreate as i32,
        ..proto::DesiredLrp::default()
    }
}

fn task() -> proto::Task {
    proto::Task {
        task_definition: Some(proto::TaskDefinition {
            root_fs: "docker:///library/busybox#1.36".into(),
            environment_variables: vec![proto::EnvironmentVariable {
                name: "A".into(),
                value: "1".into(),
            }],
            action: Some(run_action()),
            disk_mb: 128,
            memory_mb: 64,
            cpu_weight: 10,
            log_source: "APP/TASK/migrate".into(),
            log_guid: "app-guid".into(),
            annotation: "http://127.0.0.1:9/internal/v4/tasks/task-guid/completed".into(),
            metric_tags: BTreeMap::from([("app_name".to_owned(), tag("dora"))]),
            ..proto::TaskDefinition::default()
        }),
        task_guid: "task-guid".into(),
        domain: "cf-tasks".into(),
        created_at: 1_700_000_000_123_456_789,
        state: proto::task::State::Completed as i32,
        cell_id: "cell-z1-0".into(),
        failed: true,
        failure_reason: "Exited with status 3".into(),
        rejection_count: -1,
        ..proto::Task::default()
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Compiles the protos for Python into a temp dir.
fn python_models() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/models");
    let mut files: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .collect();
    files.sort();
    let status = Command::new("protoc")
        .arg(format!("--proto_path={}", models.display()))
        .arg(format!("--python_out={}", out.path().display()))
        .args(&files)
        .status()
        .expect("protoc must be installed (scripts/install-deps)");
    assert!(status.success(), "protoc failed");
    out
}

fn python(models: &Path, mode: &str, input: Option<&str>) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/vectors.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(models)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with python3-protobuf (scripts/install-deps)");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(input.unwrap_or_default().as_bytes())
        .unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn python_encodings_decode_identically_and_rust_encodes_the_same_bytes() {
    let models = python_models();
    let out = python(models.path(), "encode", None);
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vectors: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();

    let lrp_bytes = from_hex(&vectors["desired_lrp"]);
    assert_eq!(
        proto::DesiredLrp::decode(&*lrp_bytes).unwrap(),
        desired_lrp()
    );
    assert_eq!(
        to_hex(&desired_lrp().encode_to_vec()),
        vectors["desired_lrp"]
    );

    let task_bytes = from_hex(&vectors["task"]);
    assert_eq!(proto::Task::decode(&*task_bytes).unwrap(), task());
    assert_eq!(to_hex(&task().encode_to_vec()), vectors["task"]);

    // Ports are unpacked (`[packed = false]` in BBS): one tag per port.
    let port_tags = lrp_bytes.windows(2).filter(|w| w == &[0x70, 0x90]).count()
        + lrp_bytes.windows(2).filter(|w| w == &[0x70, 0x82]).count();
    assert_eq!(port_tags, 2, "each port is its own field-14 varint");
}

#[test]
fn rust_encodings_decode_identically_in_python() {
    let models = python_models();
    let given = serde_json::json!({
        "desired_lrp": to_hex(&desired_lrp().encode_to_vec()),
        "task": to_hex(&task().encode_to_vec()),
    });
    let out = python(models.path(), "decode", Some(&given.to_string()));
    assert!(
        out.status.success(),
        "python decoded something else: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // And the check can fail: a changed field is caught.
    let mut wrong = desired_lrp();
    wrong.instances = 4;
    let given = serde_json::json!({
        "desired_lrp": to_hex(&wrong.encode_to_vec()),
        "task": to_hex(&task().encode_to_vec()),
    });
    let out = python(models.path(), "decode", Some(&given.to_string()));
    assert!(!out.status.success(), "python accepted a different LRP");
}
