//! The route emitter against a real `nats-server` (Debian package
//! `nats-server`, installed by `scripts/install-deps`): what gorouter would
//! receive on `router.register` / `router.unregister`.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Subscriber;
use futures::StreamExt;
use opi::routing::{Endpoint, RouteSource};
use route_emitter::message::RegistryMessage;
use route_emitter::{EmitterConfig, EmitterMetrics};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Long enough for a reconnection with async-nats' backoff (≤ 4 s).
const PATIENCE: Duration = Duration::from_secs(20);
/// Heartbeats never come within a test when this is the interval.
const NEVER: Duration = Duration::from_secs(3600);

/// A `nats-server` on a free 127.0.0.1 port, killed (by its PID) on drop.
struct NatsServer {
    child: Child,
    port: u16,
    auth: Option<(&'static str, &'static str)>,
}

impl NatsServer {
    /// Starts one, or returns `None` (loudly) when `nats-server` is not
    /// installed outside CI. In CI a missing server fails the test.
    fn start(auth: Option<(&'static str, &'static str)>) -> Option<Self> {
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

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it and starts a new one on the same port.
    fn restart(mut self) -> Self {
        self.stop();
        Self::on_port(self.port, self.auth)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A client subscribed to both route subjects, as gorouter is.
    async fn router(&self) -> (async_nats::Client, Subscriber, Subscriber) {
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

/// A backend stand-in whose endpoints the test sets.
struct FakeSource {
    endpoints: Mutex<Vec<Endpoint>>,
    changes: watch::Sender<u64>,
}

impl FakeSource {
    fn new(endpoints: Vec<Endpoint>) -> Arc<Self> {
        Arc::new(Self {
            endpoints: Mutex::new(endpoints),
            changes: watch::Sender::new(0),
        })
    }

    fn set(&self, endpoints: Vec<Endpoint>) {
        *self.endpoints.lock().unwrap() = endpoints;
        self.changes.send_modify(|n| *n += 1);
    }
}

impl RouteSource for FakeSource {
    fn endpoints(&self) -> Vec<Endpoint> {
        self.endpoints.lock().unwrap().clone()
    }
    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

fn endpoint(index: u32, hostnames: &[&str]) -> Endpoint {
    Endpoint {
        process_guid: "app-guid-v1".into(),
        app_guid: "app-guid".into(),
        instance_guid: format!("instance-{index}"),
        index,
        host: "127.0.0.1".into(),
        port: 61000 + u16::try_from(index).unwrap(),
        container_port: 8080,
        hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
    }
}

/// A running emitter, stopped (unregistering) by `stop`.
struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), route_emitter::Error>>,
    metrics: EmitterMetrics,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn emit(server: &NatsServer, source: Arc<FakeSource>, interval: Duration) -> Running {
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

/// Reads messages until one satisfies `want`; panics after `PATIENCE`.
async fn until(
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

fn is(index: u32, uris: &[&str]) -> impl Fn(&RegistryMessage) -> bool {
    let uris: Vec<String> = uris.iter().map(|u| u.to_string()).collect();
    move |m| m.private_instance_index == index.to_string() && m.uris == uris
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_ready_instances_and_repeats_on_the_interval() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let (_client, mut register, _unregister) = server.router().await;
    let source = FakeSource::new(vec![
        endpoint(0, &["a.example.com", "b.example.com"]),
        endpoint(1, &["a.example.com", "b.example.com"]),
    ]);
    let emitter = emit(&server, source, Duration::from_secs(1));

    let first = until(
        &mut register,
        "for instance 0",
        is(0, &["a.example.com", "b.example.com"]),
    )
    .await;
    assert_eq!(
        serde_json::to_value(&first).unwrap(),
        serde_json::json!({
            "host": "127.0.0.1",
            "port": 61000,
            "uris": ["a.example.com", "b.example.com"],
            "app": "app-guid",
            "private_instance_id": "instance-0",
            "private_instance_index": "0",
            "server_cert_domain_san": "instance-0",
            "tags": {"component": "route-emitter"},
        })
    );
    until(
        &mut register,
        "for instance 1",
        is(1, &["a.example.com", "b.example.com"]),
    )
    .await;
    // The heartbeat repeats both without any change.
    until(
        &mut register,
        "repeating instance 0",
        is(0, &["a.example.com", "b.example.com"]),
    )
    .await;
    until(
        &mut register,
        "repeating instance 1",
        is(1, &["a.example.com", "b.example.com"]),
    )
    .await;
    let published = emitter
        .metrics
        .messages
        .with_label_values(&["router.register"])
        .get();
    assert!(published >= 4, "{published}");
    assert_eq!(emitter.metrics.endpoints.get(), 2);
    emitter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_instances_and_renamed_routes_are_unregistered_on_change() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let (_client, mut register, mut unregister) = server.router().await;
    let source = FakeSource::new(vec![
        endpoint(0, &["a.example.com"]),
        endpoint(1, &["a.example.com"]),
    ]);
    // No heartbeat within the test: every message below answers a change.
    let emitter = emit(&server, source.clone(), NEVER);
    until(&mut register, "for instance 1", is(1, &["a.example.com"])).await;

    source.set(vec![endpoint(0, &["a.example.com"])]);
    until(
        &mut unregister,
        "for stopped instance 1",
        is(1, &["a.example.com"]),
    )
    .await;

    source.set(vec![endpoint(0, &["renamed.example.com"])]);
    until(
        &mut unregister,
        "for the old hostname",
        is(0, &["a.example.com"]),
    )
    .await;
    until(
        &mut register,
        "for the new hostname",
        is(0, &["renamed.example.com"]),
    )
    .await;
    emitter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_start_sets_the_interval_and_gets_every_route_at_once() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let (client, mut register, _unregister) = server.router().await;
    let source = FakeSource::new(vec![endpoint(0, &["a.example.com"])]);
    let emitter = emit(&server, source, NEVER);
    until(&mut register, "on start", is(0, &["a.example.com"])).await;

    // What gorouter publishes when it boots.
    client
        .publish(
            "router.start",
            r#"{"id":"router-1","hosts":["127.0.0.1"],"minimumRegisterIntervalInSeconds":1,"pruneThresholdInSeconds":120}"#.into(),
        )
        .await
        .unwrap();
    until(
        &mut register,
        "for the new router",
        is(0, &["a.example.com"]),
    )
    .await;
    // And from then on every second, although the emitter's own interval is an hour.
    until(
        &mut register,
        "on the router's interval",
        is(0, &["a.example.com"]),
    )
    .await;
    until(
        &mut register,
        "on the router's interval again",
        is(0, &["a.example.com"]),
    )
    .await;
    assert!(emitter.metrics.greetings.get() >= 1);
    emitter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routers_answering_the_greeting_set_the_interval() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let (client, mut register, _unregister) = server.router().await;
    // A gorouter answers router.greet on the asker's inbox.
    let mut greets = client.subscribe("router.greet").await.unwrap();
    client.flush().await.unwrap();
    let answering = client.clone();
    tokio::spawn(async move {
        while let Some(greet) = greets.next().await {
            if let Some(reply) = greet.reply {
                let _ = answering
                    .publish(reply, r#"{"minimumRegisterIntervalInSeconds":1}"#.into())
                    .await;
            }
        }
    });
    let source = FakeSource::new(vec![endpoint(0, &["a.example.com"])]);
    let emitter = emit(&server, source, NEVER);
    for round in 0..4 {
        until(
            &mut register,
            &format!("round {round}"),
            is(0, &["a.example.com"]),
        )
        .await;
    }
    emitter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_unregisters_everything_and_a_new_emitter_registers_again() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let (_client, mut register, mut unregister) = server.router().await;
    let source = FakeSource::new(vec![
        endpoint(0, &["a.example.com"]),
        endpoint(1, &["b.example.com"]),
    ]);
    let emitter = emit(&server, source.clone(), NEVER);
    until(&mut register, "instance 1", is(1, &["b.example.com"])).await;

    emitter.stop().await;
    until(
        &mut unregister,
        "instance 0 on shutdown",
        is(0, &["a.example.com"]),
    )
    .await;
    until(
        &mut unregister,
        "instance 1 on shutdown",
        is(1, &["b.example.com"]),
    )
    .await;

    let again = emit(&server, source, NEVER);
    until(
        &mut register,
        "instance 0 after the restart",
        is(0, &["a.example.com"]),
    )
    .await;
    until(
        &mut register,
        "instance 1 after the restart",
        is(1, &["b.example.com"]),
    )
    .await;
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_resume_after_the_nats_server_restarts() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let source = FakeSource::new(vec![endpoint(0, &["a.example.com"])]);
    let emitter = emit(&server, source, Duration::from_secs(1));
    {
        let (_client, mut register, _unregister) = server.router().await;
        until(
            &mut register,
            "before the restart",
            is(0, &["a.example.com"]),
        )
        .await;
    }

    let server = server.restart();
    let (_client, mut register, _unregister) = server.router().await;
    until(
        &mut register,
        "after the restart",
        is(0, &["a.example.com"]),
    )
    .await;
    emitter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_reach_a_server_that_requires_them() {
    let Some(server) = NatsServer::start(Some(("cube", "s3cret-pass"))) else {
        return;
    };
    let (_client, mut register, _unregister) = server.router().await;
    let source = FakeSource::new(vec![endpoint(0, &["a.example.com"])]);
    let emitter = emit(&server, source, NEVER);
    until(&mut register, "with credentials", is(0, &["a.example.com"])).await;
    emitter.stop().await;
}
