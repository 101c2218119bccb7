//! Helpers shared by the registry's integration tests: an in-process router,
//! request shorthands, and test data made on the spot (droplets, a busybox
//! rootfs layout) — nothing is downloaded.
#![allow(dead_code)]
// Test support: a panic is the right way for a helper to fail a test.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use registry::api::{self, Shared};
use registry::{Config, Digest};
use tower::ServiceExt;

/// A registry router over a fresh data dir.
pub async fn registry(config: Config) -> (Router, Shared) {
    let state = registry::server::state(&config, &prometheus::Registry::new())
        .await
        .unwrap();
    (api::router(state.clone()), state)
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The OCI error code of an error reply.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

pub async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(router: &Router, uri: &str) -> Reply {
    send(router, Method::GET, uri, &[], Body::empty()).await
}

/// Pushes a blob monolithically; returns its digest.
pub async fn push_blob(router: &Router, name: &str, data: &[u8]) -> Digest {
    let digest = Digest::of(data);
    let reply = send(
        router,
        Method::POST,
        &format!("/v2/{name}/blobs/uploads/?digest={digest}"),
        &[],
        data.to_vec(),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    digest
}

/// An OCI image manifest over a config and layers.
pub fn image_manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": Digest::of(l).to_string(),
                "size": l.len(),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": Digest::of(config).to_string(),
            "size": config.len(),
        },
        "layers": layers,
    }))
    .unwrap()
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A droplet `.tgz` as the buildpack lifecycle writes it: `./app/...`,
/// `./staging_info.yml`, `./tmp/`, `./logs/`.
pub fn droplet(app_files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut dir = |path: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(1_700_000_000);
        builder
            .append_data(&mut header, path, std::io::empty())
            .unwrap();
    };
    for d in ["./", "./app/", "./tmp/", "./logs/"] {
        dir(d);
    }
    let mut file = |path: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        builder.append_data(&mut header, path, data).unwrap();
    };
    for (path, data) in app_files {
        file(&format!("./app/{path}"), data, 0o755);
    }
    file(
        "./staging_info.yml",
        br#"{"detected_buildpack":"binary_buildpack","start_command":"./app/run.sh"}"#,
        0o644,
    );
    builder.into_inner().unwrap().finish().unwrap()
}

/// Lowercase hex sha1 of `data` (CF's droplet hash).
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest as _;
    hex::encode(sha1::Sha1::digest(data))
}

fn write_blob(layout: &Path, data: &[u8]) -> Digest {
    let digest = Digest::of(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(digest.hex()), data).unwrap();
    digest
}

/// A tiny rootfs: an OCI image layout holding one layer with Debian's static
/// busybox as `/bin/busybox` and `/bin/sh` linking to it.
pub fn busybox_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("rootfs-layout");
    std::fs::create_dir_all(&layout).unwrap();
    let busybox =
        std::fs::read("/bin/busybox").expect("busybox-static is installed (scripts/install-deps)");
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir_entry = |path: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, path, std::io::empty())
            .unwrap();
    };
    for d in ["bin/", "etc/", "home/", "tmp/"] {
        dir_entry(d);
    }
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o755);
    header.set_size(busybox.len() as u64);
    tar.append_data(&mut header, "bin/busybox", busybox.as_slice())
        .unwrap();
    let passwd = b"root:x:0:0:root:/root:/bin/sh\nvcap:x:2000:2000::/home/vcap:/bin/sh\n";
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(passwd.len() as u64);
    tar.append_data(&mut header, "etc/passwd", &passwd[..])
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_mode(0o777);
    header.set_size(0);
    tar.append_link(&mut header, "bin/sh", "busybox").unwrap();
    let plain = tar.into_inner().unwrap();
    let diff_id = Digest::of(&plain);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&plain).unwrap();
    let layer = gz.finish().unwrap();
    let layer_digest = write_blob(&layout, &layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin", "HOME=/root"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    }))
    .unwrap();
    let config_digest = write_blob(&layout, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = write_blob(&layout, &manifest);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest.to_string(), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    layout
}

/// A registry served on 127.0.0.1 (port 0) until dropped.
pub struct Served {
    pub addr: std::net::SocketAddr,
    shutdown: cube_runtime::Shutdown,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    /// Shuts the registry down and waits (at most ten seconds) until it has stopped.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .expect("registry stops within ten seconds")
                .unwrap();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn serve(config: Config) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = cube_runtime::Shutdown::new();
    let service = cube_runtime::Service::new(shutdown.clone());
    let task = tokio::spawn(async move {
        if let Err(error) = registry::run(config, listener, service).await {
            panic!("registry stopped: {error}");
        }
    });
    Served {
        addr,
        shutdown,
        task: Some(task),
    }
}

/// Runs a tool to completion within a minute; returns its output, failing the
/// test with the tool's stderr when it fails (unless `expect_failure`).
pub async fn tool(program: &str, args: &[&str], expect_failure: bool) -> std::process::Output {
    let child = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is installed (scripts/install-deps): {e}"));
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} took over a minute"))
        .unwrap();
    assert_eq!(
        output.status.success(),
        !expect_failure,
        "{program} {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The manifest digest an OCI layout's index.json names first.
pub fn layout_manifest_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

/// A blob of an OCI layout.
pub fn layout_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}
