//! The app record (CC's app and its `web` process), how it marks changes, and
//! the lookups every change starts from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Droplet, Package, State};
use crate::guid::new_guid;
use crate::model::{Etag, ProcessGuid};
use crate::{Error, Result};

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
    pub(super) fn touch(&mut self, now_micros: i64) {
        self.updated_at_micros = now_micros.max(self.updated_at_micros + 1);
    }

    /// A new version: the scheduler replaces the LRP.
    pub(super) fn new_version(&mut self, now_micros: i64) {
        self.version = new_guid();
        self.crash_count = 0;
        self.touch(now_micros);
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

    /// The id of the app called `name`, or a 404 naming it.
    pub(super) fn app_id_by_name(&self, name: &str) -> Result<u64> {
        self.app_by_name(name)
            .map(|app| app.id)
            .ok_or_else(|| Error::not_found(format!("app `{name}` not found")))
    }

    /// The id of the app with this guid.
    pub(super) fn app_id_by_guid(&self, guid: &str) -> Option<u64> {
        self.app_by_guid(guid).map(|app| app.id)
    }

    /// The app with database id `id`, to change.
    pub(super) fn app_mut(&mut self, id: u64) -> Result<&mut App> {
        self.apps
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("app #{id} not found")))
    }

    /// Takes the next database id.
    pub(super) fn allocate_app_id(&mut self) -> u64 {
        let id = self.next_id.max(1);
        self.next_id = id + 1;
        id
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
}
