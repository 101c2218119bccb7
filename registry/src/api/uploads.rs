//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (start, monolithic with
//! `?digest=`, or cross-repository mount with `?mount=&from=`), then `PATCH`
//! chunks, `PUT ?digest=` to finish, `GET` for status, `DELETE` to cancel.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::{Query, Shared, body_stream, empty};
use crate::{Digest, Error, Name};

fn created(name: &Name, digest: &Digest) -> Result<Response, Error> {
    empty(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
        ],
    )
}

fn accepted(name: &Name, id: &str, size: u64) -> Result<Response, Error> {
    empty(
        StatusCode::ACCEPTED,
        &[
            ("location", format!("/v2/{name}/blobs/uploads/{id}")),
            ("range", format!("0-{}", size.saturating_sub(1))),
            ("docker-upload-uuid", id.to_owned()),
        ],
    )
}

fn digest_param(query: &Query) -> Result<Digest, Error> {
    query
        .get("digest")
        .ok_or_else(|| Error::DigestInvalid("the `digest` query parameter is required".into()))?
        .parse()
}

/// Whether `digest` can be mounted: from the `from` repository when given,
/// else from anywhere when automatic cross-mounting is on.
async fn mountable(state: &Shared, digest: &Digest, from: Option<&str>) -> Result<bool, Error> {
    let size = match from {
        Some(from) => state.store.blob_size(&Name::parse(from)?, digest).await?,
        None if state.automatic_crossmount => state.store.blob_size_global(digest).await?,
        None => None,
    };
    Ok(size.is_some())
}

pub(super) async fn start(
    state: &Shared,
    name: &Name,
    query: &Query,
    body: Body,
) -> Result<Response, Error> {
    if let Some(mount) = query.get("mount") {
        let digest: Digest = mount.parse()?;
        if mountable(state, &digest, query.get("from")).await? {
            state.store.link_blob(name, &digest).await?;
            return created(name, &digest);
        }
        // Not mountable: fall back to an ordinary upload, as the spec says.
    }
    if query.get("digest").is_some() {
        let digest = digest_param(query)?;
        state
            .store
            .write_blob(body_stream(body), Some(&digest))
            .await?;
        state.store.link_blob(name, &digest).await?;
        return created(name, &digest);
    }
    let id = state.store.upload_start(name).await?;
    accepted(name, &id, 0)
}

pub(super) async fn status(state: &Shared, name: &Name, id: &str) -> Result<Response, Error> {
    let size = state.store.upload_size(name, id).await?;
    let mut response = accepted(name, id, size)?;
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// The start offset of `Content-Range: <start>-<end>` (with or without `bytes `).
fn content_range_start(headers: &HeaderMap) -> Result<Option<u64>, Error> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    let spec = text
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let (start, end) = spec
        .split('/')
        .next()
        .and_then(|s| s.split_once('-'))
        .ok_or_else(|| Error::UploadRange(format!("malformed Content-Range {text:?}")))?;
    let parse = |n: &str| {
        n.trim()
            .parse::<u64>()
            .map_err(|_| Error::UploadRange(format!("malformed Content-Range {text:?}")))
    };
    let (start, end) = (parse(start)?, parse(end)?);
    if end < start {
        return Err(Error::UploadRange(format!(
            "Content-Range {text:?} ends before it starts"
        )));
    }
    Ok(Some(start))
}

pub(super) async fn patch(
    state: &Shared,
    name: &Name,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    let start = content_range_start(headers)?;
    let size = state
        .store
        .upload_append(name, id, start, body_stream(body))
        .await?;
    accepted(name, id, size)
}

pub(super) async fn finish(
    state: &Shared,
    name: &Name,
    id: &str,
    query: &Query,
    body: Body,
) -> Result<Response, Error> {
    let digest = digest_param(query)?;
    state
        .store
        .upload_finish(name, id, &digest, Some(body_stream(body)))
        .await?;
    created(name, &digest)
}

pub(super) async fn cancel(state: &Shared, name: &Name, id: &str) -> Result<Response, Error> {
    state.store.upload_cancel(name, id).await?;
    empty(StatusCode::NO_CONTENT, &[])
}
