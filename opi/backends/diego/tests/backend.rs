//! The Diego backend against the fake BBS, beyond the conformance kit: what
//! it writes to the BBS, how it syncs the domain, how BBS errors and outages
//! surface, and that the fake BBS refuses what a real one refuses.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use opi::conformance::{TaskOutcome, sample_lrp};
use opi::model::{InstanceState, LrpId};
use opi::{Error, Scheduler};
use opi_diego::{BbsClient, DiegoError, TlsPem, proto};
use testkit::bbs::{FakeBbs, tls};

use common::Samples;

#[tokio::test]
async fn desire_writes_a_cf_apps_lrp_with_droplet_image_and_routes() {
    let (bbs, scheduler) = common::connected().await;
    let lrp = sample_lrp(&Samples, "dora", "v1", 2);
    scheduler.desire(lrp.clone()).await.unwrap();
    let stored = bbs.desired_lrp("dora-guid-v1").unwrap();
    assert_eq!(stored.domain, "cf-apps");
    assert_eq!(
        stored.root_fs,
        "docker://127.0.0.1:8087/cloudfoundry/droplet-guid#0123abcd"
    );
    assert_eq!(stored.instances, 2);
    assert_eq!(stored.log_guid, "dora-guid");
    let routes = &stored.routes.as_ref().unwrap().routes;
    let cf: serde_json::Value = serde_json::from_slice(&routes["cf-router"]).unwrap();
    assert_eq!(
        cf,
        serde_json::json!([{"hostnames": ["dora.example.com"], "port": 8080}])
    );
    let check = &stored.check_definition.as_ref().unwrap().checks[0];
    assert_eq!(check.tcp_check.as_ref().unwrap().port, 8080);
}

#[tokio::test]
async fn identical_desires_write_nothing_and_scaling_desires_update_in_place() {
    let (bbs, scheduler) = common::connected().await;
    let mut lrp = sample_lrp(&Samples, "idem", "v1", 1);
    scheduler.desire(lrp.clone()).await.unwrap();
    scheduler.desire(lrp.clone()).await.unwrap();
    assert_eq!(bbs.requests("/v1/desired_lrp/update"), 0);
    assert_eq!(bbs.requests("/v1/desired_lrp/remove"), 0);

    lrp.instances = 3;
    lrp.annotation = "1700000005.0".into();
    scheduler.desire(lrp.clone()).await.unwrap();
    assert_eq!(bbs.requests("/v1/desired_lrp/update"), 1);
    assert_eq!(
        bbs.requests("/v1/desired_lrp/remove"),
        0,
        "scaling must not restart"
    );
    assert_eq!(bbs.desired_lrp("idem-guid-v1").unwrap().instances, 3);

    lrp.memory_mb = 512;
    scheduler.desire(lrp.clone()).await.unwrap();
    assert_eq!(
        bbs.requests("/v1/desired_lrp/remove"),
        1,
        "a new memory limit replaces the LRP"
    );
    assert_eq!(bbs.desired_lrp("idem-guid-v1").unwrap().memory_mb, 512);
}

#[tokio::test]
async fn every_list_upserts_the_apps_domain_with_its_ttl() {
    let (bbs, scheduler) = common::connected().await;
    assert_eq!(bbs.domain_ttl("cf-apps"), None);
    scheduler.list().await.unwrap();
    scheduler.list().await.unwrap();
    assert_eq!(bbs.domain_ttl("cf-apps"), Some(120));
    assert_eq!(bbs.requests("/v1/domains/upsert"), 2);
}

#[tokio::test]
async fn unplaceable_instances_are_unclaimed_with_the_placement_error() {
    let (bbs, scheduler) = common::connected().await;
    bbs.set_placement_error(Some("insufficient resources: memory"));
    let lrp = sample_lrp(&Samples, "big", "v1", 2);
    scheduler.desire(lrp.clone()).await.unwrap();
    let instances = scheduler.instances(&lrp.id).await.unwrap();
    assert_eq!(instances.len(), 2);
    for instance in &instances {
        assert_eq!(instance.state, InstanceState::Unclaimed);
        assert_eq!(instance.placement_error, "insufficient resources: memory");
    }
}

#[tokio::test]
async fn a_bbs_outage_is_unavailable_and_not_ready() {
    let (bbs, scheduler) = common::connected().await;
    bbs.set_unavailable(true);
    let err = scheduler.list().await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(scheduler.ready().await.is_err());
    bbs.set_unavailable(false);
    scheduler.list().await.unwrap();
}

#[tokio::test]
async fn an_lrp_desired_under_another_id_with_the_same_process_guid_is_not_found() {
    let (_bbs, scheduler) = common::connected().await;
    let mut lrp = sample_lrp(&Samples, "dash", "v1", 1);
    lrp.id = LrpId::new("a-b", "c");
    scheduler.desire(lrp).await.unwrap();
    let other = LrpId::new("a", "b-c");
    assert!(matches!(
        scheduler.get(&other).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        scheduler.stop(&other).await,
        Err(Error::NotFound(_))
    ));
    assert!(scheduler.get(&LrpId::new("a-b", "c")).await.is_ok());
}

#[tokio::test]
async fn tasks_land_in_cf_tasks_and_the_bbs_never_calls_back_itself() {
    let (bbs, scheduler) = common::connected().await;
    let task = opi::conformance::sample_task(&Samples, "t-1", TaskOutcome::Succeed);
    scheduler.desire_task(task.clone()).await.unwrap();
    let stored = bbs.task("t-1").unwrap();
    assert_eq!(stored.domain, "cf-tasks");
    let def = stored.task_definition.unwrap();
    assert_eq!(def.completion_callback_url, "");
    assert_eq!(def.annotation, task.completion_callback);
    let err = scheduler.cancel_task("t-1").await;
    assert!(err.is_ok());
    // Cancelling a completed task is a conflict, as in the BBS.
    assert!(matches!(
        scheduler.cancel_task("t-1").await,
        Err(Error::Conflict(_))
    ));
}

// ---- the fake BBS refuses what the real one refuses ------------------------

async fn raw_client(bbs: &FakeBbs) -> BbsClient {
    BbsClient::new(bbs.url().parse().unwrap(), Some(&common::client_tls())).unwrap()
}

fn valid_lrp() -> proto::DesiredLrp {
    opi_diego::translate::lrp::desired_lrp(&sample_lrp(&Samples, "raw", "v1", 1), "").unwrap()
}

#[tokio::test]
async fn the_fake_bbs_rejects_invalid_and_duplicate_lrps() {
    let bbs = FakeBbs::start().await;
    let client = raw_client(&bbs).await;
    let kind = |r: Result<(), DiegoError>| match r {
        Err(DiegoError::Bbs { kind, message }) => (kind, message),
        other => panic!("expected a BBS error, got {other:?}"),
    };
    use proto::error::Type;

    let mut no_guid = valid_lrp();
    no_guid.process_guid.clear();
    let (k, m) = kind(client.desire_lrp(no_guid).await);
    assert_eq!(k, Type::InvalidRequest);
    assert!(m.contains("process_guid"), "{m}");

    let mut no_domain = valid_lrp();
    no_domain.domain.clear();
    assert_eq!(
        kind(client.desire_lrp(no_domain).await).0,
        Type::InvalidRequest
    );

    let mut bad_rootfs = valid_lrp();
    bad_rootfs.root_fs = "library/nginx".into();
    assert_eq!(
        kind(client.desire_lrp(bad_rootfs).await).0,
        Type::InvalidRequest
    );

    let mut no_user = valid_lrp();
    no_user
        .action
        .as_mut()
        .unwrap()
        .run_action
        .as_mut()
        .unwrap()
        .user
        .clear();
    assert_eq!(
        kind(client.desire_lrp(no_user).await).0,
        Type::InvalidRequest
    );

    let mut no_tags = valid_lrp();
    no_tags.metric_tags = BTreeMap::new();
    assert_eq!(
        kind(client.desire_lrp(no_tags).await).0,
        Type::InvalidRequest
    );

    client.desire_lrp(valid_lrp()).await.unwrap();
    assert_eq!(
        kind(client.desire_lrp(valid_lrp()).await).0,
        Type::ResourceExists
    );
    assert_eq!(
        kind(client.remove_lrp("nope").await).0,
        Type::ResourceNotFound
    );
    assert!(client.desired_lrp("nope").await.unwrap_err().is_not_found());

    // An undecodable body is answered, inside a 200, as the BBS does:
    // InvalidRequest "the request received is invalid".
    let garbage: Result<proto::DesiredLrpLifecycleResponse, _> = client
        .call(
            "/v1/desired_lrp/desire.r2",
            &proto::PingResponse { available: true },
        )
        .await;
    assert!(
        matches!(
            garbage,
            Err(DiegoError::Bbs {
                kind: Type::InvalidRequest,
                ref message,
            }) if message == "the request received is invalid"
        ),
        "{garbage:?}"
    );
}

#[tokio::test]
async fn the_fake_bbs_resolves_and_deletes_only_completed_tasks_in_order() {
    let bbs = FakeBbs::start().await;
    let client = raw_client(&bbs).await;
    let request = opi_diego::translate::task::desire_request(
        &opi::conformance::sample_task(&Samples, "t-1", TaskOutcome::Succeed),
        "",
    )
    .unwrap();
    client.desire_task(&request).await.unwrap();
    let refused = |r: Result<(), DiegoError>| r.unwrap_err().is_invalid_transition();
    // Running: neither resolved nor deleted.
    assert!(refused(client.resolving_task("t-1").await));
    assert!(refused(client.delete_task("t-1").await));
    bbs.complete_task("t-1", false, "", "").unwrap();
    // Completed: resolved first, then deleted.
    assert!(refused(client.delete_task("t-1").await));
    client.resolving_task("t-1").await.unwrap();
    assert_eq!(
        bbs.task("t-1").unwrap().state,
        proto::task::State::Resolving as i32
    );
    assert!(refused(client.resolving_task("t-1").await));
    client.delete_task("t-1").await.unwrap();
    assert!(bbs.task("t-1").is_none());
    assert!(client.delete_task("t-1").await.unwrap_err().is_not_found());
    assert!(
        client
            .resolving_task("t-1")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn the_fake_bbs_refuses_clients_without_a_certificate_from_its_ca() {
    let bbs = FakeBbs::start().await;
    let rogue = TlsPem {
        ca: tls::CA_PEM.as_bytes().to_vec(),
        cert: tls::ROGUE_CLIENT_CERT_PEM.as_bytes().to_vec(),
        key: tls::ROGUE_CLIENT_KEY_PEM.as_bytes().to_vec(),
    };
    let client = BbsClient::new(bbs.url().parse().unwrap(), Some(&rogue)).unwrap();
    assert!(matches!(
        client.ping().await,
        Err(DiegoError::Unreachable(_))
    ));

    let anonymous = BbsClient::new(bbs.url().parse().unwrap(), None).unwrap();
    assert!(matches!(
        anonymous.ping().await,
        Err(DiegoError::Unreachable(_))
    ));

    let good = raw_client(&bbs).await;
    assert!(good.ping().await.unwrap());
}
