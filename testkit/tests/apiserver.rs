//! The fake apiserver through a real `kube::Client`: what a backend relies
//! on behaves as on a real cluster, including the rejections.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use http::Method;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::Status;
use kube::{Api, Client};
use serde_json::json;
use testkit::FakeApiServer;
use testkit::apiserver::Fault;

fn secret(name: &str, labels: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "k".to_owned(),
            ByteString(b"v".to_vec()),
        )])),
        ..Secret::default()
    }
}

fn api_error(error: kube::Error) -> Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other}"),
    }
}

fn secrets(client: Client) -> Api<Secret> {
    Api::namespaced(client, "default")
}

#[tokio::test]
async fn create_get_replace_patch_delete_with_resource_versions() {
    let server = FakeApiServer::new();
    let api = secrets(server.client());
    let created = api
        .create(&PostParams::default(), &secret("a", &[]))
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let again = api.create(&PostParams::default(), &secret("a", &[])).await;
    let e = api_error(again.expect_err("duplicate"));
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));

    // Replace with the current version works; with a stale one it is a conflict.
    let mut next = created.clone();
    next.data = Some(BTreeMap::from([(
        "k".to_owned(),
        ByteString(b"w".to_vec()),
    )]));
    let replaced = api
        .replace("a", &PostParams::default(), &next)
        .await
        .expect("replace");
    assert_ne!(replaced.metadata.resource_version, Some(rv.clone()));
    let stale = api.replace("a", &PostParams::default(), &next).await;
    assert_eq!(api_error(stale.expect_err("stale")).code, 409);

    let merged = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(merged.metadata.labels.unwrap_or_default()["x"], "1");
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/metadata/annotations", "value": {"y": "2"}}
    ]))
    .expect("patch");
    let patched = api
        .patch("a", &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .expect("json patch");
    assert_eq!(patched.metadata.annotations.unwrap_or_default()["y"], "2");
    let bad: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/name", "value": "other"}
    ]))
    .expect("patch");
    let failed = api
        .patch("a", &PatchParams::default(), &Patch::<()>::Json(bad))
        .await;
    assert_eq!(api_error(failed.expect_err("failed test op")).code, 422);

    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let e = api_error(api.get("a").await.expect_err("gone"));
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "secrets \"a\" not found")
    );
    let e = api_error(
        api.delete("a", &DeleteParams::default())
            .await
            .expect_err("gone"),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn server_side_apply_owns_fields_per_manager() {
    let server = FakeApiServer::new();
    let api = secrets(server.client());
    let apply = |labels: serde_json::Value| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": labels}});
    let cube = PatchParams::apply("cube");
    api.patch(
        "s",
        &cube,
        &Patch::Apply(apply(json!({"a": "1", "b": "2"}))),
    )
    .await
    .expect("apply creates");
    // Someone else adds a label; cube drops `b` from its apply.
    api.patch(
        "s",
        &PatchParams::apply("other"),
        &Patch::Apply(apply(json!({"c": "3"}))),
    )
    .await
    .expect("other manager");
    let got = api
        .patch("s", &cube, &Patch::Apply(apply(json!({"a": "1"}))))
        .await
        .expect("apply again");
    let labels = got.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.keys().collect::<Vec<_>>(),
        ["a", "c"],
        "cube's dropped field is removed, the other manager's stays"
    );
    // Taking over another manager's field needs force.
    let conflict = api
        .patch(
            "s",
            &cube,
            &Patch::Apply(apply(json!({"a": "1", "c": "9"}))),
        )
        .await;
    let e = api_error(conflict.expect_err("conflict"));
    assert_eq!(e.code, 409);
    assert!(e.message.contains("other"), "{}", e.message);
    api.patch(
        "s",
        &cube.clone().force(),
        &Patch::Apply(apply(json!({"a": "1", "c": "9"}))),
    )
    .await
    .expect("forced");
    // An apply without a field manager is invalid.
    let unnamed = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Apply(apply(json!({}))),
        )
        .await;
    assert_eq!(api_error(unnamed.expect_err("no manager")).code, 422);
    // A no-op apply does not bump the resource version.
    let before = server.resource_version();
    api.patch(
        "s",
        &cube.clone().force(),
        &Patch::Apply(apply(json!({"a": "1", "c": "9"}))),
    )
    .await
    .expect("same again");
    assert_eq!(server.resource_version(), before);
}

#[tokio::test]
async fn invalid_objects_are_rejected_like_a_real_apiserver_would() {
    let server = FakeApiServer::new();
    let client = server.client();
    let e = api_error(
        secrets(client.clone())
            .create(&PostParams::default(), &secret("Not_Valid", &[]))
            .await
            .expect_err("bad name"),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(e.message.contains("metadata.name"), "{}", e.message);

    let e = api_error(
        secrets(client.clone())
            .create(
                &PostParams::default(),
                &secret("ok", &[("l", &"x".repeat(64))]),
            )
            .await
            .expect_err("long label"),
    );
    assert!(e.message.contains("metadata.labels"), "{}", e.message);

    let in_missing: Api<Secret> = Api::namespaced(client.clone(), "nowhere");
    let e = api_error(
        in_missing
            .create(&PostParams::default(), &secret("ok", &[]))
            .await
            .expect_err("missing namespace"),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );

    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let no_selector = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {}, "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    }))
    .expect("sts");
    let e = api_error(
        sts.create(&PostParams::default(), &no_selector)
            .await
            .expect_err("empty selector"),
    );
    assert!(e.message.contains("spec.selector"), "{}", e.message);

    let no_image = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "app"}]}}}
    }))
    .expect("sts");
    let e = api_error(
        sts.create(&PostParams::default(), &no_image)
            .await
            .expect_err("no image"),
    );
    assert!(
        e.message.contains("containers[0].image: Required value"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn statefulset_selectors_are_immutable() {
    let server = FakeApiServer::new();
    let sts: Api<StatefulSet> = Api::namespaced(server.client(), "default");
    let object = |label: &str| {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"a": label}},
                "template": {"metadata": {"labels": {"a": label}},
                    "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}})
    };
    let params = PatchParams::apply("cube").force();
    sts.patch("web", &params, &Patch::Apply(object("1")))
        .await
        .expect("create");
    let e = api_error(
        sts.patch("web", &params, &Patch::Apply(object("2")))
            .await
            .expect_err("selector change"),
    );
    assert_eq!(e.code, 422);
    assert!(e.message.contains("Forbidden"), "{}", e.message);
}

#[tokio::test]
async fn lists_select_by_label_and_page() {
    let server = FakeApiServer::new();
    let api = secrets(server.client());
    for (name, tier) in [("a", "web"), ("b", "db"), ("c", "web")] {
        api.create(&PostParams::default(), &secret(name, &[("tier", tier)]))
            .await
            .expect("create");
    }
    let names = |list: kube::api::ObjectList<Secret>| {
        list.items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect::<Vec<_>>()
    };
    let web = api
        .list(&ListParams::default().labels("tier=web"))
        .await
        .expect("list");
    assert_eq!(names(web), ["a", "c"]);
    let not_web = api
        .list(&ListParams::default().labels("tier notin (web)"))
        .await
        .expect("list");
    assert_eq!(names(not_web), ["b"]);
    let page = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    let token = page.metadata.continue_.clone().expect("continue token");
    assert_eq!(names(page), ["a", "b"]);
    let rest = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert!(
        rest.metadata
            .continue_
            .as_ref()
            .is_none_or(String::is_empty)
    );
    assert_eq!(names(rest), ["c"]);
    let e = api_error(
        api.list(&ListParams::default().fields("status.phase=Running"))
            .await
            .expect_err("unsupported field"),
    );
    assert_eq!(e.code, 400);
}

#[tokio::test]
async fn watches_replay_filter_bookmark_and_expire() {
    let server = FakeApiServer::builder()
        .bookmark_interval(Duration::from_millis(20))
        .build();
    let api = secrets(server.client());
    let first = api
        .create(&PostParams::default(), &secret("a", &[("tier", "web")]))
        .await
        .expect("create");
    let from = first.metadata.resource_version.clone().expect("rv");
    api.create(&PostParams::default(), &secret("b", &[("tier", "web")]))
        .await
        .expect("create b");
    // `a` leaves the selection: a watcher of tier=web sees it DELETED.
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "db"}}})),
    )
    .await
    .expect("relabel");

    let mut params = WatchParams::default().labels("tier=web");
    params.bookmarks = true;
    let mut stream = api.watch(&params, &from).await.expect("watch").boxed();
    let mut seen = Vec::new();
    let mut bookmarked = false;
    while seen.len() < 2 || !bookmarked {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("an event in time")
            .expect("no error");
        match event {
            Some(WatchEvent::Added(s)) => {
                seen.push(format!("ADDED {}", s.metadata.name.unwrap_or_default()))
            }
            Some(WatchEvent::Deleted(s)) => {
                seen.push(format!("DELETED {}", s.metadata.name.unwrap_or_default()))
            }
            Some(WatchEvent::Bookmark(_)) => bookmarked = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ADDED b", "DELETED a"]);

    // After a compaction, watching from the old version is 410 Gone.
    server.compact();
    let mut stale = api
        .watch(&WatchParams::default(), &from)
        .await
        .expect("watch")
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stale.try_next()).await {
        Ok(Ok(Some(WatchEvent::Error(e)))) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn a_kube_runtime_watcher_relists_after_410_and_sees_everything() {
    let server = FakeApiServer::new();
    let api = secrets(server.client());
    for i in 0..20 {
        api.create(&PostParams::default(), &secret(&format!("s{i}"), &[]))
            .await
            .expect("create");
    }
    let (store, writer) = kube::runtime::reflector::store::<Secret>();
    let stream = kube::runtime::WatchStreamExt::default_backoff(kube::runtime::watcher(
        api.clone(),
        kube::runtime::watcher::Config::default(),
    ));
    let (relisted_tx, mut relisted) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(
        kube::runtime::reflector(writer, stream).for_each(move |event| {
            if let Ok(kube::runtime::watcher::Event::Init) = event {
                let _ = relisted_tx.send(());
            }
            futures::future::ready(())
        }),
    );
    tokio::time::timeout(Duration::from_secs(5), store.wait_until_ready())
        .await
        .expect("synced in time")
        .expect("synced");
    relisted.recv().await.expect("first list");
    // While the watcher cannot reach the apiserver, another client deletes
    // an object and the log is compacted: the watcher's resume gets 410 and
    // it must relist to see the deletion.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = server.serve(listener);
    let other = Client::try_from(kube::Config::new(url.parse().expect("url"))).expect("client");
    server.set_unreachable(true);
    secrets(other)
        .delete("s3", &DeleteParams::default())
        .await
        .expect("delete");
    server.compact();
    server.set_unreachable(false);
    tokio::time::timeout(Duration::from_secs(10), relisted.recv())
        .await
        .expect("relisted in time")
        .expect("relisted");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.len() != 19 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cache has {}",
            store.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    serving.abort();
}

#[tokio::test]
async fn injected_failures_and_outages() {
    let server = FakeApiServer::new();
    let api = secrets(server.client());
    server.inject(Fault::next(2, 503).on(Method::GET, "/secrets"));
    for _ in 0..2 {
        let e = api_error(
            api.list(&ListParams::default())
                .await
                .expect_err("injected"),
        );
        assert_eq!(e.code, 503);
    }
    api.list(&ListParams::default())
        .await
        .expect("third call succeeds");
    server.inject(Fault::next(1, 422).message("custom rejection"));
    let e = api_error(
        api.list(&ListParams::default())
            .await
            .expect_err("injected"),
    );
    assert_eq!((e.code, e.message.as_str()), (422, "custom rejection"));

    server.set_unreachable(true);
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Service(_)) => {}
        other => panic!("expected a transport error, got {other:?}"),
    }
    server.set_unreachable(false);
    api.list(&ListParams::default())
        .await
        .expect("reachable again");
}

#[tokio::test(start_paused = true)]
async fn latency_delays_every_request() {
    let server = FakeApiServer::new();
    let api = secrets(server.client());
    server.set_latency(Duration::from_secs(3));
    let start = tokio::time::Instant::now();
    api.list(&ListParams::default()).await.expect("list");
    assert!(start.elapsed() >= Duration::from_secs(3));
}

#[tokio::test]
async fn the_statefulset_controller_runs_pods_and_collects_them() {
    let server = FakeApiServer::builder().controllers(true).build();
    let client = server.client();
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let object = |replicas: i32, image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "app", "image": image}]}}}})
    };
    let params = PatchParams::apply("test").force();
    let wait_for = |want: Vec<&'static str>| {
        let pods = pods.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let list = pods.list(&ListParams::default()).await.expect("list");
                let ready: Vec<String> = list
                    .items
                    .iter()
                    .filter(|p| {
                        p.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            })
                    })
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                if ready == want && list.items.len() == want.len() {
                    return list.items;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "pods {ready:?}, want {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    sts.patch("web", &params, &Patch::Apply(object(2, "nginx:1")))
        .await
        .expect("apply");
    let before = wait_for(vec!["web-0", "web-1"]).await;
    assert_eq!(
        before[1].metadata.labels.clone().unwrap_or_default()["apps.kubernetes.io/pod-index"],
        "1"
    );
    sts.patch("web", &params, &Patch::Apply(object(1, "nginx:1")))
        .await
        .expect("scale down");
    let scaled = wait_for(vec!["web-0"]).await;
    assert_eq!(scaled[0].metadata.uid, before[0].metadata.uid, "web-0 kept");
    sts.patch("web", &params, &Patch::Apply(object(1, "nginx:2")))
        .await
        .expect("new template");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rolled = wait_for(vec!["web-0"]).await;
        if rolled[0].metadata.uid != before[0].metadata.uid {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "web-0 not replaced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = sts.get_status("web").await.expect("status");
    assert_eq!(status.status.map(|s| s.replicas), Some(1));
    sts.delete("web", &DeleteParams::background())
        .await
        .expect("delete");
    assert!(
        pods.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn deleting_a_namespace_deletes_what_is_in_it() {
    let server = FakeApiServer::new();
    let client = server.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "team");
    let lease = serde_json::from_value(
        json!({"metadata": {"name": "leader"}, "spec": {"holderIdentity": "me"}}),
    )
    .expect("lease");
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("lease");
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(
        api_error(leases.get("leader").await.expect_err("gone")).code,
        404
    );
}

#[tokio::test]
async fn it_serves_over_tcp_for_clients_with_a_url() {
    let server = FakeApiServer::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = server.serve(listener);
    let config = kube::Config::new(url.parse().expect("url"));
    let client = Client::try_from(config).expect("client");
    let namespaces: Api<Namespace> = Api::all(client);
    let list = namespaces.list(&ListParams::default()).await.expect("list");
    assert_eq!(
        list.items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect::<Vec<_>>(),
        ["default"]
    );
    task.abort();
}
