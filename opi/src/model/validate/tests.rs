use super::*;
use crate::model::wire::{DesireLrpRequest, TaskRequest, UpdateLrpRequest};
use proptest::prelude::*;

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn buildpack_request() -> DesireLrpRequest {
    fixture("desire_buildpack.json")
}

fn path_of(req: &DesireLrpRequest) -> String {
    format!("{}-{}", req.guid, req.version)
}

fn desire_err(req: DesireLrpRequest) -> Invalid {
    let path = path_of(&req);
    desire(&path, req).unwrap_err()
}

#[test]
fn cc_buildpack_fixture_validates() {
    let req = buildpack_request();
    let lrp = desire(&path_of(&req), req).unwrap();
    assert_eq!(lrp.instances, 3);
    assert_eq!(lrp.app.name, "myapp");
    assert_eq!(lrp.space.name, "dev");
    assert_eq!(lrp.org.name, "acme");
    assert_eq!(lrp.ports, vec![8080]);
    assert_eq!(lrp.health_check.kind, HealthCheckType::Port);
    // CC sends `null` for an unset endpoint.
    assert_eq!(lrp.health_check.http_endpoint, "");
    assert_eq!(lrp.annotation, "1529425339.0");
    assert_eq!(lrp.routes.cf_router[0].hostname, "myapp.example.com");
    assert_eq!(
        lrp.image("registry.local:8087"),
        "registry.local:8087/cloudfoundry/d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a:8f2c5e7a9b1d3f4a6c8e0b2d4f6a8c0e2b4d6f8a"
    );
    assert_eq!(lrp.egress_rules.len(), 1);
}

#[test]
fn cc_docker_fixture_validates_with_credentials() {
    let req: DesireLrpRequest = fixture("desire_docker.json");
    let lrp = desire(&path_of(&req), req).unwrap();
    assert_eq!(lrp.process_type, "worker");
    assert_eq!(lrp.health_check.kind, HealthCheckType::Process);
    let LrpLifecycle::Docker {
        image,
        command,
        credentials,
    } = &lrp.lifecycle
    else {
        panic!("expected docker lifecycle")
    };
    assert_eq!(image, "registry.example.com/acme/worker:1.2");
    assert_eq!(command.len(), 3);
    let credentials = credentials.as_ref().unwrap();
    assert_eq!(credentials.username, "robot");
    assert!(!format!("{credentials:?}").contains("s3cret"));
}

#[test]
fn domain_to_wire_round_trips() {
    for name in ["desire_buildpack.json", "desire_docker.json"] {
        let req: DesireLrpRequest = fixture(name);
        let lrp = desire(&path_of(&req), req).unwrap();
        let wire = DesireLrpRequest::from(&lrp);
        let json = serde_json::to_string(&wire).unwrap();
        let back: DesireLrpRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(desire(&path_of(&back), back).unwrap(), lrp, "{name}");
    }
}

#[test]
fn fields_are_named_in_errors() {
    type Mutation = Box<dyn Fn(&mut DesireLrpRequest)>;
    let cases: Vec<(Mutation, &str, &str)> = vec![
        (Box::new(|r| r.guid.clear()), "guid", "must not be empty"),
        (
            Box::new(|r| r.version = "../etc".into()),
            "version",
            "'/' is not allowed",
        ),
        (
            Box::new(|r| r.instances = -1),
            "instances",
            "must not be negative, got -1",
        ),
        (
            Box::new(|r| r.instances = 1_000_000),
            "instances",
            "at most 100000",
        ),
        (
            Box::new(|r| r.memory_mb = 0),
            "memory_mb",
            "at least 1, got 0",
        ),
        (
            Box::new(|r| r.disk_mb = -5),
            "disk_mb",
            "must not be negative",
        ),
        (
            Box::new(|r| r.cpu_weight = 101),
            "cpu_weight",
            "at most 100",
        ),
        (
            Box::new(|r| r.ports = vec![8080, 70000]),
            "ports[1]",
            "port 70000 is out of range 1-65535",
        ),
        (Box::new(|r| r.ports = vec![0]), "ports[0]", "out of range"),
        (
            Box::new(|r| r.ports = vec![8080, 8080]),
            "ports[1]",
            "listed twice",
        ),
        (
            Box::new(|r| r.health_check_type = "tcp".into()),
            "health_check_type",
            "unknown health check type \"tcp\"",
        ),
        (
            Box::new(|r| r.ports.clear()),
            "ports",
            "a port health check needs at least one port",
        ),
        (
            Box::new(|r| {
                r.health_check_type = "http".into();
                r.health_check_http_endpoint = "health".into();
            }),
            "health_check_http_endpoint",
            "must start with '/'",
        ),
        (
            Box::new(|r| r.routes.cf_router[0].port = 99999),
            "routes.cf-router[0].port",
            "out of range",
        ),
        (
            Box::new(|r| r.routes.cf_router[0].hostname.clear()),
            "routes.cf-router[0].hostname",
            "must not be empty",
        ),
        (
            Box::new(|r| r.process_guid = "other".into()),
            "process_guid",
            "does not match",
        ),
        (
            Box::new(|r| r.lifecycle.buildpack_lifecycle = None),
            "lifecycle",
            "must set one of",
        ),
        (
            Box::new(|r| {
                r.lifecycle.docker_lifecycle = Some(Default::default());
            }),
            "lifecycle",
            "not both",
        ),
        (
            Box::new(|r| {
                if let Some(bp) = r.lifecycle.buildpack_lifecycle.as_mut() {
                    bp.droplet_hash = "bad hash".into();
                }
            }),
            "lifecycle.buildpack_lifecycle.droplet_hash",
            "not a valid image tag",
        ),
        (
            Box::new(|r| {
                r.environment.insert("A=B".into(), "x".into());
            }),
            "environment.A=B",
            "must not contain '='",
        ),
    ];
    for (mutate, field, problem) in cases {
        let mut req = buildpack_request();
        mutate(&mut req);
        let err = desire_err(req);
        assert_eq!(err.field, field, "{err}");
        assert!(err.problem.contains(problem), "{field}: {err}");
    }
}

#[test]
fn path_must_match_body() {
    let req = buildpack_request();
    let err = desire("some-other-guid-v1", req).unwrap_err();
    assert_eq!(err.field, "process_guid");
    assert!(
        err.problem.contains("path names \"some-other-guid-v1\""),
        "{err}"
    );
}

#[test]
fn legacy_none_health_check_is_process() {
    let mut req = buildpack_request();
    req.health_check_type = "none".into();
    req.ports.clear();
    let path = path_of(&req);
    assert_eq!(
        desire(&path, req).unwrap().health_check.kind,
        HealthCheckType::Process
    );
}

#[test]
fn update_fixture_validates() {
    let req: UpdateLrpRequest = fixture("update.json");
    let path = format!("{}-{}", req.guid, req.version);
    let (id, update) = update(&path, req).unwrap();
    assert_eq!(id.guid, "a6f0a0a2-6b7b-4d8e-9a3f-4c2b1e0d9f11");
    assert_eq!(update.instances, Some(5));
    assert_eq!(update.routes.unwrap().cf_router.len(), 2);
    assert_eq!(update.annotation.as_deref(), Some("1529425999.0"));
}

#[test]
fn update_rejects_negative_instances() {
    let mut req: UpdateLrpRequest = fixture("update.json");
    req.update.instances = Some(-3);
    let path = format!("{}-{}", req.guid, req.version);
    let err = update(&path, req).unwrap_err();
    assert_eq!(err.field, "update.instances");
}

#[test]
fn task_fixture_validates_and_checks_callback() {
    let req: TaskRequest = fixture("task.json");
    let task = task("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", req.clone()).unwrap();
    assert_eq!(task.name, "migrate");
    assert_eq!(task.environment.len(), 2);
    assert!(matches!(task.lifecycle, LrpLifecycle::Buildpack { .. }));

    let mut bad = req.clone();
    bad.completion_callback = "ftp://cc/x".into();
    assert_eq!(
        super::task("t1", bad).unwrap_err().field,
        "completion_callback"
    );
    let mut bad = req;
    bad.guid = "someone-else".into();
    assert_eq!(super::task("t1", bad).unwrap_err().field, "guid");
    assert_eq!(
        super::task("", fixture("task.json")).unwrap_err().field,
        "task_guid"
    );
}

#[test]
fn staging_fixture_validates() {
    let req: crate::model::wire::StagingRequest = fixture("staging_buildpack.json");
    staging("9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", &req).unwrap();
    let mut bad = req;
    bad.lifecycle.buildpack_lifecycle = None;
    assert_eq!(
        staging("9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", &bad)
            .unwrap_err()
            .field,
        "lifecycle"
    );
}

proptest! {
    #[test]
    fn instances_are_accepted_exactly_in_range(n in any::<i64>()) {
        let mut req = buildpack_request();
        req.instances = n;
        let path = path_of(&req);
        match desire(&path, req) {
            Ok(lrp) => prop_assert!((0..=MAX_INSTANCES).contains(&n) && i64::from(lrp.instances) == n),
            Err(err) => {
                prop_assert!(!(0..=MAX_INSTANCES).contains(&n));
                prop_assert_eq!(err.field, "instances");
            }
        }
    }

    #[test]
    fn guids_never_admit_path_or_label_breaking_characters(s in "\\PC{0,40}") {
        match guid("guid", &s) {
            Ok(()) => {
                prop_assert!(!s.is_empty() && s != "." && s != "..");
                prop_assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
            }
            Err(err) => prop_assert_eq!(err.field, "guid"),
        }
    }

    #[test]
    fn valid_ports_round_trip(ports in proptest::collection::btree_set(1u16.., 1..8)) {
        let mut req = buildpack_request();
        req.ports = ports.iter().map(|p| i64::from(*p)).collect();
        let path = path_of(&req);
        let lrp = desire(&path, req).unwrap();
        let back = DesireLrpRequest::from(&lrp);
        prop_assert_eq!(back.ports, ports.iter().map(|p| i64::from(*p)).collect::<Vec<_>>());
    }
}

fn stepped(steps: &[(&str, &[&str])]) -> TaskRequest {
    let mut req: TaskRequest = fixture("task.json");
    req.lifecycle = wire::Lifecycle {
        docker_lifecycle: Some(wire::DockerLifecycle {
            image: "cube/stager".into(),
            ..wire::DockerLifecycle::default()
        }),
        buildpack_lifecycle: None,
    };
    req.steps = steps
        .iter()
        .map(|(name, command)| wire::TaskStep {
            name: (*name).into(),
            command: command.iter().map(|c| (*c).to_owned()).collect(),
        })
        .collect();
    req
}

#[test]
fn task_steps_validate() {
    let ok = task(
        "t1",
        stepped(&[("download", &["d"]), ("build-2", &["b", "x"])]),
    )
    .unwrap();
    assert_eq!(ok.steps.len(), 2);
    assert_eq!(ok.steps[1].command, ["b", "x"]);

    let field = |req: TaskRequest| task("t1", req).unwrap_err().field;
    assert_eq!(
        field(stepped(&[("a", &["x"]), ("Build", &["y"])])),
        "steps[1].name"
    );
    assert_eq!(field(stepped(&[("-a", &["x"])])), "steps[0].name");
    assert_eq!(field(stepped(&[("a-", &["x"])])), "steps[0].name");
    assert_eq!(field(stepped(&[("", &["x"])])), "steps[0].name");
    let long = "a".repeat(64);
    assert_eq!(field(stepped(&[(long.as_str(), &["x"])])), "steps[0].name");
    assert_eq!(
        field(stepped(&[("a", &["x"]), ("a", &["y"])])),
        "steps[1].name"
    );
    assert_eq!(
        field(stepped(&[("a", &["x"]), ("b", &[])])),
        "steps[1].command"
    );
    assert_eq!(field(stepped(&[("a", &[" "])])), "steps[0].command[0]");

    let mut with_command = stepped(&[("a", &["x"])]);
    if let Some(docker) = with_command.lifecycle.docker_lifecycle.as_mut() {
        docker.command = vec!["/bin/true".into()];
    }
    assert_eq!(field(with_command), "lifecycle.docker_lifecycle.command");

    let mut buildpack: TaskRequest = fixture("task.json");
    buildpack.steps = stepped(&[("a", &["x"])]).steps;
    assert_eq!(field(buildpack), "steps");
}
