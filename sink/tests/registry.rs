//! The Sink makes sure Cube's registry holds a droplet's image before it
//! desires the app: HEAD the manifest, import from CC's droplet_uri when
//! missing — against the real registry and a stand-in CC serving the droplet.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sink::registry::{Ensured, RegistryClient};
use sink::translate::DropletRef;

fn droplet() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let body = b"#!/bin/sh\nexec ./server\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, "app/run", &body[..]).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_missing_image_is_imported_once_then_found() {
    // Stand-in CC: serves the droplet and counts downloads.
    let downloads = Arc::new(AtomicUsize::new(0));
    let counter = downloads.clone();
    let body = droplet();
    let cc = serve(axum::Router::new().route(
        "/internal/v2/droplets/{guid}/{hash}/download",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { body }
        }),
    ))
    .await;

    // The real registry, allowed to fetch from that CC.
    let dir = tempfile::tempdir().unwrap();
    let mut config = registry::Config::new(dir.path());
    config.cc_url = Some(cc.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_url = format!("http://{}", listener.local_addr().unwrap());
    let service = cube_runtime::Service::new(cube_runtime::Shutdown::new());
    tokio::spawn(registry::run(config, listener, service));

    let http = opi::http::http_client_builder().build().unwrap();
    let client = RegistryClient::new(reqwest::Url::parse(&registry_url).unwrap(), http.clone());
    let droplet = DropletRef {
        guid: "app-guid-1".into(),
        hash: "v7".into(),
        uri: format!("{cc}/internal/v2/droplets/app-guid-1/v7/download"),
    };
    // The registry may still be starting.
    let mut first = None;
    for _ in 0..100 {
        match client.ensure(&droplet).await {
            Ok(done) => {
                first = Some(done);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    assert_eq!(first, Some(Ensured::Imported));
    assert_eq!(client.ensure(&droplet).await.unwrap(), Ensured::Present);
    assert_eq!(downloads.load(Ordering::SeqCst), 1, "imported once");
    let manifest = http
        .get(format!(
            "{registry_url}/v2/cloudfoundry/app-guid-1/manifests/v7"
        ))
        .send()
        .await
        .unwrap();
    assert!(manifest.status().is_success());

    // A droplet CC does not have: a clear error naming it, nothing stored.
    let missing = DropletRef {
        guid: "app-guid-2".into(),
        hash: "v1".into(),
        uri: format!("{cc}/nope"),
    };
    let error = client.ensure(&missing).await.unwrap_err().to_string();
    assert!(error.contains("app-guid-2:v1"), "{error}");
    assert!(
        client.ensure(&missing).await.is_err(),
        "still missing after a failed import"
    );
}
