//! A staging outcome applied to its build and app, as CC's
//! `StagingCompletionHandler` applies it.

use super::droplet::droplet_for;
use super::{AppState, Build, BuildState, State};
use crate::model::{StagingError, StagingResult};
use crate::{Error, Result};

impl State {
    /// Applies a staging outcome to build `build_guid` and its app as CC's
    /// `StagingCompletionHandler` does. `start` is CC's `?start=true` (v2
    /// staging, which starts the app).
    ///
    /// A failure is applied whatever state the build is in — CC's
    /// `handle_failure` checks none — see [`State::fail_staging`]. A success
    /// for a build no longer staging is CC's 400 `InvalidRequest`; otherwise it
    /// sets the app's droplet (see [`State::stage_succeeded`]).
    pub fn complete_build(
        &mut self,
        build_guid: &str,
        outcome: std::result::Result<StagingResult, StagingError>,
        start: bool,
        now_micros: i64,
    ) -> Result<BuildState> {
        let build = self
            .builds
            .get(build_guid)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("Build not found: {build_guid}")))?;
        match outcome {
            Err(error) => Ok(self.fail_staging(&build, error, start, now_micros)),
            Ok(result) => self.stage_succeeded(&build, result, start, now_micros),
        }
    }

    /// A staging success: the app gets the droplet when this is its latest
    /// build, and starts with `start` (or the build's own start). A result
    /// that gives no usable droplet fails the build instead.
    fn stage_succeeded(
        &mut self,
        build: &Build,
        result: StagingResult,
        start: bool,
        now_micros: i64,
    ) -> Result<BuildState> {
        if build.state != BuildState::Staging {
            return Err(Error::api_invalid_request(format!(
                "The request is invalid: build {} is already {:?}",
                build.guid, build.state
            )));
        }
        let Some(app_id) = self.app_id_by_guid(&build.app_guid) else {
            let error = StagingError::staging("the app was deleted while staging");
            return Ok(self.fail_staging(build, error, false, now_micros));
        };
        let droplet = match droplet_for(build, result) {
            Ok(droplet) => droplet,
            // CC fails such a build without stopping the app.
            Err(error) => return Ok(self.fail_staging(build, error, false, now_micros)),
        };
        let app = self.app_mut(app_id)?;
        if app.latest_build.as_deref() == Some(build.guid.as_str()) {
            app.droplet = Some(droplet);
            if start || build.start_when_staged {
                app.state = AppState::Started;
            }
            if app.state == AppState::Started {
                app.new_version(now_micros);
            } else {
                app.touch(now_micros);
            }
        }
        if let Some(b) = self.builds.get_mut(&build.guid) {
            b.state = BuildState::Staged;
        }
        Ok(BuildState::Staged)
    }

    /// A staging failure, applied as CC's `handle_failure` does: the build
    /// becomes FAILED with `error` (`fail_to_stage!`), even after it STAGED;
    /// with `stop_app` (CC's `with_start`) the app is stopped (`V2::AppStop`);
    /// the app keeps its droplet. A failure after success is marked on the
    /// build (`failed_after_staged`) and recorded as a
    /// `staging_failed_after_staged` event, so a scheduler that reports both
    /// shows.
    fn fail_staging(
        &mut self,
        build: &Build,
        error: StagingError,
        stop_app: bool,
        now_micros: i64,
    ) -> BuildState {
        let after_staged = build.state == BuildState::Staged;
        if let Some(b) = self.builds.get_mut(&build.guid) {
            b.state = BuildState::Failed;
            b.error = Some(error.clone());
            b.failed_after_staged |= after_staged;
        }
        let stopped = stop_app && self.stop_app_by_guid(&build.app_guid, now_micros);
        if after_staged {
            let body = serde_json::json!({
                "build_guid": build.guid,
                "app_guid": build.app_guid,
                "error": error,
                "app_stopped": stopped,
            });
            let path = format!("/internal/v3/staging/{}/build_completed", build.guid);
            self.record_event("staging_failed_after_staged", &path, body, now_micros);
        }
        BuildState::Failed
    }
}
