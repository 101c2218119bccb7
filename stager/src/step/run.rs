//! `cube stage run`: download, build and upload in one process, within the
//! staging timeout (`StagingTimeExpired` when it runs out; running buildpack
//! scripts are killed with their process groups).

use std::time::Duration;

use super::download::{self, DownloadConfig};
use super::upload::{self, UploadConfig};
use super::{Outcome, StepConfig, build, perform};
use crate::Result;
use crate::lifecycle::{failure, ids};

/// Everything the three steps need.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// What to download.
    pub download: DownloadConfig,
    /// Where the droplet goes.
    pub upload: UploadConfig,
    /// The most staging may take.
    pub timeout: Duration,
}

/// Runs all steps.
pub async fn run(step: &StepConfig, config: &RunConfig) -> Result<()> {
    perform(step, "staging", async {
        let all = async {
            download::download(step, &config.download).await?;
            build::build(step).await?;
            upload::upload(step, &config.upload).await
        };
        match tokio::time::timeout(config.timeout, all).await {
            Ok(result) => result.map(|r| Outcome::Staged(Box::new(r))),
            Err(_) => Err(failure(
                ids::TIME_EXPIRED,
                format!("staging took longer than {}", humanize(config.timeout)),
            )),
        }
    })
    .await
}

/// `15m`, `90s`, `1h` …
pub fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs == 0 {
        format!("{}ms", duration.as_millis())
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}
