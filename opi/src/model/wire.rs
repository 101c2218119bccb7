//! The JSON bodies of the OPI HTTP API, byte-compatible with what Cloud
//! Controller sends to (and reads from) Eirini.
//!
//! Field names follow `cloud_controller_ng/lib/cloud_controller/opi/*.rb` and
//! `eirini/models/cf`. Numbers that CC could send out of range are kept wide here
//! (`i64`) so that validation ([`super::validate`]) can name the field and the
//! value instead of failing with a generic parse error. Unknown fields are
//! accepted and ignored, as Eirini does, so a newer CC keeps working.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// CC (Ruby) sends `null` for unset strings, lists and maps; treat it as empty.
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `PUT /apps/{process_guid}`: desire a long-running process (LRP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesireLrpRequest {
    /// The CC process guid (without version).
    pub guid: String,
    /// The CC process version; a new version is a new LRP.
    pub version: String,
    /// `<guid>-<version>`; when absent it is derived from those two.
    #[serde(default, deserialize_with = "null_default")]
    pub process_guid: String,
    /// `web`, `worker`, …
    #[serde(default, deserialize_with = "null_default")]
    pub process_type: String,
    /// The app's guid.
    #[serde(default, deserialize_with = "null_default")]
    pub app_guid: String,
    /// The app's name.
    #[serde(default, deserialize_with = "null_default")]
    pub app_name: String,
    /// The space's guid.
    #[serde(default, deserialize_with = "null_default")]
    pub space_guid: String,
    /// The space's name.
    #[serde(default, deserialize_with = "null_default")]
    pub space_name: String,
    /// The organization's guid.
    #[serde(default, deserialize_with = "null_default")]
    pub organization_guid: String,
    /// The organization's name.
    #[serde(default, deserialize_with = "null_default")]
    pub organization_name: String,
    /// Isolation segment placement tags.
    #[serde(default, deserialize_with = "null_default")]
    pub placement_tags: Vec<String>,
    /// Container ports the app listens on.
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<i64>,
    /// Routes, keyed by router (`cf-router`).
    #[serde(default, deserialize_with = "null_default")]
    pub routes: Routes,
    /// The app's environment (CC sends every value as a string).
    #[serde(default, deserialize_with = "null_default")]
    pub environment: super::Environment,
    /// Egress rules, passed through untouched.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub egress_rules: Vec<serde_json::Value>,
    /// Desired number of instances.
    pub instances: i64,
    /// CC's `updated_at` as a float-like string; becomes the LRP's annotation.
    #[serde(default, deserialize_with = "null_default")]
    pub last_updated: String,
    /// `port` (default), `http`, `process` (CC's legacy `none` means `process`).
    #[serde(default, deserialize_with = "null_default")]
    pub health_check_type: String,
    /// Path probed by `http` health checks.
    #[serde(default, deserialize_with = "null_default")]
    pub health_check_http_endpoint: String,
    /// Timeout of one health check, in milliseconds (0: backend default).
    #[serde(default, deserialize_with = "null_default")]
    pub health_check_timeout_ms: i64,
    /// How long an instance may take to become healthy, in milliseconds.
    #[serde(default, deserialize_with = "null_default")]
    pub start_timeout_ms: i64,
    /// Memory limit in MB.
    pub memory_mb: i64,
    /// Disk limit in MB.
    #[serde(default, deserialize_with = "null_default")]
    pub disk_mb: i64,
    /// Relative CPU weight, 0–100.
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_weight: i64,
    /// Volume service mounts.
    #[serde(default, deserialize_with = "null_default")]
    pub volume_mounts: Vec<VolumeMount>,
    /// How to run the process: a docker image or a droplet.
    pub lifecycle: Lifecycle,
    /// User annotations copied to the scheduler's objects.
    #[serde(default, deserialize_with = "null_default")]
    pub user_defined_annotations: BTreeMap<String, String>,
}

/// Routes of an LRP keyed by router name. Only `cf-router` has a known shape;
/// other keys are kept verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// HTTP routes for the gorouter.
    #[serde(rename = "cf-router", default, deserialize_with = "null_default")]
    pub cf_router: Vec<Route>,
    /// Other routers' entries, passed through.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One HTTP route: requests for `hostname` go to container `port`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Route {
    /// The route's host name, e.g. `myapp.example.com`.
    pub hostname: String,
    /// The container port it reaches.
    pub port: i64,
}

/// A volume service mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// The volume's id (claim name on Kubernetes).
    pub volume_id: String,
    /// Where it is mounted in the container.
    pub mount_dir: String,
}

/// Exactly one of the two lifecycles is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Run a docker image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_lifecycle: Option<DockerLifecycle>,
    /// Run a staged droplet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_lifecycle: Option<BuildpackLifecycle>,
}

/// A docker image to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerLifecycle {
    /// Image reference.
    pub image: String,
    /// Command (CC sends `["/bin/sh", "-c", cmd]` or nothing for the image's own).
    #[serde(default, deserialize_with = "null_default")]
    pub command: Vec<String>,
    /// Registry user for private images.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub registry_username: String,
    /// Registry password for private images.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub registry_password: String,
}

/// A droplet to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackLifecycle {
    /// The droplet's guid.
    pub droplet_guid: String,
    /// The droplet's content hash.
    pub droplet_hash: String,
    /// The start command from staging or the user.
    #[serde(default, deserialize_with = "null_default")]
    pub start_command: String,
}

/// `POST /apps/{process_guid}`: change instances, routes or annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateLrpRequest {
    /// The CC process guid.
    pub guid: String,
    /// The CC process version.
    pub version: String,
    /// What changes.
    pub update: LrpUpdateBody,
}

/// The changeable fields; absent ones stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LrpUpdateBody {
    /// New instance count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<i64>,
    /// New routes (replace the old ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Routes>,
    /// New annotation (CC's `updated_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
}

/// `GET /apps` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulingInfosResponse {
    /// One entry per desired LRP.
    pub desired_lrp_scheduling_infos: Vec<SchedulingInfoBody>,
}

/// One desired LRP as `GET /apps` lists it. `desired_lrp_key.process_guid` is
/// what Cloud Controller reads; `process_guid` is the flat copy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulingInfoBody {
    /// Eirini's nested key.
    #[serde(default, deserialize_with = "null_default")]
    pub desired_lrp_key: DesiredLrpKey,
    /// `<guid>-<version>`.
    #[serde(default, deserialize_with = "null_default")]
    pub process_guid: String,
    /// CC process guid.
    pub guid: String,
    /// CC process version.
    pub version: String,
    /// CC's `updated_at` / etag of the last desire or update.
    #[serde(default, deserialize_with = "null_default")]
    pub annotation: String,
    /// Desired instances.
    #[serde(default, deserialize_with = "null_default")]
    pub instances: u32,
}

/// `{process_guid}` wrapper used by Eirini's scheduling infos.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredLrpKey {
    /// `<guid>-<version>`.
    pub process_guid: String,
}

/// `GET /apps/{guid}/{version}` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredLrpResponse {
    /// The LRP (without its environment, which may hold secrets).
    pub desired_lrp: DesiredLrpBody,
}

/// The public view of a desired LRP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredLrpBody {
    /// `<guid>-<version>`.
    pub process_guid: String,
    /// CC process guid.
    pub guid: String,
    /// CC process version.
    pub version: String,
    /// `web`, `worker`, …
    #[serde(default, deserialize_with = "null_default")]
    pub process_type: String,
    /// App name.
    #[serde(default, deserialize_with = "null_default")]
    pub app_name: String,
    /// Desired instances.
    pub instances: u32,
    /// Routes.
    #[serde(default, deserialize_with = "null_default")]
    pub routes: Routes,
    /// CC's `updated_at` of the last desire or update.
    #[serde(default, deserialize_with = "null_default")]
    pub annotation: String,
    /// The image that runs (docker image, or the droplet's image reference).
    #[serde(default, deserialize_with = "null_default")]
    pub image: String,
    /// Memory limit in MB.
    #[serde(default, deserialize_with = "null_default")]
    pub memory_mb: u64,
    /// Disk limit in MB.
    #[serde(default, deserialize_with = "null_default")]
    pub disk_mb: u64,
}

/// `GET /apps/{guid}/{version}/instances` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstancesResponse {
    /// `<guid>-<version>`.
    pub process_guid: String,
    /// One entry per known instance, by index.
    pub instances: Vec<InstanceBody>,
    /// Set (Eirini-style) when instances cannot be reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One instance's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceBody {
    /// Instance index (`CF_INSTANCE_INDEX`).
    pub index: u32,
    /// When it entered this state, unix nanoseconds.
    pub since: i64,
    /// `RUNNING`, `CLAIMED`, `UNCLAIMED`, `CRASHED` or `UNKNOWN`.
    pub state: String,
    /// Why it cannot be placed, when `UNCLAIMED`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub placement_error: String,
}

/// `POST /tasks/{guid}`: run a one-off task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    /// Task guid; when absent the path's guid is used.
    #[serde(default, deserialize_with = "null_default")]
    pub guid: String,
    /// Task name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// App guid.
    #[serde(default, deserialize_with = "null_default")]
    pub app_guid: String,
    /// App name.
    #[serde(default, deserialize_with = "null_default")]
    pub app_name: String,
    /// Organization name.
    #[serde(default, deserialize_with = "null_default")]
    pub org_name: String,
    /// Organization guid.
    #[serde(default, deserialize_with = "null_default")]
    pub org_guid: String,
    /// Space name.
    #[serde(default, deserialize_with = "null_default")]
    pub space_name: String,
    /// Space guid.
    #[serde(default, deserialize_with = "null_default")]
    pub space_guid: String,
    /// Where to report completion.
    #[serde(default, deserialize_with = "null_default")]
    pub completion_callback: String,
    /// Environment, in order.
    #[serde(default, deserialize_with = "null_default")]
    pub environment: Vec<EnvironmentVariable>,
    /// What to run.
    pub lifecycle: Lifecycle,
    /// Memory limit in MB (0: backend default).
    #[serde(default, deserialize_with = "null_default")]
    pub memory_mb: i64,
    /// Disk limit in MB (0: backend default).
    #[serde(default, deserialize_with = "null_default")]
    pub disk_mb: i64,
    /// CPU weight, 0–100.
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_weight: i64,
    /// Cube's extension (CC never sends it): named commands run one after
    /// another in the docker image, sharing a scratch workspace
    /// (`$CUBE_WORKSPACE`). Absent or empty: the lifecycle's command runs.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub steps: Vec<TaskStep>,
}

/// One step of a task: `{"name":"build","command":["cube","stage","build"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStep {
    /// Step name, a DNS-1123 label unique within the task; failure reasons name it.
    pub name: String,
    /// The command (path and arguments), run in the task's image.
    #[serde(default, deserialize_with = "null_default")]
    pub command: Vec<String>,
}

/// A `{name, value}` environment entry (tasks and staging). Its `Debug`
/// prints the name only: values may be secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    /// Variable name.
    pub name: String,
    /// Value.
    pub value: String,
}

impl std::fmt::Debug for EnvironmentVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentVariable")
            .field("name", &self.name)
            .field("value", &super::REDACTED)
            .finish()
    }
}

/// `GET /tasks/{guid}` response and `GET /tasks` element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResponse {
    /// Task guid.
    pub guid: String,
    /// Task name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// App guid.
    #[serde(default, deserialize_with = "null_default")]
    pub app_guid: String,
    /// `PENDING`, `RUNNING`, `COMPLETED`.
    pub state: String,
    /// Whether it failed (only meaningful when `COMPLETED`).
    #[serde(default, deserialize_with = "null_default")]
    pub failed: bool,
    /// Why it failed.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub failure_reason: String,
}

/// `POST /stage/{staging_guid}` (served by St8ge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagingRequest {
    /// App guid.
    pub app_guid: String,
    /// App name.
    #[serde(default, deserialize_with = "null_default")]
    pub app_name: String,
    /// The staging guid (also in the path).
    #[serde(default, deserialize_with = "null_default")]
    pub staging_guid: String,
    /// Organization name.
    #[serde(default, deserialize_with = "null_default")]
    pub org_name: String,
    /// Organization guid.
    #[serde(default, deserialize_with = "null_default")]
    pub org_guid: String,
    /// Space name.
    #[serde(default, deserialize_with = "null_default")]
    pub space_name: String,
    /// Space guid.
    #[serde(default, deserialize_with = "null_default")]
    pub space_guid: String,
    /// Staging environment, in order.
    #[serde(default, deserialize_with = "null_default")]
    pub environment: Vec<EnvironmentVariable>,
    /// Where St8ge reports the result.
    pub completion_callback: String,
    /// What to stage.
    pub lifecycle: StagingLifecycle,
    /// Memory for the staging task, in MB.
    #[serde(default, deserialize_with = "null_default")]
    pub memory_mb: i64,
    /// Disk for the staging task, in MB.
    #[serde(default, deserialize_with = "null_default")]
    pub disk_mb: i64,
    /// CPU weight of the staging task.
    #[serde(default, deserialize_with = "null_default")]
    pub cpu_weight: i64,
}

/// Exactly one of the two staging lifecycles is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingLifecycle {
    /// Stage a docker image (read its config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_lifecycle: Option<StagingDockerLifecycle>,
    /// Run buildpacks over app bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_lifecycle: Option<StagingBuildpackLifecycle>,
}

/// Docker staging input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingDockerLifecycle {
    /// Image reference.
    pub image: String,
    /// Registry user.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub registry_username: String,
    /// Registry password.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub registry_password: String,
}

/// Buildpack staging input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingBuildpackLifecycle {
    /// Where to download the app bits.
    pub app_bits_download_uri: String,
    /// Where to upload the droplet.
    pub droplet_upload_uri: String,
    /// Buildpacks, in detection order.
    #[serde(default, deserialize_with = "null_default")]
    pub buildpacks: Vec<Buildpack>,
    /// Stack name, e.g. `cflinuxfs4`.
    #[serde(default, deserialize_with = "null_default")]
    pub stack: String,
    /// Build cache download URI.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub buildpack_cache_download_uri: String,
    /// Build cache upload URI.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub buildpack_cache_upload_uri: String,
    /// Build cache checksum.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub buildpack_cache_checksum: String,
    /// Build cache checksum algorithm.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub buildpack_cache_checksum_algorithm: String,
}

/// One buildpack offered to staging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buildpack {
    /// Display name.
    pub name: String,
    /// CC's key for the buildpack.
    #[serde(default, deserialize_with = "null_default")]
    pub key: String,
    /// Where to download its zip.
    pub url: String,
    /// Skip `bin/detect` (the user named this buildpack).
    #[serde(default, deserialize_with = "null_default")]
    pub skip_detect: bool,
}

/// The error body of every OPI (and St8ge) error response:
/// `{"error":{"code","message"},"message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorBody,
    /// The same message again at the top level, where an Eirini-era CC reads
    /// it (`task_client.rb`, `stager_client.rb`: `response_json.message`, shown
    /// to the user as the RunnerError's reason). Eirini sent only this field.
    #[serde(default)]
    pub message: String,
}

impl ErrorResponse {
    /// The body for an error with `code` saying `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error: ErrorBody {
                code: code.into(),
                message: message.clone(),
            },
            message,
        }
    }
}

/// A machine-readable code and a human message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `InvalidRequest`, `NotFound`, `Conflict`, `PayloadTooLarge`,
    /// `NotSupported`, `Unavailable` or `Internal`.
    pub code: String,
    /// What is wrong.
    pub message: String,
}
