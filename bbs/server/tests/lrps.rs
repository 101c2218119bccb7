//! Desired and actual LRPs through the router, as Cloud Controller calls
//! them, over the memory scheduler: an app's whole life, and every error
//! CC tells apart.

#![allow(clippy::unwrap_used)]

mod common;

use bbs::translate::fixtures::{self, APP_GUID, PROCESS_GUID};
use bbs_models::actual_lr_ps_request::OptionalIndex;
use bbs_models::desired_lrp_update::{OptionalAnnotation, OptionalInstances};
use bbs_models::error::Type;
use bbs_models::*;
use common::{error_of, exists, front, not_found};
use opi::Scheduler;
use opi::model::LrpId;
use prost::Message;

const DESIRE: &str = "/v1/desired_lrp/desire.r2";
const GET: &str = "/v1/desired_lrps/get_by_process_guid.r2";
const INFOS: &str = "/v1/desired_lrp_scheduling_infos/list";
const UPDATE: &str = "/v1/desired_lrp/update";
const REMOVE: &str = "/v1/desired_lrp/remove";
const ACTUAL: &str = "/v1/actual_lrps/list";
const BY_GUIDS: &str = "/v1/actual_lrps/list_by_process_guids";
const RETIRE: &str = "/v1/actual_lrps/retire";

fn desire(lrp: DesiredLrp) -> DesireLrpRequest {
    DesireLrpRequest {
        desired_lrp: Some(lrp),
    }
}

fn by_guid(process_guid: &str) -> DesiredLrpByProcessGuidRequest {
    DesiredLrpByProcessGuidRequest {
        process_guid: process_guid.into(),
    }
}

fn infos(domain: &str) -> DesiredLrPsRequest {
    DesiredLrPsRequest {
        domain: domain.into(),
        ..DesiredLrPsRequest::default()
    }
}

fn actual(process_guid: &str) -> ActualLrPsRequest {
    ActualLrPsRequest {
        process_guid: process_guid.into(),
        ..ActualLrPsRequest::default()
    }
}

fn retire(process_guid: &str, index: i32) -> RetireActualLrpRequest {
    RetireActualLrpRequest {
        actual_lrp_key: Some(ActualLrpKey {
            process_guid: process_guid.into(),
            index,
            domain: "cf-apps".into(),
        }),
    }
}

fn cc_update(instances: i32, annotation: &str) -> UpdateDesiredLrpRequest {
    UpdateDesiredLrpRequest {
        process_guid: PROCESS_GUID.into(),
        update: Some(DesiredLrpUpdate {
            optional_instances: Some(OptionalInstances::Instances(instances)),
            optional_annotation: Some(OptionalAnnotation::Annotation(annotation.into())),
            routes: fixtures::buildpack_lrp().routes,
            ..DesiredLrpUpdate::default()
        }),
    }
}

fn indices(lrps: &[ActualLrp]) -> Vec<i32> {
    lrps.iter()
        .map(|lrp| lrp.actual_lrp_key.as_ref().unwrap().index)
        .collect()
}

#[tokio::test]
async fn an_app_lives_desire_get_sync_update_observe_retire_remove() {
    let bbs = front();
    let mut lrp = fixtures::buildpack_lrp();
    lrp.instances = 2;

    // Desire (CC's DesireAppHandler: get → not found → desire).
    let got: DesiredLrpResponse = bbs.call(GET, &by_guid(PROCESS_GUID)).await;
    assert_eq!(error_of(got.error.as_ref()), not_found());
    let desired: DesiredLrpLifecycleResponse = bbs.call(DESIRE, &desire(lrp.clone())).await;
    assert_eq!(desired.error, None);
    let id = LrpId::new(APP_GUID, fixtures::PROCESS_VERSION);
    assert_eq!(bbs.scheduler.get(&id).await.unwrap().instances, 2);

    // Get: what CC reads (the diego-ssh route, process_id, placement tags).
    let got: DesiredLrpResponse = bbs.call(GET, &by_guid(PROCESS_GUID)).await;
    assert_eq!(got.error, None);
    let got = got.desired_lrp.unwrap();
    assert_eq!(got.process_guid, PROCESS_GUID);
    assert_eq!(got.annotation, lrp.annotation);
    assert_eq!(
        got.routes.as_ref().unwrap().routes.get("diego-ssh"),
        lrp.routes.as_ref().unwrap().routes.get("diego-ssh")
    );
    assert!(got.metric_tags.contains_key("process_id"));
    assert_eq!(got.placement_tags, ["placement-tag"]);

    // The sync's list: in cf-apps, with routes and annotation.
    let list: DesiredLrpSchedulingInfosResponse = bbs.call(INFOS, &infos("cf-apps")).await;
    assert_eq!(list.error, None);
    let [info] = list.desired_lrp_scheduling_infos.as_slice() else {
        panic!("one scheduling info: {list:?}");
    };
    let key = info.desired_lrp_key.as_ref().unwrap();
    assert_eq!(
        (key.process_guid.as_str(), key.domain.as_str()),
        (PROCESS_GUID, "cf-apps")
    );
    assert_eq!(
        (info.annotation.as_str(), info.instances),
        (lrp.annotation.as_str(), 2)
    );
    assert!(
        info.routes
            .as_ref()
            .unwrap()
            .routes
            .contains_key("diego-ssh")
    );
    let other: DesiredLrpSchedulingInfosResponse = bbs.call(INFOS, &infos("cf-tasks")).await;
    assert!(other.desired_lrp_scheduling_infos.is_empty());

    // Update (scale to 3, new annotation): the sync sees it.
    let updated: DesiredLrpLifecycleResponse = bbs.call(UPDATE, &cc_update(3, "3.5")).await;
    assert_eq!(updated.error, None);
    let list: DesiredLrpSchedulingInfosResponse = bbs.call(INFOS, &infos("")).await;
    let info = &list.desired_lrp_scheduling_infos[0];
    assert_eq!((info.annotation.as_str(), info.instances), ("3.5", 3));

    // Actual LRPs, as the instances reporters read them.
    let all: ActualLrPsResponse = bbs.call(ACTUAL, &actual(PROCESS_GUID)).await;
    assert_eq!(all.error, None);
    assert_eq!(indices(&all.actual_lrps), [0, 1, 2]);
    assert!(all.actual_lrps.iter().all(|lrp| lrp.state == "RUNNING"));
    let by_guids: ActualLrPsByProcessGuidsResponse = bbs
        .call(
            BY_GUIDS,
            &ActualLrPsByProcessGuidsRequest {
                process_guids: vec![PROCESS_GUID.into(), "unknown-guid".into()],
            },
        )
        .await;
    assert_eq!(indices(&by_guids.actual_lrps), [0, 1, 2]);

    // Retire index 1: a fresh instance replaces it, the count stays.
    let before = all.actual_lrps[1].since;
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let retired: ActualLrpLifecycleResponse = bbs.call(RETIRE, &retire(PROCESS_GUID, 1)).await;
    assert_eq!(retired.error, None);
    let after: ActualLrPsResponse = bbs.call(ACTUAL, &actual(PROCESS_GUID)).await;
    assert_eq!(indices(&after.actual_lrps), [0, 1, 2]);
    assert!(after.actual_lrps[1].since > before, "index 1 restarted");
    let beyond: ActualLrpLifecycleResponse = bbs.call(RETIRE, &retire(PROCESS_GUID, 3)).await;
    assert_eq!(error_of(beyond.error.as_ref()), not_found());

    // Remove: gone everywhere; a second remove is ResourceNotFound.
    let request = RemoveDesiredLrpRequest {
        process_guid: PROCESS_GUID.into(),
    };
    let removed: DesiredLrpLifecycleResponse = bbs.call(REMOVE, &request).await;
    assert_eq!(removed.error, None);
    let again: DesiredLrpLifecycleResponse = bbs.call(REMOVE, &request).await;
    assert_eq!(error_of(again.error.as_ref()), not_found());
    let got: DesiredLrpResponse = bbs.call(GET, &by_guid(PROCESS_GUID)).await;
    assert_eq!(error_of(got.error.as_ref()), not_found());
    let none: ActualLrPsResponse = bbs.call(ACTUAL, &actual(PROCESS_GUID)).await;
    assert_eq!((none.error, none.actual_lrps), (None, Vec::new()));
    let list: DesiredLrpSchedulingInfosResponse = bbs.call(INFOS, &infos("cf-apps")).await;
    assert!(list.desired_lrp_scheduling_infos.is_empty());
}

#[tokio::test]
async fn a_second_desire_of_a_process_guid_exists() {
    let bbs = front();
    let first: DesiredLrpLifecycleResponse =
        bbs.call(DESIRE, &desire(fixtures::docker_lrp())).await;
    assert_eq!(first.error, None);
    let mut changed = fixtures::docker_lrp();
    changed.instances = 7;
    let second: DesiredLrpLifecycleResponse = bbs.call(DESIRE, &desire(changed)).await;
    assert_eq!(error_of(second.error.as_ref()), exists());
    // The first desire stands.
    let id = LrpId::new(APP_GUID, fixtures::PROCESS_VERSION);
    assert_eq!(bbs.scheduler.get(&id).await.unwrap().instances, 2);
}

#[tokio::test]
async fn unknown_process_guids_are_not_found() {
    let bbs = front();
    for guid in [PROCESS_GUID, "not-desired", "nodash"] {
        let got: DesiredLrpResponse = bbs.call(GET, &by_guid(guid)).await;
        assert_eq!(error_of(got.error.as_ref()), not_found(), "get {guid}");
        assert_eq!(got.desired_lrp, None);
        let mut update = cc_update(1, "1.0");
        update.process_guid = guid.into();
        let updated: DesiredLrpLifecycleResponse = bbs.call(UPDATE, &update).await;
        assert_eq!(
            error_of(updated.error.as_ref()),
            not_found(),
            "update {guid}"
        );
        let removed: DesiredLrpLifecycleResponse = bbs
            .call(
                REMOVE,
                &RemoveDesiredLrpRequest {
                    process_guid: guid.into(),
                },
            )
            .await;
        assert_eq!(
            error_of(removed.error.as_ref()),
            not_found(),
            "remove {guid}"
        );
        let retired: ActualLrpLifecycleResponse = bbs.call(RETIRE, &retire(guid, 0)).await;
        assert_eq!(
            error_of(retired.error.as_ref()),
            not_found(),
            "retire {guid}"
        );
        let actual: ActualLrPsResponse = bbs.call(ACTUAL, &actual(guid)).await;
        assert_eq!((actual.error, actual.actual_lrps), (None, Vec::new()));
    }
}

#[tokio::test]
async fn what_cube_cannot_run_is_an_invalid_request_naming_the_field() {
    let bbs = front();
    let mut lrp = fixtures::docker_lrp();
    lrp.privileged = true;
    let refused: DesiredLrpLifecycleResponse = bbs.call(DESIRE, &desire(lrp)).await;
    let (kind, message) = error_of(refused.error.as_ref()).unwrap();
    assert_eq!(kind, Type::InvalidRequest);
    assert!(message.starts_with("privileged: "), "{message}");
    assert!(bbs.scheduler.list().await.unwrap().is_empty());

    let empty: DesiredLrpLifecycleResponse = bbs
        .call(DESIRE, &DesireLrpRequest { desired_lrp: None })
        .await;
    assert_eq!(
        error_of(empty.error.as_ref()),
        Some((Type::InvalidRequest, "Invalid field: desired_lrp".into()))
    );
}

#[tokio::test]
async fn requests_are_validated_as_the_bbs_does() {
    let bbs = front();
    let invalid = |message: &str| Some((Type::InvalidRequest, message.to_owned()));
    let got: DesiredLrpResponse = bbs.call(GET, &by_guid("")).await;
    assert_eq!(
        error_of(got.error.as_ref()),
        invalid("Invalid field: process_guid")
    );
    let updated: DesiredLrpLifecycleResponse = bbs.call(UPDATE, &cc_update(-1, "1")).await;
    assert_eq!(
        error_of(updated.error.as_ref()),
        invalid("Invalid field: instances")
    );
    let retired: ActualLrpLifecycleResponse = bbs.call(RETIRE, &retire("", -1)).await;
    assert_eq!(
        error_of(retired.error.as_ref()),
        invalid("Invalid field: process_guid, Invalid field: index")
    );
    let none: ActualLrPsByProcessGuidsResponse = bbs
        .call(BY_GUIDS, &ActualLrPsByProcessGuidsRequest::default())
        .await;
    assert_eq!(
        error_of(none.error.as_ref()),
        invalid("process_guids must not be empty")
    );
}

#[tokio::test]
async fn reads_answer_format_v2_and_v3() {
    let bbs = front();
    let lrp = fixtures::buildpack_lrp_with_image_layers();
    let desired: DesiredLrpLifecycleResponse = bbs.call(DESIRE, &desire(lrp.clone())).await;
    assert_eq!(desired.error, None);
    let v2: DesiredLrpResponse = bbs.call(GET, &by_guid(PROCESS_GUID)).await;
    let v2 = v2.desired_lrp.unwrap();
    assert!(v2.image_layers.is_empty(), "layers converted");
    assert_eq!(v2.cached_dependencies[0].cache_key, lrp.image_layers[0].url);
    assert!(
        v2.setup.unwrap().parallel_action.is_some(),
        "droplet download"
    );
    let v3: DesiredLrpResponse = bbs
        .call(
            "/v1/desired_lrps/get_by_process_guid.r3",
            &by_guid(PROCESS_GUID),
        )
        .await;
    assert_eq!(v3.desired_lrp.unwrap().image_layers.len(), 2);
}

#[tokio::test]
async fn actual_lrps_filter_by_domain_cell_and_index() {
    let bbs = front();
    let desired: DesiredLrpLifecycleResponse =
        bbs.call(DESIRE, &desire(fixtures::docker_lrp())).await;
    assert_eq!(desired.error, None);
    let bbs = &bbs;
    let count = |request: ActualLrPsRequest| async move {
        let answer: ActualLrPsResponse = bbs.call(ACTUAL, &request).await;
        assert_eq!(answer.error, None);
        indices(&answer.actual_lrps)
    };
    assert_eq!(count(ActualLrPsRequest::default()).await, [0, 1]);
    let index = ActualLrPsRequest {
        optional_index: Some(OptionalIndex::Index(1)),
        ..actual(PROCESS_GUID)
    };
    assert_eq!(count(index).await, [1]);
    let cell = |cell_id: &str| ActualLrPsRequest {
        cell_id: cell_id.into(),
        ..ActualLrPsRequest::default()
    };
    assert_eq!(count(cell(bbs::translate::actual::CELL_ID)).await, [0, 1]);
    assert!(count(cell("another-cell")).await.is_empty());
    let domain = |domain: &str| ActualLrPsRequest {
        domain: domain.into(),
        ..ActualLrPsRequest::default()
    };
    assert_eq!(count(domain("cf-apps")).await, [0, 1]);
    assert!(count(domain("cf-tasks")).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_scheduler_answers_503() {
    let bbs = front();
    bbs.scheduler.set_unavailable(true);
    let (status, body, _) = bbs.raw(INFOS, infos("cf-apps").encode_to_vec()).await;
    assert_eq!(status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let answer = DesiredLrpSchedulingInfosResponse::decode(body.as_slice()).unwrap();
    assert_eq!(
        error_of(answer.error.as_ref()).map(|(kind, _)| kind),
        Some(Type::UnknownError)
    );
    assert_eq!(
        common::counter(
            &bbs.metrics,
            "cube_bbs_requests_total",
            &[("route", INFOS), ("error", "Unavailable")]
        ),
        1
    );
}
