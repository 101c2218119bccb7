//! cc-uploader's droplet endpoint, served by the simulator beside CC's own:
//! `POST /v1/droplet/{guid}?cc-droplet-upload-uri={CC's upload URL}[&timeout=S]`.
//!
//! As cc-uploader (`handlers/upload_droplet`, `ccclient/uploader.go`) does, in
//! its order: a missing `cc-droplet-upload-uri` or an unparsable one or timeout
//! is `400`; a body without a positive `Content-Length` is `411 Missing Content
//! Length`; CC's refusal comes back with CC's status and the text
//! `status code: N\n<CC's body>`; success is an empty `201`, after CC's job
//! finished. Refusals are plain text, not CC's JSON. The `{guid}` in the path
//! is not read (cc-uploader does not read it either).
//!
//! Instead of re-posting the droplet to itself, the simulator stores it exactly
//! as its CC upload endpoint would for the build `cc-droplet-upload-uri` names
//! ([`super::blobs::store_droplet`]), checking the credentials that URI carries
//! as CC would check them. Two refusals are the simulator's own: a URI that is
//! not one of its CC upload routes (it forwards nowhere else), and a multipart
//! body — cc-uploader would wrap it again and CC would store the multipart
//! envelope as the droplet, a droplet nothing can run.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::Sim;
use super::blobs::{DropletUpload, check_build_takes_droplet, store_droplet};
use crate::Error;
use crate::model::{CC_DROPLET_UPLOAD_URI_KEY, CC_TIMEOUT_KEY};

/// How cc-uploader refuses: a status and plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status.
    pub status: StatusCode,
    /// The text body.
    pub text: String,
}

impl Refusal {
    fn new(status: StatusCode, text: impl Into<String>) -> Self {
        Refusal {
            status,
            text: text.into(),
        }
    }

    /// CC refused the forwarded upload: cc-uploader answers CC's status with
    /// `status code: N\n<CC's body>`.
    fn upstream(error: &Error) -> Self {
        let (status, body) = super::response::cc_answer(error);
        let body = serde_json::to_string(&body).unwrap_or_default();
        Refusal::new(status, format!("status code: {}\n{body}", status.as_u16()))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.text,
        )
            .into_response()
    }
}

/// `POST /v1/droplet/{guid}?cc-droplet-upload-uri=…`.
pub async fn upload_droplet(
    State(sim): State<Arc<Sim>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match forward(&sim, query.as_deref(), &headers, body).await {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// What cc-uploader does with the request, in its order.
async fn forward(
    sim: &Sim,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), Refusal> {
    let target = upload_uri(query)?;
    let length = content_length(headers)?;
    refuse_multipart(headers)?;
    let upload = cc_route(&target)?;
    check_credentials(sim, &target)?;
    check_build_takes_droplet(sim, &upload.build_guid).map_err(|e| Refusal::upstream(&e))?;
    if length > super::MAX_UPLOAD_BYTES as u64 {
        return Err(Refusal::upstream(&Error::too_large(
            super::MAX_UPLOAD_BYTES,
        )));
    }
    let droplet = axum::body::to_bytes(body, super::MAX_UPLOAD_BYTES)
        .await
        .map_err(|e| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the droplet failed: {e}"),
            )
        })?;
    store_droplet(sim, upload, droplet)
        .await
        .map(drop)
        .map_err(|e| Refusal::upstream(&e))
}

/// `cc-droplet-upload-uri` from the query, parsed; `timeout`, when given,
/// must be an integer. Both refusals are cc-uploader's `400`.
pub fn upload_uri(query: Option<&str>) -> Result<Url, Refusal> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let value = |key: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    };
    let text = value(CC_DROPLET_UPLOAD_URI_KEY).ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("missing {CC_DROPLET_UPLOAD_URI_KEY} parameter"),
        )
    })?;
    let target = Url::parse(text)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("parse {text:?}: {e}")))?;
    if let Some(timeout) = value(CC_TIMEOUT_KEY)
        && timeout.parse::<i64>().is_err()
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("strconv.Atoi: parsing {timeout:?}: invalid syntax"),
        ));
    }
    Ok(target)
}

/// cc-uploader forwards only a body of known, positive length.
pub fn content_length(headers: &HeaderMap) -> Result<u64, Refusal> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .filter(|length| *length > 0)
        .ok_or_else(|| Refusal::new(StatusCode::LENGTH_REQUIRED, "Missing Content Length"))
}

fn refuse_multipart(headers: &HeaderMap) -> Result<(), Refusal> {
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("multipart/"));
    if multipart {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "cc-uploader takes the droplet as the raw body; this multipart body would \
             become the droplet itself (cc-sim refuses it)",
        ));
    }
    Ok(())
}

/// The build and CC route `target` names: one of the simulator's own droplet
/// upload routes, or cc-uploader's upload fails (`500`, as when CC cannot be
/// reached).
fn cc_route(target: &Url) -> Result<DropletUpload, Refusal> {
    let segments: Vec<&str> = target
        .path_segments()
        .map(|segments| segments.collect())
        .unwrap_or_default();
    match segments.as_slice() {
        ["staging", "v3", "droplets", guid, "upload"]
        | ["internal", "v4", "droplets", guid, "upload"]
            if !guid.is_empty() =>
        {
            Ok(DropletUpload {
                build_guid: (*guid).to_owned(),
                path: target.path().to_owned(),
                via: Some("cc-uploader"),
            })
        }
        _ => Err(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "cc-sim forwards droplets only to its own upload routes \
                 (/staging/v3/droplets/{{guid}}/upload, /internal/v4/droplets/{{guid}}/upload), not to {}",
                crate::client::urls::redact(target)
            ),
        )),
    }
}

/// The credentials in `target` are what CC checks on the forwarded upload.
fn check_credentials(sim: &Sim, target: &Url) -> Result<(), Refusal> {
    let mut expected = target.clone();
    let _ = expected.set_username(&sim.username);
    let _ = expected.set_password(Some(&sim.password));
    if expected.username() == target.username() && expected.password() == target.password() {
        Ok(())
    } else {
        Err(Refusal::upstream(&Error::not_authenticated()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_uri_is_required_and_parsed_like_cc_uploader() {
        let missing = upload_uri(None).unwrap_err();
        assert_eq!(missing.status, StatusCode::BAD_REQUEST);
        assert_eq!(missing.text, "missing cc-droplet-upload-uri parameter");
        let empty = upload_uri(Some("cc-droplet-upload-uri=")).unwrap_err();
        assert_eq!(empty.text, "missing cc-droplet-upload-uri parameter");
        let bad = upload_uri(Some("cc-droplet-upload-uri=not%20a%20url")).unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let timeout =
            upload_uri(Some("cc-droplet-upload-uri=http://cc/x&timeout=soon")).unwrap_err();
        assert_eq!(
            timeout.text,
            "strconv.Atoi: parsing \"soon\": invalid syntax"
        );
        let raw = upload_uri(Some(
            "cc-droplet-upload-uri=https://cc:9023/internal/v4/droplets/b/upload&timeout=900",
        ))
        .unwrap();
        assert_eq!(raw.path(), "/internal/v4/droplets/b/upload");
    }

    #[test]
    fn a_body_needs_a_positive_content_length() {
        let mut headers = HeaderMap::new();
        let refusal = content_length(&headers).unwrap_err();
        assert_eq!(refusal.status, StatusCode::LENGTH_REQUIRED);
        assert_eq!(refusal.text, "Missing Content Length");
        headers.insert(header::CONTENT_LENGTH, "0".parse().unwrap());
        assert!(content_length(&headers).is_err());
        headers.insert(header::CONTENT_LENGTH, "12".parse().unwrap());
        assert_eq!(content_length(&headers).unwrap(), 12);
    }

    #[test]
    fn only_the_simulators_upload_routes_are_forwarded_to() {
        let url = |text: &str| Url::parse(text).unwrap();
        let upload = cc_route(&url("http://u:p@cc/internal/v4/droplets/b-1/upload")).unwrap();
        assert_eq!(upload.build_guid, "b-1");
        assert_eq!(upload.via, Some("cc-uploader"));
        assert!(cc_route(&url("http://cc/staging/v3/droplets/b-1/upload")).is_ok());
        let elsewhere = cc_route(&url("http://u:secret@cc/v2/apps/a/droplet/upload")).unwrap_err();
        assert_eq!(elsewhere.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!elsewhere.text.contains("secret"), "{}", elsewhere.text);
    }

    #[test]
    fn cc_refusals_come_back_as_cc_uploader_relays_them() {
        let refusal = Refusal::upstream(&Error::not_found("build b-1 not found"));
        assert_eq!(refusal.status, StatusCode::NOT_FOUND);
        let (first, body) = refusal.text.split_once('\n').unwrap();
        assert_eq!(first, "status code: 404");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error_code"], "CF-ResourceNotFound");
    }
}
