//! `cube stage download`: the app bits into `app/` and each buildpack into
//! `buildpacks/<index>/`, recorded in `buildpacks.json` for `build`.

use opi::model::wire::Buildpack as WireBuildpack;

use super::{Outcome, StepConfig, cc_client, perform, workspace_failure};
use crate::Result;
use crate::lifecycle::{Buildpack, failure, ids};

/// What to download.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// The app bits (a zip).
    pub app_bits_url: String,
    /// Buildpacks in order (each a zip URL).
    pub buildpacks: Vec<WireBuildpack>,
}

/// Runs the step.
pub async fn run(step: &StepConfig, config: &DownloadConfig) -> Result<()> {
    perform(step, "download", async {
        download(step, config).await.map(|()| Outcome::Continue)
    })
    .await
}

pub(crate) async fn download(
    step: &StepConfig,
    config: &DownloadConfig,
) -> std::result::Result<(), cc::model::StagingError> {
    let layout = step.workspace.layout();
    crate::output::say("-----> Downloading app bits");
    let bits = fetch(&config.app_bits_url, "app bits").await?;
    let files = crate::zip::extract(&bits, &layout.build_dir, "app bits")
        .map_err(|e| failure(ids::STAGING, e.to_string()))?;
    crate::output::say(format!("       {files} files"));
    let mut buildpacks = Vec::new();
    for (index, wire) in config.buildpacks.iter().enumerate() {
        let what = format!("buildpack {}", wire.name);
        crate::output::say(format!("-----> Downloading {what}"));
        let bytes = fetch(&wire.url, &what).await?;
        let dir = layout.buildpacks_dir.join(index.to_string());
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| workspace_failure(&format!("cannot clear {}", dir.display()), e))?;
        }
        crate::zip::extract(&bytes, &dir, &what)
            .map_err(|e| failure(ids::STAGING, e.to_string()))?;
        buildpacks.push(Buildpack {
            name: wire.name.clone(),
            key: wire.key.clone(),
            dir: single_root(&dir),
            skip_detect: wire.skip_detect,
        });
    }
    let manifest = step.workspace.buildpacks_manifest();
    let json = serde_json::to_vec_pretty(&buildpacks)
        .map_err(|e| workspace_failure("cannot encode buildpacks.json", e))?;
    std::fs::write(&manifest, json)
        .map_err(|e| workspace_failure(&format!("cannot write {}", manifest.display()), e))?;
    Ok(())
}

/// GETs `url` (credentials in the URL are sent as Basic auth); a failure names
/// what and where (without credentials) and why.
async fn fetch(
    url: &str,
    what: &str,
) -> std::result::Result<bytes::Bytes, cc::model::StagingError> {
    let client = cc_client(url)?;
    client
        .download(url)
        .await
        .map_err(|e| failure(ids::STAGING, format!("downloading {what} failed: {e}")))
}

/// Zips made by `zip -r name.zip name/` hold one top directory; buildpacks
/// are found inside it.
fn single_root(dir: &std::path::Path) -> std::path::PathBuf {
    if dir.join("bin").is_dir() {
        return dir.to_owned();
    }
    let entries: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    match entries.as_slice() {
        [only] if only.path().join("bin").is_dir() => only.path(),
        _ => dir.to_owned(),
    }
}
