//! The staging task recipe (pure): a validated staging request → the OPI
//! [`Task`] that stages it. The task's steps run `cube stage download`,
//! `build` and `upload` in the staging image, one after another over a shared
//! workspace (`$CUBE_WORKSPACE`; on the local backend, `cube/host-exec`: the
//! steps run on the host in the task's scratch dir). Everything the steps
//! need travels in the task's environment as `CUBE_*` variables (the steps'
//! flags read them), never in the command line: the URLs carry CC's
//! credentials, and backends keep task environments secret.

use std::time::Duration;

use opi::model::validate::Invalid;
use opi::model::wire::{Buildpack, EnvironmentVariable, StagingBuildpackLifecycle, StagingRequest};
use opi::model::{LrpLifecycle, Named, Task, TaskStep};
use reqwest::Url;

use cube_runtime::access::Secret;

use crate::report;

/// How staging tasks are made (St8ge's flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The `cube` binary inside the staging image / on the host.
    pub cube_binary: String,
    /// The staging image (`cube/host-exec` runs on the host with the local backend).
    pub image: String,
    /// St8ge's URL as the task reaches it.
    pub public_url: Url,
    /// The Registry droplets are imported into (`None`: CC only).
    pub registry_url: Option<Url>,
    /// The most staging may take.
    pub staging_timeout: Duration,
    /// Variables that let the task call St8ge back when it requires
    /// credentials (`CUBE_AUTH_TOKEN`, `CUBE_CA_CERT_PEM`); redacted in `Debug`.
    pub credentials: Vec<(String, Secret)>,
}

/// Environment variable names of the step flags (`cube stage … --<flag>`).
pub mod env {
    /// St8ge's completion URL.
    pub const COMPLETION_URL: &str = "CUBE_COMPLETION_URL";
    /// St8ge's log URL, where the steps send their output.
    pub const LOGS_URL: &str = "CUBE_LOGS_URL";
    /// App bits URL.
    pub const APP_BITS_URL: &str = "CUBE_APP_BITS_URL";
    /// Buildpacks, JSON `[{name,key,url,skip_detect}]`.
    pub const BUILDPACKS: &str = "CUBE_BUILDPACKS";
    /// CC's droplet upload URL.
    pub const DROPLET_UPLOAD_URL: &str = "CUBE_DROPLET_UPLOAD_URL";
    /// The Registry.
    pub const REGISTRY_URL: &str = "CUBE_REGISTRY_URL";
    /// The droplet guid of the image.
    pub const DROPLET_GUID: &str = "CUBE_DROPLET_GUID";
    /// The staging timeout (`900s`).
    pub const STAGING_TIMEOUT: &str = "CUBE_STAGING_TIMEOUT";
    /// The workspace directory.
    pub const WORKSPACE: &str = "CUBE_WORKSPACE";
}

/// The buildpacks to stage with: the request's, with St8ge's URL filled in for
/// shipped buildpacks named without one (CC's simulator sends `-b python` so),
/// or, when the request names none, every shipped buildpack in order.
pub fn resolve_buildpacks(
    requested: &[Buildpack],
    shipped: &[String],
    public_url: &Url,
) -> Result<Vec<Buildpack>, Invalid> {
    let url_of = |name: &str| -> Result<String, Invalid> {
        let mut url = public_url.clone();
        url.path_segments_mut()
            .map_err(|()| Invalid::new("public_url", "cannot take a path"))?
            .pop_if_empty()
            .extend(["buildpacks", &format!("{name}.zip")]);
        Ok(url.to_string())
    };
    if requested.is_empty() {
        return shipped
            .iter()
            .map(|name| {
                Ok(Buildpack {
                    name: name.clone(),
                    key: name.clone(),
                    url: url_of(name)?,
                    skip_detect: false,
                })
            })
            .collect();
    }
    requested
        .iter()
        .enumerate()
        .map(|(i, buildpack)| {
            if !buildpack.url.is_empty() {
                return Ok(buildpack.clone());
            }
            let wanted = [buildpack.name.as_str(), buildpack.key.as_str()];
            let found = shipped.iter().find(|name| {
                wanted.iter().any(|w| {
                    *w == name.as_str() || w.strip_suffix("_buildpack") == Some(name.as_str())
                })
            });
            match found {
                Some(name) => Ok(Buildpack {
                    url: url_of(name)?,
                    ..buildpack.clone()
                }),
                None => Err(Invalid::new(
                    format!("lifecycle.buildpack_lifecycle.buildpacks[{i}].url"),
                    format!(
                        "is empty and St8ge ships no buildpack named {:?} (it ships: {})",
                        buildpack.name,
                        shipped.join(", ")
                    ),
                )),
            }
        })
        .collect()
}

/// The `CUBE_*` environment of the steps for staging `guid`.
pub fn step_environment(
    recipe: &Recipe,
    guid: &str,
    request: &StagingRequest,
    lifecycle: &StagingBuildpackLifecycle,
    buildpacks: &[Buildpack],
) -> Result<Vec<EnvironmentVariable>, Invalid> {
    let completion = report::completion_url(&recipe.public_url, guid, &request.completion_callback)
        .map_err(|e| Invalid::new("public_url", e.to_string()))?;
    let logs = report::logs_url(&recipe.public_url, guid)
        .map_err(|e| Invalid::new("public_url", e.to_string()))?;
    let buildpacks = serde_json::to_string(buildpacks)
        .map_err(|e| Invalid::new("lifecycle.buildpack_lifecycle.buildpacks", e.to_string()))?;
    let var = |name: &str, value: String| EnvironmentVariable {
        name: name.to_owned(),
        value,
    };
    let mut vars = vec![
        var(env::COMPLETION_URL, completion.to_string()),
        var(env::LOGS_URL, logs.to_string()),
        var(env::APP_BITS_URL, lifecycle.app_bits_download_uri.clone()),
        var(env::BUILDPACKS, buildpacks),
        var(
            env::DROPLET_UPLOAD_URL,
            lifecycle.droplet_upload_uri.clone(),
        ),
        // The Sink names images after the guid in CC's droplet_uri
        // (`/internal/v2/droplets/<app guid>/<hash>/download`): the app's guid.
        var(env::DROPLET_GUID, request.app_guid.clone()),
        var(
            env::STAGING_TIMEOUT,
            format!("{}s", recipe.staging_timeout.as_secs().max(1)),
        ),
    ];
    if let Some(registry) = &recipe.registry_url {
        vars.push(var(env::REGISTRY_URL, registry.to_string()));
    }
    for (name, value) in &recipe.credentials {
        vars.push(var(name, value.expose().to_owned()));
    }
    Ok(vars)
}

/// The staging task for `guid`: the [`STEPS`] (`cube stage
/// download|build|upload`, sharing `$CUBE_WORKSPACE`) with the request's
/// staging environment (minus any `CUBE_*` it carries) and the steps'
/// variables, reporting to St8ge's completion URL.
pub fn staging_task(
    recipe: &Recipe,
    guid: &str,
    request: &StagingRequest,
    buildpacks: &[Buildpack],
) -> Result<Task, Invalid> {
    let lifecycle = request
        .lifecycle
        .buildpack_lifecycle
        .as_ref()
        .ok_or_else(|| Invalid::new("lifecycle.buildpack_lifecycle", "is missing"))?;
    let mut environment: Vec<EnvironmentVariable> = request
        .environment
        .iter()
        .filter(|v| !v.name.starts_with("CUBE_"))
        .cloned()
        .collect();
    let steps = step_environment(recipe, guid, request, lifecycle, buildpacks)?;
    environment.extend(steps);
    let completion = report::completion_url(&recipe.public_url, guid, &request.completion_callback)
        .map_err(|e| Invalid::new("public_url", e.to_string()))?;
    Ok(Task {
        guid: guid.to_owned(),
        name: format!("staging-{}", request.app_name),
        app: Named {
            guid: request.app_guid.clone(),
            name: request.app_name.clone(),
        },
        space: Named {
            guid: request.space_guid.clone(),
            name: request.space_name.clone(),
        },
        org: Named {
            guid: request.org_guid.clone(),
            name: request.org_name.clone(),
        },
        completion_callback: completion.to_string(),
        environment,
        lifecycle: LrpLifecycle::Docker {
            image: recipe.image.clone(),
            command: Vec::new(),
            credentials: None,
        },
        memory_mb: u64::try_from(request.memory_mb).unwrap_or(0),
        disk_mb: u64::try_from(request.disk_mb).unwrap_or(0),
        cpu_weight: u8::try_from(request.cpu_weight.clamp(0, 100)).unwrap_or(0),
        steps: STEPS
            .iter()
            .map(|step| TaskStep {
                name: (*step).to_owned(),
                command: vec![
                    recipe.cube_binary.clone(),
                    "stage".into(),
                    (*step).to_owned(),
                ],
            })
            .collect(),
    })
}

/// The staging task's steps, in order: each runs `cube stage <step>`.
pub const STEPS: [&str; 3] = ["download", "build", "upload"];

#[cfg(test)]
mod tests;
