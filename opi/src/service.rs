//! Running OPI as a service: the HTTP API plus, when a CC URL is configured,
//! the event forwarder, until shutdown.

use std::sync::Arc;

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::forward::{Forwarder, ForwarderConfig, ForwarderMetrics};
use crate::http::{ApiConfig, ApiMetrics, router};
use crate::{Error, Scheduler};

/// Settings of an OPI service.
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// The HTTP API's settings.
    pub api: ApiConfig,
    /// Cloud Controller's internal API; crashes and task completions are
    /// forwarded there. `None`: events are only logged.
    pub cc_url: Option<Url>,
    /// How the API is served (TLS) and who may call it (tokens, client
    /// certificates); refused requests get 401/403 in OPI's error shape.
    pub access: cube_runtime::access::Access,
}

/// Serves the OPI API over `scheduler` on `listener` until `shutdown` fires,
/// registering metrics in `metrics` and forwarding events to CC when configured.
pub async fn run(
    config: ServiceConfig,
    scheduler: Arc<dyn Scheduler>,
    listener: tokio::net::TcpListener,
    metrics: &prometheus::Registry,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let api_metrics = ApiMetrics::register(metrics)
        .map_err(|e| Error::Internal(format!("cannot register metrics: {e}")))?;
    let forwarder = match config.cc_url {
        Some(cc_url) => {
            let forwarder_metrics = ForwarderMetrics::register(metrics)
                .map_err(|e| Error::Internal(format!("cannot register metrics: {e}")))?;
            // CC gets OPI's certificate and CA trust, never Cube's token.
            let forwarder = Forwarder::new(
                ForwarderConfig::new(cc_url),
                &config.api.client,
                forwarder_metrics,
            )?;
            Some(tokio::spawn(
                forwarder.run(scheduler.clone(), shutdown.clone()),
            ))
        }
        None => {
            tracing::info!("no CC URL configured: crash and task events are only logged");
            let mut events = scheduler.events();
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                use futures::StreamExt;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        event = events.next() => match event {
                            Some(event) => tracing::info!(?event, "scheduler event (not forwarded)"),
                            None => break,
                        },
                    }
                }
            }))
        }
    };
    let app = config
        .access
        .guard(router(scheduler, config.api, api_metrics));
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("listener has no address: {e}")))?;
    tracing::info!(%addr, "OPI API listening");
    let served = cube_runtime::serve_with(listener, app, shutdown.clone(), &config.access)
        .await
        .map_err(|e| Error::Internal(format!("OPI server on {addr} failed: {e}")));
    shutdown.cancel();
    if let Some(task) = forwarder {
        let _ = task.await;
    }
    served
}
