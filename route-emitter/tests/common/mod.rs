//! Shared by the route emitter's tests: a real `nats-server` on a free
//! 127.0.0.1 port, and readers of what gorouter would receive.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::Subscriber;
use futures::StreamExt;
use std::sync::Arc;

use opi::routing::RouteSource;
use route_emitter::message::RegistryMessage;
use route_emitter::{EmitterConfig, EmitterMetrics};
use tokio_util::sync::CancellationToken;

/// Long enough for a reconnection with async-nats' backoff (≤ 4 s).
pub const PATIENCE: Duration = Duration::from_secs(20);
/// Heartbeats never come within a test when this is the interval.
pub const NEVER: Duration = Duration::from_secs(3600);

/// A `nats-server` on a free 127.0.0.1 port, killed (by its PID) on drop.
pub struct NatsServer {
    child: Child,
    port: u16,
    pub auth: Option<(&'static str, &'static str)>,
}

impl NatsServer {
    /// Starts one, or returns `None` (loudly) when `nats-server` is not
    /// installed outside CI. In CI a missing server fails the test.
    pub fn start(auth: Option<(&'static str, &'static str)>) -> Option<Self> {
        let installed = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "nats-server is not installed; scripts/install-deps installs it"
            );
            eprintln!("SKIPPED: nats-server is not installed (run scripts/install-deps)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Some(Self::on_port(port, auth))
    }

    fn on_port(port: u16, auth: Option<(&'static str, &'static str)>) -> Self {
        let mut command = Command::new("nats-server");
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, password)) = auth {
            command.args(["--user", user, "--pass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self { child, port, auth };
        server.wait_listening();
        server
    }

    fn wait_listening(&self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nats-server did not listen on {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it and starts a new one on the same port.
    pub fn restart(mut self) -> Self {
        self.stop();
        Self::on_port(self.port, self.auth)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A client subscribed to both route subjects, as gorouter is.
    pub async fn router(&self) -> (async_nats::Client, Subscriber, Subscriber) {
        let mut options = async_nats::ConnectOptions::new();
        if let Some((user, password)) = self.auth {
            options = options.user_and_password(user.into(), password.into());
        }
        let client = options.connect(self.url()).await.unwrap();
        let register = client.subscribe("router.register").await.unwrap();
        let unregister = client.subscribe("router.unregister").await.unwrap();
        client.flush().await.unwrap();
        (client, register, unregister)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
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
    if let Some((user, password)) = server.auth {
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
