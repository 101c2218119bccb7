//! Real OCI clients against a served registry on 127.0.0.1: skopeo pulls a
//! droplet image and round-trips an image; oras pushes and pulls an artifact.
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns panic to fail the test

mod common;

use std::io::Read;

use common::*;
use registry::Config;
use registry::rootfs::RootfsSource;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pulls_a_droplet_image_owned_by_vcap() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("data"));
    config.rootfs = Some(RootfsSource::Layout(busybox_layout(dir.path())));
    let served = serve(config).await;

    let droplet = droplet(&[("run.sh", b"#!/bin/sh\necho hi\n"), ("lib/x.txt", b"x")]);
    let hash = sha1_hex(&droplet);
    let guid = "cloudfoundry/0d5ad1e7-1111-4222-8333-444455556666";
    let reply = reqwest::Client::new()
        .post(format!(
            "http://{}/v2/{guid}/droplets?hash={hash}",
            served.addr
        ))
        .body(droplet)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);

    let out = dir.path().join("pulled");
    let source = format!("docker://{}/{guid}:{hash}", served.addr);
    let dest = format!("oci:{}:app", out.display());
    tool(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            &source,
            &dest,
        ],
        false,
    )
    .await;

    let manifest: serde_json::Value =
        serde_json::from_slice(&layout_blob(&out, &layout_manifest_digest(&out))).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    let layer = layout_blob(&out, layers[1]["digest"].as_str().unwrap());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
    let mut owned = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.starts_with("home/vcap/app/") {
            assert_eq!(
                (entry.header().uid().unwrap(), entry.header().gid().unwrap()),
                (2000, 2000),
                "{path}"
            );
            owned.push(path.clone());
        }
        if path == "home/vcap/app/run.sh" {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            assert_eq!(text, "#!/bin/sh\necho hi\n");
        }
    }
    assert!(
        owned.contains(&"home/vcap/app/run.sh".to_owned()),
        "{owned:?}"
    );
    assert!(
        owned.contains(&"home/vcap/app/lib/x.txt".to_owned()),
        "{owned:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trips_an_image_with_identical_digests() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        format!("user alice {}\n", registry::Digest::of(b"wonderland")),
    )
    .unwrap();
    let mut config = Config::new(dir.path().join("data"));
    config.auth_file = Some(users);
    let served = serve(config).await;

    let layout = busybox_layout(dir.path());
    let pushed = layout_manifest_digest(&layout);
    let source = format!("oci:{}:latest", layout.display());
    let remote = format!("docker://{}/test/busybox:v1", served.addr);

    // Without credentials the push is refused.
    tool(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            "--dest-no-creds",
            &source,
            &remote,
        ],
        true,
    )
    .await;
    tool(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:wonderland",
            &source,
            &remote,
        ],
        false,
    )
    .await;

    let out = dir.path().join("back");
    let dest = format!("oci:{}:v1", out.display());
    tool(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            "alice:wonderland",
            &remote,
            &dest,
        ],
        false,
    )
    .await;
    assert_eq!(layout_manifest_digest(&out), pushed);
    assert_eq!(layout_blob(&out, &pushed), layout_blob(&layout, &pushed));

    let inspect = tool(
        "skopeo",
        &[
            "--insecure-policy",
            "inspect",
            "--tls-verify=false",
            "--creds",
            "alice:wonderland",
            "--format",
            "{{.Digest}}",
            &remote,
        ],
        false,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), pushed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_pushes_and_pulls_an_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(Config::new(dir.path().join("data"))).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/oras_roundtrip.py"
    );
    let work = dir.path().join("oras");
    std::fs::create_dir_all(&work).unwrap();
    let host = served.addr.to_string();
    let output = tool("python3", &[script, &host, work.to_str().unwrap()], false).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ok artifacts/hello") && stdout.contains("ok artifacts/chunked"),
        "{stdout}"
    );

    let tags: serde_json::Value =
        reqwest::get(format!("http://{host}/v2/artifacts/chunked/tags/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootfs_is_pulled_once_from_an_upstream_registry_with_oci_client() {
    // Upstream: a registry holding the busybox rootfs, pushed over HTTP.
    let dir = tempfile::tempdir().unwrap();
    let upstream = serve(Config::new(dir.path().join("upstream"))).await;
    let layout = busybox_layout(dir.path());
    let http = reqwest::Client::new();
    let manifest_digest = layout_manifest_digest(&layout);
    let manifest_bytes = layout_blob(&layout, &manifest_digest);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    blobs.extend(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned()),
    );
    for digest in &blobs {
        let reply = http
            .post(format!(
                "http://{}/v2/base/busybox/blobs/uploads/?digest={digest}",
                upstream.addr
            ))
            .body(layout_blob(&layout, digest))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201);
    }
    let reply = http
        .put(format!(
            "http://{}/v2/base/busybox/manifests/latest",
            upstream.addr
        ))
        .header("content-type", OCI_MANIFEST)
        .body(manifest_bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);

    // The registry under test takes its rootfs from there.
    let mut config = Config::new(dir.path().join("data"));
    config.rootfs = Some(RootfsSource::parse(
        &format!("{}/base/busybox:latest", upstream.addr),
        true,
    ));
    let served = serve(config).await;
    let mut digests = Vec::new();
    let mut upstream = Some(upstream);
    for app in ["a", "b"] {
        let droplet = droplet(&[("run.sh", app.as_bytes())]);
        let hash = sha1_hex(&droplet);
        let reply = http
            .post(format!(
                "http://{}/v2/cloudfoundry/{app}/droplets?hash={hash}",
                served.addr
            ))
            .body(droplet)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201, "{}", reply.text().await.unwrap());
        let image: serde_json::Value = http
            .get(format!(
                "http://{}/v2/cloudfoundry/{app}/manifests/{hash}",
                served.addr
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        digests.push(image["layers"][0]["digest"].as_str().unwrap().to_owned());
        // The rootfs is pulled once: the second import works with upstream gone.
        if let Some(upstream) = upstream.take() {
            upstream.stop().await;
        }
    }
    // Both images start with the upstream's busybox layer.
    assert_eq!(digests, vec![blobs[1].clone(), blobs[1].clone()]);
}
