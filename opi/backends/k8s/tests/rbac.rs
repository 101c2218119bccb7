//! The backend needs no more RBAC than it documents: it passes the
//! conformance kit with a client restricted to [`opi_k8s::rbac`]'s rules,
//! and fails without one of them.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use opi::Scheduler;
use opi::conformance::{self, Harness, TaskOutcome};
use opi::model::{LrpId, LrpLifecycle};
use opi_k8s::{Config, K8sScheduler, labels, names, rbac};
use testkit::FakeApiServer;
use testkit::apiserver::{Rbac, Rule};

fn granted(namespace: Option<&str>, skip: Option<(&str, &str)>) -> Rbac {
    let mut rules = Vec::new();
    for rule in rbac::NAMESPACED {
        let verbs: Vec<&str> = rule
            .verbs
            .iter()
            .copied()
            .filter(|verb| skip != Some((rule.resources[0], verb)))
            .collect();
        rules.push(match namespace {
            Some(ns) => Rule::namespaced(ns, rule.group, rule.resources, &verbs),
            None => Rule::cluster(rule.group, rule.resources, &verbs),
        });
    }
    if namespace.is_none() {
        for rule in rbac::CLUSTER {
            rules.push(Rule::cluster(rule.group, rule.resources, rule.verbs));
        }
    }
    Rbac {
        user: "system:serviceaccount:cube:opi".into(),
        rules,
    }
}

struct RestrictedHarness {
    server: FakeApiServer,
    scheduler: K8sScheduler,
}

impl RestrictedHarness {
    async fn new(namespace: Option<&str>, skip: Option<(&str, &str)>) -> Self {
        let server = FakeApiServer::builder().controllers(true).build();
        if let Some(ns) = namespace {
            let namespace: Namespace =
                serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))
                    .expect("namespace");
            Api::<Namespace>::all(server.client())
                .create(&PostParams::default(), &namespace)
                .await
                .expect("create namespace");
        }
        let config = Config {
            namespace: namespace.map(str::to_owned),
            ..Config::default()
        };
        let scheduler = K8sScheduler::new(server.client_as(granted(namespace, skip)), config);
        Self { server, scheduler }
    }
}

#[async_trait::async_trait]
impl Harness for RestrictedHarness {
    fn scheduler(&self) -> &dyn Scheduler {
        &self.scheduler
    }

    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: "nginx".into(),
            command: Vec::new(),
            credentials: None,
        }
    }

    fn task_lifecycle(&self, _outcome: TaskOutcome) -> LrpLifecycle {
        self.lrp_lifecycle(0)
    }

    async fn crash_instance(&self, id: &LrpId, index: u32, exit_status: i32) -> Result<(), String> {
        let selector = format!("{}={}", labels::PROCESS_GUID, names::label_value(&id.guid));
        let pods: Api<Pod> = Api::all(self.server.client());
        let pod = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| e.to_string())?
            .items
            .into_iter()
            .find(|p| opi_k8s::instances::index(p) == Some(index))
            .ok_or("no such pod")?;
        let patch = serde_json::json!({"status": {"containerStatuses": [{
            "name": "opi", "image": "nginx", "imageID": "", "ready": false, "restartCount": 1,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": exit_status, "reason": "Error",
                "finishedAt": "2026-01-01T00:00:00Z", "containerID": "containerd://crashed"}},
        }]}});
        Api::<Pod>::namespaced(
            self.server.client(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        )
        .patch_status(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(drop)
        .map_err(|e| e.to_string())
    }

    async fn finish_task(&self, guid: &str, outcome: TaskOutcome) -> Result<(), String> {
        let kind = match outcome {
            TaskOutcome::Succeed => "Complete",
            TaskOutcome::Fail => "Failed",
            TaskOutcome::RunUntilCancelled => return Ok(()),
        };
        let selector = format!("{}={}", labels::TASK_GUID, names::label_value(guid));
        let job = Api::<Job>::all(self.server.client())
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| e.to_string())?
            .items
            .into_iter()
            .next()
            .ok_or("no such job")?;
        let patch = serde_json::json!({"status": {"conditions": [{
            "type": kind, "status": "True", "reason": "Test", "message": "finished by the test",
            "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
        }]}});
        Api::<Job>::namespaced(
            self.server.client(),
            job.metadata.namespace.as_deref().unwrap_or_default(),
        )
        .patch_status(
            job.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(drop)
        .map_err(|e| e.to_string())
    }

    fn patience(&self) -> Duration {
        Duration::from_secs(10)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_role_suffices_in_one_namespace() {
    conformance::run(|| RestrictedHarness::new(Some("cf-apps"), None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_cluster_role_suffices_with_a_namespace_per_space() {
    conformance::run(|| RestrictedHarness::new(None, None)).await;
}

#[tokio::test]
async fn a_missing_permission_is_an_error_naming_it() {
    let harness = RestrictedHarness::new(Some("cf-apps"), Some(("secrets", "create"))).await;
    let lrp = conformance::sample_lrp(&harness, "app", "v1", 1);
    match harness.scheduler.desire(lrp).await {
        Err(e @ opi::Error::Internal(_)) => {
            let message = e.to_string();
            assert!(
                message.contains("cannot create resource \"secrets\""),
                "{message}"
            );
        }
        other => panic!("expected a 500 naming the permission, got {other:?}"),
    }
}
