//! Running the BBS API as a service ([`run`]): the routes, task convergence
//! and, with a CC URL, crash reports to Cloud Controller, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use cube_runtime::{ReadyCheck, Service};
use futures::StreamExt;
use opi::Scheduler;
use opi::forward::{Forwarder, ForwarderConfig, ForwarderMetrics};
use reqwest::Url;
use sink::registry::RegistryClient;

use crate::api::{ApiMetrics, Bbs, DEFAULT_MAX_BODY_BYTES, router};
use crate::droplets::{DEFAULT_WAIT, Droplets};
use crate::error::Error;
use crate::tasks::Timing;
use crate::translate::Settings;

/// How long one Registry call (a droplet import included) may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(300);

/// How the API is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS, every client presenting a certificate of the client CA: what
    /// Diego's BBS requires and Cloud Controller presents.
    MutualTls,
    /// Plain HTTP, asked for explicitly (tests, or behind a TLS proxy).
    PlainHttp,
}

impl Transport {
    /// The transport the flags ask for: mutual TLS needs a server
    /// certificate and a client CA; plain HTTP must be asked for, and
    /// excludes a server certificate.
    pub fn choose(plain_http: bool, tls: bool, client_ca: bool) -> Result<Self, Error> {
        match (plain_http, tls, client_ca) {
            (false, true, true) => Ok(Self::MutualTls),
            (true, false, _) => Ok(Self::PlainHttp),
            (true, true, _) => Err(Error::Config(
                "--plain-http serves plain HTTP: leave out --tls-cert and --tls-key".into(),
            )),
            (false, _, _) => Err(Error::Config(
                "the BBS API is served over mutual TLS, as Diego's BBS: give --tls-cert, \
                 --tls-key and --tls-client-ca (the CA of Cloud Controller's \
                 diego.bbs.cert_file), or --plain-http to serve plain HTTP"
                    .into(),
            )),
        }
    }
}

/// Settings of the BBS service.
pub struct Config {
    /// The backend the LRPs run on.
    pub scheduler: Arc<dyn Scheduler>,
    /// How CC's LRPs translate (stacks).
    pub settings: Settings,
    /// The Registry droplet images are imported into; `None`: not checked.
    pub registry_url: Option<Url>,
    /// How long a desire waits for its droplet's import.
    pub droplet_wait: Duration,
    /// Cloud Controller's internal API: instance crashes are reported
    /// there. `None`: crashes are only logged.
    pub cc_url: Option<Url>,
    /// Largest request body read.
    pub max_body_bytes: usize,
    /// Mutual TLS or plain HTTP (checked against the service's access).
    pub transport: Transport,
    /// Task convergence durations.
    pub timing: Timing,
}

impl Config {
    /// Defaults around `scheduler`: no Registry, no CC, mutual TLS.
    pub fn new(scheduler: Arc<dyn Scheduler>) -> Self {
        Self {
            scheduler,
            settings: Settings::default(),
            registry_url: None,
            droplet_wait: DEFAULT_WAIT,
            cc_url: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            transport: Transport::MutualTls,
            timing: Timing::default(),
        }
    }
}

/// Serves the BBS API on `listener` with `service`'s access (TLS, client
/// certificates), metrics and shutdown, until shutdown; task convergence
/// and crash reports run alongside. The scheduler's readiness is added to
/// `/readyz`.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    service: &Service,
) -> Result<(), Error> {
    if config.transport == Transport::MutualTls && service.access.tls().is_none() {
        return Err(Error::Config(
            "mutual TLS asked for, but the service has no TLS configuration".into(),
        ));
    }
    let scheduler = config.scheduler.clone();
    service
        .readiness
        .add(Arc::new(SchedulerReady(scheduler.clone())));
    let bbs = build(&config, service)?;
    let metrics = ApiMetrics::register(&service.metrics).map_err(metrics_error)?;
    let shutdown = service.shutdown.clone();
    let convergence = tokio::spawn(bbs.callbacks().converge(config.timing));
    let events = spawn_events(config.cc_url, scheduler, service)?;
    let addr = listener.local_addr().map_err(cube_runtime::Error::Io)?;
    tracing::info!(%addr, transport = ?config.transport, "BBS API listening");
    let served = service
        .serve(listener, router(Arc::new(bbs), metrics))
        .await;
    // The server may have failed on its own: stop the loops either way.
    shutdown.cancel();
    let _ = convergence.await;
    let _ = events.await;
    Ok(served?)
}

/// The routes' shared state from `config`.
fn build(config: &Config, service: &Service) -> Result<Bbs, Error> {
    let registry = match &config.registry_url {
        Some(url) => {
            // The Registry is a Cube service: Cube's token and TLS apply.
            let http = service
                .client
                .builder()
                .timeout(REGISTRY_TIMEOUT)
                .build()
                .map_err(|e| Error::Config(format!("cannot build the Registry client: {e}")))?;
            Some(RegistryClient::new(url.clone(), http))
        }
        None => None,
    };
    Ok(Bbs::new(
        config.scheduler.clone(),
        config.settings.clone(),
        &service.client,
        service.shutdown.clone(),
    )?
    .with_droplets(Droplets::new(registry, config.droplet_wait))
    .with_max_body_bytes(config.max_body_bytes))
}

/// Reports the scheduler's crash events to CC with opi's [`Forwarder`]
/// (retries, bounded queue), or logs them without a CC URL.
fn spawn_events(
    cc_url: Option<Url>,
    scheduler: Arc<dyn Scheduler>,
    service: &Service,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let shutdown = service.shutdown.clone();
    let Some(cc_url) = cc_url else {
        tracing::info!("no CC URL: instance crashes are only logged");
        let mut events = scheduler.events();
        return Ok(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    event = events.next() => match event {
                        Some(event) => tracing::info!(?event, "scheduler event (not reported)"),
                        None => break,
                    },
                }
            }
        }));
    };
    let metrics = ForwarderMetrics::register(&service.metrics).map_err(metrics_error)?;
    // CC gets Cube's client certificate and CA trust, never Cube's token.
    let forwarder = Forwarder::new(ForwarderConfig::new(cc_url), &service.client, metrics)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(tokio::spawn(forwarder.run(scheduler, shutdown)))
}

fn metrics_error(error: prometheus::Error) -> Error {
    Error::Config(format!("cannot register metrics: {error}"))
}

/// `/readyz` follows the scheduler's readiness.
pub struct SchedulerReady(pub Arc<dyn Scheduler>);

#[async_trait::async_trait]
impl ReadyCheck for SchedulerReady {
    fn name(&self) -> &str {
        "scheduler"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutual_tls_needs_a_certificate_and_a_client_ca() {
        assert_eq!(
            Transport::choose(false, true, true).ok(),
            Some(Transport::MutualTls)
        );
        for (tls, client_ca) in [(false, false), (true, false), (false, true)] {
            let refused = Transport::choose(false, tls, client_ca).unwrap_err();
            assert!(
                refused.to_string().contains("--plain-http"),
                "{tls} {client_ca}: {refused}"
            );
        }
    }

    #[test]
    fn plain_http_is_asked_for_and_alone() {
        assert_eq!(
            Transport::choose(true, false, false).ok(),
            Some(Transport::PlainHttp)
        );
        assert!(Transport::choose(true, true, true).is_err());
    }
}
