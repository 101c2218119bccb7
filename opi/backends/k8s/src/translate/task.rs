//! A task as a Kubernetes Job (run once, never retried, deleted a while after
//! it finishes) and the Secret holding its environment.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, PodSpec, PodTemplateSpec, Secret, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use opi::model::{Task, WORKSPACE_ENV};

use super::{env_secret_name, pod, registry_secret_name};
use crate::config::Config;
use crate::labels;
use crate::names::{job_name, label_value};

/// The container name of every task pod.
pub const CONTAINER: &str = "opi-task";

/// Labels of a task's objects and pod.
pub fn task_labels(task: &Task) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::TASK_GUID.to_owned(), label_value(&task.guid)),
        (labels::APP_GUID.to_owned(), label_value(&task.app.guid)),
        (
            labels::SOURCE_TYPE.to_owned(),
            labels::SOURCE_TASK.to_owned(),
        ),
    ])
}

fn task_annotations(task: &Task) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::TASK_GUID.to_owned(), task.guid.clone()),
        (labels::TASK_NAME.to_owned(), task.name.clone()),
        (labels::APP_GUID.to_owned(), task.app.guid.clone()),
        (labels::APP_NAME.to_owned(), task.app.name.clone()),
        (labels::SPACE_NAME.to_owned(), task.space.name.clone()),
        (labels::SPACE_GUID.to_owned(), task.space.guid.clone()),
        (labels::ORG_NAME.to_owned(), task.org.name.clone()),
        (labels::ORG_GUID.to_owned(), task.org.guid.clone()),
    ])
}

/// The Job name of `task`.
pub fn name(task: &Task) -> String {
    job_name(&task.app.name, &task.name, &task.guid)
}

/// Where a task with steps mounts its shared `emptyDir` (`$CUBE_WORKSPACE`).
pub const WORKSPACE: &str = "/workspace";
/// The name of that volume.
pub const WORKSPACE_VOLUME: &str = "workspace";

/// The containers of `task`: the task's one container ([`CONTAINER`]), or for
/// a task with steps every step but the last as an init container (the
/// kubelet runs those in order, each only after the one before exited 0, and
/// a failed one fails the pod) and the last as the main container, each named
/// after its step, all over the `emptyDir` at [`WORKSPACE`].
fn containers(task: &Task, template: Container) -> (Option<Vec<Container>>, Vec<Container>) {
    if task.steps.is_empty() {
        return (None, vec![template]);
    }
    let mut env = template.env.clone().unwrap_or_default();
    env.push(EnvVar {
        name: WORKSPACE_ENV.into(),
        value: Some(WORKSPACE.into()),
        value_from: None,
    });
    let mut steps: Vec<Container> = task
        .steps
        .iter()
        .map(|step| Container {
            name: step.name.clone(),
            command: Some(step.command.clone()),
            working_dir: Some(WORKSPACE.into()),
            env: Some(env.clone()),
            volume_mounts: Some(vec![VolumeMount {
                name: WORKSPACE_VOLUME.into(),
                mount_path: WORKSPACE.into(),
                ..VolumeMount::default()
            }]),
            ..template.clone()
        })
        .collect();
    let main = steps.split_off(steps.len() - 1);
    (Some(steps).filter(|s| !s.is_empty()), main)
}

/// The Job that runs `task` once in `namespace`.
pub fn job(task: &Task, namespace: &str, config: &Config) -> Job {
    let name = name(task);
    let (image, command, working_dir) = pod::image_and_command(&task.lifecycle, &config.registry);
    let (init_containers, containers) = containers(
        task,
        Container {
            name: CONTAINER.into(),
            image: Some(image),
            command,
            working_dir,
            env_from: Some(vec![pod::env_from_secret(&env_secret_name(&name))]),
            resources: Some(pod::resources(
                task.memory_mb,
                task.disk_mb,
                task.cpu_weight,
            )),
            security_context: Some(pod::container_security_context()),
            ..Container::default()
        },
    );
    let volumes = (!task.steps.is_empty()).then(|| {
        vec![Volume {
            name: WORKSPACE_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        }]
    });
    Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: Some(task_labels(task)),
            annotations: Some(task_annotations(task)),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: Some(config.task_ttl_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(task_labels(task)),
                    annotations: Some(task_annotations(task)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    init_containers,
                    containers,
                    volumes,
                    restart_policy: Some("Never".into()),
                    image_pull_secrets: pod::image_pull_secrets(
                        &task.lifecycle,
                        &registry_secret_name(&name),
                        config.pull_secret(),
                    ),
                    security_context: Some(pod::pod_security_context()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

fn owned_by(job: &Job) -> Option<Vec<OwnerReference>> {
    Some(vec![OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job.metadata.name.clone()?,
        uid: job.metadata.uid.clone()?,
        block_owner_deletion: None,
        controller: None,
    }])
}

fn secret_meta(name: String, task: &Task, job: &Job) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: job.metadata.namespace.clone(),
        labels: Some(task_labels(task)),
        // Deleted with the Job by the garbage collector.
        owner_references: owned_by(job),
        ..ObjectMeta::default()
    }
}

/// The Secret with the task's environment, owned by its (created) Job.
pub fn env_secret(task: &Task, job: &Job) -> Secret {
    Secret {
        metadata: secret_meta(env_secret_name(&name(task)), task, job),
        data: Some(
            task.environment
                .iter()
                .map(|v| (v.name.clone(), ByteString(v.value.clone().into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// The name of the Secret holding the completion callback of Job `job_name`.
pub fn callback_secret_name(job_name: &str) -> String {
    format!("{job_name}-callback")
}

/// The key of the callback in that Secret.
pub const CALLBACK_KEY: &str = "url";

/// The Secret with the task's completion callback, owned by its (created)
/// Job, or `None` without one. CC's callback URLs may carry credentials
/// (staging callbacks do, through St8ge's URL), so the callback is neither an
/// annotation anyone reading Jobs would see nor part of the pod's
/// environment: only the backend reads it, when the task completes.
pub fn callback_secret(task: &Task, job: &Job) -> Option<Secret> {
    if task.completion_callback.is_empty() {
        return None;
    }
    Some(Secret {
        metadata: secret_meta(callback_secret_name(&name(task)), task, job),
        data: Some(BTreeMap::from([(
            CALLBACK_KEY.to_owned(),
            ByteString(task.completion_callback.clone().into_bytes()),
        )])),
        type_: Some("Opaque".into()),
        ..Secret::default()
    })
}

/// The pull Secret of a task's docker image with credentials, else `None`.
pub fn registry_secret(task: &Task, job: &Job) -> Option<Secret> {
    let opi::model::LrpLifecycle::Docker {
        image,
        credentials: Some(credentials),
        ..
    } = &task.lifecycle
    else {
        return None;
    };
    Some(Secret {
        metadata: secret_meta(registry_secret_name(&name(task)), task, job),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            pod::docker_config_json(image, credentials),
        )])),
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        ..Secret::default()
    })
}
