//! The Kubernetes backend passes the OPI conformance kit against the fake
//! apiserver (with its StatefulSet/kubelet controllers), in both placement
//! modes: a namespace per space, and one fixed namespace; ready first (as
//! behind a readiness gate: lookups come from the watch-fed index), and once
//! straight away (lookups before the index synced go to the apiserver).

mod common;

use std::sync::Arc;
use std::time::Duration;

use opi::Scheduler;
use opi::conformance::{self, Harness, TaskOutcome};
use opi::model::{LrpId, LrpLifecycle};
use opi_k8s::{Config, K8sScheduler};
use testkit::FakeApiServer;

struct K8sHarness {
    server: FakeApiServer,
    scheduler: K8sScheduler,
    config: Config,
    patience: Duration,
}

impl K8sHarness {
    async fn new(namespace: Option<&str>) -> Self {
        Self::on(
            FakeApiServer::builder().controllers(true).build(),
            namespace,
        )
        .await
    }

    /// [`Self::new`], once the backend is ready.
    async fn ready(namespace: Option<&str>) -> Self {
        let harness = Self::new(namespace).await;
        conformance::eventually(harness.patience, || async {
            harness.scheduler.ready().await
        })
        .await
        .expect("ready");
        harness
    }

    async fn on(server: FakeApiServer, namespace: Option<&str>) -> Self {
        if let Some(namespace) = namespace {
            common::create_namespace(&server, namespace).await;
        }
        let config = Config {
            namespace: namespace.map(str::to_owned),
            registry: "127.0.0.1:5000".into(),
            ..Config::default()
        };
        let scheduler = K8sScheduler::new(server.client(), config.clone());
        Self {
            server,
            scheduler,
            config,
            patience: Duration::from_secs(10),
        }
    }
}

#[async_trait::async_trait]
impl Harness for K8sHarness {
    fn scheduler(&self) -> &dyn Scheduler {
        &self.scheduler
    }

    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: "docker.io/library/nginx:1.27".into(),
            command: Vec::new(),
            credentials: None,
        }
    }

    fn task_lifecycle(&self, _outcome: TaskOutcome) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: "docker.io/library/busybox:1.36".into(),
            command: vec!["/bin/true".into()],
            credentials: None,
        }
    }

    /// Marks the app container of pod `index` as crashed and restarted by
    /// the kubelet, through the pod's status subresource.
    async fn crash_instance(&self, id: &LrpId, index: u32, exit_status: i32) -> Result<(), String> {
        common::crash_pod(&self.server, id, index, exit_status).await
    }

    /// Sets the Job's status as the Job controller would when its pod ends.
    async fn finish_task(&self, guid: &str, outcome: TaskOutcome) -> Result<(), String> {
        common::finish_job(&self.server, guid, outcome).await
    }

    fn patience(&self) -> Duration {
        self.patience
    }

    /// A second backend on the same apiserver.
    async fn restart(&self) -> Result<Arc<dyn Scheduler>, String> {
        Ok(Arc::new(K8sScheduler::new(
            self.server.client(),
            self.config.clone(),
        )))
    }

    fn can_cut_off(&self) -> bool {
        true
    }

    async fn set_reachable(&self, reachable: bool) -> Result<(), String> {
        self.server.set_unreachable(!reachable);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_kit_with_a_namespace_per_space() {
    conformance::run(|| K8sHarness::ready(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_kit_in_one_namespace() {
    conformance::run(|| K8sHarness::ready(Some("cf-apps"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_kit_before_its_caches_synced() {
    conformance::run(|| K8sHarness::new(None)).await;
}

/// The kit fails this backend on a cluster whose pods never become ready:
/// the passes above are not vacuous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_fails_when_pods_never_become_ready() {
    let outcome = tokio::spawn(conformance::run(|| async {
        let server = FakeApiServer::builder()
            .controllers(true)
            .settings(testkit::apiserver::Settings {
                schedulable: true,
                ready: false,
            })
            .build();
        let mut harness = K8sHarness::on(server, None).await;
        harness.patience = Duration::from_millis(200);
        harness
    }))
    .await;
    let panic = outcome.expect_err("the kit must fail");
    let message = panic
        .into_panic()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(message.contains("desire_get_list"), "{message}");
    assert!(!message.contains("tasks_run_and_report"), "{message}");
}
