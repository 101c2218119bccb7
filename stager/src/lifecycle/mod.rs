//! The Cloud Foundry buildpack lifecycle (what Diego's `builder` does), run on
//! a workspace directory:
//!
//! 1. **detect** — unless buildpacks were named (skip_detect), run each
//!    buildpack's `bin/detect <build_dir>` in order; the first to exit 0 wins
//!    and only it runs ([`detect`]);
//! 2. **supply** — `bin/supply <build_dir> <cache_dir> <deps_dir> <index>` for
//!    every buildpack but the last ([`supply`]);
//! 3. **finalize** — the last buildpack's `bin/supply` (if any) then
//!    `bin/finalize <build_dir> <cache_dir> <deps_dir> <index> <profile_dir>`, or
//!    the legacy `bin/compile <build_dir> <cache_dir>` when it has no finalize
//!    ([`finalize`]);
//! 4. **release** — `bin/release <build_dir>` prints YAML whose
//!    `default_process_types` give the start commands; a `Procfile` overrides
//!    them ([`release`]);
//! 5. **droplet** — `app/`, `deps/`, `profile.d/`, `tmp/`, `logs/` and
//!    `staging_info.yml` into a `.tgz` ([`droplet`]).
//!
//! Failures are CC's staging errors: `NoAppDetectedError`,
//! `BuildpackCompileFailed`, `BuildpackReleaseFailed`, each naming the
//! buildpack and the exit code.

pub mod detect;
pub mod droplet;
pub mod exec;
pub mod finalize;
pub mod release;
pub mod supply;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cc::model::{DetectedBuildpack, StagingError};
use serde::{Deserialize, Serialize};

/// CC's error ids of a staging failure.
pub mod ids {
    /// No buildpack detected the app.
    pub const NO_APP_DETECTED: &str = "NoAppDetectedError";
    /// supply, finalize or compile failed.
    pub const COMPILE_FAILED: &str = "BuildpackCompileFailed";
    /// release failed or printed something unusable.
    pub const RELEASE_FAILED: &str = "BuildpackReleaseFailed";
    /// Anything else (download, upload, internal).
    pub const STAGING: &str = "StagingError";
    /// Staging took longer than allowed.
    pub const TIME_EXPIRED: &str = "StagingTimeExpired";
}

/// A staging failure with CC's id.
pub fn failure(id: &str, message: impl Into<String>) -> StagingError {
    StagingError {
        id: id.to_owned(),
        message: message.into(),
    }
}

/// One buildpack, extracted into `dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buildpack {
    /// Display name (`python`).
    pub name: String,
    /// CC's key.
    #[serde(default)]
    pub key: String,
    /// Where its files are (with `bin/`).
    pub dir: PathBuf,
    /// The user named it: do not run `bin/detect`.
    #[serde(default)]
    pub skip_detect: bool,
}

impl Buildpack {
    /// `bin/<script>` of this buildpack.
    pub fn script(&self, script: &str) -> PathBuf {
        self.dir.join("bin").join(script)
    }

    /// Whether it has an executable `bin/<script>`.
    pub fn has(&self, script: &str) -> bool {
        exec::is_executable(&self.script(script))
    }

    /// The key CC knows it by (the name when no key was given).
    pub fn key_or_name(&self) -> &str {
        if self.key.is_empty() {
            &self.name
        } else {
            &self.key
        }
    }
}

/// The directories of one staging, all under a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The app (extracted bits); becomes the droplet's `app/`.
    pub build_dir: PathBuf,
    /// Buildpacks' cache.
    pub cache_dir: PathBuf,
    /// Supplied dependencies, one `<index>/` per buildpack; the droplet's `deps/`.
    pub deps_dir: PathBuf,
    /// Scripts sourced before the app starts; the droplet's `profile.d/`.
    pub profile_dir: PathBuf,
    /// Extracted buildpacks.
    pub buildpacks_dir: PathBuf,
}

impl Layout {
    /// The standard layout under `workspace`.
    pub fn new(workspace: &Path) -> Self {
        Self {
            build_dir: workspace.join("app"),
            cache_dir: workspace.join("cache"),
            deps_dir: workspace.join("deps"),
            profile_dir: workspace.join("profile.d"),
            buildpacks_dir: workspace.join("buildpacks"),
        }
    }

    /// Creates the directories the buildpacks write to.
    pub fn create(&self) -> std::io::Result<()> {
        for dir in [
            &self.build_dir,
            &self.cache_dir,
            &self.deps_dir,
            &self.profile_dir,
        ] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(())
    }
}

/// What staging produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// What detection printed (or the final buildpack's name).
    pub detected_buildpack: String,
    /// The final buildpack's key.
    pub buildpack_key: String,
    /// Every buildpack that ran, in order.
    pub buildpacks: Vec<DetectedBuildpack>,
    /// Start commands by process type.
    pub process_types: BTreeMap<String, String>,
}

impl Staged {
    /// The `web` command (empty when there is none).
    pub fn start_command(&self) -> &str {
        self.process_types.get("web").map_or("", String::as_str)
    }
}

/// The environment buildpacks see: ours without Cube's own `CUBE_*` settings
/// (they hold St8ge's and CC's URLs with credentials).
pub fn buildpack_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| !name.starts_with("CUBE_"))
        .collect()
}

/// Runs detect → supply → finalize → release over `layout` with `buildpacks`
/// (in order). Buildpack output streams to our stdout/stderr.
pub async fn stage(
    layout: &Layout,
    buildpacks: &[Buildpack],
    env: &[(String, String)],
) -> Result<Staged, StagingError> {
    if buildpacks.is_empty() {
        return Err(failure(
            ids::NO_APP_DETECTED,
            "no buildpacks to stage with (none given and St8ge has no default buildpacks)",
        ));
    }
    layout.create().map_err(|e| {
        failure(
            ids::STAGING,
            format!("cannot create the staging directories: {e}"),
        )
    })?;
    let skip_detect = buildpacks.iter().any(|b| b.skip_detect);
    let (selected, detected) = if skip_detect {
        let last = buildpacks
            .last()
            .map(|b| b.name.clone())
            .unwrap_or_default();
        (buildpacks.to_vec(), last)
    } else {
        let (winner, output) = detect::detect(layout, buildpacks, env).await?;
        (vec![winner], output)
    };
    let steps = supply::plan(&selected)?;
    for step in &steps {
        supply::run_step(layout, &selected, *step, env).await?;
    }
    supply::collect_profile_scripts(layout, selected.len()).map_err(|e| {
        failure(
            ids::STAGING,
            format!("cannot collect profile.d scripts: {e}"),
        )
    })?;
    let last = selected
        .last()
        .ok_or_else(|| failure(ids::STAGING, "no buildpack selected"))?;
    let process_types = release::process_types(layout, last, env).await?;
    Ok(Staged {
        detected_buildpack: if detected.is_empty() {
            last.name.clone()
        } else {
            detected
        },
        buildpack_key: last.key_or_name().to_owned(),
        buildpacks: selected
            .iter()
            .map(|b| DetectedBuildpack {
                key: b.key_or_name().to_owned(),
                name: Some(b.name.clone()),
                version: None,
            })
            .collect(),
        process_types,
    })
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
