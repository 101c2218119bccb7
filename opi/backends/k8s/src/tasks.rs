//! Jobs as OPI task states: pure functions over `Job`s.

use k8s_openapi::api::batch::v1::Job;
use opi::model::{TaskCompletion, TaskState, TaskStatus};

use crate::labels;

fn annotation<'a>(job: &'a Job, key: &str) -> Option<&'a str> {
    job.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The task guid of a Job (full value, from its annotation).
pub fn guid(job: &Job) -> Option<&str> {
    annotation(job, labels::TASK_GUID)
}

/// The state of a task from its Job: completed when a `Complete` or `Failed`
/// condition is true, running once it has an active pod or a start time,
/// pending before.
pub fn state(job: &Job) -> TaskState {
    let status = job.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    for condition in conditions.iter().filter(|c| c.status == "True") {
        match condition.type_.as_str() {
            "Complete" | "SuccessCriteriaMet" => {
                return TaskState::Completed {
                    failed: false,
                    failure_reason: String::new(),
                    result: String::new(),
                };
            }
            "Failed" | "FailureTarget" => {
                let reason = match (&condition.reason, &condition.message) {
                    (Some(reason), Some(message)) if !message.is_empty() => {
                        format!("{reason}: {message}")
                    }
                    (Some(reason), _) => reason.clone(),
                    (None, Some(message)) => message.clone(),
                    (None, None) => "task failed".into(),
                };
                return TaskState::Completed {
                    failed: true,
                    failure_reason: reason,
                    result: String::new(),
                };
            }
            _ => {}
        }
    }
    let active = status.and_then(|s| s.active).unwrap_or(0) > 0;
    let started = status.and_then(|s| s.start_time.as_ref()).is_some();
    if active || started {
        TaskState::Running
    } else {
        TaskState::Pending
    }
}

/// The task status of a Job, or `None` for a Job that is not a Cube task.
pub fn status(job: &Job) -> Option<TaskStatus> {
    Some(TaskStatus {
        guid: guid(job)?.to_owned(),
        name: annotation(job, labels::TASK_NAME).unwrap_or("").to_owned(),
        app_guid: annotation(job, labels::APP_GUID).unwrap_or("").to_owned(),
        state: state(job),
    })
}

/// The completion to report for a finished Job not reported yet, else `None`.
pub fn completion(job: &Job) -> Option<TaskCompletion> {
    if annotation(job, labels::COMPLETION_REPORTED).is_some() {
        return None;
    }
    let TaskState::Completed {
        failed,
        failure_reason,
        result,
    } = state(job)
    else {
        return None;
    };
    Some(TaskCompletion {
        guid: guid(job)?.to_owned(),
        completion_callback: annotation(job, labels::COMPLETION_CALLBACK)
            .unwrap_or("")
            .to_owned(),
        failed,
        failure_reason,
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn job(conditions: Vec<(&str, &str)>, reported: bool) -> Job {
        let mut annotations = BTreeMap::from([
            (labels::TASK_GUID.to_owned(), "t1".to_owned()),
            (labels::TASK_NAME.to_owned(), "migrate".to_owned()),
            (
                labels::COMPLETION_CALLBACK.to_owned(),
                "http://cc/cb".to_owned(),
            ),
        ]);
        if reported {
            annotations.insert(labels::COMPLETION_REPORTED.into(), "true".into());
        }
        Job {
            metadata: ObjectMeta {
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(JobStatus {
                conditions: Some(
                    conditions
                        .into_iter()
                        .map(|(kind, status)| JobCondition {
                            type_: kind.into(),
                            status: status.into(),
                            reason: Some("BackoffLimitExceeded".into()),
                            message: Some("Job has reached the specified backoff limit".into()),
                            ..JobCondition::default()
                        })
                        .collect(),
                ),
                ..JobStatus::default()
            }),
        }
    }

    #[test]
    fn a_job_without_conditions_is_pending() {
        assert_eq!(state(&job(vec![], false)), TaskState::Pending);
        assert_eq!(completion(&job(vec![], false)), None);
    }

    #[test]
    fn a_failed_job_completes_with_its_reason() {
        let done = completion(&job(vec![("Failed", "True")], false)).expect("completed");
        assert!(done.failed);
        assert_eq!(done.guid, "t1");
        assert_eq!(done.completion_callback, "http://cc/cb");
        assert!(
            done.failure_reason.contains("BackoffLimitExceeded"),
            "{done:?}"
        );
    }

    #[test]
    fn a_complete_job_succeeds_and_false_conditions_do_not_count() {
        let done = completion(&job(vec![("Failed", "False"), ("Complete", "True")], false));
        assert_eq!(done.map(|d| d.failed), Some(false));
        assert_eq!(
            state(&job(vec![("Complete", "False")], false)),
            TaskState::Pending
        );
    }

    #[test]
    fn a_reported_completion_is_not_reported_again() {
        assert_eq!(completion(&job(vec![("Complete", "True")], true)), None);
    }
}
