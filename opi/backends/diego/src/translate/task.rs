//! [`Task`] → BBS `DesireTaskRequest`; BBS `Task` → [`TaskStatus`] and
//! [`TaskCompletion`].
//!
//! The task's name travels in its log source (`APP/TASK/<name>`, as Cloud
//! Controller writes it) and its OPI completion callback in the BBS task's
//! `annotation`. The BBS's own `completion_callback_url` stays empty on
//! purpose: the BBS would POST to it itself, and OPI already delivers every
//! completion through its forwarder (retried through CC outages), so CC
//! would hear of each task twice. OPI is the task's consumer instead: once
//! it reported a completion it resolves and deletes the task
//! ([`crate::completions`]).

use std::collections::BTreeMap;

use opi::model::{
    LrpLifecycle, Task, TaskCompletion, TaskState, TaskStatus, WORKSPACE_ENV, step_failure_prefix,
};

use super::{
    DOCKER_USER, Runnable, TASKS_DOMAIN, image_credentials, rootfs, run_action, runnable, tag,
};
use crate::error::DiegoError;
use crate::proto;

/// Prefix of a task's log source; the task name follows it.
const TASK_LOG_SOURCE: &str = "APP/TASK/";

fn to_i32(what: &str, value: u64) -> Result<i32, DiegoError> {
    i32::try_from(value)
        .map_err(|_| DiegoError::Unsupported(format!("{what} {value} is too large for Diego")))
}

/// The BBS request that runs `task` once in domain [`TASKS_DOMAIN`].
pub fn desire_request(task: &Task, registry: &str) -> Result<proto::DesireTaskRequest, DiegoError> {
    let env = task
        .environment
        .iter()
        .map(|e| proto::EnvironmentVariable {
            name: e.name.clone(),
            value: e.value.clone(),
        })
        .collect();
    let log_source = format!("{TASK_LOG_SOURCE}{}", task.name);
    let run = if task.steps.is_empty() {
        runnable(&task.lifecycle, registry, env, log_source.clone())?
    } else {
        stepped(task, env, &log_source)?
    };
    let tags = BTreeMap::from([
        ("source_id".to_owned(), tag(&task.app.guid)),
        ("app_id".to_owned(), tag(&task.app.guid)),
        ("app_name".to_owned(), tag(&task.app.name)),
        ("space_id".to_owned(), tag(&task.space.guid)),
        ("space_name".to_owned(), tag(&task.space.name)),
        ("organization_id".to_owned(), tag(&task.org.guid)),
        ("organization_name".to_owned(), tag(&task.org.name)),
    ]);
    Ok(proto::DesireTaskRequest {
        task_guid: task.guid.clone(),
        domain: TASKS_DOMAIN.to_owned(),
        task_definition: Some(proto::TaskDefinition {
            root_fs: run.root_fs,
            action: Some(run.action),
            disk_mb: to_i32("disk_mb", task.disk_mb)?,
            memory_mb: to_i32("memory_mb", task.memory_mb)?,
            cpu_weight: u32::from(task.cpu_weight),
            log_source,
            log_guid: task.app.guid.clone(),
            annotation: task.completion_callback.clone(),
            image_username: run.image_username,
            image_password: run.image_password,
            metric_tags: tags,
            ..proto::TaskDefinition::default()
        }),
    })
}

/// Where a task's steps share files: the container's own `/tmp` (every
/// image has it, and the steps run in one container).
pub const WORKSPACE: &str = "/tmp";

/// A task with steps: Diego's own serial action, one run action per step
/// (as the docker image's user, in [`WORKSPACE`]), each wrapped in an emit
/// progress action whose failure prefix names the step, so the executor's
/// failure reason reads `step <name> failed: Exited with status N`. The
/// serial action stops at the first failing step.
fn stepped(
    task: &Task,
    mut env: Vec<proto::EnvironmentVariable>,
    log_source: &str,
) -> Result<Runnable, DiegoError> {
    let LrpLifecycle::Docker {
        image, credentials, ..
    } = &task.lifecycle
    else {
        return Err(DiegoError::Unsupported(
            "task steps need a docker lifecycle".into(),
        ));
    };
    env.retain(|e| e.name != WORKSPACE_ENV);
    env.push(proto::EnvironmentVariable {
        name: WORKSPACE_ENV.to_owned(),
        value: WORKSPACE.to_owned(),
    });
    let mut actions = Vec::with_capacity(task.steps.len());
    for step in &task.steps {
        let Some((path, args)) = step.command.split_first() else {
            return Err(DiegoError::Unsupported(format!(
                "step {} has no command",
                step.name
            )));
        };
        let run = run_action(
            path,
            args,
            WORKSPACE,
            DOCKER_USER,
            env.clone(),
            log_source.to_owned(),
        );
        actions.push(proto::Action {
            emit_progress_action: Some(Box::new(proto::EmitProgressAction {
                action: Some(Box::new(run)),
                start_message: String::new(),
                success_message: String::new(),
                failure_message_prefix: step_failure_prefix(&step.name),
                log_source: log_source.to_owned(),
            })),
            ..proto::Action::default()
        });
    }
    let (image_username, image_password) = image_credentials(credentials.as_ref());
    Ok(Runnable {
        root_fs: rootfs::root_fs(image),
        action: proto::Action {
            serial_action: Some(proto::SerialAction {
                actions,
                log_source: log_source.to_owned(),
            }),
            ..proto::Action::default()
        },
        image_username,
        image_password,
    })
}

fn definition(task: &proto::Task) -> proto::TaskDefinition {
    task.task_definition.clone().unwrap_or_default()
}

/// The OPI state of a BBS task (`Resolving` is completed: only the callback
/// bookkeeping is left).
pub fn state(task: &proto::Task) -> TaskState {
    use proto::task::State;
    match State::try_from(task.state).unwrap_or(State::Invalid) {
        State::Running => TaskState::Running,
        State::Completed | State::Resolving => TaskState::Completed {
            failed: task.failed,
            failure_reason: task.failure_reason.clone(),
            result: task.result.clone(),
        },
        State::Pending | State::Invalid => TaskState::Pending,
    }
}

/// The OPI status of a BBS task.
pub fn status(task: &proto::Task) -> TaskStatus {
    let def = definition(task);
    TaskStatus {
        guid: task.task_guid.clone(),
        name: def
            .log_source
            .strip_prefix(TASK_LOG_SOURCE)
            .unwrap_or_default()
            .to_owned(),
        app_guid: def.log_guid,
        state: state(task),
    }
}

/// The completion to report when a task has just completed: `after` is
/// completed and `before` (if known) was not.
pub fn completion(before: Option<&proto::Task>, after: &proto::Task) -> Option<TaskCompletion> {
    let was_done = before.is_some_and(|b| matches!(state(b), TaskState::Completed { .. }));
    let TaskState::Completed {
        failed,
        failure_reason,
        result,
    } = state(after)
    else {
        return None;
    };
    (!was_done).then(|| TaskCompletion {
        guid: after.task_guid.clone(),
        completion_callback: definition(after).annotation,
        failed,
        failure_reason,
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opi::model::{EnvironmentVariable, LrpLifecycle, Named};

    fn sample() -> Task {
        Task {
            guid: "task-1".into(),
            name: "migrate".into(),
            app: Named {
                guid: "app-guid".into(),
                name: "app".into(),
            },
            space: Named::default(),
            org: Named::default(),
            completion_callback: "http://cc/internal/v4/tasks/task-1/completed".into(),
            environment: vec![
                EnvironmentVariable {
                    name: "B".into(),
                    value: "2".into(),
                },
                EnvironmentVariable {
                    name: "A".into(),
                    value: "1".into(),
                },
            ],
            lifecycle: LrpLifecycle::Buildpack {
                droplet_guid: "d".into(),
                droplet_hash: "h".into(),
                start_command: "bin/migrate".into(),
            },
            memory_mb: 256,
            disk_mb: 1024,
            cpu_weight: 50,
            steps: Vec::new(),
        }
    }

    #[test]
    fn a_task_becomes_a_bbs_task_in_cf_tasks() {
        let req = desire_request(&sample(), "registry.local:8087").expect("translates");
        assert_eq!(req.domain, "cf-tasks");
        assert_eq!(req.task_guid, "task-1");
        let def = req.task_definition.expect("definition");
        assert_eq!(def.root_fs, "docker://registry.local:8087/cloudfoundry/d#h");
        assert_eq!(def.log_source, "APP/TASK/migrate");
        assert_eq!(def.log_guid, "app-guid");
        assert_eq!(
            def.completion_callback_url, "",
            "the BBS must not call CC itself"
        );
        assert_eq!(
            def.annotation,
            "http://cc/internal/v4/tasks/task-1/completed"
        );
        assert_eq!(
            (def.memory_mb, def.disk_mb, def.cpu_weight),
            (256, 1024, 50)
        );
        let run = def.action.and_then(|a| a.run_action).expect("run action");
        assert_eq!(run.path, "/bin/sh");
        assert_eq!(run.args, ["-c", "bin/migrate"]);
        assert_eq!(run.user, "vcap");
        let names: Vec<&str> = run.env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["B", "A"], "environment order is kept");
    }

    #[test]
    fn status_and_completion_read_back() {
        let req = desire_request(&sample(), "r").expect("translates");
        let mut task = proto::Task {
            task_definition: req.task_definition,
            task_guid: req.task_guid,
            domain: req.domain,
            state: proto::task::State::Running as i32,
            ..proto::Task::default()
        };
        let status = status(&task);
        assert_eq!(status.name, "migrate");
        assert_eq!(status.app_guid, "app-guid");
        assert_eq!(status.state, TaskState::Running);
        assert_eq!(completion(None, &task), None);

        let before = task.clone();
        task.state = proto::task::State::Completed as i32;
        task.failed = true;
        task.failure_reason = "exit status 3".into();
        let done = completion(Some(&before), &task).expect("just completed");
        assert!(done.failed);
        assert_eq!(done.failure_reason, "exit status 3");
        assert_eq!(
            done.completion_callback,
            "http://cc/internal/v4/tasks/task-1/completed"
        );
        // Completed → Resolving is not a second completion.
        let resolving = proto::Task {
            state: proto::task::State::Resolving as i32,
            ..task.clone()
        };
        assert_eq!(completion(Some(&task), &resolving), None);
    }

    #[test]
    fn steps_become_a_serial_action_naming_each_step() {
        let mut task = sample();
        task.lifecycle = LrpLifecycle::Docker {
            image: "cube/stager:1".into(),
            command: Vec::new(),
            credentials: None,
        };
        task.steps = ["download", "build"]
            .into_iter()
            .map(|name| opi::model::TaskStep {
                name: name.into(),
                command: vec!["/cube".into(), "stage".into(), name.into()],
            })
            .collect();
        let def = desire_request(&task, "r")
            .expect("translates")
            .task_definition
            .expect("definition");
        assert_eq!(def.root_fs, "docker:///cube/stager#1");
        let serial = def
            .action
            .and_then(|a| a.serial_action)
            .expect("a serial action");
        assert_eq!(serial.actions.len(), 2);
        for (action, name) in serial.actions.iter().zip(["download", "build"]) {
            let progress = action.emit_progress_action.as_ref().expect("emit progress");
            assert_eq!(
                progress.failure_message_prefix,
                format!("step {name} failed")
            );
            let run = progress
                .action
                .as_ref()
                .and_then(|a| a.run_action.as_ref())
                .expect("run action");
            assert_eq!(run.path, "/cube");
            assert_eq!(run.args, ["stage", name]);
            assert_eq!(run.dir, WORKSPACE);
            let workspace: Vec<&str> = run
                .env
                .iter()
                .filter(|e| e.name == WORKSPACE_ENV)
                .map(|e| e.value.as_str())
                .collect();
            assert_eq!(workspace, [WORKSPACE]);
            assert_eq!(run.env.len(), 3, "the task's environment and the workspace");
        }
    }

    #[test]
    fn a_docker_task_without_command_is_not_supported() {
        let mut task = sample();
        task.lifecycle = LrpLifecycle::Docker {
            image: "busybox".into(),
            command: Vec::new(),
            credentials: None,
        };
        assert!(matches!(
            desire_request(&task, ""),
            Err(DiegoError::Unsupported(_))
        ));
    }
}
