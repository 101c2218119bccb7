//! Garbage collection: unreferenced blobs go, referenced and young ones stay.
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns panic to fail the test

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;
use registry::{Config, Digest};

#[tokio::test]
async fn collects_only_unreferenced_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let (router, state) = registry(Config::new(dir.path())).await;
    let (config, layer, orphan) = (
        b"{}".as_slice(),
        b"kept layer".as_slice(),
        b"orphan".as_slice(),
    );
    push_blob(&router, "app", config).await;
    push_blob(&router, "app", layer).await;
    push_blob(&router, "app", orphan).await;
    let manifest = image_manifest(config, &[layer]);
    let put = send(
        &router,
        Method::PUT,
        "/v2/app/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        manifest.clone(),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED);

    // Everything is young: nothing goes.
    let report = registry::gc::collect(&state.store, Duration::from_secs(3600), false)
        .await
        .unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");

    // A dry run reports without deleting.
    let dry = registry::gc::collect(&state.store, Duration::ZERO, true)
        .await
        .unwrap();
    assert_eq!(dry.deleted, vec![Digest::of(orphan)]);
    assert_eq!(
        get(&router, &format!("/v2/app/blobs/{}", Digest::of(orphan)))
            .await
            .status,
        StatusCode::OK
    );

    let report = registry::gc::collect(&state.store, Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(report.deleted, vec![Digest::of(orphan)]);
    assert_eq!(report.freed_bytes, orphan.len() as u64);
    assert_eq!(
        get(&router, &format!("/v2/app/blobs/{}", Digest::of(orphan)))
            .await
            .code(),
        "BLOB_UNKNOWN"
    );
    assert_eq!(
        get(&router, &format!("/v2/app/blobs/{}", Digest::of(layer)))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get(&router, "/v2/app/manifests/v1").await.status,
        StatusCode::OK
    );

    // Once the manifest is gone, its blobs (and the manifest content) go too.
    let delete = send(
        &router,
        Method::DELETE,
        &format!("/v2/app/manifests/{}", Digest::of(&manifest)),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(delete.status, StatusCode::ACCEPTED);
    let report = registry::gc::collect(&state.store, Duration::ZERO, false)
        .await
        .unwrap();
    let mut expected = vec![Digest::of(config), Digest::of(layer), Digest::of(&manifest)];
    expected.sort();
    assert_eq!(report.deleted, expected);
    assert!(
        state
            .store
            .backend()
            .list("blobs")
            .await
            .unwrap()
            .is_empty()
    );
}

/// Sets a file's modification time into the past.
fn age(path: &std::path::Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - by)
        .unwrap();
}

#[tokio::test]
async fn checking_a_blob_protects_it_from_collection() {
    let dir = tempfile::tempdir().unwrap();
    let (router, state) = registry(Config::new(dir.path())).await;
    let (checked, forgotten) = (b"checked".as_slice(), b"forgotten".as_slice());
    for data in [checked, forgotten] {
        let digest = push_blob(&router, "app", data).await;
        let hex = digest.hex();
        age(
            &dir.path().join(format!("blobs/sha256/{}/{hex}", &hex[..2])),
            Duration::from_secs(7200),
        );
        age(
            &dir.path()
                .join(format!("repositories/app/_layers/sha256/{hex}")),
            Duration::from_secs(7200),
        );
    }
    // A client checks one blob before referencing it in a manifest.
    let head = send(
        &router,
        Method::HEAD,
        &format!("/v2/app/blobs/{}", Digest::of(checked)),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);

    let report = registry::gc::collect(&state.store, Duration::from_secs(3600), false)
        .await
        .unwrap();
    assert_eq!(report.deleted, vec![Digest::of(forgotten)]);
    assert_eq!(
        get(&router, &format!("/v2/app/blobs/{}", Digest::of(checked)))
            .await
            .status,
        StatusCode::OK
    );
}
