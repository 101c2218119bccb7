//! The Kubernetes backend as a `RouteSource`, against the fake apiserver:
//! ready pods with an IP are endpoints of their process's routes, and the
//! change counter follows what routers see.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};
use opi::Scheduler;
use opi::conformance::eventually;
use opi::model::{LrpUpdate, Route, Routes};
use opi::routing::{Endpoint, RouteSource};
use opi_k8s::{Config, K8sScheduler};
use testkit::FakeApiServer;

mod common;

use common::lrp;

const PATIENCE: Duration = Duration::from_secs(10);

fn setup() -> (FakeApiServer, K8sScheduler) {
    let server = FakeApiServer::builder().controllers(true).build();
    let scheduler = K8sScheduler::new(server.client(), Config::default());
    (server, scheduler)
}

/// Waits until the endpoints satisfy `check`; returns them.
async fn endpoints_until(
    scheduler: &K8sScheduler,
    check: impl Fn(&[Endpoint]) -> bool,
) -> Vec<Endpoint> {
    eventually(PATIENCE, || async {
        let found = scheduler.endpoints();
        if check(&found) {
            Ok(())
        } else {
            Err(format!("{found:?}"))
        }
    })
    .await
    .expect("endpoints as expected");
    scheduler.endpoints()
}

fn uid(server: &FakeApiServer, name: &str) -> String {
    server
        .get("pods", "acme-dev", name)
        .and_then(|p| p["metadata"]["uid"].as_str().map(str::to_owned))
        .expect("pod uid")
}

/// Plays the kubelet: sets pod `name`'s IP and readiness.
async fn set_pod(server: &FakeApiServer, name: &str, ip: &str, ready: bool) {
    let ready = if ready { "True" } else { "False" };
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({"status": {
        "podIP": ip,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": ready, "lastTransitionTime": now},
        ],
    }});
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(server.client(), "acme-dev")
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("pod status patched");
}

fn routes(hostnames: &[&str]) -> Routes {
    Routes {
        cf_router: hostnames
            .iter()
            .map(|h| Route {
                hostname: (*h).to_owned(),
                port: 8080,
            })
            .collect(),
        other: BTreeMap::new(),
    }
}

#[tokio::test]
async fn ready_pods_are_endpoints_of_their_routes() {
    let (server, scheduler) = setup();
    let app = lrp("myapp", "guid-1", "v1", 2);
    scheduler.desire(app.clone()).await.expect("desire");
    // A process without routes has no endpoints.
    let mut hidden = lrp("worker", "guid-2", "v1", 1);
    hidden.routes = Routes::default();
    scheduler.desire(hidden).await.expect("desire");

    let found = endpoints_until(&scheduler, |e| e.len() == 2).await;
    let expected: Vec<Endpoint> = (0..2)
        .map(|index| Endpoint {
            process_guid: "guid-1-v1".into(),
            app_guid: "app-guid-1".into(),
            instance_guid: uid(&server, &format!("myapp-{index}")),
            index,
            host: "127.0.0.2".into(),
            port: 8080,
            container_port: 8080,
            hostnames: vec!["myapp.example.com".into()],
        })
        .collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(found, expected);

    // A pod that is not ready, or has no IP, takes no traffic.
    set_pod(&server, "myapp-1", "127.0.0.2", false).await;
    let found = endpoints_until(&scheduler, |e| e.len() == 1).await;
    assert_eq!(found[0].index, 0);
    set_pod(&server, "myapp-1", "", true).await;
    set_pod(&server, "myapp-1", "10.1.0.9", true).await;
    let found = endpoints_until(&scheduler, |e| e.len() == 2).await;
    let mut hosts: Vec<(u32, &str)> = found.iter().map(|e| (e.index, e.host.as_str())).collect();
    hosts.sort();
    assert_eq!(hosts, [(0, "127.0.0.2"), (1, "10.1.0.9")]);

    // Stopping the process removes its endpoints.
    scheduler.stop(&app.id).await.expect("stop");
    endpoints_until(&scheduler, <[Endpoint]>::is_empty).await;
}

#[tokio::test]
async fn route_updates_change_endpoints_without_restarting_instances() {
    let (server, scheduler) = setup();
    let app = lrp("myapp", "guid-1", "v1", 1);
    scheduler.desire(app.clone()).await.expect("desire");
    endpoints_until(&scheduler, |e| e.len() == 1).await;
    let pod = uid(&server, "myapp-0");
    let changes = scheduler.changes();
    let before = *changes.borrow();

    scheduler
        .update(
            &app.id,
            LrpUpdate {
                routes: Some(routes(&["b.example.com", "a.example.com"])),
                ..LrpUpdate::default()
            },
        )
        .await
        .expect("update");
    let found = endpoints_until(&scheduler, |e| {
        e.first().is_some_and(|e| e.hostnames.len() == 2)
    })
    .await;
    assert_eq!(found[0].hostnames, ["a.example.com", "b.example.com"]);
    assert_eq!(
        found[0].instance_guid, pod,
        "the instance was not restarted"
    );
    assert!(*changes.borrow() > before, "the change was counted");

    // Routes to a port the app does not listen on are no endpoints.
    scheduler
        .update(
            &app.id,
            LrpUpdate {
                routes: Some(Routes {
                    cf_router: vec![Route {
                        hostname: "elsewhere.example.com".into(),
                        port: 9999,
                    }],
                    other: BTreeMap::new(),
                }),
                ..LrpUpdate::default()
            },
        )
        .await
        .expect("update");
    endpoints_until(&scheduler, <[Endpoint]>::is_empty).await;
}

/// Status churn that routers cannot see does not move the counter; the next
/// change that they can see moves it once. (Watch events arrive in order, so
/// once the second change is visible the first was processed too.)
#[tokio::test]
async fn status_churn_is_not_a_change() {
    let (server, scheduler) = setup();
    scheduler
        .desire(lrp("myapp", "guid-1", "v1", 1))
        .await
        .expect("desire");
    endpoints_until(&scheduler, |e| e.len() == 1).await;
    let mut changes = scheduler.changes();
    let before = *changes.borrow_and_update();

    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(server.client(), "acme-dev");
    let churn = serde_json::json!({"status": {"hostIP": "10.9.9.9", "qosClass": "Burstable"}});
    pods.patch_status("myapp-0", &PatchParams::default(), &Patch::Merge(&churn))
        .await
        .expect("churn");
    set_pod(&server, "myapp-0", "10.1.0.1", true).await;
    endpoints_until(&scheduler, |e| {
        e.first().is_some_and(|e| e.host == "10.1.0.1")
    })
    .await;
    assert_eq!(*changes.borrow_and_update(), before + 1);
}
