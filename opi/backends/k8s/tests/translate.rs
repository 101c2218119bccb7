//! Snapshot tests of the generated Kubernetes objects (review changes with
//! `cargo insta review`), and the properties the snapshots cannot show.

use std::collections::BTreeMap;

use opi::model::{
    DesiredLrp, EnvironmentVariable, HealthCheck, HealthCheckType, LrpId, LrpLifecycle, Named,
    RegistryCredentials, Route, Routes, Task, VolumeMount,
};
use opi_k8s::Config;
use opi_k8s::translate::spec::{self, Secrets};
use opi_k8s::translate::{Placement, lrp, task};

fn config() -> Config {
    Config {
        registry: "registry.cube.svc:8080".into(),
        registry_pull_secret: Some("cube-registry".into()),
        ..Config::default()
    }
}

fn myapp() -> DesiredLrp {
    DesiredLrp {
        id: LrpId::new(
            "0b7e9ac8-0e4e-4b5a-8f3c-1d2e3f4a5b6c",
            "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
        ),
        process_type: "web".into(),
        app: Named {
            guid: "0b7e9ac8-0e4e-4b5a-8f3c-1d2e3f4a5b6c".into(),
            name: "myapp".into(),
        },
        space: Named {
            guid: "5ace0000-0000-4000-8000-000000000001".into(),
            name: "dev".into(),
        },
        org: Named {
            guid: "0c90000-0000-4000-8000-000000000002".into(),
            name: "acme".into(),
        },
        instances: 3,
        memory_mb: 256,
        disk_mb: 1024,
        cpu_weight: 25,
        ports: vec![8080],
        routes: Routes {
            cf_router: vec![Route {
                hostname: "myapp.example.com".into(),
                port: 8080,
            }],
            other: BTreeMap::new(),
        },
        environment: BTreeMap::from([
            (
                "DATABASE_URL".to_owned(),
                "postgres://u:hunter2@db/app".to_owned(),
            ),
            ("GREETING".to_owned(), "hello".to_owned()),
        ])
        .into(),
        health_check: HealthCheck {
            kind: HealthCheckType::Http,
            http_endpoint: "/healthz".into(),
            timeout_ms: 1500,
        },
        start_timeout_ms: 90_000,
        lifecycle: LrpLifecycle::Buildpack {
            droplet_guid: "d1".into(),
            droplet_hash: "abc123".into(),
            start_command: "bundle exec rackup -p $PORT".into(),
        },
        annotation: "1700000000.5".into(),
        user_defined_annotations: BTreeMap::from([(
            "example.com/team".to_owned(),
            "payments".to_owned(),
        )]),
        volume_mounts: Vec::new(),
        placement_tags: Vec::new(),
        egress_rules: Vec::new(),
    }
}

fn placement() -> Placement {
    Placement {
        namespace: "acme-dev".into(),
        name: "myapp".into(),
        superseded_versions: Vec::new(),
    }
}

fn docker_worker() -> DesiredLrp {
    let mut lrp = myapp();
    lrp.process_type = "worker".into();
    lrp.instances = 1;
    lrp.ports = Vec::new();
    lrp.health_check = HealthCheck {
        kind: HealthCheckType::Process,
        http_endpoint: String::new(),
        timeout_ms: 0,
    };
    lrp.lifecycle = LrpLifecycle::Docker {
        image: "ghcr.io/acme/worker:1.2".into(),
        command: vec!["/worker".into(), "--queue".into(), "jobs".into()],
        credentials: Some(RegistryCredentials {
            username: "robot".into(),
            password: "t0ken".into(),
        }),
    };
    lrp.volume_mounts = vec![VolumeMount {
        volume_id: "shared-data".into(),
        mount_dir: "/data".into(),
    }];
    lrp
}

#[test]
fn web_statefulset() {
    insta::assert_json_snapshot!(lrp::statefulset(&myapp(), &placement(), &config()));
}

#[test]
fn web_env_secret_and_pdb() {
    insta::assert_json_snapshot!(lrp::env_secret(&myapp(), &placement()));
    insta::assert_json_snapshot!(lrp::pdb(&myapp(), &placement()));
}

#[test]
fn docker_worker_with_credentials() {
    let placement = Placement {
        name: "myapp-worker".into(),
        superseded_versions: vec!["v0".into()],
        ..placement()
    };
    let worker = docker_worker();
    insta::assert_json_snapshot!(lrp::statefulset(&worker, &placement, &config()));
    insta::assert_json_snapshot!(lrp::registry_secret(&worker, &placement));
    assert_eq!(
        lrp::pdb(&worker, &placement),
        None,
        "no PDB for one instance"
    );
}

#[test]
fn space_namespace() {
    let app = myapp();
    insta::assert_json_snapshot!(opi_k8s::translate::namespace::namespace(
        "acme-dev", &app.space, &app.org
    ));
}

#[test]
fn task_job() {
    let task = Task {
        guid: "task-guid-1".into(),
        name: "migrate".into(),
        app: myapp().app,
        space: myapp().space,
        org: myapp().org,
        completion_callback: "http://cc.internal/internal/v4/tasks/task-guid-1/completed".into(),
        environment: vec![EnvironmentVariable {
            name: "SECRET".into(),
            value: "s3cret".into(),
        }],
        lifecycle: LrpLifecycle::Buildpack {
            droplet_guid: "d1".into(),
            droplet_hash: "abc123".into(),
            start_command: "rake db:migrate".into(),
        },
        memory_mb: 512,
        disk_mb: 0,
        cpu_weight: 0,
        steps: Vec::new(),
    };
    insta::assert_json_snapshot!(task::job(&task, "acme-dev", &config()));
}

/// No value of the app's environment appears in the StatefulSet.
#[test]
fn environment_values_stay_out_of_the_pod_spec() {
    for lrp in [myapp(), docker_worker()] {
        let json = serde_json::to_string(&lrp::statefulset(&lrp, &placement(), &config()))
            .unwrap_or_default();
        for value in lrp.environment.values() {
            assert!(!json.contains(value.as_str()), "{value} leaked into {json}");
        }
        assert!(!json.contains("t0ken"), "registry password leaked");
    }
}

/// What `get` reads back is what was desired, and re-applying it yields the
/// identical StatefulSet (so updates never roll pods).
#[test]
fn desired_lrps_round_trip_through_the_cluster_objects() {
    for lrp in [myapp(), docker_worker()] {
        let sts = lrp::statefulset(&lrp, &placement(), &config());
        let credentials = match &lrp.lifecycle {
            LrpLifecycle::Docker { credentials, .. } => credentials.clone(),
            LrpLifecycle::Buildpack { .. } => None,
        };
        let secrets = Secrets {
            environment: lrp.environment.clone().into_inner(),
            credentials,
        };
        let back = spec::desired_lrp(&sts, secrets).expect("readable");
        assert_eq!(back, lrp);
        assert_eq!(lrp::statefulset(&back, &placement(), &config()), sts);
    }
}

/// An update's fields live outside the pod template.
#[test]
fn updates_do_not_touch_the_pod_template() {
    let before = lrp::statefulset(&myapp(), &placement(), &config());
    let mut updated = myapp();
    updated.instances = 7;
    updated.annotation = "1800000000.0".into();
    updated.routes.cf_router.push(Route {
        hostname: "www.example.com".into(),
        port: 8080,
    });
    let after = lrp::statefulset(&updated, &placement(), &config());
    let template = |s: &k8s_openapi::api::apps::v1::StatefulSet| {
        s.spec.as_ref().map(|spec| spec.template.clone())
    };
    assert_eq!(template(&before), template(&after));
    assert_ne!(before.metadata.annotations, after.metadata.annotations);
}

/// A changed environment or a new version does change the template.
#[test]
fn new_environment_or_version_rolls_the_pods() {
    let template = |lrp: &DesiredLrp| {
        lrp::statefulset(lrp, &placement(), &config())
            .spec
            .map(|s| s.template)
    };
    let mut env = myapp();
    env.environment.insert("GREETING".into(), "bonjour".into());
    assert_ne!(template(&env), template(&myapp()));
    let mut version = myapp();
    version.id.version = "v2".into();
    assert_ne!(template(&version), template(&myapp()));
}
