//! `registry-pull`: manifest GET req/s and p99 at 64 concurrent clients, and
//! blob pull throughput, from Cube's registry and, in the same run, from
//! Debian's `docker-registry` (the reference distribution registry) serving
//! the same image, copied there with `skopeo`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::harness::{
    DropletWriter, Latencies, Proc, RawClient, Row, client, cube_binary, fill_random, free_port,
    latencies, ms, own_cpu, proc_cpu, report, workspace_root,
};

const CONCURRENCY: usize = 64;
const MANIFEST_SECONDS: u64 = 5;
const BLOB_MB: usize = 64;
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

fn ensure_tools() -> anyhow::Result<()> {
    let have = |tool: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !(have("docker-registry") && have("skopeo")) {
        let status = Command::new(workspace_root().join("scripts/install-deps"))
            .arg("--bench")
            .status()
            .context("cannot run scripts/install-deps --bench")?;
        ensure!(status.success(), "scripts/install-deps --bench failed");
    }
    Ok(())
}

fn droplet(path: &Path) -> anyhow::Result<()> {
    let mut data = vec![0u8; BLOB_MB * 1024 * 1024];
    fill_random(&mut data, 0x2545_f491_4f6c_dd1d);
    let mut droplet = DropletWriter::create(path)?;
    droplet.add("app/blob.bin", &data)?;
    droplet.finish()
}

struct Load {
    rps: f64,
    latency: Latencies,
    /// CPU per request of the server and of this process (the clients).
    server_cpu: Duration,
    client_cpu: Duration,
}

async fn manifest_load(url: &reqwest::Url, server: u32) -> anyhow::Result<Load> {
    let mut clients = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        clients.push(RawClient::connect(url).await?);
    }
    let cpu_before = (proc_cpu(server), own_cpu());
    let deadline = Instant::now() + Duration::from_secs(MANIFEST_SECONDS);
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let path = url.path().to_owned();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    client.get(&path, Some(MANIFEST_ACCEPT)).await?;
                    mine.push(t.elapsed());
                }
                anyhow::Ok(mine)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let (server_cpu, client_cpu) = (
        proc_cpu(server).saturating_sub(cpu_before.0),
        own_cpu().saturating_sub(cpu_before.1),
    );
    let count = all.len().max(1) as u32;
    Ok(Load {
        rps: f64::from(count) / elapsed.as_secs_f64(),
        latency: latencies(&mut all),
        server_cpu: server_cpu / count,
        client_cpu: client_cpu / count,
    })
}

/// Requests in the unloaded latency sample.
const SEQUENTIAL: usize = 2000;

/// Latency of one request at a time on one connection: the per-request cost,
/// which the loaded p99 cannot show (64 clients at R req/s queue for at least
/// 64 / R on two shared cores).
async fn manifest_unloaded(url: &reqwest::Url) -> anyhow::Result<Latencies> {
    let mut client = RawClient::connect(url).await?;
    let mut samples = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL + 100 {
        let t = Instant::now();
        client.get(url.path(), Some(MANIFEST_ACCEPT)).await?;
        // The first 100 warm up the connection and caches.
        if i >= 100 {
            samples.push(t.elapsed());
        }
    }
    Ok(latencies(&mut samples))
}

/// Parallel pulls per blob round.
const BLOB_PARALLEL: usize = 4;
/// Pulls of the layer by each of them per round: 1 GiB a round.
const BLOB_PULLS: usize = 4;
/// Rounds per side, alternating between the sides.
const BLOB_ROUNDS: usize = 7;

/// One round: `BLOB_PARALLEL` pullers each pull the blob `BLOB_PULLS` times;
/// bytes / wall time in GB/s.
async fn blob_round(url: &reqwest::Url) -> anyhow::Result<f64> {
    let mut clients = Vec::new();
    for _ in 0..BLOB_PARALLEL {
        clients.push(RawClient::connect(url).await?);
    }
    let started = Instant::now();
    // One task per puller, so that they spread over the runtime's threads as
    // a parallel puller's would (joined in place, they would share one).
    let pulls: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let path = url.path().to_owned();
            tokio::spawn(async move {
                let mut n = 0u64;
                for _ in 0..BLOB_PULLS {
                    n += client.get(&path, None).await?;
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    let mut total = 0u64;
    for pull in pulls {
        total += pull.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64() / 1e9)
}

/// Blob throughput of both sides, in alternating rounds so that a burst of
/// background load hits one round, not one side: the median round of each.
async fn blob_throughput(cube: &str, peer: &str) -> anyhow::Result<(f64, f64)> {
    let (cube, peer) = (reqwest::Url::parse(cube)?, reqwest::Url::parse(peer)?);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..BLOB_ROUNDS {
        ours.push(blob_round(&cube).await?);
        theirs.push(blob_round(&peer).await?);
    }
    Ok((median(&mut ours), median(&mut theirs)))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_unstable_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run() -> anyhow::Result<()> {
    ensure_tools()?;
    let cube = cube_binary()?;
    let dir = tempfile::tempdir()?;

    // Cube's registry with one droplet image.
    let (port, admin) = (free_port()?, free_port()?);
    let mut registry = Proc::spawn(
        "cube registry",
        &cube,
        &[
            "registry".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--admin-listen".into(),
            format!("127.0.0.1:{admin}"),
            "--data-dir".into(),
            dir.path().join("cube-registry").display().to_string(),
        ],
    )?;
    registry
        .wait_ready(
            &format!("http://127.0.0.1:{admin}/readyz"),
            Duration::from_secs(20),
        )
        .await?;
    let tgz = dir.path().join("droplet.tgz");
    droplet(&tgz)?;
    let http = client()?;
    let response = http
        .post(format!(
            "http://127.0.0.1:{port}/v2/cloudfoundry/bench/droplets?hash=v1"
        ))
        .body(std::fs::read(&tgz)?)
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "import failed: {}",
        response.text().await?
    );

    // docker-registry, filled by skopeo from Cube's registry.
    let peer_port = free_port()?;
    let config = dir.path().join("docker-registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  cache:\n    blobdescriptor: inmemory\nhttp:\n  addr: 127.0.0.1:{peer_port}\n",
            dir.path().join("docker-registry").display()
        ),
    )?;
    let mut peer = Proc::spawn(
        "docker-registry",
        Path::new("docker-registry"),
        &["serve".into(), config.display().to_string()],
    )?;
    peer.wait_ready(
        &format!("http://127.0.0.1:{peer_port}/v2/"),
        Duration::from_secs(20),
    )
    .await?;
    let status = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://127.0.0.1:{port}/cloudfoundry/bench:v1"),
            &format!("docker://127.0.0.1:{peer_port}/cloudfoundry/bench:v1"),
        ])
        .status()
        .context("cannot run skopeo")?;
    ensure!(status.success(), "skopeo copy to docker-registry failed");

    let cube_manifest = format!("http://127.0.0.1:{port}/v2/cloudfoundry/bench/manifests/v1");
    let peer_manifest = format!("http://127.0.0.1:{peer_port}/v2/cloudfoundry/bench/manifests/v1");
    // The same image on both sides: the same largest layer.
    let manifest: serde_json::Value = http
        .get(&cube_manifest)
        .header("accept", MANIFEST_ACCEPT)
        .send()
        .await?
        .json()
        .await?;
    let layer = manifest["layers"]
        .as_array()
        .and_then(|layers| {
            layers
                .iter()
                .max_by_key(|l| l["size"].as_u64().unwrap_or(0))
        })
        .and_then(|l| l["digest"].as_str())
        .context("manifest has no layers")?
        .to_owned();
    let peer_has = http
        .head(format!(
            "http://127.0.0.1:{peer_port}/v2/cloudfoundry/bench/blobs/{layer}"
        ))
        .send()
        .await?;
    ensure!(
        peer_has.status().is_success(),
        "docker-registry lacks layer {layer}"
    );

    // Alternate the two sides so background noise hits both.
    let (cube_url, peer_url) = (
        reqwest::Url::parse(&cube_manifest)?,
        reqwest::Url::parse(&peer_manifest)?,
    );
    let cube_unloaded = manifest_unloaded(&cube_url).await?;
    let peer_unloaded = manifest_unloaded(&peer_url).await?;
    let cube_load = manifest_load(&cube_url, registry.pid()).await?;
    let peer_load = manifest_load(&peer_url, peer.pid()).await?;
    let (cube_blob, peer_blob) = blob_throughput(
        &format!("http://127.0.0.1:{port}/v2/cloudfoundry/bench/blobs/{layer}"),
        &format!("http://127.0.0.1:{peer_port}/v2/cloudfoundry/bench/blobs/{layer}"),
    )
    .await?;

    let manifest_ratio = cube_load.rps / peer_load.rps;
    let blob_ratio = cube_blob / peer_blob;
    report(
        "registry-pull",
        "docker-registry",
        &[
            Row {
                what: format!("manifest GET req/s ({CONCURRENCY} clients)"),
                cube: format!("{:.0}", cube_load.rps),
                peer: format!("{:.0}", peer_load.rps),
            },
            Row {
                what: "manifest p50 / p99".into(),
                cube: format!(
                    "{} / {}",
                    ms(cube_load.latency.p50),
                    ms(cube_load.latency.p99)
                ),
                peer: format!(
                    "{} / {}",
                    ms(peer_load.latency.p50),
                    ms(peer_load.latency.p99)
                ),
            },
            Row {
                what: "CPU per manifest GET: server / clients".into(),
                cube: format!(
                    "{:.0} / {:.0} µs",
                    micros(cube_load.server_cpu),
                    micros(cube_load.client_cpu)
                ),
                peer: format!(
                    "{:.0} / {:.0} µs",
                    micros(peer_load.server_cpu),
                    micros(peer_load.client_cpu)
                ),
            },
            Row {
                what: "manifest p50 / p99, unloaded (1 client)".into(),
                cube: format!("{} / {}", ms(cube_unloaded.p50), ms(cube_unloaded.p99)),
                peer: format!("{} / {}", ms(peer_unloaded.p50), ms(peer_unloaded.p99)),
            },
            Row {
                what: format!(
                    "blob pull ({BLOB_MB} MiB layer, {BLOB_PARALLEL} parallel, median of {BLOB_ROUNDS})"
                ),
                cube: format!("{cube_blob:.2} GB/s"),
                peer: format!("{peer_blob:.2} GB/s"),
            },
        ],
        &format!(
            "manifest {:.0} req/s p99 {} (unloaded p99 {}) vs {:.0} req/s; blob {cube_blob:.2} vs {peer_blob:.2} GB/s; ratio {manifest_ratio:.2} manifests, {blob_ratio:.2} blobs",
            cube_load.rps,
            ms(cube_load.latency.p99),
            ms(cube_unloaded.p99),
            peer_load.rps
        ),
    );
    Ok(())
}
