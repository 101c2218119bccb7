//! A Diego backend connected over mutual TLS to a fresh fake BBS.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use opi::Scheduler;
use opi::conformance::{Harness, TaskOutcome};
use opi::model::{LrpId, LrpLifecycle};
use opi_diego::{DiegoConfig, DiegoScheduler, TlsPem};
use testkit::bbs::{FakeBbs, tls};

/// Registry host of droplet images in these tests.
pub const REGISTRY: &str = "127.0.0.1:8087";

/// The test client's TLS material.
pub fn client_tls() -> TlsPem {
    TlsPem {
        ca: tls::CA_PEM.as_bytes().to_vec(),
        cert: tls::CLIENT_CERT_PEM.as_bytes().to_vec(),
        key: tls::CLIENT_KEY_PEM.as_bytes().to_vec(),
    }
}

pub fn config(bbs: &FakeBbs) -> DiegoConfig {
    DiegoConfig {
        bbs_url: bbs.url().parse().unwrap(),
        tls: Some(client_tls()),
        registry: REGISTRY.into(),
        domain_ttl: Duration::from_secs(120),
    }
}

/// Waits (bounded) until the backend is ready: BBS reachable, both event
/// streams subscribed, so no event after this is missed.
pub async fn until_ready(scheduler: &DiegoScheduler) {
    opi::conformance::eventually(Duration::from_secs(20), || async {
        scheduler.ready().await
    })
    .await
    .unwrap();
}

pub async fn connected() -> (FakeBbs, DiegoScheduler) {
    let bbs = FakeBbs::start().await;
    let scheduler = DiegoScheduler::new(config(&bbs)).unwrap();
    until_ready(&scheduler).await;
    (bbs, scheduler)
}

/// Just enough of a harness to build the kit's sample LRPs and tasks.
pub struct Samples;

#[async_trait::async_trait]
impl Harness for Samples {
    fn scheduler(&self) -> &dyn Scheduler {
        unreachable!("only used for samples")
    }
    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        LrpLifecycle::Buildpack {
            droplet_guid: "droplet-guid".into(),
            droplet_hash: "0123abcd".into(),
            start_command: "./run".into(),
        }
    }
    fn task_lifecycle(&self, _outcome: TaskOutcome) -> LrpLifecycle {
        self.lrp_lifecycle(0)
    }
    async fn crash_instance(&self, _: &LrpId, _: u32, _: i32) -> Result<(), String> {
        Ok(())
    }
    async fn finish_task(&self, _: &str, _: TaskOutcome) -> Result<(), String> {
        Ok(())
    }
}
