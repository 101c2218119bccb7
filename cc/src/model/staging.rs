//! Staging: the request CC sends to the stager (`POST {stager}/stage/{staging_guid}`,
//! Eirini's `cf.StagingRequest`) and the completion the stager sends back
//! (`POST /internal/v3/staging/{guid}/build_completed`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::EnvironmentVariable;

/// What CC asks a stager to stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagingRequest {
    /// The app's guid.
    pub app_guid: String,
    /// The app's name.
    pub app_name: String,
    /// The staging guid (also in the path); an Eirini-era CC sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_guid: Option<String>,
    /// The organization's name.
    #[serde(default)]
    pub org_name: String,
    /// The organization's guid.
    #[serde(default)]
    pub org_guid: String,
    /// The space's name.
    #[serde(default)]
    pub space_name: String,
    /// The space's guid.
    #[serde(default)]
    pub space_guid: String,
    /// Where to POST the [`StagingCompletion`]; carries Basic credentials in its
    /// userinfo, as CC's callback URLs do.
    pub completion_callback: String,
    /// Staging environment.
    #[serde(default)]
    pub environment: Vec<EnvironmentVariable>,
    /// Buildpack or Docker staging.
    pub lifecycle: StagingLifecycle,
    /// Memory for the staging task in MB.
    pub memory_mb: u64,
    /// Disk for the staging task in MB.
    pub disk_mb: u64,
    /// CPU weight for the staging task.
    #[serde(default)]
    pub cpu_weight: u8,
}

/// Exactly one of the two lifecycles is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingLifecycle {
    /// Docker staging: inspect the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_lifecycle: Option<DockerStagingLifecycle>,
    /// Buildpack staging: build a droplet from app bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_lifecycle: Option<BuildpackStagingLifecycle>,
}

/// Docker staging parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerStagingLifecycle {
    /// The image reference.
    pub image: String,
    /// Registry user for a private image.
    #[serde(default)]
    pub registry_username: String,
    /// Registry password for a private image.
    #[serde(default)]
    pub registry_password: String,
}

/// Buildpack staging parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackStagingLifecycle {
    /// Where to download the app bits (a zip).
    pub app_bits_download_uri: String,
    /// Where to upload the droplet: a cc-uploader URI
    /// (`/v1/droplet/{guid}?cc-droplet-upload-uri=…`, raw body) from an
    /// Eirini-era CC, or CC's own endpoint (multipart `upload[droplet]`); see
    /// [`super::DropletUploadTarget`].
    pub droplet_upload_uri: String,
    /// Buildpacks to try, in order.
    pub buildpacks: Vec<Buildpack>,
    /// Stack to stage on (an Eirini-era CC does not send it; the stager's
    /// default applies).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stack: String,
    /// Where to download the buildpack cache, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_cache_download_uri: Option<String>,
    /// Where to upload the buildpack cache, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_cache_upload_uri: Option<String>,
    /// Checksum of the buildpack cache CC holds, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_cache_checksum: Option<String>,
    /// Algorithm of `buildpack_cache_checksum` (`sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_cache_checksum_algorithm: Option<String>,
}

/// One buildpack of a staging request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buildpack {
    /// Display name (`nodejs_buildpack`).
    pub name: String,
    /// Blobstore key, or the URL for a custom buildpack.
    pub key: String,
    /// Where to download it.
    pub url: String,
    /// Skip `bin/detect` (the user named this buildpack).
    #[serde(default)]
    pub skip_detect: bool,
}

/// The outcome of staging, as the stager reports it to CC.
///
/// On the wire it is `{"result": {...}}` or `{"error": {"id", "message"}}`. CC also
/// accepts a raw task callback `{"failed", "failure_reason", "result": "<json>"}`;
/// deserialising accepts both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub enum StagingCompletion {
    /// Staging produced a droplet.
    #[serde(rename = "result")]
    Succeeded(StagingResult),
    /// Staging failed.
    #[serde(rename = "error")]
    Failed(StagingError),
}

impl TryFrom<serde_json::Value> for StagingCompletion {
    type Error = String;

    fn try_from(value: serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(mut map) = value else {
            return Err("staging completion must be a JSON object".into());
        };
        // The raw task-callback form CC's controller also accepts.
        if let Some(failed) = map.get("failed") {
            let failed = failed.as_bool().ok_or("field `failed` must be a boolean")?;
            if failed {
                let reason = map
                    .get("failure_reason")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                return Ok(StagingCompletion::Failed(StagingError::sanitized(reason)));
            }
            let text = map
                .get("result")
                .and_then(|v| v.as_str())
                .ok_or("field `result` must be a JSON string when `failed` is false")?;
            let result = serde_json::from_str(text).map_err(|e| format!("field `result`: {e}"))?;
            return Ok(StagingCompletion::Succeeded(result));
        }
        if let Some(error) = map.remove("error") {
            let error = serde_json::from_value(error).map_err(|e| format!("field `error`: {e}"))?;
            return Ok(StagingCompletion::Failed(error));
        }
        if let Some(result) = map.remove("result") {
            let result =
                serde_json::from_value(result).map_err(|e| format!("field `result`: {e}"))?;
            return Ok(StagingCompletion::Succeeded(result));
        }
        Err("staging completion needs `result` or `error`".into())
    }
}

/// A successful staging result (`buildpackapplifecycle.StagingResult`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagingResult {
    /// `buildpack` or `docker`.
    pub lifecycle_type: String,
    /// What staging found out.
    #[serde(default)]
    pub lifecycle_metadata: LifecycleMetadata,
    /// Start commands by process type; `web` is the one CC runs.
    #[serde(default)]
    pub process_types: BTreeMap<String, String>,
    /// Opaque to CC; for Docker apps the image config as JSON text.
    #[serde(default)]
    pub execution_metadata: String,
    /// Fields this type does not model (sidecars, …), kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `lifecycle_metadata` of a staging result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleMetadata {
    /// Key of the buildpack that staged the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_key: Option<String>,
    /// What `bin/detect` printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_buildpack: Option<String>,
    /// Every buildpack that took part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buildpacks: Vec<DetectedBuildpack>,
    /// The staged image (Docker apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image: Option<String>,
}

/// One buildpack in a staging result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectedBuildpack {
    /// Blobstore key.
    #[serde(default)]
    pub key: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Buildpack version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A staging failure (`{"id": "StagingError", "message": "..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingError {
    /// `StagingError`, `InsufficientResources`, `NoCompatibleCell`,
    /// `BuildpackCompileFailed`, …
    pub id: String,
    /// Human-readable reason.
    pub message: String,
}

impl StagingError {
    /// A `StagingError` with this message.
    pub fn staging(message: impl Into<String>) -> Self {
        StagingError {
            id: "StagingError".into(),
            message: message.into(),
        }
    }

    /// CC's `FailureReasonSanitizer`: known task failure reasons get their own id;
    /// anything else becomes a plain "staging failed" so internals do not leak.
    pub fn sanitized(reason: &str) -> Self {
        const FAILED: &str = "staging failed";
        let (id, message) = if reason.ends_with("222") {
            ("NoAppDetectedError", FAILED)
        } else if reason.ends_with("223") {
            ("BuildpackCompileFailed", FAILED)
        } else if reason.ends_with("224") {
            ("BuildpackReleaseFailed", FAILED)
        } else if reason.starts_with("insufficient resources") {
            ("InsufficientResources", reason)
        } else if reason.starts_with("found no compatible cell") {
            ("NoCompatibleCell", reason)
        } else if reason == "unable to communicate to compatible cells" {
            ("CellCommunicationError", reason)
        } else if matches!(
            reason,
            "missing docker image download url"
                | "missing docker registry"
                | "missing docker credentials"
                | "invalid docker registry address"
        ) {
            ("StagingError", reason)
        } else {
            ("StagingError", FAILED)
        };
        StagingError {
            id: id.into(),
            message: message.into(),
        }
    }
}
