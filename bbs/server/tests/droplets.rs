//! A buildpack LRP's droplet image is imported into the Registry when it
//! is desired: a stand-in Registry records what it is asked.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{head, post};
use bbs::droplets::Droplets;
use bbs::translate::fixtures::{self, APP_GUID, DROPLET_SHA256, DROPLET_URL, PROCESS_VERSION};
use bbs_models::error::Type;
use bbs_models::{DesireLrpRequest, DesiredLrpLifecycleResponse};
use common::{error_of, eventually, front_with};
use opi::Scheduler;
use opi::model::LrpId;
use sink::registry::RegistryClient;

const DESIRE: &str = "/v1/desired_lrp/desire.r2";

/// What the stand-in Registry holds and was asked.
#[derive(Default)]
struct Registry {
    images: Mutex<Vec<String>>,
    imports: Mutex<Vec<(String, String, serde_json::Value)>>,
    import_status: Mutex<Option<StatusCode>>,
    import_delay: Mutex<Duration>,
}

async fn manifest(
    State(registry): State<Arc<Registry>>,
    Path((guid, tag)): Path<(String, String)>,
) -> StatusCode {
    let image = format!("{guid}:{tag}");
    if registry.images.lock().unwrap().contains(&image) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn import(
    State(registry): State<Arc<Registry>>,
    Path(guid): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> StatusCode {
    let delay = *registry.import_delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let hash = query.get("hash").cloned().unwrap_or_default();
    registry
        .imports
        .lock()
        .unwrap()
        .push((guid.clone(), hash.clone(), body));
    let status = registry
        .import_status
        .lock()
        .unwrap()
        .unwrap_or(StatusCode::CREATED);
    if status.is_success() {
        registry
            .images
            .lock()
            .unwrap()
            .push(format!("{guid}:{hash}"));
    }
    status
}

async fn registry() -> (reqwest::Url, Arc<Registry>) {
    let state = Arc::new(Registry::default());
    let app = axum::Router::new()
        .route("/v2/cloudfoundry/{guid}/manifests/{tag}", head(manifest))
        .route("/v2/cloudfoundry/{guid}/droplets", post(import))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url.parse().unwrap(), state)
}

fn droplets(url: reqwest::Url, wait: Duration) -> Droplets {
    Droplets::new(Some(RegistryClient::new(url, reqwest::Client::new())), wait)
}

fn desire() -> DesireLrpRequest {
    DesireLrpRequest {
        desired_lrp: Some(fixtures::buildpack_lrp()),
    }
}

fn lrp_id() -> LrpId {
    LrpId::new(APP_GUID, PROCESS_VERSION)
}

#[tokio::test]
async fn a_missing_droplet_image_is_imported_once() {
    let (url, registry) = registry().await;
    let bbs = front_with(|bbs| bbs.with_droplets(droplets(url, Duration::from_secs(5))));
    let desired: DesiredLrpLifecycleResponse = bbs.call(DESIRE, &desire()).await;
    assert_eq!(desired.error, None);
    let imports = registry.imports.lock().unwrap().clone();
    let [(guid, hash, body)] = imports.as_slice() else {
        panic!("one import: {imports:?}");
    };
    assert_eq!((guid.as_str(), hash.as_str()), (APP_GUID, DROPLET_SHA256));
    assert_eq!(body, &serde_json::json!({ "uri": DROPLET_URL }));
    assert!(bbs.scheduler.get(&lrp_id()).await.is_ok());

    // The image is there now: a new version of the process imports nothing.
    let mut next = fixtures::buildpack_lrp();
    next.process_guid = format!("{APP_GUID}-00000000-0000-4000-8000-000000000009");
    let again: DesiredLrpLifecycleResponse = bbs
        .call(
            DESIRE,
            &DesireLrpRequest {
                desired_lrp: Some(next),
            },
        )
        .await;
    assert_eq!(again.error, None);
    assert_eq!(registry.imports.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_import_fails_the_desire() {
    let (url, registry) = registry().await;
    *registry.import_status.lock().unwrap() = Some(StatusCode::BAD_GATEWAY);
    let bbs = front_with(|bbs| bbs.with_droplets(droplets(url, Duration::from_secs(5))));
    let desired: DesiredLrpLifecycleResponse = bbs.call(DESIRE, &desire()).await;
    let (kind, message) = error_of(desired.error.as_ref()).unwrap();
    assert_eq!(kind, Type::UnknownError);
    assert!(
        message.starts_with(&format!(
            "cannot import droplet {APP_GUID}:{DROPLET_SHA256}"
        )),
        "{message}"
    );
    assert!(
        bbs.scheduler.get(&lrp_id()).await.is_err(),
        "not desired without its image"
    );
}

#[tokio::test]
async fn a_slow_import_goes_on_while_the_lrp_is_desired() {
    let (url, registry) = registry().await;
    *registry.import_delay.lock().unwrap() = Duration::from_millis(600);
    let bbs = front_with(|bbs| bbs.with_droplets(droplets(url, Duration::from_millis(50))));
    let desired: DesiredLrpLifecycleResponse = bbs.call(DESIRE, &desire()).await;
    assert_eq!(desired.error, None);
    assert!(bbs.scheduler.get(&lrp_id()).await.is_ok());
    assert!(
        registry.imports.lock().unwrap().is_empty(),
        "still importing"
    );
    eventually(Duration::from_secs(5), || async {
        (registry.imports.lock().unwrap().len() == 1).then_some(())
    })
    .await;
}
