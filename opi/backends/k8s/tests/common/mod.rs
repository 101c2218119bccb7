//! What the backend's tests share: a realistic LRP, and the fake cluster
//! playing kubelet and Job controller (crashing a pod, finishing a Job).

#![allow(dead_code)]

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use opi::conformance::TaskOutcome;
use opi::model::{
    DesiredLrp, HealthCheck, HealthCheckType, LrpId, LrpLifecycle, Named, Route, Routes,
};
use opi_k8s::{labels, names};
use testkit::FakeApiServer;

/// A realistic web LRP of app `name` in space `dev` of org `acme`.
pub fn lrp(name: &str, guid: &str, version: &str, instances: u32) -> DesiredLrp {
    DesiredLrp {
        id: LrpId::new(guid, version),
        process_type: "web".into(),
        app: Named {
            guid: format!("app-{guid}"),
            name: name.into(),
        },
        space: Named {
            guid: "space-1".into(),
            name: "dev".into(),
        },
        org: Named {
            guid: "org-1".into(),
            name: "acme".into(),
        },
        instances,
        memory_mb: 64,
        disk_mb: 128,
        cpu_weight: 10,
        ports: vec![8080],
        routes: Routes {
            cf_router: vec![Route {
                hostname: format!("{name}.example.com"),
                port: 8080,
            }],
            other: BTreeMap::new(),
        },
        environment: BTreeMap::from([("SECRET_TOKEN".to_owned(), "very-secret".to_owned())]).into(),
        health_check: HealthCheck {
            kind: HealthCheckType::Port,
            http_endpoint: String::new(),
            timeout_ms: 1000,
        },
        start_timeout_ms: 60_000,
        lifecycle: LrpLifecycle::Docker {
            image: "nginx:1.27".into(),
            command: Vec::new(),
            credentials: None,
        },
        annotation: "1700000000.0".into(),
        user_defined_annotations: BTreeMap::new(),
        volume_mounts: Vec::new(),
        placement_tags: Vec::new(),
        egress_rules: Vec::new(),
    }
}

/// `cf-router` routes: `(hostname, container port)` pairs.
pub fn routes(hosts: &[(&str, i64)]) -> Routes {
    Routes {
        cf_router: hosts
            .iter()
            .map(|(hostname, port)| Route {
                hostname: (*hostname).to_owned(),
                port: *port,
            })
            .collect(),
        other: BTreeMap::new(),
    }
}

/// Creates namespace `name`.
pub async fn create_namespace(server: &FakeApiServer, name: &str) {
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(server.client())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
}

/// Marks the app container of pod `index` as crashed and restarted by
/// the kubelet, through the pod's status subresource.
pub async fn crash_pod(
    server: &FakeApiServer,
    id: &LrpId,
    index: u32,
    exit_status: i32,
) -> Result<(), String> {
    let pods: Api<Pod> = Api::all(server.client());
    let selector = format!("{}={}", labels::PROCESS_GUID, names::label_value(&id.guid));
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| e.to_string())?;
    let pod = list
        .items
        .into_iter()
        .find(|p| opi_k8s::instances::index(p) == Some(index))
        .ok_or_else(|| format!("no pod with index {index}"))?;
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let restarts = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .map_or(0, |c| c.restart_count);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({
        "status": {
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "False", "lastTransitionTime": now},
            ],
            "containerStatuses": [{
                "name": "opi",
                "image": "nginx",
                "imageID": "",
                "ready": false,
                "restartCount": restarts + 1,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {
                    "exitCode": exit_status,
                    "reason": "Error",
                    "finishedAt": now,
                    "containerID": format!("containerd://crash-{}", restarts + 1),
                }},
            }],
        }
    });
    Api::<Pod>::namespaced(server.client(), &namespace)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Plays the kubelet and the Job controller when a task's pod ends: the Job
/// completes or fails as `outcome` says. For a task with steps the kubelet
/// runs the pod's init containers in order, then the main container; a
/// container whose command is `/bin/false` exits 1 and ends the pod there
/// (later containers never start). The pod is written with those container
/// statuses before the Job is marked, as on a real cluster.
pub async fn finish_job(
    server: &FakeApiServer,
    guid: &str,
    outcome: TaskOutcome,
) -> Result<(), String> {
    if outcome == TaskOutcome::RunUntilCancelled {
        return Ok(());
    }
    let jobs: Api<Job> = Api::all(server.client());
    let selector = format!("{}={}", labels::TASK_GUID, names::label_value(guid));
    let job = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| e.to_string())?
        .items
        .into_iter()
        .next()
        .ok_or_else(|| format!("no job for task {guid}"))?;
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let failed = if opi_k8s::tasks::has_steps(&job) {
        run_pod(server, &job).await?
    } else {
        outcome == TaskOutcome::Fail
    };
    let (kind, reason, message) = if failed {
        (
            "Failed",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        )
    } else {
        ("Complete", "Completed", "")
    };
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({
        "status": {
            "active": 0,
            "succeeded": i32::from(!failed),
            "failed": i32::from(failed),
            "completionTime": now,
            "conditions": [{
                "type": kind, "status": "True", "reason": reason, "message": message,
                "lastTransitionTime": now,
            }],
        }
    });
    Api::<Job>::namespaced(server.client(), &namespace)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The kubelet running the pod of a Job with steps to its end; whether a
/// container failed.
async fn run_pod(server: &FakeApiServer, job: &Job) -> Result<bool, String> {
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .ok_or("the job has no spec")?;
    let spec = template.spec.clone().ok_or("the job has no pod spec")?;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut failed = false;
    let mut status = |container: &k8s_openapi::api::core::v1::Container| {
        if failed {
            return serde_json::json!({
                "name": container.name, "image": container.image, "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}},
            });
        }
        let code = i32::from(container.command.as_deref() == Some(&["/bin/false".to_owned()][..]));
        failed = code != 0;
        serde_json::json!({
            "name": container.name, "image": container.image, "imageID": "",
            "ready": false, "restartCount": 0,
            "state": {"terminated": {
                "exitCode": code,
                "reason": if code == 0 { "Completed" } else { "Error" },
                "finishedAt": now,
            }},
        })
    };
    let init: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .map(&mut status)
        .collect();
    let main: Vec<_> = spec.containers.iter().map(&mut status).collect();
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert("job-name".into(), job_name.clone());
    let pod = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{job_name}-x1")),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    };
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(server.client(), &namespace);
    pods.create(&PostParams::default(), &pod)
        .await
        .map_err(|e| format!("cannot create the job's pod: {e}"))?;
    let patch = serde_json::json!({
        "status": {
            "phase": if failed { "Failed" } else { "Succeeded" },
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
            "initContainerStatuses": init,
            "containerStatuses": main,
        }
    });
    pods.patch_status(
        &format!("{job_name}-x1"),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(failed)
}
