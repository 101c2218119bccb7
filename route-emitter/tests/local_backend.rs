//! The route emitter over the local backend: an LRP desired with routes is
//! registered with gorouter at the instances' real addresses.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{NEVER, NatsServer, emit, router, until};
use opi::Scheduler;
use opi::model::{
    DesiredLrp, HealthCheck, HealthCheckType, LrpId, LrpLifecycle, Named, Route, Routes,
};
use opi::routing::RouteSource;
use opi_local::droplet::FileDroplets;
use opi_local::{LocalConfig, LocalScheduler};

const DROPLET_GUID: &str = "droplet-1";
const DROPLET_HASH: &str = "abc123";

/// A droplet whose app serves HTTP on $PORT.
fn write_droplet(dir: &std::path::Path) {
    let file = std::fs::File::create(dir.join(format!("{DROPLET_GUID}.tgz"))).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, body) in [
        ("app/index.html", "hello\n"),
        ("app/serve", "exec busybox httpd -f -p 127.0.0.1:$PORT -h ."),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, path, body.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

fn lrp(hostnames: &[&str]) -> DesiredLrp {
    let named = |guid: &str, name: &str| Named {
        guid: guid.into(),
        name: name.into(),
    };
    DesiredLrp {
        id: LrpId::new("app-guid", "v1"),
        process_type: "web".into(),
        app: named("app-guid", "hello"),
        space: named("space-guid", "dev"),
        org: named("org-guid", "acme"),
        instances: 2,
        memory_mb: 64,
        disk_mb: 128,
        cpu_weight: 10,
        ports: vec![8080],
        routes: Routes {
            cf_router: hostnames
                .iter()
                .map(|h| Route {
                    hostname: h.to_string(),
                    port: 8080,
                })
                .collect(),
            other: BTreeMap::new(),
        },
        environment: Default::default(),
        health_check: HealthCheck {
            kind: HealthCheckType::Port,
            http_endpoint: String::new(),
            timeout_ms: 1000,
        },
        start_timeout_ms: 20_000,
        lifecycle: LrpLifecycle::Buildpack {
            droplet_guid: DROPLET_GUID.into(),
            droplet_hash: DROPLET_HASH.into(),
            start_command: "./serve".into(),
        },
        annotation: "1".into(),
        user_defined_annotations: BTreeMap::new(),
        volume_mounts: Vec::new(),
        placement_tags: Vec::new(),
        egress_rules: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_lrps_on_the_local_backend_reach_gorouter() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let (_client, mut register, mut unregister) = router(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let droplets = dir.path().join("droplets");
    std::fs::create_dir_all(&droplets).unwrap();
    write_droplet(&droplets);
    let scheduler = LocalScheduler::start(
        LocalConfig {
            root: dir.path().join("root"),
            host_exec_image: None,
        },
        Arc::new(FileDroplets::new(droplets)),
    )
    .await
    .unwrap();
    let emitter = emit(&server, Arc::new(scheduler.clone()), NEVER);

    let lrp = lrp(&["hello.example.com", "www.example.com"]);
    scheduler.desire(lrp.clone()).await.unwrap();
    let uris = ["hello.example.com", "www.example.com"];
    let mut registered = BTreeMap::new();
    while registered.len() < 2 {
        // In whatever order the instances became ready.
        let message = until(&mut register, "for both instances", |_| true).await;
        assert_eq!(message.uris, uris);
        assert_eq!(message.app, "app-guid");
        assert_eq!(message.host, "127.0.0.1");
        let index: u32 = message.private_instance_index.parse().unwrap();
        registered.insert(index, message);
    }
    // The addresses are where the instances really listen.
    let endpoints = scheduler.endpoints();
    for endpoint in &endpoints {
        let message = &registered[&endpoint.index];
        assert_eq!(message.port, endpoint.port);
        assert_eq!(message.private_instance_id, endpoint.instance_guid);
        let body = opi::http::http_client_builder()
            .build()
            .unwrap()
            .get(format!(
                "http://{}:{}/index.html",
                message.host, message.port
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "hello\n");
    }

    // Restarting instance 1 unregisters its old incarnation at once.
    scheduler.stop_instance(&lrp.id, 1).await.unwrap();
    let gone = until(&mut unregister, "for the restarted instance", |m| {
        m.private_instance_id == registered[&1].private_instance_id
    })
    .await;
    assert_eq!(gone.port, registered[&1].port);
    let back = until(&mut register, "for the new incarnation", |m| {
        m.private_instance_index == "1"
            && m.private_instance_id != registered[&1].private_instance_id
    })
    .await;
    assert_eq!(back.uris, uris);

    // Stopping the LRP unregisters every instance.
    scheduler.stop(&lrp.id).await.unwrap();
    let mut left: Vec<String> = Vec::new();
    for _ in 0..2 {
        let m = until(&mut unregister, "for the stopped LRP", |m| m.uris == uris).await;
        left.push(m.private_instance_index);
    }
    left.sort();
    assert_eq!(left, ["0", "1"]);
    emitter.stop().await;
    scheduler.shutdown().await;
}
