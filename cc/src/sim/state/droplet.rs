//! Droplets: what a build gives an app, the upload that brings one, and the
//! upload's job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Build, BuildState, State};
use crate::model::{StagingError, StagingResult};
use crate::{Error, Result};

/// The droplet an app runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Droplet {
    /// The build that produced it.
    pub guid: String,
    /// SHA-256 of the droplet `.tgz` (buildpack apps).
    pub hash: Option<String>,
    /// The image (Docker apps).
    pub docker_image: Option<String>,
    /// Start commands by process type.
    pub process_types: BTreeMap<String, String>,
    /// Staging's execution metadata.
    pub execution_metadata: String,
    /// What the buildpack called itself.
    pub detected_buildpack: Option<String>,
}

/// A droplet upload job (always processed synchronously, so finished or failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadJob {
    /// Job guid.
    pub guid: String,
    /// `finished` or `failed`.
    pub status: crate::model::JobStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was created.
    pub created_at_micros: i64,
}

impl State {
    /// Records a droplet uploaded for `build_guid`.
    pub fn droplet_uploaded(&mut self, build_guid: &str, sha256: String, size: u64) -> Result<()> {
        let build = self
            .builds
            .get_mut(build_guid)
            .ok_or_else(|| Error::not_found(format!("build {build_guid} not found")))?;
        if build.state != BuildState::Staging {
            return Err(Error::unprocessable(format!(
                "build {build_guid} is {:?}, not staging: the droplet upload is refused",
                build.state
            )));
        }
        build.uploaded_droplet = Some((sha256, size));
        Ok(())
    }
}

/// The droplet a successful staging result gives, or why it is unusable.
pub(super) fn droplet_for(
    build: &Build,
    result: StagingResult,
) -> std::result::Result<Droplet, StagingError> {
    if result.lifecycle_type != build.lifecycle_type {
        return Err(StagingError::staging(format!(
            "stager reported lifecycle `{}` for a {} build",
            result.lifecycle_type, build.lifecycle_type
        )));
    }
    let hash = match (&build.uploaded_droplet, build.lifecycle_type.as_str()) {
        (Some((sha256, _)), _) => Some(sha256.clone()),
        (None, "buildpack") => {
            return Err(StagingError::staging(
                "staging reported success but no droplet was uploaded",
            ));
        }
        (None, _) => None,
    };
    Ok(Droplet {
        guid: build.guid.clone(),
        hash,
        docker_image: result.lifecycle_metadata.docker_image.clone(),
        process_types: result.process_types,
        execution_metadata: result.execution_metadata,
        detected_buildpack: result.lifecycle_metadata.detected_buildpack,
    })
}
