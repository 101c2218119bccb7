//! Reporting staging outcomes. The staging task (or OPI, when the task died)
//! POSTs to St8ge's `…/stage/{guid}/completed?cc_callback=<CC's callback>`;
//! St8ge turns that into CC's staging completion and forwards it. CC's
//! callback travels in that URL, so St8ge keeps no state between the two.

use std::time::Duration;

use cc::model::{StagingCompletion, StagingError, TaskCompleted};
use reqwest::Url;

use crate::lifecycle::{failure, ids};
use crate::{Error, Result};

/// St8ge's URL the task reports to: `{public_url}/stage/{guid}/completed?cc_callback=…`.
pub fn completion_url(public_url: &Url, staging_guid: &str, cc_callback: &str) -> Result<Url> {
    let mut url = public_url.clone();
    url.path_segments_mut()
        .map_err(|()| Error::Config(format!("public URL {public_url} cannot take a path")))?
        .pop_if_empty()
        .extend(["stage", staging_guid, "completed"]);
    url.query_pairs_mut()
        .clear()
        .append_pair("cc_callback", cc_callback);
    Ok(url)
}

/// St8ge's URL the steps send their output to: `{public_url}/stage/{guid}/logs`.
pub fn logs_url(public_url: &Url, staging_guid: &str) -> Result<Url> {
    let mut url = public_url.clone();
    url.path_segments_mut()
        .map_err(|()| Error::Config(format!("public URL {public_url} cannot take a path")))?
        .pop_if_empty()
        .extend(["stage", staging_guid, "logs"]);
    url.set_query(None);
    Ok(url)
}

/// What arrived at `…/completed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A staging step's outcome, already in CC's shape.
    Staging(StagingCompletion),
    /// OPI's task-completed callback.
    Task(TaskCompleted),
}

impl Incoming {
    /// Parses a body: OPI's task callback has `task_guid`; anything else must
    /// be CC's `{result}` / `{error}`.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| Error::Invalid(format!("body is not JSON: {e}")))?;
        if value.get("task_guid").is_some() {
            return named(value, "task completion").map(Incoming::Task);
        }
        named(value, "staging completion").map(Incoming::Staging)
    }

    /// What to tell CC, if anything. A task that finished without failing has
    /// reported its outcome itself (its last step did), so nothing is sent;
    /// a failed task (killed, crashed, cancelled, timed out by the scheduler)
    /// never got to, so St8ge reports it.
    pub fn to_cc(&self) -> Option<StagingCompletion> {
        match self {
            Incoming::Staging(completion) => Some(completion.clone()),
            Incoming::Task(task) if !task.failed => None,
            Incoming::Task(task) => Some(StagingCompletion::Failed(task_failure(
                &task.failure_reason,
            ))),
        }
    }
}

/// The staging error for a staging task that failed with `reason`.
pub fn task_failure(reason: &str) -> StagingError {
    let reason = reason.trim();
    if reason.eq_ignore_ascii_case("cancelled") || reason.eq_ignore_ascii_case("canceled") {
        return failure(ids::STAGING, "staging task failed: staging was cancelled");
    }
    let reason = if reason.is_empty() {
        "no reason given"
    } else {
        reason
    };
    failure(ids::STAGING, format!("staging task failed: {reason}"))
}

/// Sends a step's outcome to St8ge's completion URL (bounded retries on
/// connection errors and 5xx).
#[derive(Debug, Clone)]
pub struct Reporter {
    url: Url,
    http: reqwest::Client,
}

impl Reporter {
    /// A reporter posting to `url`.
    /// St8ge's token and CA come from the task's environment
    /// ([`cube_runtime::access::ClientAccess::from_env`]).
    pub fn new(url: Url) -> Result<Self> {
        let access = cube_runtime::access::ClientAccess::from_env()
            .map_err(|e| Error::Config(e.to_string()))?;
        let http = access
            .builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Internal(format!("cannot build HTTP client: {e}")))?;
        Ok(Self { url, http })
    }

    /// Posts `completion`; an error names St8ge's answer.
    pub async fn report(&self, completion: &StagingCompletion) -> Result<()> {
        let shown = redact(&self.url);
        let mut last = String::new();
        for attempt in 0..5u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            match self
                .http
                .post(self.url.clone())
                .json(completion)
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_server_error() => {
                    last = format!("St8ge answered {}", response.status());
                }
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    return Err(Error::Upstream(format!(
                        "reporting to {shown}: St8ge answered {status}: {body}"
                    )));
                }
                Err(e) => last = format!("cannot reach St8ge: {e}"),
            }
        }
        Err(Error::Upstream(format!("reporting to {shown}: {last}")))
    }
}

/// A URL for logs: no password, no query (it may carry CC's callback with
/// credentials).
pub fn redact(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("redacted"));
    }
    url.set_query(None);
    url.to_string()
}

/// `value` as a `T`, or an error naming `what` and the field that is wrong
/// (`staging completion: result.process_types: invalid type …`).
fn named<T: serde::de::DeserializeOwned>(value: serde_json::Value, what: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| invalid(what, e))
}

/// A JSON body as a `T`, or an error naming `what` and the field that is wrong.
pub fn from_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| invalid(what, e))
}

fn invalid(what: &str, e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = e.path().to_string();
    let cause = e.into_inner();
    if path == "." {
        Error::Invalid(format!("{what}: {cause}"))
    } else {
        Error::Invalid(format!("{what}: {path}: {cause}"))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_url_carries_the_callback_encoded() {
        let public = Url::parse("http://127.0.0.1:8086/").unwrap();
        let cc = "http://u:p@127.0.0.1:9022/internal/v3/staging/b1/build_completed?start=true";
        let url = completion_url(&public, "b1", cc).unwrap();
        assert_eq!(url.path(), "/stage/b1/completed");
        let (key, value) = url.query_pairs().next().unwrap();
        assert_eq!(key, "cc_callback");
        assert_eq!(value, cc);
        assert!(!url.as_str().contains("start=true"), "encoded: {url}");
        assert!(!redact(&url).contains("u:p"));
    }

    #[test]
    fn successful_tasks_are_ignored_failed_ones_reported() {
        let ok =
            Incoming::parse(br#"{"task_guid":"g","failed":false,"failure_reason":"","result":""}"#)
                .unwrap();
        assert_eq!(ok.to_cc(), None);
        let killed = Incoming::parse(
            br#"{"task_guid":"g","failed":true,"failure_reason":"exited with status 137","result":""}"#,
        )
        .unwrap();
        let Some(StagingCompletion::Failed(error)) = killed.to_cc() else {
            panic!("expected a failure");
        };
        assert_eq!(error.id, "StagingError");
        assert_eq!(error.message, "staging task failed: exited with status 137");
        let cancelled =
            Incoming::parse(br#"{"task_guid":"g","failed":true,"failure_reason":"cancelled"}"#)
                .unwrap();
        let Some(StagingCompletion::Failed(error)) = cancelled.to_cc() else {
            panic!("expected a failure");
        };
        assert!(error.message.contains("cancelled"), "{}", error.message);
    }

    #[test]
    fn step_outcomes_pass_through() {
        let error =
            Incoming::parse(br#"{"error":{"id":"NoAppDetectedError","message":"none"}}"#).unwrap();
        assert!(matches!(
            error.to_cc(),
            Some(StagingCompletion::Failed(StagingError { ref id, .. })) if id == "NoAppDetectedError"
        ));
        let result = Incoming::parse(
            br#"{"result":{"lifecycle_type":"buildpack","process_types":{"web":"x"}}}"#,
        )
        .unwrap();
        assert!(matches!(
            result.to_cc(),
            Some(StagingCompletion::Succeeded(_))
        ));
        assert!(Incoming::parse(b"{}").is_err());
        assert!(Incoming::parse(b"nope").is_err());
    }
}
