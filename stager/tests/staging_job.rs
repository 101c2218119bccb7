//! The staging task on Kubernetes, rendered by the real code path: CC's
//! staging payload (`opi/testdata/staging_buildpack.json`) → St8ge's
//! `recipe::staging_task` → OPI's validation (as `POST /tasks` does) → the
//! Job and env Secret the K8s backend creates for it (`translate::task`, in
//! the namespace it picks for the space). Snapshots of both, plus the
//! properties the snapshot must keep.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use opi::model::wire::{StagingRequest, TaskRequest};
use opi::model::{Task, WORKSPACE_ENV};
use opi_k8s::translate::task;
use reqwest::Url;
use stager::recipe::{self, Recipe};

const GUID: &str = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

fn staging_task() -> Task {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../opi/testdata/staging_buildpack.json"
    );
    let request: StagingRequest =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let recipe = Recipe {
        cube_binary: "/usr/local/bin/cube".into(),
        image: "registry.cube-system.svc:8087/cube/stager:1.0".into(),
        public_url: Url::parse("http://st8ge.cube-system.svc:8086").unwrap(),
        registry_url: Some(Url::parse("http://registry.cube-system.svc:8087").unwrap()),
        staging_timeout: Duration::from_secs(900),
        credentials: Vec::new(),
    };
    let requested = &request
        .lifecycle
        .buildpack_lifecycle
        .as_ref()
        .unwrap()
        .buildpacks;
    let shipped = ["python".to_owned(), "binary".to_owned()];
    let buildpacks = recipe::resolve_buildpacks(requested, &shipped, &recipe.public_url).unwrap();
    let task = recipe::staging_task(&recipe, GUID, &request, &buildpacks).unwrap();
    // What OPI's server hands the backend: the task after the wire and validation.
    opi::model::validate::task(GUID, TaskRequest::from(&task)).unwrap()
}

fn config() -> opi_k8s::Config {
    opi_k8s::Config {
        registry: "registry.cube-system.svc:8087".into(),
        registry_pull_secret: Some("cube-registry".into()),
        ..opi_k8s::Config::default()
    }
}

#[test]
fn the_staging_job_runs_the_three_steps_over_one_workspace() {
    let task = staging_task();
    let namespace =
        opi_k8s::names::namespace_name(&task.org.name, &task.space.name, &task.space.guid);
    let mut job = task::job(&task, &namespace, &config());
    let rendered = serde_json::to_value(&job).unwrap();
    insta::assert_json_snapshot!("staging_job", rendered);

    let pod = &rendered["spec"]["template"]["spec"];
    let names = |key: &str| -> Vec<String> {
        pod[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("initContainers"), ["download", "build"]);
    assert_eq!(names("containers"), ["upload"]);
    let all: Vec<&serde_json::Value> = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pod["containers"].as_array().unwrap())
        .collect();
    for (container, step) in all.iter().zip(recipe::STEPS) {
        assert_eq!(container["command"][2], step);
        assert_eq!(container["image"], all[0]["image"]);
        assert_eq!(container["securityContext"], all[0]["securityContext"]);
        assert_eq!(container["resources"], all[0]["resources"]);
        assert_eq!(container["envFrom"], all[0]["envFrom"]);
        assert_eq!(container["env"][0]["name"], WORKSPACE_ENV);
        assert_eq!(container["volumeMounts"][0]["mountPath"], task::WORKSPACE);
    }
    assert_eq!(pod["volumes"][0]["emptyDir"], serde_json::json!({}));
    assert_eq!(rendered["spec"]["backoffLimit"], 0);
    let containers = serde_json::to_string(&all).unwrap();
    assert!(
        !containers.contains("internal_user") && !containers.contains("cc.service.internal"),
        "the steps' URLs and CC's credentials stay in the Secret: {containers}"
    );

    // The backend creates the Secret once the Job exists, owned by it.
    job.metadata.uid = Some("00000000-0000-4000-8000-00000000j0b5".into());
    let secret = serde_json::to_value(task::env_secret(&task, &job)).unwrap();
    insta::assert_json_snapshot!("staging_job_secret", secret);
    assert_eq!(
        secret["metadata"]["name"],
        pod["containers"][0]["envFrom"][0]["secretRef"]["name"]
    );
    assert_eq!(secret["metadata"]["ownerReferences"][0]["kind"], "Job");
    let keys: Vec<&str> = secret["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        recipe::env::COMPLETION_URL,
        recipe::env::APP_BITS_URL,
        "CF_STACK",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}
