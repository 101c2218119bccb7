//! The BBS API over a scheduler: [`router`] serves every route Cloud
//! Controller calls, each `POST <path>` with a protobuf request body
//! (`Content-Type: application/x-protobuf`), answered HTTP 200 with the
//! route's response message, its `error` field set when the call failed.
//!
//! | route | request → response | what it does |
//! |---|---|---|
//! | `/v1/ping` | — → `PingResponse` | `available: true` |
//! | `/v1/domains/upsert` | `UpsertDomainRequest` → `UpsertDomainResponse` | [`crate::domains`] |
//! | `/v1/domains/list` | — → `DomainsResponse` | the fresh domains |
//! | `/v1/desired_lrp/desire.r2` | `DesireLRPRequest` → `DesiredLRPLifecycleResponse` | translate, droplet image, `Scheduler::desire` |
//! | `/v1/desired_lrps/get_by_process_guid.r2` (`.r3`) | `DesiredLRPByProcessGuidRequest` → `DesiredLRPResponse` | `Scheduler::get`, format V2 (V3) |
//! | `/v1/desired_lrp_scheduling_infos/list` | `DesiredLRPsRequest` → `DesiredLRPSchedulingInfosResponse` | `Scheduler::list` + `get` |
//! | `/v1/desired_lrp/update` | `UpdateDesiredLRPRequest` → `DesiredLRPLifecycleResponse` | `Scheduler::update` |
//! | `/v1/desired_lrp/remove` | `RemoveDesiredLRPRequest` → `DesiredLRPLifecycleResponse` | `Scheduler::stop` |
//! | `/v1/actual_lrps/list` | `ActualLRPsRequest` → `ActualLRPsResponse` | `Scheduler::instances` |
//! | `/v1/actual_lrps/list_by_process_guids` | `ActualLRPsByProcessGuidsRequest` → `ActualLRPsByProcessGuidsResponse` | the same, for some guids |
//! | `/v1/actual_lrps/retire` | `RetireActualLRPRequest` → `ActualLRPLifecycleResponse` | `Scheduler::stop_instance` |
//! | `/v1/tasks/desire.r2` | `DesireTaskRequest` → `TaskLifecycleResponse` | [`crate::tasks`] (stored, not run) |
//! | `/v1/tasks/list.r2` (`.r3`) | `TasksRequest` → `TasksResponse` | |
//! | `/v1/tasks/get_by_task_guid.r2` (`.r3`) | `TaskByGuidRequest` → `TaskResponse` | |
//! | `/v1/tasks/cancel` | `TaskGuidRequest` → `TaskLifecycleResponse` | completes it, sends its callback |
//!
//! A body that is not the route's message answers InvalidRequest "the
//! request received is invalid", as the BBS; a body over the size limit,
//! InvalidRequest naming the limit; a scheduler that cannot be reached,
//! HTTP 503 (see [`crate::Error`]); any other path or method, 404.

mod actual;
mod domains;
mod lrps;
mod metrics;
mod tasks;

pub use metrics::ApiMetrics;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use bbs_models::{
    ActualLrPsByProcessGuidsResponse, ActualLrPsResponse, ActualLrpLifecycleResponse,
    DesiredLrpLifecycleResponse, DesiredLrpResponse, DesiredLrpSchedulingInfosResponse,
    DomainsResponse, TaskLifecycleResponse, TaskResponse, TasksResponse, UpsertDomainResponse,
};
use cube_runtime::access::ClientAccess;
use opi::Scheduler;
use opi::routing::RouteSource;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::domains::Domains;
use crate::droplets::Droplets;
use crate::error::Error;
use crate::tasks::Tasks;
use crate::tasks::callback::Callbacks;
use crate::translate::Settings;

/// The media type of every request and answer.
pub const PROTOBUF: &str = "application/x-protobuf";
/// The header carrying Cloud Controller's request id.
pub const REQUEST_ID: &str = "x-vcap-request-id";
/// The largest request body read by default (16 MiB; a desired LRP may
/// carry 128 KiB of routes and 1 MiB of files).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What the routes share: the scheduler and the BBS's own tables.
pub struct Bbs {
    scheduler: Arc<dyn Scheduler>,
    routes: Option<Arc<dyn RouteSource>>,
    settings: Settings,
    droplets: Droplets,
    domains: Domains,
    tasks: Arc<Tasks>,
    callbacks: Callbacks,
    max_body_bytes: usize,
}

impl Bbs {
    /// The BBS over `scheduler`, translating with `settings`; task callbacks
    /// are sent with `client`'s TLS identity until `shutdown`. No droplet
    /// images are imported until [`Bbs::with_droplets`].
    pub fn new(
        scheduler: Arc<dyn Scheduler>,
        settings: Settings,
        client: &ClientAccess,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        let tasks = Arc::new(Tasks::new());
        let callbacks = Callbacks::new(client, tasks.clone(), shutdown)?;
        Ok(Self {
            routes: scheduler.clone().routes(),
            scheduler,
            settings,
            droplets: Droplets::new(None, crate::droplets::DEFAULT_WAIT),
            domains: Domains::new(),
            tasks,
            callbacks,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        })
    }

    /// The same, importing droplet images with `droplets`.
    pub fn with_droplets(mut self, droplets: Droplets) -> Self {
        self.droplets = droplets;
        self
    }

    /// The same, reading request bodies up to `max_body_bytes`.
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// The task completion callbacks (to run task convergence).
    pub fn callbacks(&self) -> Callbacks {
        self.callbacks.clone()
    }

    /// The domains' freshness.
    pub fn domains(&self) -> &Domains {
        &self.domains
    }
}

/// Every BBS route over `bbs`, recording `metrics`; other paths and methods
/// answer 404.
pub fn router(bbs: Arc<Bbs>, metrics: ApiMetrics) -> Router {
    Router::new()
        .route("/v1/ping", post(domains::ping))
        .route("/v1/domains/upsert", route(domains::upsert))
        .route("/v1/domains/list", post(domains::list))
        .route("/v1/desired_lrp/desire.r2", route(lrps::desire))
        .route(
            "/v1/desired_lrps/get_by_process_guid.r2",
            route(lrps::get_r2),
        )
        .route(
            "/v1/desired_lrps/get_by_process_guid.r3",
            route(lrps::get_r3),
        )
        .route(
            "/v1/desired_lrp_scheduling_infos/list",
            route(lrps::scheduling_infos),
        )
        .route("/v1/desired_lrp/update", route(lrps::update))
        .route("/v1/desired_lrp/remove", route(lrps::remove))
        .route("/v1/actual_lrps/list", route(actual::list))
        .route(
            "/v1/actual_lrps/list_by_process_guids",
            route(actual::by_process_guids),
        )
        .route("/v1/actual_lrps/retire", route(actual::retire))
        .route("/v1/tasks/desire.r2", route(tasks::desire))
        .route("/v1/tasks/list.r2", route(tasks::list_r2))
        .route("/v1/tasks/list.r3", route(tasks::list_r3))
        .route("/v1/tasks/get_by_task_guid.r2", route(tasks::get_r2))
        .route("/v1/tasks/get_by_task_guid.r3", route(tasks::get_r3))
        .route("/v1/tasks/cancel", route(tasks::cancel))
        .method_not_allowed_fallback(not_found)
        .fallback(not_found)
        .with_state(bbs)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// A route's response message: every one has the BBS error as field 1.
pub trait Answer: Message + Default + 'static {
    /// The response carrying only `error`.
    fn failed(error: bbs_models::Error) -> Self;
}

macro_rules! answers {
    ($($message:ty),* $(,)?) => {$(
        impl Answer for $message {
            fn failed(error: bbs_models::Error) -> Self {
                let mut answer = Self::default();
                answer.error = Some(error);
                answer
            }
        }
    )*};
}

answers!(
    UpsertDomainResponse,
    DomainsResponse,
    DesiredLrpLifecycleResponse,
    DesiredLrpResponse,
    DesiredLrpSchedulingInfosResponse,
    ActualLrpLifecycleResponse,
    ActualLrPsResponse,
    ActualLrPsByProcessGuidsResponse,
    TaskLifecycleResponse,
    TasksResponse,
    TaskResponse,
);

/// A POST route decoding `R`, calling `handle`, answering its response.
fn route<R, A, F, Fut>(handle: F) -> MethodRouter<Arc<Bbs>>
where
    R: Message + Default + 'static,
    A: Answer,
    F: Fn(Arc<Bbs>, R) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<A, Error>> + Send + 'static,
{
    post(
        move |State(bbs): State<Arc<Bbs>>, headers: HeaderMap, body: Body| {
            // CC's request id, in every log line of the request, as the BBS logs it.
            let request_id = headers
                .get(REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            async move {
                let answer = match decode::<R>(body, bbs.max_body_bytes).await {
                    Ok(request) => handle(bbs, request).await,
                    Err(error) => Err(error),
                };
                respond(answer)
            }
            .instrument(tracing::info_span!("bbs", request_id))
        },
    )
}

/// Reads at most `limit` bytes of `body` and decodes them as `R`.
async fn decode<R: Message + Default>(body: Body, limit: usize) -> Result<R, Error> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            Error::TooLarge { limit }
        } else {
            Error::Read(error.to_string())
        }
    })?;
    R::decode(bytes).map_err(Error::Undecodable)
}

/// The HTTP answer of a route: 200 with the message (its `error` set on a
/// failure), or 503 when the scheduler is unavailable. The BBS error type
/// rides along for the metrics.
fn respond<A: Answer>(answer: Result<A, Error>) -> Response {
    let (status, message, outcome) = match answer {
        Ok(message) => (StatusCode::OK, message, metrics::Outcome::SUCCESS),
        Err(error) => {
            log(&error);
            let status = match error {
                Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::OK,
            };
            let outcome = metrics::Outcome(error.metric_label());
            (status, A::failed(error.to_bbs()), outcome)
        }
    };
    protobuf(status, &message, outcome)
}

/// `message` encoded, with its media type.
fn protobuf(status: StatusCode, message: &impl Message, outcome: metrics::Outcome) -> Response {
    let mut response = (status, message.encode_to_vec()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
    response.extensions_mut().insert(outcome);
    response
}

fn log(error: &Error) {
    match error.kind() {
        bbs_models::error::Type::UnknownError => tracing::warn!(%error, "BBS request failed"),
        _ => tracing::debug!(%error, "BBS request refused"),
    }
}
