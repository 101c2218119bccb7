//! Router tests of what the simulator does as an Eirini-era CC: it hands
//! the stager a cc-uploader droplet URI and serves cc-uploader's endpoint,
//! reads a refusing stager's top-level `message` only, and applies a staging
//! failure that arrives after success.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::router_tests::{
    Fixture, app_bits, json_call, multipart, router, sim_with, staging_build,
};
use crate::model::{CC_DROPLET_UPLOAD_URI_KEY, DropletUploadTarget, query_value};

/// `POST uri` with `headers` and `body`, no credentials; status and text.
async fn post(
    f: &Fixture,
    uri: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> (StatusCode, String) {
    let mut request = Request::post(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router(f)
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// cc-uploader's URI for `build`, naming CC's upload route `route` with the
/// simulator's credentials.
fn uploader_uri(f: &Fixture, build: &str) -> String {
    let url = url::Url::parse(&f.sim.droplet_upload_uri(build)).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap())
}

async fn post_raw(f: &Fixture, uri: &str, droplet: &[u8]) -> (StatusCode, String) {
    let length = droplet.len().to_string();
    let headers = [
        ("content-length", length.as_str()),
        ("content-type", "application/octet-stream"),
    ];
    post(f, uri, &headers, Body::from(droplet.to_vec())).await
}

#[tokio::test]
async fn cc_uploader_stores_the_droplet_as_cc_would() {
    let f = sim_with(|_| {}).await;
    let build = staging_build(&f).await;
    let uri = uploader_uri(&f, &build);
    assert!(uri.starts_with(&format!("/v1/droplet/{build}?")), "{uri}");

    let (status, text) = post_raw(&f, &uri, b"droplet bytes").await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(text, "", "cc-uploader answers an empty 201");

    let stored = f.sim.store.snapshot().builds[&build]
        .uploaded_droplet
        .clone();
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"droplet bytes"))
    };
    assert_eq!(stored, Some((sha256, 13)));
    let (_, events) = json_call(
        router(&f),
        "GET",
        "/sim/events?kind=droplet_uploaded",
        false,
        Value::Null,
    )
    .await;
    let event = &events["events"][0];
    assert_eq!(
        event["path"],
        format!("/internal/v4/droplets/{build}/upload")
    );
    assert_eq!(event["body"]["via"], "cc-uploader");
    assert!(!event.to_string().contains("internal_password"));

    // Staged from it, the droplet is served as CC's own upload would serve it.
    let completed = format!("/internal/v3/staging/{build}/build_completed");
    let result = json!({"result": {"lifecycle_type": "buildpack",
        "lifecycle_metadata": {"detected_buildpack": "ruby", "buildpack_key": "ruby"},
        "process_types": {"web": "ruby app.rb"}, "execution_metadata": ""}});
    let (status, body) = json_call(router(&f), "POST", &completed, true, result).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, app) = json_call(router(&f), "GET", "/sim/apps/rb", false, Value::Null).await;
    let hash = app["droplet"]["hash"].as_str().unwrap();
    let download = format!(
        "/internal/v2/droplets/{}/{hash}/download",
        app["guid"].as_str().unwrap()
    );
    let response = router(&f)
        .oneshot(Request::get(download).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"droplet bytes");
}

#[tokio::test]
async fn cc_uploader_refuses_as_cc_uploader_does() {
    let f = sim_with(|_| {}).await;
    let build = staging_build(&f).await;
    let uri = uploader_uri(&f, &build);

    let (status, text) = post_raw(&f, &format!("/v1/droplet/{build}"), b"x").await;
    assert_eq!(
        (status, text.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "missing cc-droplet-upload-uri parameter"
        )
    );
    // No Content-Length (a streamed body), or a zero one: 411.
    let (status, text) = post(&f, &uri, &[], Body::from("droplet")).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::LENGTH_REQUIRED, "Missing Content Length")
    );
    let (status, _) = post(&f, &uri, &[("content-length", "0")], Body::empty()).await;
    assert_eq!(status, StatusCode::LENGTH_REQUIRED);
    // The multipart CC's own endpoint takes would become the droplet itself.
    let (body, content_type) = multipart("upload[droplet]", b"droplet");
    let bytes = body.collect().await.unwrap().to_bytes();
    let length = bytes.len().to_string();
    let headers = [
        ("content-length", length.as_str()),
        ("content-type", content_type.as_str()),
    ];
    let (status, text) = post(&f, &uri, &headers, Body::from(bytes)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("raw body"), "{text}");

    // CC refuses what cc-uploader forwards: its status, `status code: N\n<CC body>`.
    let wrong = uri.replace("internal_password", "wrong");
    assert_ne!(wrong, uri);
    let (status, text) = post_raw(&f, &wrong, b"x").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.starts_with("status code: 401\n{"), "{text}");
    assert!(text.contains("CF-NotAuthenticated"), "{text}");
    let unknown = uri.replace(&build, "no-such-build");
    let (status, text) = post_raw(&f, &unknown, b"x").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(text.starts_with("status code: 404\n"), "{text}");
    let elsewhere = format!(
        "/v1/droplet/{build}?{CC_DROPLET_UPLOAD_URI_KEY}=http%3A%2F%2Fcc.example.com%2Fupload"
    );
    let (status, _) = post_raw(&f, &elsewhere, b"x").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        f.sim.store.snapshot().builds[&build].uploaded_droplet,
        None,
        "nothing refused was stored"
    );

    // A build that is no longer staging takes no droplet (CC's 422).
    f.sim
        .store
        .update(|s| {
            s.fail_build(&build, crate::model::StagingError::staging("gone"));
            Ok(())
        })
        .await
        .unwrap();
    let (status, text) = post_raw(&f, &uri, b"x").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
}

/// A stager stand-in: records staging requests and answers `status` with `body`.
async fn stager(status: StatusCode, body: &'static str) -> (String, Arc<Mutex<Vec<Value>>>) {
    let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
    let recorded = requests.clone();
    let app = axum::Router::new().route(
        "/stage/{guid}",
        axum::routing::post(move |axum::Json(request): axum::Json<Value>| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(request);
                (status, [(header::CONTENT_TYPE, "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, requests)
}

/// A buildpack app `rb` with bits, staged through `stager_url`.
async fn stage_rb(f: &Fixture) -> (StatusCode, Value) {
    json_call(
        router(f),
        "PUT",
        "/sim/apps/rb",
        false,
        json!({"buildpacks": []}),
    )
    .await;
    let zip = app_bits();
    let bits = Request::put("/sim/apps/rb/bits")
        .body(Body::from(zip))
        .unwrap();
    router(f).oneshot(bits).await.unwrap();
    json_call(router(f), "POST", "/sim/apps/rb/stage", false, Value::Null).await
}

#[tokio::test]
async fn staging_requests_hand_a_cc_uploader_uri() {
    let (url, requests) = stager(StatusCode::ACCEPTED, "").await;
    let f = sim_with(|c| c.stager_url = Some(url)).await;
    let (status, build) = stage_rb(&f).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{build}");
    let guid = build["guid"].as_str().unwrap();
    let request = requests.lock().unwrap()[0].clone();
    assert_eq!(request["staging_guid"], guid);
    let lifecycle = &request["lifecycle"]["buildpack_lifecycle"];
    let uri = url::Url::parse(lifecycle["droplet_upload_uri"].as_str().unwrap()).unwrap();
    assert_eq!(
        DropletUploadTarget::of(&uri),
        DropletUploadTarget::CcUploader
    );
    assert_eq!(uri.path(), format!("/v1/droplet/{guid}"));
    let cc = url::Url::parse(&query_value(&uri, CC_DROPLET_UPLOAD_URI_KEY).unwrap()).unwrap();
    assert_eq!(cc.path(), format!("/internal/v4/droplets/{guid}/upload"));
    assert_eq!(
        (cc.username(), cc.password()),
        ("internal_user", Some("internal_password"))
    );
    // Every field of an Eirini-era CC's request, but the buildpack cache the
    // simulator does not keep.
    let eirini: Value = serde_json::from_str(include_str!(
        "../../testdata/staging_request_buildpack_cc_uploader.json"
    ))
    .unwrap();
    let missing = |ours: &Value, theirs: &Value| -> Vec<String> {
        let ours = ours.as_object().unwrap();
        theirs
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| !ours.contains_key(*key) && !key.starts_with("buildpack_cache_"))
            .cloned()
            .collect()
    };
    assert_eq!(missing(&request, &eirini), Vec::<String>::new());
    assert_eq!(
        missing(lifecycle, &eirini["lifecycle"]["buildpack_lifecycle"]),
        Vec::<String>::new()
    );
    // The recorded request hides the credentials nested in the query.
    let (_, events) = json_call(
        router(&f),
        "GET",
        "/sim/events?kind=staging_requested",
        false,
        Value::Null,
    )
    .await;
    let recorded = events["events"][0]["body"].to_string();
    assert!(recorded.contains("/v1/droplet/"), "{recorded}");
    assert!(!recorded.contains("internal_password"), "{recorded}");
}

#[tokio::test]
async fn a_refusing_stager_shows_its_top_level_message_only() {
    let cases = [
        (
            StatusCode::BAD_REQUEST,
            include_str!("../../testdata/opi_stage_error.json"),
            "Runner error: lifecycle.buildpack_lifecycle.droplet_upload_uri: must not be empty",
        ),
        // A server that forgets the top-level `message` shows blank, as in CC.
        (
            StatusCode::BAD_REQUEST,
            r#"{"error":{"code":"BadRequest","message":"nested only"}}"#,
            "Runner error: ",
        ),
        // Only 202 is success.
        (
            StatusCode::OK,
            r#"{"message":"accepted?"}"#,
            "Runner error: accepted?",
        ),
    ];
    for (status, body, shown) in cases {
        let (url, _) = stager(status, body).await;
        let f = sim_with(|c| c.stager_url = Some(url)).await;
        let (answered, error) = stage_rb(&f).await;
        assert_eq!(answered, StatusCode::INTERNAL_SERVER_ERROR, "{error}");
        assert_eq!(error["error_code"], "CF-RunnerError");
        assert_eq!(error["code"], 170016);
        assert_eq!(error["description"], shown);
        let (_, app) = json_call(router(&f), "GET", "/sim/apps/rb", false, Value::Null).await;
        assert_eq!(app["build"]["state"], "FAILED");
        assert_eq!(app["build"]["error"]["message"], shown);
    }
}

#[tokio::test]
async fn a_failure_after_success_shows_in_the_app_and_events() {
    let (url, _) = stager(StatusCode::ACCEPTED, "").await;
    let f = sim_with(|c| c.stager_url = Some(url)).await;
    json_call(
        router(&f),
        "PUT",
        "/sim/apps/web",
        false,
        json!({"docker_image": "nginx"}),
    )
    .await;
    let (_, build) = json_call(
        router(&f),
        "POST",
        "/sim/apps/web/stage?start=true",
        false,
        Value::Null,
    )
    .await;
    let completed = format!(
        "/internal/v3/staging/{}/build_completed?start=true",
        build["guid"].as_str().unwrap()
    );
    let success: Value = serde_json::from_str(include_str!(
        "../../testdata/staging_completion_docker.json"
    ))
    .unwrap();
    let (status, _) = json_call(router(&f), "POST", &completed, true, success).await;
    assert_eq!(status, StatusCode::OK);
    let (_, app) = json_call(router(&f), "GET", "/sim/apps/web", false, Value::Null).await;
    assert_eq!(
        (app["build"]["state"].as_str(), app["desired"].as_bool()),
        (Some("STAGED"), Some(true))
    );

    let failure: Value =
        serde_json::from_str(include_str!("../../testdata/staging_completion_error.json")).unwrap();
    let (status, body) = json_call(router(&f), "POST", &completed, true, failure).await;
    assert_eq!(status, StatusCode::OK, "CC applies it: {body}");
    let (_, app) = json_call(router(&f), "GET", "/sim/apps/web", false, Value::Null).await;
    assert_eq!(app["build"]["state"], "FAILED");
    assert_eq!(app["build"]["failed_after_staged"], true);
    assert_eq!(app["build"]["error"]["id"], "StagingError");
    assert_eq!(app["state"], "STOPPED", "with start=true CC stops the app");
    assert_eq!(app["desired"], false);
    assert!(app["droplet"].is_object(), "the droplet stays");
    let (_, events) = json_call(router(&f), "GET", "/sim/events", false, Value::Null).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "staging_requested",
            "staging_completed",
            "staging_completed",
            "staging_failed_after_staged"
        ]
    );
}
