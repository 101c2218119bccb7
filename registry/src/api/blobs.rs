//! `GET|HEAD|DELETE /v2/<name>/blobs/<digest>`, with `Range`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::{Shared, empty, range};
use crate::store::BlobBody;
use crate::{Digest, Error, Name};

pub(super) async fn get(
    state: &Shared,
    name: &Name,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, Error> {
    let digest = Digest::lookup(digest)?;
    let size = state
        .store
        .blob_size(name, &digest)
        .await?
        .ok_or_else(|| Error::BlobUnknown(digest.to_string()))?;
    let requested = range::parse(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    )?;
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest.to_string())
        .header(header::ETAG, format!("\"{digest}\""));
    let length = match &requested {
        Some(r) => {
            response = response.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            );
            r.end - r.start
        }
        None => {
            response = response.status(StatusCode::OK);
            size
        }
    };
    let body = if head {
        Body::empty()
    } else {
        match state.store.blob_body(&digest, requested, size).await? {
            BlobBody::Memory(bytes) => Body::from(bytes),
            BlobBody::Stream(stream) => Body::from_stream(stream),
        }
    };
    response
        .header(header::CONTENT_LENGTH, length)
        .body(body)
        .map_err(|e| Error::Storage(format!("building a response: {e}")))
}

pub(super) async fn delete(state: &Shared, name: &Name, digest: &str) -> Result<Response, Error> {
    let digest = Digest::lookup(digest)?;
    if !state.store.unlink_blob(name, &digest).await? {
        return Err(Error::BlobUnknown(digest.to_string()));
    }
    empty(
        StatusCode::ACCEPTED,
        &[("docker-content-digest", digest.to_string())],
    )
}
