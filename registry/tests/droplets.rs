//! Droplet import through the API: image shape, idempotence, hostile input,
//! download from a (local) Cloud Controller.
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns panic to fail the test

mod common;

use std::io::Read;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;
use registry::rootfs::RootfsSource;
use registry::{Config, Digest};

async fn with_rootfs() -> (tempfile::TempDir, axum::Router, registry::api::Shared) {
    let dir = tempfile::tempdir().unwrap();
    let layout = busybox_layout(dir.path());
    let mut config = Config::new(dir.path().join("data"));
    config.rootfs = Some(RootfsSource::Layout(layout));
    let (router, state) = registry(config).await;
    (dir, router, state)
}

const GUID: &str = "cloudfoundry/5a1b4d3c-0000-4000-8000-00000000abcd";

#[tokio::test]
async fn import_makes_an_image_of_rootfs_plus_droplet() {
    let (_dir, router, _) = with_rootfs().await;
    let droplet = droplet(&[("run.sh", b"#!/bin/sh\necho hello\n")]);
    let hash = sha1_hex(&droplet);
    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets?hash={hash}"),
        &[],
        droplet.clone(),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let digest = reply.json()["digest"].as_str().unwrap().to_owned();
    assert_eq!(reply.json()["image"], format!("{GUID}:{hash}"));

    let manifest = get(&router, &format!("/v2/{GUID}/manifests/{hash}")).await;
    assert_eq!(manifest.status, StatusCode::OK);
    assert_eq!(manifest.header("docker-content-digest"), digest);
    let manifest = manifest.json();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "rootfs layer + droplet layer");

    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = get(&router, &format!("/v2/{GUID}/blobs/{config_digest}"))
        .await
        .json();
    assert_eq!(config["config"]["User"], "vcap");
    assert_eq!(config["config"]["WorkingDir"], "/home/vcap/app");
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"PATH=/bin") && env.contains(&"HOME=/home/vcap/app"),
        "{env:?}"
    );
    assert!(!env.contains(&"HOME=/root"), "{env:?}");
    assert_eq!(
        config["config"]["Labels"]["org.cloudfoundry.start-command"],
        "./app/run.sh"
    );
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);

    // The droplet layer holds the app under home/vcap, owned by vcap.
    let layer_digest = layers[1]["digest"].as_str().unwrap();
    let layer = get(&router, &format!("/v2/{GUID}/blobs/{layer_digest}")).await;
    assert_eq!(Digest::of(&layer.body).to_string(), layer_digest);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.body.as_ref()));
    let mut found = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("home/vcap/app/run.sh") {
            assert_eq!(entry.header().uid().unwrap(), 2000);
            assert_eq!(entry.header().gid().unwrap(), 2000);
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            assert!(text.contains("echo hello"));
            found = true;
        }
    }
    assert!(found);
}

#[tokio::test]
async fn importing_twice_is_a_no_op() {
    let (_dir, router, _) = with_rootfs().await;
    let droplet = droplet(&[("a", b"1")]);
    let hash = sha1_hex(&droplet);
    let uri = format!("/v2/{GUID}/droplets?hash={hash}");
    let first = send(&router, Method::POST, &uri, &[], droplet.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    // The second body is not even read: garbage does not matter.
    let second = send(&router, Method::POST, &uri, &[], b"ignored".to_vec()).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.json()["digest"], second.json()["digest"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_of_one_droplet_convert_it_once() {
    use registry::image::DropletSource;
    use registry::{Name, Tag};

    let (_dir, _router, state) = with_rootfs().await;
    let droplet = droplet(&[("run.sh", b"same")]);
    let (name, hash) = (
        Name::parse(GUID).unwrap(),
        Tag::parse(&sha1_hex(&droplet)).unwrap(),
    );

    // Import A streams its body from a channel the test controls; it reports
    // when it starts reading.
    let (data_tx, data_rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(1);
    let (polled_tx, polled_rx) = tokio::sync::oneshot::channel::<()>();
    let mut polled_tx = Some(polled_tx);
    let body = futures::stream::unfold(data_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let body = futures::StreamExt::inspect(body, move |_| {
        if let Some(tx) = polled_tx.take() {
            let _ = tx.send(());
        }
    });
    let a = {
        let (state, name, hash) = (state.clone(), name.clone(), hash.clone());
        let body = futures::StreamExt::boxed(body);
        tokio::spawn(async move {
            state
                .importer
                .import(&name, &hash, DropletSource::Body(body))
                .await
        })
    };
    data_tx
        .send(Ok(bytes::Bytes::from(droplet[..10].to_vec())))
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), polled_rx)
        .await
        .unwrap()
        .unwrap();

    // Import B of the same droplet must wait for A rather than convert again.
    let b = {
        let (state, name, hash, droplet) =
            (state.clone(), name.clone(), hash.clone(), droplet.clone());
        let body =
            futures::StreamExt::boxed(futures::stream::iter([Ok(bytes::Bytes::from(droplet))]));
        tokio::spawn(async move {
            state
                .importer
                .import(&name, &hash, DropletSource::Body(body))
                .await
        })
    };
    let mut waited = false;
    for _ in 0..1000 {
        if state.importer.in_flight() == 2 {
            waited = true;
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        waited,
        "B never queued behind A (in flight: {})",
        state.importer.in_flight()
    );
    assert!(!b.is_finished(), "B finished while A was still reading");

    data_tx
        .send(Ok(bytes::Bytes::from(droplet[10..].to_vec())))
        .await
        .unwrap();
    drop(data_tx);
    let a = a.await.unwrap().unwrap();
    let b = b.await.unwrap().unwrap();
    assert!(a.created && !b.created, "{a:?} {b:?}");
    assert_eq!(a.digest, b.digest);
    assert_eq!(state.importer.in_flight(), 0);
}

#[tokio::test]
async fn hostile_droplets_are_refused_and_nothing_is_published() {
    let (_dir, router, state) = with_rootfs().await;
    let mut evil = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    evil.append_link(&mut header, "app/passwd", "../../../etc/passwd")
        .unwrap();
    let evil = evil.into_inner().unwrap().finish().unwrap();

    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets?hash=h1"),
        &[],
        evil,
    )
    .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::BAD_REQUEST, "DROPLET_INVALID")
    );
    assert!(
        reply.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("leaves the droplet root")
    );
    assert_eq!(
        get(&router, &format!("/v2/{GUID}/manifests/h1"))
            .await
            .code(),
        "MANIFEST_UNKNOWN"
    );

    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets?hash=h2"),
        &[],
        b"not a tgz".to_vec(),
    )
    .await;
    assert_eq!(reply.code(), "DROPLET_INVALID");

    // The hash must match when it looks like a sha1 or sha256.
    let good = droplet(&[("a", b"1")]);
    let wrong = "0".repeat(40);
    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets?hash={wrong}"),
        &[],
        good,
    )
    .await;
    assert_eq!(reply.code(), "DIGEST_INVALID");
    assert_eq!(
        get(&router, &format!("/v2/{GUID}/manifests/{wrong}"))
            .await
            .code(),
        "MANIFEST_UNKNOWN"
    );

    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(reply.code(), "MANIFEST_INVALID");
    let reply = send(
        &router,
        Method::POST,
        "/v2/Bad/droplets?hash=x",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(reply.code(), "NAME_INVALID");

    // Only the rootfs layer (copied at first use) is in the store: nothing of
    // a refused droplet was kept.
    let blobs = state.store.backend().list("blobs").await.unwrap();
    assert_eq!(blobs.len(), 1, "the rootfs layer only: {blobs:?}");
    assert!(blobs[0].size > 500_000, "busybox layer: {blobs:?}");
}

#[tokio::test]
async fn gzip_bombs_stop_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.droplet_limits.max_unpacked = 1 << 20;
    config.droplet_limits.max_compressed = 100 << 10;
    let (router, _) = registry(config).await;
    // Each entry is under the limit; together they unpack far past it.
    let zeros = vec![0u8; 512 << 10];
    let names: Vec<String> = (0..32).map(|i| format!("zeros-{i}")).collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), zeros.as_slice()))
        .collect();
    let bomb = droplet(&files);
    assert!(bomb.len() < 100 << 10);
    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets?hash=bomb"),
        &[],
        bomb,
    )
    .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID")
    );
    let message = reply.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("unpacks to more than"), "{message}");

    // A declared Content-Length over the limit is refused before reading.
    let big = vec![0u8; 200 << 10];
    let headers = [("content-length", "204800")];
    let uri = format!("/v2/{GUID}/droplets?hash=big");
    let reply = send(&router, Method::POST, &uri, &headers, big).await;
    assert_eq!(reply.code(), "SIZE_INVALID");
    let message = reply.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("204800 bytes"), "{message}");
}

#[tokio::test]
async fn import_by_uri_downloads_from_cloud_controller() {
    let droplet = droplet(&[("run.sh", b"echo from cc\n")]);
    let hash = sha1_hex(&droplet);
    // A stand-in Cloud Controller on 127.0.0.1 that serves the droplet behind Basic auth.
    let served = droplet.clone();
    let cc = axum::Router::new().route(
        "/internal/v4/droplets/{guid}/download",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let served = served.clone();
            async move {
                // "cc:secret" in base64.
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some("Basic Y2M6c2VjcmV0")
                {
                    return (StatusCode::UNAUTHORIZED, Vec::new());
                }
                (StatusCode::OK, served)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, cc).await });

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.cc_url = Some(format!("http://cc:secret@{addr}"));
    let (router, _) = registry(config).await;
    let json = [("content-type", "application/json")];

    let body = serde_json::json!({"uri": "/internal/v4/droplets/abc/download"}).to_string();
    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets?hash={hash}"),
        &json,
        body,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );

    let elsewhere = serde_json::json!({"uri": "http://127.0.0.2:1/droplet"}).to_string();
    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets?hash=other"),
        &json,
        elsewhere,
    )
    .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::FORBIDDEN, "DENIED")
    );

    let missing = serde_json::json!({"uri": "/nothing/here"}).to_string();
    let reply = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets?hash=other"),
        &json,
        missing,
    )
    .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::BAD_GATEWAY, "UPSTREAM")
    );

    let garbage = send(
        &router,
        Method::POST,
        &format!("/v2/{GUID}/droplets?hash=other"),
        &json,
        "{\"url\":1}",
    )
    .await;
    assert_eq!(garbage.code(), "DROPLET_INVALID");
}
