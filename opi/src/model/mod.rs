//! The OPI domain model: what a backend receives after validation.
//!
//! [`wire`] holds the JSON bodies exactly as Cloud Controller sends them;
//! [`validate`] turns them into these types, which carry only values a backend
//! can act on (instances fit in `u32`, ports in `u16`, exactly one lifecycle,
//! a known health check). Backends never see unvalidated input.

pub mod validate;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt;

pub use wire::{EnvironmentVariable, Route, Routes, TaskStep, VolumeMount};

mod environment;
pub use environment::{Environment, REDACTED};

/// Identifies one LRP: a CC process guid and its version. A new version of the
/// same process is a different LRP (it replaces the old one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LrpId {
    /// The CC process guid.
    pub guid: String,
    /// The CC process version.
    pub version: String,
}

impl LrpId {
    /// An id from its two parts (not validated; see [`validate::lrp_id`]).
    pub fn new(guid: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            guid: guid.into(),
            version: version.into(),
        }
    }

    /// `<guid>-<version>`, the process guid CC and Diego use.
    pub fn process_guid(&self) -> String {
        format!("{}-{}", self.guid, self.version)
    }
}

impl fmt::Display for LrpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.guid, self.version)
    }
}

/// A guid with its human name (app, space, organization).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Named {
    /// The guid.
    pub guid: String,
    /// The name.
    pub name: String,
}

/// A validated desired LRP.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredLrp {
    /// Which LRP.
    pub id: LrpId,
    /// `web`, `worker`, … (`web` when CC sends none).
    pub process_type: String,
    /// The app.
    pub app: Named,
    /// The space.
    pub space: Named,
    /// The organization.
    pub org: Named,
    /// Desired instances.
    pub instances: u32,
    /// Memory limit in MB (> 0).
    pub memory_mb: u64,
    /// Disk limit in MB (0: backend default).
    pub disk_mb: u64,
    /// Relative CPU weight, 0–100.
    pub cpu_weight: u8,
    /// Container ports, distinct.
    pub ports: Vec<u16>,
    /// Routes, with valid ports.
    pub routes: Routes,
    /// The app's environment. Values are secrets: its `Debug` shows names only.
    pub environment: Environment,
    /// How health is checked.
    pub health_check: HealthCheck,
    /// How long an instance may take to become healthy (0: backend default).
    pub start_timeout_ms: u64,
    /// What runs.
    pub lifecycle: LrpLifecycle,
    /// CC's `updated_at` (float-like string) of the last desire or update.
    pub annotation: String,
    /// User annotations.
    pub user_defined_annotations: BTreeMap<String, String>,
    /// Volume service mounts.
    pub volume_mounts: Vec<VolumeMount>,
    /// Isolation segment placement tags.
    pub placement_tags: Vec<String>,
    /// Egress rules, passed through.
    pub egress_rules: Vec<serde_json::Value>,
}

impl DesiredLrp {
    /// The image reference that runs: the docker image, or for a droplet
    /// `cloudfoundry/<droplet_guid>:<droplet_hash>` under `registry` (host[:port]).
    pub fn image(&self, registry: &str) -> String {
        match &self.lifecycle {
            LrpLifecycle::Docker { image, .. } => image.clone(),
            LrpLifecycle::Buildpack {
                droplet_guid,
                droplet_hash,
                ..
            } => droplet_image(registry, droplet_guid, droplet_hash),
        }
    }

    /// The scheduling info `GET /apps` reports for this LRP.
    pub fn scheduling_info(&self) -> SchedulingInfo {
        SchedulingInfo {
            id: self.id.clone(),
            annotation: self.annotation.clone(),
            instances: self.instances,
        }
    }

    /// Applies an update in place (absent fields stay).
    pub fn apply(&mut self, update: &LrpUpdate) {
        if let Some(instances) = update.instances {
            self.instances = instances;
        }
        if let Some(routes) = &update.routes {
            self.routes = routes.clone();
        }
        if let Some(annotation) = &update.annotation {
            self.annotation = annotation.clone();
        }
    }
}

/// The image reference of a droplet in Cube's registry:
/// `<registry>/cloudfoundry/<droplet_guid>:<droplet_hash>` (no registry prefix when empty).
pub fn droplet_image(registry: &str, droplet_guid: &str, droplet_hash: &str) -> String {
    let registry = registry.trim_end_matches('/');
    if registry.is_empty() {
        format!("cloudfoundry/{droplet_guid}:{droplet_hash}")
    } else {
        format!("{registry}/cloudfoundry/{droplet_guid}:{droplet_hash}")
    }
}

/// What runs in an LRP or task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LrpLifecycle {
    /// A docker image.
    Docker {
        /// Image reference.
        image: String,
        /// Command; empty means the image's own entrypoint.
        command: Vec<String>,
        /// Credentials for a private registry.
        credentials: Option<RegistryCredentials>,
    },
    /// A staged droplet, served by Cube's registry as an image.
    Buildpack {
        /// Droplet guid.
        droplet_guid: String,
        /// Droplet hash (the image tag).
        droplet_hash: String,
        /// Start command.
        start_command: String,
    },
}

/// Registry credentials. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Which kind.
    pub kind: HealthCheckType,
    /// Path for `http` checks (starts with `/`).
    pub http_endpoint: String,
    /// Timeout of one check in ms (0: backend default).
    pub timeout_ms: u64,
}

/// How an instance's health is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthCheckType {
    /// A TCP connect to the first port succeeds.
    Port,
    /// An HTTP GET of the endpoint on the first port answers 2xx.
    Http,
    /// The process is alive.
    Process,
}

impl HealthCheckType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Port => "port",
            Self::Http => "http",
            Self::Process => "process",
        }
    }
}

/// A change to a running LRP. Absent fields do not change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LrpUpdate {
    /// New instance count.
    pub instances: Option<u32>,
    /// New routes.
    pub routes: Option<Routes>,
    /// New annotation.
    pub annotation: Option<String>,
}

/// One row of `GET /apps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulingInfo {
    /// Which LRP.
    pub id: LrpId,
    /// The annotation of the last desire or update (CC's etag).
    pub annotation: String,
    /// Desired instances.
    pub instances: u32,
}

/// The state of one instance, in Diego's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceState {
    /// Healthy and serving.
    Running,
    /// Placed (created), not yet healthy.
    Claimed,
    /// Not placed yet; `placement_error` says why when known.
    Unclaimed,
    /// Crashed and not (yet) running again.
    Crashed,
    /// The scheduler cannot tell.
    Unknown,
}

impl InstanceState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Claimed => "CLAIMED",
            Self::Unclaimed => "UNCLAIMED",
            Self::Crashed => "CRASHED",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RUNNING" => Self::Running,
            "CLAIMED" => Self::Claimed,
            "UNCLAIMED" => Self::Unclaimed,
            "CRASHED" => Self::Crashed,
            "UNKNOWN" => Self::Unknown,
            _ => return None,
        })
    }
}

/// One instance of an LRP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Index, `0..instances`.
    pub index: u32,
    /// When it entered `state`, unix nanoseconds.
    pub since: i64,
    /// Its state.
    pub state: InstanceState,
    /// Why it is not placed (for `Unclaimed`), else empty.
    pub placement_error: String,
    /// How often this instance crashed (Diego's ActualLRP `crash_count`; a
    /// backend may start counting anew after a long healthy run or a
    /// restart asked for by CC, as Diego does).
    pub crash_count: u32,
    /// The description of its last crash (Diego's `crash_reason`, the
    /// crash event's `exit_description`), empty when it never crashed.
    pub crash_reason: String,
}

/// A validated one-off task.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Task guid.
    pub guid: String,
    /// Task name.
    pub name: String,
    /// The app it belongs to.
    pub app: Named,
    /// The space.
    pub space: Named,
    /// The organization.
    pub org: Named,
    /// Where completion is reported (empty: nowhere).
    pub completion_callback: String,
    /// Environment, in order. Backends must treat values as secrets.
    pub environment: Vec<EnvironmentVariable>,
    /// What runs.
    pub lifecycle: LrpLifecycle,
    /// Memory limit in MB (0: backend default).
    pub memory_mb: u64,
    /// Disk limit in MB (0: backend default).
    pub disk_mb: u64,
    /// CPU weight, 0–100.
    pub cpu_weight: u8,
    /// Steps run one after another in the lifecycle's docker image instead of
    /// its command (empty: the lifecycle runs as it is). Validated: only with a
    /// docker lifecycle without a command, names unique DNS-1123 labels, each
    /// command non-empty. Every step sees [`WORKSPACE_ENV`].
    pub steps: Vec<TaskStep>,
}

/// The variable every step of a task with steps finds its shared scratch
/// directory in (backends set it, overriding the task's environment): the
/// task's scratch dir on the local backend, `/workspace` (an `emptyDir`) on
/// Kubernetes, the container's own `/tmp` on Diego.
pub const WORKSPACE_ENV: &str = "CUBE_WORKSPACE";

/// The failure reason of a task whose step `step` failed with `detail`
/// (`step build failed: exited with status 1`), the same on every backend.
pub fn step_failure_reason(step: &str, detail: &str) -> String {
    format!("{}: {detail}", step_failure_prefix(step))
}

/// `step <name> failed`: what a failure reason of step `step` starts with.
pub fn step_failure_prefix(step: &str) -> String {
    format!("step {step} failed")
}

/// Where a task is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Accepted, not started.
    Pending,
    /// Running.
    Running,
    /// Finished (succeeded or failed) or cancelled.
    Completed {
        /// Whether it failed.
        failed: bool,
        /// Why (empty on success).
        failure_reason: String,
        /// Its result.
        result: String,
    },
}

impl TaskState {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Completed { .. } => "COMPLETED",
        }
    }
}

/// A task and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    /// Task guid.
    pub guid: String,
    /// Task name.
    pub name: String,
    /// App guid.
    pub app_guid: String,
    /// State.
    pub state: TaskState,
}

/// Something a backend observed that Cloud Controller must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An instance exited unexpectedly.
    Crashed(CrashEvent),
    /// A task finished (or was cancelled).
    TaskCompleted(TaskCompletion),
}

/// An instance crash, reported to CC's `/internal/v4/apps/{process_guid}/crashed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashEvent {
    /// Which LRP.
    pub id: LrpId,
    /// Instance id (pod name, instance guid).
    pub instance: String,
    /// Instance index.
    pub index: u32,
    /// Where it ran.
    pub cell_id: String,
    /// Short reason (`CRASHED`, `OOMKilled`, …).
    pub reason: String,
    /// Exit status.
    pub exit_status: i32,
    /// Longer description.
    pub exit_description: String,
    /// Crashes of this instance so far, including this one.
    pub crash_count: u32,
    /// When, unix nanoseconds.
    pub crash_timestamp: i64,
}

/// A task's completion, reported to its `completion_callback`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCompletion {
    /// Task guid.
    pub guid: String,
    /// Where to report it.
    pub completion_callback: String,
    /// Whether it failed.
    pub failed: bool,
    /// Why.
    pub failure_reason: String,
    /// Its result.
    pub result: String,
}

/// Now, in unix nanoseconds (0 if the clock is before 1970).
pub fn now_unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
