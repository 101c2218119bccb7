//! `cube stage upload`: the droplet to CC's `droplet_upload_uri` and to the
//! Registry's droplet import, then the staging result to St8ge.
//!
//! How the droplet reaches CC depends on the URI CC handed out
//! ([`cc::model::DropletUploadTarget`]): an Eirini-era CC hands a cc-uploader
//! URI (`/v1/droplet/{guid}?cc-droplet-upload-uri=…`), which takes the raw
//! bytes with their `Content-Length` and answers `201` once CC stored them;
//! CC's own upload endpoint takes multipart `upload[droplet]` and answers a job
//! this step polls until it finished.

use std::time::Duration;

use cc::model::{DropletUploadTarget, StagingError, StagingResult};
use reqwest::Url;

use super::{Outcome, StepConfig, cc_client, perform, workspace_failure};
use crate::Result;
use crate::lifecycle::{failure, ids};

/// Where the droplet goes.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// CC's `droplet_upload_uri` (credentials in the URL): CC's own upload
    /// endpoint or a cc-uploader URI.
    pub droplet_upload_url: String,
    /// The Registry (`http://127.0.0.1:8087`); `None` skips the import.
    pub registry_url: Option<Url>,
    /// The image's droplet guid: `cloudfoundry/<guid>:<sha256>`.
    pub droplet_guid: String,
    /// Time between polls of CC's upload job (CC's own endpoint only).
    pub poll_interval: Duration,
    /// Most polls of CC's upload job.
    pub max_polls: u32,
}

/// Runs the step.
pub async fn run(step: &StepConfig, config: &UploadConfig) -> Result<()> {
    perform(step, "upload", async {
        upload(step, config)
            .await
            .map(|result| Outcome::Staged(Box::new(result)))
    })
    .await
}

pub(crate) async fn upload(
    step: &StepConfig,
    config: &UploadConfig,
) -> std::result::Result<StagingResult, StagingError> {
    let path = step.workspace.droplet();
    let droplet = std::fs::read(&path)
        .map_err(|e| workspace_failure(&format!("cannot read {}", path.display()), e))?;
    let result_path = step.workspace.result();
    let result: StagingResult = std::fs::read(&result_path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        .map_err(|e| workspace_failure(&format!("cannot read {}", result_path.display()), e))?;
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&droplet))
    };
    let droplet = bytes::Bytes::from(droplet);

    deliver(config, droplet.clone()).await?;
    if let Some(registry) = &config.registry_url {
        crate::output::say("-----> Importing the droplet into the Registry");
        import(registry, &config.droplet_guid, &sha256, droplet).await?;
    }
    crate::output::say("-----> Staging complete");
    Ok(result)
}

/// Sends the droplet to CC as its `droplet_upload_uri` takes it; a failure
/// names the receiver and why.
async fn deliver(
    config: &UploadConfig,
    droplet: bytes::Bytes,
) -> std::result::Result<(), StagingError> {
    let receiver =
        match Url::parse(&config.droplet_upload_url).map(|url| DropletUploadTarget::of(&url)) {
            Ok(DropletUploadTarget::CcUploader) => "through cc-uploader",
            _ => "to Cloud Controller",
        };
    crate::output::say(format!("-----> Uploading the droplet {receiver}"));
    let cc = cc_client(&config.droplet_upload_url)?;
    cc.deliver_droplet(
        &config.droplet_upload_url,
        droplet,
        config.poll_interval,
        config.max_polls,
    )
    .await
    .map_err(|e| {
        failure(
            ids::STAGING,
            format!("uploading the droplet {receiver} failed: {e}"),
        )
    })
}

/// `POST {registry}/v2/cloudfoundry/<guid>/droplets?hash=<sha256>` with the `.tgz`.
async fn import(
    registry: &Url,
    droplet_guid: &str,
    sha256: &str,
    droplet: bytes::Bytes,
) -> std::result::Result<(), StagingError> {
    let mut url = registry.clone();
    let shown = crate::report::redact(registry);
    let fail = |message: String| {
        failure(
            ids::STAGING,
            format!("importing the droplet into the Registry at {shown} failed: {message}"),
        )
    };
    url.path_segments_mut()
        .map_err(|()| fail("the URL cannot take a path".into()))?
        .pop_if_empty()
        .extend(["v2", "cloudfoundry", droplet_guid, "droplets"]);
    url.query_pairs_mut().clear().append_pair("hash", sha256);
    let user = url.username().to_owned();
    let password = url.password().map(str::to_owned);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    // The Registry is a Cube service: the task's token and CA apply.
    let access = cube_runtime::access::ClientAccess::from_env().map_err(|e| fail(e.to_string()))?;
    let http = access
        .builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/gzip")
        .body(droplet);
    if !user.is_empty() {
        request = request.basic_auth(user, password);
    }
    let response = request.send().await.map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(fail(format!("answered {status}: {body}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
