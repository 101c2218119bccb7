//! The simulator's state and every change to it, as pure functions: no I/O, the
//! clock passed in. [`super::store`] persists it; the handlers only call these.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::guid::{guid_from_seed, new_guid};
use crate::model::{Etag, ProcessGuid, StagingError, StagingResult};
use crate::{Error, Result};

/// How many recorded events are kept; older ones are dropped.
pub const MAX_EVENTS: usize = 10_000;
/// The most instances one app may ask for.
pub const MAX_INSTANCES: u32 = 1_000;
/// The org every simulated app lives in.
pub const ORG_NAME: &str = "org";
/// The space every simulated app lives in.
pub const SPACE_NAME: &str = "dev";

/// Everything the simulator knows. Serialised whole to `state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// The id the next app gets (CC's database id, which bulk tokens page by).
    pub next_id: u64,
    /// Apps by id, so bulk pages come out in id order.
    pub apps: BTreeMap<u64, App>,
    /// Builds (staging attempts) by guid; the guid is also the staging guid.
    pub builds: BTreeMap<String, Build>,
    /// Droplet upload jobs by guid.
    pub jobs: BTreeMap<String, UploadJob>,
    /// Recorded callbacks, oldest first, at most [`MAX_EVENTS`].
    pub events: Vec<Event>,
    /// Sequence number of the next event.
    pub next_event_seq: u64,
}

/// Started or stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AppState {
    /// Desired running: listed by the bulk API once it has a droplet.
    Started,
    /// Desired not running.
    Stopped,
}

/// How an app is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Lifecycle {
    /// Staged from app bits by buildpacks.
    Buildpack {
        /// Buildpack names the user asked for; empty means auto-detect.
        buildpacks: Vec<String>,
        /// Stack.
        stack: String,
    },
    /// Runs an image as it is.
    Docker {
        /// Image reference.
        image: String,
    },
}

/// Uploaded app bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Package guid (the app-bits download URL names it).
    pub guid: String,
    /// SHA-256 of the zip, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

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

/// One desired app (CC's app + its `web` process, which is all Cube runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Database id: the order of the bulk API.
    pub id: u64,
    /// App guid (also the web process guid in v3).
    pub guid: String,
    /// Unique name.
    pub name: String,
    /// Started or stopped.
    pub state: AppState,
    /// Desired instances.
    pub instances: u32,
    /// Memory in MB.
    pub memory_mb: u64,
    /// Disk in MB.
    pub disk_mb: u64,
    /// Buildpack or Docker.
    pub lifecycle: Lifecycle,
    /// User-given start command.
    pub command: Option<String>,
    /// User environment.
    pub environment: BTreeMap<String, String>,
    /// `port`, `http` or `process`.
    pub health_check_type: String,
    /// Path for `http` health checks.
    pub health_check_http_endpoint: Option<String>,
    /// Route hostnames.
    pub routes: Vec<String>,
    /// Process version: a new one makes a new LRP.
    pub version: String,
    /// Last change, microseconds since the epoch; the etag derives from it.
    pub updated_at_micros: i64,
    /// Uploaded app bits.
    pub package: Option<Package>,
    /// Current droplet.
    pub droplet: Option<Droplet>,
    /// The latest build's guid.
    pub latest_build: Option<String>,
    /// Crashes reported for the current version.
    pub crash_count: u32,
}

impl App {
    /// `<guid>-<version>`.
    pub fn process_guid(&self) -> ProcessGuid {
        ProcessGuid::new(&self.guid, &self.version)
    }

    /// The etag CC would send.
    pub fn etag(&self) -> Etag {
        Etag::from_updated_at_micros(self.updated_at_micros)
    }

    /// Whether the bulk API lists it: started and staged.
    pub fn is_desired(&self) -> bool {
        self.state == AppState::Started && self.droplet.is_some()
    }

    /// Marks a change: the etag moves even when the clock has not.
    fn touch(&mut self, now_micros: i64) {
        self.updated_at_micros = now_micros.max(self.updated_at_micros + 1);
    }

    /// A new version: the scheduler replaces the LRP.
    fn new_version(&mut self, now_micros: i64) {
        self.version = new_guid();
        self.crash_count = 0;
        self.touch(now_micros);
    }
}

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

/// A recorded callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing sequence number.
    pub seq: u64,
    /// When it arrived, microseconds since the epoch.
    pub at_micros: i64,
    /// `staging_completed`, `app_crashed`, `task_completed`, `droplet_uploaded`,
    /// `staging_requested`, `staged_without_stager`, `staging_failed_after_staged`.
    pub kind: String,
    /// The request path (or the object it concerns).
    pub path: String,
    /// The body as received (or a summary).
    pub body: serde_json::Value,
}

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

/// What `PUT /sim/apps/{name}/scale` takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// Instances.
    #[serde(default)]
    pub instances: Option<u32>,
    /// Memory in MB.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Disk in MB.
    #[serde(default)]
    pub disk_mb: Option<u64>,
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

fn validate_sizes(
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

fn validate_health_check(kind: Option<&str>) -> Result<()> {
    match kind {
        None | Some("port" | "http" | "process") => Ok(()),
        Some(other) => Err(Error::unprocessable(format!(
            "health_check_type `{other}` is invalid: use port, http or process"
        ))),
    }
}

impl State {
    /// The app called `name`.
    pub fn app_by_name(&self, name: &str) -> Option<&App> {
        self.apps.values().find(|app| app.name == name)
    }

    /// The app with this guid.
    pub fn app_by_guid(&self, guid: &str) -> Option<&App> {
        self.apps.values().find(|app| app.guid == guid)
    }

    fn app_id_by_name(&self, name: &str) -> Result<u64> {
        self.app_by_name(name)
            .map(|app| app.id)
            .ok_or_else(|| Error::not_found(format!("app `{name}` not found")))
    }

    fn app_id_by_guid(&self, guid: &str) -> Option<u64> {
        self.app_by_guid(guid).map(|app| app.id)
    }

    fn app_mut(&mut self, id: u64) -> Result<&mut App> {
        self.apps
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("app #{id} not found")))
    }

    /// One page of desired apps after `last_id`, in id order.
    pub fn desired_page(&self, last_id: u64, batch_size: usize) -> Vec<&App> {
        self.apps
            .range(last_id.saturating_add(1)..)
            .map(|(_, app)| app)
            .filter(|app| app.is_desired())
            .take(batch_size)
            .collect()
    }

    /// Desired apps whose current process guid is one of `process_guids`, in
    /// the order asked; unknown or outdated guids are skipped, as CC does.
    pub fn desired_by_process_guid(&self, process_guids: &[String]) -> Vec<&App> {
        let by_guid: HashMap<&str, &App> = self
            .apps
            .values()
            .filter(|app| app.is_desired())
            .map(|app| (app.guid.as_str(), app))
            .collect();
        process_guids
            .iter()
            .filter_map(|pg| {
                let pg = ProcessGuid(pg.clone());
                let app = by_guid.get(pg.app_guid()?)?;
                (pg.version() == Some(app.version.as_str())).then_some(*app)
            })
            .collect()
    }

    /// Creates or updates the app `name`. Returns whether it was created.
    pub fn put_app(
        &mut self,
        name: &str,
        manifest: AppManifest,
        apps_domain: &str,
        now_micros: i64,
    ) -> Result<bool> {
        validate_name(name)?;
        validate_sizes(manifest.instances, manifest.memory_mb, manifest.disk_mb)?;
        validate_health_check(manifest.health_check_type.as_deref())?;
        if manifest.docker_image.is_some() && manifest.buildpacks.is_some() {
            return Err(Error::unprocessable(
                "docker_image and buildpacks exclude each other: an app is either a Docker or a buildpack app",
            ));
        }
        if let Some(image) = &manifest.docker_image
            && image.trim().is_empty()
        {
            return Err(Error::unprocessable("docker_image must not be empty"));
        }
        let lifecycle = match (&manifest.docker_image, &manifest.buildpacks) {
            (Some(image), _) => Some(Lifecycle::Docker {
                image: image.clone(),
            }),
            (None, Some(buildpacks)) => Some(Lifecycle::Buildpack {
                buildpacks: buildpacks.clone(),
                stack: manifest
                    .stack
                    .clone()
                    .unwrap_or_else(|| "cflinuxfs4".into()),
            }),
            (None, None) => None,
        };
        match self.app_by_name(name).map(|app| app.id) {
            Some(id) => {
                let app = self.app_mut(id)?;
                let before = app.clone();
                if let Some(lifecycle) = lifecycle {
                    app.lifecycle = lifecycle;
                }
                if let Some(n) = manifest.instances {
                    app.instances = n;
                }
                if let Some(mb) = manifest.memory_mb {
                    app.memory_mb = mb;
                }
                if let Some(mb) = manifest.disk_mb {
                    app.disk_mb = mb;
                }
                if manifest.command.is_some() {
                    app.command = manifest.command.filter(|c| !c.trim().is_empty());
                }
                if let Some(env) = manifest.environment {
                    app.environment = env;
                }
                if let Some(routes) = manifest.routes {
                    app.routes = routes;
                }
                if let Some(kind) = manifest.health_check_type {
                    app.health_check_type = kind;
                }
                if manifest.health_check_http_endpoint.is_some() {
                    app.health_check_http_endpoint = manifest.health_check_http_endpoint;
                }
                if *app != before {
                    // What a running instance cannot pick up needs a new LRP.
                    let restart = app.memory_mb != before.memory_mb
                        || app.disk_mb != before.disk_mb
                        || app.command != before.command
                        || app.environment != before.environment
                        || app.health_check_type != before.health_check_type
                        || app.health_check_http_endpoint != before.health_check_http_endpoint
                        || app.lifecycle != before.lifecycle;
                    if restart && app.state == AppState::Started {
                        app.new_version(now_micros);
                    } else {
                        app.touch(now_micros);
                    }
                }
                Ok(false)
            }
            None => {
                let id = self.next_id.max(1);
                self.next_id = id + 1;
                let app = App {
                    id,
                    guid: new_guid(),
                    name: name.to_owned(),
                    state: AppState::Stopped,
                    instances: manifest.instances.unwrap_or(1),
                    memory_mb: manifest.memory_mb.unwrap_or(256),
                    disk_mb: manifest.disk_mb.unwrap_or(1024),
                    lifecycle: lifecycle.unwrap_or(Lifecycle::Buildpack {
                        buildpacks: Vec::new(),
                        stack: manifest.stack.unwrap_or_else(|| "cflinuxfs4".into()),
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
                };
                self.apps.insert(id, app);
                Ok(true)
            }
        }
    }

    /// Records uploaded app bits.
    pub fn set_package(&mut self, name: &str, package: Package, now_micros: i64) -> Result<()> {
        let id = self.app_id_by_name(name)?;
        let app = self.app_mut(id)?;
        if let Lifecycle::Docker { .. } = app.lifecycle {
            return Err(Error::unprocessable(format!(
                "app `{name}` is a Docker app: it has no app bits"
            )));
        }
        app.package = Some(package);
        app.touch(now_micros);
        Ok(())
    }

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

    /// Stops the app with this guid; whether it was started.
    fn stop_app_by_guid(&mut self, app_guid: &str, now_micros: i64) -> bool {
        let Some(app) = self.apps.values_mut().find(|app| app.guid == app_guid) else {
            return false;
        };
        if app.state == AppState::Stopped {
            return false;
        }
        app.state = AppState::Stopped;
        app.touch(now_micros);
        true
    }

    /// Starts `name`: it must have a droplet. Starting a stopped app makes a
    /// new version (a new LRP), as CC does.
    pub fn start_app(&mut self, name: &str, now_micros: i64) -> Result<()> {
        let id = self.app_id_by_name(name)?;
        let app = self.app_mut(id)?;
        if app.droplet.is_none() {
            return Err(Error::unprocessable(format!(
                "app `{name}` has no droplet: stage it before starting"
            )));
        }
        if app.state != AppState::Started {
            app.state = AppState::Started;
            app.new_version(now_micros);
        }
        Ok(())
    }

    /// Stops `name`; the bulk API stops listing it.
    pub fn stop_app(&mut self, name: &str, now_micros: i64) -> Result<()> {
        let id = self.app_id_by_name(name)?;
        let app = self.app_mut(id)?;
        if app.state != AppState::Stopped {
            app.state = AppState::Stopped;
            app.touch(now_micros);
        }
        Ok(())
    }

    /// Scales `name`: instances change the etag only; memory or disk make a new
    /// version of a started app.
    pub fn scale_app(&mut self, name: &str, scale: Scale, now_micros: i64) -> Result<()> {
        validate_sizes(scale.instances, scale.memory_mb, scale.disk_mb)?;
        if scale == Scale::default() {
            return Err(Error::unprocessable(
                "scale needs at least one of instances, memory_mb, disk_mb",
            ));
        }
        let id = self.app_id_by_name(name)?;
        let app = self.app_mut(id)?;
        let before = app.clone();
        if let Some(n) = scale.instances {
            app.instances = n;
        }
        if let Some(mb) = scale.memory_mb {
            app.memory_mb = mb;
        }
        if let Some(mb) = scale.disk_mb {
            app.disk_mb = mb;
        }
        let resized = app.memory_mb != before.memory_mb || app.disk_mb != before.disk_mb;
        if resized && app.state == AppState::Started {
            app.new_version(now_micros);
        } else if *app != before {
            app.touch(now_micros);
        }
        Ok(())
    }

    /// Deletes `name` and its builds; returns the app so its blobs can go too.
    pub fn delete_app(&mut self, name: &str) -> Result<App> {
        let id = self.app_id_by_name(name)?;
        let app = self
            .apps
            .remove(&id)
            .ok_or_else(|| Error::not_found(format!("app `{name}` not found")))?;
        self.builds.retain(|_, build| build.app_guid != app.guid);
        Ok(app)
    }

    /// Records a crash of the app behind `process_guid`. Unknown apps are a 404,
    /// as in CC.
    pub fn record_crash(&mut self, process_guid: &str) -> Result<()> {
        let pg = ProcessGuid(process_guid.to_owned());
        let guid = pg.app_guid().ok_or_else(|| {
            Error::message_parse(format!("`{process_guid}` is not a process guid"))
        })?;
        let id = self
            .app_id_by_guid(guid)
            .ok_or_else(|| Error::not_found(format!("ProcessNotFound: {guid}")))?;
        let app = self.app_mut(id)?;
        if pg.version() == Some(app.version.as_str()) {
            app.crash_count = app.crash_count.saturating_add(1);
        }
        Ok(())
    }

    /// Appends an event, dropping the oldest beyond [`MAX_EVENTS`].
    pub fn record_event(
        &mut self,
        kind: &str,
        path: &str,
        body: serde_json::Value,
        now_micros: i64,
    ) -> u64 {
        let seq = self.next_event_seq.max(1);
        self.next_event_seq = seq + 1;
        self.events.push(Event {
            seq,
            at_micros: now_micros,
            kind: kind.to_owned(),
            path: path.to_owned(),
            body,
        });
        if self.events.len() > MAX_EVENTS {
            let excess = self.events.len() - MAX_EVENTS;
            self.events.drain(..excess);
        }
        seq
    }

    /// Seeds `count` started Docker apps named `fake-app-<i>`, skipping those
    /// that exist already (guids derive from the name, so a restart with the same
    /// flag adds nothing). Returns how many were added.
    pub fn seed_fake_apps(&mut self, count: usize, image: &str, now_micros: i64) -> usize {
        let existing: std::collections::HashSet<String> =
            self.apps.values().map(|app| app.guid.clone()).collect();
        let mut added = 0;
        for i in 0..count {
            let name = format!("fake-app-{i}");
            let guid = guid_from_seed(&name);
            if existing.contains(&guid) {
                continue;
            }
            let id = self.next_id.max(1);
            self.next_id = id + 1;
            let droplet_guid = guid_from_seed(&format!("{name}/droplet"));
            self.apps.insert(
                id,
                App {
                    id,
                    guid,
                    name: name.clone(),
                    state: AppState::Started,
                    instances: 1,
                    memory_mb: 64,
                    disk_mb: 256,
                    lifecycle: Lifecycle::Docker {
                        image: image.to_owned(),
                    },
                    command: None,
                    environment: BTreeMap::new(),
                    health_check_type: "port".into(),
                    health_check_http_endpoint: None,
                    routes: Vec::new(),
                    version: guid_from_seed(&format!("{name}/v1")),
                    updated_at_micros: now_micros,
                    package: None,
                    droplet: Some(Droplet {
                        guid: droplet_guid,
                        hash: None,
                        docker_image: Some(image.to_owned()),
                        process_types: BTreeMap::from([("web".to_owned(), String::new())]),
                        execution_metadata: "{}".into(),
                        detected_buildpack: None,
                    }),
                    latest_build: None,
                    crash_count: 0,
                },
            );
            added += 1;
        }
        added
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

/// The droplet a successful staging result gives, or why it is unusable.
fn droplet_for(build: &Build, result: StagingResult) -> std::result::Result<Droplet, StagingError> {
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
