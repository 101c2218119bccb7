#![allow(clippy::unwrap_used, deprecated)]

use std::collections::BTreeMap;

use base64::Engine;
use bbs_models::desired_lrp::UpdateStrategy;
use bbs_models::desired_lrp_update::{
    OptionalAnnotation, OptionalImageUsername, OptionalInstances,
};
use bbs_models::{
    Check, DesiredLrp as BbsLrp, DesiredLrpUpdate, HttpCheck, LogRateLimit, ProtoRoutes,
    SharedDevice, Sidecar, VolumeMount,
};
use opi::model::{HealthCheckType, LrpLifecycle, Route};
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::translate::fixtures::{self, *};

fn desire(lrp: &BbsLrp) -> Desired {
    desired(lrp, &fixtures::settings()).unwrap()
}

fn refused(lrp: &BbsLrp) -> Refusal {
    desired(lrp, &fixtures::settings()).unwrap_err()
}

fn stored_bytes(lrp: &DesiredLrp) -> Vec<u8> {
    let text = &lrp.user_defined_annotations[STORED_LRP_ANNOTATION];
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn launcher_run(lrp: &mut BbsLrp) -> &mut bbs_models::RunAction {
    let codependent = lrp
        .action
        .as_mut()
        .unwrap()
        .codependent_action
        .as_mut()
        .unwrap();
    codependent.actions[0].run_action.as_mut().unwrap()
}

fn route(bytes: &[u8]) -> ProtoRoutes {
    let mut routes = fixtures::routes();
    routes.routes.insert(CF_ROUTER.to_owned(), bytes.to_vec());
    routes
}

// ---- desire ---------------------------------------------------------------

#[test]
fn a_buildpack_lrp_runs_its_droplet_with_cc_s_fields() {
    let Desired { lrp, droplet } = desire(&buildpack_lrp());
    assert_eq!(lrp.id.process_guid(), PROCESS_GUID);
    assert_eq!(
        (lrp.id.guid.as_str(), lrp.id.version.as_str()),
        (APP_GUID, PROCESS_VERSION)
    );
    assert_eq!(lrp.process_type, "web");
    assert_eq!(
        (lrp.app.guid.as_str(), lrp.app.name.as_str()),
        (APP_GUID, "potato")
    );
    assert_eq!(
        (lrp.space.guid.as_str(), lrp.space.name.as_str()),
        (SPACE_GUID, "MySpace")
    );
    assert_eq!(
        (lrp.org.guid.as_str(), lrp.org.name.as_str()),
        (ORG_GUID, "MyOrg")
    );
    assert_eq!(
        (lrp.instances, lrp.memory_mb, lrp.disk_mb, lrp.cpu_weight),
        (21, 128, 256, 1)
    );
    assert_eq!(
        lrp.ports,
        [8080],
        "the ignored sshd's 2222 is not an app port"
    );
    assert_eq!(lrp.start_timeout_ms, 12_000);
    assert_eq!(lrp.annotation, "1718123456.789012");
    assert_eq!(lrp.placement_tags, ["placement-tag"]);
    assert_eq!(
        lrp.lifecycle,
        LrpLifecycle::Buildpack {
            droplet_guid: APP_GUID.to_owned(),
            droplet_hash: DROPLET_SHA256.to_owned(),
            start_command: "bundle exec rackup config.ru -p $PORT".to_owned(),
        }
    );
    assert_eq!(
        droplet,
        Some(Droplet {
            guid: APP_GUID.to_owned(),
            hash: DROPLET_SHA256.to_owned(),
            url: DROPLET_URL.to_owned(),
            checksum_algorithm: "sha256".to_owned(),
            stack: STACK.to_owned(),
            base_image: "registry.example/cube/stack-cflinuxfs4:latest".to_owned(),
        })
    );
}

#[test]
fn the_environment_is_the_container_s_and_the_app_run_s() {
    let lrp = desire(&buildpack_lrp()).lrp;
    let names: Vec<&str> = lrp.environment.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "KEY",
            "LANG",
            "MEMORY_LIMIT",
            "PORT",
            "VCAP_APPLICATION",
            "VCAP_APP_HOST",
            "VCAP_APP_PORT",
            "VCAP_SERVICES"
        ]
    );
    assert_eq!(lrp.environment["LANG"], "en_US.UTF-8");
    assert!(lrp.environment["VCAP_SERVICES"].contains(SERVICE_PASSWORD));
}

#[test]
fn routes_health_and_egress_rules_are_carried() {
    let lrp = desire(&buildpack_lrp()).lrp;
    assert_eq!(
        lrp.routes.cf_router,
        [Route {
            hostname: "potato.example.com".into(),
            port: 8080
        }]
    );
    let others: Vec<&str> = lrp.routes.other.keys().map(String::as_str).collect();
    assert_eq!(others, ["diego-ssh", "internal-router", "tcp-router"]);
    assert_eq!(lrp.routes.other["tcp-router"][0]["external_port"], 1234);
    assert_eq!(lrp.health_check.kind, HealthCheckType::Port);
    assert_eq!(lrp.health_check.timeout_ms, 0);
    assert_eq!(
        lrp.egress_rules[1],
        serde_json::json!({"protocol": "tcp", "destinations": ["0.0.0.0/0"], "ports": [80],
                           "log": true, "annotations": ["security_group_id:guid2"]})
    );
}

#[test]
fn a_droplet_as_an_image_layer_is_the_same_droplet() {
    let from_setup = desire(&buildpack_lrp());
    let from_layer = desire(&buildpack_lrp_with_image_layers());
    assert_eq!(from_layer.droplet, from_setup.droplet);
    assert_eq!(from_layer.lrp.lifecycle, from_setup.lrp.lifecycle);
}

#[test]
fn a_docker_lrp_runs_its_image_with_the_command_through_sh() {
    let Desired { lrp, droplet } = desire(&docker_lrp());
    assert_eq!(droplet, None);
    let LrpLifecycle::Docker {
        image,
        command,
        credentials,
    } = &lrp.lifecycle
    else {
        panic!("{:?}", lrp.lifecycle);
    };
    assert_eq!(image, "cloudfoundry/diego-docker-app:latest");
    assert_eq!(command, &["/bin/sh", "-c", "/myapp --serve"]);
    let credentials = credentials.as_ref().unwrap();
    assert_eq!(
        (credentials.username.as_str(), credentials.password.as_str()),
        ("dockeruser", DOCKER_PASSWORD)
    );
    assert_eq!(lrp.ports, [8080]);
}

#[test]
fn a_docker_lrp_without_a_start_command_runs_the_image_s_entrypoint() {
    let mut lrp = docker_lrp();
    launcher_run(&mut lrp).args[1] = String::new();
    let LrpLifecycle::Docker { command, .. } = desire(&lrp).lrp.lifecycle else {
        panic!("not docker");
    };
    assert!(command.is_empty());
}

#[test]
fn docker_root_filesystems_become_image_references() {
    let hex = "a".repeat(64);
    for (root_fs, image) in [
        ("docker:///library/nginx#1.27", "nginx:1.27".to_owned()),
        (
            "docker:///cloudfoundry/diego-docker-app#latest",
            "cloudfoundry/diego-docker-app:latest".to_owned(),
        ),
        (
            "docker://10.244.2.6:8080/user/image#tag",
            "10.244.2.6:8080/user/image:tag".to_owned(),
        ),
        (
            "docker://docker.io/library/nginx#1",
            "docker.io/library/nginx:1".to_owned(),
        ),
        ("docker:///user/image", "user/image".to_owned()),
        (
            &format!("docker:///user/image@sha256#{hex}"),
            format!("user/image@sha256:{hex}"),
        ),
        (
            &format!("docker://r.example/user/image#sha256:{hex}"),
            format!("r.example/user/image@sha256:{hex}"),
        ),
    ] {
        assert_eq!(lifecycle::image(root_fs).unwrap(), image, "{root_fs}");
    }
    for bad in [
        "docker://",
        "docker:///",
        "docker:///user/image#",
        "docker:///user/image@sha256",
    ] {
        assert_eq!(lifecycle::image(bad).unwrap_err().field, "root_fs", "{bad}");
    }
}

#[test]
fn http_checks_and_monitors_become_an_http_health_check() {
    let mut lrp = buildpack_lrp();
    lrp.check_definition = Some(bbs_models::CheckDefinition {
        checks: vec![Check {
            tcp_check: None,
            http_check: Some(HttpCheck {
                port: 8080,
                request_timeout_ms: 3000,
                path: "/health".into(),
                interval_ms: 0,
            }),
        }],
        ..Default::default()
    });
    let mut monitor = port_monitor(8080, "vcap");
    let timeout = monitor.timeout_action.as_mut().unwrap();
    let parallel = timeout
        .action
        .as_mut()
        .unwrap()
        .parallel_action
        .as_mut()
        .unwrap();
    parallel.actions[0].run_action.as_mut().unwrap().args = vec![
        "-port=8080".into(),
        "-uri=/health".into(),
        "-timeout=3s".into(),
    ];
    lrp.monitor = Some(monitor.clone());
    let health = desire(&lrp).lrp.health_check;
    assert_eq!(
        (
            health.kind,
            health.http_endpoint.as_str(),
            health.timeout_ms
        ),
        (HealthCheckType::Http, "/health", 3000)
    );
    // The monitor alone says the same.
    lrp.check_definition = None;
    assert_eq!(desire(&lrp).lrp.health_check, health);
}

#[test]
fn no_checks_is_a_process_health_check() {
    let mut lrp = buildpack_lrp();
    lrp.check_definition = None;
    lrp.monitor = None;
    assert_eq!(desire(&lrp).lrp.health_check.kind, HealthCheckType::Process);
}

#[test]
fn shared_read_write_volume_mounts_are_carried() {
    let mut lrp = buildpack_lrp();
    lrp.volume_mounts = vec![VolumeMount {
        driver: "nfsv3driver".into(),
        container_dir: "/data".into(),
        mode: "rw".into(),
        shared: Some(SharedDevice {
            volume_id: "vol-1".into(),
            mount_config: r#"{"source":"nfs://x"}"#.into(),
        }),
        dedicated: None,
    }];
    let desired = desire(&lrp);
    assert_eq!(
        desired.lrp.volume_mounts,
        [opi::model::VolumeMount {
            volume_id: "vol-1".into(),
            mount_dir: "/data".into()
        }]
    );
    assert_eq!(bbs_desired(&desired.lrp).unwrap(), lrp);
    let info = scheduling_info(&desired.lrp).unwrap();
    assert_eq!(info.volume_placement.unwrap().driver_names, ["nfsv3driver"]);
}

#[test]
fn egress_rules_keep_port_ranges_and_icmp() {
    let mut lrp = buildpack_lrp();
    lrp.egress_rules = vec![
        bbs_models::SecurityGroupRule {
            protocol: "tcp".into(),
            destinations: vec!["10.0.0.0-10.0.0.255".into()],
            port_range: Some(bbs_models::PortRange {
                start: 8000,
                end: 8999,
            }),
            ..Default::default()
        },
        bbs_models::SecurityGroupRule {
            protocol: "icmp".into(),
            destinations: vec!["0.0.0.0/0".into()],
            icmp_info: Some(bbs_models::IcmpInfo { r#type: 8, code: 0 }),
            ..Default::default()
        },
    ];
    let rules = desire(&lrp).lrp.egress_rules;
    assert_eq!(
        rules,
        [
            serde_json::json!({"protocol": "tcp", "destinations": ["10.0.0.0-10.0.0.255"],
                               "port_range": {"start": 8000, "end": 8999}}),
            serde_json::json!({"protocol": "icmp", "destinations": ["0.0.0.0/0"],
                               "icmp_info": {"type": 8, "code": 0}}),
        ]
    );
}

#[test]
fn an_lrp_without_cf_router_routes_reads_without_them() {
    let mut original = docker_lrp();
    original.routes.as_mut().unwrap().routes.remove(CF_ROUTER);
    let lrp = desire(&original).lrp;
    assert!(lrp.routes.cf_router.is_empty());
    assert_eq!(bbs_desired(&lrp).unwrap(), original);
}

// ---- reads ------------------------------------------------------------------

#[test]
fn reads_answer_the_lrp_as_cc_desired_it_byte_for_byte() {
    for original in [
        buildpack_lrp(),
        buildpack_lrp_with_image_layers(),
        docker_lrp(),
    ] {
        let read = bbs_desired(&desire(&original).lrp).unwrap();
        assert_eq!(read, original);
        assert_eq!(read.encode_to_vec(), original.encode_to_vec());
    }
}

#[test]
fn secrets_never_reach_the_stored_copy() {
    for original in [buildpack_lrp(), docker_lrp()] {
        let lrp = desire(&original).lrp;
        let bytes = stored_bytes(&lrp);
        for secret in [
            SERVICE_PASSWORD,
            DOCKER_PASSWORD,
            "running_value",
            "en_US.UTF-8",
        ] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret}"
            );
        }
        let stored = BbsLrp::decode(bytes.as_slice()).unwrap();
        let mut values = Vec::new();
        stored
            .environment_variables
            .iter()
            .for_each(|v| values.push(v.value.clone()));
        let mut runs = Vec::new();
        action::all_runs("action", stored.action.as_ref().unwrap(), &mut runs);
        runs.iter()
            .flat_map(|(_, run)| &run.env)
            .for_each(|v| values.push(v.value.clone()));
        assert!(
            !values.is_empty() && values.iter().all(String::is_empty),
            "{values:?}"
        );
        assert_eq!(
            (
                stored.image_username.as_str(),
                stored.image_password.as_str()
            ),
            ("", "")
        );
    }
}

#[test]
fn reads_follow_updates_of_instances_annotation_and_routes() {
    let mut lrp = desire(&buildpack_lrp()).lrp;
    let new_cf_router = br#"[{"hostnames":["new.example.com"],"port":8080,"route_service_url":null,"isolation_segment":"placement-tag","protocol":"http1"}]"#;
    let mut routes = route(new_cf_router);
    routes.routes.remove("tcp-router");
    let change = update(&DesiredLrpUpdate {
        optional_instances: Some(OptionalInstances::Instances(0)),
        optional_annotation: Some(OptionalAnnotation::Annotation("1718999999.5".into())),
        routes: Some(routes.clone()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(change.instances, Some(0), "an explicit 0 is an update");
    lrp.apply(&change);
    let read = bbs_desired(&lrp).unwrap();
    assert_eq!(
        (read.instances, read.annotation.as_str()),
        (0, "1718999999.5")
    );
    assert_eq!(
        read.routes.as_ref().unwrap(),
        &routes,
        "CC's bytes, diego-ssh verbatim"
    );
    let expected = BbsLrp {
        instances: 0,
        annotation: "1718999999.5".into(),
        routes: Some(routes),
        ..buildpack_lrp()
    };
    assert_eq!(read, expected);
}

#[test]
fn changed_cf_router_routes_are_written_in_cc_s_format() {
    let mut lrp = desire(&buildpack_lrp()).lrp;
    lrp.routes.cf_router = vec![
        Route {
            hostname: "a.example.com".into(),
            port: 8080,
        },
        Route {
            hostname: "b.example.com".into(),
            port: 8080,
        },
    ];
    let read = bbs_desired(&lrp).unwrap();
    let routes = &read.routes.as_ref().unwrap().routes;
    assert_eq!(
        std::str::from_utf8(&routes[CF_ROUTER]).unwrap(),
        r#"[{"hostnames":["a.example.com"],"port":8080,"route_service_url":null,"isolation_segment":"placement-tag","protocol":"http1"},{"hostnames":["b.example.com"],"port":8080,"route_service_url":null,"isolation_segment":"placement-tag","protocol":"http1"}]"#
    );
    assert_eq!(routes["diego-ssh"], DIEGO_SSH_JSON.as_bytes());
}

#[test]
fn scheduling_infos_carry_what_the_bbs_fills_and_cc_reads() {
    let lrp = desire(&buildpack_lrp()).lrp;
    let info = scheduling_info(&lrp).unwrap();
    let key = info.desired_lrp_key.unwrap();
    assert_eq!(
        (
            key.process_guid.as_str(),
            key.domain.as_str(),
            key.log_guid.as_str()
        ),
        (PROCESS_GUID, "cf-apps", APP_GUID)
    );
    assert_eq!(
        (info.annotation.as_str(), info.instances),
        ("1718123456.789012", 21)
    );
    let resource = info.desired_lrp_resource.unwrap();
    assert_eq!(
        (
            resource.memory_mb,
            resource.disk_mb,
            resource.root_fs.as_str(),
            resource.max_pids
        ),
        (128, 256, "preloaded:cflinuxfs4", 2048)
    );
    let routes = info.routes.unwrap();
    assert_eq!(
        routes.routes["diego-ssh"],
        DIEGO_SSH_JSON.as_bytes(),
        "CC copies it into updates"
    );
    assert_eq!(routes, fixtures::routes());
    assert_eq!(info.placement_tags, ["placement-tag"]);
    assert!(info.volume_placement.unwrap().driver_names.is_empty());
}

#[test]
fn an_lrp_desired_through_opi_reads_as_what_opi_knows() {
    let mut lrp = desire(&docker_lrp()).lrp;
    lrp.user_defined_annotations.clear();
    let read = bbs_desired(&lrp).unwrap();
    assert_eq!(
        (
            read.process_guid.as_str(),
            read.domain.as_str(),
            read.instances
        ),
        (PROCESS_GUID, "cf-apps", 2)
    );
    assert_eq!(read.metric_tags["process_id"].r#static, APP_GUID);
    let env: BTreeMap<_, _> = read
        .environment_variables
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    assert_eq!(env, lrp.environment.clone().into_inner());
    assert_eq!(read.routes.unwrap().routes[CF_ROUTER], br#"[{"hostnames":["potato.example.com"],"port":8080,"route_service_url":null,"isolation_segment":null,"protocol":"http1"}]"#);
    assert_eq!(
        scheduling_info(&lrp)
            .unwrap()
            .desired_lrp_key
            .unwrap()
            .domain,
        "cf-apps"
    );
}

#[test]
fn a_corrupt_stored_copy_is_refused_by_name() {
    let mut lrp = desire(&docker_lrp()).lrp;
    lrp.user_defined_annotations
        .insert(STORED_LRP_ANNOTATION.into(), "not base64!".into());
    let refusal = bbs_desired(&lrp).unwrap_err();
    assert_eq!(
        refusal.field,
        format!("user_defined_annotations[{STORED_LRP_ANNOTATION}]")
    );
    lrp.user_defined_annotations
        .insert(STORED_LRP_ANNOTATION.into(), "AAECAw==".into());
    assert!(scheduling_info(&lrp).is_err());
}

#[test]
fn a_container_variable_the_app_overrides_reads_back_as_the_app_sees_it() {
    let mut lrp = buildpack_lrp();
    for run in [0, 1] {
        let codependent = lrp
            .action
            .as_mut()
            .unwrap()
            .codependent_action
            .as_mut()
            .unwrap();
        codependent.actions[run]
            .run_action
            .as_mut()
            .unwrap()
            .env
            .push(var("LANG", "C"));
    }
    let desired = desire(&lrp);
    assert_eq!(desired.lrp.environment["LANG"], "C");
    let read = bbs_desired(&desired.lrp).unwrap();
    assert_eq!(read.environment_variables, [var("LANG", "C")]);
}

// ---- refusals -----------------------------------------------------------------

/// A change to a CC LRP, and the field its refusal must name.
type Case = (&'static str, Box<dyn Fn(&mut BbsLrp)>);

/// Each change to the buildpack LRP Cube refuses.
fn refusals() -> Vec<Case> {
    vec![
        (
            "process_guid",
            Box::new(|l| l.process_guid = "no.dots-allowed".into()),
        ),
        ("domain", Box::new(|l| l.domain.clear())),
        (
            "annotation",
            Box::new(|l| l.annotation = "9".repeat(10 * 1024 + 1)),
        ),
        ("privileged", Box::new(|l| l.privileged = true)),
        (
            "sidecars",
            Box::new(|l| l.sidecars = vec![Sidecar::default()]),
        ),
        (
            "volume_mounted_files",
            Box::new(|l| l.volume_mounted_files = vec![Default::default()]),
        ),
        (
            "update_strategy",
            Box::new(|l| l.update_strategy = UpdateStrategy::Recreate as i32),
        ),
        (
            "log_rate_limit.bytes_per_second",
            Box::new(|l| {
                l.log_rate_limit = Some(LogRateLimit {
                    bytes_per_second: 1024,
                })
            }),
        ),
        ("action", Box::new(|l| l.action = None)),
        (
            "action",
            Box::new(|l| l.action = Some(port_monitor(8080, "vcap"))),
        ),
        (
            "action.codependent_action.actions[1].run_action",
            Box::new(|l| {
                let sidecar = launcher("./sidecar", "", &[], "vcap");
                l.action
                    .as_mut()
                    .unwrap()
                    .codependent_action
                    .as_mut()
                    .unwrap()
                    .actions
                    .insert(1, sidecar);
            }),
        ),
        (
            "action.codependent_action.actions[2].run_action.path",
            Box::new(|l| {
                let mut other = launcher("x", "", &[], "vcap");
                other.run_action.as_mut().unwrap().path = "/bin/other".into();
                l.action
                    .as_mut()
                    .unwrap()
                    .codependent_action
                    .as_mut()
                    .unwrap()
                    .actions
                    .push(other);
            }),
        ),
        (
            "action.codependent_action.actions[0].run_action.args",
            Box::new(|l| {
                launcher_run(l).args.pop();
            }),
        ),
        (
            "action.codependent_action.actions[0].run_action.args[0]",
            Box::new(|l| launcher_run(l).args[0] = "/srv".into()),
        ),
        (
            "action.codependent_action.actions[0].run_action.dir",
            Box::new(|l| launcher_run(l).dir = "/tmp".into()),
        ),
        (
            "action.codependent_action.actions[1].run_action.env[3]",
            Box::new(|l| {
                let codependent = l
                    .action
                    .as_mut()
                    .unwrap()
                    .codependent_action
                    .as_mut()
                    .unwrap();
                codependent.actions[1].run_action.as_mut().unwrap().env[3].value = "other".into();
            }),
        ),
        (
            "environment_variables[0].name",
            Box::new(|l| l.environment_variables[0].name.clear()),
        ),
        (
            "environment_variables[1]",
            Box::new(|l| l.environment_variables.push(var("LANG", "C"))),
        ),
        (
            "action.codependent_action.actions[0].run_action.env[0].name",
            Box::new(|l| launcher_run(l).env[0].name = "A=B".into()),
        ),
        (
            "root_fs",
            Box::new(|l| l.root_fs = "preloaded:cflinuxfs3".into()),
        ),
        (
            "root_fs",
            Box::new(|l| l.root_fs = "http://example.com/rootfs".into()),
        ),
        ("setup", Box::new(|l| l.setup = None)),
        (
            "setup",
            Box::new(|l| l.image_layers = buildpack_lrp_with_image_layers().image_layers),
        ),
        (
            "setup.serial_action.actions[0].download_action.checksum_algorithm",
            Box::new(|l| {
                setup_download(l).checksum_algorithm = "md5".into();
            }),
        ),
        (
            "setup.serial_action.actions[0].download_action.checksum_value",
            Box::new(|l| {
                setup_download(l).checksum_value = "ABC".into();
            }),
        ),
        (
            "setup.serial_action.actions[0].download_action.from",
            Box::new(|l| {
                setup_download(l).from = "https://cc/internal/v4/blobs/x".into();
            }),
        ),
        (
            "cached_dependencies[0]",
            Box::new(|l| l.cached_dependencies[0].cache_key = "cnb-cflinuxfs4-lifecycle".into()),
        ),
        (
            "cached_dependencies[0].to",
            Box::new(|l| l.cached_dependencies[0].to = "/opt".into()),
        ),
        (
            "image_username",
            Box::new(|l| l.image_username = "user".into()),
        ),
        (
            "routes.cf-router[0].route_service_url",
            Box::new(|l| {
                l.routes = Some(route(br#"[{"hostnames":["a.b"],"port":8080,"route_service_url":"https://rs.example.com"}]"#))
            }),
        ),
        (
            "routes.cf-router[0].protocol",
            Box::new(|l| {
                l.routes = Some(route(
                    br#"[{"hostnames":["a.b"],"port":8080,"protocol":"http2"}]"#,
                ))
            }),
        ),
        (
            "routes.cf-router[0].options",
            Box::new(|l| {
                l.routes = Some(route(br#"[{"hostnames":["a.b"],"port":8080,"options":{"loadbalancing":"least-connection"}}]"#))
            }),
        ),
        (
            "routes.cf-router[0]",
            Box::new(|l| {
                l.routes = Some(route(br#"[{"hostnames":["a.b"],"port":8080,"weight":3}]"#))
            }),
        ),
        (
            "routes.cf-router[0].port",
            Box::new(|l| l.routes = Some(route(br#"[{"hostnames":["a.b"],"port":70000}]"#))),
        ),
        (
            "routes.cf-router[0].hostnames[0]",
            Box::new(|l| l.routes = Some(route(br#"[{"hostnames":[" "],"port":8080}]"#))),
        ),
        (
            "routes.cf-router",
            Box::new(|l| l.routes = Some(route(br#"{"hostnames":[]}"#))),
        ),
        (
            "routes.tcp-router",
            Box::new(|l| {
                l.routes
                    .as_mut()
                    .unwrap()
                    .routes
                    .insert("tcp-router".into(), b"not json".to_vec());
            }),
        ),
        (
            "routes",
            Box::new(|l| {
                l.routes
                    .as_mut()
                    .unwrap()
                    .routes
                    .insert("big".into(), vec![b' '; 129 * 1024]);
            }),
        ),
        (
            "check_definition.readiness_checks",
            Box::new(|l| {
                l.check_definition.as_mut().unwrap().readiness_checks = tcp_check(8080).checks
            }),
        ),
        (
            "check_definition.checks[0].tcp_check.interval_ms",
            Box::new(|l| {
                l.check_definition.as_mut().unwrap().checks[0]
                    .tcp_check
                    .as_mut()
                    .unwrap()
                    .interval_ms = 5000;
            }),
        ),
        (
            "check_definition.checks[1]",
            Box::new(|l| {
                l.check_definition
                    .as_mut()
                    .unwrap()
                    .checks
                    .push(tcp_check(9090).checks.remove(0));
            }),
        ),
        (
            "check_definition.checks[0].tcp_check.port",
            Box::new(|l| {
                l.check_definition = Some(tcp_check(9090));
                l.monitor = Some(port_monitor(9090, "vcap"));
            }),
        ),
        (
            "check_definition.checks[0]",
            Box::new(|l| l.check_definition.as_mut().unwrap().checks[0] = Check::default()),
        ),
        (
            "monitor.timeout_action.action.parallel_action.actions[0].run_action",
            Box::new(|l| {
                l.check_definition = Some(bbs_models::CheckDefinition {
                    checks: vec![Check {
                        tcp_check: None,
                        http_check: Some(HttpCheck {
                            port: 8080,
                            path: "/h".into(),
                            ..Default::default()
                        }),
                    }],
                    ..Default::default()
                });
            }),
        ),
        (
            "monitor.timeout_action.action.parallel_action.actions[0].run_action.args[0]",
            Box::new(|l| {
                l.check_definition = None;
                l.monitor = Some(port_monitor(8080, "vcap"));
                let timeout = l.monitor.as_mut().unwrap().timeout_action.as_mut().unwrap();
                let parallel = timeout
                    .action
                    .as_mut()
                    .unwrap()
                    .parallel_action
                    .as_mut()
                    .unwrap();
                parallel.actions[0].run_action.as_mut().unwrap().args =
                    vec!["-liveness-interval=5s".into()];
            }),
        ),
        (
            "volume_mounts[0].mode",
            Box::new(|l| {
                l.volume_mounts = vec![VolumeMount {
                    mode: "r".into(),
                    container_dir: "/d".into(),
                    shared: Some(SharedDevice {
                        volume_id: "v".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]
            }),
        ),
        (
            "volume_mounts[0].dedicated",
            Box::new(|l| {
                l.volume_mounts = vec![VolumeMount {
                    mode: "rw".into(),
                    dedicated: Some(Default::default()),
                    ..Default::default()
                }]
            }),
        ),
        (
            "volume_mounts[0].container_dir",
            Box::new(|l| {
                l.volume_mounts = vec![VolumeMount {
                    mode: "rw".into(),
                    container_dir: "rel".into(),
                    shared: Some(SharedDevice {
                        volume_id: "v".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]
            }),
        ),
        ("ports[1]", Box::new(|l| l.ports = vec![8080, 8080])),
        ("ports[0]", Box::new(|l| l.ports = vec![0])),
        ("memory_mb", Box::new(|l| l.memory_mb = 0)),
        ("disk_mb", Box::new(|l| l.disk_mb = -1)),
        ("cpu_weight", Box::new(|l| l.cpu_weight = 150)),
        ("instances", Box::new(|l| l.instances = -1)),
        ("max_pids", Box::new(|l| l.max_pids = -1)),
    ]
}

fn setup_download(lrp: &mut BbsLrp) -> &mut bbs_models::DownloadAction {
    let serial = lrp.setup.as_mut().unwrap().serial_action.as_mut().unwrap();
    serial.actions[0].download_action.as_mut().unwrap()
}

#[test]
fn each_refusal_names_its_field() {
    for (field, change) in refusals() {
        let mut lrp = buildpack_lrp();
        change(&mut lrp);
        let refusal = refused(&lrp);
        assert_eq!(refusal.field, field, "{refusal}");
        assert!(!refusal.problem.is_empty());
    }
}

#[test]
fn docker_refusals_name_their_fields() {
    let cases: Vec<Case> = vec![
        ("image_username", Box::new(|l| l.image_username.clear())),
        (
            "root_fs",
            Box::new(|l| l.root_fs = "docker:///user/image#".into()),
        ),
        (
            "setup.serial_action.actions[0].download_action.from",
            Box::new(|l| l.setup = buildpack_lrp().setup),
        ),
    ];
    for (field, change) in cases {
        let mut lrp = docker_lrp();
        change(&mut lrp);
        assert_eq!(refused(&lrp).field, field);
    }
}

#[test]
fn cloud_native_buildpack_layers_are_refused() {
    let mut lrp = buildpack_lrp_with_image_layers();
    lrp.image_layers[0].name = "cnb-cflinuxfs4-lifecycle".into();
    assert_eq!(refused(&lrp).field, "image_layers[0]");
    let mut lrp = buildpack_lrp_with_image_layers();
    lrp.image_layers[1].digest_algorithm = 0;
    assert_eq!(refused(&lrp).field, "image_layers[1].digest_algorithm");
}

// ---- updates ------------------------------------------------------------------

#[test]
fn updates_carry_instances_annotation_and_routes_only_when_set() {
    assert_eq!(
        update(&DesiredLrpUpdate::default()).unwrap(),
        LrpUpdate::default()
    );
    let mut metric_tags = buildpack_lrp().metric_tags;
    metric_tags.insert(
        "app_name".into(),
        bbs_models::MetricTagValue {
            r#static: "renamed".into(),
            dynamic: 0,
        },
    );
    let change = update(&DesiredLrpUpdate {
        optional_instances: Some(OptionalInstances::Instances(3)),
        metric_tags,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        change,
        LrpUpdate {
            instances: Some(3),
            ..LrpUpdate::default()
        },
        "metric tags are not applied"
    );
}

#[test]
fn update_refusals_name_their_fields() {
    let cases = [
        (
            "instances",
            DesiredLrpUpdate {
                optional_instances: Some(OptionalInstances::Instances(-1)),
                ..Default::default()
            },
        ),
        (
            "instances",
            DesiredLrpUpdate {
                optional_instances: Some(OptionalInstances::Instances(i32::MAX)),
                ..Default::default()
            },
        ),
        (
            "annotation",
            DesiredLrpUpdate {
                optional_annotation: Some(OptionalAnnotation::Annotation("1".repeat(10_241))),
                ..Default::default()
            },
        ),
        (
            "image_username",
            DesiredLrpUpdate {
                optional_image_username: Some(OptionalImageUsername::ImageUsername("u".into())),
                ..Default::default()
            },
        ),
        (
            "routes.cf-router[0].route_service_url",
            DesiredLrpUpdate {
                routes: Some(route(
                    br#"[{"hostnames":["a"],"port":1,"route_service_url":"https://rs"}]"#,
                )),
                ..Default::default()
            },
        ),
    ];
    for (field, change) in cases {
        assert_eq!(update(&change).unwrap_err().field, field);
    }
}

// ---- properties -------------------------------------------------------------

fn env_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[A-Z_][A-Z0-9_]{0,12}", any::<String>(), 0..8)
}

/// The buildpack LRP with `env` as the app's (and sshd's) environment.
fn with_app_env(env: &BTreeMap<String, String>) -> BbsLrp {
    let vars: Vec<_> = env.iter().map(|(n, v)| var(n, v)).collect();
    let mut lrp = buildpack_lrp();
    lrp.environment_variables.clear();
    lrp.action = Some(codependent(vec![
        launcher("./start", "", &vars, "vcap"),
        sshd(&vars, "vcap"),
    ]));
    lrp
}

fn cf_router_json(routes: &[(String, u16)]) -> Vec<u8> {
    let entries: Vec<_> = routes
        .iter()
        .map(|(host, port)| serde_json::json!({"hostnames": [host], "port": port, "route_service_url": null}))
        .collect();
    serde_json::to_vec(&entries).unwrap()
}

proptest! {
    #[test]
    fn any_environment_round_trips_and_never_reaches_the_stored_copy(env in env_strategy()) {
        let original = with_app_env(&env);
        let lrp = desire(&original).lrp;
        prop_assert_eq!(&lrp.environment.clone().into_inner(), &env);
        prop_assert_eq!(bbs_desired(&lrp).unwrap(), original);
        let stored = BbsLrp::decode(stored_bytes(&lrp).as_slice()).unwrap();
        let mut runs = Vec::new();
        action::all_runs("action", stored.action.as_ref().unwrap(), &mut runs);
        prop_assert!(runs.iter().flat_map(|(_, run)| &run.env).all(|v| v.value.is_empty()));
    }

    #[test]
    fn any_cf_router_routes_survive_desire_update_and_read(
        first in prop::collection::vec(("[a-z]{1,10}\\.example\\.com", 1..=65535u16), 0..6),
        second in prop::collection::vec(("[a-z]{1,10}\\.example\\.com", 1..=65535u16), 0..6),
        annotation in "[0-9]{1,10}\\.[0-9]{1,6}",
    ) {
        let mut original = buildpack_lrp();
        original.routes = Some(route(&cf_router_json(&first)));
        let mut lrp = desire(&original).lrp;
        let expected: Vec<Route> = first.iter().map(|(h, p)| Route { hostname: h.clone(), port: i64::from(*p) }).collect();
        prop_assert_eq!(&lrp.routes.cf_router, &expected);
        prop_assert_eq!(bbs_desired(&lrp).unwrap(), original);
        let change = update(&DesiredLrpUpdate {
            routes: Some(route(&cf_router_json(&second))),
            optional_annotation: Some(OptionalAnnotation::Annotation(annotation.clone())),
            ..Default::default()
        }).unwrap();
        lrp.apply(&change);
        let read = bbs_desired(&lrp).unwrap();
        prop_assert_eq!(&read.annotation, &annotation);
        let reread = routes::opi_routes(read.routes.as_ref(), "routes").unwrap();
        let expected: Vec<Route> = second.iter().map(|(h, p)| Route { hostname: h.clone(), port: i64::from(*p) }).collect();
        prop_assert_eq!(reread.cf_router, expected);
        prop_assert_eq!(&read.routes.unwrap().routes["diego-ssh"], &DIEGO_SSH_JSON.as_bytes().to_vec());
    }

    #[test]
    fn any_bytes_as_a_desired_lrp_are_translated_or_refused_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(lrp) = BbsLrp::decode(bytes.as_slice()) {
            let _ = desired(&lrp, &fixtures::settings());
        }
    }
}
