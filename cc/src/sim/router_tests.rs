//! Router tests of the simulator with `tower::ServiceExt::oneshot`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{Config, Sim, auth::basic_header};

pub(super) struct Fixture {
    pub(super) _dir: tempfile::TempDir,
    pub(super) sim: Arc<Sim>,
}

pub(super) async fn sim_with(configure: impl FnOnce(&mut Config)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    configure(&mut config);
    let addr = "127.0.0.1:9022".parse().unwrap();
    let sim = Sim::open(config, addr, &prometheus::Registry::new())
        .await
        .unwrap();
    Fixture { _dir: dir, sim }
}

pub(super) fn router(f: &Fixture) -> Router {
    f.sim.router()
}

pub(super) fn auth() -> String {
    basic_header("internal_user", "internal_password")
}

pub(super) async fn call(
    router: Router,
    method: &str,
    uri: &str,
    authorized: bool,
    body: Body,
    content_type: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri);
    if authorized {
        request = request.header(header::AUTHORIZATION, auth());
    }
    if let Some(ct) = content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let response = router.oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

pub(super) async fn json_call(
    router: Router,
    method: &str,
    uri: &str,
    authorized: bool,
    body: Value,
) -> (StatusCode, Value) {
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    let (status, bytes) = call(
        router,
        method,
        uri,
        authorized,
        body,
        Some("application/json"),
    )
    .await;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, value)
}

const FIRST_PAGE: &str =
    "/internal/bulk/apps?batch_size=2&format=fingerprint&token=%7B%22id%22%3A0%7D";

#[tokio::test]
async fn internal_api_needs_basic_auth() {
    let f = sim_with(|c| c.fake_apps = 1).await;
    let (status, body) = json_call(router(&f), "GET", FIRST_PAGE, false, Value::Null).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], "CF-NotAuthenticated");
    let request = Request::get(FIRST_PAGE)
        .header(
            header::AUTHORIZATION,
            basic_header("internal_user", "wrong"),
        )
        .body(Body::empty())
        .unwrap();
    let response = router(&f).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = json_call(router(&f), "GET", FIRST_PAGE, true, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bulk_pages_like_cc() {
    let f = sim_with(|c| c.fake_apps = 5).await;
    let (status, page) = json_call(router(&f), "GET", FIRST_PAGE, true, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["fingerprints"].as_array().unwrap().len(), 2);
    assert_eq!(page["token"], json!({"id": 2}));
    let etag = page["fingerprints"][0]["etag"].as_str().unwrap();
    assert!(etag.contains('.'), "etag looks like a float: {etag}");
    let (_, last) = json_call(
        router(&f),
        "GET",
        "/internal/bulk/apps?batch_size=2&format=fingerprint&token=%7B%22id%22%3A5%7D",
        true,
        Value::Null,
    )
    .await;
    assert_eq!(last, json!({"fingerprints": [], "token": {"id": null}}));
    // Without format=fingerprint: full records.
    let (_, full) = json_call(
        router(&f),
        "GET",
        "/internal/bulk/apps?batch_size=1&token=%7B%22id%22%3A0%7D",
        true,
        Value::Null,
    )
    .await;
    assert_eq!(
        full["apps"][0]["docker_image"],
        super::DEFAULT_FAKE_APP_IMAGE
    );
    assert_eq!(full["token"], json!({"id": 1}));
}

#[tokio::test]
async fn bulk_errors_name_the_parameter() {
    let f = sim_with(|_| {}).await;
    for (uri, needle) in [
        ("/internal/bulk/apps?token=%7B%7D", "batch_size is missing"),
        (
            "/internal/bulk/apps?batch_size=-1&token=%7B%7D",
            "batch_size `-1`",
        ),
        ("/internal/bulk/apps?batch_size=10", "token is missing"),
        (
            "/internal/bulk/apps?batch_size=10&token=%7Bid%7D",
            "token `{id}`",
        ),
    ] {
        let (status, body) = json_call(router(&f), "GET", uri, true, Value::Null).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["error_code"], "CF-BadQueryParameter");
        assert!(
            body["description"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    let (status, body) =
        json_call(router(&f), "POST", "/internal/bulk/apps", true, Value::Null).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "CF-MessageParseError");
    let (status, _) = json_call(
        router(&f),
        "POST",
        "/internal/bulk/apps",
        true,
        json!({"not": "a list"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bulk_post_returns_known_current_guids_only() {
    let f = sim_with(|c| c.fake_apps = 3).await;
    let (_, page) = json_call(router(&f), "GET", FIRST_PAGE, true, Value::Null).await;
    let pg = page["fingerprints"][0]["process_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, apps) = json_call(
        router(&f),
        "POST",
        "/internal/bulk/apps",
        true,
        json!([pg, "unknown-guid", format!("{}-old-version", &pg[..36])]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let apps = apps.as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["process_guid"], pg.as_str());
    assert_eq!(apps[0]["num_instances"], 1);
}

#[tokio::test]
async fn docker_push_without_a_stager_stages_and_starts() {
    let f = sim_with(|_| {}).await;
    let (status, app) = json_call(
        router(&f),
        "PUT",
        "/sim/apps/web",
        false,
        json!({"docker_image": "nginx", "instances": 2}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let (status, _) = json_call(
        router(&f),
        "PUT",
        "/sim/apps/web",
        false,
        json!({"instances": 3}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, build) = json_call(
        router(&f),
        "POST",
        "/sim/apps/web/stage?start=true",
        false,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{build}");
    assert_eq!(build["state"], "STAGED");
    let (_, app) = json_call(router(&f), "GET", "/sim/apps/web", false, Value::Null).await;
    assert_eq!(app["state"], "STARTED");
    assert_eq!(app["desired"], true);
    assert_eq!(app["instances"], 3);
    let (_, events) = json_call(
        router(&f),
        "GET",
        "/sim/events?kind=staged_without_stager",
        false,
        Value::Null,
    )
    .await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
    // Listed by the bulk API.
    let (_, page) = json_call(router(&f), "GET", FIRST_PAGE, true, Value::Null).await;
    assert_eq!(page["fingerprints"][0]["process_guid"], app["process_guid"]);
    // Scale, stop, delete.
    let (status, scaled) = json_call(
        router(&f),
        "PUT",
        "/sim/apps/web/scale",
        false,
        json!({"instances": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(scaled["etag"], app["etag"]);
    let (status, body) = json_call(
        router(&f),
        "PUT",
        "/sim/apps/web/scale",
        false,
        json!({"instance": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["description"].as_str().unwrap().contains("instance"),
        "{body}"
    );
    let (_, stopped) =
        json_call(router(&f), "POST", "/sim/apps/web/stop", false, Value::Null).await;
    assert_eq!(stopped["desired"], false);
    let (status, _) = json_call(router(&f), "DELETE", "/sim/apps/web", false, Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = json_call(router(&f), "GET", "/sim/apps/web", false, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["description"].as_str().unwrap().contains("`web`"));
}

#[tokio::test]
async fn buildpack_staging_without_a_stager_is_refused_clearly() {
    let f = sim_with(|_| {}).await;
    json_call(
        router(&f),
        "PUT",
        "/sim/apps/rb",
        false,
        json!({"buildpacks": ["ruby_buildpack"]}),
    )
    .await;
    let (status, body) = call(
        router(&f),
        "PUT",
        "/sim/apps/rb/bits",
        false,
        Body::from("not a zip"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("zip"));
    let zip = app_bits();
    let (status, _) = call(
        router(&f),
        "PUT",
        "/sim/apps/rb/bits",
        false,
        Body::from(zip),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        json_call(router(&f), "POST", "/sim/apps/rb/stage", false, Value::Null).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("--stager-url"),
        "{body}"
    );
}

#[tokio::test]
async fn unreachable_stager_fails_the_build_as_a_stager_error() {
    // Port 9 (discard) on loopback is closed in test environments.
    let f = sim_with(|c| c.stager_url = Some("http://127.0.0.1:9".into())).await;
    json_call(
        router(&f),
        "PUT",
        "/sim/apps/web",
        false,
        json!({"docker_image": "nginx"}),
    )
    .await;
    let (status, body) = json_call(
        router(&f),
        "POST",
        "/sim/apps/web/stage",
        false,
        Value::Null,
    )
    .await;
    // CC's `Diego::Stager`: a failure to ask is `StagerError` (500).
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error_code"], "CF-StagerError");
    let description = body["description"].as_str().unwrap();
    assert!(description.starts_with("Stager error: "), "{body}");
    assert!(description.contains("127.0.0.1:9"), "{body}");
    let (_, app) = json_call(router(&f), "GET", "/sim/apps/web", false, Value::Null).await;
    assert_eq!(app["build"]["state"], "FAILED");
}

/// App bits as `cube push` uploads them: a zip (of one file).
pub(super) fn app_bits() -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.start_file("app.rb", options).unwrap();
    writer.write_all(b"puts :hi").unwrap();
    writer.finish().unwrap().into_inner()
}

pub(super) fn multipart(field: &str, bytes: &[u8]) -> (Body, String) {
    let boundary = "cube-boundary";
    let mut body = Vec::new();
    body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"droplet.tgz\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend(bytes);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        Body::from(body),
        format!("multipart/form-data; boundary={boundary}"),
    )
}

/// Puts a buildpack app with bits and a build in STAGING, as a stager would see it.
pub(super) async fn staging_build(f: &Fixture) -> String {
    json_call(
        router(f),
        "PUT",
        "/sim/apps/rb",
        false,
        json!({"buildpacks": []}),
    )
    .await;
    let zip = app_bits();
    call(
        router(f),
        "PUT",
        "/sim/apps/rb/bits",
        false,
        Body::from(zip),
        None,
    )
    .await;
    let now = super::now_micros();
    let build = f
        .sim
        .store
        .update(|s| s.start_build("rb", true, now))
        .await
        .unwrap();
    build.guid
}

#[tokio::test]
async fn droplet_upload_job_completion_and_download() {
    let f = sim_with(|_| {}).await;
    let build = staging_build(&f).await;
    let upload = format!("/staging/v3/droplets/{build}/upload");
    let (body, ct) = multipart("wrong[field]", b"x");
    let (status, bytes) = call(router(&f), "POST", &upload, true, body, Some(&ct)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&bytes).contains("upload[droplet]"));
    let (body, ct) = multipart("upload[droplet]", b"droplet bytes");
    let (status, _) = call(router(&f), "POST", &upload, false, body, Some(&ct)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (body, ct) = multipart("upload[droplet]", b"droplet bytes");
    let (status, bytes) = call(router(&f), "POST", &upload, true, body, Some(&ct)).await;
    assert_eq!(status, StatusCode::OK);
    let job: crate::model::Job = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(job.entity.status, crate::model::JobStatus::Finished);
    let job_path = url::Url::parse(&job.metadata.url)
        .unwrap()
        .path()
        .to_owned();
    let (status, polled) = json_call(router(&f), "GET", &job_path, true, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(polled["entity"]["status"], "finished");

    let completed = format!("/internal/v3/staging/{build}/build_completed");
    let (status, _) = json_call(router(&f), "POST", &completed, true, json!({"bogus": true})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let result = json!({"result": {"lifecycle_type": "buildpack",
        "lifecycle_metadata": {"detected_buildpack": "ruby", "buildpack_key": "ruby"},
        "process_types": {"web": "ruby app.rb"}, "execution_metadata": ""}});
    let (status, body) = json_call(router(&f), "POST", &completed, true, result.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = json_call(router(&f), "POST", &completed, true, result).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CF-InvalidRequest")),
        "a second success is refused, as CC does: {body}"
    );

    let (_, app) = json_call(router(&f), "GET", "/sim/apps/rb", false, Value::Null).await;
    assert_eq!(app["state"], "STARTED");
    let pg = app["process_guid"].as_str().unwrap();
    let (_, records) =
        json_call(router(&f), "POST", "/internal/bulk/apps", true, json!([pg])).await;
    let record = &records[0];
    assert_eq!(record["start_command"], "ruby app.rb");
    let droplet_uri = url::Url::parse(record["droplet_uri"].as_str().unwrap()).unwrap();
    assert_eq!(droplet_uri.host_str(), Some("127.0.0.1"));
    let (status, bytes) = call(
        router(&f),
        "GET",
        droplet_uri.path(),
        false,
        Body::empty(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, b"droplet bytes");
    let (_, events) = json_call(router(&f), "GET", "/sim/events", false, Value::Null).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["droplet_uploaded", "staging_completed"]);
    assert_eq!(events["events"][0]["path"], upload.as_str());
    assert!(
        events["events"][0]["body"].get("via").is_none(),
        "the stager uploaded it itself"
    );
}

#[tokio::test]
async fn crash_and_task_callbacks_are_recorded() {
    let f = sim_with(|c| c.fake_apps = 1).await;
    let (_, page) = json_call(router(&f), "GET", FIRST_PAGE, true, Value::Null).await;
    let pg = page["fingerprints"][0]["process_guid"]
        .as_str()
        .unwrap()
        .to_owned();
    let crash: Value =
        serde_json::from_str(include_str!("../../testdata/app_crashed.json")).unwrap();
    let (status, _) = json_call(
        router(&f),
        "POST",
        &format!("/internal/v4/apps/{pg}/crashed"),
        true,
        crash.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let unknown = format!("{}-{}", crate::guid::new_guid(), crate::guid::new_guid());
    let (status, _) = json_call(
        router(&f),
        "POST",
        &format!("/internal/v4/apps/{unknown}/crashed"),
        true,
        crash,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = json_call(
        router(&f),
        "POST",
        &format!("/internal/v4/apps/{pg}/crashed"),
        true,
        json!({"index": 0}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["description"].as_str().unwrap().contains("instance"),
        "{body}"
    );

    let task: Value =
        serde_json::from_str(include_str!("../../testdata/task_completed.json")).unwrap();
    let guid = task["task_guid"].as_str().unwrap().to_owned();
    let (status, _) = json_call(
        router(&f),
        "POST",
        "/internal/v4/tasks/other/completed",
        true,
        task.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let path = format!("/internal/v4/tasks/{guid}/completed");
    let (status, _) = json_call(router(&f), "POST", &path, true, task.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = json_call(router(&f), "POST", &path, true, task).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "completed twice");

    let (_, events) = json_call(router(&f), "GET", "/sim/events", false, Value::Null).await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["kind"], "app_crashed");
    assert_eq!(events[0]["body"]["exit_status"], 137);
    assert_eq!(events[1]["kind"], "task_completed");
    let since = events[0]["seq"].as_u64().unwrap();
    let (_, later) = json_call(
        router(&f),
        "GET",
        &format!("/sim/events?since={since}"),
        false,
        Value::Null,
    )
    .await;
    assert_eq!(later["events"].as_array().unwrap().len(), 1);
    let (status, _) = json_call(router(&f), "GET", "/sim/events?since=x", false, Value::Null).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_routes_answer_cc_errors() {
    let f = sim_with(|_| {}).await;
    let (status, body) = json_call(router(&f), "GET", "/v2/info", false, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "CF-ResourceNotFound");
}

/// `PUT /sim/apps/web` as a Docker app, then, with `stage`, `POST …/stage`.
async fn docker_web(f: &Fixture, stage: bool) {
    let manifest = json!({"docker_image": "nginx"});
    json_call(router(f), "PUT", "/sim/apps/web", false, manifest).await;
    if stage {
        json_call(router(f), "POST", "/sim/apps/web/stage", false, Value::Null).await;
    }
}

#[tokio::test]
async fn staging_logs_name_what_is_missing() {
    let logs = |f: &Fixture| {
        json_call(
            router(f),
            "GET",
            "/sim/apps/web/staging_logs",
            false,
            Value::Null,
        )
    };
    let f = sim_with(|_| {}).await;
    let (status, body) = logs(&f).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["description"], "app `web` not found");
    docker_web(&f, false).await;
    let (status, body) = logs(&f).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["description"], "app `web` has not been staged");
    docker_web(&f, true).await;
    let (status, body) = logs(&f).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let description = body["description"].as_str().unwrap();
    assert!(description.contains("no stager configured"), "{body}");

    // Port 9 (discard) on loopback is closed in test environments.
    let f = sim_with(|c| c.stager_url = Some("http://127.0.0.1:9".into())).await;
    docker_web(&f, true).await;
    let (status, body) = logs(&f).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let description = body["description"].as_str().unwrap();
    assert!(description.contains("127.0.0.1:9"), "{body}");
}
