//! Builds: staging attempts, started for an app and failed when the stager
//! cannot take them. How the stager's outcome lands is in `staging_completion`.

use serde::{Deserialize, Serialize};

use super::{Lifecycle, State};
use crate::guid::new_guid;
use crate::model::StagingError;
use crate::{Error, Result};

/// State of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BuildState {
    /// Sent to the stager; waiting for its callback.
    Staging,
    /// Done; the app has its droplet.
    Staged,
    /// Failed; `error` says why.
    Failed,
}

/// One staging attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// Build guid = staging guid.
    pub guid: String,
    /// The app.
    pub app_guid: String,
    /// State.
    pub state: BuildState,
    /// Why it failed.
    pub error: Option<StagingError>,
    /// `buildpack` or `docker`.
    pub lifecycle_type: String,
    /// The droplet uploaded for this build, if any: (sha256, size).
    pub uploaded_droplet: Option<(String, u64)>,
    /// When it started.
    pub created_at_micros: i64,
    /// Start the app when staging succeeds.
    pub start_when_staged: bool,
    /// A failure arrived after the build had STAGED (CC applies it: the
    /// build is FAILED; see [`State::complete_build`]).
    #[serde(default)]
    pub failed_after_staged: bool,
}

impl State {
    /// Starts a build for `name`; returns it. Buildpack apps need app bits.
    pub fn start_build(&mut self, name: &str, start: bool, now_micros: i64) -> Result<Build> {
        let id = self.app_id_by_name(name)?;
        let latest = self.apps.get(&id).and_then(|app| app.latest_build.clone());
        if let Some(guid) = latest
            && let Some(build) = self.builds.get(&guid)
            && build.state == BuildState::Staging
        {
            return Err(Error::conflict(format!(
                "app `{name}` is already staging (build {guid})"
            )));
        }
        let app = self.app_mut(id)?;
        let lifecycle_type = match &app.lifecycle {
            Lifecycle::Docker { .. } => "docker",
            Lifecycle::Buildpack { .. } => {
                if app.package.is_none() {
                    return Err(Error::unprocessable(format!(
                        "app `{name}` has no app bits: upload them before staging"
                    )));
                }
                "buildpack"
            }
        };
        let build = Build {
            guid: new_guid(),
            app_guid: app.guid.clone(),
            state: BuildState::Staging,
            error: None,
            lifecycle_type: lifecycle_type.into(),
            uploaded_droplet: None,
            created_at_micros: now_micros,
            start_when_staged: start,
            failed_after_staged: false,
        };
        app.latest_build = Some(build.guid.clone());
        self.builds.insert(build.guid.clone(), build.clone());
        Ok(build)
    }

    /// Marks build `build_guid` failed (the stager could not be reached).
    pub fn fail_build(&mut self, build_guid: &str, error: StagingError) {
        if let Some(build) = self.builds.get_mut(build_guid)
            && build.state == BuildState::Staging
        {
            build.state = BuildState::Failed;
            build.error = Some(error);
        }
    }
}
