//! The Sink: keeps the scheduler equal to what Cloud Controller desires,
//! doing no work when nothing changed.
//!
//! Every `interval` a cycle ([`cycle::Converger::cycle`]):
//!
//! 1. walks CC's fingerprints (`{process_guid, etag}`, paged) — a failed page
//!    fails the cycle before anything is written;
//! 2. lists OPI's LRPs (`GET /apps`; each carries the etag it was made from as
//!    its annotation);
//! 3. diffs them ([`diff`], pure): new process guids are desired, changed etags
//!    are updated (instances, routes) or re-desired (anything else), LRPs CC no
//!    longer has are stopped — a new version of an app is a new process guid,
//!    so its old version is stopped after the new one is desired;
//! 4. fetches full records only for new and changed guids and translates them
//!    ([`translate`], pure) — buildpack apps name their droplet, whose image
//!    the registry must hold ([`registry`]: `HEAD`, import from `droplet_uri`);
//! 5. writes with bounded concurrency. Stops are refused altogether when they
//!    would stop more than `max_stop_fraction` of all LRPs (and more than
//!    `mass_stop_min`), unless `allow_mass_stop`.
//!
//! The Sink keeps no state: both sides are re-read every cycle.

#![warn(missing_docs)]
pub mod cycle;
pub mod diff;
mod error;
pub mod leader;
pub mod metrics;
pub mod registry;
pub mod translate;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use cycle::{Converger, CycleReport, Settings};
pub use error::Error;

/// Everything the Sink needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to reach CC's internal API.
    pub cc: cc::ClientConfig,
    /// OPI's base URL.
    pub opi_url: String,
    /// The registry's base URL; `None` skips the image check.
    pub registry_url: Option<String>,
    /// Time between cycles.
    pub interval: Duration,
    /// Cycle behaviour.
    pub settings: Settings,
    /// Leader election: only the holder of this Lease writes. `None`: always write.
    pub leader_election: Option<leader::LeaseConfig>,
}

/// Builds the converger from `config`, registering metrics in `registry`.
pub fn converger(config: &Config, registry: &prometheus::Registry) -> Result<Converger, Error> {
    let cc = cc::Client::new(config.cc.clone())?;
    // OPI and the Registry are Cube services: Cube's access settings (kept
    // with CC's client config, which only uses their TLS part) apply in full.
    let http = config
        .cc
        .access
        .builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Config(format!("cannot build HTTP client: {e}")))?;
    let opi = opi::http::OpiClient::with_http(&config.opi_url, http.clone())?;
    let registry_client = config
        .registry_url
        .as_deref()
        .map(|url| {
            reqwest::Url::parse(url)
                .map(|url| registry::RegistryClient::new(url, http.clone()))
                .map_err(|e| Error::Config(format!("registry URL {url:?}: {e}")))
        })
        .transpose()?;
    let metrics = metrics::Metrics::register(registry)?;
    Ok(Converger::new(
        cc,
        opi,
        registry_client,
        config.settings.clone(),
        metrics,
    ))
}

/// Runs cycles until `service.shutdown` fires. After a failed cycle the next
/// one comes sooner (1 s, doubling up to the interval). `/readyz` fails when
/// the last successful cycle is older than three intervals.
pub async fn run(config: Config, service: cube_runtime::Service) -> Result<(), Error> {
    let leadership = match &config.leader_election {
        None => leader::Leadership::always(),
        Some(lease) => {
            let client = kube::Client::try_default().await.map_err(|e| {
                Error::Config(format!("leader election needs Kubernetes access: {e}"))
            })?;
            let api = kube::Api::namespaced(client, &lease.namespace);
            leader::campaign(api, lease.clone(), service.shutdown.clone())
        }
    };
    run_with(config, service, leadership).await
}

/// [`run`] with a given [`leader::Leadership`] (tests pass their own).
pub async fn run_with(
    config: Config,
    service: cube_runtime::Service,
    leadership: leader::Leadership,
) -> Result<(), Error> {
    let converger = converger(&config, &service.metrics)?;
    let last_success: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let interval = config.interval;
    {
        let last_success = last_success.clone();
        service.readiness.add_fn("last successful cycle", move || {
            let last = *last_success
                .lock()
                .map_err(|_| "lock poisoned".to_owned())?;
            match last {
                Some(at) if at.elapsed() <= interval * 3 => Ok(()),
                Some(at) => Err(format!("last successful cycle {:?} ago", at.elapsed())),
                None => Err("no successful cycle yet".into()),
            }
        });
    }
    let mut retry = Duration::from_secs(1);
    loop {
        if !leadership.is_leader() {
            // A standby: stay ready (it is healthy), write nothing.
            if let Ok(mut last) = last_success.lock() {
                *last = Some(Instant::now());
            }
            tokio::select! {
                () = service.shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(Duration::from_millis(500).min(interval)) => continue,
            }
        }
        let next = match converger.cycle().await {
            Ok(report) => {
                if let Ok(mut last) = last_success.lock() {
                    *last = Some(Instant::now());
                }
                if report.writes() > 0 || !report.errors.is_empty() || report.stops_refused > 0 {
                    tracing::info!(
                        cc_apps = report.cc_apps,
                        desired = report.desired,
                        updated = report.updated,
                        redesired = report.redesired,
                        stopped = report.stopped,
                        imported = report.imported,
                        errors = report.errors.len(),
                        stops_refused = report.stops_refused,
                        "cycle done"
                    );
                } else {
                    tracing::debug!(cc_apps = report.cc_apps, "cycle done; nothing changed");
                }
                retry = Duration::from_secs(1);
                interval
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?retry, "cycle failed; nothing was written");
                let wait = retry.min(interval);
                retry = (retry * 2).min(interval);
                wait
            }
        };
        tokio::select! {
            () = service.shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(next) => {}
        }
    }
}
