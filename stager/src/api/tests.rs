//! Router tests (`oneshot`) for every route and error. OPI is the in-memory
//! scheduler behind OPI's real router on 127.0.0.1:0; CC is a recorder.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use opi::Scheduler;
use opi::memory::MemoryScheduler;
use opi::model::wire::TaskRequest;
use tower::ServiceExt;

use super::*;
use crate::recipe::env;

type Calls = Arc<Mutex<Vec<(String, Option<String>, serde_json::Value)>>>;

struct Harness {
    router: Router,
    scheduler: Arc<MemoryScheduler>,
    tasks: Arc<Mutex<Vec<TaskRequest>>>,
    cc_calls: Calls,
    cc_url: String,
    _buildpacks: tempfile::TempDir,
}

/// A CC stand-in: records POSTs; `/refuse/...` answers 422, `/broken/...` 500.
async fn fake_cc() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let recorded = calls.clone();
    let app = Router::new().fallback(
        move |headers: axum::http::HeaderMap, uri: axum::http::Uri, body: Bytes| {
            let recorded = recorded.clone();
            async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                recorded
                    .lock()
                    .unwrap()
                    .push((uri.path().to_owned(), auth, json));
                if uri.path().starts_with("/refuse") {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else if uri.path().starts_with("/broken") {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

async fn harness() -> Harness {
    harness_timing_out_after(std::time::Duration::from_secs(60)).await
}

async fn harness_timing_out_after(staging_timeout: std::time::Duration) -> Harness {
    let scheduler = Arc::new(MemoryScheduler::new());
    let opi_router = opi::http::router(
        scheduler.clone() as Arc<dyn Scheduler>,
        opi::http::ApiConfig::default(),
        opi::http::ApiMetrics::register(&Registry::new()).unwrap(),
    );
    // OPI's real router, with the task bodies it receives recorded.
    let tasks: Arc<Mutex<Vec<TaskRequest>>> = Arc::default();
    let recorded = tasks.clone();
    let recording = Router::new().fallback(move |request: Request<Body>| {
        let recorded = recorded.clone();
        let opi_router = opi_router.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            if parts.method == Method::POST && parts.uri.path().starts_with("/tasks/") {
                recorded
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&bytes).unwrap());
            }
            opi_router
                .oneshot(Request::from_parts(parts, Body::from(bytes)))
                .await
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opi_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, recording).await });
    let (cc_url, cc_calls) = fake_cc().await;
    let buildpacks = tempfile::tempdir().unwrap();
    for name in ["python", "binary"] {
        crate::lifecycle::testing::buildpack(buildpacks.path(), name, &[("detect", "exit 0")]);
    }
    std::fs::write(buildpacks.path().join("order"), "python\nbinary\n").unwrap();
    let api = Api {
        opi: OpiClient::new(&opi_url).unwrap(),
        recipe: Recipe {
            cube_binary: "/bin/cube".into(),
            image: "cube/host-exec".into(),
            public_url: Url::parse("http://127.0.0.1:8086").unwrap(),
            registry_url: None,
            staging_timeout,
            credentials: Vec::new(),
        },
        shipped: Some(Shipped::new(buildpacks.path()).unwrap()),
        cc_url: Some(Url::parse(&cc_url).unwrap()),
        metrics: Metrics::register(&Registry::new()).unwrap(),
        deadlines: crate::deadline::Deadlines::default(),
        logs: crate::logs::Logs::default(),
        cc_access: cube_runtime::access::ClientAccess::default(),
        peers: crate::peers::Peers::default(),
    };
    Harness {
        router: router(Arc::new(api)),
        scheduler,
        tasks,
        cc_calls,
        cc_url,
        _buildpacks: buildpacks,
    }
}

impl Harness {
    fn task(&self, guid: &str) -> TaskRequest {
        self.tasks
            .lock()
            .unwrap()
            .iter()
            .find(|t| t.guid == guid)
            .cloned()
            .unwrap()
    }
}

fn staging_body(cc_url: &str, guid: &str) -> serde_json::Value {
    let mut body: serde_json::Value = serde_json::from_str(include_str!(
        "../../testdata/staging_request_buildpack.json"
    ))
    .unwrap();
    let callback = format!(
        "{}/internal/v3/staging/{guid}/build_completed?start=true",
        cc_url.replace("http://", "http://internal_user:pass@")
    );
    body["completion_callback"] = callback.into();
    body["staging_guid"] = guid.into();
    body
}

async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    body: Option<Vec<u8>>,
) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, bytes)
}

fn message(bytes: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    json["error"]["message"].as_str().unwrap().to_owned()
}

/// A change to a staging request body.
type Change = Box<dyn Fn(&mut serde_json::Value)>;

const GUID: &str = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

#[tokio::test]
async fn stage_desires_the_staging_task() {
    let h = harness().await;
    let body = serde_json::to_vec(&staging_body(&h.cc_url, GUID)).unwrap();
    let (status, _) = send(
        &h.router,
        Method::POST,
        &format!("/stage/{GUID}"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let tasks = h.scheduler.list_tasks().await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].guid, GUID);
    let task = h.task(GUID);
    let docker = task.lifecycle.docker_lifecycle.as_ref().unwrap();
    assert_eq!(docker.image, "cube/host-exec");
    assert!(docker.command.is_empty(), "{:?}", docker.command);
    let steps: Vec<&str> = task.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["download", "build", "upload"]);
    assert_eq!(task.steps[1].command, ["/bin/cube", "stage", "build"]);
    assert!(task.completion_callback.starts_with(&format!(
        "http://127.0.0.1:8086/stage/{GUID}/completed?cc_callback="
    )));
    assert!(task.environment.iter().any(|v| v.name == env::APP_BITS_URL));

    // The same guid again is a conflict (OPI's 409 passes through).
    let body = serde_json::to_vec(&staging_body(&h.cc_url, GUID)).unwrap();
    let (status, _) = send(
        &h.router,
        Method::POST,
        &format!("/stage/{GUID}"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn stage_without_buildpacks_uses_the_shipped_ones() {
    let h = harness().await;
    let mut body = staging_body(&h.cc_url, GUID);
    body["lifecycle"]["buildpack_lifecycle"]["buildpacks"] = serde_json::json!([]);
    let (status, _) = send(
        &h.router,
        Method::POST,
        &format!("/stage/{GUID}"),
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let task = h.task(GUID);
    let json = &task
        .environment
        .iter()
        .find(|v| v.name == env::BUILDPACKS)
        .unwrap()
        .value;
    let buildpacks: Vec<opi::model::wire::Buildpack> = serde_json::from_str(json).unwrap();
    let names: Vec<_> = buildpacks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["python", "binary"]);
    assert_eq!(
        buildpacks[0].url,
        "http://127.0.0.1:8086/buildpacks/python.zip"
    );
}

#[tokio::test]
async fn stage_errors_name_the_field() {
    let h = harness().await;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|b| b["app_guid"] = "".into()), "app_guid"),
        (Box::new(|b| b["memory_mb"] = (-1).into()), "memory_mb"),
        (
            Box::new(|b| {
                b["lifecycle"]["buildpack_lifecycle"]["app_bits_download_uri"] = "".into()
            }),
            "app_bits_download_uri",
        ),
        (
            Box::new(|b| {
                b["lifecycle"]["buildpack_lifecycle"]["buildpacks"] =
                    serde_json::json!([{"name":"ruby","key":"ruby","url":"","skip_detect":true}]);
            }),
            "buildpacks[0].url",
        ),
        (
            Box::new(|b| b["lifecycle"] = serde_json::json!({})),
            "lifecycle",
        ),
        (
            Box::new(|b| b["staging_guid"] = "other".into()),
            "staging_guid",
        ),
        (
            Box::new(|b| {
                b["completion_callback"] =
                    "http://elsewhere.example/internal/v3/staging/x/build_completed".into();
            }),
            "completion_callback",
        ),
    ];
    for (change, field) in cases {
        let mut body = staging_body(&h.cc_url, GUID);
        change(&mut body);
        let (status, bytes) = send(
            &h.router,
            Method::POST,
            &format!("/stage/{GUID}"),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert!(
            message(&bytes).contains(field),
            "{field}: {}",
            message(&bytes)
        );
    }
    let (status, bytes) = send(
        &h.router,
        Method::POST,
        &format!("/stage/{GUID}"),
        Some(b"{".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&bytes).contains("body"));
    assert!(
        h.scheduler.list_tasks().await.unwrap().is_empty(),
        "nothing desired"
    );
}

#[tokio::test]
async fn cancel_cancels_the_task_or_is_404() {
    let h = harness().await;
    let (status, bytes) = send(&h.router, Method::DELETE, &format!("/stage/{GUID}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(message(&bytes).contains(GUID));
    let body = serde_json::to_vec(&staging_body(&h.cc_url, GUID)).unwrap();
    send(
        &h.router,
        Method::POST,
        &format!("/stage/{GUID}"),
        Some(body),
    )
    .await;
    let (status, _) = send(&h.router, Method::DELETE, &format!("/stage/{GUID}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let task = h.scheduler.get_task(GUID).await.unwrap();
    assert!(matches!(
        task.state,
        opi::model::TaskState::Completed { failed: true, ref failure_reason, .. } if failure_reason == "cancelled"
    ));
}

fn completed_uri(cc_url: &str, path: &str) -> String {
    let callback = format!(
        "{}{path}",
        cc_url.replace("http://", "http://internal_user:pass@")
    );
    let mut url = Url::parse("http://x/").unwrap();
    url.query_pairs_mut().append_pair("cc_callback", &callback);
    format!("/stage/{GUID}/completed?{}", url.query().unwrap())
}

#[tokio::test]
async fn completed_forwards_step_outcomes_to_cc_with_basic_auth() {
    let h = harness().await;
    let path = format!("/internal/v3/staging/{GUID}/build_completed");
    let body = br#"{"result":{"lifecycle_type":"buildpack","lifecycle_metadata":{"detected_buildpack":"python"},"process_types":{"web":"python3 app.py"},"execution_metadata":""}}"#;
    let (status, _) = send(
        &h.router,
        Method::POST,
        &completed_uri(&h.cc_url, &path),
        Some(body.to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let calls = h.cc_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, path);
    assert!(
        calls[0].1.as_deref().unwrap().starts_with("Basic "),
        "Basic auth from the URL"
    );
    assert_eq!(
        calls[0].2["result"]["process_types"]["web"],
        "python3 app.py"
    );
}

#[tokio::test]
async fn completed_ignores_successful_tasks_and_reports_failed_ones() {
    let h = harness().await;
    let path = format!("/internal/v3/staging/{GUID}/build_completed");
    let ok =
        serde_json::json!({"task_guid": GUID, "failed": false, "failure_reason": "", "result": ""});
    let (status, _) = send(
        &h.router,
        Method::POST,
        &completed_uri(&h.cc_url, &path),
        Some(ok.to_string().into_bytes()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        h.cc_calls.lock().unwrap().is_empty(),
        "the task reported itself"
    );
    let cancelled = serde_json::json!({"task_guid": GUID, "failed": true, "failure_reason": "cancelled", "result": ""});
    let (status, _) = send(
        &h.router,
        Method::POST,
        &completed_uri(&h.cc_url, &path),
        Some(cancelled.to_string().into_bytes()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let calls = h.cc_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].2["error"]["id"], "StagingError");
    assert!(
        calls[0].2["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
}

#[tokio::test]
async fn completed_errors() {
    let h = harness().await;
    let body = br#"{"error":{"id":"StagingError","message":"x"}}"#.to_vec();
    // No callback.
    let (status, bytes) = send(
        &h.router,
        Method::POST,
        &format!("/stage/{GUID}/completed"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&bytes).contains("cc_callback"));
    // A callback that is not CC's.
    let mut url = Url::parse("http://x/").unwrap();
    url.query_pairs_mut()
        .append_pair("cc_callback", "http://127.0.0.2:1/x");
    let uri = format!("/stage/{GUID}/completed?{}", url.query().unwrap());
    let (status, bytes) = send(&h.router, Method::POST, &uri, Some(body.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&bytes).contains("not on Cloud Controller"));
    // A body that is neither shape.
    let (status, _) = send(
        &h.router,
        Method::POST,
        &completed_uri(&h.cc_url, "/ok"),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // CC refuses for good: 422 (OPI's forwarder then stops retrying).
    let (status, _) = send(
        &h.router,
        Method::POST,
        &completed_uri(&h.cc_url, "/refuse"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // CC is broken: 502 (retry later).
    let (status, _) = send(
        &h.router,
        Method::POST,
        &completed_uri(&h.cc_url, "/broken"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn buildpacks_are_listed_and_served_as_zips() {
    let h = harness().await;
    let (status, bytes) = send(&h.router, Method::GET, "/buildpacks", None).await;
    assert_eq!(status, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(list[0]["name"], "python");
    assert_eq!(
        list[1]["url"],
        "http://127.0.0.1:8086/buildpacks/binary.zip"
    );
    let (status, bytes) = send(&h.router, Method::GET, "/buildpacks/python.zip", None).await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    crate::zip::extract(&bytes, dir.path(), "python").unwrap();
    assert!(crate::lifecycle::exec::is_executable(
        &dir.path().join("bin/detect")
    ));
    for uri in [
        "/buildpacks/ruby.zip",
        "/buildpacks/python",
        "/buildpacks/..%2Fpython.zip",
    ] {
        let (status, _) = send(&h.router, Method::GET, uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
}

/// The staging timeout is St8ge's: when it passes before any outcome, CC
/// hears `StagingTimeExpired` once, the task is cancelled, and what the task
/// and OPI report afterwards is dropped.
#[tokio::test]
async fn a_staging_that_times_out_is_reported_once_and_cancelled() {
    let h = harness_timing_out_after(std::time::Duration::from_millis(200)).await;
    let body = serde_json::to_vec(&staging_body(&h.cc_url, GUID)).unwrap();
    let (status, _) = send(
        &h.router,
        Method::POST,
        &format!("/stage/{GUID}"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut seen = String::new();
    for _ in 0..200 {
        let task = h.scheduler.get_task(GUID).await.unwrap();
        let reported = h.cc_calls.lock().unwrap().len();
        if matches!(task.state, opi::model::TaskState::Completed { .. }) && reported == 1 {
            seen.clear();
            break;
        }
        seen = format!("task {:?}, {reported} reports to CC", task.state);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        seen.is_empty(),
        "not timed out and cancelled within 10 s: {seen}"
    );
    let task = h.scheduler.get_task(GUID).await.unwrap();
    assert!(
        matches!(&task.state, opi::model::TaskState::Completed { failure_reason, .. } if failure_reason == "cancelled"),
        "{task:?}"
    );
    let calls = h.cc_calls.lock().unwrap().clone();
    assert_eq!(
        calls[0].0,
        format!("/internal/v3/staging/{GUID}/build_completed")
    );
    assert_eq!(calls[0].2["error"]["id"], "StagingTimeExpired");
    assert!(
        calls[0].2["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than"),
        "{}",
        calls[0].2
    );

    // A step reporting late, then OPI's callback of the cancelled task.
    let path = format!("/internal/v3/staging/{GUID}/build_completed");
    let late = br#"{"error":{"id":"BuildpackCompileFailed","message":"too late"}}"#;
    let cancelled = serde_json::json!({"task_guid": GUID, "failed": true, "failure_reason": "cancelled", "result": ""});
    for body in [late.to_vec(), cancelled.to_string().into_bytes()] {
        let (status, _) = send(
            &h.router,
            Method::POST,
            &completed_uri(&h.cc_url, &path),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        h.cc_calls.lock().unwrap().len(),
        1,
        "CC hears of the staging once"
    );
}
