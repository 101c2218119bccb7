//! Blobs over HTTP: droplet upload (multipart `upload[droplet]`, answered with a
//! pollable job), job status, droplet download (`droplet_uri`) and app-bits
//! download (`app_bits_download_uri`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, State};

use super::response::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Sim;
use super::state::{BuildState, UploadJob};
use crate::guid::new_guid;
use crate::model::{Job, JobEntity, JobMetadata, JobStatus};
use crate::{Error, Result};

/// The multipart field CC reads the droplet from.
pub const DROPLET_FIELD: &str = "upload[droplet]";

/// `POST /staging/v3/droplets/{build_guid}/upload` (and the `/internal/v4` twin).
pub async fn upload_droplet(
    State(sim): State<Arc<Sim>>,
    Path(build_guid): Path<String>,
    multipart: std::result::Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Json<Job>> {
    let mut multipart = multipart.map_err(|e| Error::message_parse(e.body_text()))?;
    // Refuse early, before storing anything, when the build cannot take it.
    match sim.store.snapshot().builds.get(&build_guid) {
        None => return Err(Error::not_found(format!("build {build_guid} not found"))),
        Some(build) if build.state != BuildState::Staging => {
            return Err(Error::unprocessable(format!(
                "build {build_guid} is {:?}, not staging: the droplet upload is refused",
                build.state
            )));
        }
        Some(_) => {}
    }
    let mut droplet = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| Error::message_parse(format!("multipart body: {e}")))?
    {
        if field.name() == Some(DROPLET_FIELD) {
            let bytes = field
                .bytes()
                .await
                .map_err(|e| Error::message_parse(format!("field {DROPLET_FIELD}: {e}")))?;
            droplet = Some(bytes);
        }
    }
    let droplet = droplet.ok_or_else(|| {
        Error::message_parse(format!("multipart body has no `{DROPLET_FIELD}` field"))
    })?;
    if droplet.is_empty() {
        return Err(Error::message_parse(format!(
            "field `{DROPLET_FIELD}` is empty"
        )));
    }
    // The blob first: if we crash now, the state does not point at it yet.
    let (sha256, size) = sim.store.put_droplet(&build_guid, droplet).await?;
    let now = super::now_micros();
    let job = UploadJob {
        guid: new_guid(),
        status: JobStatus::Finished,
        error: None,
        created_at_micros: now,
    };
    let path = format!("/staging/v3/droplets/{build_guid}/upload");
    let recorded = job.clone();
    sim.store
        .update(move |state| {
            state.droplet_uploaded(&build_guid, sha256.clone(), size)?;
            state.jobs.insert(recorded.guid.clone(), recorded);
            state.record_event(
                "droplet_uploaded",
                &path,
                serde_json::json!({"sha256": sha256, "size": size}),
                now,
            );
            Ok(())
        })
        .await?;
    Ok(Json(job_view(&sim, &job)))
}

/// `GET /staging/jobs/{guid}` (and `/internal/v4/staging_jobs/{guid}`).
pub async fn job(State(sim): State<Arc<Sim>>, Path(guid): Path<String>) -> Result<Json<Job>> {
    let state = sim.store.snapshot();
    let job = state
        .jobs
        .get(&guid)
        .ok_or_else(|| Error::not_found(format!("job {guid} not found")))?;
    Ok(Json(job_view(&sim, job)))
}

fn job_view(sim: &Sim, job: &UploadJob) -> Job {
    Job {
        metadata: JobMetadata {
            guid: job.guid.clone(),
            created_at: super::iso8601(job.created_at_micros),
            url: sim.internal_url(&format!("/staging/jobs/{}", job.guid)),
        },
        entity: JobEntity {
            guid: job.guid.clone(),
            status: job.status,
            error: job.error.clone(),
        },
    }
}

/// `GET /internal/v2/droplets/{app_guid}/{hash}/download`: the current droplet of
/// an app, if its hash matches (CC's "perma" droplet URL, no credentials).
pub async fn download_droplet(
    State(sim): State<Arc<Sim>>,
    Path((app_guid, hash)): Path<(String, String)>,
) -> Result<Response> {
    let state = sim.store.snapshot();
    let app = state
        .app_by_guid(&app_guid)
        .ok_or_else(|| Error::not_found(format!("app {app_guid} not found")))?;
    let droplet = app
        .droplet
        .as_ref()
        .filter(|d| d.hash.as_deref() == Some(hash.as_str()))
        .ok_or_else(|| {
            Error::not_found(format!("app {app_guid} has no droplet with hash {hash}"))
        })?;
    let bytes = sim
        .store
        .read_blob(sim.store.droplet_path(&droplet.guid), "droplet")
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/gzip")], bytes).into_response())
}

/// `GET /staging/packages/{guid}`: app bits for the stager.
pub async fn download_package(
    State(sim): State<Arc<Sim>>,
    Path(guid): Path<String>,
) -> Result<Response> {
    let state = sim.store.snapshot();
    let known = state
        .apps
        .values()
        .any(|app| app.package.as_ref().is_some_and(|p| p.guid == guid));
    if !known {
        return Err(Error::not_found(format!("package {guid} not found")));
    }
    let bytes = sim
        .store
        .read_blob(sim.store.package_path(&guid), "package")
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/zip")], bytes).into_response())
}
