//! `cube stage download|build|upload|run`: the steps of a staging task. St8ge
//! passes their settings as `CUBE_*` variables (each flag reads its own), so
//! the task's command line carries no credentials.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use stager::step::{self, StepConfig, Workspace};

/// Flags of `cube stage`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    step: Step,
}

#[derive(Debug, clap::Subcommand)]
enum Step {
    /// Download the app bits and buildpacks into the workspace.
    Download {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        download: DownloadArgs,
    },
    /// Run the buildpack lifecycle and write the droplet.
    Build {
        #[command(flatten)]
        common: Common,
    },
    /// Upload the droplet to Cloud Controller and the Registry; report the result.
    Upload {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        upload: UploadArgs,
    },
    /// Download, build and upload within the staging timeout.
    Run {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        download: DownloadArgs,
        #[command(flatten)]
        upload: UploadArgs,
        /// The most staging may take (e.g. 15m, 900s).
        #[arg(long, default_value = "15m", value_parser = super::duration::positive)]
        staging_timeout: Duration,
    },
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The staging workspace (app/, buildpacks/, deps/, droplet.tgz, …).
    #[arg(long, default_value = ".")]
    workspace: PathBuf,

    /// St8ge's URL to report the outcome to; without it the outcome is printed.
    #[arg(long)]
    completion_url: Option<reqwest::Url>,

    /// St8ge's URL to send the step's output to, as it is printed.
    #[arg(long)]
    logs_url: Option<reqwest::Url>,
}

#[derive(Debug, clap::Args)]
struct DownloadArgs {
    /// The app bits (a zip).
    #[arg(long)]
    app_bits_url: String,

    /// Buildpacks as JSON: `[{"name","key","url","skip_detect"}]`.
    #[arg(long, default_value = "[]")]
    buildpacks: String,
}

#[derive(Debug, clap::Args)]
struct UploadArgs {
    /// Cloud Controller's droplet upload URL.
    #[arg(long)]
    droplet_upload_url: String,

    /// The Registry to import the droplet into (empty: skip).
    #[arg(long, default_value = "")]
    registry_url: String,

    /// The guid of the droplet image (default: from the upload URL).
    #[arg(long, default_value = "")]
    droplet_guid: String,
}

impl Common {
    fn config(&self) -> StepConfig {
        StepConfig {
            workspace: Workspace::new(self.workspace.clone()),
            completion_url: self.completion_url.clone(),
            logs_url: self.logs_url.clone(),
        }
    }
}

impl DownloadArgs {
    fn config(&self) -> anyhow::Result<step::download::DownloadConfig> {
        let buildpacks = serde_json::from_str(&self.buildpacks)
            .context("--buildpacks must be a JSON list of {name, key, url, skip_detect}")?;
        Ok(step::download::DownloadConfig {
            app_bits_url: self.app_bits_url.clone(),
            buildpacks,
        })
    }
}

impl UploadArgs {
    fn config(&self) -> anyhow::Result<step::upload::UploadConfig> {
        let registry_url = if self.registry_url.is_empty() {
            None
        } else {
            Some(reqwest::Url::parse(&self.registry_url).context("--registry-url")?)
        };
        let droplet_guid = if self.droplet_guid.is_empty() {
            droplet_guid_from(&self.droplet_upload_url).with_context(|| {
                "--droplet-guid is empty and the upload URL names no droplet".to_owned()
            })?
        } else {
            self.droplet_guid.clone()
        };
        Ok(step::upload::UploadConfig {
            droplet_upload_url: self.droplet_upload_url.clone(),
            registry_url,
            droplet_guid,
            poll_interval: Duration::from_millis(500),
            max_polls: 1200,
        })
    }
}

/// The segment after `droplets` in an upload URL (`…/droplets/<guid>/upload`).
fn droplet_guid_from(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let mut segments = url.path_segments()?;
    segments.find(|s| *s == "droplets" || *s == "droplet")?;
    segments.next().filter(|s| !s.is_empty()).map(str::to_owned)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // SIGTERM (the scheduler cancelling the task) drops the running step, which
    // kills the buildpack scripts' process groups on its way out.
    let shutdown = cube_runtime::shutdown::on_signals();
    tokio::select! {
        outcome = run_step(args.step) => outcome,
        () = shutdown.cancelled() => Err(anyhow::anyhow!("staging step terminated by a signal")),
    }
}

async fn run_step(step: Step) -> anyhow::Result<()> {
    match step {
        Step::Download { common, download } => {
            step::download::run(&common.config(), &download.config()?).await?;
        }
        Step::Build { common } => step::build::run(&common.config()).await?,
        Step::Upload { common, upload } => {
            step::upload::run(&common.config(), &upload.config()?).await?;
        }
        Step::Run {
            common,
            download,
            upload,
            staging_timeout,
        } => {
            let config = step::run::RunConfig {
                download: download.config()?,
                upload: upload.config()?,
                timeout: staging_timeout,
            };
            step::run::run(&common.config(), &config).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn droplet_guid_from_upload_urls() {
        assert_eq!(
            droplet_guid_from("http://u:p@127.0.0.1:9022/staging/v3/droplets/b-1/upload")
                .as_deref(),
            Some("b-1")
        );
        assert_eq!(droplet_guid_from("http://x/other/upload"), None);
    }
}
