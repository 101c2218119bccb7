//! `GET /v2/_catalog`, `GET /v2/<name>/tags/list` (both with `n`/`last`
//! pagination and a `Link` header) and `GET /v2/<name>/referrers/<digest>`.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Query, Shared};
use crate::manifest::{self, OCI_INDEX};
use crate::{Digest, Error, Name};

/// The page of `sorted` after `last`, at most `n` long, and whether more follow.
fn page(sorted: Vec<String>, query: &Query) -> Result<(Vec<String>, Option<usize>), Error> {
    let n = query
        .get("n")
        .map(|n| {
            n.parse::<usize>().map_err(|_| {
                Error::PaginationInvalid(format!("`n` must be a non-negative number: {n:?}"))
            })
        })
        .transpose()?;
    let mut items: Vec<String> = match query.get("last") {
        Some(last) => sorted
            .into_iter()
            .filter(|item| item.as_str() > last)
            .collect(),
        None => sorted,
    };
    match n {
        Some(n) if items.len() > n => {
            items.truncate(n);
            Ok((items, Some(n)))
        }
        _ => Ok((items, None)),
    }
}

fn with_link(body: serde_json::Value, link: Option<String>) -> Response {
    let mut response = axum::Json(body).into_response();
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

pub(super) async fn catalog(State(state): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let query = Query::parse(query.as_deref());
    let result = async {
        let (repositories, more) = page(state.store.repositories().await?, &query)?;
        let link = more.and_then(|n| {
            repositories
                .last()
                .map(|last| format!("</v2/_catalog?last={last}&n={n}>; rel=\"next\""))
        });
        Ok::<_, Error>(with_link(json!({ "repositories": repositories }), link))
    }
    .await;
    state.metrics.request("GET", &result);
    result.unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn tags(state: &Shared, name: &Name, query: &Query) -> Result<Response, Error> {
    let all = state.store.tags(name).await?;
    if all.is_empty() && !state.store.repository_exists(name).await? {
        return Err(Error::NameUnknown(name.to_string()));
    }
    let (tags, more) = page(all, query)?;
    let link = more.and_then(|n| {
        tags.last()
            .map(|last| format!("</v2/{name}/tags/list?last={last}&n={n}>; rel=\"next\""))
    });
    Ok(with_link(
        json!({ "name": name.as_str(), "tags": tags }),
        link,
    ))
}

pub(super) async fn referrers(
    state: &Shared,
    name: &Name,
    digest: &str,
    query: &Query,
) -> Result<Response, Error> {
    let subject: Digest = digest.parse()?;
    let wanted = query.get("artifactType");
    let mut descriptors = Vec::new();
    for revision in state.store.revisions(name).await? {
        let Some((media_type, body)) = state.store.manifest(name, &revision).await? else {
            continue;
        };
        let Ok(parsed) = manifest::parse(Some(&media_type), &body) else {
            continue;
        };
        if parsed.subject.as_ref() != Some(&subject) {
            continue;
        }
        let artifact_type = parsed
            .artifact_type
            .clone()
            .or_else(|| manifest::config_media_type(&body));
        if wanted.is_some() && artifact_type.as_deref() != wanted {
            continue;
        }
        let mut descriptor = json!({
            "mediaType": media_type,
            "digest": revision.to_string(),
            "size": body.len(),
        });
        if let Some(artifact_type) = artifact_type {
            descriptor["artifactType"] = json!(artifact_type);
        }
        if let Some(annotations) = parsed.annotations {
            descriptor["annotations"] = json!(annotations);
        }
        descriptors.push(descriptor);
    }
    let body = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors });
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if wanted.is_some() {
        response.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
