//! The emitter loop: connect to NATS, keep gorouter's table equal to the
//! backend's ready endpoints, unregister everything on shutdown.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event, ServerAddr};
use futures::StreamExt;
use opi::routing::{Endpoint, RouteSource};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::diff::{self, Changes};
use crate::message::{
    REGISTER, ROUTER_GREET, ROUTER_START, RegistryMessage, RouterGreeting, UNREGISTER,
};
use crate::{EmitterMetrics, Error};

/// How often every registration is repeated when no router says otherwise.
/// gorouter prunes a route 120 s after its last registration; CF recommends 20 s.
pub const DEFAULT_REGISTER_INTERVAL: Duration = Duration::from_secs(20);
/// How long a burst of endpoint changes is gathered before it is published.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);
/// Longest a batch of messages may take to reach the server before the
/// batch counts as failed (the next change or heartbeat repeats it).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the route emitter.
#[derive(Clone)]
pub struct EmitterConfig {
    /// NATS servers, comma-separated (`nats://host:4222,…`; `tls://` for TLS).
    pub servers: String,
    /// NATS user name, if the servers require one.
    pub user: Option<String>,
    /// NATS password (never logged).
    pub password: Option<String>,
    /// Heartbeat interval until a gorouter announces its own
    /// `minimumRegisterIntervalInSeconds`, which then wins.
    pub register_interval: Duration,
    /// How long endpoint changes are gathered before publishing.
    pub debounce: Duration,
}

impl EmitterConfig {
    /// Defaults for the servers `servers`.
    pub fn new(servers: impl Into<String>) -> Self {
        Self {
            servers: servers.into(),
            user: None,
            password: None,
            register_interval: DEFAULT_REGISTER_INTERVAL,
            debounce: DEFAULT_DEBOUNCE,
        }
    }

    /// Checks the settings [`run`] would refuse, so a service can fail at
    /// start rather than when the emitter task is joined.
    pub fn check(&self) -> Result<(), Error> {
        servers(&self.servers).map(|_| ())
    }
}

impl fmt::Debug for EmitterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmitterConfig")
            .field("servers", &redact_urls(&self.servers))
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("register_interval", &self.register_interval)
            .field("debounce", &self.debounce)
            .finish()
    }
}

/// The server list with any `user:password@` replaced, for logs.
fn redact_urls(servers: &str) -> String {
    servers
        .split(',')
        .map(|url| match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}<redacted>{}", &url[..scheme + 3], &url[at..])
            }
            _ => url.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the comma-separated server list.
fn servers(list: &str) -> Result<Vec<ServerAddr>, Error> {
    let servers = list
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse::<ServerAddr>().map_err(|e| Error::InvalidUrl {
                url: redact_urls(url),
                message: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(Error::NoServers);
    }
    Ok(servers)
}

/// Registers `source`'s endpoints with every gorouter listening on the NATS
/// servers of `config` until `shutdown` fires, then unregisters them.
///
/// - On start, on every (re)connection and on every router greeting, all
///   endpoints are registered again; otherwise every `register_interval` (or
///   the interval a router asks for on `router.start`).
/// - When `source` reports a change, the difference is published after
///   `config.debounce`: new endpoints and hostnames registered, gone ones
///   unregistered.
/// - An unreachable server delays nothing: the client reconnects by itself,
///   and a full registration follows the reconnection.
pub async fn run(
    config: EmitterConfig,
    source: Arc<dyn RouteSource>,
    metrics: EmitterMetrics,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let servers = servers(&config.servers)?;
    let (events_tx, mut events) = mpsc::channel::<Event>(64);
    let mut options = ConnectOptions::new()
        .name("cube-route-emitter")
        .retry_on_initial_connect()
        .event_callback(move |event| {
            let events_tx = events_tx.clone();
            async move {
                // A full channel only loses repeats of what is queued already.
                let _ = events_tx.try_send(event);
            }
        });
    if let Some(user) = &config.user {
        options =
            options.user_and_password(user.clone(), config.password.clone().unwrap_or_default());
    }
    let client = options
        .connect(servers)
        .await
        .map_err(|e| Error::Connect(e.to_string()))?;
    let subscribe = |subject: String| {
        let client = client.clone();
        async move {
            client
                .subscribe(subject.clone())
                .await
                .map_err(|e| Error::Subscribe {
                    subject,
                    message: e.to_string(),
                })
        }
    };
    let mut starts = subscribe(ROUTER_START.to_owned()).await?;
    let inbox = client.new_inbox();
    let mut answers = subscribe(inbox.clone()).await?;
    tracing::info!(servers = %redact_urls(&config.servers), "route emitter started");

    let mut changes = source.changes();
    let mut emitter = Emitter {
        client,
        source,
        metrics,
        published: Vec::new(),
        inbox,
    };
    emitter.greet().await;
    emitter.sync(true).await;
    let mut heartbeat = Heartbeat::new(config.register_interval);
    let mut source_open = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = heartbeat.ticker.tick() => emitter.sync(true).await,
            changed = changes.changed(), if source_open => {
                if changed.is_err() {
                    tracing::warn!("the backend stopped reporting endpoint changes; only heartbeats follow");
                    source_open = false;
                    continue;
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(config.debounce) => {}
                }
                changes.borrow_and_update();
                emitter.sync(false).await;
            }
            Some(message) = starts.next() => {
                heartbeat.adopt(emitter.greeted(&message.payload));
                // A router that just started has an empty table.
                emitter.sync(true).await;
            }
            Some(message) = answers.next() => heartbeat.adopt(emitter.greeted(&message.payload)),
            Some(event) = events.recv() => match event {
                Event::Connected => {
                    tracing::info!("connected to NATS; registering every route");
                    emitter.greet().await;
                    emitter.sync(true).await;
                }
                Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
                Event::ClientError(e) => {
                    emitter.metrics.nats_errors.inc();
                    tracing::warn!(error = %e, "NATS client error");
                }
                Event::ServerError(e) => {
                    emitter.metrics.nats_errors.inc();
                    tracing::warn!(error = %e, "NATS server error");
                }
                other => tracing::debug!(event = %other, "NATS event"),
            },
        }
    }
    emitter.unregister_all().await;
    Ok(())
}

/// When every registration is repeated.
struct Heartbeat {
    interval: Duration,
    ticker: Interval,
}

impl Heartbeat {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            ticker: Self::ticker(interval),
        }
    }

    fn ticker(every: Duration) -> Interval {
        let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    }

    /// Follows the interval a router asked for (CF's route-emitter emits on
    /// exactly the interval gorouter announces).
    fn adopt(&mut self, asked: Option<Duration>) {
        match asked {
            Some(asked) if asked != self.interval => {
                tracing::info!(?asked, "a router set the registration interval");
                self.interval = asked;
                self.ticker = Self::ticker(asked);
            }
            _ => {}
        }
    }
}

struct Emitter {
    client: Client,
    source: Arc<dyn RouteSource>,
    metrics: EmitterMetrics,
    /// What gorouter was last told successfully.
    published: Vec<Endpoint>,
    /// Where routers answer `router.greet`.
    inbox: String,
}

impl Emitter {
    /// Asks running routers for their registration interval.
    async fn greet(&self) {
        if let Err(e) = self
            .client
            .publish_with_reply(ROUTER_GREET, self.inbox.clone(), Vec::new().into())
            .await
        {
            self.metrics.nats_errors.inc();
            tracing::warn!(error = %e, "cannot greet routers");
        }
    }

    /// The interval a router's greeting asks for, if it says one.
    fn greeted(&self, payload: &[u8]) -> Option<Duration> {
        self.metrics.greetings.inc();
        match serde_json::from_slice::<RouterGreeting>(payload) {
            Ok(greeting) if greeting.minimum_register_interval_in_seconds > 0 => Some(
                Duration::from_secs(greeting.minimum_register_interval_in_seconds),
            ),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a router greeting that does not parse");
                None
            }
        }
    }

    /// Publishes what changed since the last successful publish (`full`:
    /// every registration again as well).
    async fn sync(&mut self, full: bool) {
        let now = self.source.endpoints();
        let changes = if full {
            diff::resync(&self.published, &now)
        } else {
            diff::diff(&self.published, &now)
        };
        if changes.is_empty() {
            self.published = now;
            return;
        }
        if self.client.connection_state() != State::Connected {
            // Kept as unpublished: the reconnection's full sync sends it.
            self.metrics.nats_errors.inc();
            tracing::debug!("not connected to NATS; route changes wait for the reconnection");
            return;
        }
        match self.publish(&changes).await {
            Ok(()) => {
                self.metrics
                    .endpoints
                    .set(i64::try_from(diff::registrations(&now).len()).unwrap_or(i64::MAX));
                self.published = now;
            }
            Err(e) => {
                self.metrics.nats_errors.inc();
                tracing::warn!(error = %e, "cannot publish route registrations; retrying with the next change or heartbeat");
            }
        }
    }

    /// Unregisters everything gorouter was told, before shutting down.
    async fn unregister_all(&mut self) {
        let changes = Changes {
            unregister: diff::registrations(&self.published),
            register: Vec::new(),
        };
        if changes.is_empty() {
            return;
        }
        if self.client.connection_state() != State::Connected {
            tracing::warn!(
                "not connected to NATS at shutdown; gorouter prunes the routes after its threshold"
            );
            return;
        }
        match self.publish(&changes).await {
            Ok(()) => {
                tracing::info!(count = changes.unregister.len(), "unregistered every route");
                self.metrics.endpoints.set(0);
                self.published.clear();
            }
            Err(e) => {
                self.metrics.nats_errors.inc();
                tracing::warn!(error = %e, "cannot unregister routes on shutdown; gorouter prunes them after its threshold");
            }
        }
    }

    /// Sends `changes` (unregistrations first) and waits until the server
    /// has them.
    async fn publish(&self, changes: &Changes) -> Result<(), String> {
        let send = async {
            for (subject, messages) in [
                (UNREGISTER, &changes.unregister),
                (REGISTER, &changes.register),
            ] {
                for message in messages {
                    self.send(subject, message).await?;
                }
            }
            self.client.flush().await.map_err(|e| e.to_string())
        };
        tokio::time::timeout(PUBLISH_TIMEOUT, send)
            .await
            .map_err(|_| format!("NATS did not take the messages within {PUBLISH_TIMEOUT:?}"))?
    }

    async fn send(&self, subject: &'static str, message: &RegistryMessage) -> Result<(), String> {
        let body =
            serde_json::to_vec(message).map_err(|e| format!("cannot encode {subject}: {e}"))?;
        self.client
            .publish(subject, body.into())
            .await
            .map_err(|e| format!("cannot publish {subject}: {e}"))?;
        self.metrics.messages.with_label_values(&[subject]).inc();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn server_lists_parse_and_bad_ones_are_named() {
        assert_eq!(
            servers("nats://127.0.0.1:4222, 127.0.0.1:4223")
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(servers(" , "), Err(Error::NoServers)));
        let err = servers("nats://user:secret@bad host:4222")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid NATS server URL"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let mut config = EmitterConfig::new("nats://u:inline-secret@127.0.0.1:4222");
        config.user = Some("u".into());
        config.password = Some("flag-secret".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("127.0.0.1:4222"), "{shown}");
    }
}
