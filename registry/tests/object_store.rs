//! The same registry semantics over the `object_store` backend (in memory).
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns panic to fail the test

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::*;
use registry::Digest;
use registry::store::{ObjectBackend, Store};

#[tokio::test]
async fn push_and_pull_through_object_store() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Arc::new(object_store::memory::InMemory::new());
    let backend = Arc::new(ObjectBackend::new(memory, "registry"));
    let store = Arc::new(Store::open(dir.path(), backend, 1 << 30).await.unwrap());
    let state = Arc::new(registry::api::AppState {
        automatic_crossmount: false,
        store: store.clone(),
        auth: registry::auth::Auth::disabled(),
        importer: registry::image::Importer::new(
            store.clone(),
            registry::rootfs::RootfsProvider::new(None),
            Default::default(),
            None,
        )
        .unwrap(),
        metrics: registry::metrics::Metrics::unregistered(),
    });
    let router = registry::api::router(state);

    let (config, layer) = (b"{}".as_slice(), vec![7u8; 100_000]);
    push_blob(&router, "o/app", config).await;
    // Chunked, to exercise the local upload file and its move into the store.
    let start = send(
        &router,
        Method::POST,
        "/v2/o/app/blobs/uploads/",
        &[],
        axum::body::Body::empty(),
    )
    .await;
    let location = start.header("location").to_owned();
    send(
        &router,
        Method::PATCH,
        &location,
        &[],
        layer[..50_000].to_vec(),
    )
    .await;
    let digest = Digest::of(&layer);
    let done = send(
        &router,
        Method::PUT,
        &format!("{location}?digest={digest}"),
        &[],
        layer[50_000..].to_vec(),
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED);

    let manifest = image_manifest(config, &[&layer]);
    let put = send(
        &router,
        Method::PUT,
        "/v2/o/app/manifests/latest",
        &[("content-type", OCI_MANIFEST)],
        manifest.clone(),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(
        get(&router, "/v2/o/app/manifests/latest")
            .await
            .body
            .as_ref(),
        manifest.as_slice()
    );
    assert_eq!(
        get(&router, &format!("/v2/o/app/blobs/{digest}"))
            .await
            .body
            .as_ref(),
        layer.as_slice()
    );
    let part = send(
        &router,
        Method::GET,
        &format!("/v2/o/app/blobs/{digest}"),
        &[("range", "bytes=10-19")],
        axum::body::Body::empty(),
    )
    .await;
    assert_eq!(part.body.as_ref(), &layer[10..20]);
    assert_eq!(
        get(&router, "/v2/_catalog").await.json()["repositories"],
        serde_json::json!(["o/app"])
    );
    assert_eq!(
        get(&router, "/v2/o/app/tags/list").await.json()["tags"],
        serde_json::json!(["latest"])
    );

    // Droplet import works on this backend too.
    let droplet = droplet(&[("run.sh", b"x")]);
    let hash = sha1_hex(&droplet);
    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/cloudfoundry/g/droplets?hash={hash}"),
        &[],
        droplet,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );

    // Over 8 MiB: stored with a multipart upload.
    let large: Vec<u8> = (0..9_000_000u32).map(|i| (i % 253) as u8).collect();
    let large_digest = push_blob(&router, "o/app", &large).await;
    let back = get(&router, &format!("/v2/o/app/blobs/{large_digest}")).await;
    assert_eq!(Digest::of(&back.body), large_digest);

    let report = registry::gc::collect(&store, std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(
        report.deleted,
        vec![large_digest],
        "only the unreferenced blob goes"
    );
}
