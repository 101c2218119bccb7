//! The log routes through `oneshot` (append, read, follow until completion,
//! bounds, 404), and a real step whose buildpack output reaches St8ge over
//! HTTP on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use prometheus::Registry;
use tower::ServiceExt;

use crate::api::{Api, Metrics, router};
use crate::logs::{Limits, Logs};

const GUID: &str = "5f0c2b1a-7d3e-4c8b-9a6f-2e1d0c9b8a7f";

/// St8ge's API (OPI is never called) with `limits` on its logs.
fn api(limits: Limits) -> Api {
    let mut config = crate::Config::new("http://127.0.0.1:9");
    config.buildpacks_dir = Some(std::env::temp_dir());
    let metrics = Metrics::register(&Registry::new()).unwrap();
    let mut api = crate::service::api(&config, "127.0.0.1:8086".parse().unwrap(), metrics).unwrap();
    api.logs = Logs::new(limits);
    api
}

async fn send(router: &Router, method: Method, uri: &str, body: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the answer ends")
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The next chunk of a streaming body (at most 10 s); `None` at its end.
async fn next_chunk(body: &mut Body) -> Option<String> {
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("a chunk or the end within 10 s")?
        .unwrap();
    Some(String::from_utf8_lossy(&frame.into_data().unwrap()).into_owned())
}

#[tokio::test]
async fn lines_are_appended_and_read_back_unknown_stagings_are_404() {
    let api = api(Limits {
        max_lines: 3,
        ..Limits::default()
    });
    api.logs.open(GUID);
    let router = router(Arc::new(api));
    let logs = format!("/stage/{GUID}/logs");

    let (status, _) = send(&router, Method::POST, &logs, "one\ntwo\n").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, text) = send(&router, Method::GET, &format!("{logs}?follow=false"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, "one\ntwo\n");

    // Past the bound, the oldest lines go and readers are told how many.
    send(&router, Method::POST, &logs, "three\nfour\nfive").await;
    let (_, text) = send(&router, Method::GET, &format!("{logs}?follow=false"), "").await;
    assert_eq!(text, "[2 lines dropped]\nthree\nfour\nfive\n");

    for method in [Method::GET, Method::POST] {
        let (status, body) = send(&router, method, "/stage/nobody/logs", "x").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("staging log of nobody"), "{body}");
    }
    let (status, body) = send(&router, Method::GET, "/stage/a%20b/logs", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("staging_guid"), "{body}");
}

/// A Cloud Controller that accepts every staging completion.
async fn accepting_cc() -> String {
    let cc = Router::new().fallback(|| async { StatusCode::OK });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, cc).await });
    url
}

#[tokio::test]
async fn a_follower_gets_lines_as_they_come_and_the_end_at_completion() {
    let api = api(Limits::default());
    api.logs.open(GUID);
    let router = router(Arc::new(api));
    let logs = format!("/stage/{GUID}/logs");
    send(&router, Method::POST, &logs, "-----> first\n").await;

    let request = Request::get(&logs).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    assert_eq!(
        next_chunk(&mut body).await.as_deref(),
        Some("-----> first\n")
    );

    send(&router, Method::POST, &logs, "-----> second\n").await;
    assert_eq!(
        next_chunk(&mut body).await.as_deref(),
        Some("-----> second\n")
    );

    // The step reports the outcome; St8ge forwards it to CC and ends the log.
    let cc = accepting_cc().await;
    let callback = format!("{cc}/internal/v3/staging/{GUID}/build_completed");
    let completed = format!(
        "/stage/{GUID}/completed?cc_callback={}",
        url::form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>()
    );
    let result = r#"{"result":{"lifecycle_type":"buildpack","process_types":{"web":"x"}}}"#;
    let (status, body_text) = send(&router, Method::POST, &completed, result).await;
    assert_eq!(status, StatusCode::OK, "{body_text}");
    assert_eq!(next_chunk(&mut body).await, None, "the log ends");

    // A new reader of the finished log gets all of it, then the end.
    let (_, text) = send(&router, Method::GET, &logs, "").await;
    assert_eq!(text, "-----> first\n-----> second\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steps_buildpack_output_reaches_st8ge() {
    let api = api(Limits::default());
    api.logs.open(GUID);
    let logs = api.logs.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let st8ge = format!("http://{}", listener.local_addr().unwrap());
    let app = router(Arc::new(api));
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A workspace as `cube stage download` leaves it, with a buildpack that
    // prints a unique marker on stdout and another on stderr.
    let workspace = tempfile::tempdir().unwrap();
    let marker = format!("marker-{}", std::process::id());
    let buildpack = crate::lifecycle::testing::buildpack(
        &workspace.path().join("buildpacks"),
        "echo",
        &[
            ("detect", "exit 0"),
            (
                "compile",
                &format!("echo \"-----> {marker} out\"\necho \"{marker} err\" >&2"),
            ),
            ("release", "echo 'default_process_types: {web: run}'"),
        ],
    );
    std::fs::create_dir_all(workspace.path().join("app")).unwrap();
    std::fs::write(workspace.path().join("app/run"), "").unwrap();
    std::fs::write(
        workspace.path().join("buildpacks.json"),
        serde_json::to_vec(&[buildpack]).unwrap(),
    )
    .unwrap();
    let step = crate::step::StepConfig {
        workspace: crate::step::Workspace::new(workspace.path()),
        completion_url: None,
        logs_url: Some(crate::report::logs_url(&st8ge.parse().unwrap(), GUID).unwrap()),
    };
    crate::step::build::run(&step).await.unwrap();

    // The step flushed before it returned: everything is there now.
    let chunk = logs.read(GUID, 0).unwrap();
    let text = chunk.text();
    assert!(text.contains(&format!("-----> {marker} out")), "{text}");
    assert!(text.contains(&format!("{marker} err")), "{text}");
    assert!(
        text.contains("-----> Running compile of buildpack echo"),
        "{text}"
    );
    assert!(text.contains("-----> Droplet:"), "{text}");
    assert!(!chunk.finished, "only the outcome ends the log");
}
