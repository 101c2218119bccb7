//! What the simulator's JSON API answers about an app (and what `cube push`,
//! `cube apps` read).

use serde::{Deserialize, Serialize};

use super::state::{App, AppState, Build, Droplet, Lifecycle, Package, State};

/// An app as `GET /sim/apps/{name}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppView {
    /// App guid.
    pub guid: String,
    /// Name.
    pub name: String,
    /// Started or stopped.
    pub state: AppState,
    /// Desired instances.
    pub instances: u32,
    /// Memory in MB.
    pub memory_mb: u64,
    /// Disk in MB.
    pub disk_mb: u64,
    /// Buildpack or Docker, with their settings.
    pub lifecycle: Lifecycle,
    /// User-given start command.
    pub command: Option<String>,
    /// Route hostnames.
    pub routes: Vec<String>,
    /// Current process guid (what the scheduler runs once desired).
    pub process_guid: String,
    /// Current version.
    pub version: String,
    /// Current etag.
    pub etag: String,
    /// Whether the bulk API lists it (started and staged).
    pub desired: bool,
    /// Uploaded app bits.
    pub package: Option<Package>,
    /// Current droplet.
    pub droplet: Option<Droplet>,
    /// Latest build.
    pub build: Option<Build>,
    /// Crashes reported for the current version.
    pub crash_count: u32,
}

impl AppView {
    /// The view of `app` in `state`.
    pub fn of(app: &App, state: &State) -> Self {
        AppView {
            guid: app.guid.clone(),
            name: app.name.clone(),
            state: app.state,
            instances: app.instances,
            memory_mb: app.memory_mb,
            disk_mb: app.disk_mb,
            lifecycle: app.lifecycle.clone(),
            command: app.command.clone(),
            routes: app.routes.clone(),
            process_guid: app.process_guid().to_string(),
            version: app.version.clone(),
            etag: app.etag().to_string(),
            desired: app.is_desired(),
            package: app.package.clone(),
            droplet: app.droplet.clone(),
            build: app
                .latest_build
                .as_ref()
                .and_then(|guid| state.builds.get(guid))
                .cloned(),
            crash_count: app.crash_count,
        }
    }
}

/// `GET /sim/apps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppList {
    /// Every app, in creation order.
    pub apps: Vec<AppView>,
}
