//! Router tests: every route and every error, through `tower::ServiceExt::oneshot`.

use super::*;
use crate::memory::MemoryScheduler;
use crate::model::LrpId;
use axum::body::Body as AxumBody;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use prometheus::Encoder;
use serde_json::{Value, json};
use tower::ServiceExt;

const GUID: &str = "a6f0a0a2-6b7b-4d8e-9a3f-4c2b1e0d9f11";
const VERSION: &str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn process_guid() -> String {
    format!("{GUID}-{VERSION}")
}

struct Fixture {
    memory: Arc<MemoryScheduler>,
    registry: prometheus::Registry,
    router: Router,
}

fn setup() -> Fixture {
    setup_with(ApiConfig {
        registry: "registry.local:8087".into(),
        ..ApiConfig::default()
    })
}

fn setup_with(config: ApiConfig) -> Fixture {
    let memory = Arc::new(MemoryScheduler::new());
    let registry = prometheus::Registry::new();
    let metrics = ApiMetrics::register(&registry).unwrap();
    let router = router(memory.clone(), config, metrics);
    Fixture {
        memory,
        registry,
        router,
    }
}

async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    body: Option<String>,
) -> (StatusCode, Value) {
    let request = Request::builder().method(method).uri(uri);
    // No content type on purpose: Cloud Controller's client does not always send one.
    let request = match body {
        Some(body) => request.body(AxumBody::from(body)),
        None => request.body(AxumBody::empty()),
    }
    .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, value)
}

/// The message of an error body, which carries it twice: nested, and at the
/// top level where an Eirini-era CC reads it (`response_json.message`).
fn error_message(body: &Value) -> &str {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        body["message"].as_str(),
        Some(message),
        "the top-level message CC reads: {body}"
    );
    message
}

async fn desire_fixture(f: &Fixture) {
    let (status, body) = call(
        &f.router,
        Method::PUT,
        &format!("/apps/{}", process_guid()),
        Some(fixture("desire_buildpack.json")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn desire_list_get_instances_stop() {
    let f = setup();
    desire_fixture(&f).await;

    let (status, body) = call(&f.router, Method::GET, "/apps", None).await;
    assert_eq!(status, StatusCode::OK);
    let infos = body["desired_lrp_scheduling_infos"].as_array().unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0]["desired_lrp_key"]["process_guid"], process_guid());
    assert_eq!(infos[0]["process_guid"], process_guid());
    assert_eq!(infos[0]["annotation"], "1529425339.0");
    assert_eq!(infos[0]["instances"], 3);

    let (status, body) = call(
        &f.router,
        Method::GET,
        &format!("/apps/{GUID}/{VERSION}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let lrp = &body["desired_lrp"];
    assert_eq!(lrp["process_guid"], process_guid());
    assert_eq!(lrp["instances"], 3);
    assert_eq!(
        lrp["routes"]["cf-router"][0]["hostname"],
        "myapp.example.com"
    );
    assert_eq!(
        lrp["image"],
        "registry.local:8087/cloudfoundry/d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a:8f2c5e7a9b1d3f4a6c8e0b2d4f6a8c0e2b4d6f8a"
    );
    assert!(
        lrp.get("environment").is_none(),
        "environment must not be exposed"
    );

    let (status, body) = call(
        &f.router,
        Method::GET,
        &format!("/apps/{GUID}/{VERSION}/instances"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["process_guid"], process_guid());
    let instances = body["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3);
    assert_eq!(instances[2]["index"], 2);
    assert_eq!(instances[2]["state"], "RUNNING");
    assert!(instances[2]["since"].as_i64().unwrap() > 0);

    let (status, _) = call(
        &f.router,
        Method::PUT,
        &format!("/apps/{GUID}/{VERSION}/stop/1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = call(
        &f.router,
        Method::PUT,
        &format!("/apps/{GUID}/{VERSION}/stop"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &f.router,
        Method::GET,
        &format!("/apps/{GUID}/{VERSION}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "NotFound");
    assert_stopped_instances(&f, GUID).await;
}

/// What an Eirini-era CC (`instances_client.rb#lrp_instances`) reads for a
/// stopped process: it parses the body whatever the status, and takes zero
/// instances only when `error` is a string including `not found`; anything
/// else raises NotRunningProcessError.
async fn assert_stopped_instances(f: &Fixture, guid: &str) {
    let (status, body) = call(
        &f.router,
        Method::GET,
        &format!("/apps/{guid}/{VERSION}/instances"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["process_guid"], format!("{guid}-{VERSION}"));
    assert_eq!(body["instances"], serde_json::json!([]));
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("error must be a string: {body}"));
    assert!(error.contains("not found"), "{body}");
}

#[tokio::test]
async fn instances_of_an_unknown_lrp_say_not_found_as_eirini_did() {
    let f = setup();
    assert_stopped_instances(&f, "never-desired").await;
}

#[tokio::test]
async fn update_changes_instances_routes_annotation() {
    let f = setup();
    desire_fixture(&f).await;
    let (status, body) = call(
        &f.router,
        Method::POST,
        &format!("/apps/{}", process_guid()),
        Some(fixture("update.json")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lrp = f.memory.get(&LrpId::new(GUID, VERSION)).await.unwrap();
    assert_eq!(lrp.instances, 5);
    assert_eq!(lrp.routes.cf_router.len(), 2);
    assert_eq!(lrp.annotation, "1529425999.0");
    assert_eq!(lrp.memory_mb, 256, "update must not touch other fields");
}

#[tokio::test]
async fn docker_desire_is_accepted() {
    let f = setup();
    let body = fixture("desire_docker.json");
    let req: Value = serde_json::from_str(&body).unwrap();
    let path = format!("/apps/{}", req["process_guid"].as_str().unwrap());
    let (status, body) = call(&f.router, Method::PUT, &path, Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn bad_bodies_get_400_naming_the_problem() {
    let f = setup();
    let path = format!("/apps/{}", process_guid());
    let mut negative: Value = serde_json::from_str(&fixture("desire_buildpack.json")).unwrap();
    negative["instances"] = json!(-1);
    let mut wrong_type = negative.clone();
    wrong_type["instances"] = json!("three");
    let mut bad_port = negative.clone();
    bad_port["instances"] = json!(1);
    bad_port["ports"] = json!([8080, 70000]);
    let mut bad_hc = bad_port.clone();
    bad_hc["ports"] = json!([8080]);
    bad_hc["health_check_type"] = json!("tcp");
    let mut zero_memory = bad_hc.clone();
    zero_memory["health_check_type"] = json!("port");
    zero_memory["memory_mb"] = json!(0);
    let mut missing_lifecycle = zero_memory.clone();
    missing_lifecycle["memory_mb"] = json!(64);
    missing_lifecycle
        .as_object_mut()
        .unwrap()
        .remove("lifecycle");

    let cases = [
        (
            negative.to_string(),
            "instances: must not be negative, got -1",
        ),
        (
            wrong_type.to_string(),
            "instances: invalid type: string \"three\"",
        ),
        (bad_port.to_string(), "ports[1]: port 70000 is out of range"),
        (
            bad_hc.to_string(),
            "health_check_type: unknown health check type \"tcp\"",
        ),
        (
            zero_memory.to_string(),
            "memory_mb: must be at least 1, got 0",
        ),
        (missing_lifecycle.to_string(), "missing field `lifecycle`"),
        ("{not json".to_owned(), "key must be a string"),
        (String::new(), "body is empty"),
        (
            "[1,2]".to_owned(),
            "[0]: invalid type: integer `1`, expected a string",
        ),
        (
            format!("{} trailing", bad_hc),
            "trailing data after the JSON object",
        ),
    ];
    for (body, expected) in cases {
        let (status, response) = call(&f.router, Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(response["error"]["code"], "InvalidRequest");
        assert!(
            error_message(&response).contains(expected),
            "{expected:?} not in {response}"
        );
    }
    assert!(
        f.memory.list().await.unwrap().is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn path_and_body_must_agree() {
    let f = setup();
    let (status, body) = call(
        &f.router,
        Method::PUT,
        "/apps/someone-else-v1",
        Some(fixture("desire_buildpack.json")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_message(&body).contains("process_guid"), "{body}");

    let (status, body) = call(
        &f.router,
        Method::PUT,
        &format!("/apps/{GUID}/{VERSION}/stop/first"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_message(&body).contains("index"), "{body}");

    let (status, body) = call(&f.router, Method::GET, "/apps/bad%20guid/v1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).starts_with("invalid request: guid:"),
        "{body}"
    );

    let (status, body) = call(&f.router, Method::GET, "/apps/g/..", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn unknown_lrps_routes_and_methods() {
    let f = setup();
    for (method, uri) in [
        (Method::GET, format!("/apps/{GUID}/{VERSION}")),
        (Method::PUT, format!("/apps/{GUID}/{VERSION}/stop")),
        (Method::PUT, format!("/apps/{GUID}/{VERSION}/stop/0")),
        (Method::GET, "/tasks/nope".to_owned()),
        (Method::DELETE, "/tasks/nope".to_owned()),
        (Method::GET, "/no/such/route".to_owned()),
    ] {
        let (status, body) = call(&f.router, method.clone(), &uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {body}");
        assert_eq!(body["error"]["code"], "NotFound");
        assert!(!error_message(&body).is_empty());
    }
    let (status, body) = call(
        &f.router,
        Method::POST,
        &format!("/apps/{}", process_guid()),
        Some(fixture("update.json")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = call(&f.router, Method::DELETE, "/apps", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "MethodNotAllowed");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let f = setup_with(ApiConfig {
        max_body_bytes: 4096,
        ..ApiConfig::default()
    });
    let mut req: Value = serde_json::from_str(&fixture("desire_buildpack.json")).unwrap();
    req["environment"]["BIG"] = json!("x".repeat(8192));
    let (status, body) = call(
        &f.router,
        Method::PUT,
        &format!("/apps/{}", process_guid()),
        Some(req.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "PayloadTooLarge");
    assert!(error_message(&body).contains("4096"), "{body}");
}

#[tokio::test]
async fn unavailable_backend_gets_503() {
    let f = setup();
    f.memory.set_unavailable(true);
    let (status, body) = call(&f.router, Method::GET, "/apps", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "Unavailable");
    let (status, _) = call(
        &f.router,
        Method::PUT,
        &format!("/apps/{}", process_guid()),
        Some(fixture("desire_buildpack.json")),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    f.memory.set_unavailable(false);
    desire_fixture(&f).await;
}

#[tokio::test]
async fn tasks_desire_list_get_cancel_and_conflict() {
    let f = setup();
    let task_guid = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
    let uri = format!("/tasks/{task_guid}");
    let (status, body) = call(&f.router, Method::POST, &uri, Some(fixture("task.json"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let (status, body) = call(&f.router, Method::POST, &uri, Some(fixture("task.json"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "Conflict");

    let (status, body) = call(&f.router, Method::GET, "/tasks", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["guid"], task_guid);
    assert_eq!(body[0]["state"], "RUNNING");

    let (status, body) = call(&f.router, Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "migrate");

    let (status, _) = call(&f.router, Method::DELETE, &uri, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = call(&f.router, Method::GET, &uri, None).await;
    assert_eq!(body["state"], "COMPLETED");
    assert_eq!(body["failed"], true);
    assert_eq!(body["failure_reason"], "cancelled");

    let mut bad: Value = serde_json::from_str(&fixture("task.json")).unwrap();
    bad["completion_callback"] = json!("not a url");
    let (status, body) = call(&f.router, Method::POST, "/tasks/t2", Some(bad.to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).contains("completion_callback"),
        "{body}"
    );
}

#[tokio::test]
async fn requests_are_counted_by_route_and_code() {
    let f = setup();
    desire_fixture(&f).await;
    call(&f.router, Method::GET, "/apps", None).await;
    call(&f.router, Method::GET, "/apps", None).await;
    call(&f.router, Method::GET, "/apps/x/y", None).await;
    let text = {
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&f.registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap()
    };
    assert!(
        text.contains(r#"cube_opi_requests_total{code="200",route="GET /apps"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"cube_opi_requests_total{code="202",route="PUT /apps/{process_guid}"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"cube_opi_requests_total{code="404",route="GET /apps/{guid}/{version}"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("cube_opi_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[test]
fn every_error_maps_to_its_status() {
    let cases = [
        (Error::BadBody("x".into()), 400, "InvalidRequest"),
        (Error::NotFound("x".into()), 404, "NotFound"),
        (Error::Conflict("x".into()), 409, "Conflict"),
        (Error::PayloadTooLarge { limit: 1 }, 413, "PayloadTooLarge"),
        (Error::NotSupported("x".into()), 422, "NotSupported"),
        (Error::Unavailable("x".into()), 503, "Unavailable"),
        (Error::Internal("x".into()), 500, "Internal"),
    ];
    for (error, status, code) in cases {
        assert_eq!(error.status().as_u16(), status, "{error}");
        assert_eq!(error.code(), code);
        let back = Error::from_status(error.status(), "x".into());
        assert_eq!(back.status(), error.status(), "round trip of {error}");
    }
}

/// OPI forwarding `/stage/…` to `st8ge`, which serves on 127.0.0.1.
async fn forwarding_to(st8ge: Router) -> Fixture {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, st8ge).await.unwrap() });
    setup_with(ApiConfig {
        stager_url: Some(reqwest::Url::parse(&format!("http://{addr}")).unwrap()),
        ..ApiConfig::default()
    })
}

#[tokio::test]
async fn staging_is_forwarded_to_st8ge_when_configured() {
    use std::sync::Mutex;
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let record = seen.clone();
    let st8ge = Router::new().fallback(move |request: axum::extract::Request| {
        let record = record.clone();
        async move {
            let method = request.method().to_string();
            let uri = request.uri().to_string();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            record
                .lock()
                .unwrap()
                .push((method, uri, String::from_utf8_lossy(&body).into_owned()));
            (StatusCode::ACCEPTED, Json(json!({"accepted": true})))
        }
    });
    let f = forwarding_to(st8ge).await;
    let (status, body) = call(
        &f.router,
        Method::POST,
        "/stage/s-1",
        Some(fixture("staging_buildpack.json")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["accepted"], true);
    let (status, _) = call(&f.router, Method::DELETE, "/stage/s-1", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = call(
        &f.router,
        Method::POST,
        "/stage/s-1/completed?cc_callback=x",
        Some("{}".into()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        (seen[0].0.as_str(), seen[0].1.as_str()),
        ("POST", "/stage/s-1")
    );
    assert!(
        seen[0].2.contains("python_buildpack"),
        "the body is forwarded unchanged"
    );
    assert_eq!(seen[1].0, "DELETE");
    assert_eq!(seen[2].1, "/stage/s-1/completed?cc_callback=x");

    let (status, body) = call(&f.router, Method::POST, "/stage/..", Some("{}".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn staging_without_st8ge_is_a_clear_404_and_an_unreachable_one_503() {
    let f = setup();
    let (status, body) = call(&f.router, Method::POST, "/stage/s-1", Some("{}".into())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_message(&body).contains("--stager-url"), "{body}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let f = setup_with(ApiConfig {
        stager_url: Some(reqwest::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap()),
        ..ApiConfig::default()
    });
    let (status, body) = call(&f.router, Method::POST, "/stage/s-1", Some("{}".into())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn staging_logs_are_streamed_through_as_st8ge_sends_them() {
    use std::sync::Mutex;
    use std::time::Duration;
    let (lines, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let st8ge = Router::new().route(
        "/stage/{guid}/logs",
        get(move || {
            let receiver = receiver.clone();
            async move {
                let receiver = receiver.lock().unwrap().take().unwrap();
                let stream = futures::stream::unfold(receiver, |mut receiver| async move {
                    let chunk = receiver.recv().await?;
                    Some((Ok::<_, std::convert::Infallible>(chunk), receiver))
                });
                AxumBody::from_stream(stream)
            }
        }),
    );
    let f = forwarding_to(st8ge).await;

    lines.send(Bytes::from("-----> first\n")).await.unwrap();
    let request = Request::get("/stage/s-1/logs")
        .body(AxumBody::empty())
        .unwrap();
    // St8ge has not ended the log: a buffering proxy would never answer.
    let response = tokio::time::timeout(Duration::from_secs(10), f.router.clone().oneshot(request))
        .await
        .expect("the answer starts before the log ends")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the first line arrives before the log ends")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(first, "-----> first\n");
    lines.send(Bytes::from("-----> second\n")).await.unwrap();
    drop(lines);
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(rest, "-----> second\n");
}
