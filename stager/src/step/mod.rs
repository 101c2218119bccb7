//! The staging task's steps, each a `cube stage …` subcommand so one binary is
//! the staging image's entrypoint:
//!
//! - [`download`]: app bits and buildpacks (zips) from their URLs;
//! - [`build`]: the buildpack lifecycle, writing `droplet.tgz` and `result.json`;
//! - [`upload`]: the droplet to CC — the raw bytes through cc-uploader when
//!   CC handed a cc-uploader URI, else multipart to CC, polling its job — and
//!   to the Registry, then the result to St8ge;
//! - [`run`]: all three, within the staging timeout (the local backend's task).
//!
//! A step that fails reports `{error}` to St8ge, leaves a `staging-failed`
//! marker in the workspace (later steps then do nothing) and exits 0, so the
//! scheduler's own "task failed" does not report a second time. Only a step
//! that cannot report exits non-zero; then St8ge reports from OPI's callback.

pub mod build;
pub mod download;
pub mod run;
pub mod upload;

use std::path::{Path, PathBuf};

use cc::model::{StagingCompletion, StagingError};
use reqwest::Url;

use crate::lifecycle::{self, failure, ids};
use crate::output;
use crate::report::Reporter;
use crate::{Error, Result};

/// The workspace the steps share (the task's scratch dir, or a K8s volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// A workspace at `root`, made absolute (buildpack scripts run in the
    /// build dir, so relative paths would point elsewhere).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        Self { root }
    }

    /// Its root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directories of the lifecycle.
    pub fn layout(&self) -> lifecycle::Layout {
        lifecycle::Layout::new(&self.root)
    }

    /// The downloaded buildpacks, as `download` recorded them.
    pub fn buildpacks_manifest(&self) -> PathBuf {
        self.root.join("buildpacks.json")
    }

    /// The droplet `build` writes.
    pub fn droplet(&self) -> PathBuf {
        self.root.join("droplet.tgz")
    }

    /// The staging result `build` writes for `upload`.
    pub fn result(&self) -> PathBuf {
        self.root.join("result.json")
    }

    fn marker(&self) -> PathBuf {
        self.root.join("staging-failed")
    }

    /// Whether an earlier step failed (and reported it).
    pub fn failed_before(&self) -> bool {
        self.marker().exists()
    }
}

/// Where a step reports.
#[derive(Debug, Clone)]
pub struct StepConfig {
    /// The workspace.
    pub workspace: Workspace,
    /// St8ge's completion URL; `None` (running a step by hand) prints the outcome.
    pub completion_url: Option<Url>,
    /// St8ge's log URL the step's output is also sent to ([`crate::output`]).
    pub logs_url: Option<Url>,
}

/// A step's outcome: nothing to report yet, a result for CC, or a failure.
pub(crate) enum Outcome {
    /// Done; a later step reports.
    Continue,
    /// Staging succeeded.
    Staged(Box<cc::model::StagingResult>),
}

/// Runs `body` as a step: skips it after an earlier failure, reports a result
/// or failure, and writes the failure marker. Errors only when reporting
/// failed (or, without a completion URL, when staging failed).
pub(crate) async fn perform<F>(config: &StepConfig, name: &str, body: F) -> Result<()>
where
    F: std::future::Future<Output = std::result::Result<Outcome, StagingError>>,
{
    // The output is shipped (and flushed) before the outcome is reported, so
    // St8ge's log is complete when it hears that staging is done.
    let outcome: Result<Option<StagingCompletion>> = output::ship(config.logs_url.clone(), async {
        if config.workspace.failed_before() {
            output::say(format!("-----> Skipping {name}: an earlier step failed"));
            return Ok(None);
        }
        match body.await {
            Ok(Outcome::Continue) => Ok(None),
            Ok(Outcome::Staged(result)) => Ok(Some(StagingCompletion::Succeeded(*result))),
            Err(error) => {
                output::warn(format!(
                    "-----> Staging failed ({}): {}",
                    error.id, error.message
                ));
                std::fs::create_dir_all(config.workspace.root())
                    .and_then(|()| std::fs::write(config.workspace.marker(), &error.id))
                    .map_err(Error::io("write", config.workspace.marker()))?;
                Ok(Some(StagingCompletion::Failed(error)))
            }
        }
    })
    .await;
    let Some(completion) = outcome? else {
        return Ok(());
    };
    match &config.completion_url {
        Some(url) => Reporter::new(url.clone())?.report(&completion).await,
        None => match completion {
            StagingCompletion::Succeeded(result) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&result).unwrap_or_default()
                );
                Ok(())
            }
            StagingCompletion::Failed(error) => Err(Error::Upstream(format!(
                "staging failed ({}): {}",
                error.id, error.message
            ))),
        },
    }
}

/// A staging failure for I/O in the workspace.
pub(crate) fn workspace_failure(what: &str, error: impl std::fmt::Display) -> StagingError {
    failure(ids::STAGING, format!("{what}: {error}"))
}

/// A CC client for absolute URLs that carry their own credentials (no
/// default Basic auth).
pub(crate) fn cc_client(url: &str) -> std::result::Result<cc::Client, StagingError> {
    let mut config = cc::ClientConfig::new(url);
    config.username = None;
    config.password = None;
    config.request_timeout = std::time::Duration::from_secs(600);
    config.access = cube_runtime::access::ClientAccess::from_env()
        .map_err(|e| failure(ids::STAGING, e.to_string()))?;
    cc::Client::new(config).map_err(|e| failure(ids::STAGING, e.to_string()))
}
