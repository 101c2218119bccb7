//! The callbacks CC receives from a scheduler bridge, recorded as events:
//! staging completion, app crashes and task completion; and `GET /sim/events`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};

use super::response::Path;
use serde::Serialize;

use super::Sim;
use super::response::{parse_json, parse_value};
use super::state::{BuildState, Event};
use crate::model::{AppCrashed, StagingCompletion, TaskCompleted};
use crate::{Error, Result};

/// `POST /internal/v3/staging/{guid}/build_completed[?start=true]`.
pub async fn build_completed(
    State(sim): State<Arc<Sim>>,
    Path(guid): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>> {
    let raw: serde_json::Value = parse_json(&body)?;
    let completion: StagingCompletion = parse_value(raw.clone(), "staging completion")?;
    let start = query.get("start").map(String::as_str) == Some("true");
    let path = format!("/internal/v3/staging/{guid}/build_completed");
    let now = super::now_micros();
    let was_staged = sim
        .store
        .snapshot()
        .builds
        .get(&guid)
        .is_some_and(|build| build.state == BuildState::Staged);
    let state = sim
        .store
        .update(|state| {
            let outcome = match completion {
                StagingCompletion::Succeeded(result) => Ok(result),
                StagingCompletion::Failed(error) => Err(error),
            };
            // Recorded first, so a late failure's own event follows it.
            state.record_event("staging_completed", &path, raw, now);
            state.complete_build(&guid, outcome, start, now)
        })
        .await?;
    sim.metrics
        .callbacks
        .with_label_values(&["staging_completed"])
        .inc();
    match (state, was_staged) {
        (BuildState::Failed, true) => {
            tracing::warn!(build = %guid, "staging reported failed after it had succeeded");
        }
        (BuildState::Failed, false) => tracing::info!(build = %guid, "staging failed"),
        _ => {}
    }
    Ok(Json(serde_json::json!({})))
}

/// `POST /internal/v4/apps/{process_guid}/crashed`.
pub async fn app_crashed(
    State(sim): State<Arc<Sim>>,
    Path(process_guid): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>> {
    let raw: serde_json::Value = parse_json(&body)?;
    let _crash: AppCrashed = parse_value(raw.clone(), "crash report")?;
    let path = format!("/internal/v4/apps/{process_guid}/crashed");
    let now = super::now_micros();
    sim.store
        .update(|state| {
            state.record_crash(&process_guid)?;
            state.record_event("app_crashed", &path, raw, now);
            Ok(())
        })
        .await?;
    sim.metrics
        .callbacks
        .with_label_values(&["app_crashed"])
        .inc();
    Ok(Json(serde_json::json!({})))
}

/// `POST /internal/v4/tasks/{task_guid}/completed`.
pub async fn task_completed(
    State(sim): State<Arc<Sim>>,
    Path(task_guid): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>> {
    let raw: serde_json::Value = parse_json(&body)?;
    let completed: TaskCompleted = parse_value(raw.clone(), "task completion")?;
    if completed.task_guid != task_guid {
        return Err(Error::api_invalid_request(format!(
            "task_guid `{}` in the body does not match `{task_guid}` in the path",
            completed.task_guid
        )));
    }
    let path = format!("/internal/v4/tasks/{task_guid}/completed");
    let now = super::now_micros();
    sim.store
        .update(|state| {
            if state
                .events
                .iter()
                .any(|e| e.kind == "task_completed" && e.path == path)
            {
                return Err(Error::api_invalid_request(format!(
                    "task {task_guid} has already completed"
                )));
            }
            state.record_event("task_completed", &path, raw, now);
            Ok(())
        })
        .await?;
    sim.metrics
        .callbacks
        .with_label_values(&["task_completed"])
        .inc();
    Ok(Json(serde_json::json!({})))
}

/// `GET /sim/events` answer.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Events {
    /// Events after `since`, oldest first.
    pub events: Vec<Event>,
}

/// `GET /sim/events[?since=SEQ][&kind=KIND]`.
pub async fn events(
    State(sim): State<Arc<Sim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Events>> {
    let since: u64 = match query.get("since") {
        None => 0,
        Some(text) => text.parse().map_err(|_| {
            Error::bad_query(format!(
                "The query parameter is invalid: since `{text}` must be a non-negative integer"
            ))
        })?,
    };
    let kind = query.get("kind");
    let state = sim.store.snapshot();
    let events = state
        .events
        .iter()
        .filter(|e| e.seq > since)
        .filter(|e| kind.is_none_or(|k| &e.kind == k))
        .cloned()
        .collect();
    Ok(Json(Events { events }))
}
