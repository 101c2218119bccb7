//! The backend needs no more RBAC than it documents: it passes the
//! conformance kit with a client restricted to [`opi_k8s::rbac`]'s rules,
//! and fails without one of them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use opi::Scheduler;
use opi::conformance::{self, Harness, TaskOutcome};
use opi::model::{LrpId, LrpLifecycle};
use opi_k8s::config::Routing;
use opi_k8s::{Config, K8sScheduler, rbac};
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
    rbac: Rbac,
    config: Config,
}

impl RestrictedHarness {
    async fn new(namespace: Option<&str>, skip: Option<(&str, &str)>) -> Self {
        Self::routed(namespace, skip, Routing::None).await
    }

    async fn routed(namespace: Option<&str>, skip: Option<(&str, &str)>, routing: Routing) -> Self {
        let server = FakeApiServer::builder().controllers(true).build();
        if let Some(ns) = namespace {
            common::create_namespace(&server, ns).await;
        }
        let config = Config {
            namespace: namespace.map(str::to_owned),
            routing,
            ..Config::default()
        };
        let rbac = granted(namespace, skip);
        let scheduler = K8sScheduler::new(server.client_as(rbac.clone()), config.clone());
        Self {
            server,
            scheduler,
            rbac,
            config,
        }
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
        common::crash_pod(&self.server, id, index, exit_status).await
    }

    async fn finish_task(&self, guid: &str, outcome: TaskOutcome) -> Result<(), String> {
        common::finish_job(&self.server, guid, outcome).await
    }

    fn patience(&self) -> Duration {
        Duration::from_secs(10)
    }

    /// A second backend with the same restricted rights.
    async fn restart(&self) -> Result<Arc<dyn Scheduler>, String> {
        let client = self.server.client_as(self.rbac.clone());
        Ok(Arc::new(K8sScheduler::new(client, self.config.clone())))
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
async fn the_documented_role_suffices_in_one_namespace() {
    conformance::run(|| RestrictedHarness::new(Some("cf-apps"), None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_cluster_role_suffices_with_a_namespace_per_space() {
    conformance::run(|| RestrictedHarness::new(None, None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_role_suffices_with_ingress_routing() {
    let routing = Routing::Ingress {
        class: None,
        tls_secret: None,
    };
    conformance::run(|| RestrictedHarness::routed(Some("cf-apps"), None, routing.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_cluster_role_suffices_with_gateway_routing() {
    let routing = Routing::Gateway {
        name: "cf".into(),
        namespace: None,
    };
    conformance::run(|| RestrictedHarness::routed(None, None, routing.clone())).await;
}

#[tokio::test]
async fn routing_without_the_services_rule_is_an_error_naming_it() {
    let routing = Routing::Ingress {
        class: None,
        tls_secret: None,
    };
    let harness =
        RestrictedHarness::routed(Some("cf-apps"), Some(("services", "patch")), routing).await;
    let lrp = conformance::sample_lrp(&harness, "app", "v1", 1);
    let message = harness
        .scheduler
        .desire(lrp)
        .await
        .expect_err("services patch is needed")
        .to_string();
    assert!(
        message.contains("cannot patch resource \"services\""),
        "{message}"
    );
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
