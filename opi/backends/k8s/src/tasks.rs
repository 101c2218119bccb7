//! Jobs as OPI task states: pure functions over `Job`s (and their pods, to
//! name the failed step of a task with steps), plus the one pod lookup that
//! needs.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, Secret};
use kube::Client;
use kube::api::{Api, ListParams};
use opi::model::{TaskCompletion, TaskState, TaskStatus, step_failure_reason};

use crate::labels;
use crate::names::label_value;
use crate::translate::task::CONTAINER;

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

/// Where `job`'s completion goes: its callback Secret, or (Jobs an older
/// Cube created) its annotation; empty when neither can be read (logged).
pub async fn callback(client: &Client, job: &Job) -> String {
    if let Some(url) = annotation(job, labels::COMPLETION_CALLBACK) {
        return url.to_owned();
    }
    let (Some(namespace), Some(name)) = (
        job.metadata.namespace.as_deref(),
        job.metadata.name.as_deref(),
    ) else {
        return String::new();
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret_name = crate::translate::task::callback_secret_name(name);
    // A few tries: without the callback the completion cannot be delivered.
    let mut delay = std::time::Duration::from_millis(100);
    for attempt in 1..=CALLBACK_ATTEMPTS {
        match secrets.get_opt(&secret_name).await {
            Ok(secret) => {
                return secret
                    .and_then(|s| s.data)
                    .and_then(|mut data| data.remove(crate::translate::task::CALLBACK_KEY))
                    .and_then(|url| String::from_utf8(url.0).ok())
                    .unwrap_or_default();
            }
            Err(error) if attempt == CALLBACK_ATTEMPTS => {
                tracing::error!(%error, job = %name, "cannot read the task's completion callback");
            }
            Err(error) => {
                tracing::debug!(%error, job = %name, attempt, "reading the task's completion callback");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    String::new()
}

/// Reads of a callback Secret before giving up.
const CALLBACK_ATTEMPTS: u32 = 4;

/// Whether `job` runs a task with steps (its containers are named after them).
pub fn has_steps(job: &Job) -> bool {
    job.spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref())
        .and_then(|pod| pod.containers.first())
        .is_some_and(|container| container.name != CONTAINER)
}

/// The failure reason naming the step that failed in `pod` of a task with
/// steps: the first container, init containers in order then the main one,
/// that terminated with a non-zero exit code. `None` when none did.
pub fn failed_step(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let init = status.init_container_statuses.as_deref().unwrap_or(&[]);
    let main = status.container_statuses.as_deref().unwrap_or(&[]);
    // The kubelet lists init statuses in spec order; order them by the spec
    // anyway, so the *first* failure is the one named.
    let order: Vec<&str> = pod
        .spec
        .as_ref()
        .map(|spec| {
            let init = spec.init_containers.as_deref().unwrap_or(&[]);
            init.iter()
                .chain(&spec.containers)
                .map(|c| c.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut statuses: Vec<&ContainerStatus> = init.iter().chain(main).collect();
    statuses.sort_by_key(|c| order.iter().position(|name| *name == c.name));
    statuses.into_iter().find_map(|container| {
        let terminated = container.state.as_ref()?.terminated.as_ref()?;
        (terminated.exit_code != 0).then(|| {
            let mut detail = format!("exited with status {}", terminated.exit_code);
            if let Some(reason) = terminated.reason.as_deref().filter(|r| *r != "Error") {
                detail.push_str(&format!(" ({reason})"));
            }
            step_failure_reason(&container.name, &detail)
        })
    })
}

/// [`completion`], with a failed task's reason naming its failed step (read
/// from the Job's pods) when it has steps. Without a readable pod the
/// Job's own reason stays.
pub async fn completion_naming_step(client: &Client, job: &Job) -> Option<TaskCompletion> {
    let mut done = completion(job)?;
    done.completion_callback = callback(client, job).await;
    if !(done.failed && has_steps(job)) {
        return Some(done);
    }
    let (Some(namespace), Some(guid)) = (job.metadata.namespace.as_deref(), guid(job)) else {
        return Some(done);
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = format!("{}={}", labels::TASK_GUID, label_value(guid));
    match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => {
            if let Some(reason) = list.items.iter().find_map(failed_step) {
                done.failure_reason = reason;
            }
        }
        Err(error) => {
            tracing::warn!(%error, task_guid = %guid, "cannot read the task's pods to name its failed step");
        }
    }
    Some(done)
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

    fn pod(init: &[(&str, Option<i32>)], main: &[(&str, Option<i32>)]) -> Pod {
        use k8s_openapi::api::core::v1::{
            Container, ContainerState, ContainerStateTerminated, ContainerStateWaiting, PodSpec,
            PodStatus,
        };
        let statuses = |list: &[(&str, Option<i32>)]| -> Vec<ContainerStatus> {
            list.iter()
                .map(|(name, code)| ContainerStatus {
                    name: (*name).into(),
                    state: Some(match code {
                        Some(code) => ContainerState {
                            terminated: Some(ContainerStateTerminated {
                                exit_code: *code,
                                reason: Some(
                                    if *code == 137 { "OOMKilled" } else { "Error" }.into(),
                                ),
                                ..ContainerStateTerminated::default()
                            }),
                            ..ContainerState::default()
                        },
                        None => ContainerState {
                            waiting: Some(ContainerStateWaiting::default()),
                            ..ContainerState::default()
                        },
                    }),
                    ..ContainerStatus::default()
                })
                .collect()
        };
        let containers = |list: &[(&str, Option<i32>)]| -> Vec<Container> {
            list.iter()
                .map(|(name, _)| Container {
                    name: (*name).into(),
                    ..Container::default()
                })
                .collect()
        };
        // The kubelet's status lists need not follow the spec's order.
        let mut init_statuses = statuses(init);
        init_statuses.reverse();
        Pod {
            spec: Some(PodSpec {
                init_containers: Some(containers(init)),
                containers: containers(main),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                init_container_statuses: Some(init_statuses),
                container_statuses: Some(statuses(main)),
                ..PodStatus::default()
            }),
            metadata: ObjectMeta::default(),
        }
    }

    #[test]
    fn the_first_failed_step_is_named() {
        let failed = pod(
            &[
                ("download", Some(0)),
                ("build", Some(3)),
                ("check", Some(1)),
            ],
            &[("upload", None)],
        );
        assert_eq!(
            failed_step(&failed).as_deref(),
            Some("step build failed: exited with status 3")
        );
        let oom = pod(&[("download", Some(0))], &[("upload", Some(137))]);
        assert_eq!(
            failed_step(&oom).as_deref(),
            Some("step upload failed: exited with status 137 (OOMKilled)")
        );
        let fine = pod(&[("download", Some(0))], &[("upload", Some(0))]);
        assert_eq!(failed_step(&fine), None);
        assert_eq!(failed_step(&Pod::default()), None);
    }

    #[test]
    fn only_jobs_whose_containers_are_steps_have_steps() {
        use k8s_openapi::api::batch::v1::JobSpec;
        use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
        let with = |name: &str| Job {
            spec: Some(JobSpec {
                template: PodTemplateSpec {
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: name.into(),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                    metadata: None,
                },
                ..JobSpec::default()
            }),
            ..Job::default()
        };
        assert!(has_steps(&with("upload")));
        assert!(!has_steps(&with(CONTAINER)));
        assert!(!has_steps(&Job::default()));
    }

    #[test]
    fn a_reported_completion_is_not_reported_again() {
        assert_eq!(completion(&job(vec![("Complete", "True")], true)), None);
    }
}
