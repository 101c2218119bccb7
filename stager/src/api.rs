//! St8ge's HTTP API:
//!
//! | route | does |
//! |---|---|
//! | `POST /stage/{staging_guid}` | validate (400 naming the field); buildpack apps: desire the staging task through OPI; Docker apps: read the image config and report in the background. 202 |
//! | `DELETE /stage/{staging_guid}` | cancel the staging task (404 if none); OPI's failed-task callback then reports the cancellation. 204 |
//! | `POST /stage/{staging_guid}/completed?cc_callback=URL` | a step's `{result}`/`{error}`, or OPI's task callback; forwarded to CC. 200; 422 when CC refuses for good, 502 when it cannot be reached |
//! | `POST /stage/{staging_guid}/logs` | the steps' output lines (newline-separated text) appended to the staging's log. 204; 404 for an unknown staging |
//! | `GET /stage/{staging_guid}/logs[?follow=false]` | the staging's log from its start (chunked `text/plain`), following until the staging completed ([`crate::logs`]). 404 for an unknown staging |
//! | `GET /buildpacks` | the shipped buildpacks in detection order, with their URLs |
//! | `GET /buildpacks/{name}.zip` | a shipped buildpack as a zip |
//!
//! Errors are OPI's body `{"error":{"code","message"}}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cc::model::StagingCompletion;
use opi::http::OpiClient;
use opi::model::wire::StagingRequest;
use prometheus::{IntCounterVec, Opts, Registry};
use reqwest::Url;
use serde::Deserialize;

use crate::buildpacks::Shipped;
use crate::deadline::{Deadlines, Verdict};
use crate::lifecycle::{failure, ids};
use crate::logs::Logs;
use crate::recipe::{self, Recipe};
use crate::report::{self, Incoming};
use crate::{Error, Result, docker};

/// Largest staging request or completion body accepted (1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// St8ge's counters.
#[derive(Clone)]
pub struct Metrics {
    stagings: IntCounterVec,
    completions: IntCounterVec,
}

impl Metrics {
    /// Registers `cube_stager_stagings_total{lifecycle}` and
    /// `cube_stager_completions_total{outcome}`.
    pub fn register(registry: &Registry) -> Result<Self> {
        let stagings = IntCounterVec::new(
            Opts::new("cube_stager_stagings_total", "Staging requests accepted"),
            &["lifecycle"],
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        let completions = IntCounterVec::new(
            Opts::new(
                "cube_stager_completions_total",
                "Staging outcomes: succeeded, failed (sent to CC), ignored (task callbacks already reported)",
            ),
            &["outcome"],
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        for collector in [&stagings, &completions] {
            registry
                .register(Box::new(collector.clone()))
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        Ok(Self {
            stagings,
            completions,
        })
    }
}

/// What the handlers share.
pub struct Api {
    /// OPI, where staging tasks run.
    pub opi: OpiClient,
    /// How staging tasks are made.
    pub recipe: Recipe,
    /// The shipped buildpacks (`None`: only buildpacks with URLs work).
    pub shipped: Option<Shipped>,
    /// When set, CC callbacks must point at this origin.
    pub cc_url: Option<Url>,
    /// Counters.
    pub metrics: Metrics,
    /// The stagings' deadlines ([`crate::deadline`]).
    pub deadlines: Deadlines,
    /// The stagings' output ([`crate::logs`]).
    pub logs: Logs,
    /// Cube's TLS settings for relaying completions to CC (its token is
    /// never sent to CC).
    pub cc_access: cube_runtime::access::ClientAccess,
    /// The other St8ge replicas ([`crate::peers`]).
    pub peers: crate::peers::Peers,
}

/// A path parameter; a path axum cannot decode (invalid UTF-8 escapes) is a
/// 400 in the JSON error format, like every other refusal.
struct Param(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Param {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Param(value))
            .map_err(|e| Error::Invalid(format!("path: {}", e.body_text())))
    }
}

/// A staging guid becomes an OPI task guid and a URL path segment: `..`,
/// `/` and the like are refused here, naming the parameter.
fn staging_guid(guid: &str) -> Result<()> {
    opi::model::validate::guid("staging_guid", guid).map_err(|e| Error::Invalid(e.to_string()))
}

/// The router.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/stage/{staging_guid}", post(stage).delete(cancel))
        .route("/stage/{staging_guid}/completed", post(completed))
        .route(
            "/stage/{staging_guid}/logs",
            post(logs::append).get(logs::read),
        )
        .route("/buildpacks", get(list_buildpacks))
        .route("/buildpacks/{file}", get(buildpack_zip))
        .fallback(|uri: axum::http::Uri| async move {
            Error::NotFound(format!("no route {}", uri.path()))
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

impl Api {
    fn shipped_names(&self) -> Result<Vec<String>> {
        match &self.shipped {
            Some(shipped) => shipped.names(),
            None => Ok(Vec::new()),
        }
    }

    /// Refuses CC callbacks that do not go to the configured CC.
    fn check_callback(&self, field: &str, callback: &str) -> Result<Url> {
        let url = Url::parse(callback)
            .map_err(|e| Error::Invalid(format!("{field}: {callback:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Invalid(format!("{field}: must be an http(s) URL")));
        }
        if let Some(cc) = &self.cc_url
            && (url.scheme(), url.host_str(), url.port_or_known_default())
                != (cc.scheme(), cc.host_str(), cc.port_or_known_default())
        {
            return Err(Error::Invalid(format!(
                "{field}: {} is not on Cloud Controller ({})",
                report::redact(&url),
                report::redact(cc)
            )));
        }
        Ok(url)
    }
}

async fn stage(State(api): State<Arc<Api>>, Param(guid): Param, body: Bytes) -> Result<Response> {
    staging_guid(&guid)?;
    let mut request: StagingRequest = report::from_json(&body, "body")?;
    if let Some(bp) = request.lifecycle.buildpack_lifecycle.as_mut() {
        let shipped = api.shipped_names()?;
        bp.buildpacks =
            recipe::resolve_buildpacks(&bp.buildpacks, &shipped, &api.recipe.public_url)
                .map_err(|e| Error::Invalid(e.to_string()))?;
    }
    opi::model::validate::staging(&guid, &request).map_err(|e| Error::Invalid(e.to_string()))?;
    api.check_callback("completion_callback", &request.completion_callback)?;
    let opened = api.logs.open(&guid);
    if let Some(docker) = request.lifecycle.docker_lifecycle.clone() {
        api.metrics.stagings.with_label_values(&["docker"]).inc();
        let callback = request.completion_callback.clone();
        let metrics = api.metrics.clone();
        let cc_access = api.cc_access.clone();
        let logs = api.logs.clone();
        logs.append(
            &guid,
            &format!("-----> Reading the config of image {}", docker.image),
        );
        tokio::spawn(async move {
            let completion = match docker::stage(
                &docker.image,
                &docker.registry_username,
                &docker.registry_password,
            )
            .await
            {
                Ok(result) => StagingCompletion::Succeeded(result),
                Err(error) => StagingCompletion::Failed(error),
            };
            if let StagingCompletion::Failed(error) = &completion {
                logs.append(
                    &guid,
                    &format!("-----> Staging failed ({}): {}", error.id, error.message),
                );
            }
            if let Err(error) = forward(&metrics, &cc_access, &callback, &completion).await {
                tracing::warn!(staging_guid = %guid, %error, "cannot report docker staging to CC");
            }
            logs.finish(&guid);
        });
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let buildpacks = request
        .lifecycle
        .buildpack_lifecycle
        .as_ref()
        .map(|bp| bp.buildpacks.clone())
        .unwrap_or_default();
    let desired = async {
        let task = recipe::staging_task(&api.recipe, &guid, &request, &buildpacks)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        api.opi.desire_task_spec(&task).await.map_err(Error::from)
    };
    if let Err(error) = desired.await {
        if opened {
            api.logs.remove(&guid);
        }
        return Err(error);
    }
    api.metrics.stagings.with_label_values(&["buildpack"]).inc();
    tracing::info!(staging_guid = %guid, app = %request.app_name, buildpacks = buildpacks.len(), "staging task desired");
    let expiry = time_expired(
        api.clone(),
        guid.clone(),
        request.completion_callback.clone(),
    );
    let confirm = still_unfinished(api.clone(), guid.clone());
    api.deadlines
        .arm(&guid, api.recipe.staging_timeout, confirm, expiry);
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn cancel(State(api): State<Arc<Api>>, Param(guid): Param) -> Result<StatusCode> {
    staging_guid(&guid)?;
    api.opi.cancel_task(&guid).await.map_err(|e| match e {
        opi::Error::NotFound(_) => Error::NotFound(format!("staging task {guid}")),
        other => Error::from(other),
    })?;
    tracing::info!(staging_guid = %guid, "staging cancelled");
    Ok(StatusCode::NO_CONTENT)
}

/// The query of `…/completed`.
#[derive(Debug, Deserialize)]
struct CompletedQuery {
    #[serde(default)]
    cc_callback: Option<String>,
}

async fn completed(
    State(api): State<Arc<Api>>,
    Param(guid): Param,
    Query(query): Query<CompletedQuery>,
    body: Bytes,
) -> Result<StatusCode> {
    staging_guid(&guid)?;
    let callback = query
        .cc_callback
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::Invalid("cc_callback: the query parameter is missing".into()))?;
    api.check_callback("cc_callback", &callback)?;
    let incoming = Incoming::parse(&body)?;
    let last = matches!(incoming, Incoming::Task(_));
    if api.deadlines.settle(&guid, last) == Verdict::Expired {
        api.metrics
            .completions
            .with_label_values(&["ignored"])
            .inc();
        tracing::info!(staging_guid = %guid, "staging timed out and was reported so; a late outcome is dropped");
        return Ok(StatusCode::OK);
    }
    let Some(completion) = incoming.to_cc() else {
        api.metrics
            .completions
            .with_label_values(&["ignored"])
            .inc();
        tracing::debug!(staging_guid = %guid, "staging task finished; its outcome was reported by the task");
        api.logs.finish(&guid);
        return Ok(StatusCode::OK);
    };
    if let StagingCompletion::Failed(error) = &completion {
        if matches!(incoming, Incoming::Task(_)) {
            // The task died before it could say so itself.
            api.logs.append(
                &guid,
                &format!("-----> Staging failed ({}): {}", error.id, error.message),
            );
        }
        tracing::info!(staging_guid = %guid, id = %error.id, message = %error.message, "staging failed");
    } else {
        tracing::info!(staging_guid = %guid, "staging succeeded");
    }
    let forwarded = forward(&api.metrics, &api.cc_access, &callback, &completion).await;
    // CC has the outcome (or refused it for good): the log is complete. When
    // CC cannot be reached the reporter retries, and the log stays open.
    if !matches!(forwarded, Err(Error::Upstream(_))) {
        api.logs.finish(&guid);
    }
    forwarded?;
    Ok(StatusCode::OK)
}

/// Sends `completion` to CC's callback (Basic auth from its userinfo).
async fn forward(
    metrics: &Metrics,
    access: &cube_runtime::access::ClientAccess,
    callback: &str,
    completion: &StagingCompletion,
) -> Result<()> {
    let mut config = cc::ClientConfig::new(callback);
    config.username = None;
    config.password = None;
    config.access = access.clone();
    let client = cc::Client::new(config).map_err(|e| Error::Config(e.to_string()))?;
    client
        .staging_completed(callback, completion)
        .await
        .map_err(|e| {
            if e.is_client_error() {
                Error::Rejected(format!("CC refused the staging completion: {e}"))
            } else {
                Error::Upstream(format!("cannot report to CC: {e}"))
            }
        })?;
    let outcome = match completion {
        StagingCompletion::Succeeded(_) => "succeeded",
        StagingCompletion::Failed(_) => "failed",
    };
    metrics.completions.with_label_values(&[outcome]).inc();
    Ok(())
}

/// One entry of `GET /buildpacks`.
#[derive(Debug, serde::Serialize)]
struct BuildpackEntry {
    name: String,
    url: String,
}

async fn list_buildpacks(State(api): State<Arc<Api>>) -> Result<axum::Json<Vec<BuildpackEntry>>> {
    let names = api.shipped_names()?;
    let resolved = recipe::resolve_buildpacks(&[], &names, &api.recipe.public_url)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(axum::Json(
        resolved
            .into_iter()
            .map(|b| BuildpackEntry {
                name: b.name,
                url: b.url,
            })
            .collect(),
    ))
}

async fn buildpack_zip(State(api): State<Arc<Api>>, Param(file): Param) -> Result<Response> {
    let name = file
        .strip_suffix(".zip")
        .ok_or_else(|| Error::NotFound(format!("buildpack file {file:?} (ask for <name>.zip)")))?;
    let shipped = api
        .shipped
        .as_ref()
        .ok_or_else(|| Error::NotFound(format!("buildpack {name:?} (no buildpacks directory)")))?;
    let shipped = shipped.clone();
    let name = name.to_owned();
    let bytes = tokio::task::spawn_blocking(move || shipped.zip(&name))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, "application/zip")], bytes).into_response())
}

mod logs;

/// Whether the scheduler still runs `guid`'s staging task (pending or
/// running) now that its deadline passed. A task that completed, or is gone,
/// has had its outcome reported by its last step or by OPI's task callback,
/// perhaps through another St8ge replica: a timeout now would contradict it.
/// When OPI cannot say, the timeout is reported (and the task cancelled), as
/// without this check.
async fn still_unfinished(api: Arc<Api>, guid: String) -> bool {
    match api.opi.get_task(&guid).await {
        Ok(task) if task.state.eq_ignore_ascii_case("COMPLETED") => {
            tracing::info!(staging_guid = %guid, failed = task.failed, "the staging task completed by its deadline; its outcome is reported by the task");
            false
        }
        Ok(_) => true,
        Err(opi::Error::NotFound(_)) => {
            tracing::info!(staging_guid = %guid, "the staging task is gone by its deadline; its outcome was reported by the task");
            false
        }
        Err(error) => {
            tracing::warn!(staging_guid = %guid, %error, "cannot ask OPI about the timed-out staging task; reporting the timeout");
            true
        }
    }
}

/// A staging's deadline passed before any outcome: tells CC
/// `StagingTimeExpired` (once: [`Deadlines`] drops what follows) and cancels
/// the task.
async fn time_expired(api: Arc<Api>, guid: String, callback: String) {
    let timeout = crate::step::run::humanize(api.recipe.staging_timeout);
    let error = failure(
        ids::TIME_EXPIRED,
        format!("staging took longer than {timeout}"),
    );
    tracing::info!(staging_guid = %guid, %timeout, "staging timed out");
    api.logs.append(
        &guid,
        &format!("-----> Staging failed ({}): {}", error.id, error.message),
    );
    let failed = StagingCompletion::Failed(error);
    if let Err(error) = forward(&api.metrics, &api.cc_access, &callback, &failed).await {
        tracing::warn!(staging_guid = %guid, %error, "cannot report the staging timeout to CC");
    }
    api.logs.finish(&guid);
    if let Err(error) = api.opi.cancel_task(&guid).await {
        tracing::warn!(staging_guid = %guid, %error, "cannot cancel the timed-out staging task");
    }
}

#[cfg(test)]
mod tests;
