//! CC-shaped DesiredLRPs built from the field values of cloud_controller_ng's
//! specs (`app_recipe_builder_spec.rb`, `docker/desired_lrp_builder_spec.rb`;
//! see bbs-spec §2.6 and §2.7), for tests here and in the server.
//!
//! Two deviations from the spec values, each because Cube refuses the
//! original (tests check those refusals): `log_rate_limit` is CC's default
//! −1 (the spec's 1024 is a quota Cube cannot enforce) and the `cf-router`
//! route speaks `http1` (the spec's `http2` is not offered). GUIDs are
//! illustrative.

#![allow(deprecated)] // `legacy_download_user`, `metrics_guid`: CC still sets them.

use std::collections::BTreeMap;

use bbs_models::image_layer::{DigestAlgorithm, MediaType, Type as LayerType};
use bbs_models::metric_tag_value::DynamicValue;
use bbs_models::resource_limits::OptionalNofile;
use bbs_models::{
    Action, CachedDependency, CertificateProperties, Check, CheckDefinition, CodependentAction,
    DesiredLrp, DownloadAction, EnvironmentVariable, ImageLayer, LogRateLimit, MetricTagValue,
    Network, ParallelAction, ProtoRoutes, ResourceLimits, RunAction, SecurityGroupRule,
    SerialAction, TcpCheck, TimeoutAction,
};

use super::Settings;

/// The app's guid (`web` process guid, log and metrics guid).
pub const APP_GUID: &str = "a1b2c3d4-0000-4000-8000-000000000001";
/// The process version.
pub const PROCESS_VERSION: &str = "9f8e7d6c-0000-4000-8000-000000000002";
/// `<app guid>-<version>`.
pub const PROCESS_GUID: &str =
    "a1b2c3d4-0000-4000-8000-000000000001-9f8e7d6c-0000-4000-8000-000000000002";
/// The space's guid.
pub const SPACE_GUID: &str = "5bace000-0000-4000-8000-000000000003";
/// The organization's guid.
pub const ORG_GUID: &str = "0a9e0000-0000-4000-8000-000000000004";
/// The droplet's sha256.
pub const DROPLET_SHA256: &str = "0f4ab3c7d8e9f0112233445566778899aabbccddeeff00112233445566778899";
/// A secret in the app's `VCAP_SERVICES` (never in a stored copy).
pub const SERVICE_PASSWORD: &str = "s3cr3t-pa55w0rd-of-the-database";
/// The docker image's registry password.
pub const DOCKER_PASSWORD: &str = "dockerpass";
/// The stack of the buildpack LRP.
pub const STACK: &str = "cflinuxfs4";
/// CC's droplet URL (TLS port set) for the buildpack LRP.
pub const DROPLET_URL: &str = "https://api.internal.cf:8182/internal/v4/droplets/a1b2c3d4-0000-4000-8000-000000000001/0f4ab3c7d8e9f0112233445566778899aabbccddeeff00112233445566778899/download";

/// Settings offering [`STACK`].
pub fn settings() -> Settings {
    Settings {
        stacks: BTreeMap::from([(
            STACK.to_owned(),
            "registry.example/cube/stack-cflinuxfs4:latest".to_owned(),
        )]),
    }
}

/// CC's buildpack LRP (§2.6): droplet by a `setup` download, lifecycle as a
/// cached dependency, ssh enabled, a port health check.
pub fn buildpack_lrp() -> DesiredLrp {
    let env = buildpack_env();
    DesiredLrp {
        process_guid: PROCESS_GUID.to_owned(),
        domain: "cf-apps".to_owned(),
        root_fs: format!("preloaded:{STACK}"),
        instances: 21,
        environment_variables: vec![var("LANG", "en_US.UTF-8")],
        setup: Some(serial(vec![droplet_download()])),
        action: Some(codependent(vec![
            launcher("bundle exec rackup config.ru -p $PORT", "", &env, "vcap"),
            sshd(&env, "vcap"),
        ])),
        start_timeout_ms: 12_000,
        monitor: Some(port_monitor(8080, "vcap")),
        disk_mb: 256,
        memory_mb: 128,
        cpu_weight: 1,
        ports: vec![8080, 2222],
        routes: Some(routes()),
        cached_dependencies: vec![lifecycle_bundle(
            "buildpack_app_lifecycle",
            "buildpack-cflinuxfs4-lifecycle",
        )],
        legacy_download_user: "vcap".to_owned(),
        check_definition: Some(tcp_check(8080)),
        placement_tags: vec!["placement-tag".to_owned()],
        ..common()
    }
}

/// [`buildpack_lrp`] as CC sends it with declarative asset downloads: no
/// setup or cached dependencies, lifecycle and droplet as image layers.
pub fn buildpack_lrp_with_image_layers() -> DesiredLrp {
    DesiredLrp {
        setup: None,
        cached_dependencies: Vec::new(),
        image_layers: vec![
            ImageLayer {
                name: "buildpack-cflinuxfs4-lifecycle".to_owned(),
                url: lifecycle_url("buildpack_app_lifecycle"),
                destination_path: "/tmp/lifecycle".to_owned(),
                layer_type: LayerType::Shared as i32,
                media_type: MediaType::Tgz as i32,
                ..ImageLayer::default()
            },
            ImageLayer {
                name: "droplet".to_owned(),
                url: DROPLET_URL.to_owned(),
                destination_path: "/home/vcap".to_owned(),
                layer_type: LayerType::Exclusive as i32,
                media_type: MediaType::Tgz as i32,
                digest_algorithm: DigestAlgorithm::Sha256 as i32,
                digest_value: DROPLET_SHA256.to_owned(),
            },
        ],
        ..buildpack_lrp()
    }
}

/// CC's docker LRP (§2.7): `docker:///cloudfoundry/diego-docker-app#latest`
/// with registry credentials, the process's command, no ssh.
pub fn docker_lrp() -> DesiredLrp {
    let env = vec![
        var("PORT", "8080"),
        var("VCAP_APPLICATION", &vcap_application()),
        var("MEMORY_LIMIT", "128m"),
        var("VCAP_SERVICES", &vcap_services()),
    ];
    let metadata = r#"{"cmd":["/myapp"],"ports":[{"port":8080,"protocol":"tcp"}]}"#;
    DesiredLrp {
        process_guid: PROCESS_GUID.to_owned(),
        domain: "cf-apps".to_owned(),
        root_fs: "docker:///cloudfoundry/diego-docker-app#latest".to_owned(),
        instances: 2,
        image_username: "dockeruser".to_owned(),
        image_password: DOCKER_PASSWORD.to_owned(),
        action: Some(codependent(vec![launcher(
            "/myapp --serve",
            metadata,
            &env,
            "root",
        )])),
        start_timeout_ms: 60_000,
        monitor: Some(port_monitor(8080, "root")),
        disk_mb: 1024,
        memory_mb: 128,
        cpu_weight: 1,
        ports: vec![8080],
        routes: Some(routes_without_ssh()),
        cached_dependencies: vec![lifecycle_bundle("docker_app_lifecycle", "docker-lifecycle")],
        legacy_download_user: "root".to_owned(),
        check_definition: Some(tcp_check(8080)),
        ..common()
    }
}

/// What CC sets alike for every app LRP.
fn common() -> DesiredLrp {
    DesiredLrp {
        log_source: "CELL".to_owned(),
        log_guid: APP_GUID.to_owned(),
        metrics_guid: APP_GUID.to_owned(),
        annotation: "1718123456.789012".to_owned(),
        egress_rules: egress_rules(),
        trusted_system_certificates_path: "/etc/cf-system-certificates".to_owned(),
        network: Some(Network {
            properties: BTreeMap::from(
                [
                    ("policy_group_id", APP_GUID),
                    ("app_id", APP_GUID),
                    ("space_id", SPACE_GUID),
                    ("org_id", ORG_GUID),
                    ("ports", "8080"),
                    ("container_workload", "app"),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
            ),
        }),
        max_pids: 2048,
        certificate_properties: Some(CertificateProperties {
            organizational_unit: vec![
                format!("organization:{ORG_GUID}"),
                format!("space:{SPACE_GUID}"),
                format!("app:{APP_GUID}"),
            ],
        }),
        metric_tags: metric_tags(),
        log_rate_limit: Some(LogRateLimit {
            bytes_per_second: -1,
        }),
        ..DesiredLrp::default()
    }
}

/// An environment variable.
pub fn var(name: &str, value: &str) -> EnvironmentVariable {
    EnvironmentVariable {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// The buildpack app's action env (port vars, env group, app env, CC's).
fn buildpack_env() -> Vec<EnvironmentVariable> {
    vec![
        var("PORT", "8080"),
        var("VCAP_APP_PORT", "8080"),
        var("VCAP_APP_HOST", "0.0.0.0"),
        var("KEY", "running_value"),
        var("VCAP_APPLICATION", &vcap_application()),
        var("MEMORY_LIMIT", "128m"),
        var("VCAP_SERVICES", &vcap_services()),
    ]
}

fn vcap_application() -> String {
    format!(
        r#"{{"application_id":"{APP_GUID}","application_name":"potato","space_id":"{SPACE_GUID}","space_name":"MySpace","organization_id":"{ORG_GUID}","organization_name":"MyOrg","process_type":"web"}}"#
    )
}

fn vcap_services() -> String {
    format!(
        r#"{{"elephantsql":[{{"name":"db","credentials":{{"uri":"postgres://app:{SERVICE_PASSWORD}@db.example.com/app"}}}}]}}"#
    )
}

/// An action of one kind.
fn run(run: RunAction) -> Action {
    Action {
        run_action: Some(run),
        ..Action::default()
    }
}

fn serial(actions: Vec<Action>) -> Action {
    Action {
        serial_action: Some(SerialAction {
            actions,
            log_source: String::new(),
        }),
        ..Action::default()
    }
}

/// `Codependent[actions]`, as CC wraps the app's runs.
pub fn codependent(actions: Vec<Action>) -> Action {
    Action {
        codependent_action: Some(CodependentAction {
            actions,
            log_source: String::new(),
        }),
        ..Action::default()
    }
}

fn nofile() -> Option<ResourceLimits> {
    Some(ResourceLimits {
        optional_nofile: Some(OptionalNofile::Nofile(32)),
        optional_nproc: None,
    })
}

/// CC's app run: the launcher with `[app, start command, metadata]`.
pub fn launcher(
    start_command: &str,
    metadata: &str,
    env: &[EnvironmentVariable],
    user: &str,
) -> Action {
    run(RunAction {
        path: "/tmp/lifecycle/launcher".to_owned(),
        args: vec![
            "app".to_owned(),
            start_command.to_owned(),
            metadata.to_owned(),
        ],
        env: env.to_vec(),
        resource_limits: nofile(),
        user: user.to_owned(),
        log_source: "APP/PROC/WEB".to_owned(),
        ..RunAction::default()
    })
}

/// CC's ssh daemon run beside the app.
pub fn sshd(env: &[EnvironmentVariable], user: &str) -> Action {
    run(RunAction {
        path: "/tmp/lifecycle/diego-sshd".to_owned(),
        args: [
            "-address=0.0.0.0:2222",
            "-hostKey=-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAhostkey\n-----END RSA PRIVATE KEY-----\n",
            "-authorizedKey=ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQauthorized",
            "-inheritDaemonEnv",
            "-logLevel=fatal",
        ]
        .map(str::to_owned)
        .to_vec(),
        env: env.to_vec(),
        resource_limits: nofile(),
        user: user.to_owned(),
        log_source: "CELL/SSHD".to_owned(),
        ..RunAction::default()
    })
}

fn droplet_download() -> Action {
    Action {
        download_action: Some(DownloadAction {
            artifact: "droplet".to_owned(),
            from: DROPLET_URL.to_owned(),
            to: ".".to_owned(),
            cache_key: format!("droplets-{PROCESS_GUID}"),
            user: "vcap".to_owned(),
            checksum_algorithm: "sha256".to_owned(),
            checksum_value: DROPLET_SHA256.to_owned(),
            ..DownloadAction::default()
        }),
        ..Action::default()
    }
}

fn lifecycle_url(bundle: &str) -> String {
    format!("http://file-server.service.cf.internal:8080/v1/static/{bundle}/{bundle}.tgz")
}

fn lifecycle_bundle(bundle: &str, cache_key: &str) -> CachedDependency {
    CachedDependency {
        from: lifecycle_url(bundle),
        to: "/tmp/lifecycle".to_owned(),
        cache_key: cache_key.to_owned(),
        ..CachedDependency::default()
    }
}

/// CC's port monitor: `Timeout(600 s, Parallel[healthcheck -port=<port>])`.
pub fn port_monitor(port: u32, user: &str) -> Action {
    let check = run(RunAction {
        path: "/tmp/lifecycle/healthcheck".to_owned(),
        args: vec![format!("-port={port}")],
        resource_limits: nofile(),
        user: user.to_owned(),
        log_source: "HEALTH".to_owned(),
        suppress_log_output: true,
        ..RunAction::default()
    });
    Action {
        timeout_action: Some(Box::new(TimeoutAction {
            action: Some(Box::new(Action {
                parallel_action: Some(ParallelAction {
                    actions: vec![check],
                    log_source: String::new(),
                }),
                ..Action::default()
            })),
            timeout_ms: 600_000,
            ..TimeoutAction::default()
        })),
        ..Action::default()
    }
}

/// CC's check definition of a port health check.
pub fn tcp_check(port: u32) -> CheckDefinition {
    CheckDefinition {
        checks: vec![Check {
            tcp_check: Some(TcpCheck {
                port,
                connect_timeout_ms: 0,
                interval_ms: 0,
            }),
            http_check: None,
        }],
        ..CheckDefinition::default()
    }
}

/// The `cf-router` value of one route to 8080.
pub const CF_ROUTER_JSON: &str = r#"[{"hostnames":["potato.example.com"],"port":8080,"route_service_url":null,"isolation_segment":"placement-tag","protocol":"http1"}]"#;
/// The `diego-ssh` value.
pub const DIEGO_SSH_JSON: &str = r#"{"container_port":2222,"private_key":"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAroute\n-----END RSA PRIVATE KEY-----\n","host_fingerprint":"a1:b2:c3:d4:e5:f6:a7:b8:c9:d0:e1:f2:a3:b4:c5:d6:e7:f8:a9:b0","host_256_fingerprint":"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="}"#;

/// CC's routes with ssh: cf-router, tcp-router, internal-router, diego-ssh.
pub fn routes() -> ProtoRoutes {
    let mut routes = routes_without_ssh();
    routes
        .routes
        .insert("diego-ssh".to_owned(), DIEGO_SSH_JSON.as_bytes().to_vec());
    routes
}

fn routes_without_ssh() -> ProtoRoutes {
    ProtoRoutes {
        routes: BTreeMap::from([
            ("cf-router".to_owned(), CF_ROUTER_JSON.as_bytes().to_vec()),
            (
                "tcp-router".to_owned(),
                br#"[{"router_group_guid":"im-a-guid","external_port":1234,"container_port":4321}]"#.to_vec(),
            ),
            (
                "internal-router".to_owned(),
                br#"[{"hostname":"app-guid.apps.internal"}]"#.to_vec(),
            ),
        ]),
    }
}

fn egress_rules() -> Vec<SecurityGroupRule> {
    vec![
        SecurityGroupRule {
            protocol: "udp".to_owned(),
            destinations: vec!["0.0.0.0/0".to_owned()],
            ports: vec![53],
            annotations: vec!["security_group_id:guid1".to_owned()],
            ..SecurityGroupRule::default()
        },
        SecurityGroupRule {
            protocol: "tcp".to_owned(),
            destinations: vec!["0.0.0.0/0".to_owned()],
            ports: vec![80],
            log: true,
            annotations: vec!["security_group_id:guid2".to_owned()],
            ..SecurityGroupRule::default()
        },
    ]
}

/// CC's eleven metric tags of the `web` process.
fn metric_tags() -> BTreeMap<String, MetricTagValue> {
    let fixed = |value: &str| MetricTagValue {
        r#static: value.to_owned(),
        dynamic: 0,
    };
    let dynamic = |value: DynamicValue| MetricTagValue {
        r#static: String::new(),
        dynamic: value as i32,
    };
    [
        ("source_id", fixed(APP_GUID)),
        ("process_id", fixed(APP_GUID)),
        ("process_type", fixed("web")),
        ("process_instance_id", dynamic(DynamicValue::InstanceGuid)),
        ("instance_id", dynamic(DynamicValue::Index)),
        ("organization_id", fixed(ORG_GUID)),
        ("space_id", fixed(SPACE_GUID)),
        ("app_id", fixed(APP_GUID)),
        ("organization_name", fixed("MyOrg")),
        ("space_name", fixed("MySpace")),
        ("app_name", fixed("potato")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}
