//! `cube stage build`: the buildpack lifecycle over the downloaded app and
//! buildpacks; writes `droplet.tgz` and `result.json` for `upload`.

use std::collections::BTreeMap;

use cc::model::{LifecycleMetadata, StagingError, StagingResult};

use super::{Outcome, StepConfig, perform, workspace_failure};
use crate::Result;
use crate::lifecycle::{self, Buildpack};

/// Runs the step.
pub async fn run(step: &StepConfig) -> Result<()> {
    perform(step, "build", async {
        build(step).await.map(|_| Outcome::Continue)
    })
    .await
}

pub(crate) async fn build(step: &StepConfig) -> std::result::Result<StagingResult, StagingError> {
    let manifest = step.workspace.buildpacks_manifest();
    let text = std::fs::read(&manifest).map_err(|e| {
        workspace_failure(
            &format!(
                "cannot read {} (did `cube stage download` run?)",
                manifest.display()
            ),
            e,
        )
    })?;
    let buildpacks: Vec<Buildpack> = serde_json::from_slice(&text)
        .map_err(|e| workspace_failure(&format!("bad {}", manifest.display()), e))?;
    let layout = step.workspace.layout();
    let staged = lifecycle::stage(&layout, &buildpacks, &lifecycle::buildpack_env()).await?;
    let droplet = lifecycle::droplet::write(&layout, &staged, &step.workspace.droplet())
        .map_err(|e| workspace_failure("cannot write the droplet", e))?;
    crate::output::say(format!(
        "-----> Droplet: {} bytes, sha256 {}",
        droplet.size, droplet.sha256
    ));
    let result = StagingResult {
        lifecycle_type: "buildpack".into(),
        lifecycle_metadata: LifecycleMetadata {
            buildpack_key: Some(staged.buildpack_key.clone()),
            detected_buildpack: Some(staged.detected_buildpack.clone()),
            buildpacks: staged.buildpacks.clone(),
            docker_image: None,
        },
        process_types: staged.process_types.clone(),
        execution_metadata: String::new(),
        extra: BTreeMap::new(),
    };
    let json = serde_json::to_vec_pretty(&result)
        .map_err(|e| workspace_failure("cannot encode result.json", e))?;
    std::fs::write(step.workspace.result(), json)
        .map_err(|e| workspace_failure("cannot write result.json", e))?;
    Ok(result)
}
