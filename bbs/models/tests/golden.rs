//! Wire compatibility, proven independently of prost: Debian's `protoc` and
//! `python3-protobuf` compile the same `proto/*.proto`, `golden/vectors.py`
//! builds one realistic message per request and response of the BBS routes
//! Cloud Controller calls (filled as CC's recipe builders fill them), this
//! file builds the same messages with prost, and
//!
//! - the bytes Python encodes decode in Rust to exactly the messages built
//!   here, and Rust encodes them byte for byte the same (both encoders are
//!   deterministic: fields in number order, maps sorted by key);
//! - the bytes Rust encodes decode in Python to exactly Python's messages.
//!
//! Needs `protoc` and `/usr/bin/python3` with `google.protobuf`
//! (`scripts/install-deps` installs them). Without them the tests are
//! skipped with a note — except under `CI=true`, where they fail.

#![allow(clippy::unwrap_used, deprecated)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use bbs_models::{self as proto, error::Type};
use prost::Message;

const APP_GUID: &str = "6a2d1c5e-3b9f-4e1a-9c7d-2f8e0b4a1d3c";
const PROCESS_GUID: &str =
    "6a2d1c5e-3b9f-4e1a-9c7d-2f8e0b4a1d3c-b1f6e8a2-7c3d-4f5e-8a9b-0c1d2e3f4a5b";
const DOCKER_PROCESS_GUID: &str =
    "0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f-5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716";
const ORG_GUID: &str = "0e5a7c1b-2d3f-4a6b-8c9d-1e2f3a4b5c6d";
const SPACE_GUID: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
const TASK_GUID: &str = "d3c2b1a0-9f8e-4d7c-6b5a-493827160504";
const DROPLET_SHA1: &str = "8d7e5c9a1b3f2e4d6c8a0b1c2d3e4f5a6b7c8d9e";
const DROPLET_SHA256: &str = "3f1e2d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";
const LIFECYCLE_URL: &str = "https://file-server.service.cf.internal:8447/v1/static/buildpack_app_lifecycle/buildpack_app_lifecycle.tgz";

fn droplet_url() -> String {
    format!("https://cc-uploader.service.cf.internal:9091/v1/static/droplets/{APP_GUID}/download")
}

fn callback_url() -> String {
    format!(
        "https://cloud-controller-ng.service.cf.internal:9023/internal/v4/tasks/{TASK_GUID}/completed"
    )
}

fn routes() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        (
            "cf-router".to_owned(),
            br#"[{"hostnames":["dora.example.com"],"port":8080,"route_service_url":null,"isolation_segment":"iso-seg-1","protocol":"http1"}]"#.to_vec(),
        ),
        (
            "tcp-router".to_owned(),
            br#"[{"router_group_guid":"tcp-group","external_port":61000,"container_port":8080}]"#
                .to_vec(),
        ),
        (
            "internal-router".to_owned(),
            br#"[{"hostname":"dora.apps.internal"}]"#.to_vec(),
        ),
        (
            "diego-ssh".to_owned(),
            br#"{"container_port":2222,"private_key":"-----BEGIN RSA PRIVATE KEY-----\n...","host_fingerprint":"a6:14:c0:ea:42:07:b2:f7:53:2c:0b:60:e0:00:21:6c"}"#.to_vec(),
        ),
    ])
}

fn only_routes(names: &[&str]) -> proto::ProtoRoutes {
    let all = routes();
    proto::ProtoRoutes {
        routes: names
            .iter()
            .map(|n| ((*n).to_owned(), all[*n].clone()))
            .collect(),
    }
}

fn ev(name: &str, value: &str) -> proto::EnvironmentVariable {
    proto::EnvironmentVariable {
        name: name.into(),
        value: value.into(),
    }
}

fn app_env() -> Vec<proto::EnvironmentVariable> {
    vec![
        ev("PORT", "8080"),
        ev("VCAP_APP_PORT", "8080"),
        ev("VCAP_APP_HOST", "0.0.0.0"),
        ev(
            "VCAP_APPLICATION",
            &format!(r#"{{"application_id":"{APP_GUID}","name":"dora"}}"#),
        ),
        ev("MEMORY_LIMIT", "256m"),
        ev("VCAP_SERVICES", "{}"),
    ]
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A run action as Cloud Controller writes them: a file descriptor limit,
/// no directory.
struct Run {
    path: String,
    args: Vec<String>,
    log_source: String,
    env: Vec<proto::EnvironmentVariable>,
    nofile: u64,
    user: String,
    suppress: bool,
}

impl Run {
    fn new(
        path: &str,
        args: &[&str],
        log_source: &str,
        env: Vec<proto::EnvironmentVariable>,
    ) -> Self {
        Self {
            path: path.into(),
            args: strings(args),
            log_source: log_source.into(),
            env,
            nofile: 16384,
            user: "vcap".into(),
            suppress: false,
        }
    }

    fn by_root(self, nofile: u64) -> Self {
        Self {
            user: "root".into(),
            nofile,
            ..self
        }
    }
}

fn run(r: Run) -> proto::Action {
    proto::Action {
        run_action: Some(proto::RunAction {
            path: r.path,
            args: r.args,
            dir: String::new(),
            env: r.env,
            resource_limits: Some(proto::ResourceLimits {
                optional_nofile: Some(proto::resource_limits::OptionalNofile::Nofile(r.nofile)),
                optional_nproc: None,
            }),
            user: r.user,
            log_source: r.log_source,
            suppress_log_output: r.suppress,
            volume_mounted_files: Vec::new(),
        }),
        ..proto::Action::default()
    }
}

fn download(
    artifact: &str,
    from: &str,
    to: &str,
    cache_key: &str,
    user: &str,
    algorithm: &str,
    value: &str,
) -> proto::Action {
    proto::Action {
        download_action: Some(proto::DownloadAction {
            artifact: artifact.into(),
            from: from.into(),
            to: to.into(),
            cache_key: cache_key.into(),
            log_source: String::new(),
            user: user.into(),
            checksum_algorithm: algorithm.into(),
            checksum_value: value.into(),
        }),
        ..proto::Action::default()
    }
}

fn static_tag(value: &str) -> proto::MetricTagValue {
    proto::MetricTagValue {
        r#static: value.into(),
        dynamic: 0,
    }
}

fn dynamic_tag(value: proto::metric_tag_value::DynamicValue) -> proto::MetricTagValue {
    proto::MetricTagValue {
        r#static: String::new(),
        dynamic: value as i32,
    }
}

fn lrp_metric_tags() -> BTreeMap<String, proto::MetricTagValue> {
    use proto::metric_tag_value::DynamicValue;
    BTreeMap::from([
        ("source_id".to_owned(), static_tag(APP_GUID)),
        ("process_id".to_owned(), static_tag(APP_GUID)),
        ("process_type".to_owned(), static_tag("web")),
        (
            "process_instance_id".to_owned(),
            dynamic_tag(DynamicValue::InstanceGuid),
        ),
        ("instance_id".to_owned(), dynamic_tag(DynamicValue::Index)),
        ("organization_id".to_owned(), static_tag(ORG_GUID)),
        ("space_id".to_owned(), static_tag(SPACE_GUID)),
        ("app_id".to_owned(), static_tag(APP_GUID)),
        ("organization_name".to_owned(), static_tag("MyOrg")),
        ("space_name".to_owned(), static_tag("MySpace")),
        ("app_name".to_owned(), static_tag("dora")),
    ])
}

fn egress_rules() -> Vec<proto::SecurityGroupRule> {
    let rule = |protocol: &str, destination: &str, annotation: &str| proto::SecurityGroupRule {
        protocol: protocol.into(),
        destinations: vec![destination.into()],
        annotations: vec![annotation.into()],
        ..proto::SecurityGroupRule::default()
    };
    vec![
        proto::SecurityGroupRule {
            ports: vec![53],
            ..rule("udp", "0.0.0.0/0", "security_group_id:guid1")
        },
        proto::SecurityGroupRule {
            ports: vec![80],
            log: true,
            ..rule("tcp", "0.0.0.0/0", "security_group_id:guid2")
        },
        proto::SecurityGroupRule {
            port_range: Some(proto::PortRange {
                start: 8080,
                end: 8090,
            }),
            ..rule("tcp", "10.0.0.0-10.0.0.255", "security_group_id:guid3")
        },
        proto::SecurityGroupRule {
            icmp_info: Some(proto::IcmpInfo { r#type: 8, code: 0 }),
            ..rule("icmp", "0.0.0.0/0", "security_group_id:guid4")
        },
    ]
}

fn certificate_properties() -> proto::CertificateProperties {
    proto::CertificateProperties {
        organizational_unit: vec![
            format!("organization:{ORG_GUID}"),
            format!("space:{SPACE_GUID}"),
            format!("app:{APP_GUID}"),
        ],
    }
}

fn app_network(workload: &str) -> proto::Network {
    proto::Network {
        properties: BTreeMap::from([
            ("policy_group_id".to_owned(), APP_GUID.to_owned()),
            ("app_id".to_owned(), APP_GUID.to_owned()),
            ("space_id".to_owned(), SPACE_GUID.to_owned()),
            ("org_id".to_owned(), ORG_GUID.to_owned()),
            ("ports".to_owned(), "8080".to_owned()),
            ("container_workload".to_owned(), workload.to_owned()),
        ]),
    }
}

fn lifecycle_layer() -> proto::ImageLayer {
    proto::ImageLayer {
        name: "buildpack-cflinuxfs4-lifecycle".into(),
        url: LIFECYCLE_URL.into(),
        destination_path: "/tmp/lifecycle".into(),
        layer_type: proto::image_layer::Type::Shared as i32,
        media_type: proto::image_layer::MediaType::Tgz as i32,
        digest_algorithm: 0,
        digest_value: String::new(),
    }
}

fn droplet_layer() -> proto::ImageLayer {
    proto::ImageLayer {
        name: "droplet".into(),
        url: droplet_url(),
        destination_path: "/home/vcap".into(),
        layer_type: proto::image_layer::Type::Exclusive as i32,
        media_type: proto::image_layer::MediaType::Tgz as i32,
        digest_algorithm: proto::image_layer::DigestAlgorithm::Sha256 as i32,
        digest_value: DROPLET_SHA256.into(),
    }
}

fn healthcheck(port: u32) -> proto::Action {
    let port = format!("-port={port}");
    run(Run {
        suppress: true,
        ..Run::new(
            "/tmp/lifecycle/healthcheck",
            &[&port, "-timeout=1s"],
            "HEALTH",
            Vec::new(),
        )
    })
}

fn launcher(args: &[&str], log_source: &str, env: Vec<proto::EnvironmentVariable>) -> Run {
    Run::new("/tmp/lifecycle/launcher", args, log_source, env)
}

fn serial(actions: Vec<proto::Action>) -> proto::Action {
    proto::Action {
        serial_action: Some(proto::SerialAction {
            actions,
            log_source: String::new(),
        }),
        ..proto::Action::default()
    }
}

fn parallel(actions: Vec<proto::Action>) -> proto::Action {
    proto::Action {
        parallel_action: Some(proto::ParallelAction {
            actions,
            log_source: String::new(),
        }),
        ..proto::Action::default()
    }
}

fn codependent(actions: Vec<proto::Action>) -> proto::Action {
    proto::Action {
        codependent_action: Some(proto::CodependentAction {
            actions,
            log_source: String::new(),
        }),
        ..proto::Action::default()
    }
}

/// AppRecipeBuilder#build_app_lrp: a buildpack app with SSH, a service
/// volume, file-based service bindings, the lifecycle as an image layer and
/// a sha1 droplet downloaded in the setup.
fn app_lrp() -> proto::DesiredLrp {
    let app = launcher(
        &[
            "app",
            "bundle exec rackup config.ru -p $PORT",
            r#"{"start_command":"bundle exec rackup"}"#,
        ],
        "APP/PROC/WEB",
        app_env(),
    );
    let sshd = Run::new(
        "/tmp/lifecycle/diego-sshd",
        &[
            "-address=0.0.0.0:2222",
            "-hostKey=-----BEGIN RSA PRIVATE KEY-----\n...",
            "-authorizedKey=ssh-rsa AAAA...",
            "-inheritDaemonEnv",
            "-logLevel=fatal",
        ],
        "CELL/SSHD",
        app_env(),
    );
    proto::DesiredLrp {
        process_guid: PROCESS_GUID.into(),
        domain: "cf-apps".into(),
        root_fs: "preloaded:cflinuxfs4".into(),
        instances: 21,
        environment_variables: vec![ev("LANG", "en_US.UTF-8")],
        setup: Some(serial(vec![download(
            "droplet",
            &droplet_url(),
            ".",
            &format!("droplets-{PROCESS_GUID}"),
            "vcap",
            "sha1",
            DROPLET_SHA1,
        )])),
        action: Some(codependent(vec![run(app), run(sshd)])),
        start_timeout_ms: 60000,
        monitor: Some(proto::Action {
            timeout_action: Some(Box::new(proto::TimeoutAction {
                action: Some(Box::new(parallel(vec![healthcheck(8080)]))),
                deprecated_timeout_ns: 0,
                log_source: String::new(),
                timeout_ms: 600_000,
            })),
            ..proto::Action::default()
        }),
        disk_mb: 1024,
        memory_mb: 256,
        cpu_weight: 10,
        privileged: false,
        ports: vec![8080, 2222],
        routes: Some(proto::ProtoRoutes { routes: routes() }),
        log_source: "CELL".into(),
        log_guid: APP_GUID.into(),
        metrics_guid: APP_GUID.into(),
        annotation: "1700000000.123456".into(),
        egress_rules: egress_rules(),
        legacy_download_user: "vcap".into(),
        trusted_system_certificates_path: "/etc/cf-system-certificates".into(),
        volume_mounts: vec![proto::VolumeMount {
            driver: "nfsv3driver".into(),
            container_dir: format!("/var/vcap/data/{APP_GUID}"),
            mode: "rw".into(),
            shared: Some(proto::SharedDevice {
                volume_id: "service-instance-guid".into(),
                mount_config: r#"{"source":"nfs://nfs.example.com/export","uid":"1000"}"#.into(),
            }),
            dedicated: None,
        }],
        network: Some(app_network("app")),
        placement_tags: vec!["iso-seg-1".into()],
        max_pids: 1024,
        certificate_properties: Some(certificate_properties()),
        check_definition: Some(proto::CheckDefinition {
            checks: vec![proto::Check {
                tcp_check: Some(proto::TcpCheck {
                    port: 8080,
                    connect_timeout_ms: 1000,
                    interval_ms: 0,
                }),
                http_check: None,
            }],
            log_source: "HEALTH".into(),
            readiness_checks: vec![proto::Check {
                tcp_check: None,
                http_check: Some(proto::HttpCheck {
                    port: 8080,
                    request_timeout_ms: 1000,
                    path: "/ready".into(),
                    interval_ms: 5000,
                }),
            }],
        }),
        image_layers: vec![lifecycle_layer()],
        metric_tags: lrp_metric_tags(),
        log_rate_limit: Some(proto::LogRateLimit {
            bytes_per_second: 1024,
        }),
        volume_mounted_files: vec![proto::File {
            path: "vcap_services".into(),
            content: r#"{"user-provided":[]}"#.into(),
        }],
        ..proto::DesiredLrp::default()
    }
}

/// A docker app's LRP as get_by_process_guid.r2 answers it: stored with a
/// modification tag, image credentials, a sidecar (as other BBS clients
/// desire them) and the rolling update strategy.
fn docker_lrp_read() -> proto::DesiredLrp {
    let app = launcher(
        &[
            "app",
            "",
            r#"{"cmd":["/myapp"],"ports":[{"Port":8080,"Protocol":"tcp"}]}"#,
        ],
        "APP/PROC/WEB",
        app_env(),
    )
    .by_root(1024);
    proto::DesiredLrp {
        process_guid: DOCKER_PROCESS_GUID.into(),
        domain: "cf-apps".into(),
        root_fs: "docker:///cloudfoundry/diego-docker-app#latest".into(),
        instances: 2,
        environment_variables: vec![ev("LANG", "en_US.UTF-8")],
        action: Some(codependent(vec![run(app)])),
        start_timeout_ms: 60000,
        disk_mb: 1024,
        memory_mb: 128,
        cpu_weight: 6,
        ports: vec![8080],
        routes: Some(only_routes(&["cf-router"])),
        log_source: "CELL".into(),
        log_guid: APP_GUID.into(),
        metrics_guid: APP_GUID.into(),
        annotation: "1700000100.5".into(),
        modification_tag: Some(proto::ModificationTag {
            epoch: "c7b3a1e2-5d4f-4a6b-9c8d-7e6f5a4b3c2d".into(),
            index: 3,
        }),
        legacy_download_user: "root".into(),
        trusted_system_certificates_path: "/etc/cf-system-certificates".into(),
        max_pids: 1024,
        image_username: "registry-user".into(),
        image_password: "registry-secret".into(),
        check_definition: Some(proto::CheckDefinition {
            checks: vec![proto::Check {
                tcp_check: None,
                http_check: Some(proto::HttpCheck {
                    port: 8080,
                    request_timeout_ms: 1000,
                    path: "/healthz".into(),
                    interval_ms: 0,
                }),
            }],
            log_source: "HEALTH".into(),
            readiness_checks: Vec::new(),
        }),
        metric_tags: BTreeMap::from([("source_id".to_owned(), static_tag(APP_GUID))]),
        sidecars: vec![proto::Sidecar {
            action: Some(run(Run::new(
                "/usr/bin/envoy",
                &["-c", "/etc/envoy.yaml"],
                "PROXY",
                Vec::new(),
            )
            .by_root(1024))),
            disk_mb: 0,
            memory_mb: 32,
        }],
        log_rate_limit: Some(proto::LogRateLimit {
            bytes_per_second: -1,
        }),
        update_strategy: proto::desired_lrp::UpdateStrategy::Rolling as i32,
        ..proto::DesiredLrp::default()
    }
}

/// TaskRecipeBuilder#build_app_task with declarative asset downloads: the
/// lifecycle a shared layer, the droplet an exclusive one.
fn task_definition() -> proto::TaskDefinition {
    proto::TaskDefinition {
        root_fs: "preloaded:cflinuxfs4".into(),
        environment_variables: vec![
            ev("LANG", "en_US.UTF-8"),
            ev("VCAP_APPLICATION", r#"{"name":"dora"}"#),
        ],
        action: Some(run(launcher(
            &["app", "bin/rake db:migrate", "{}"],
            "APP/TASK/migrate",
            vec![ev("VCAP_SERVICES", "{}")],
        ))),
        disk_mb: 1024,
        memory_mb: 256,
        cpu_weight: 10,
        log_source: "APP/TASK/migrate".into(),
        log_guid: APP_GUID.into(),
        completion_callback_url: callback_url(),
        egress_rules: egress_rules()[..2].to_vec(),
        legacy_download_user: "vcap".into(),
        trusted_system_certificates_path: "/etc/cf-system-certificates".into(),
        volume_mounts: vec![proto::VolumeMount {
            driver: "smbdriver".into(),
            container_dir: "/data".into(),
            mode: "r".into(),
            shared: None,
            dedicated: Some(proto::DedicatedDevice {
                mounter_id: "smb-mounter".into(),
                mount_config: r#"{"share":"//smb/share"}"#.into(),
                device_config: r#"{"version":"3.0"}"#.into(),
            }),
        }],
        network: Some(app_network("task")),
        placement_tags: vec!["iso-seg-1".into()],
        max_pids: 1024,
        certificate_properties: Some(certificate_properties()),
        image_layers: vec![lifecycle_layer(), droplet_layer()],
        log_rate_limit: Some(proto::LogRateLimit {
            bytes_per_second: -1,
        }),
        metric_tags: [
            ("source_id", APP_GUID),
            ("organization_id", ORG_GUID),
            ("space_id", SPACE_GUID),
            ("app_id", APP_GUID),
            ("organization_name", "MyOrg"),
            ("space_name", "MySpace"),
            ("app_name", "dora"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), static_tag(v)))
        .collect(),
        volume_mounted_files: vec![proto::File {
            path: "vcap_services".into(),
            content: "{}".into(),
        }],
        ..proto::TaskDefinition::default()
    }
}

/// The running task as stored (format V3).
fn running_task_v3() -> proto::Task {
    proto::Task {
        task_definition: Some(task_definition()),
        task_guid: TASK_GUID.into(),
        domain: "cf-tasks".into(),
        created_at: 1_700_000_000_123_456_789,
        updated_at: 1_700_000_001_123_456_789,
        state: proto::task::State::Running as i32,
        cell_id: "cell-z1-0".into(),
        ..proto::Task::default()
    }
}

/// The running task as a `.r2` read answers it, written out by hand.
fn running_task() -> proto::Task {
    let mut task = running_task_v3();
    let definition = task.task_definition.as_mut().unwrap();
    definition.image_layers.clear();
    definition.cached_dependencies = vec![proto::CachedDependency {
        name: "buildpack-cflinuxfs4-lifecycle".into(),
        from: LIFECYCLE_URL.into(),
        to: "/tmp/lifecycle".into(),
        cache_key: LIFECYCLE_URL.into(),
        ..proto::CachedDependency::default()
    }];
    let original = definition.action.take().unwrap();
    definition.action = Some(serial(vec![
        parallel(vec![download(
            "droplet",
            &droplet_url(),
            "/home/vcap",
            &format!("sha256:{DROPLET_SHA256}"),
            "vcap",
            "sha256",
            DROPLET_SHA256,
        )]),
        original,
    ]));
    task
}

fn failed_docker_task() -> proto::Task {
    proto::Task {
        task_definition: Some(proto::TaskDefinition {
            root_fs: "docker:///cloudfoundry/diego-docker-app#latest".into(),
            action: Some(run(launcher(
                &["app", "/seed", "{}"],
                "APP/TASK/seed",
                Vec::new(),
            )
            .by_root(1024))),
            memory_mb: 128,
            disk_mb: 256,
            cpu_weight: 6,
            log_source: "APP/TASK/seed".into(),
            log_guid: APP_GUID.into(),
            completion_callback_url: callback_url(),
            legacy_download_user: "vcap".into(),
            image_username: "registry-user".into(),
            image_password: "registry-secret".into(),
            metric_tags: BTreeMap::from([("source_id".to_owned(), static_tag(APP_GUID))]),
            ..proto::TaskDefinition::default()
        }),
        task_guid: "e4d3c2b1-a09f-4e8d-7c6b-5a4938271605".into(),
        domain: "cf-tasks".into(),
        created_at: 1_700_000_000_000_000_000,
        updated_at: 1_700_000_060_000_000_000,
        first_completed_at: 1_700_000_060_000_000_000,
        state: proto::task::State::Completed as i32,
        cell_id: "cell-z2-1".into(),
        result: String::new(),
        failed: true,
        failure_reason: "APP/TASK/seed: Exited with status 3".into(),
        rejection_count: 1,
        rejection_reason: "insufficient resources: memory".into(),
    }
}

fn key(index: i32) -> Option<proto::ActualLrpKey> {
    Some(proto::ActualLrpKey {
        process_guid: PROCESS_GUID.into(),
        index,
        domain: "cf-apps".into(),
    })
}

fn routable(routable: bool) -> Option<proto::actual_lrp::OptionalRoutable> {
    Some(proto::actual_lrp::OptionalRoutable::Routable(routable))
}

fn actual_running(index: i32, instance_guid: &str) -> proto::ActualLrp {
    proto::ActualLrp {
        actual_lrp_key: key(index),
        actual_lrp_instance_key: Some(proto::ActualLrpInstanceKey {
            instance_guid: instance_guid.into(),
            cell_id: "cell-z1-0".into(),
        }),
        actual_lrp_net_info: Some(proto::ActualLrpNetInfo {
            address: "10.0.16.4".into(),
            ports: vec![
                proto::PortMapping {
                    container_port: 8080,
                    host_port: 61001,
                    container_tls_proxy_port: 61443,
                    host_tls_proxy_port: 61002,
                },
                proto::PortMapping {
                    container_port: 2222,
                    host_port: 61003,
                    container_tls_proxy_port: 61444,
                    host_tls_proxy_port: 61004,
                },
            ],
            instance_address: "10.255.97.12".into(),
            preferred_address: proto::actual_lrp_net_info::PreferredAddress::Instance as i32,
            instance_ipv6_address: "fd00::c".into(),
        }),
        crash_count: 0,
        crash_reason: String::new(),
        state: "RUNNING".into(),
        placement_error: String::new(),
        since: 1_700_000_123_456_789_012,
        modification_tag: Some(proto::ModificationTag {
            epoch: "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d".into(),
            index: 2,
        }),
        presence: proto::actual_lrp::Presence::Ordinary as i32,
        actual_lrp_internal_routes: vec![proto::ActualLrpInternalRoute {
            hostname: "dora.apps.internal".into(),
        }],
        metric_tags: BTreeMap::from([
            ("source_id".to_owned(), APP_GUID.to_owned()),
            ("instance_id".to_owned(), index.to_string()),
            ("process_instance_id".to_owned(), instance_guid.to_owned()),
        ]),
        optional_routable: routable(true),
        availability_zone: "z1".into(),
    }
}

fn actual_crashed(index: i32) -> proto::ActualLrp {
    proto::ActualLrp {
        actual_lrp_key: key(index),
        actual_lrp_instance_key: Some(proto::ActualLrpInstanceKey::default()),
        actual_lrp_net_info: Some(proto::ActualLrpNetInfo::default()),
        crash_count: 4,
        crash_reason: "APP/PROC/WEB: Exited with status 137 (out of memory)".into(),
        state: "CRASHED".into(),
        since: 1_700_000_200_000_000_000,
        modification_tag: Some(proto::ModificationTag {
            epoch: "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e".into(),
            index: 9,
        }),
        optional_routable: routable(false),
        ..proto::ActualLrp::default()
    }
}

fn actual_unclaimed(index: i32) -> proto::ActualLrp {
    proto::ActualLrp {
        actual_lrp_key: key(index),
        actual_lrp_instance_key: Some(proto::ActualLrpInstanceKey::default()),
        actual_lrp_net_info: Some(proto::ActualLrpNetInfo::default()),
        state: "UNCLAIMED".into(),
        placement_error: r#"found no compatible cell with placement tag "iso-seg-1""#.into(),
        since: 1_700_000_300_000_000_000,
        modification_tag: Some(proto::ModificationTag {
            epoch: "c3d4e5f6-a7b8-4c9d-0e1f-2a3b4c5d6e7f".into(),
            index: 0,
        }),
        optional_routable: routable(false),
        ..proto::ActualLrp::default()
    }
}

fn actual_evacuating(index: i32, instance_guid: &str) -> proto::ActualLrp {
    let mut lrp = actual_running(index, instance_guid);
    lrp.presence = proto::actual_lrp::Presence::Evacuating as i32;
    if let Some(instance) = &mut lrp.actual_lrp_instance_key {
        instance.cell_id = "cell-z2-0".into();
    }
    lrp.availability_zone = "z2".into();
    lrp
}

fn bbs_error(kind: Type, message: &str) -> Option<proto::Error> {
    Some(proto::Error {
        r#type: kind as i32,
        message: message.into(),
    })
}

fn scheduling_info(
    process_guid: &str,
    instances: i32,
    annotation: &str,
    drivers: &[&str],
    route_names: &[&str],
) -> proto::DesiredLrpSchedulingInfo {
    proto::DesiredLrpSchedulingInfo {
        desired_lrp_key: Some(proto::DesiredLrpKey {
            process_guid: process_guid.into(),
            domain: "cf-apps".into(),
            log_guid: APP_GUID.into(),
        }),
        annotation: annotation.into(),
        instances,
        desired_lrp_resource: Some(proto::DesiredLrpResource {
            memory_mb: 256,
            disk_mb: 1024,
            root_fs: "preloaded:cflinuxfs4".into(),
            max_pids: 1024,
        }),
        routes: Some(only_routes(route_names)),
        modification_tag: Some(proto::ModificationTag {
            epoch: "d4e5f6a7-b8c9-4d0e-1f2a-3b4c5d6e7f80".into(),
            index: 1,
        }),
        volume_placement: Some(proto::VolumePlacement {
            driver_names: strings(drivers),
        }),
        placement_tags: vec!["iso-seg-1".into()],
    }
}

/// AppRecipeBuilder#build_app_lrp_update: instances, annotation, metric
/// tags and routes (the SSH route kept).
fn lrp_update() -> proto::DesiredLrpUpdate {
    use proto::desired_lrp_update::{OptionalAnnotation, OptionalInstances};
    proto::DesiredLrpUpdate {
        optional_instances: Some(OptionalInstances::Instances(5)),
        routes: Some(proto::ProtoRoutes { routes: routes() }),
        optional_annotation: Some(OptionalAnnotation::Annotation("1700000500.25".into())),
        metric_tags: lrp_metric_tags(),
        optional_image_username: None,
        optional_image_password: None,
    }
}

/// Whether bytes decode to a vector's message (`Err` says how not).
type DecodesToIt = Box<dyn Fn(&[u8]) -> Result<(), String>>;

/// One vector: its Rust encoding and a check that bytes decode to it.
struct Vector {
    encoded: Vec<u8>,
    decodes_to_it: DecodesToIt,
}

fn vector<M: Message + Default + PartialEq + Debug + 'static>(message: M) -> Vector {
    Vector {
        encoded: message.encode_to_vec(),
        decodes_to_it: Box::new(move |bytes| match M::decode(bytes) {
            Ok(decoded) if decoded == message => Ok(()),
            Ok(decoded) => Err(format!("decodes to {decoded:#?}\nexpected {message:#?}")),
            Err(e) => Err(format!("does not decode: {e}")),
        }),
    }
}

fn vectors() -> BTreeMap<String, Vector> {
    let mut v: BTreeMap<String, Vector> = BTreeMap::new();
    let mut add = |name: &str, vector: Vector| {
        v.insert(name.to_owned(), vector);
    };
    add(
        "ping_response",
        vector(proto::PingResponse { available: true }),
    );
    add(
        "upsert_domain_request",
        vector(proto::UpsertDomainRequest {
            domain: "cf-apps".into(),
            ttl: 120,
        }),
    );
    add(
        "upsert_domain_response",
        vector(proto::UpsertDomainResponse { error: None }),
    );
    add(
        "desire_task_request",
        vector(proto::DesireTaskRequest {
            task_definition: Some(task_definition()),
            task_guid: TASK_GUID.into(),
            domain: "cf-tasks".into(),
        }),
    );
    add(
        "task_lifecycle_response",
        vector(proto::TaskLifecycleResponse {
            error: bbs_error(
                Type::InvalidStateTransition,
                "Cannot transition from Completed to Completed",
            ),
        }),
    );
    add(
        "task_guid_request",
        vector(proto::TaskGuidRequest {
            task_guid: TASK_GUID.into(),
        }),
    );
    add(
        "tasks_request",
        vector(proto::TasksRequest {
            domain: "cf-tasks".into(),
            cell_id: String::new(),
        }),
    );
    add(
        "tasks_response",
        vector(proto::TasksResponse {
            error: None,
            tasks: vec![running_task(), failed_docker_task()],
        }),
    );
    add(
        "task_by_guid_request",
        vector(proto::TaskByGuidRequest {
            task_guid: TASK_GUID.into(),
        }),
    );
    add(
        "task_response",
        vector(proto::TaskResponse {
            error: None,
            task: Some(failed_docker_task()),
        }),
    );
    add(
        "task_response_not_found",
        vector(proto::TaskResponse {
            error: bbs_error(
                Type::ResourceNotFound,
                "the requested resource could not be found",
            ),
            task: None,
        }),
    );
    add(
        "desire_lrp_request",
        vector(proto::DesireLrpRequest {
            desired_lrp: Some(app_lrp()),
        }),
    );
    add(
        "desired_lrp_lifecycle_response",
        vector(proto::DesiredLrpLifecycleResponse {
            error: bbs_error(
                Type::ResourceExists,
                "the requested resource already exists",
            ),
        }),
    );
    add(
        "desired_lrp_by_process_guid_request",
        vector(proto::DesiredLrpByProcessGuidRequest {
            process_guid: DOCKER_PROCESS_GUID.into(),
        }),
    );
    add(
        "desired_lrp_response",
        vector(proto::DesiredLrpResponse {
            error: None,
            desired_lrp: Some(docker_lrp_read()),
        }),
    );
    add(
        "desired_lrps_request",
        vector(proto::DesiredLrPsRequest {
            domain: "cf-apps".into(),
            ..proto::DesiredLrPsRequest::default()
        }),
    );
    add(
        "desired_lrp_scheduling_infos_response",
        vector(proto::DesiredLrpSchedulingInfosResponse {
            error: None,
            desired_lrp_scheduling_infos: vec![
                scheduling_info(
                    PROCESS_GUID,
                    21,
                    "1700000000.123456",
                    &["nfsv3driver"],
                    &["cf-router", "tcp-router", "internal-router", "diego-ssh"],
                ),
                scheduling_info(DOCKER_PROCESS_GUID, 0, "1700000100.5", &[], &[]),
            ],
        }),
    );
    add(
        "update_desired_lrp_request",
        vector(proto::UpdateDesiredLrpRequest {
            process_guid: PROCESS_GUID.into(),
            update: Some(lrp_update()),
        }),
    );
    add(
        "update_desired_lrp_request_scale_to_zero",
        vector(proto::UpdateDesiredLrpRequest {
            process_guid: PROCESS_GUID.into(),
            update: Some(proto::DesiredLrpUpdate {
                optional_instances: Some(proto::desired_lrp_update::OptionalInstances::Instances(
                    0,
                )),
                ..proto::DesiredLrpUpdate::default()
            }),
        }),
    );
    add(
        "remove_desired_lrp_request",
        vector(proto::RemoveDesiredLrpRequest {
            process_guid: PROCESS_GUID.into(),
        }),
    );
    add(
        "retire_actual_lrp_request",
        vector(proto::RetireActualLrpRequest {
            actual_lrp_key: key(1),
        }),
    );
    add(
        "actual_lrp_lifecycle_response",
        vector(proto::ActualLrpLifecycleResponse {
            error: bbs_error(
                Type::ResourceNotFound,
                "the requested resource could not be found",
            ),
        }),
    );
    add(
        "actual_lrps_request",
        vector(proto::ActualLrPsRequest {
            process_guid: PROCESS_GUID.into(),
            ..proto::ActualLrPsRequest::default()
        }),
    );
    add(
        "actual_lrps_request_index_zero",
        vector(proto::ActualLrPsRequest {
            domain: "cf-apps".into(),
            cell_id: "cell-z1-0".into(),
            process_guid: String::new(),
            optional_index: Some(proto::actual_lr_ps_request::OptionalIndex::Index(0)),
        }),
    );
    add(
        "actual_lrps_response",
        vector(proto::ActualLrPsResponse {
            error: None,
            actual_lrps: vec![
                actual_running(0, "7c6b5a49-3827-4160-9f8e-d7c6b5a49382"),
                actual_crashed(1),
                actual_unclaimed(2),
                actual_evacuating(3, "8d7c6b5a-4938-4271-a09f-e8d7c6b5a493"),
            ],
        }),
    );
    add(
        "actual_lrps_by_process_guids_request",
        vector(proto::ActualLrPsByProcessGuidsRequest {
            process_guids: vec![PROCESS_GUID.into(), DOCKER_PROCESS_GUID.into()],
        }),
    );
    add(
        "actual_lrps_by_process_guids_response",
        vector(proto::ActualLrPsByProcessGuidsResponse {
            error: None,
            actual_lrps: vec![
                actual_running(0, "7c6b5a49-3827-4160-9f8e-d7c6b5a49382"),
                actual_unclaimed(1),
            ],
        }),
    );
    add(
        "actual_lrps_by_process_guids_response_invalid",
        vector(proto::ActualLrPsByProcessGuidsResponse {
            error: bbs_error(Type::InvalidRequest, "process_guids must not be empty"),
            actual_lrps: Vec::new(),
        }),
    );
    // Every error type, named as in the protobuf enum.
    for number in 0..64 {
        if let Ok(kind) = Type::try_from(number) {
            add(
                &format!("error_{number}"),
                vector(proto::Error {
                    r#type: number,
                    message: kind.as_str_name().into(),
                }),
            );
        }
    }
    v
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

/// Whether Debian's `protoc` and `/usr/bin/python3` with `google.protobuf`
/// are here; without them the test fails under `CI=true` and is skipped
/// with a note otherwise.
fn tools_present() -> bool {
    let protoc = Command::new("protoc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let python = Command::new("/usr/bin/python3")
        .args(["-c", "import google.protobuf"])
        .output()
        .is_ok_and(|o| o.status.success());
    if protoc && python {
        return true;
    }
    let missing = match (protoc, python) {
        (false, false) => "protoc and /usr/bin/python3 with google.protobuf",
        (false, true) => "protoc",
        _ => "/usr/bin/python3 with google.protobuf",
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "golden vectors need {missing}: run scripts/install-deps \
         (Debian packages protobuf-compiler and python3-protobuf)"
    );
    // Straight to stderr: the test harness captures `eprintln!` of passing
    // tests, and this note is meant to be seen.
    let _ = writeln!(
        std::io::stderr(),
        "note: golden vectors skipped, {missing} missing (scripts/install-deps installs them)"
    );
    false
}

/// Compiles the protos for Python into a temp dir.
fn python_models() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
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
        .unwrap();
    assert!(status.success(), "protoc failed");
    out
}

fn python(models: &Path, mode: &str, input: &str) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/vectors.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(models)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn python_encodings_decode_identically_and_rust_encodes_the_same_bytes() {
    if !tools_present() {
        return;
    }
    let models = python_models();
    let out = python(models.path(), "encode", "");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_python: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    let ours = vectors();
    assert_eq!(
        from_python.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "the same vectors on both sides"
    );
    let mut failures = Vec::new();
    for (name, vector) in &ours {
        let python_bytes = from_hex(&from_python[name]);
        if let Err(why) = (vector.decodes_to_it)(&python_bytes) {
            failures.push(format!("{name}: Python's bytes {why}"));
        }
        if to_hex(&vector.encoded) != from_python[name] {
            failures.push(format!(
                "{name}: Rust encodes\n  {}\nPython\n  {}",
                to_hex(&vector.encoded),
                from_python[name]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rust_encodings_decode_identically_in_python() {
    if !tools_present() {
        return;
    }
    let models = python_models();
    let encoded = |vectors: &BTreeMap<String, Vector>| {
        let hex: BTreeMap<&String, String> = vectors
            .iter()
            .map(|(name, v)| (name, to_hex(&v.encoded)))
            .collect();
        serde_json::to_string(&hex).unwrap()
    };
    let out = python(models.path(), "decode", &encoded(&vectors()));
    assert!(
        out.status.success(),
        "python decoded something else: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // And the check can fail: a changed field is caught.
    let mut wrong = vectors();
    let mut lrp = app_lrp();
    lrp.instances = 4;
    wrong.insert(
        "desire_lrp_request".into(),
        vector(proto::DesireLrpRequest {
            desired_lrp: Some(lrp),
        }),
    );
    let out = python(models.path(), "decode", &encoded(&wrong));
    assert!(!out.status.success(), "python accepted a different LRP");
}

#[test]
fn the_r2_task_vector_is_the_down_conversion_of_the_stored_task() {
    // Written out by hand on both sides above; the library function agrees.
    assert_eq!(
        bbs_models::version::task_v2(running_task_v3()),
        running_task()
    );
}

#[test]
fn unpacked_repeated_fields_put_one_tag_per_value() {
    // `[packed = false]` in the BBS: ports, egress rule ports.
    let ports = app_lrp().encode_to_vec();
    let port_field = |value: &[u8]| {
        ports
            .windows(1 + value.len())
            .filter(|w| w[0] == 0x70 && &w[1..] == value)
            .count()
    };
    // Field 14, varint: 8080 = 0x90 0x3f, 2222 = 0xae 0x11.
    assert_eq!(port_field(&[0x90, 0x3f]), 1);
    assert_eq!(port_field(&[0xae, 0x11]), 1);
}
