//! The axum router serving the OPI API over any [`Scheduler`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;

use super::metrics::{ApiMetrics, track};
use crate::model::validate::{self, Invalid};
use crate::model::wire::{
    DesireLrpRequest, DesiredLrpResponse, ErrorResponse, InstanceBody, InstancesResponse,
    SchedulingInfoBody, SchedulingInfosResponse, TaskRequest, TaskResponse, UpdateLrpRequest,
};
use crate::model::{LrpId, validate::desired_lrp_body};
use crate::{Error, Scheduler};

/// Bodies larger than this are refused with 413 unless configured otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Settings of the API server.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Registry host prefixed to droplet images in `GET /apps/{guid}/{version}`.
    pub registry: String,
    /// St8ge's base URL. Cloud Controller sends staging requests to the same
    /// URL as everything else (`opi.url`), as Eirini served both; with this set,
    /// `/stage/…` is forwarded to St8ge.
    pub stager_url: Option<reqwest::Url>,
    /// How OPI reaches St8ge (`/stage` forwarding) and Cloud Controller:
    /// the CA it trusts, its client certificate and its token (St8ge only).
    pub client: cube_runtime::access::ClientAccess,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            registry: String::new(),
            stager_url: None,
            client: cube_runtime::access::ClientAccess::default(),
        }
    }
}

#[derive(Clone)]
struct Api {
    scheduler: Arc<dyn Scheduler>,
    config: Arc<ApiConfig>,
}

/// The OPI router over `scheduler`, recording request metrics in `metrics`:
/// the OPI API, and beside it the staging path of [`super::stage`].
pub fn router(scheduler: Arc<dyn Scheduler>, config: ApiConfig, metrics: ApiMetrics) -> Router {
    let max_body_bytes = config.max_body_bytes;
    // Building a client only fails without a TLS backend, which
    // `http_client_builder` always installs; fall back to the default anyway.
    let http = config
        .client
        .builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap_or_default();
    let stage = super::stage::routes(config.stager_url.clone(), http, max_body_bytes);
    let api = Api {
        scheduler,
        config: Arc::new(config),
    };
    Router::new()
        .route("/apps", get(list_lrps))
        .route("/apps/{process_guid}", put(desire).post(update))
        .route("/apps/{guid}/{version}", get(get_lrp))
        .route("/apps/{guid}/{version}/instances", get(instances))
        .route("/apps/{guid}/{version}/stop", put(stop))
        .route("/apps/{guid}/{version}/stop/{index}", put(stop_instance))
        .route("/tasks", get(list_tasks))
        .route(
            "/tasks/{guid}",
            post(desire_task).get(get_task).delete(cancel_task),
        )
        .with_state(api)
        .merge(stage)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(metrics, track))
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "OPI request failed");
        }
        let body = ErrorResponse::new(self.code(), self.to_string());
        (status, Json(body)).into_response()
    }
}

async fn not_found() -> Error {
    Error::NotFound("route".into())
}

async fn method_not_allowed() -> Response {
    let body = ErrorResponse::new("MethodNotAllowed", "method not allowed on this route");
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// A JSON body parsed without requiring a JSON content type (Cloud
/// Controller's HTTP client does not always send one), with errors that name
/// the offending field and 413 for oversized bodies.
struct Body<T>(T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection: BytesRejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        Error::PayloadTooLarge { limit: 0 }
                    } else {
                        Error::BadBody(rejection.body_text())
                    }
                })?;
        if bytes.is_empty() {
            return Err(Error::BadBody(
                "body is empty; expected a JSON object".into(),
            ));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                Error::BadBody(e.into_inner().to_string())
            } else {
                Error::BadBody(format!("{path}: {}", e.into_inner()))
            }
        })?;
        deserializer
            .end()
            .map_err(|e| Error::BadBody(format!("trailing data after the JSON object: {e}")))?;
        Ok(Body(value))
    }
}

/// Path parameters with a JSON error naming the problem.
pub(super) struct Params<T>(pub(super) T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Params(value))
            .map_err(|rejection: PathRejection| Error::BadBody(rejection.body_text()))
    }
}

fn payload_limit(error: Error, api: &Api) -> Error {
    match error {
        Error::PayloadTooLarge { .. } => Error::PayloadTooLarge {
            limit: api.config.max_body_bytes,
        },
        other => other,
    }
}

async fn desire(
    State(api): State<Api>,
    Params(process_guid): Params<String>,
    body: Result<Body<DesireLrpRequest>, Error>,
) -> Result<StatusCode, Error> {
    let Body(request) = body.map_err(|e| payload_limit(e, &api))?;
    let lrp = validate::desire(&process_guid, request)?;
    tracing::debug!(lrp = %lrp.id, instances = lrp.instances, "desire");
    api.scheduler.desire(lrp).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn update(
    State(api): State<Api>,
    Params(process_guid): Params<String>,
    body: Result<Body<UpdateLrpRequest>, Error>,
) -> Result<Json<serde_json::Value>, Error> {
    let Body(request) = body.map_err(|e| payload_limit(e, &api))?;
    let (id, update) = validate::update(&process_guid, request)?;
    tracing::debug!(lrp = %id, ?update.instances, "update");
    api.scheduler.update(&id, update).await?;
    Ok(Json(serde_json::json!({})))
}

async fn list_lrps(State(api): State<Api>) -> Result<Json<SchedulingInfosResponse>, Error> {
    let infos = api.scheduler.list().await?;
    Ok(Json(SchedulingInfosResponse {
        desired_lrp_scheduling_infos: infos.iter().map(SchedulingInfoBody::from).collect(),
    }))
}

fn lrp_id((guid, version): (String, String)) -> Result<LrpId, Error> {
    Ok(validate::lrp_id(&guid, &version)?)
}

async fn get_lrp(
    State(api): State<Api>,
    Params(params): Params<(String, String)>,
) -> Result<Json<DesiredLrpResponse>, Error> {
    let id = lrp_id(params)?;
    let lrp = api.scheduler.get(&id).await?;
    Ok(Json(DesiredLrpResponse {
        desired_lrp: desired_lrp_body(&lrp, &api.config.registry),
    }))
}

/// An LRP that is unknown or stopped answers 404 with Eirini's body,
/// `{"process_guid","instances":[],"error":"… not found"}`: an Eirini-era CC
/// (`instances_client.rb`) reads a stopped process's instances as none only
/// when `error` is a string that includes `not found`.
async fn instances(
    State(api): State<Api>,
    Params(params): Params<(String, String)>,
) -> Result<Response, Error> {
    let id = lrp_id(params)?;
    let (status, instances, error) = match api.scheduler.instances(&id).await {
        Ok(instances) => (StatusCode::OK, instances, None),
        Err(e @ Error::NotFound(_)) => (StatusCode::NOT_FOUND, Vec::new(), Some(e.to_string())),
        Err(other) => return Err(other),
    };
    let body = InstancesResponse {
        process_guid: id.process_guid(),
        instances: instances.iter().map(InstanceBody::from).collect(),
        error,
    };
    Ok((status, Json(body)).into_response())
}

async fn stop(
    State(api): State<Api>,
    Params(params): Params<(String, String)>,
) -> Result<Json<serde_json::Value>, Error> {
    let id = lrp_id(params)?;
    tracing::debug!(lrp = %id, "stop");
    api.scheduler.stop(&id).await?;
    Ok(Json(serde_json::json!({})))
}

async fn stop_instance(
    State(api): State<Api>,
    Params((guid, version, index)): Params<(String, String, String)>,
) -> Result<Json<serde_json::Value>, Error> {
    let id = lrp_id((guid, version))?;
    let index: u32 = index.parse().map_err(|_| {
        Invalid::new(
            "index",
            format!("{index:?} is not an instance index (a non-negative integer)"),
        )
    })?;
    tracing::debug!(lrp = %id, index, "stop instance");
    api.scheduler.stop_instance(&id, index).await?;
    Ok(Json(serde_json::json!({})))
}

async fn desire_task(
    State(api): State<Api>,
    Params(guid): Params<String>,
    body: Result<Body<TaskRequest>, Error>,
) -> Result<StatusCode, Error> {
    let Body(request) = body.map_err(|e| payload_limit(e, &api))?;
    let task = validate::task(&guid, request)?;
    tracing::debug!(task = %task.guid, "desire task");
    api.scheduler.desire_task(task).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn list_tasks(State(api): State<Api>) -> Result<Json<Vec<TaskResponse>>, Error> {
    let tasks = api.scheduler.list_tasks().await?;
    Ok(Json(tasks.iter().map(TaskResponse::from).collect()))
}

async fn get_task(
    State(api): State<Api>,
    Params(guid): Params<String>,
) -> Result<Json<TaskResponse>, Error> {
    validate::guid("task_guid", &guid)?;
    let task = api.scheduler.get_task(&guid).await?;
    Ok(Json(TaskResponse::from(&task)))
}

async fn cancel_task(
    State(api): State<Api>,
    Params(guid): Params<String>,
) -> Result<StatusCode, Error> {
    validate::guid("task_guid", &guid)?;
    api.scheduler.cancel_task(&guid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests;
