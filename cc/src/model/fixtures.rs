//! The fixtures under `cc/testdata/` are real payload shapes; every one must read
//! into its type and write back to the same JSON, so no field is lost or renamed.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Reads the fixture as `T`, writes it back and compares the JSON.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let original = fixture(name);
    let typed: T =
        serde_json::from_value(original.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let written = serde_json::to_value(&typed).unwrap();
    assert_eq!(written, original, "{name} does not round-trip");
    typed
}

#[test]
fn fingerprint_pages() {
    let page: FingerprintsPage = round_trip("bulk_fingerprints_page.json");
    assert_eq!(page.token.id, Some(57));
    assert_eq!(page.fingerprints[1].etag, Etag("1700000123.0".into()));
    let last: FingerprintsPage = round_trip("bulk_fingerprints_last_page.json");
    assert!(last.fingerprints.is_empty());
    assert_eq!(last.token.id, None);
}

#[test]
fn desired_apps() {
    let apps: Vec<DesireAppRequestFromCC> = round_trip("bulk_desired_apps.json");
    let buildpack = &apps[0];
    assert_eq!(
        buildpack.process_guid.app_guid(),
        Some("8f3a2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c")
    );
    assert_eq!(buildpack.routing_info.http_routes[0].port, Some(8080));
    assert!(buildpack.droplet_hash.is_some() && buildpack.docker_image.is_none());
    assert_eq!(
        buildpack.extra.len(),
        0,
        "every field of a CC record is modelled"
    );
    let docker = &apps[1];
    assert_eq!(
        docker.docker_image.as_deref(),
        Some("docker.io/library/nginx:1.27")
    );
    assert_eq!(
        docker.health_check_http_endpoint.as_deref(),
        Some("/healthz")
    );
}

#[test]
fn staging_requests() {
    let request: StagingRequest = round_trip("staging_request_buildpack.json");
    let lifecycle = request.lifecycle.buildpack_lifecycle.unwrap();
    assert_eq!(lifecycle.buildpacks.len(), 2);
    assert!(lifecycle.buildpacks[1].skip_detect);
    assert!(request.lifecycle.docker_lifecycle.is_none());
    let request: StagingRequest = round_trip("staging_request_buildpack_cc_uploader.json");
    assert_eq!(
        request.staging_guid.as_deref(),
        Some("6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c")
    );
    let lifecycle = request.lifecycle.buildpack_lifecycle.unwrap();
    let upload = url::Url::parse(&lifecycle.droplet_upload_uri).unwrap();
    assert_eq!(
        DropletUploadTarget::of(&upload),
        DropletUploadTarget::CcUploader
    );
    assert_eq!(
        query_value(&upload, CC_DROPLET_UPLOAD_URI_KEY).as_deref(),
        Some(
            "https://capi.cf-system.svc.cluster.local:9024/internal/v4/droplets/6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c/upload"
        )
    );
    let cache = url::Url::parse(lifecycle.buildpack_cache_upload_uri.as_deref().unwrap()).unwrap();
    assert_eq!(query_value(&cache, CC_TIMEOUT_KEY).as_deref(), Some("900"));
    assert!(query_value(&cache, CC_BUILD_ARTIFACTS_UPLOAD_URI_KEY).is_some());
    let request: StagingRequest = round_trip("staging_request_docker.json");
    assert_eq!(
        request.lifecycle.docker_lifecycle.unwrap().image,
        "docker.io/library/nginx:1.27"
    );
}

#[test]
fn staging_completions() {
    let done: StagingCompletion = round_trip("staging_completion_buildpack.json");
    let StagingCompletion::Succeeded(result) = done else {
        panic!("expected success")
    };
    assert_eq!(result.lifecycle_type, "buildpack");
    assert_eq!(
        result.process_types["web"],
        "bundle exec rackup config.ru -p $PORT"
    );
    assert_eq!(
        result.lifecycle_metadata.detected_buildpack.as_deref(),
        Some("ruby")
    );
    assert!(result.extra.contains_key("sidecars"));

    let docker: StagingCompletion = round_trip("staging_completion_docker.json");
    assert!(matches!(docker, StagingCompletion::Succeeded(r) if r.lifecycle_type == "docker"));

    let failed: StagingCompletion = round_trip("staging_completion_error.json");
    assert_eq!(
        failed,
        StagingCompletion::Failed(StagingError::staging("staging failed"))
    );
}

#[test]
fn raw_task_callbacks_are_read_like_cc_does() {
    let failed: StagingCompletion =
        serde_json::from_value(fixture("staging_completion_task_callback.json")).unwrap();
    assert_eq!(
        failed,
        StagingCompletion::Failed(StagingError {
            id: "BuildpackCompileFailed".into(),
            message: "staging failed".into()
        })
    );
    let inner =
        serde_json::to_string(&fixture("staging_completion_docker.json")["result"]).unwrap();
    let ok: StagingCompletion = serde_json::from_value(serde_json::json!({
        "task_guid": "x", "failed": false, "failure_reason": "", "result": inner
    }))
    .unwrap();
    assert!(matches!(ok, StagingCompletion::Succeeded(r) if r.lifecycle_type == "docker"));
    let err = serde_json::from_value::<StagingCompletion>(serde_json::json!({"nothing": 1}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`result` or `error`"), "{err}");
}

#[test]
fn failure_reasons_are_sanitized_like_cc() {
    assert_eq!(
        StagingError::sanitized("Exited with status 222").id,
        "NoAppDetectedError"
    );
    assert_eq!(
        StagingError::sanitized("insufficient resources: memory"),
        StagingError {
            id: "InsufficientResources".into(),
            message: "insufficient resources: memory".into()
        }
    );
    assert_eq!(
        StagingError::sanitized("secret internal detail"),
        StagingError::staging("staging failed")
    );
}

#[test]
fn callbacks_and_jobs() {
    let crash: AppCrashed = round_trip("app_crashed.json");
    assert_eq!(crash.exit_status, Some(137));
    let task: TaskCompleted = round_trip("task_completed.json");
    assert!(!task.failed);
    let job: Job = round_trip("droplet_upload_job.json");
    assert_eq!(job.entity.status, JobStatus::Queued);
    assert!(!job.entity.status.is_terminal());
    let error: CcErrorBody = round_trip("cc_error_bad_query_parameter.json");
    assert_eq!(error.error_code, "CF-BadQueryParameter");
}
