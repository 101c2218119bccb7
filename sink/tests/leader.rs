//! Leader election against the fake apiserver: one leader at a time, and a
//! standby takes over when the leader stops.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use sink::leader::{LeaseConfig, campaign, try_acquire};
use tokio_util::sync::CancellationToken;

fn config(identity: &str, duration: Duration) -> LeaseConfig {
    LeaseConfig {
        namespace: "cube-system".into(),
        name: "cube-sink".into(),
        identity: identity.into(),
        duration,
    }
}

async fn namespace(server: &testkit::FakeApiServer) {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(server.client());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cube-system"}
    }))
    .unwrap();
    api.create(&Default::default(), &ns).await.unwrap();
}

#[tokio::test]
async fn a_held_lease_is_not_taken_until_it_expires() {
    let server = testkit::FakeApiServer::new();
    namespace(&server).await;
    let api: kube::Api<Lease> = kube::Api::namespaced(server.client(), "cube-system");
    // Leases count whole seconds.
    let a = config("a", Duration::from_secs(1));
    let b = config("b", Duration::from_secs(1));
    assert!(
        try_acquire(&api, &a).await.unwrap(),
        "a creates and holds the lease"
    );
    assert!(
        !try_acquire(&api, &b).await.unwrap(),
        "b must not take a live lease"
    );
    assert!(try_acquire(&api, &a).await.unwrap(), "a renews");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(
        try_acquire(&api, &b).await.unwrap(),
        "b takes over an expired lease"
    );
    assert!(!try_acquire(&api, &a).await.unwrap(), "a is now a follower");
    let lease = api.get("cube-sink").await.unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
}

#[tokio::test]
async fn exactly_one_replica_leads_and_a_standby_takes_over() {
    let server = testkit::FakeApiServer::new();
    namespace(&server).await;
    let api = || kube::Api::<Lease>::namespaced(server.client(), "cube-system");
    let duration = Duration::from_millis(600);
    let stop_a = CancellationToken::new();
    let stop_b = CancellationToken::new();
    let a = campaign(api(), config("a", duration), stop_a.clone());
    let b = campaign(api(), config("b", duration), stop_b.clone());
    let mut leader = None;
    for _ in 0..100 {
        match (a.is_leader(), b.is_leader()) {
            (true, true) => panic!("two leaders at once"),
            (true, false) => leader = Some('a'),
            (false, true) => leader = Some('b'),
            (false, false) => {}
        }
        if leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader = leader.expect("somebody leads");
    // Watch for a while: never two leaders.
    for _ in 0..30 {
        assert!(!(a.is_leader() && b.is_leader()), "two leaders at once");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (stop, standby) = if leader == 'a' {
        (&stop_a, &b)
    } else {
        (&stop_b, &a)
    };
    stop.cancel();
    let mut took_over = false;
    for _ in 0..200 {
        if standby.is_leader() {
            took_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        took_over,
        "the standby took over after the leader stepped down"
    );
    stop_a.cancel();
    stop_b.cancel();
}
