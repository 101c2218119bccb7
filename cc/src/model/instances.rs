//! OPI's answer to `GET /apps/{guid}/{version}/instances`, read as an
//! Eirini-era CC reads it ([`lrp_instances`], after
//! `OPI::InstancesClient#lrp_instances`, cloud_controller_ng 9b783b01,
//! `lib/cloud_controller/opi/instances_client.rb`): the body is parsed whatever
//! the status; `error` is a string (a JSON object there cannot be read).
//!
//! CC's side of the contract, so its own types: this crate does not depend on
//! `opi`, whose `InstancesResponse` is the writer's side.

use serde::{Deserialize, Serialize};

/// `GET /apps/{guid}/{version}/instances` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancesResponse {
    /// The LRP.
    #[serde(default)]
    pub process_guid: String,
    /// Its instances; CC maps over them for a running process, so they must
    /// be there unless `error` is.
    #[serde(default)]
    pub instances: Option<Vec<Instance>>,
    /// Why OPI cannot report the instances (Eirini: `err.Error()`, a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What CC makes of one answer (one try of `lrp_instances`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LrpInstances {
    /// The instances; none for a process with no desired instances.
    Instances(Vec<Instance>),
    /// A running process's answer carried `error`: CC raises
    /// `InstancesClient::Error` (and retries).
    Failed(String),
    /// A process with no desired instances got an `error` that does not say
    /// `not found`: CC raises `NotRunningProcessError` (no retry).
    NotRunningProcess(String),
}

/// Reads an answer as CC's `lrp_instances` does. `has_desired_instances` is
/// false for a stopped process or one with 0 instances: then a blank `error`
/// or one including `not found` means zero instances, any other
/// `NotRunningProcess`. For a running process any `error` (even empty) is
/// `Failed`. A body that is not such JSON is an error naming the field.
pub fn lrp_instances(body: &[u8], has_desired_instances: bool) -> Result<LrpInstances, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let answer: InstancesResponse =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            match e.path().to_string().as_str() {
                "." => e.into_inner().to_string(),
                path => format!("{path}: {}", e.into_inner()),
            }
        })?;
    if !has_desired_instances {
        return Ok(match answer.error {
            Some(error) if !error.trim().is_empty() && !error.contains("not found") => {
                LrpInstances::NotRunningProcess(format!(
                    "expected no instances for stopped process: {error}"
                ))
            }
            _ => LrpInstances::Instances(Vec::new()),
        });
    }
    if let Some(error) = answer.error {
        return Ok(LrpInstances::Failed(error));
    }
    answer
        .instances
        .map(LrpInstances::Instances)
        .ok_or_else(|| "instances: missing field `instances`".to_owned())
}

/// One instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Index.
    pub index: u32,
    /// Since when (Unix seconds or nanoseconds, as the backend reports).
    #[serde(default)]
    pub since: i64,
    /// `RUNNING`, `CLAIMED`, `UNCLAIMED`, `CRASHED`, `UNKNOWN`.
    pub state: String,
    /// Why it cannot be placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_FOUND: &[u8] = include_bytes!("../../testdata/opi_instances_not_found.json");
    const RUNNING: &[u8] = include_bytes!("../../testdata/opi_instances_running.json");

    #[test]
    fn a_running_process_reads_its_instances() {
        let LrpInstances::Instances(instances) = lrp_instances(RUNNING, true).unwrap() else {
            panic!("expected instances")
        };
        assert_eq!(instances.len(), 2);
        assert_eq!(instances[0].state, "RUNNING");
        assert_eq!(
            instances[1].placement_error.as_deref(),
            Some("insufficient resources: memory")
        );
    }

    #[test]
    fn any_error_fails_a_running_process() {
        let LrpInstances::Failed(error) = lrp_instances(NOT_FOUND, true).unwrap() else {
            panic!("expected a failure")
        };
        assert!(error.contains("not found"), "{error}");
        // Ruby's `if parsed_response['error']`: an empty string is truthy.
        assert_eq!(
            lrp_instances(br#"{"instances":[],"error":""}"#, true).unwrap(),
            LrpInstances::Failed(String::new())
        );
        let missing = lrp_instances(br#"{"process_guid":"pg"}"#, true).unwrap_err();
        assert!(missing.contains("instances"), "{missing}");
    }

    #[test]
    fn a_stopped_process_has_none_unless_the_error_is_not_a_not_found() {
        assert_eq!(
            lrp_instances(NOT_FOUND, false).unwrap(),
            LrpInstances::Instances(Vec::new())
        );
        // Instances listed for a stopped process are not read.
        assert_eq!(
            lrp_instances(RUNNING, false).unwrap(),
            LrpInstances::Instances(Vec::new())
        );
        for blank in [r#"{"error":"  "}"#, r#"{"error":null}"#, "{}"] {
            assert_eq!(
                lrp_instances(blank.as_bytes(), false).unwrap(),
                LrpInstances::Instances(Vec::new()),
                "{blank}"
            );
        }
        assert_eq!(
            lrp_instances(br#"{"error":"etcd unavailable"}"#, false).unwrap(),
            LrpInstances::NotRunningProcess(
                "expected no instances for stopped process: etcd unavailable".into()
            )
        );
    }

    #[test]
    fn an_error_object_is_a_parse_failure() {
        let body = br#"{"process_guid":"pg","instances":[],"error":{"code":"NotFound","message":"LRP pg not found"}}"#;
        for desired in [true, false] {
            let problem = lrp_instances(body, desired).unwrap_err();
            assert!(problem.starts_with("error: invalid type: map"), "{problem}");
        }
        assert!(lrp_instances(b"404 page not found", true).is_err());
    }
}
