//! The simulator's own small JSON API, standing in for CC's public API so that
//! `cube push`, `cube apps`, `cube scale`, `cube stop` and `cube delete` work:
//!
//! | route | does |
//! |---|---|
//! | `GET /sim/apps` | list apps |
//! | `GET /sim/apps/{name}` | one app, with its latest build |
//! | `PUT /sim/apps/{name}` | create or update from an [`AppManifest`] |
//! | `PUT /sim/apps/{name}/bits` | upload app bits (a zip) |
//! | `POST /sim/apps/{name}/stage[?start=true]` | stage through the stager |
//! | `GET /sim/apps/{name}/staging_logs[?follow=false]` | the latest build's staging output, streamed from the stager (`text/plain`, ends when staging completed) |
//! | `POST /sim/apps/{name}/start`, `/stop` | start, stop |
//! | `PUT /sim/apps/{name}/scale` | change instances, memory, disk |
//! | `DELETE /sim/apps/{name}` | delete with its builds and blobs |

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};

use super::response::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Sim;
use super::response::parse_json;
use super::state::{AppManifest, Package, Scale};
use super::view::{AppList, AppView};
use crate::guid::new_guid;
use crate::{Error, Result};

/// `GET /sim/apps`.
pub async fn list(State(sim): State<Arc<Sim>>) -> Json<AppList> {
    let state = sim.store.snapshot();
    Json(AppList {
        apps: state
            .apps
            .values()
            .map(|app| AppView::of(app, &state))
            .collect(),
    })
}

/// `GET /sim/apps/{name}`.
pub async fn get(State(sim): State<Arc<Sim>>, Path(name): Path<String>) -> Result<Json<AppView>> {
    view(&sim, &name)
}

fn view(sim: &Sim, name: &str) -> Result<Json<AppView>> {
    let state = sim.store.snapshot();
    let app = state
        .app_by_name(name)
        .ok_or_else(|| Error::not_found(format!("app `{name}` not found")))?;
    Ok(Json(AppView::of(app, &state)))
}

/// `PUT /sim/apps/{name}`: 201 when created, 200 when updated.
pub async fn put(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let manifest: AppManifest = if body.is_empty() {
        AppManifest::default()
    } else {
        parse_json(&body)?
    };
    let now = super::now_micros();
    let domain = sim.apps_domain.clone();
    let created = sim
        .store
        .update(|state| state.put_app(&name, manifest, &domain, now))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, view(&sim, &name)?).into_response())
}

/// `PUT /sim/apps/{name}/bits` with a zip body.
pub async fn put_bits(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<AppView>> {
    if !body.starts_with(b"PK\x03\x04") && !body.starts_with(b"PK\x05\x06") {
        return Err(Error::message_parse(
            "app bits must be a zip archive (the body does not start with a zip header)",
        ));
    }
    let snapshot = sim.store.snapshot();
    if snapshot.app_by_name(&name).is_none() {
        return Err(Error::not_found(format!("app `{name}` not found")));
    }
    let guid = new_guid();
    let (sha256, size) = sim.store.put_package(&guid, body).await?;
    let now = super::now_micros();
    let package = Package { guid, sha256, size };
    let previous = snapshot
        .app_by_name(&name)
        .and_then(|app| app.package.as_ref())
        .map(|p| sim.store.package_path(&p.guid));
    let stored = package.clone();
    let result = sim
        .store
        .update(|state| state.set_package(&name, stored, now))
        .await;
    if let Err(error) = result {
        sim.store
            .remove_blobs(vec![sim.store.package_path(&package.guid)])
            .await;
        return Err(error);
    }
    if let Some(previous) = previous {
        sim.store.remove_blobs(vec![previous]).await;
    }
    view(&sim, &name)
}

/// `POST /sim/apps/{name}/stage[?start=true]`: 202 with the build.
pub async fn stage(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let start = query.get("start").map(String::as_str) == Some("true");
    let build = super::staging::stage(&sim, &name, start).await?;
    Ok((StatusCode::ACCEPTED, Json(build)).into_response())
}

/// `GET /sim/apps/{name}/staging_logs[?follow=false]`: the latest build's
/// staging log, streamed from the stager as it grows.
pub async fn staging_logs(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let follow = query.get("follow").map(String::as_str) != Some("false");
    super::staging::logs(&sim, &name, follow).await
}

/// `POST /sim/apps/{name}/start`.
pub async fn start(State(sim): State<Arc<Sim>>, Path(name): Path<String>) -> Result<Json<AppView>> {
    let now = super::now_micros();
    sim.store
        .update(|state| state.start_app(&name, now))
        .await?;
    view(&sim, &name)
}

/// `POST /sim/apps/{name}/stop`.
pub async fn stop(State(sim): State<Arc<Sim>>, Path(name): Path<String>) -> Result<Json<AppView>> {
    let now = super::now_micros();
    sim.store.update(|state| state.stop_app(&name, now)).await?;
    view(&sim, &name)
}

/// `PUT /sim/apps/{name}/scale`.
pub async fn scale(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<AppView>> {
    let scale: Scale = parse_json(&body)?;
    let now = super::now_micros();
    sim.store
        .update(|state| state.scale_app(&name, scale, now))
        .await?;
    view(&sim, &name)
}

/// `DELETE /sim/apps/{name}`: 204.
pub async fn delete(State(sim): State<Arc<Sim>>, Path(name): Path<String>) -> Result<StatusCode> {
    let snapshot = sim.store.snapshot();
    let app = sim.store.update(|state| state.delete_app(&name)).await?;
    // The state no longer points at these blobs; remove them.
    let mut blobs: Vec<_> = snapshot
        .builds
        .values()
        .filter(|b| b.app_guid == app.guid)
        .map(|b| sim.store.droplet_path(&b.guid))
        .collect();
    if let Some(package) = &app.package {
        blobs.push(sim.store.package_path(&package.guid));
    }
    sim.store.remove_blobs(blobs).await;
    Ok(StatusCode::NO_CONTENT)
}
