//! `opi-desire`: 10,000 desires over OPI's HTTP API, 90 concurrent, with the
//! Kubernetes backend on the fake apiserver; the peer, in the same run, applies
//! the same objects (env Secret + StatefulSet) directly with kube to a second,
//! fresh fake apiserver at the same concurrency.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams};
use opi::model::wire::DesireLrpRequest;
use opi::model::{DesiredLrp, validate};

use super::fake_cluster::{FakeCluster, K8sOpi};
use crate::harness::{Row, cube_binary, latencies, ms, report, timed_all};

const DESIRES: usize = 10_000;
const CONCURRENCY: usize = 90;

fn request(i: usize) -> DesireLrpRequest {
    let body = serde_json::json!({
        "guid": format!("{:08x}-0000-4000-8000-{:012x}", i, i),
        "version": "00000000-0000-4000-8000-000000000001",
        "process_type": "web",
        "app_guid": format!("{:08x}-0000-4000-8000-{:012x}", i, i),
        "app_name": format!("app-{i}"),
        "space_guid": "5c0b3a2e-1d4f-4e6a-8b7c-9d0e1f2a3b4c",
        "space_name": "dev",
        "organization_guid": "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b",
        "organization_name": "acme",
        "environment": {"GREETING": "hello"},
        "instances": 1,
        "memory_mb": 64,
        "disk_mb": 256,
        "cpu_weight": 1,
        "health_check_type": "port",
        "ports": [8080],
        "routes": {"cf-router": [{"hostname": format!("app-{i}.example.com"), "port": 8080}]},
        "last_updated": "1700000000.0",
        "lifecycle": {"docker_lifecycle": {"image": "docker.io/library/busybox:1.36", "command": []}}
    });
    let mut request: DesireLrpRequest =
        serde_json::from_value(body).unwrap_or_else(|_| unreachable!());
    request.process_guid = format!("{}-{}", request.guid, request.version);
    request
}

async fn through_opi(
    opi: &K8sOpi,
    requests: &[DesireLrpRequest],
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let client = opi::http::OpiClient::new(&opi.url)?;
    Ok(timed_all(requests, CONCURRENCY, |request| {
        let client = client.clone();
        async move { client.desire(request).await }
    })
    .await?)
}

async fn direct(
    cluster: &FakeCluster,
    lrps: &[DesiredLrp],
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let client = cluster.client().await?;
    let config = opi_k8s::Config::default();
    let namespace_name = "acme-dev";
    let params = PatchParams::apply("cube").force();
    let namespace =
        opi_k8s::translate::namespace::namespace(namespace_name, &lrps[0].space, &lrps[0].org);
    Api::<Namespace>::all(client.clone())
        .patch(namespace_name, &params, &Patch::Apply(&namespace))
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace_name);
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace_name);
    let shared = Arc::new((secrets, sets, params, config));
    Ok(timed_all(lrps, CONCURRENCY, |lrp| {
        let shared = shared.clone();
        async move {
            let (secrets, sets, params, config) = &*shared;
            let placement = opi_k8s::translate::Placement {
                namespace: namespace_name.to_owned(),
                name: opi_k8s::names::statefulset_name(
                    &lrp.app.name,
                    &lrp.process_type,
                    &lrp.id.guid,
                ),
                superseded_versions: Vec::new(),
            };
            let secret = opi_k8s::translate::lrp::env_secret(lrp, &placement);
            let set = opi_k8s::translate::lrp::statefulset(lrp, &placement, config);
            secrets
                .patch(
                    &opi_k8s::translate::env_secret_name(&placement.name),
                    params,
                    &Patch::Apply(&secret),
                )
                .await?;
            sets.patch(&placement.name, params, &Patch::Apply(&set))
                .await?;
            Ok::<(), kube::Error>(())
        }
    })
    .await?)
}

pub async fn run() -> anyhow::Result<()> {
    let cube = cube_binary()?;
    let dir = tempfile::tempdir()?;
    let requests: Vec<DesireLrpRequest> = (0..DESIRES).map(request).collect();
    let lrps: Vec<DesiredLrp> = requests
        .iter()
        .map(|r| validate::desire(&r.process_guid, r.clone()).map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<anyhow::Result<_>>()?;

    let cluster = FakeCluster::start(dir.path(), "opi", false).await?;
    let opi = K8sOpi::start(&cube, &cluster, &[]).await?;
    let (opi_wall, mut opi_samples) = through_opi(&opi, &requests).await?;
    ensure!(
        cluster.server.list("statefulsets", Some("acme-dev")).len() == DESIRES,
        "OPI did not create {DESIRES} StatefulSets"
    );
    drop(opi);

    let peer = FakeCluster::start(dir.path(), "direct", false).await?;
    let (direct_wall, mut direct_samples) = direct(&peer, &lrps).await?;
    ensure!(
        peer.server.list("statefulsets", Some("acme-dev")).len() == DESIRES,
        "the direct peer did not create {DESIRES} StatefulSets"
    );

    let opi_rate = DESIRES as f64 / opi_wall.as_secs_f64();
    let direct_rate = DESIRES as f64 / direct_wall.as_secs_f64();
    let opi_latency = latencies(&mut opi_samples);
    let direct_latency = latencies(&mut direct_samples);
    let ratio = opi_rate / direct_rate;
    report(
        "opi-desire",
        "kube direct apply",
        &[
            Row {
                what: format!("{DESIRES} desires, {CONCURRENCY} concurrent"),
                cube: format!("{opi_rate:.0} /s"),
                peer: format!("{direct_rate:.0} /s"),
            },
            Row {
                what: "latency p50 / p99".into(),
                cube: format!("{} / {}", ms(opi_latency.p50), ms(opi_latency.p99)),
                peer: format!("{} / {}", ms(direct_latency.p50), ms(direct_latency.p99)),
            },
        ],
        &format!(
            "{opi_rate:.0} desires/s, p99 {} vs direct {direct_rate:.0}/s; ratio {ratio:.2}",
            ms(opi_latency.p99)
        ),
    );
    Ok(())
}
