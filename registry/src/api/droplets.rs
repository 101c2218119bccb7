//! `POST /v2/<name>/droplets?hash=<droplet_hash>`: import a droplet as the image
//! `<name>:<hash>`. The body is the droplet `.tgz`, or JSON `{"uri": "..."}` to
//! fetch it from Cloud Controller. Answers 201 when the image was made, 200
//! when it already existed (nothing is read or written then).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Query, Shared, body_stream};
use crate::image::DropletSource;
use crate::{Error, Name, Tag};

/// Largest JSON body of an import by URI.
const MAX_JSON: usize = 64 * 1024;

#[derive(Deserialize)]
struct ByUri {
    uri: String,
}

pub(super) async fn import(
    state: &Shared,
    name: &Name,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    let hash = query.get("hash").ok_or_else(|| {
        Error::ReferenceInvalid("the `hash` query parameter (the droplet hash) is required".into())
    })?;
    let hash = Tag::parse(hash)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = state.importer.limits().max_compressed;
    if let Some(length) = declared.filter(|length| !is_json && *length > limit) {
        state.metrics.import("refused");
        return Err(Error::TooLarge(format!(
            "droplet is {length} bytes; the limit is {limit}"
        )));
    }
    let source = if is_json {
        let bytes = axum::body::to_bytes(body, MAX_JSON)
            .await
            .map_err(|e| Error::DropletInvalid(format!("reading the JSON body: {e}")))?;
        let request: ByUri = serde_json::from_slice(&bytes)
            .map_err(|e| Error::DropletInvalid(format!("expected {{\"uri\": \"...\"}}: {e}")))?;
        DropletSource::Uri(request.uri)
    } else {
        DropletSource::Body(body_stream(body))
    };
    let imported = match state.importer.import(name, &hash, source).await {
        Ok(imported) => imported,
        Err(error) => {
            state.metrics.import("refused");
            tracing::warn!(%name, %hash, %error, "droplet import failed");
            return Err(error);
        }
    };
    state.metrics.import(if imported.created {
        "created"
    } else {
        "exists"
    });
    if imported.created {
        tracing::info!(%name, %hash, digest = %imported.digest, "droplet imported");
    }
    let status = if imported.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({
        "name": name.as_str(),
        "tag": hash.as_str(),
        "digest": imported.digest.to_string(),
        "image": format!("{name}:{hash}"),
    });
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = imported.digest.to_string().parse() {
        response
            .headers_mut()
            .insert("docker-content-digest", value);
    }
    if let Ok(value) = format!("/v2/{name}/manifests/{}", imported.digest).parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}
