//! The simulator's state and every change to it, as pure functions: no I/O, the
//! clock passed in. [`super::store`] persists it; the handlers only call these.
//!
//! One concept a file: [`State`] here; the app record and its lookups
//! (`app`); creating and updating apps from an [`AppManifest`] (`manifest`);
//! scaling (`scale`); starting, stopping and crashes (`running`); app bits
//! (`package`); builds (`builds`) and how a staging outcome is applied
//! (`staging_completion`); droplets and their upload jobs (`droplet`); the
//! bulk API's desired apps (`desired`); recorded callbacks (`events`); and the
//! `--fake-apps` seed (`fake_apps`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod app;
mod builds;
mod desired;
mod droplet;
mod events;
mod fake_apps;
mod manifest;
mod package;
mod running;
mod scale;
mod staging_completion;
#[cfg(test)]
mod tests;

pub use app::{App, AppState, Lifecycle};
pub use builds::{Build, BuildState};
pub use droplet::{Droplet, UploadJob};
pub use events::{Event, MAX_EVENTS};
pub use manifest::{AppManifest, MAX_INSTANCES, validate_name};
pub use package::Package;
pub use scale::Scale;

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
