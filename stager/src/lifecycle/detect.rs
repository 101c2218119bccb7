//! Detection: each buildpack's `bin/detect <build_dir>` in order; the first to
//! exit 0 stages the app. What it prints is the detected buildpack's name.

use cc::model::StagingError;

use super::exec::{self, Script};
use super::{Buildpack, Layout, failure, ids};

/// Finds the first buildpack whose `bin/detect` accepts the app. Returns it and
/// its (trimmed) output.
pub async fn detect(
    layout: &Layout,
    buildpacks: &[Buildpack],
    env: &[(String, String)],
) -> Result<(Buildpack, String), StagingError> {
    let mut tried = Vec::new();
    for buildpack in buildpacks {
        if !buildpack.has("detect") {
            tried.push(format!("{} (no bin/detect)", buildpack.name));
            continue;
        }
        let script = Script {
            path: buildpack.script("detect"),
            args: vec![layout.build_dir.clone().into()],
            cwd: layout.build_dir.clone(),
            env: env.to_vec(),
        };
        let ran = exec::run(&script, true).await.map_err(|e| {
            failure(
                ids::STAGING,
                format!("cannot run bin/detect of buildpack {}: {e}", buildpack.name),
            )
        })?;
        if ran.status.success() {
            let name = ran.stdout.trim().to_owned();
            crate::output::say(format!(
                "-----> Buildpack {} detected the app{}",
                buildpack.name,
                if name.is_empty() || name == buildpack.name {
                    String::new()
                } else {
                    format!(" ({name})")
                }
            ));
            return Ok((buildpack.clone(), name));
        }
        tried.push(buildpack.name.clone());
    }
    Err(failure(
        ids::NO_APP_DETECTED,
        format!(
            "no buildpack detected the app (tried: {})",
            tried.join(", ")
        ),
    ))
}
