//! The route emitter against a real `nats-server` (Debian package
//! `nats-server`, installed by `scripts/install-deps`): what gorouter would
//! receive on `router.register` / `router.unregister`.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{NEVER, NatsServer, emit, is, router, until};
use futures::StreamExt;
use opi::routing::{Endpoint, RouteSource};
use tokio::sync::watch;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_ready_instances_and_repeats_on_the_interval() {
    let Some(server) = NatsServer::start(None) else {
        return;
    };
    let (_client, mut register, _unregister) = router(&server).await;
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
    let (_client, mut register, mut unregister) = router(&server).await;
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
    let (client, mut register, _unregister) = router(&server).await;
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
    let (client, mut register, _unregister) = router(&server).await;
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
    let (_client, mut register, mut unregister) = router(&server).await;
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
        let (_client, mut register, _unregister) = router(&server).await;
        until(
            &mut register,
            "before the restart",
            is(0, &["a.example.com"]),
        )
        .await;
    }

    let server = server.restart();
    let (_client, mut register, _unregister) = router(&server).await;
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
    let (_client, mut register, _unregister) = router(&server).await;
    let source = FakeSource::new(vec![endpoint(0, &["a.example.com"])]);
    let emitter = emit(&server, source, NEVER);
    until(&mut register, "with credentials", is(0, &["a.example.com"])).await;
    emitter.stop().await;
}
