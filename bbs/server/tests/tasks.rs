//! Tasks, domains, ping and the protobuf envelope through the router, as
//! Cloud Controller calls them.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use bbs_models::error::Type;
use bbs_models::task::State;
use bbs_models::*;
use common::{counter, error_of, eventually, exists, front, not_found};
use prost::Message;

const DESIRE: &str = "/v1/tasks/desire.r2";
const LIST: &str = "/v1/tasks/list.r2";
const GET: &str = "/v1/tasks/get_by_task_guid.r2";
const CANCEL: &str = "/v1/tasks/cancel";

/// A running task as CC desires it (bbs-spec §4), completion callback to `callback`.
fn cc_task(guid: &str, domain: &str, callback: &str) -> DesireTaskRequest {
    let run = RunAction {
        path: "/tmp/lifecycle/launcher".into(),
        args: vec!["app".into(), "rake db:migrate".into(), String::new()],
        user: "vcap".into(),
        log_source: "APP/TASK/migrate".into(),
        ..RunAction::default()
    };
    let download = DownloadAction {
        from: "https://blobstore.internal/droplet.tgz".into(),
        to: ".".into(),
        user: "vcap".into(),
        checksum_algorithm: "sha256".into(),
        checksum_value: "abc123".into(),
        ..DownloadAction::default()
    };
    let action = Action {
        serial_action: Some(SerialAction {
            actions: vec![
                Action {
                    download_action: Some(download),
                    ..Action::default()
                },
                Action {
                    run_action: Some(run),
                    ..Action::default()
                },
            ],
            ..SerialAction::default()
        }),
        ..Action::default()
    };
    DesireTaskRequest {
        task_definition: Some(TaskDefinition {
            root_fs: "preloaded:cflinuxfs4".into(),
            action: Some(action),
            memory_mb: 256,
            disk_mb: 1024,
            log_guid: "app-guid".into(),
            completion_callback_url: callback.into(),
            ..TaskDefinition::default()
        }),
        task_guid: guid.into(),
        domain: domain.into(),
    }
}

fn guids(tasks: &[Task]) -> Vec<&str> {
    tasks.iter().map(|task| task.task_guid.as_str()).collect()
}

#[tokio::test]
async fn tasks_are_desired_listed_got_and_cancelled() {
    let bbs = front();
    for (guid, domain) in [("task-1", "cf-tasks"), ("build-1", "cf-app-staging")] {
        let desired: TaskLifecycleResponse = bbs.call(DESIRE, &cc_task(guid, domain, "")).await;
        assert_eq!(desired.error, None, "{guid}");
    }
    // A second desire of a guid: ResourceExists (CC does not tolerate it).
    let again: TaskLifecycleResponse = bbs.call(DESIRE, &cc_task("task-1", "cf-tasks", "")).await;
    assert_eq!(error_of(again.error.as_ref()), exists());

    // The sync lists cf-tasks and reads the guids.
    let request = TasksRequest {
        domain: "cf-tasks".into(),
        cell_id: String::new(),
    };
    let listed: TasksResponse = bbs.call(LIST, &request).await;
    assert_eq!(guids(&listed.tasks), ["task-1"]);
    let all: TasksResponse = bbs.call(LIST, &TasksRequest::default()).await;
    assert_eq!(guids(&all.tasks), ["build-1", "task-1"]);

    // Get: present, pending (Cube does not run them yet).
    let by_guid = |guid: &str| TaskByGuidRequest {
        task_guid: guid.into(),
    };
    let got: TaskResponse = bbs.call(GET, &by_guid("task-1")).await;
    let task = got.task.unwrap();
    assert_eq!(task.state, State::Pending as i32);
    assert!(task.created_at > 0);
    let unknown: TaskResponse = bbs.call(GET, &by_guid("nope")).await;
    assert_eq!(error_of(unknown.error.as_ref()), not_found());
    assert_eq!(unknown.task, None);

    // Cancel: completed and failed; a second cancel is an invalid transition.
    let cancel = |guid: &str| TaskGuidRequest {
        task_guid: guid.into(),
    };
    let cancelled: TaskLifecycleResponse = bbs.call(CANCEL, &cancel("task-1")).await;
    assert_eq!(cancelled.error, None);
    let task = bbs
        .call::<TaskResponse>(GET, &by_guid("task-1"))
        .await
        .task
        .unwrap();
    assert_eq!(task.state, State::Completed as i32);
    assert!(task.failed);
    assert_eq!(task.failure_reason, "task was cancelled");
    let twice: TaskLifecycleResponse = bbs.call(CANCEL, &cancel("task-1")).await;
    assert_eq!(
        error_of(twice.error.as_ref()),
        Some((
            Type::InvalidStateTransition,
            "Cannot transition from Completed to Completed".into()
        ))
    );
    let unknown: TaskLifecycleResponse = bbs.call(CANCEL, &cancel("nope")).await;
    assert_eq!(error_of(unknown.error.as_ref()), not_found());
}

#[tokio::test]
async fn invalid_tasks_are_refused_with_the_bbs_message() {
    let bbs = front();
    let mut request = cc_task("bad guid", "", "");
    request.task_definition.as_mut().unwrap().root_fs = "cflinuxfs4".into();
    let refused: TaskLifecycleResponse = bbs.call(DESIRE, &request).await;
    assert_eq!(
        error_of(refused.error.as_ref()),
        Some((
            Type::InvalidRequest,
            "Invalid field: task_guid, Invalid field: domain, Invalid field: rootfs".into()
        ))
    );
    let listed: TasksResponse = bbs.call(LIST, &TasksRequest::default()).await;
    assert!(listed.tasks.is_empty());
}

#[tokio::test]
async fn task_reads_answer_format_v2() {
    let bbs = front();
    let mut request = cc_task("task-1", "cf-tasks", "");
    request.task_definition.as_mut().unwrap().image_layers = vec![ImageLayer {
        name: "lifecycle".into(),
        url: "http://file-server/lifecycle.tgz".into(),
        destination_path: "/tmp/lifecycle".into(),
        layer_type: image_layer::Type::Shared as i32,
        media_type: image_layer::MediaType::Tgz as i32,
        ..ImageLayer::default()
    }];
    let desired: TaskLifecycleResponse = bbs.call(DESIRE, &request).await;
    assert_eq!(desired.error, None);
    let by_guid = TaskByGuidRequest {
        task_guid: "task-1".into(),
    };
    let v2: TaskResponse = bbs.call(GET, &by_guid).await;
    let definition = v2.task.unwrap().task_definition.unwrap();
    assert!(definition.image_layers.is_empty());
    assert_eq!(definition.cached_dependencies[0].to, "/tmp/lifecycle");
    let v3: TaskResponse = bbs.call("/v1/tasks/get_by_task_guid.r3", &by_guid).await;
    assert_eq!(
        v3.task.unwrap().task_definition.unwrap().image_layers.len(),
        1
    );
}

/// A stand-in for CC's task completion endpoint, answering `status`.
async fn cc_callbacks(status: StatusCode) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/internal/v4/tasks/{guid}/completed",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(body);
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn a_cancelled_task_reports_to_its_callback_then_is_gone() {
    let bbs = front();
    let (cc, seen) = cc_callbacks(StatusCode::OK).await;
    let callback = format!("{cc}/internal/v4/tasks/task-1/completed");
    let mut request = cc_task("task-1", "cf-tasks", &callback);
    request.task_definition.as_mut().unwrap().annotation = "note".into();
    let desired: TaskLifecycleResponse = bbs.call(DESIRE, &request).await;
    assert_eq!(desired.error, None);
    let cancelled: TaskLifecycleResponse = bbs
        .call(
            CANCEL,
            &TaskGuidRequest {
                task_guid: "task-1".into(),
            },
        )
        .await;
    assert_eq!(cancelled.error, None);
    let body = eventually(Duration::from_secs(5), || async {
        seen.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(body["task_guid"], "task-1");
    assert_eq!(body["failed"], true);
    assert_eq!(body["failure_reason"], "task was cancelled");
    assert_eq!(body["result"], "");
    assert_eq!(body["annotation"], "note");
    assert!(body["created_at"].as_i64().unwrap() > 0, "{body}");
    // Answered: the BBS deletes the task, so CC's sync no longer sees it.
    eventually(Duration::from_secs(5), || async {
        let got: TaskResponse = bbs
            .call(
                GET,
                &TaskByGuidRequest {
                    task_guid: "task-1".into(),
                },
            )
            .await;
        (error_of(got.error.as_ref()) == not_found()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_callback_answered_503_leaves_the_task_resolving() {
    let bbs = front();
    let (cc, seen) = cc_callbacks(StatusCode::SERVICE_UNAVAILABLE).await;
    let callback = format!("{cc}/internal/v4/tasks/task-1/completed");
    let desired: TaskLifecycleResponse = bbs
        .call(DESIRE, &cc_task("task-1", "cf-tasks", &callback))
        .await;
    assert_eq!(desired.error, None);
    let _: TaskLifecycleResponse = bbs
        .call(
            CANCEL,
            &TaskGuidRequest {
                task_guid: "task-1".into(),
            },
        )
        .await;
    // Three tries, then it waits for task convergence.
    eventually(Duration::from_secs(5), || async {
        (seen.lock().unwrap().len() == 3).then_some(())
    })
    .await;
    let got: TaskResponse = bbs
        .call(
            GET,
            &TaskByGuidRequest {
                task_guid: "task-1".into(),
            },
        )
        .await;
    assert_eq!(got.task.unwrap().state, State::Resolving as i32);
}

#[tokio::test]
async fn domains_are_upserted_and_listed() {
    let bbs = front();
    for domain in ["cf-apps", "cf-tasks"] {
        let request = UpsertDomainRequest {
            domain: domain.into(),
            ttl: 120,
        };
        let answer: UpsertDomainResponse = bbs.call("/v1/domains/upsert", &request).await;
        assert_eq!(answer.error, None);
    }
    let empty: UpsertDomainResponse = bbs
        .call("/v1/domains/upsert", &UpsertDomainRequest::default())
        .await;
    assert_eq!(
        error_of(empty.error.as_ref()),
        Some((Type::InvalidRequest, "Invalid field: domain".into()))
    );
    let listed: DomainsResponse = bbs.call("/v1/domains/list", &()).await;
    assert_eq!(listed.domains, ["cf-apps", "cf-tasks"]);
}

#[tokio::test]
async fn ping_is_available() {
    let bbs = front();
    let answer: PingResponse = bbs.call("/v1/ping", &()).await;
    assert!(answer.available);
}

#[tokio::test]
async fn a_body_that_does_not_decode_is_the_bbs_bad_request() {
    let bbs = front();
    // Field 1 as a varint where a message is expected, then garbage.
    let (status, body, _) = bbs
        .raw("/v1/desired_lrp/desire.r2", vec![0x08, 0x96, 0xff, 0xff])
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer = DesiredLrpLifecycleResponse::decode(body.as_slice()).unwrap();
    assert_eq!(
        error_of(answer.error.as_ref()),
        Some((
            Type::InvalidRequest,
            "the request received is invalid".into()
        ))
    );
    assert_eq!(
        counter(
            &bbs.metrics,
            "cube_bbs_requests_total",
            &[
                ("route", "/v1/desired_lrp/desire.r2"),
                ("error", "InvalidRequest")
            ]
        ),
        1
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_decoding() {
    let bbs = common::front_with(|bbs| bbs.with_max_body_bytes(64));
    let request = cc_task("task-1", "cf-tasks", "");
    assert!(request.encoded_len() > 64);
    let (status, body, _) = bbs.raw(DESIRE, request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let answer = TaskLifecycleResponse::decode(body.as_slice()).unwrap();
    assert_eq!(
        error_of(answer.error.as_ref()),
        Some((
            Type::InvalidRequest,
            "the request body is larger than 64 bytes".into()
        ))
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_are_404() {
    let bbs = front();
    let (status, _, _) = bbs.raw("/v1/desired_lrps/list.r3", Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let get = axum::http::Request::get("/v1/ping")
        .body(axum::body::Body::empty())
        .unwrap();
    use tower::ServiceExt;
    let response = bbs.router.clone().oneshot(get).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_answer_is_counted_by_route_and_error() {
    let bbs = front();
    let request = cc_task("task-1", "cf-tasks", "");
    let _: TaskLifecycleResponse = bbs.call(DESIRE, &request).await;
    let _: TaskLifecycleResponse = bbs.call(DESIRE, &request).await;
    let count = |error: &str| {
        counter(
            &bbs.metrics,
            "cube_bbs_requests_total",
            &[("route", DESIRE), ("error", error)],
        )
    };
    assert_eq!((count("none"), count("ResourceExists")), (1, 1));
    let durations = bbs
        .metrics
        .gather()
        .into_iter()
        .find(|family| family.name() == "cube_bbs_request_duration_seconds")
        .unwrap();
    assert_eq!(
        durations.get_metric()[0].get_histogram().get_sample_count(),
        2
    );
}
