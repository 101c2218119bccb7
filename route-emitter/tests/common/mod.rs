//! Shared by the route emitter's tests: a gorouter stand-in subscribed on a
//! real `nats-server` (testkit), and readers of what it receives.

#![allow(clippy::unwrap_used, dead_code)]

use std::time::Duration;

use async_nats::Subscriber;
use futures::StreamExt;
use std::sync::Arc;

use opi::routing::RouteSource;
use route_emitter::message::RegistryMessage;
use route_emitter::{EmitterConfig, EmitterMetrics};
pub use testkit::nats::NatsServer;
use tokio_util::sync::CancellationToken;

/// Long enough for a reconnection with async-nats' backoff (≤ 4 s).
pub const PATIENCE: Duration = Duration::from_secs(20);
/// Heartbeats never come within a test when this is the interval.
pub const NEVER: Duration = Duration::from_secs(3600);

/// A client subscribed to both route subjects, as gorouter is.
pub async fn router(server: &NatsServer) -> (async_nats::Client, Subscriber, Subscriber) {
    let mut options = async_nats::ConnectOptions::new();
    if let Some((user, password)) = server.auth() {
        options = options.user_and_password(user.into(), password.into());
    }
    let client = options.connect(server.url()).await.unwrap();
    let register = client.subscribe("router.register").await.unwrap();
    let unregister = client.subscribe("router.unregister").await.unwrap();
    client.flush().await.unwrap();
    (client, register, unregister)
}

/// Reads messages until one satisfies `want`; panics after `PATIENCE`.
pub async fn until(
    subscriber: &mut Subscriber,
    what: &str,
    want: impl Fn(&RegistryMessage) -> bool,
) -> RegistryMessage {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(message) = subscriber.next().await {
            let body: RegistryMessage = serde_json::from_slice(&message.payload).unwrap();
            if want(&body) {
                return Some(body);
            }
            seen.push(body);
        }
        None
    })
    .await;
    match found {
        Ok(Some(body)) => body,
        _ => panic!("no message {what} within {PATIENCE:?}; saw {seen:#?}"),
    }
}

pub fn is(index: u32, uris: &[&str]) -> impl Fn(&RegistryMessage) -> bool {
    let uris: Vec<String> = uris.iter().map(|u| u.to_string()).collect();
    move |m| m.private_instance_index == index.to_string() && m.uris == uris
}

/// A running emitter, stopped (unregistering) by `stop`.
pub struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), route_emitter::Error>>,
    pub metrics: EmitterMetrics,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

pub fn emit(server: &NatsServer, source: Arc<dyn RouteSource>, interval: Duration) -> Running {
    let mut config = EmitterConfig::new(server.url());
    config.register_interval = interval;
    if let Some((user, password)) = server.auth() {
        config.user = Some(user.into());
        config.password = Some(password.into());
    }
    let metrics = EmitterMetrics::register(&prometheus::Registry::new()).unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(route_emitter::run(
        config,
        source,
        metrics.clone(),
        shutdown.clone(),
    ));
    Running {
        shutdown,
        task,
        metrics,
    }
}
