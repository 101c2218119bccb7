//! Tasks: accepted and stored, not run (see [`crate::tasks`]).

use std::sync::Arc;

use bbs_models::{
    DesireTaskRequest, Task, TaskByGuidRequest, TaskGuidRequest, TaskLifecycleResponse,
    TaskResponse, TasksRequest, TasksResponse, version,
};
use opi::model::now_unix_nanos;

use super::Bbs;
use crate::error::Error;
use crate::validate;

/// `/v1/tasks/desire.r2`: store the task `Pending`. A guid taken →
/// ResourceExists.
pub(super) async fn desire(
    bbs: Arc<Bbs>,
    request: DesireTaskRequest,
) -> Result<TaskLifecycleResponse, Error> {
    validate::desire_task(&request)?;
    tracing::info!(
        task_guid = %request.task_guid,
        domain = %request.domain,
        "task accepted; Cube does not run BBS tasks yet"
    );
    bbs.tasks.desire(request, now_unix_nanos())?;
    Ok(TaskLifecycleResponse::default())
}

/// `/v1/tasks/list.r2`: the tasks in a domain / on a cell, in format V2.
pub(super) async fn list_r2(bbs: Arc<Bbs>, request: TasksRequest) -> Result<TasksResponse, Error> {
    list(&bbs, &request, version::task_v2)
}

/// `/v1/tasks/list.r3`: the same, as stored (V3).
pub(super) async fn list_r3(bbs: Arc<Bbs>, request: TasksRequest) -> Result<TasksResponse, Error> {
    list(&bbs, &request, std::convert::identity)
}

fn list(
    bbs: &Bbs,
    request: &TasksRequest,
    format: fn(Task) -> Task,
) -> Result<TasksResponse, Error> {
    let tasks = bbs.tasks.list(&request.domain, &request.cell_id);
    Ok(TasksResponse {
        error: None,
        tasks: tasks.into_iter().map(format).collect(),
    })
}

/// `/v1/tasks/get_by_task_guid.r2`: one task in format V2.
pub(super) async fn get_r2(
    bbs: Arc<Bbs>,
    request: TaskByGuidRequest,
) -> Result<TaskResponse, Error> {
    get(&bbs, &request.task_guid, version::task_v2)
}

/// `/v1/tasks/get_by_task_guid.r3`: one task as stored (V3).
pub(super) async fn get_r3(
    bbs: Arc<Bbs>,
    request: TaskByGuidRequest,
) -> Result<TaskResponse, Error> {
    get(&bbs, &request.task_guid, std::convert::identity)
}

fn get(bbs: &Bbs, guid: &str, format: fn(Task) -> Task) -> Result<TaskResponse, Error> {
    validate::guid(guid, "task_guid")?;
    let task = bbs.tasks.get(guid)?;
    Ok(TaskResponse {
        error: None,
        task: Some(format(task)),
    })
}

/// `/v1/tasks/cancel`: a pending or running task completes as failed ("task
/// was cancelled") and its completion callback is sent. Unknown →
/// ResourceNotFound; completed already → InvalidStateTransition.
pub(super) async fn cancel(
    bbs: Arc<Bbs>,
    request: TaskGuidRequest,
) -> Result<TaskLifecycleResponse, Error> {
    validate::guid(&request.task_guid, "task_guid")?;
    bbs.tasks.cancel(&request.task_guid, now_unix_nanos())?;
    bbs.callbacks.submit(&request.task_guid);
    Ok(TaskLifecycleResponse::default())
}
