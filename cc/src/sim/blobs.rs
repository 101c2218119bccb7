//! Blobs over HTTP: droplet upload (multipart `upload[droplet]`, answered with a
//! pollable job; [`super::cc_uploader`] stores through [`store_droplet`] too),
//! job status, droplet download (`droplet_uri`) and app-bits download
//! (`app_bits_download_uri`).

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
    uri: axum::http::Uri,
    multipart: std::result::Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Json<Job>> {
    let mut multipart = multipart.map_err(|e| Error::message_parse(e.body_text()))?;
    // Refuse early, before storing anything, when the build cannot take it.
    check_build_takes_droplet(&sim, &build_guid)?;
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
    let upload = DropletUpload {
        build_guid,
        path: uri.path().to_owned(),
        via: None,
    };
    let job = store_droplet(&sim, upload, droplet).await?;
    Ok(Json(job_view(&sim, &job)))
}

/// 404 for an unknown build, 422 for one that is not staging: what CC's upload
/// endpoint answers before it reads the droplet.
pub fn check_build_takes_droplet(sim: &Sim, build_guid: &str) -> Result<()> {
    match sim.store.snapshot().builds.get(build_guid) {
        None => Err(Error::not_found(format!("build {build_guid} not found"))),
        Some(build) if build.state != BuildState::Staging => Err(Error::unprocessable(format!(
            "build {build_guid} is {:?}, not staging: the droplet upload is refused",
            build.state
        ))),
        Some(_) => Ok(()),
    }
}

/// A droplet arriving at CC's upload endpoint.
#[derive(Debug, Clone)]
pub struct DropletUpload {
    /// The build (staging guid) it is for.
    pub build_guid: String,
    /// The CC route it arrived at (recorded in the `droplet_uploaded` event).
    pub path: String,
    /// What brought it when not the stager itself (`cc-uploader`).
    pub via: Option<&'static str>,
}

/// Stores `droplet` for a staging build as CC's upload endpoint does: the blob
/// first (atomically), then the build's `uploaded_droplet`, a finished job and
/// a `droplet_uploaded` event. An empty droplet is refused.
pub async fn store_droplet(
    sim: &Sim,
    upload: DropletUpload,
    droplet: axum::body::Bytes,
) -> Result<UploadJob> {
    if droplet.is_empty() {
        return Err(Error::message_parse(format!(
            "field `{DROPLET_FIELD}` is empty"
        )));
    }
    // The blob first: if we crash now, the state does not point at it yet.
    let (sha256, size) = sim.store.put_droplet(&upload.build_guid, droplet).await?;
    let now = super::now_micros();
    let job = UploadJob {
        guid: new_guid(),
        status: JobStatus::Finished,
        error: None,
        created_at_micros: now,
    };
    let mut body = serde_json::json!({"sha256": sha256, "size": size});
    if let Some(via) = upload.via {
        body["via"] = via.into();
    }
    let recorded = job.clone();
    sim.store
        .update(move |state| {
            state.droplet_uploaded(&upload.build_guid, sha256.clone(), size)?;
            state.jobs.insert(recorded.guid.clone(), recorded);
            state.record_event("droplet_uploaded", &upload.path, body, now);
            Ok(())
        })
        .await?;
    Ok(job)
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
