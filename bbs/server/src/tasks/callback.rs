//! A completed task's callback to its `completion_callback_url`, as the BBS
//! sends it (cloudfoundry/bbs `taskworkpool/taskcallback.go`): the task
//! turns `Resolving`, a JSON `TaskCallbackResponse` is POSTed (`task_guid`,
//! `failed`, `failure_reason`, `result`, `annotation` when set, `created_at`
//! in ns — Cloud Controller's staging callback needs it), up to three tries
//! on timeouts and 503/504. Any other answer, 4xx and 500 included, resolves
//! the task: it is deleted. Unanswered, it stays `Resolving` until task
//! convergence ([`Tasks::converge`], every [`Timing::kick`]) tries again.
//!
//! Cloud Controller's internal endpoints sit behind mutual TLS: the client
//! presents Cube's client certificate and trusts Cube's CA (`--client-cert`,
//! `--ca-cert`), never Cube's bearer token.

use std::sync::Arc;
use std::time::Duration;

use bbs_models::Task;
use cube_runtime::access::ClientAccess;
use opi::model::now_unix_nanos;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use super::{Tasks, Timing};
use crate::error::Error;

/// Tries of one delivery (BBS `MAX_CB_RETRIES`).
pub const TRIES: usize = 3;
/// Timeout of one try.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends task completion callbacks in the background.
#[derive(Clone)]
pub struct Callbacks {
    http: reqwest::Client,
    tasks: Arc<Tasks>,
    shutdown: CancellationToken,
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Answered (any status but 503/504): the task is done with.
    Resolved,
    /// Not answered, or 503/504 every time: tried again later.
    Unresolved,
}

impl Callbacks {
    /// Callbacks for the tasks in `tasks`, sent with `access`'s TLS
    /// identity and trust, until `shutdown`.
    pub fn new(
        access: &ClientAccess,
        tasks: Arc<Tasks>,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        let http = access
            .tls_builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the callback client: {e}")))?;
        Ok(Self {
            http,
            tasks,
            shutdown,
        })
    }

    /// Sends the callback of task `guid` in the background, when it is a
    /// completed task with a callback URL.
    pub fn submit(&self, guid: &str) {
        let Some(task) = self.tasks.start_resolving(guid, now_unix_nanos()) else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = this.shutdown.cancelled() => {}
                delivery = deliver(&this.http, &task) => {
                    if delivery == Delivery::Resolved {
                        this.tasks.resolved(&task.task_guid);
                    }
                }
            }
        });
    }

    /// Task convergence every `timing.kick` until shutdown: expiries,
    /// deletions, and callbacks due again.
    pub async fn converge(self, timing: Timing) {
        let mut ticks = tokio::time::interval(timing.kick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = ticks.tick() => {
                    for guid in self.tasks.converge(now_unix_nanos(), &timing) {
                        self.submit(&guid);
                    }
                }
            }
        }
    }
}

/// The JSON body of `task`'s callback (BBS `TaskCallbackResponse`).
pub fn body(task: &Task) -> serde_json::Value {
    let annotation = task
        .task_definition
        .as_ref()
        .map(|definition| definition.annotation.as_str())
        .unwrap_or_default();
    let mut body = serde_json::json!({
        "task_guid": task.task_guid,
        "failed": task.failed,
        "failure_reason": task.failure_reason,
        "result": task.result,
        "created_at": task.created_at,
    });
    if !annotation.is_empty() {
        body["annotation"] = annotation.into();
    }
    body
}

/// POSTs `task`'s callback: up to [`TRIES`] on a timeout or 503/504.
pub async fn deliver(http: &reqwest::Client, task: &Task) -> Delivery {
    let url = task
        .task_definition
        .as_ref()
        .map(|definition| definition.completion_callback_url.as_str())
        .unwrap_or_default();
    let body = body(task);
    for _ in 0..TRIES {
        match http.post(url).json(&body).send().await {
            Ok(answer) if resolves(answer.status()) => return Delivery::Resolved,
            Ok(answer) => {
                tracing::info!(task_guid = %task.task_guid, status = %answer.status(), "task callback not taken yet");
            }
            Err(error) if error.is_timeout() => {
                tracing::info!(task_guid = %task.task_guid, %error, "task callback timed out");
            }
            Err(error) => {
                tracing::warn!(task_guid = %task.task_guid, %error, "task callback failed");
                return Delivery::Unresolved;
            }
        }
    }
    Delivery::Unresolved
}

/// Every answer but 503 and 504 resolves a task (BBS `shouldResolve`).
fn resolves(status: StatusCode) -> bool {
    !matches!(
        status,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}
