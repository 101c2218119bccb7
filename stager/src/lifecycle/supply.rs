//! Which scripts run, in which order ([`plan`], pure), and running one of them.
//! Every buildpack but the last must supply; the last finalizes (after its own
//! supply, if it has one) or, without `bin/finalize`, runs the legacy
//! `bin/compile`.

use cc::model::StagingError;

use super::exec::{self, Script};
use super::{Buildpack, Layout, failure, finalize, ids};

/// One script run of the lifecycle, by buildpack index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `bin/supply` of a buildpack.
    Supply(usize),
    /// `bin/finalize` of the last buildpack.
    Finalize(usize),
    /// Legacy `bin/compile` of the last (only) buildpack.
    Compile(usize),
}

/// The scripts to run for `buildpacks` (already selected: detected or named).
pub fn plan(buildpacks: &[Buildpack]) -> Result<Vec<Step>, StagingError> {
    let Some(last) = buildpacks.len().checked_sub(1) else {
        return Err(failure(ids::STAGING, "no buildpack selected"));
    };
    let mut steps = Vec::new();
    for (index, buildpack) in buildpacks.iter().enumerate() {
        if index < last {
            if !buildpack.has("supply") {
                return Err(failure(
                    ids::COMPILE_FAILED,
                    format!(
                        "buildpack {} cannot be used before the last one: it has no bin/supply (it is not a multi-buildpack)",
                        buildpack.name
                    ),
                ));
            }
            steps.push(Step::Supply(index));
        } else if buildpack.has("finalize") {
            if buildpack.has("supply") {
                steps.push(Step::Supply(index));
            }
            steps.push(Step::Finalize(index));
        } else if buildpack.has("compile") {
            if last > 0 {
                return Err(failure(
                    ids::COMPILE_FAILED,
                    format!(
                        "buildpack {} is the last of several but has no bin/finalize (bin/compile only works alone)",
                        buildpack.name
                    ),
                ));
            }
            steps.push(Step::Compile(index));
        } else {
            return Err(failure(
                ids::COMPILE_FAILED,
                format!(
                    "buildpack {} has neither bin/finalize nor bin/compile",
                    buildpack.name
                ),
            ));
        }
    }
    Ok(steps)
}

/// Runs one step; a non-zero exit is `BuildpackCompileFailed` naming the
/// buildpack, the script and the exit code.
pub async fn run_step(
    layout: &Layout,
    buildpacks: &[Buildpack],
    step: Step,
    env: &[(String, String)],
) -> Result<(), StagingError> {
    let (index, script_name) = match step {
        Step::Supply(i) => (i, "supply"),
        Step::Finalize(i) => (i, "finalize"),
        Step::Compile(i) => (i, "compile"),
    };
    let buildpack = buildpacks
        .get(index)
        .ok_or_else(|| failure(ids::STAGING, format!("no buildpack #{index}")))?;
    let deps_index = layout.deps_dir.join(index.to_string());
    std::fs::create_dir_all(&deps_index).map_err(|e| {
        failure(
            ids::STAGING,
            format!("cannot create {}: {e}", deps_index.display()),
        )
    })?;
    let args = match step {
        Step::Supply(_) => vec![
            layout.build_dir.clone().into(),
            layout.cache_dir.clone().into(),
            layout.deps_dir.clone().into(),
            index.to_string().into(),
        ],
        Step::Finalize(_) => finalize::finalize_args(layout, index),
        Step::Compile(_) => finalize::compile_args(layout),
    };
    crate::output::say(format!(
        "-----> Running {script_name} of buildpack {}",
        buildpack.name
    ));
    let script = Script {
        path: buildpack.script(script_name),
        args,
        cwd: layout.build_dir.clone(),
        env: env.to_vec(),
    };
    let ran = exec::run(&script, false).await.map_err(|e| {
        failure(
            ids::COMPILE_FAILED,
            format!(
                "cannot run bin/{script_name} of buildpack {}: {e}",
                buildpack.name
            ),
        )
    })?;
    if !ran.status.success() {
        return Err(failure(
            ids::COMPILE_FAILED,
            format!(
                "buildpack {} failed: bin/{script_name} exited with status {}",
                buildpack.name,
                ran.code()
            ),
        ));
    }
    Ok(())
}

/// Copies `deps/<i>/profile.d/*` (what supply buildpacks leave for start-up)
/// into the droplet's `profile.d/` as `<i>_<name>`, as CF's builder does.
pub fn collect_profile_scripts(layout: &Layout, count: usize) -> std::io::Result<()> {
    for index in 0..count {
        let dir = layout.deps_dir.join(index.to_string()).join("profile.d");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let name = format!("{index}_{}", entry.file_name().to_string_lossy());
                std::fs::copy(entry.path(), layout.profile_dir.join(name))?;
            }
        }
    }
    Ok(())
}
