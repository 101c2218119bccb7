//! What `PUT /sim/apps/{name}` may set, how it is checked, and how it creates
//! or updates an app.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{App, AppState, Lifecycle, State};
use crate::guid::new_guid;
use crate::{Error, Result};

/// The most instances one app may ask for.
pub const MAX_INSTANCES: u32 = 1_000;

/// The stack of a buildpack app that names none.
const DEFAULT_STACK: &str = "cflinuxfs4";

/// What `PUT /sim/apps/{name}` may set. Absent fields keep their value (or the
/// default for a new app).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppManifest {
    /// Instances (default 1).
    #[serde(default)]
    pub instances: Option<u32>,
    /// Memory in MB (default 256).
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Disk in MB (default 1024).
    #[serde(default)]
    pub disk_mb: Option<u64>,
    /// Buildpacks by name; makes it a buildpack app.
    #[serde(default)]
    pub buildpacks: Option<Vec<String>>,
    /// Image; makes it a Docker app.
    #[serde(default)]
    pub docker_image: Option<String>,
    /// Stack (default `cflinuxfs4`).
    #[serde(default)]
    pub stack: Option<String>,
    /// Start command.
    #[serde(default)]
    pub command: Option<String>,
    /// Environment (replaces the whole map).
    #[serde(default)]
    pub environment: Option<BTreeMap<String, String>>,
    /// Route hostnames (default `<name>.<apps domain>`).
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// `port`, `http` or `process`.
    #[serde(default)]
    pub health_check_type: Option<String>,
    /// Path for `http` health checks.
    #[serde(default)]
    pub health_check_http_endpoint: Option<String>,
}

/// Checks an app name: 1–63 characters of letters, digits, `-`, `_` and `.`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::unprocessable(format!(
            "app name `{name}` is invalid: use 1-63 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Checks instances (at most [`MAX_INSTANCES`]) and memory and disk (at least 1 MB).
pub(super) fn validate_sizes(
    instances: Option<u32>,
    memory_mb: Option<u64>,
    disk_mb: Option<u64>,
) -> Result<()> {
    if let Some(n) = instances
        && n > MAX_INSTANCES
    {
        return Err(Error::unprocessable(format!(
            "instances: {n} is more than the simulator allows ({MAX_INSTANCES})"
        )));
    }
    if memory_mb == Some(0) {
        return Err(Error::unprocessable("memory_mb must be at least 1"));
    }
    if disk_mb == Some(0) {
        return Err(Error::unprocessable("disk_mb must be at least 1"));
    }
    Ok(())
}

/// Checks a health check type: `port`, `http` or `process`.
fn validate_health_check(kind: Option<&str>) -> Result<()> {
    match kind {
        None | Some("port" | "http" | "process") => Ok(()),
        Some(other) => Err(Error::unprocessable(format!(
            "health_check_type `{other}` is invalid: use port, http or process"
        ))),
    }
}

impl AppManifest {
    /// Checks sizes, health check and lifecycle, in that order.
    fn validate(&self) -> Result<()> {
        validate_sizes(self.instances, self.memory_mb, self.disk_mb)?;
        validate_health_check(self.health_check_type.as_deref())?;
        self.validate_lifecycle()
    }

    /// Checks that it names a Docker image or buildpacks, not both, and no blank image.
    fn validate_lifecycle(&self) -> Result<()> {
        if self.docker_image.is_some() && self.buildpacks.is_some() {
            return Err(Error::unprocessable(
                "docker_image and buildpacks exclude each other: an app is either a Docker or a buildpack app",
            ));
        }
        if let Some(image) = &self.docker_image
            && image.trim().is_empty()
        {
            return Err(Error::unprocessable("docker_image must not be empty"));
        }
        Ok(())
    }

    /// The lifecycle it asks for: Docker with an image, buildpack with buildpacks, else none.
    fn lifecycle(&self) -> Option<Lifecycle> {
        match (&self.docker_image, &self.buildpacks) {
            (Some(image), _) => Some(Lifecycle::Docker {
                image: image.clone(),
            }),
            (None, Some(buildpacks)) => Some(Lifecycle::Buildpack {
                buildpacks: buildpacks.clone(),
                stack: self.stack.clone().unwrap_or_else(|| DEFAULT_STACK.into()),
            }),
            (None, None) => None,
        }
    }
}

impl State {
    /// Creates or updates the app `name`. Returns whether it was created.
    pub fn put_app(
        &mut self,
        name: &str,
        manifest: AppManifest,
        apps_domain: &str,
        now_micros: i64,
    ) -> Result<bool> {
        validate_name(name)?;
        manifest.validate()?;
        let lifecycle = manifest.lifecycle();
        match self.app_by_name(name).map(|app| app.id) {
            Some(id) => {
                self.app_mut(id)?
                    .update_from_manifest(manifest, lifecycle, now_micros);
                Ok(false)
            }
            None => {
                let id = self.allocate_app_id();
                let app = new_app(id, name, manifest, lifecycle, apps_domain, now_micros);
                self.apps.insert(id, app);
                Ok(true)
            }
        }
    }
}

/// A new, stopped app `name` from `manifest`, defaults filling what it leaves out.
fn new_app(
    id: u64,
    name: &str,
    manifest: AppManifest,
    lifecycle: Option<Lifecycle>,
    apps_domain: &str,
    now_micros: i64,
) -> App {
    App {
        id,
        guid: new_guid(),
        name: name.to_owned(),
        state: AppState::Stopped,
        instances: manifest.instances.unwrap_or(1),
        memory_mb: manifest.memory_mb.unwrap_or(256),
        disk_mb: manifest.disk_mb.unwrap_or(1024),
        lifecycle: lifecycle.unwrap_or(Lifecycle::Buildpack {
            buildpacks: Vec::new(),
            stack: manifest.stack.unwrap_or_else(|| DEFAULT_STACK.into()),
        }),
        command: manifest.command.filter(|c| !c.trim().is_empty()),
        environment: manifest.environment.unwrap_or_default(),
        health_check_type: manifest.health_check_type.unwrap_or_else(|| "port".into()),
        health_check_http_endpoint: manifest.health_check_http_endpoint,
        routes: manifest
            .routes
            .unwrap_or_else(|| vec![format!("{name}.{apps_domain}")]),
        version: new_guid(),
        updated_at_micros: now_micros,
        package: None,
        droplet: None,
        latest_build: None,
        crash_count: 0,
    }
}

impl App {
    /// Applies `manifest`; a change a running instance cannot pick up makes a new version.
    fn update_from_manifest(
        &mut self,
        manifest: AppManifest,
        lifecycle: Option<Lifecycle>,
        now_micros: i64,
    ) {
        let before = self.clone();
        self.apply_manifest(manifest, lifecycle);
        if *self == before {
            return;
        }
        if self.needs_new_lrp_since(&before) && self.state == AppState::Started {
            self.new_version(now_micros);
        } else {
            self.touch(now_micros);
        }
    }

    /// Sets every field `manifest` gives; a blank command clears the command.
    fn apply_manifest(&mut self, manifest: AppManifest, lifecycle: Option<Lifecycle>) {
        if let Some(lifecycle) = lifecycle {
            self.lifecycle = lifecycle;
        }
        if let Some(n) = manifest.instances {
            self.instances = n;
        }
        if let Some(mb) = manifest.memory_mb {
            self.memory_mb = mb;
        }
        if let Some(mb) = manifest.disk_mb {
            self.disk_mb = mb;
        }
        if manifest.command.is_some() {
            self.command = manifest.command.filter(|c| !c.trim().is_empty());
        }
        if let Some(env) = manifest.environment {
            self.environment = env;
        }
        if let Some(routes) = manifest.routes {
            self.routes = routes;
        }
        if let Some(kind) = manifest.health_check_type {
            self.health_check_type = kind;
        }
        if manifest.health_check_http_endpoint.is_some() {
            self.health_check_http_endpoint = manifest.health_check_http_endpoint;
        }
    }

    /// Whether it changed, since `before`, what a running instance cannot pick up.
    fn needs_new_lrp_since(&self, before: &App) -> bool {
        self.memory_mb != before.memory_mb
            || self.disk_mb != before.disk_mb
            || self.command != before.command
            || self.environment != before.environment
            || self.health_check_type != before.health_check_type
            || self.health_check_http_endpoint != before.health_check_http_endpoint
            || self.lifecycle != before.lifecycle
    }
}
