//! `sink-converge`: CC-sim with 10,000 apps → OPI. First convergence, a no-op
//! cycle (CPU and writes), 100 drifted apps (writes). The limit it is compared
//! with: the same 10,000 desires PUT straight to a fresh OPI with the same
//! concurrency, and the two reads a cycle cannot avoid (CC walk + OPI list).
//!
//! CC-sim and OPI run as separate `cube` processes, so this process's CPU
//! time is the Sink's alone.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use futures::StreamExt;

use crate::harness::{Proc, Row, client, cube_binary, free_port, ms, own_cpu, report};

const APPS: usize = 10_000;
const DRIFT: usize = 100;

struct Opi {
    /// Kept alive for the scenario.
    _proc: Proc,
    url: String,
    admin: String,
}

async fn start_opi(cube: &std::path::Path) -> anyhow::Result<Opi> {
    let (api, admin) = (free_port()?, free_port()?);
    let mut proc = Proc::spawn(
        "cube opi",
        cube,
        &[
            "opi".into(),
            "--backend".into(),
            "memory".into(),
            "--listen".into(),
            format!("127.0.0.1:{api}"),
            "--admin-listen".into(),
            format!("127.0.0.1:{admin}"),
        ],
    )?;
    let admin = format!("http://127.0.0.1:{admin}");
    proc.wait_ready(&format!("{admin}/readyz"), Duration::from_secs(20))
        .await?;
    Ok(Opi {
        _proc: proc,
        url: format!("http://127.0.0.1:{api}"),
        admin,
    })
}

/// Successful non-GET requests OPI has served, from its own metrics.
async fn opi_writes(opi: &Opi) -> anyhow::Result<u64> {
    let text = client()?
        .get(format!("{}/metrics", opi.admin))
        .send()
        .await?
        .text()
        .await?;
    let mut writes = 0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("cube_opi_requests_total{"))
    {
        let write = !line.contains("route=\"GET ");
        let ok = line.contains("code=\"2");
        if write && ok {
            let value: f64 = line
                .rsplit(' ')
                .next()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0.0);
            writes += value as u64;
        }
    }
    Ok(writes)
}

pub async fn run() -> anyhow::Result<()> {
    let cube = cube_binary()?;
    let dir = tempfile::tempdir()?;
    let (cc_port, cc_admin) = (free_port()?, free_port()?);
    let mut cc_sim = Proc::spawn(
        "cube cc-sim",
        &cube,
        &[
            "cc-sim".into(),
            "--listen".into(),
            format!("127.0.0.1:{cc_port}"),
            "--admin-listen".into(),
            format!("127.0.0.1:{cc_admin}"),
            "--data-dir".into(),
            dir.path().join("cc").display().to_string(),
            "--fake-apps".into(),
            APPS.to_string(),
        ],
    )?;
    cc_sim
        .wait_ready(
            &format!("http://127.0.0.1:{cc_admin}/readyz"),
            Duration::from_secs(60),
        )
        .await?;
    let cc_url = format!("http://127.0.0.1:{cc_port}");
    let opi = start_opi(&cube).await?;
    let peer_opi = start_opi(&cube).await?;

    let config = sink::Config {
        cc: cc::ClientConfig::new(cc_url.clone()),
        opi_url: opi.url.clone(),
        registry_url: None,
        interval: Duration::from_secs(15),
        settings: sink::Settings::default(),
        leader_election: None,
    };
    let converger = sink::converger(&config, &prometheus::Registry::new())?;

    // 1. First convergence.
    let started = Instant::now();
    let first = converger.cycle().await?;
    let first_wall = started.elapsed();
    ensure!(
        first.desired == APPS,
        "first cycle desired {} of {APPS}: {:?}",
        first.desired,
        first.errors.first()
    );

    // 2. A no-op cycle: CPU of this process, writes seen by OPI.
    let writes_before = opi_writes(&opi).await?;
    let cpu_before = own_cpu();
    let started = Instant::now();
    let noop = converger.cycle().await?;
    let noop_wall = started.elapsed();
    let noop_cpu = own_cpu().saturating_sub(cpu_before);
    let noop_writes = opi_writes(&opi).await? - writes_before;
    ensure!(
        noop.writes() == 0 && noop_writes == 0,
        "no-op cycle wrote {noop_writes}"
    );

    // 3. 100 apps drift in CC (scaled): exactly 100 writes.
    let http = client()?;
    for i in 0..DRIFT {
        let response = http
            .put(format!("{cc_url}/sim/apps/fake-app-{}/scale", i * 97))
            .json(&serde_json::json!({ "instances": 2 }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "scaling fake-app-{} failed: {}",
                i * 97,
                response.text().await?
            );
        }
    }
    let writes_before = opi_writes(&opi).await?;
    let started = Instant::now();
    let drift = converger.cycle().await?;
    let drift_wall = started.elapsed();
    let drift_writes = opi_writes(&opi).await? - writes_before;

    // The limit: the reads a cycle cannot avoid…
    let cc_client = cc::Client::new(cc::ClientConfig::new(cc_url.clone()))?;
    let opi_client = opi::http::OpiClient::new(&opi.url)?;
    let started = Instant::now();
    let fingerprints = cc_client.fingerprints(500).await?;
    let lrps = opi_client.list().await?;
    let reads_wall = started.elapsed();
    ensure!(
        fingerprints.len() == APPS && lrps.len() == APPS,
        "reads saw {} / {}",
        fingerprints.len(),
        lrps.len()
    );

    // …and the same desires PUT straight to a fresh OPI, 32 at a time.
    let guids: Vec<cc::model::ProcessGuid> = fingerprints
        .iter()
        .map(|f| f.process_guid.clone())
        .collect();
    let mut bodies = Vec::with_capacity(APPS);
    for chunk in guids.chunks(500) {
        for record in cc_client.desired_apps(chunk).await? {
            bodies.push(
                sink::translate::translate(&record)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .request,
            );
        }
    }
    let peer_client = opi::http::OpiClient::new(&peer_opi.url)?;
    let started = Instant::now();
    let failures = futures::stream::iter(bodies.iter())
        .map(|body| {
            let peer_client = peer_client.clone();
            async move { peer_client.desire(body).await.is_err() }
        })
        .buffer_unordered(32)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    let direct_wall = started.elapsed();
    ensure!(failures == 0, "{failures} direct desires failed");
    drop(peer_opi);
    drop(cc_sim);

    let ratio = first_wall.as_secs_f64() / direct_wall.as_secs_f64();
    report(
        "sink-converge",
        "limit",
        &[
            Row {
                what: format!("first convergence ({APPS} apps)"),
                cube: format!("{:.2} s", first_wall.as_secs_f64()),
                peer: format!("{:.2} s direct PUTs", direct_wall.as_secs_f64()),
            },
            Row {
                what: "no-op cycle wall".into(),
                cube: ms(noop_wall),
                peer: format!("{} reads only", ms(reads_wall)),
            },
            Row {
                what: "no-op cycle CPU (sink)".into(),
                cube: ms(noop_cpu),
                peer: "≤ 100 ms target".into(),
            },
            Row {
                what: "no-op cycle writes".into(),
                cube: noop_writes.to_string(),
                peer: "0".into(),
            },
            Row {
                what: format!("{DRIFT} drifted apps: writes"),
                cube: format!("{drift_writes} in {}", ms(drift_wall)),
                peer: DRIFT.to_string(),
            },
        ],
        &format!(
            "first convergence {:.2} s, no-op cycle {} CPU / {noop_writes} writes, {DRIFT} drifted → {drift_writes} writes; ratio {ratio:.2} (first convergence / direct PUTs)",
            first_wall.as_secs_f64(),
            ms(noop_cpu),
        ),
    );
    ensure!(
        drift_writes == DRIFT as u64 && drift.updated == DRIFT,
        "drift wrote {drift_writes}, updated {}",
        drift.updated
    );
    Ok(())
}
