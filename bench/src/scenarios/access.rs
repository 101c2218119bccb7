//! `access`: what access control costs. OPI (memory backend) serves
//! `GET /apps` over HTTPS with a bearer token, and over HTTPS with a client
//! certificate; the peer, in the same run, is the same OPI over plain HTTP with
//! no credentials. Kept-alive connections show the per-request cost (the
//! token check, TLS record encryption); fresh connections show the handshake.

use std::sync::Arc;
use std::time::Duration;

use cube_runtime::access::{Access, ClientAccess, Secret, ServerTls};
use testkit::access::{CA_PEM, SERVICE_CERT_PEM, SERVICE_KEY_PEM};

use crate::harness::{Row, latencies, ms, report, timed_all};

const REQUESTS: usize = 5_000;
const CONCURRENCY: usize = 32;
const FRESH: usize = 300;
const TOKEN: &str = "bench-token-0123456789abcdef";

/// Starts an OPI over the memory backend with `access`; returns its URL.
async fn opi(access: Access, shutdown: &cube_runtime::Shutdown) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let scheme = if access.tls().is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://127.0.0.1:{}", listener.local_addr()?.port());
    let config = opi::service::ServiceConfig {
        access,
        ..opi::service::ServiceConfig::default()
    };
    let scheduler = Arc::new(opi::memory::MemoryScheduler::new());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let metrics = prometheus::Registry::new();
        opi::service::run(config, scheduler, listener, &metrics, stop).await
    });
    Ok(url)
}

/// `count` GETs of `/apps`, `concurrency` at a time, each on `client()`'s
/// connections; returns the wall time and each request's latency.
async fn load(
    url: &str,
    count: usize,
    concurrency: usize,
    client: impl Fn() -> anyhow::Result<reqwest::Client>,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let shared = client()?;
    let fresh = count == FRESH;
    timed_all(0..count, concurrency, |_| {
        // A fresh client per request forces a new connection (and handshake).
        let http = if fresh { client() } else { Ok(shared.clone()) };
        let url = format!("{url}/apps");
        async move {
            let response = http?.get(url).send().await?;
            anyhow::ensure!(response.status().is_success(), "{}", response.status());
            response.bytes().await?;
            Ok(())
        }
    })
    .await
}

pub async fn run() -> anyhow::Result<()> {
    let shutdown = cube_runtime::Shutdown::new();
    let tls = || ServerTls {
        cert_chain_pem: SERVICE_CERT_PEM.as_bytes().to_vec(),
        key_pem: SERVICE_KEY_PEM.as_bytes().to_vec(),
        client_ca_pem: Some(CA_PEM.as_bytes().to_vec()),
    };
    let secured = opi(
        Access::new(Some(tls()), vec![Secret::new(TOKEN)], &[])?,
        &shutdown,
    )
    .await?;
    let plain = opi(Access::open(), &shutdown).await?;
    let ca = || Some(CA_PEM.as_bytes().to_vec());
    let with_token = || -> anyhow::Result<reqwest::Client> {
        Ok(ClientAccess::new(Some(Secret::new(TOKEN)), ca(), None)?
            .builder()
            .build()?)
    };
    let with_cert = || -> anyhow::Result<reqwest::Client> {
        let identity = format!("{SERVICE_CERT_PEM}\n{SERVICE_KEY_PEM}").into_bytes();
        Ok(ClientAccess::new(None, ca(), Some(identity))?
            .builder()
            .build()?)
    };
    // Built the same way as the others, so only the credentials differ.
    let anonymous = || -> anyhow::Result<reqwest::Client> {
        Ok(ClientAccess::new(None, ca(), None)?.builder().build()?)
    };

    let rate = |(elapsed, samples): &(Duration, Vec<Duration>)| {
        samples.len() as f64 / elapsed.as_secs_f64()
    };
    let mut token = load(&secured, REQUESTS, CONCURRENCY, with_token).await?;
    let mut cert = load(&secured, REQUESTS, CONCURRENCY, with_cert).await?;
    let mut open = load(&plain, REQUESTS, CONCURRENCY, anonymous).await?;
    let mut token_fresh = load(&secured, FRESH, 8, with_token).await?;
    let mut open_fresh = load(&plain, FRESH, 8, anonymous).await?;
    shutdown.cancel();

    let (token_rate, cert_rate, open_rate) = (rate(&token), rate(&cert), rate(&open));
    let (token_l, cert_l, open_l) = (
        latencies(&mut token.1),
        latencies(&mut cert.1),
        latencies(&mut open.1),
    );
    let (fresh_l, open_fresh_l) = (latencies(&mut token_fresh.1), latencies(&mut open_fresh.1));
    report(
        "access",
        "plain HTTP, no auth",
        &[
            Row {
                what: format!("{REQUESTS} GET /apps, {CONCURRENCY} concurrent, TLS + token"),
                cube: format!("{token_rate:.0} /s"),
                peer: format!("{open_rate:.0} /s"),
            },
            Row {
                what: "  latency p50 / p99".into(),
                cube: format!("{} / {}", ms(token_l.p50), ms(token_l.p99)),
                peer: format!("{} / {}", ms(open_l.p50), ms(open_l.p99)),
            },
            Row {
                what: "same, TLS + client certificate".into(),
                cube: format!("{cert_rate:.0} /s"),
                peer: format!("{open_rate:.0} /s"),
            },
            Row {
                what: "  latency p50 / p99".into(),
                cube: format!("{} / {}", ms(cert_l.p50), ms(cert_l.p99)),
                peer: format!("{} / {}", ms(open_l.p50), ms(open_l.p99)),
            },
            Row {
                what: format!("{FRESH} new connections (handshake + token) p50 / p99"),
                cube: format!("{} / {}", ms(fresh_l.p50), ms(fresh_l.p99)),
                peer: format!("{} / {}", ms(open_fresh_l.p50), ms(open_fresh_l.p99)),
            },
        ],
        &format!(
            "TLS+token {token_rate:.0}/s, mTLS {cert_rate:.0}/s, plain {open_rate:.0}/s, \
             ratio {:.2}",
            token_rate / open_rate
        ),
    );
    Ok(())
}
