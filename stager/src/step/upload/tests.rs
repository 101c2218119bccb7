//! The upload step against a recording stand-in for cc-uploader and CC, and
//! end to end against cc-sim, which hands out cc-uploader URIs as an
//! Eirini-era CC does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use cc::model::{LifecycleMetadata, StagingCompletion, StagingResult};

use super::*;
use crate::step::Workspace;

const DROPLET: &[u8] = b"\x1f\x8b a droplet, gzipped or not";

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// Records every request; answers `/v1/droplet/…` as cc-uploader does
/// (`answer`), any other POST as CC's upload route (a queued job) and a GET
/// of the job with it finished.
async fn receiver(answer: (StatusCode, &'static str)) -> (String, Log) {
    let log: Log = Arc::default();
    let recorded = log.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let recorded = recorded.clone();
            async move {
                let path = uri.path().to_owned();
                recorded.lock().unwrap().push(Received {
                    method,
                    uri,
                    headers,
                    body,
                });
                if path.starts_with("/v1/droplet/") {
                    return answer.into_response();
                }
                // CC's upload answers a queued job; polling it, finished.
                let status = if path.starts_with("/staging/jobs/") {
                    "finished"
                } else {
                    "queued"
                };
                let job = serde_json::json!({
                    "metadata": {"guid": "j-1", "created_at": "", "url": "/staging/jobs/j-1"},
                    "entity": {"guid": "j-1", "status": status},
                });
                axum::Json(job).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

fn result() -> StagingResult {
    StagingResult {
        lifecycle_type: "buildpack".into(),
        lifecycle_metadata: LifecycleMetadata {
            buildpack_key: Some("ruby".into()),
            detected_buildpack: Some("ruby".into()),
            ..LifecycleMetadata::default()
        },
        process_types: BTreeMap::from([("web".to_owned(), "ruby app.rb".to_owned())]),
        execution_metadata: String::new(),
        extra: BTreeMap::new(),
    }
}

/// A workspace as `build` leaves it: `droplet.tgz` and `result.json`.
fn built() -> (tempfile::TempDir, StepConfig) {
    let dir = tempfile::tempdir().unwrap();
    let workspace = Workspace::new(dir.path());
    std::fs::write(workspace.droplet(), DROPLET).unwrap();
    std::fs::write(workspace.result(), serde_json::to_vec(&result()).unwrap()).unwrap();
    let step = StepConfig {
        workspace,
        completion_url: None,
        logs_url: None,
    };
    (dir, step)
}

fn config(droplet_upload_url: String) -> UploadConfig {
    UploadConfig {
        droplet_upload_url,
        registry_url: None,
        droplet_guid: "app-1".into(),
        poll_interval: Duration::from_millis(10),
        max_polls: 10,
    }
}

fn header_of(received: &Received, name: header::HeaderName) -> Option<&str> {
    received.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_cc_uploader_uri_gets_the_raw_droplet_with_its_length() {
    let (url, log) = receiver((StatusCode::CREATED, "")).await;
    let inner = "http://internal_user:pw@cc.internal:9022/internal/v4/droplets/b-1/upload";
    let uri = cc::model::cc_uploader_droplet_uri(&Url::parse(&url).unwrap(), "b-1", inner);
    let (_dir, step) = built();

    let staged = upload(&step, &config(uri.to_string())).await.unwrap();
    assert_eq!(staged, result());

    let received = log.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "one POST, nothing to poll: {received:?}");
    let post = &received[0];
    assert_eq!(post.method, Method::POST);
    assert_eq!(post.uri.path(), "/v1/droplet/b-1");
    let query_uri = Url::parse(&format!("http://x{}", post.uri)).unwrap();
    assert_eq!(
        cc::model::query_value(&query_uri, cc::model::CC_DROPLET_UPLOAD_URI_KEY).as_deref(),
        Some(inner),
        "CC's upload URL travels unchanged"
    );
    assert_eq!(&post.body[..], DROPLET, "the body is the droplet itself");
    assert_eq!(
        header_of(post, header::CONTENT_LENGTH),
        Some(DROPLET.len().to_string().as_str())
    );
    assert_eq!(header_of(post, header::TRANSFER_ENCODING), None);
    let content_type = header_of(post, header::CONTENT_TYPE).unwrap_or_default();
    assert!(!content_type.starts_with("multipart/"), "{content_type}");
}

#[tokio::test]
async fn ccs_own_upload_url_gets_multipart_and_is_polled() {
    let (url, log) = receiver((StatusCode::CREATED, "")).await;
    let (_dir, step) = built();
    let droplet_upload_url = format!("{url}/staging/v3/droplets/b-1/upload");

    upload(&step, &config(droplet_upload_url)).await.unwrap();

    let received = log.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "the upload, then one poll: {received:?}");
    assert_eq!(received[1].method, Method::GET);
    assert_eq!(received[1].uri.path(), "/staging/jobs/j-1");
    let post = &received[0];
    assert_eq!(post.uri.path(), "/staging/v3/droplets/b-1/upload");
    let content_type = header_of(post, header::CONTENT_TYPE).unwrap();
    assert!(
        content_type.starts_with("multipart/form-data"),
        "{content_type}"
    );
    let body = String::from_utf8_lossy(&post.body);
    assert!(body.contains("name=\"upload[droplet]\""), "{body}");
    assert_ne!(&post.body[..], DROPLET);
}

#[tokio::test]
async fn cc_uploaders_refusal_fails_staging_naming_it() {
    let (url, _) = receiver((StatusCode::LENGTH_REQUIRED, "Missing Content Length")).await;
    let uri = format!("{url}/v1/droplet/b-1?cc-droplet-upload-uri=http%3A%2F%2Fcc%2Fx");
    let (_dir, step) = built();

    let error = upload(&step, &config(uri)).await.unwrap_err();
    assert_eq!(error.id, "StagingError");
    assert!(
        error
            .message
            .starts_with("uploading the droplet through cc-uploader failed:"),
        "{}",
        error.message
    );
    assert!(error.message.contains("411"), "{}", error.message);
    assert!(
        error.message.contains("Missing Content Length"),
        "{}",
        error.message
    );
}

/// A stager stand-in for cc-sim: records the staging request, answers 202.
async fn accepting_stager() -> (String, Arc<Mutex<Vec<cc::model::StagingRequest>>>) {
    let requests: Arc<Mutex<Vec<cc::model::StagingRequest>>> = Arc::default();
    let recorded = requests.clone();
    let app = axum::Router::new().route(
        "/stage/{guid}",
        axum::routing::post(
            move |axum::Json(request): axum::Json<cc::model::StagingRequest>| {
                let recorded = recorded.clone();
                async move {
                    recorded.lock().unwrap().push(request);
                    StatusCode::ACCEPTED
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, requests)
}

/// cc-sim stages an app, hands out a cc-uploader URI, and this step's upload
/// through it lands where CC's own upload would put it.
#[tokio::test]
async fn cc_sims_cc_uploader_uri_end_to_end() {
    let (stager_url, requests) = accepting_stager().await;
    let data = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", listener.local_addr().unwrap());
    let mut sim = cc::sim::Config::new(data.path());
    sim.stager_url = Some(stager_url);
    let service = cube_runtime::Service::new(cube_runtime::Shutdown::new());
    tokio::spawn(cc::sim::run(sim, listener, service.clone()));

    let api = cc::sim::client::SimClient::new(&sim_url).unwrap();
    let manifest = cc::sim::state::AppManifest {
        buildpacks: Some(vec!["ruby_buildpack".into()]),
        ..Default::default()
    };
    api.put_app("rb", &manifest).await.unwrap();
    let bits = tempfile::tempdir().unwrap();
    std::fs::write(bits.path().join("app.rb"), "puts :hi").unwrap();
    api.upload_bits("rb", crate::zip::pack_dir(bits.path()).unwrap())
        .await
        .unwrap();
    let build = api.stage("rb", true).await.unwrap();
    let request = requests.lock().unwrap()[0].clone();
    let lifecycle = request.lifecycle.buildpack_lifecycle.unwrap();
    let target = Url::parse(&lifecycle.droplet_upload_uri).unwrap();
    assert_eq!(
        DropletUploadTarget::of(&target),
        DropletUploadTarget::CcUploader
    );

    let (_dir, step) = built();
    let staged = upload(&step, &config(lifecycle.droplet_upload_uri.clone()))
        .await
        .unwrap();
    let mut cc = cc::ClientConfig::new(&sim_url);
    cc.username = None;
    let cc = cc::Client::new(cc).unwrap();
    cc.staging_completed(
        &request.completion_callback,
        &StagingCompletion::Succeeded(staged),
    )
    .await
    .unwrap();

    let app = api.get("rb").await.unwrap();
    assert_eq!(app.build.as_ref().map(|b| &b.guid), Some(&build.guid));
    let hash = app.droplet.as_ref().and_then(|d| d.hash.clone()).unwrap();
    let expected = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(DROPLET))
    };
    assert_eq!(hash, expected, "cc-sim stored exactly the droplet");
    assert!(app.desired);
    let events: serde_json::Value =
        reqwest::get(format!("{sim_url}/sim/events?kind=droplet_uploaded"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(events["events"][0]["body"]["via"], "cc-uploader");
    service.shutdown.cancel();
}
