//! Waiting for instances through OPI's Eirini-compatible API
//! (`GET /apps/{guid}/{version}/instances`), so `cube push` can say when the
//! app runs. Own types: this crate does not depend on `opi`.
//!
//! Answers are read as an Eirini-era CC reads them ([`lrp_instances`], after
//! `OPI::InstancesClient#lrp_instances`, cloud_controller_ng 9b783b01,
//! `lib/cloud_controller/opi/instances_client.rb`): the body is parsed whatever
//! the status; `error` is a string (a JSON object there cannot be read).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sim::state::AppState;
use crate::sim::view::AppView;
use crate::{Error, Result};

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

/// Polls OPI for an app's instances.
#[derive(Debug, Clone)]
pub struct OpiClient {
    http: reqwest::Client,
    base: url::Url,
}

impl OpiClient {
    /// A client for OPI at `base_url`.
    pub fn new(base_url: &str) -> Result<Self> {
        Self::with_access(base_url, &cube_runtime::access::ClientAccess::default())
    }

    /// A client for OPI at `base_url` with Cube's access settings.
    pub fn with_access(
        base_url: &str,
        access: &cube_runtime::access::ClientAccess,
    ) -> Result<Self> {
        let base = crate::client::urls::parse(base_url)?;
        let http = access
            .builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::ClientSetup(e.to_string()))?;
        Ok(OpiClient { http, base })
    }

    /// One look at the instances, read as CC reads them; OPI's error that the
    /// LRP is `not found` (the Sink has not desired it yet) is an empty list.
    pub async fn instances(&self, app: &AppView) -> Result<Vec<Instance>> {
        let path = format!("/apps/{}/{}/instances", app.guid, app.version);
        let url = crate::client::urls::join(&self.base, &path);
        let response = self.http.get(url).send().await.map_err(|e| {
            Error::Push(format!(
                "cannot reach OPI at {} to watch the instances: {e} (pass --no-wait to push without waiting)",
                self.base
            ))
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Push(format!("OPI's answer to {path}: {e}")))?;
        let has_desired = app.state == AppState::Started && app.instances > 0;
        match lrp_instances(&body, has_desired) {
            Ok(LrpInstances::Instances(instances)) => Ok(instances),
            Ok(LrpInstances::Failed(error)) if error.contains("not found") => Ok(Vec::new()),
            Ok(LrpInstances::Failed(error) | LrpInstances::NotRunningProcess(error)) => Err(
                Error::Push(format!("OPI answered {path} with {status}: {error}")),
            ),
            Err(problem) => Err(Error::Push(format!(
                "OPI's answer to {path} ({status}) cannot be read: {problem}"
            ))),
        }
    }

    /// Polls until every desired instance runs, one crashes for good, or the
    /// timeout passes.
    pub async fn wait_running(
        &self,
        app: &AppView,
        timeout: Duration,
        interval: Duration,
        say: &mut (dyn FnMut(String) + Send),
    ) -> Result<Vec<Instance>> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            let instances = self.instances(app).await?;
            let running = instances.iter().filter(|i| i.state == "RUNNING").count();
            let summary = format!("   {running} of {} instances running", app.instances);
            if summary != last {
                say(summary.clone());
                last = summary;
            }
            if running >= app.instances as usize {
                return Ok(instances);
            }
            if let Some(error) = instances.iter().find_map(|i| i.placement_error.clone()) {
                return Err(Error::Push(format!(
                    "instances of {} cannot be placed: {error}",
                    app.name
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::Push(format!(
                    "{} of {} instances of {} running after {timeout:?}",
                    running, app.instances, app.name
                )));
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// `cf push`-style instance table.
pub fn table(instances: &[Instance]) -> String {
    let mut lines = vec!["     state      since".to_owned()];
    let mut sorted: Vec<&Instance> = instances.iter().collect();
    sorted.sort_by_key(|i| i.index);
    for instance in sorted {
        lines.push(format!(
            "#{:<3} {:<10} {}",
            instance.index,
            instance.state.to_lowercase(),
            instance.since
        ));
    }
    lines.join("\n")
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
