//! `droplet-import`: a 200 MB droplet → image in Cube's registry, against the
//! physical limit of the same work done by the fastest tools there are:
//! `gunzip | sha256sum` on the same file (the import has to gunzip and hash
//! at least that, and also re-tar, re-compress-free store and hash the layer).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::harness::{
    DropletWriter, Proc, Row, client, cube_binary, fill_random, free_port, report,
};

/// Uncompressed size of the generated droplet.
const SIZE: usize = 200 * 1024 * 1024;

/// Writes a droplet `.tgz` with ~`SIZE` bytes of app files: half random
/// (incompressible, like binaries), half text (compressible, like source).
fn write_droplet(path: &std::path::Path) -> anyhow::Result<u64> {
    let mut droplet = DropletWriter::create(path)?;
    let chunk = 4 * 1024 * 1024;
    let line =
        b"def handler(request):\n    return render(request, 'index.html', {'greeting': 'hello'})\n";
    let mut data = vec![0u8; chunk];
    let mut written = 0;
    let mut index: u64 = 0;
    while written < SIZE {
        if index.is_multiple_of(2) {
            fill_random(&mut data, 0x9e37_79b9_7f4a_7c15 + index);
        } else {
            for (i, byte) in data.iter_mut().enumerate() {
                *byte = line[i % line.len()];
            }
        }
        droplet.add(&format!("app/file-{index}.bin"), &data)?;
        written += chunk;
        index += 1;
    }
    droplet.finish()?;
    Ok(std::fs::metadata(path)?.len())
}

fn sha256_hex(path: &std::path::Path) -> anyhow::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut file, &mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn pipeline(path: &std::path::Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = Command::new("sh")
        .arg("-c")
        .arg("gunzip -c \"$1\" | sha256sum")
        .arg("sh")
        .arg(path)
        .output()
        .context("cannot run gunzip | sha256sum")?;
    ensure!(output.status.success(), "gunzip | sha256sum failed");
    Ok(started.elapsed())
}

pub async fn run() -> anyhow::Result<()> {
    let cube = cube_binary()?;
    let dir = tempfile::tempdir()?;
    let droplet = dir.path().join("droplet.tgz");
    let compressed = write_droplet(&droplet)?;
    let hash = sha256_hex(&droplet)?;
    let body = std::fs::read(&droplet)?;

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
            dir.path().join("registry").display().to_string(),
            "--max-unpacked-bytes".into(),
            (4u64 << 30).to_string(),
        ],
    )?;
    registry
        .wait_ready(
            &format!("http://127.0.0.1:{admin}/readyz"),
            Duration::from_secs(20),
        )
        .await?;
    let http = client()?;

    // Warm the page cache for both sides.
    let _ = pipeline(&droplet)?;
    let mut cube_times = Vec::new();
    let mut peer_times = Vec::new();
    for round in 0..3 {
        // A new droplet guid each round, so every import does the full work.
        let started = Instant::now();
        let response = http
            .post(format!(
                "http://127.0.0.1:{port}/v2/cloudfoundry/bench-{round}/droplets?hash={hash}"
            ))
            .body(body.clone())
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.as_u16() == 201, "import answered {status}: {text}");
        cube_times.push(started.elapsed());
        peer_times.push(pipeline(&droplet)?);
    }
    cube_times.sort();
    peer_times.sort();
    let cube_best = cube_times[0];
    let peer_best = peer_times[0];
    let mb = SIZE as f64 / 1e6;
    let ratio = peer_best.as_secs_f64() / cube_best.as_secs_f64();
    report(
        "droplet-import",
        "gunzip | sha256sum",
        &[
            Row {
                what: format!(
                    "{:.0} MB droplet ({:.0} MB gz), best of 3",
                    mb,
                    compressed as f64 / 1e6
                ),
                cube: format!("{:.2} s", cube_best.as_secs_f64()),
                peer: format!("{:.2} s", peer_best.as_secs_f64()),
            },
            Row {
                what: "throughput (uncompressed)".into(),
                cube: format!("{:.0} MB/s", mb / cube_best.as_secs_f64()),
                peer: format!("{:.0} MB/s", mb / peer_best.as_secs_f64()),
            },
        ],
        &format!(
            "{:.0} MB/s import vs {:.0} MB/s pipeline; ratio {ratio:.2} (≥ 1.0 means as fast as gunzip | sha256sum)",
            mb / cube_best.as_secs_f64(),
            mb / peer_best.as_secs_f64()
        ),
    );
    Ok(())
}
