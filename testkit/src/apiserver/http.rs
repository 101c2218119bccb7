//! The HTTP face of the fake apiserver: Kubernetes REST paths, verbs,
//! content types and query parameters, mapped onto the [`super::store`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::error::ApiError;
use super::rbac::Rbac;
use super::resources::{self, Kind};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{PatchType, WriteOptions};
use super::{RecordedRequest, Shared, watch};

/// A parsed resource path.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// The kind.
    pub kind: &'static Kind,
    /// The namespace in the path, if any.
    pub namespace: Option<String>,
    /// The object name, if any.
    pub name: Option<String>,
    /// The subresource (`status`), if any.
    pub subresource: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...`.
pub fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let owned = |s: Option<&&str>| s.map(|s| (*s).to_owned());
    if let ["namespaces", namespace, plural, tail @ ..] = rest
        && let Some(kind) = resources::lookup(group, version, plural)
        && kind.namespaced
        && tail.len() <= 2
    {
        return Some(Target {
            kind,
            namespace: Some((*namespace).to_owned()),
            name: owned(tail.first()),
            subresource: owned(tail.get(1)),
        });
    }
    let [plural, tail @ ..] = rest else {
        return None;
    };
    let kind = resources::lookup(group, version, plural)?;
    if tail.len() > 2 || (kind.namespaced && !tail.is_empty()) {
        return None;
    }
    Some(Target {
        kind,
        namespace: None,
        name: owned(tail.first()),
        subresource: owned(tail.get(1)),
    })
}

fn query(request: &Request) -> HashMap<String, String> {
    request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON response.
pub fn json_response(status: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(e: &ApiError) -> Response {
    json_response(e.code, &e.status())
}

/// Every request enters here.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared.record(RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: request.uri().query().unwrap_or("").to_owned(),
        content_type: content_type.clone(),
    });
    let latency = shared.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(fault) = shared.take_fault(&method, &path) {
        let reason = match fault.status {
            404 => "NotFound",
            409 => "Conflict",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        };
        return error(&ApiError::new(fault.status, reason, fault.message));
    }
    let Some(target) = parse_path(&path) else {
        return error(&ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        ));
    };
    if let Some(sub) = &target.subresource
        && (sub != "status" || !target.kind.has_status)
    {
        return error(&ApiError::not_found(&target.kind.qualified(), sub));
    }
    let query = query(&request);
    let rbac = request.extensions().get::<Arc<Rbac>>().cloned();
    let body = match axum::body::to_bytes(request.into_body(), 8 * 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(e) => return error(&ApiError::bad_request(format!("reading the body: {e}"))),
    };
    if let Some(rbac) = rbac
        && let Err(e) = authorize(
            &rbac,
            &shared,
            &method,
            &target,
            &query,
            content_type.as_deref(),
        )
    {
        return error(&e);
    }
    match dispatch(
        &shared,
        &method,
        &target,
        &query,
        content_type.as_deref(),
        &body,
    ) {
        Ok(Reply::Json(status, value)) => json_response(status, &value),
        Ok(Reply::Watch(response)) => response,
        Err(e) => error(&e),
    }
}

/// The RBAC verbs a request needs: the verb of its method, plus `create`
/// for a server-side apply that creates the object.
fn authorize(
    rbac: &Rbac,
    shared: &Arc<Shared>,
    method: &Method,
    target: &Target,
    query: &HashMap<String, String>,
    content_type: Option<&str>,
) -> Result<(), ApiError> {
    let watch = query.get("watch").is_some_and(|v| v == "true" || v == "1");
    let verb = match (method, &target.name) {
        (&Method::GET, None) if watch => "watch",
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => return Ok(()),
    };
    let mut verbs = vec![verb];
    let name = target.name.as_deref().unwrap_or("");
    let namespace = target
        .namespace
        .as_deref()
        .filter(|_| target.kind.namespaced);
    let is_apply = content_type.is_some_and(|c| c.starts_with("application/apply-patch"));
    if verb == "patch"
        && is_apply
        && shared
            .store()
            .get(target.kind, namespace.unwrap_or(""), name)
            .is_err()
    {
        verbs.push("create");
    }
    let resource = match &target.subresource {
        Some(sub) => format!("{}/{sub}", target.kind.plural),
        None => target.kind.plural.to_owned(),
    };
    for verb in verbs {
        if !rbac.allows(verb, target.kind.group, &resource, namespace) {
            return Err(ApiError::new(
                403,
                "Forbidden",
                rbac.denial(verb, target.kind.group, &resource, name, namespace),
            ));
        }
    }
    Ok(())
}

enum Reply {
    Json(u16, Value),
    Watch(Response),
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not JSON (the fake apiserver reads JSON only): {e}"
        ))
    })
}

fn selectors(query: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    target: &Target,
    query: &HashMap<String, String>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let kind = target.kind;
    let namespace = target.namespace.as_deref().unwrap_or("");
    let options = WriteOptions {
        field_manager: query.get("fieldManager").cloned(),
        force: query.get("force").is_some_and(|f| f == "true"),
        status: target.subresource.is_some(),
    };
    let truthy = |k: &str| query.get(k).is_some_and(|v| v == "true" || v == "1");
    match (method, &target.name) {
        (&Method::GET, None) if truthy("watch") => {
            let (labels, fields) = selectors(query)?;
            Ok(Reply::Watch(watch::stream(
                shared,
                kind,
                target.namespace.clone(),
                labels,
                fields,
                query,
            )?))
        }
        (&Method::GET, None) => {
            let (labels, fields) = selectors(query)?;
            list(
                shared,
                kind,
                target.namespace.as_deref(),
                &labels,
                &fields,
                query,
            )
        }
        (&Method::GET, Some(name)) => {
            let object = shared.store().get(kind, namespace, name)?;
            Ok(Reply::Json(200, object))
        }
        (&Method::POST, None) => {
            if kind.namespaced && target.namespace.is_none() {
                return Err(ApiError::new(
                    405,
                    "MethodNotAllowed",
                    "create needs a namespace",
                ));
            }
            let object = shared
                .store()
                .create(kind, namespace, parse_json(body)?, &options)?;
            Ok(Reply::Json(201, object))
        }
        (&Method::PUT, Some(name)) => {
            let object =
                shared
                    .store()
                    .replace(kind, namespace, name, parse_json(body)?, &options)?;
            Ok(Reply::Json(200, object))
        }
        (&Method::PATCH, Some(name)) => {
            let patch_type = match content_type.map(|c| c.split(';').next().unwrap_or("").trim()) {
                Some("application/merge-patch+json") => PatchType::Merge,
                Some("application/json-patch+json") => PatchType::Json,
                Some("application/apply-patch+yaml" | "application/apply-patch+json") => {
                    PatchType::Apply
                }
                other => {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!(
                            "the body of the request was in an unknown format ({other:?}); the fake apiserver accepts merge, JSON and apply patches"
                        ),
                    ));
                }
            };
            let mut store = shared.store();
            let existed = store.get(kind, namespace, name).is_ok();
            let object = store.patch(
                kind,
                namespace,
                name,
                patch_type,
                parse_json(body)?,
                &options,
            )?;
            Ok(Reply::Json(if existed { 200 } else { 201 }, object))
        }
        (&Method::DELETE, Some(name)) => {
            let options: Value = if body.is_empty() {
                json!({})
            } else {
                parse_json(body)?
            };
            let precondition = options
                .get("preconditions")
                .and_then(|p| p.get("resourceVersion"))
                .and_then(Value::as_str);
            let policy = options
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .or_else(|| query.get("propagationPolicy").map(String::as_str));
            let object = shared.store().delete(
                kind,
                namespace,
                name,
                precondition,
                policy == Some("Orphan"),
            )?;
            Ok(Reply::Json(200, object))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        )),
    }
}

fn list(
    shared: &Arc<Shared>,
    kind: &Kind,
    namespace: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
    query: &HashMap<String, String>,
) -> Result<Reply, ApiError> {
    let (items, rv) = shared.store().list(kind, namespace, labels, fields);
    // `continue` is `<resourceVersion>/<namespace>/<name>` of the last item sent.
    let (list_rv, after) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let mut parts = token.splitn(3, '/');
            let rv = parts
                .next()
                .and_then(|r| r.parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            let ns = parts.next().unwrap_or("").to_owned();
            let name = parts.next().unwrap_or("").to_owned();
            (rv, Some((ns, name)))
        }
        None => (rv, None),
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let mut remaining: Vec<_> = items
        .into_iter()
        .filter(|(key, _)| {
            after
                .as_ref()
                .is_none_or(|(ns, name)| (&key.namespace, &key.name) > (ns, name))
        })
        .collect();
    let mut continue_token = String::new();
    if let Some(limit) = limit
        && remaining.len() > limit
    {
        remaining.truncate(limit);
        if let Some((last, _)) = remaining.last() {
            continue_token = format!("{list_rv}/{}/{}", last.namespace, last.name);
        }
    }
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if !continue_token.is_empty() {
        metadata["continue"] = json!(continue_token);
    }
    Ok(Reply::Json(
        200,
        json!({
            "apiVersion": kind.api_version(),
            "kind": format!("{}List", kind.kind),
            "metadata": metadata,
            "items": remaining.into_iter().map(|(_, o)| o).collect::<Vec<_>>(),
        }),
    ))
}

/// The body of a response as a stream of bytes (for watches).
pub fn streaming(body: Body) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_kinds_namespaces_and_subresources() {
        let t = parse_path("/apis/apps/v1/namespaces/dev/statefulsets/web/status").expect("parsed");
        assert_eq!(t.kind.plural, "statefulsets");
        assert_eq!(t.namespace.as_deref(), Some("dev"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = parse_path("/api/v1/namespaces/dev").expect("parsed");
        assert_eq!(
            (t.kind.plural, t.name.as_deref()),
            ("namespaces", Some("dev"))
        );
        let t = parse_path("/api/v1/pods").expect("parsed");
        assert_eq!((t.kind.plural, t.namespace), ("pods", None));
        assert_eq!(
            parse_path("/api/v1/pods/x"),
            None,
            "namespaced kinds need a namespace"
        );
        assert_eq!(
            parse_path("/apis/apps/v1/namespaces/dev/pods"),
            None,
            "wrong group"
        );
        assert_eq!(parse_path("/apis/apps/v1/namespaces/dev/deployments"), None);
    }
}
