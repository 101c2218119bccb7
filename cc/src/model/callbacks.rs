//! Callbacks a scheduler bridge sends to CC about running work: app crashes
//! (`POST /internal/v4/apps/{process_guid}/crashed`) and task completion
//! (`POST {completion_callback}`, normally `/internal/v4/tasks/{guid}/completed`).

use serde::{Deserialize, Serialize};

/// One instance crashed (Eirini's `cf.AppCrashedRequest`, plus `cell_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCrashed {
    /// Instance guid (pod name, container id, …).
    pub instance: String,
    /// Instance index.
    pub index: u32,
    /// Where it ran.
    #[serde(default)]
    pub cell_id: String,
    /// Why (`CRASHED`, `OOMKilled`, …).
    pub reason: String,
    /// Exit code, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    /// Human-readable exit description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_description: Option<String>,
    /// How many times this instance has crashed.
    pub crash_count: u32,
    /// When, in Unix nanoseconds.
    pub crash_timestamp: i64,
}

/// A task finished (`cf.TaskCompletedRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCompleted {
    /// The task.
    pub task_guid: String,
    /// Whether it failed.
    pub failed: bool,
    /// Why, when it failed.
    #[serde(default)]
    pub failure_reason: String,
    /// The task's result file contents, if any.
    #[serde(default)]
    pub result: String,
    /// Opaque annotation, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
}
