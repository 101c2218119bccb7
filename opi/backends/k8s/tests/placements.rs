//! Where desires land and what they cost, with the watch-fed placement
//! index: right names whether the index is synced, rebuilt after a restart
//! or stale, and a constant number of apiserver requests per new LRP however
//! many LRPs exist (so the cluster-wide LISTs cannot come back).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use opi::Scheduler;
use opi::conformance::eventually;
use opi::model::{DesiredLrp, LrpId};
use opi_k8s::names::statefulset_name_on_collision;
use opi_k8s::{Config, K8sScheduler};
use testkit::FakeApiServer;
use testkit::apiserver::RecordedRequest;

mod common;

const PATIENCE: Duration = Duration::from_secs(10);

fn lrp(name: &str, guid: &str, version: &str) -> DesiredLrp {
    common::lrp(name, guid, version, 1)
}

async fn ready(server: &FakeApiServer) -> K8sScheduler {
    let scheduler = K8sScheduler::new(server.client(), Config::default());
    eventually(PATIENCE, || async { scheduler.ready().await })
        .await
        .expect("ready");
    scheduler
}

/// StatefulSet name → the process guid it carries, in `acme-dev`.
fn placed(server: &FakeApiServer) -> BTreeMap<String, String> {
    server
        .list("statefulsets", Some("acme-dev"))
        .iter()
        .map(|sts| {
            let meta = &sts["metadata"];
            let guid = meta["annotations"]["cloudfoundry.org/process-guid"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (meta["name"].as_str().unwrap_or("").to_owned(), guid)
        })
        .collect()
}

fn hashed(guid: &str) -> String {
    statefulset_name_on_collision("myapp", "web", guid)
}

/// The requests of one desire, without the watches' own.
async fn requests_of(
    server: &FakeApiServer,
    scheduler: &K8sScheduler,
    lrp: DesiredLrp,
) -> Vec<RecordedRequest> {
    server.clear_requests();
    scheduler.desire(lrp).await.expect("desire");
    server
        .requests()
        .into_iter()
        .filter(|r| !r.query.contains("watch=true"))
        .collect()
}

fn is_list(request: &RecordedRequest) -> bool {
    request.method == "GET"
        && (request.path.ends_with("/statefulsets") || request.path.ends_with("/namespaces"))
}

#[tokio::test]
async fn a_new_lrp_costs_the_same_requests_however_many_exist() {
    let server = FakeApiServer::new();
    let scheduler = ready(&server).await;
    scheduler
        .desire(lrp("app-0", "guid-0", "v1"))
        .await
        .expect("first desire creates the namespace");

    let with_one = requests_of(&server, &scheduler, lrp("app-1", "guid-1", "v1")).await;
    for i in 2..40 {
        let name = format!("app-{i}");
        scheduler
            .desire(lrp(&name, &format!("guid-{i}"), "v1"))
            .await
            .expect("desire");
    }
    let with_forty = requests_of(&server, &scheduler, lrp("app-40", "guid-40", "v1")).await;

    assert_eq!(
        with_one.len(),
        with_forty.len(),
        "{with_one:#?}\n{with_forty:#?}"
    );
    // The env Secret and the StatefulSet, applied; nothing read.
    assert_eq!(with_forty.len(), 2, "{with_forty:#?}");
    assert!(
        with_forty.iter().all(|r| r.method == "PATCH"),
        "{with_forty:#?}"
    );

    // Desiring a known LRP again reads it by name, never by a LIST.
    let again = requests_of(&server, &scheduler, lrp("app-7", "guid-7", "v2")).await;
    assert!(!again.iter().any(is_list), "{again:#?}");
    assert_eq!(placed(&server).len(), 41);
}

#[tokio::test]
async fn names_stay_right_across_restarts_and_an_unsynced_index() {
    let server = FakeApiServer::new();
    let first = ready(&server).await;
    first
        .desire(lrp("myapp", "guid-1", "v1"))
        .await
        .expect("guid-1");
    drop(first);

    // Straight after a restart: the index may not have synced yet.
    let second = K8sScheduler::new(server.client(), Config::default());
    second
        .desire(lrp("myapp", "guid-2", "v1"))
        .await
        .expect("guid-2");
    eventually(PATIENCE, || async { second.ready().await })
        .await
        .expect("ready");
    second
        .desire(lrp("myapp", "guid-3", "v1"))
        .await
        .expect("guid-3");
    // New versions and repeats keep their names.
    second
        .desire(lrp("myapp", "guid-1", "v2"))
        .await
        .expect("guid-1 v2");
    second
        .desire(lrp("myapp", "guid-2", "v1"))
        .await
        .expect("guid-2 again");
    let expected = BTreeMap::from([
        ("myapp".to_owned(), "guid-1".to_owned()),
        (hashed("guid-2"), "guid-2".to_owned()),
        (hashed("guid-3"), "guid-3".to_owned()),
    ]);
    assert_eq!(placed(&server), expected);
    drop(second);

    // Rebuilt from the watches: the plain name is free once its process
    // stopped, and the others are still known.
    let third = ready(&server).await;
    third
        .stop(&LrpId::new("guid-1", "v2"))
        .await
        .expect("stop guid-1");
    third
        .desire(lrp("myapp", "guid-4", "v1"))
        .await
        .expect("guid-4");
    third
        .desire(lrp("myapp", "guid-3", "v2"))
        .await
        .expect("guid-3 v2");
    let expected = BTreeMap::from([
        ("myapp".to_owned(), "guid-4".to_owned()),
        (hashed("guid-2"), "guid-2".to_owned()),
        (hashed("guid-3"), "guid-3".to_owned()),
    ]);
    assert_eq!(placed(&server), expected);
}

#[tokio::test]
async fn a_statefulset_cube_did_not_write_is_never_taken_over() {
    let server = FakeApiServer::new();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(server.client());
    let ns = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "acme-dev", "labels": {"cloudfoundry.org/space-guid": "space-1"}}
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let foreign: StatefulSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "myapp", "namespace": "acme-dev"},
        "spec": {
            "selector": {"matchLabels": {"app": "db"}},
            "serviceName": "db",
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}
            }
        }
    }))
    .expect("StatefulSet");
    Api::<StatefulSet>::namespaced(server.client(), "acme-dev")
        .create(&PostParams::default(), &foreign)
        .await
        .expect("foreign StatefulSet");

    let scheduler = ready(&server).await;
    scheduler
        .desire(lrp("myapp", "guid-1", "v1"))
        .await
        .expect("desire");
    let sets = placed(&server);
    assert_eq!(sets.get("myapp").map(String::as_str), Some(""), "untouched");
    assert_eq!(
        sets.get(&hashed("guid-1")).map(String::as_str),
        Some("guid-1")
    );
}

#[tokio::test]
async fn a_statefulset_deleted_behind_cubes_back_is_desired_again_in_place() {
    let server = FakeApiServer::new();
    let scheduler = ready(&server).await;
    scheduler
        .desire(lrp("myapp", "guid-1", "v1"))
        .await
        .expect("desire");
    Api::<StatefulSet>::namespaced(server.client(), "acme-dev")
        .delete("myapp", &DeleteParams::default())
        .await
        .expect("delete");
    // The index may still hold it: the lookup must not trust that.
    scheduler
        .desire(lrp("myapp", "guid-1", "v1"))
        .await
        .expect("desire again");
    assert_eq!(
        placed(&server),
        BTreeMap::from([("myapp".to_owned(), "guid-1".to_owned())])
    );
    let got = scheduler
        .get(&LrpId::new("guid-1", "v1"))
        .await
        .expect("get");
    assert_eq!(got.environment, lrp("myapp", "guid-1", "v1").environment);
}

fn droplet_lrp(name: &str, guid: &str) -> DesiredLrp {
    DesiredLrp {
        lifecycle: opi::model::LrpLifecycle::Buildpack {
            droplet_guid: format!("droplet-{guid}"),
            droplet_hash: "0123abcd".into(),
            start_command: "./run".into(),
        },
        ..lrp(name, guid, "v1")
    }
}

#[tokio::test]
async fn droplet_workloads_get_the_registry_pull_secret_once_per_namespace() {
    use base64::Engine as _;
    let server = FakeApiServer::new();
    let config = Config {
        registry: "registry.cube.example:8087".into(),
        registry_credentials: Some(opi::model::RegistryCredentials {
            username: "cube".into(),
            password: "s3cret-token".into(),
        }),
        ..Config::default()
    };
    let scheduler = K8sScheduler::new(server.client(), config.clone());
    eventually(PATIENCE, || async { scheduler.ready().await })
        .await
        .expect("ready");
    let pull_secret_requests = |requests: &[RecordedRequest]| {
        requests
            .iter()
            .filter(|r| r.path.ends_with("/secrets/cube-registry-pull"))
            .count()
    };

    let first = requests_of(&server, &scheduler, droplet_lrp("one", "g1")).await;
    assert_eq!(pull_secret_requests(&first), 1);
    let secret = server
        .get("secrets", "acme-dev", "cube-registry-pull")
        .expect("the pull Secret is written");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let encoded = secret["data"][".dockerconfigjson"].as_str().expect("data");
    let docker_config: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(
        docker_config["auths"]["registry.cube.example:8087"]["auth"],
        base64::engine::general_purpose::STANDARD.encode("cube:s3cret-token")
    );
    let set = server
        .list("statefulsets", Some("acme-dev"))
        .into_iter()
        .find(|s| s["metadata"]["annotations"]["cloudfoundry.org/process-guid"] == "g1")
        .expect("statefulset");
    assert_eq!(
        set["spec"]["template"]["spec"]["imagePullSecrets"],
        serde_json::json!([{"name": "cube-registry-pull"}])
    );

    // Once per namespace: the next droplet LRP there does not write it again.
    let second = requests_of(&server, &scheduler, droplet_lrp("two", "g2")).await;
    assert_eq!(pull_secret_requests(&second), 0);
    // Docker images do not pull from Cube's registry.
    let docker = requests_of(&server, &scheduler, lrp("three", "g3", "v1")).await;
    assert_eq!(pull_secret_requests(&docker), 0);

    // Deleted behind Cube's back: a new process writes it again on its first
    // droplet desire (one request), whatever the namespace holds.
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(server.client(), "acme-dev")
        .delete("cube-registry-pull", &DeleteParams::default())
        .await
        .expect("delete");
    drop(scheduler);
    let restarted = K8sScheduler::new(server.client(), config);
    eventually(PATIENCE, || async { restarted.ready().await })
        .await
        .expect("ready");
    let again = requests_of(&server, &restarted, droplet_lrp("four", "g4")).await;
    assert_eq!(pull_secret_requests(&again), 1);
    assert!(
        server
            .get("secrets", "acme-dev", "cube-registry-pull")
            .is_some()
    );

    // Without credentials, no Secret is written and none is named.
    let plain = FakeApiServer::new();
    let scheduler = ready(&plain).await;
    scheduler
        .desire(droplet_lrp("one", "g1"))
        .await
        .expect("desire");
    assert!(
        plain
            .get("secrets", "acme-dev", "cube-registry-pull")
            .is_none()
    );
    let set = &plain.list("statefulsets", Some("acme-dev"))[0];
    assert!(set["spec"]["template"]["spec"]["imagePullSecrets"].is_null());
}
