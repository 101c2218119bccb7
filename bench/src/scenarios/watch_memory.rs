//! `watch-memory`: resident memory of `cube opi --backend k8s` caching 10,000
//! app pods from its pod watch, per 1,000 instances (against the same process
//! on an empty cluster), and the peak during a forced relist (410 Gone after
//! the apiserver compacts its history) against the steady state.

use std::time::{Duration, Instant};

use anyhow::ensure;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, PodStatus};
use kube::api::{Api, Patch, PatchParams, PostParams};
use opi::model::validate;
use opi::model::wire::DesireLrpRequest;

use super::fake_cluster::{FakeCluster, K8sOpi};
use crate::harness::{Row, cube_binary, report};

const PODS: usize = 10_000;

/// Realistic app pods: the pod template OPI itself generates, plus the
/// metadata and status a kubelet adds.
async fn fill(cluster: &FakeCluster) -> anyhow::Result<()> {
    let client = cluster.server.client();
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "acme-dev"}
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client, "acme-dev");
    let config = opi_k8s::Config::default();
    let created: Vec<anyhow::Result<()>> = futures::stream::iter(0..PODS / 100)
        .map(|app| {
            let pods = pods.clone();
            let config = config.clone();
            async move {
                let request: DesireLrpRequest = serde_json::from_value(serde_json::json!({
                    "guid": format!("{:08x}-0000-4000-8000-{:012x}", app, app),
                    "version": "00000000-0000-4000-8000-000000000001",
                    "app_name": format!("app-{app}"), "space_name": "dev", "organization_name": "acme",
                    "space_guid": "5c0b3a2e-1d4f-4e6a-8b7c-9d0e1f2a3b4c",
                    "instances": 100, "memory_mb": 256, "disk_mb": 1024, "cpu_weight": 3,
                    "health_check_type": "http", "health_check_http_endpoint": "/health", "ports": [8080],
                    "routes": {"cf-router": [{"hostname": format!("app-{app}.example.com"), "port": 8080}]},
                    "environment": {"A": "b"}, "last_updated": "1700000000.0",
                    "lifecycle": {"docker_lifecycle": {"image": "docker.io/library/nginx:1.27", "command": []}}
                }))?;
                let pg = format!("{}-{}", request.guid, request.version);
                let lrp = validate::desire(&pg, request).map_err(|e| anyhow::anyhow!("{e}"))?;
                let placement = opi_k8s::translate::Placement {
                    namespace: "acme-dev".into(),
                    name: format!("app-{app}"),
                    superseded_versions: Vec::new(),
                };
                let set = opi_k8s::translate::lrp::statefulset(&lrp, &placement, &config);
                let template = set.spec.unwrap_or_default().template;
                for index in 0..100 {
                    let mut pod = Pod {
                        metadata: template.metadata.clone().unwrap_or_default(),
                        spec: template.spec.clone(),
                        status: None,
                    };
                    let name = format!("app-{app}-{index}");
                    pod.metadata.name = Some(name.clone());
                    pod.metadata.namespace = Some("acme-dev".into());
                    pod.metadata
                        .labels
                        .get_or_insert_with(Default::default)
                        .insert("apps.kubernetes.io/pod-index".into(), index.to_string());
                    pods.patch(&name, &PatchParams::apply("kube-controller-manager").force(), &Patch::Apply(&pod))
                        .await?;
                    let status: PodStatus = serde_json::from_value(serde_json::json!({
                        "phase": "Running",
                        "podIP": format!("10.1.{}.{}", app % 250, index),
                        "hostIP": "10.0.0.1",
                        "startTime": "2026-11-23T10:00:00Z",
                        "conditions": [
                            {"type": "PodScheduled", "status": "True"},
                            {"type": "Initialized", "status": "True"},
                            {"type": "ContainersReady", "status": "True"},
                            {"type": "Ready", "status": "True"}
                        ],
                        "containerStatuses": [{
                            "name": "opi", "ready": true, "restartCount": 0, "started": true,
                            "image": "docker.io/library/nginx:1.27",
                            "imageID": "docker.io/library/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                            "containerID": format!("containerd://{:064x}", app * 1000 + index),
                            "state": {"running": {"startedAt": "2026-11-23T10:00:01Z"}}
                        }]
                    }))?;
                    let patch = serde_json::json!({"status": status});
                    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                }
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for result in created {
        result?;
    }
    Ok(())
}

async fn settle(opi: &K8sOpi) -> u64 {
    // Let allocations settle, then take the lower of a few readings.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut low = u64::MAX;
    for _ in 0..5 {
        low = low.min(opi.rss());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    low
}

pub async fn run() -> anyhow::Result<()> {
    let cube = cube_binary()?;
    let dir = tempfile::tempdir()?;

    let empty = FakeCluster::start(dir.path(), "empty", false).await?;
    let baseline_opi = K8sOpi::start(&cube, &empty, &[]).await?;
    let baseline = settle(&baseline_opi).await;
    drop(baseline_opi);

    let full = FakeCluster::start(dir.path(), "full", false).await?;
    fill(&full).await?;
    ensure!(
        full.server.list("pods", Some("acme-dev")).len() == PODS,
        "pods not created"
    );
    let opi = K8sOpi::start(&cube, &full, &[]).await?;
    let steady = settle(&opi).await;
    let instances = opi::http::OpiClient::new(&opi.url)?;
    let _ = instances.list().await?;

    // Force a relist: drop the watches, move the resource version on and
    // compact the history, so resuming gets 410 Gone and lists again. A
    // watcher that resumed before the compaction does not relist: retry.
    let count_lists = || {
        full.server
            .requests()
            .iter()
            .filter(|r| {
                r.method == "GET" && r.path.ends_with("/pods") && !r.query.contains("watch=true")
            })
            .count()
    };
    let lists_before = count_lists();
    let secrets =
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(full.server.client(), "acme-dev");
    let started = Instant::now();
    let mut peak = steady;
    let mut attempt = 0;
    // Until the relist has ended: a LIST happened and no page followed for
    // 2 s (the fake apiserver copies the whole store for each page, so a
    // page can take a while).
    let mut last_change = (lists_before, Instant::now());
    while started.elapsed() < Duration::from_secs(120) {
        let lists = count_lists();
        if lists != last_change.0 {
            last_change = (lists, Instant::now());
        } else if lists > lists_before && last_change.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        if lists == lists_before && attempt < 20 {
            attempt += 1;
            full.server.close_watches();
            let bump: k8s_openapi::api::core::v1::Secret =
                serde_json::from_value(serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": format!("bump-{attempt}"), "namespace": "acme-dev"}
                }))?;
            secrets.create(&PostParams::default(), &bump).await?;
            full.server.compact();
        }
        for _ in 0..40 {
            peak = peak.max(opi.rss());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let lists_after = count_lists();
    ensure!(opi.ready().await, "OPI is not ready after the relist");
    ensure!(
        lists_after > lists_before,
        "the forced relist did not happen ({attempt} attempts)"
    );
    let after = settle(&opi).await;

    let per_thousand = (steady.saturating_sub(baseline)) as f64 / (PODS as f64 / 1000.0) / 1e6;
    let relist_ratio = peak as f64 / steady as f64;
    report(
        "watch-memory",
        "target",
        &[
            Row {
                what: "RSS, empty cluster".into(),
                cube: format!("{:.1} MB", baseline as f64 / 1e6),
                peer: String::new(),
            },
            Row {
                what: format!("RSS, {PODS} pods cached"),
                cube: format!("{:.1} MB", steady as f64 / 1e6),
                peer: String::new(),
            },
            Row {
                what: "per 1,000 instances".into(),
                cube: format!("{per_thousand:.2} MB"),
                peer: "≤ 5 MB".into(),
            },
            Row {
                what: format!(
                    "relist peak ({} list calls)",
                    lists_after.saturating_sub(lists_before)
                ),
                cube: format!("{:.1} MB", peak as f64 / 1e6),
                peer: format!("≤ {:.1} MB", 2.0 * steady as f64 / 1e6),
            },
            Row {
                what: "after the relist".into(),
                cube: format!("{:.1} MB", after as f64 / 1e6),
                peer: String::new(),
            },
        ],
        &format!(
            "{per_thousand:.2} MB per 1,000 instances, relist peak {relist_ratio:.2} × steady; ratio {relist_ratio:.2}"
        ),
    );
    Ok(())
}
