//! End to end on the Kubernetes backend: Cloud Controller's desire of a
//! docker app through `cube bbs`'s router becomes StatefulSet `myapp` (the
//! app name from the LRP's metric tags) whose pods `myapp-0..N` run, and the
//! actual LRPs CC reads report them running with their addresses; a retire
//! replaces one pod; a remove deletes the StatefulSet.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use bbs::api::{ApiMetrics, Bbs, router};
use bbs::translate::fixtures::{self, PROCESS_GUID};
use bbs_models::{
    ActualLrPsRequest, ActualLrPsResponse, ActualLrpKey, ActualLrpLifecycleResponse,
    DesireLrpRequest, DesiredLrpLifecycleResponse, MetricTagValue, RemoveDesiredLrpRequest,
    RetireActualLrpRequest,
};
use common::eventually;
use cube_runtime::access::ClientAccess;
use http_body_util::BodyExt;
use opi::Scheduler;
use opi_k8s::{Config, K8sScheduler};
use prost::Message;
use testkit::FakeApiServer;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const PATIENCE: Duration = Duration::from_secs(20);

async fn call<A: Message + Default>(router: &Router, path: &str, request: &impl Message) -> A {
    let request = Request::post(path)
        .header("content-type", "application/x-protobuf")
        .body(Body::from(request.encode_to_vec()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    A::decode(body).unwrap()
}

/// Pods of StatefulSet `set` (any namespace), by name, with their phase.
fn pods(server: &FakeApiServer, set: &str) -> Vec<(String, String)> {
    let mut pods: Vec<(String, String)> = server
        .list("pods", None)
        .into_iter()
        .filter_map(|pod| {
            let name = pod["metadata"]["name"].as_str()?.to_owned();
            let phase = pod["status"]["phase"].as_str().unwrap_or("").to_owned();
            name.strip_prefix(&format!("{set}-"))
                .filter(|ordinal| ordinal.parse::<u32>().is_ok())
                .map(|_| (name.clone(), phase))
        })
        .collect();
    pods.sort();
    pods
}

fn stateful_sets(server: &FakeApiServer) -> Vec<String> {
    server
        .list("statefulsets", None)
        .into_iter()
        .filter_map(|set| set["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn actual(process_guid: &str) -> ActualLrPsRequest {
    ActualLrPsRequest {
        process_guid: process_guid.into(),
        ..ActualLrPsRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cc_desire_runs_as_a_stateful_set_of_ready_pods() {
    let server = FakeApiServer::builder().controllers(true).build();
    let config = Config {
        registry: "127.0.0.1:5000".into(),
        ..Config::default()
    };
    let scheduler = Arc::new(K8sScheduler::new(server.client(), config));
    eventually(PATIENCE, || async { scheduler.ready().await.ok() }).await;
    let shutdown = CancellationToken::new();
    let bbs = Bbs::new(
        scheduler.clone(),
        fixtures::settings(),
        &ClientAccess::default(),
        shutdown.clone(),
    )
    .unwrap();
    let router = router(Arc::new(bbs), ApiMetrics::unregistered());

    let mut lrp = fixtures::docker_lrp();
    lrp.instances = 3;
    lrp.metric_tags.insert(
        "app_name".into(),
        MetricTagValue {
            r#static: "myapp".into(),
            dynamic: 0,
        },
    );
    let desired: DesiredLrpLifecycleResponse = call(
        &router,
        "/v1/desired_lrp/desire.r2",
        &DesireLrpRequest {
            desired_lrp: Some(lrp),
        },
    )
    .await;
    assert_eq!(desired.error, None);
    assert_eq!(stateful_sets(&server), ["myapp"]);
    let running = |pods: &[(String, String)]| pods.iter().all(|(_, phase)| phase == "Running");
    let names = eventually(PATIENCE, || async {
        let pods = pods(&server, "myapp");
        (pods.len() == 3 && running(&pods)).then_some(pods)
    })
    .await;
    let names: Vec<&str> = names.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["myapp-0", "myapp-1", "myapp-2"]);

    // What CC's instances reporter reads: three RUNNING instances, each
    // with its pod's address once the route table has it.
    let lrps = eventually(PATIENCE, || async {
        let answer: ActualLrPsResponse =
            call(&router, "/v1/actual_lrps/list", &actual(PROCESS_GUID)).await;
        let addressed = |lrp: &bbs_models::ActualLrp| {
            lrp.state == "RUNNING"
                && lrp
                    .actual_lrp_net_info
                    .as_ref()
                    .is_some_and(|net| !net.address.is_empty())
        };
        (answer.actual_lrps.len() == 3 && answer.actual_lrps.iter().all(addressed))
            .then_some(answer.actual_lrps)
    })
    .await;
    for lrp in &lrps {
        let net = lrp.actual_lrp_net_info.as_ref().unwrap();
        assert_eq!(net.ports[0].container_port, 8080, "{lrp:?}");
    }

    // Retire index 1: the pod is replaced, the set keeps three.
    let retire = RetireActualLrpRequest {
        actual_lrp_key: Some(ActualLrpKey {
            process_guid: PROCESS_GUID.into(),
            index: 1,
            domain: "cf-apps".into(),
        }),
    };
    let retired: ActualLrpLifecycleResponse =
        call(&router, "/v1/actual_lrps/retire", &retire).await;
    assert_eq!(retired.error, None);
    eventually(PATIENCE, || async {
        let pods = pods(&server, "myapp");
        (pods.len() == 3 && running(&pods)).then_some(())
    })
    .await;

    // Remove: the StatefulSet goes.
    let removed: DesiredLrpLifecycleResponse = call(
        &router,
        "/v1/desired_lrp/remove",
        &RemoveDesiredLrpRequest {
            process_guid: PROCESS_GUID.into(),
        },
    )
    .await;
    assert_eq!(removed.error, None);
    eventually(PATIENCE, || async {
        stateful_sets(&server).is_empty().then_some(())
    })
    .await;
    shutdown.cancel();
}
