//! Callbacks a scheduler bridge sends to CC about running work: app crashes
//! (`POST /internal/v4/apps/{process_guid}/crashed`) and task completion
//! (`POST {completion_callback}`, normally `/internal/v4/tasks/{guid}/completed`).
//!
//! These are the only declarations of the two bodies: OPI's forwarder sends
//! them, St8ge reads a task completion, the simulator receives both. A `null`
//! string field is read as empty, as Eirini's Go structs write it.

use serde::{Deserialize, Deserializer, Serialize};

/// One instance crashed (Eirini's `cf.AppCrashedRequest`, plus `cell_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCrashed {
    /// Instance guid (pod name, container id, …).
    pub instance: String,
    /// Instance index.
    pub index: u32,
    /// Where it ran.
    #[serde(default, deserialize_with = "null_as_empty")]
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
    #[serde(default, deserialize_with = "null_as_empty")]
    pub failure_reason: String,
    /// The task's result file contents, if any.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub result: String,
    /// Opaque annotation, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
}

/// A string field that may be `null`: `null` is the empty string.
fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Option::<String>::deserialize(deserializer).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_strings_are_read_as_empty() {
        let task: TaskCompleted = serde_json::from_str(
            r#"{"task_guid":"t","failed":true,"failure_reason":null,"result":null}"#,
        )
        .unwrap();
        assert_eq!(task.failure_reason, "");
        assert_eq!(task.result, "");
        let crash: AppCrashed = serde_json::from_str(
            r#"{"instance":"i","index":0,"cell_id":null,"reason":"CRASHED","crash_count":1,"crash_timestamp":1}"#,
        )
        .unwrap();
        assert_eq!(crash.cell_id, "");
        assert!(serde_json::from_str::<TaskCompleted>(r#"{"task_guid":"t","failed":1}"#).is_err());
    }
}
