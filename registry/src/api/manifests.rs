//! `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::{Shared, empty};
use crate::manifest::{self, MAX_MANIFEST_BYTES};
use crate::{Digest, Error, Name, Reference};

async fn resolve(state: &Shared, name: &Name, reference: &Reference) -> Result<Digest, Error> {
    let unknown = || Error::ManifestUnknown(format!("{name}:{reference}"));
    match reference {
        Reference::Tag(tag) => state.store.tag_target(name, tag).await?.ok_or_else(unknown),
        Reference::Digest(digest) => Ok(digest.clone()),
    }
}

pub(super) async fn get(
    state: &Shared,
    name: &Name,
    reference: &str,
    head: bool,
) -> Result<Response, Error> {
    let reference = Reference::lookup(reference)?;
    let digest = resolve(state, name, &reference).await?;
    let (media_type, body) = state
        .store
        .manifest(name, &digest)
        .await?
        .ok_or_else(|| Error::ManifestUnknown(format!("{name}:{reference}")))?;
    let length = body.len();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, length)
        .header("docker-content-digest", digest.to_string())
        .header(header::ETAG, format!("\"{digest}\""))
        .body(if head {
            Body::empty()
        } else {
            Body::from(body)
        })
        .map_err(|e| Error::Storage(format!("building a response: {e}")))
}

pub(super) async fn put(
    state: &Shared,
    name: &Name,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    let reference = Reference::parse(reference)?;
    let body = axum::body::to_bytes(body, MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| {
            Error::TooLarge(format!(
                "manifest over {MAX_MANIFEST_BYTES} bytes or unreadable: {e}"
            ))
        })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed = manifest::parse(content_type, &body)?;
    let digest = Digest::of(&body);
    if let Reference::Digest(expected) = &reference
        && *expected != digest
    {
        return Err(Error::DigestInvalid(format!(
            "manifest has digest {digest}, but was pushed as {expected}"
        )));
    }
    for blob in &parsed.blobs {
        if state.store.blob_size(name, blob).await?.is_none() {
            return Err(Error::ManifestBlobUnknown(blob.to_string()));
        }
    }
    for child in &parsed.manifests {
        if state
            .store
            .manifest_media_type(name, child)
            .await?
            .is_none()
        {
            return Err(Error::ManifestBlobUnknown(format!("manifest {child}")));
        }
    }
    let tag = match &reference {
        Reference::Tag(tag) => Some(tag),
        Reference::Digest(_) => None,
    };
    let stored = state
        .store
        .put_manifest(name, tag, &parsed.media_type, body)
        .await?;
    let mut headers = vec![
        ("location", format!("/v2/{name}/manifests/{stored}")),
        ("docker-content-digest", stored.to_string()),
    ];
    if let Some(subject) = parsed.subject {
        headers.push(("oci-subject", subject.to_string()));
    }
    empty(StatusCode::CREATED, &headers)
}

pub(super) async fn delete(
    state: &Shared,
    name: &Name,
    reference: &str,
) -> Result<Response, Error> {
    let found = match Reference::lookup(reference)? {
        Reference::Tag(tag) => state.store.delete_tag(name, &tag).await?,
        Reference::Digest(digest) => state.store.delete_manifest(name, &digest).await?,
    };
    if !found {
        return Err(Error::ManifestUnknown(format!("{name}:{reference}")));
    }
    empty(StatusCode::ACCEPTED, &[])
}
