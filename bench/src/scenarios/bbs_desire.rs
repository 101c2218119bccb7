//! `bbs-desire`: 10,000 desires of CC-shaped LRPs through `cube bbs`
//! (`POST /v1/desired_lrp/desire.r2`, protobuf, as Cloud Controller sends
//! them to Diego's BBS); the peer, in the same run, is the same 10,000
//! desires through `cube opi` (`PUT /apps/{process_guid}`, the JSON body
//! Cloud Controller sent Eirini in 2019–2023).
//!
//! Like with like:
//! - **The LRPs**: half `bbs::translate::fixtures::buildpack_lrp`, half
//!   `docker_lrp`, each with its own `<app guid>-<version guid>` process guid
//!   (the fixture's guids replaced in all the places CC writes them: log and
//!   metrics guids, metric tags, `VCAP_APPLICATION`, the droplet URL). The
//!   OPI body of each is what `cube bbs` translates it to, minus the BBS's
//!   own stored copy (its user annotation): every field CC sent Eirini, and
//!   it validates into the same OPI LRP (checked for each before the run).
//! - **No Registry on either side**: `cube bbs` runs without
//!   `--droplet-registry-url`, so a buildpack desire makes no droplet import
//!   (OPI never imports either: the Sink did, outside the desire).
//! - **The same server and backend kind**: each side is the release `cube`
//!   binary in its own process (`cube bbs --plain-http` / `cube opi`), on a
//!   fresh memory backend per round, over plain HTTP on 127.0.0.1.
//! - **The same client**: [`RawClient`], 64 kept-alive connections, one
//!   request in flight on each (64 in flight), every request built before
//!   the clock starts. Each answer is read whole and checked: the BBS's
//!   `DesiredLRPLifecycleResponse` decoded, its `error` unset; OPI's status
//!   202 and its body.
//!
//! Three rounds per side, alternating which side goes first, so that a burst
//! of background load hits one round and not one side; each side's figures
//! are its median round.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bbs::translate::{STORED_LRP_ANNOTATION, Settings, fixtures};
use bbs_models::{
    DesireLrpRequest, DesiredLrPsRequest, DesiredLrp, DesiredLrpLifecycleResponse,
    DesiredLrpSchedulingInfosResponse,
};
use prost::Message;

use crate::harness::{
    Latencies, Proc, RawClient, Row, client, cube_binary, free_port, latencies, ms, own_cpu,
    proc_cpu, report,
};

const DESIRES: usize = 10_000;
const CONCURRENCY: usize = 64;
const ROUNDS: usize = 3;
/// What the issue asks of `cube bbs`: at least this fraction of OPI's rate.
const TARGET: f64 = 0.9;

/// The two fronts of the same backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `cube bbs`: Diego's BBS API.
    Bbs,
    /// `cube opi`: Eirini's OPI API.
    Opi,
}

/// One desire, as each side's client sends it: whole HTTP/1.1 requests.
struct Desire {
    bbs: Vec<u8>,
    opi: Vec<u8>,
}

/// `8-4-4-4-12` hex, unique per `i` and `kind`.
fn guid(kind: u16, i: usize) -> String {
    format!("{i:08x}-{kind:04x}-4000-8000-{i:012x}")
}

/// The `i`th LRP CC desires: a buildpack app for even `i`, a docker app for
/// odd, with its own app guid and version.
fn cc_lrp(i: usize) -> anyhow::Result<DesiredLrp> {
    let fixture = if i.is_multiple_of(2) {
        fixtures::buildpack_lrp()
    } else {
        fixtures::docker_lrp()
    };
    let (app, version) = (guid(0xa99, i), guid(0x7e5, i));
    // The guids have the fixture's lengths, so replacing them in the encoded
    // message keeps every length prefix right and reaches every field CC
    // writes them into.
    let mut bytes = fixture.encode_to_vec();
    replace(&mut bytes, fixtures::APP_GUID, &app);
    replace(&mut bytes, fixtures::PROCESS_VERSION, &version);
    let lrp = DesiredLrp::decode(bytes.as_slice())?;
    ensure!(
        lrp.process_guid == format!("{app}-{version}"),
        "process guid {} after the replacement",
        lrp.process_guid
    );
    Ok(lrp)
}

/// Replaces every `from` in `bytes` by `to`, of the same length.
fn replace(bytes: &mut [u8], from: &str, to: &str) {
    let (from, to) = (from.as_bytes(), to.as_bytes());
    debug_assert_eq!(from.len(), to.len());
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(from.len()).position(|w| w == from) {
        bytes[at + found..at + found + to.len()].copy_from_slice(to);
        at += found + to.len();
    }
}

/// The body CC sent Eirini for `lrp`: what `cube bbs` makes of it, without
/// the BBS's stored copy. Checked to validate into the same OPI LRP.
fn eirini_body(
    lrp: &DesiredLrp,
    settings: &Settings,
) -> anyhow::Result<opi::model::wire::DesireLrpRequest> {
    let translated = bbs::translate::lrp::desired(lrp, settings)
        .map_err(|refusal| anyhow::anyhow!("cube bbs refuses the fixture: {refusal}"))?;
    let mut expected = translated.lrp;
    expected
        .user_defined_annotations
        .remove(STORED_LRP_ANNOTATION);
    let body = opi::model::wire::DesireLrpRequest::from(&expected);
    let validated = opi::model::validate::desire(&lrp.process_guid, body.clone())
        .map_err(|invalid| anyhow::anyhow!("OPI refuses the Eirini body: {invalid}"))?;
    ensure!(
        validated == expected,
        "the Eirini body of {} is not the LRP cube bbs desires",
        lrp.process_guid
    );
    Ok(body)
}

/// A whole HTTP/1.1 request, with the headers CC sends.
fn http_request(method: &str, path: &str, content_type: &str, id: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
         X-Vcap-Request-Id: {id}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Every desire of the run, both ways, and the mean body sizes (protobuf,
/// JSON).
fn desires() -> anyhow::Result<(Vec<Desire>, usize, usize)> {
    let settings = fixtures::settings();
    let (mut protobuf, mut json) = (0, 0);
    let mut all = Vec::with_capacity(DESIRES);
    for i in 0..DESIRES {
        let lrp = cc_lrp(i)?;
        let opi_body = serde_json::to_vec(&eirini_body(&lrp, &settings)?)?;
        let path = format!("/apps/{}", lrp.process_guid);
        let bbs_body = DesireLrpRequest {
            desired_lrp: Some(lrp),
        }
        .encode_to_vec();
        let id = guid(0x1d, i);
        (protobuf, json) = (protobuf + bbs_body.len(), json + opi_body.len());
        all.push(Desire {
            bbs: http_request(
                "POST",
                "/v1/desired_lrp/desire.r2",
                bbs::api::PROTOBUF,
                &id,
                &bbs_body,
            ),
            opi: http_request("PUT", &path, "application/json", &id, &opi_body),
        });
    }
    Ok((all, protobuf / DESIRES, json / DESIRES))
}

/// A `cube bbs` or `cube opi` on a fresh memory backend, killed when dropped.
struct Server {
    proc: Proc,
    url: reqwest::Url,
}

async fn start(cube: &std::path::Path, side: Side) -> anyhow::Result<Server> {
    let (api, admin) = (free_port()?, free_port()?);
    let mut args = vec![
        match side {
            Side::Bbs => "bbs",
            Side::Opi => "opi",
        }
        .to_owned(),
        "--backend".into(),
        "memory".into(),
        "--listen".into(),
        format!("127.0.0.1:{api}"),
        "--admin-listen".into(),
        format!("127.0.0.1:{admin}"),
    ];
    if side == Side::Bbs {
        args.push("--plain-http".into());
        for (stack, image) in fixtures::settings().stacks {
            args.push("--stack".into());
            args.push(format!("{stack}={image}"));
        }
    }
    let mut proc = Proc::spawn(&format!("cube {}", args[0]), cube, &args)?;
    proc.wait_ready(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    )
    .await?;
    Ok(Server {
        proc,
        url: reqwest::Url::parse(&format!("http://127.0.0.1:{api}"))?,
    })
}

/// The answer to one desire, checked as the side's client must.
fn check(side: Side, status: u16, body: &[u8]) -> anyhow::Result<()> {
    match side {
        Side::Bbs => {
            ensure!(status == 200, "desire.r2 answered HTTP {status}");
            let answer = DesiredLrpLifecycleResponse::decode(body)?;
            if let Some(error) = answer.error {
                bail!("desire.r2 answered {:?}: {}", error.r#type(), error.message);
            }
        }
        Side::Opi => ensure!(
            status == 202,
            "PUT /apps answered HTTP {status}: {}",
            String::from_utf8_lossy(body)
        ),
    }
    Ok(())
}

/// How many LRPs `server` holds, read back through its own API.
async fn desired_count(server: &Server, side: Side) -> anyhow::Result<usize> {
    let http = client()?;
    match side {
        Side::Bbs => {
            let url = server.url.join("/v1/desired_lrp_scheduling_infos/list")?;
            let body = DesiredLrPsRequest::default().encode_to_vec();
            let bytes = http
                .post(url)
                .header("content-type", bbs::api::PROTOBUF)
                .body(body)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            let answer = DesiredLrpSchedulingInfosResponse::decode(bytes)?;
            ensure!(answer.error.is_none(), "list answered {:?}", answer.error);
            Ok(answer.desired_lrp_scheduling_infos.len())
        }
        Side::Opi => {
            let list: serde_json::Value = http
                .get(server.url.join("/apps")?)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            list["desired_lrp_scheduling_infos"]
                .as_array()
                .map(Vec::len)
                .context("GET /apps without desired_lrp_scheduling_infos")
        }
    }
}

/// One side's figures in one round.
struct Round {
    rate: f64,
    latency: Latencies,
    /// CPU per desire of the server and of this process (the client).
    server_cpu: Duration,
    client_cpu: Duration,
}

/// Every desire sent to a fresh `side`, `CONCURRENCY` at a time.
async fn round(
    cube: &std::path::Path,
    side: Side,
    desires: &Arc<Vec<Desire>>,
) -> anyhow::Result<Round> {
    let server = start(cube, side).await?;
    let mut connections = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        connections.push(RawClient::connect(&server.url).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = (proc_cpu(server.proc.pid()), own_cpu());
    let started = Instant::now();
    // One task per connection, so they spread over the runtime's threads.
    let clients: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let (next, desires) = (next.clone(), desires.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(desire) = desires.get(i) else { break };
                    let request = match side {
                        Side::Bbs => &desire.bbs,
                        Side::Opi => &desire.opi,
                    };
                    let at = Instant::now();
                    let (status, body) = connection.exchange(request).await?;
                    check(side, status, body)?;
                    mine.push(at.elapsed());
                }
                anyhow::Ok(mine)
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(desires.len());
    for client in clients {
        samples.extend(client.await??);
    }
    let wall = started.elapsed();
    let (server_cpu, client_cpu) = (
        proc_cpu(server.proc.pid()).saturating_sub(cpu_before.0),
        own_cpu().saturating_sub(cpu_before.1),
    );
    let count = desired_count(&server, side).await?;
    ensure!(
        count == desires.len(),
        "{side:?} holds {count} LRPs after {} desires",
        desires.len()
    );
    let n = u32::try_from(samples.len().max(1))?;
    Ok(Round {
        rate: samples.len() as f64 / wall.as_secs_f64(),
        latency: latencies(&mut samples),
        server_cpu: server_cpu / n,
        client_cpu: client_cpu / n,
    })
}

/// The median round by rate, and every rate in run order.
fn median(mut rounds: Vec<Round>) -> anyhow::Result<(Round, String)> {
    let rates = rounds
        .iter()
        .map(|r| format!("{:.0}", r.rate))
        .collect::<Vec<_>>()
        .join(", ");
    rounds.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let middle = rounds.len() / 2;
    let median = rounds.into_iter().nth(middle).context("no rounds")?;
    Ok((median, rates))
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

pub async fn run() -> anyhow::Result<()> {
    let cube = cube_binary()?;
    let (desires, protobuf_bytes, json_bytes) = desires()?;
    let desires = Arc::new(desires);
    let (mut bbs_rounds, mut opi_rounds) = (Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        let order = if r % 2 == 0 {
            [Side::Bbs, Side::Opi]
        } else {
            [Side::Opi, Side::Bbs]
        };
        for side in order {
            let figures = round(&cube, side, &desires).await?;
            match side {
                Side::Bbs => bbs_rounds.push(figures),
                Side::Opi => opi_rounds.push(figures),
            }
        }
    }
    let ((bbs, bbs_rates), (opi, opi_rates)) = (median(bbs_rounds)?, median(opi_rounds)?);
    let ratio = bbs.rate / opi.rate;
    report(
        "bbs-desire",
        "cube opi (Eirini JSON)",
        &[
            Row {
                what: format!("{DESIRES} desires, {CONCURRENCY} in flight (median round)"),
                cube: format!("{:.0} /s", bbs.rate),
                peer: format!("{:.0} /s", opi.rate),
            },
            Row {
                what: format!("rounds (/s, {ROUNDS} each)"),
                cube: bbs_rates,
                peer: opi_rates,
            },
            Row {
                what: "latency p50 / p99".into(),
                cube: format!("{} / {}", ms(bbs.latency.p50), ms(bbs.latency.p99)),
                peer: format!("{} / {}", ms(opi.latency.p50), ms(opi.latency.p99)),
            },
            Row {
                what: "server CPU per desire".into(),
                cube: micros(bbs.server_cpu),
                peer: micros(opi.server_cpu),
            },
            Row {
                what: "client CPU per desire".into(),
                cube: micros(bbs.client_cpu),
                peer: micros(opi.client_cpu),
            },
            Row {
                what: "request body (mean)".into(),
                cube: format!("{protobuf_bytes} B protobuf"),
                peer: format!("{json_bytes} B JSON"),
            },
        ],
        &format!(
            "{:.0} desires/s, p50 {} p99 {} vs OPI {:.0}/s, p50 {} p99 {}; ratio {ratio:.2} \
             (target ≥ {TARGET})",
            bbs.rate,
            ms(bbs.latency.p50),
            ms(bbs.latency.p99),
            opi.rate,
            ms(opi.latency.p50),
            ms(opi.latency.p99),
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_lrp_has_its_own_guids_everywhere() {
        let (even, odd) = (cc_lrp(6).unwrap(), cc_lrp(7).unwrap());
        assert_ne!(even.process_guid, odd.process_guid);
        for lrp in [&even, &odd] {
            let text = String::from_utf8_lossy(&lrp.encode_to_vec()).into_owned();
            assert!(!text.contains(fixtures::APP_GUID), "{}", lrp.process_guid);
            assert!(!text.contains(fixtures::PROCESS_VERSION));
            assert_eq!(lrp.log_guid, guid(0xa99, if lrp == &even { 6 } else { 7 }));
        }
        assert!(even.root_fs.starts_with("preloaded:"));
        assert!(odd.root_fs.starts_with("docker:"));
    }

    #[test]
    fn the_eirini_body_is_the_lrp_cube_bbs_desires() {
        let settings = fixtures::settings();
        for i in 0..4 {
            let body = eirini_body(&cc_lrp(i).unwrap(), &settings).unwrap();
            assert!(body.user_defined_annotations.is_empty());
            assert_eq!(body.guid, guid(0xa99, i));
            assert_eq!(body.instances, if i % 2 == 0 { 21 } else { 2 });
        }
    }

    #[test]
    fn requests_carry_their_body_length() {
        let request = http_request("PUT", "/apps/x", "application/json", "id", b"{}");
        let text = String::from_utf8(request).unwrap();
        assert!(text.starts_with("PUT /apps/x HTTP/1.1\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"));
    }
}
