//! Pods as OPI instances, and crash detection: pure functions over `Pod`s.
//!
//! | pod                                                   | instance              |
//! |-------------------------------------------------------|-----------------------|
//! | `Ready=True`                                          | `RUNNING`             |
//! | `PodScheduled=False`                                  | `UNCLAIMED` + message |
//! | waiting in `CrashLoopBackOff`, terminated non-zero, phase `Failed` | `CRASHED` |
//! | anything else (created, not ready)                    | `CLAIMED`             |
//!
//! A crash is a termination with a non-zero exit code of the app container,
//! seen either as its current state or, after the kubelet restarted it, as its
//! last state, of a pod that is not being deleted (deletion kills containers
//! on purpose). Each termination is identified (container id, else finish
//! time, else restart count) and reported once: [`observe`] remembers the last
//! reported one in [`Seen`].

use k8s_openapi::api::core::v1::{
    ContainerStateTerminated, ContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use opi::model::{CrashEvent, Instance, InstanceState, LrpId, now_unix_nanos};

use crate::labels;
use crate::names::pod_ordinal;
use crate::translate::lrp::CONTAINER;

/// Unix nanoseconds of a Kubernetes time.
pub fn nanos(time: &Time) -> i64 {
    i64::try_from(time.0.as_nanosecond()).unwrap_or(i64::MAX)
}

/// The index of an LRP pod: the StatefulSet's pod-index label, else the
/// ordinal in its name.
pub fn index(pod: &Pod) -> Option<u32> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::POD_INDEX))
        .and_then(|i| i.parse().ok())
        .or_else(|| pod_ordinal(pod.metadata.name.as_deref()?))
}

/// The LRP a pod belongs to, from its annotations (full guid and version).
pub fn lrp_id(pod: &Pod) -> Option<LrpId> {
    let annotations = pod.metadata.annotations.as_ref()?;
    Some(LrpId::new(
        annotations.get(labels::PROCESS_GUID)?.clone(),
        annotations.get(labels::VERSION)?.clone(),
    ))
}

fn app_container(pod: &Pod) -> Option<&ContainerStatus> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses
        .iter()
        .find(|s| s.name == CONTAINER)
        .or_else(|| statuses.first())
}

fn condition<'a>(pod: &'a Pod, kind: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

fn created(pod: &Pod) -> i64 {
    pod.metadata.creation_timestamp.as_ref().map_or(0, nanos)
}

/// The annotation [`slim`] keeps a pod's node name in (never written to the
/// cluster; it exists only in the watch cache).
pub const CACHED_NODE: &str = "cube.internal/node-name";

/// The node a pod runs on, from its spec or, for a cached pod, [`CACHED_NODE`].
pub fn node(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .or_else(|| pod.metadata.annotations.as_ref()?.get(CACHED_NODE).cloned())
}

/// Drops everything from a watched pod that instances and crash detection do
/// not read, before it enters the cache: managed fields, the pod spec (but
/// the node name), other annotations, images and IPs. A full pod is ~10 KB in
/// memory; the cache of 10,000 instances must stay small.
pub fn slim(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.generate_name = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|k, _| k == labels::PROCESS_GUID || k == labels::VERSION);
    }
    // The spec is large even when empty; its one field we read, the node,
    // is kept as a cache-only annotation.
    if let Some(node) = pod.spec.take().and_then(|spec| spec.node_name) {
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(CACHED_NODE.to_owned(), node);
    }
    pod.status = pod.status.take().map(|status| PodStatus {
        phase: status.phase,
        conditions: status.conditions.map(|conditions| {
            conditions
                .into_iter()
                .map(|c| PodCondition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    last_transition_time: c.last_transition_time,
                    ..PodCondition::default()
                })
                .collect()
        }),
        container_statuses: status.container_statuses.map(|statuses| {
            statuses
                .into_iter()
                .map(|c| ContainerStatus {
                    name: c.name,
                    ready: c.ready,
                    restart_count: c.restart_count,
                    started: c.started,
                    state: c.state,
                    last_state: c.last_state,
                    ..ContainerStatus::default()
                })
                .collect()
        }),
        ..PodStatus::default()
    });
}

/// The instance a pod is, or `None` for a pod being deleted or without index.
pub fn instance(pod: &Pod) -> Option<Instance> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let index = index(pod)?;
    let since_of = |c: Option<&k8s_openapi::api::core::v1::PodCondition>| {
        c.and_then(|c| c.last_transition_time.as_ref())
            .map_or_else(|| created(pod), nanos)
    };
    let at = |state: InstanceState, since: i64| Instance {
        index,
        since,
        state,
        placement_error: String::new(),
    };

    let scheduled = condition(pod, "PodScheduled");
    if let Some(c) = scheduled.filter(|c| c.status == "False") {
        return Some(Instance {
            placement_error: c
                .message
                .clone()
                .or_else(|| c.reason.clone())
                .unwrap_or_else(|| "not scheduled".into()),
            ..at(InstanceState::Unclaimed, since_of(Some(c)))
        });
    }
    if let Some(status) = app_container(pod) {
        let state = status.state.as_ref();
        let backoff = state
            .and_then(|s| s.waiting.as_ref())
            .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"));
        let failed = state
            .and_then(|s| s.terminated.as_ref())
            .filter(|t| t.exit_code != 0);
        if let Some(terminated) = failed {
            let since = terminated
                .finished_at
                .as_ref()
                .map_or_else(|| created(pod), nanos);
            return Some(at(InstanceState::Crashed, since));
        }
        if backoff {
            let since = status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.finished_at.as_ref())
                .map_or_else(|| created(pod), nanos);
            return Some(at(InstanceState::Crashed, since));
        }
    }
    if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") {
        return Some(at(InstanceState::Crashed, created(pod)));
    }
    let ready = condition(pod, "Ready");
    if ready.is_some_and(|c| c.status == "True") {
        return Some(at(InstanceState::Running, since_of(ready)));
    }
    Some(at(InstanceState::Claimed, since_of(scheduled)))
}

/// What [`observe`] remembers of a pod between observations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The last termination reported (or deliberately skipped).
    pub last_termination: Option<String>,
}

fn termination_key(t: &ContainerStateTerminated, restart_count: i32) -> String {
    t.container_id
        .clone()
        .or_else(|| t.finished_at.as_ref().map(|f| nanos(f).to_string()))
        .unwrap_or_else(|| format!("restart-{restart_count}"))
}

/// The newest non-zero termination of the app container, its key and the
/// crash count it makes.
fn latest_crash(pod: &Pod) -> Option<(&ContainerStateTerminated, String, u32)> {
    let status = app_container(pod)?;
    let restarts = u32::try_from(status.restart_count).unwrap_or(0);
    let current = status
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| (t, restarts + 1));
    let previous = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| (t, restarts));
    let (terminated, count) = current.or(previous)?;
    (terminated.exit_code != 0).then(|| {
        (
            terminated,
            termination_key(terminated, status.restart_count),
            count.max(1),
        )
    })
}

/// Looks at a new state of a pod. Returns what to remember and, when the app
/// container shows a non-zero termination not reported before, the crash.
/// With `report` false (a pod first seen while (re)listing after a restart of
/// the backend) the termination is remembered without reporting, so a restart
/// of Cube does not report old crashes again.
pub fn observe(previous: Option<&Seen>, pod: &Pod, report: bool) -> (Seen, Option<CrashEvent>) {
    let mut seen = previous.cloned().unwrap_or_default();
    let Some((terminated, key, crash_count)) = latest_crash(pod) else {
        return (seen, None);
    };
    if seen.last_termination.as_deref() == Some(key.as_str()) {
        return (seen, None);
    }
    seen.last_termination = Some(key);
    // A pod being deleted (stop, scale-down, rolling update) exits with
    // SIGTERM/SIGKILL statuses on purpose: that is not a crash.
    if !report || pod.metadata.deletion_timestamp.is_some() {
        return (seen, None);
    }
    let (Some(id), Some(index)) = (lrp_id(pod), index(pod)) else {
        return (seen, None);
    };
    let event = CrashEvent {
        id,
        instance: pod
            .metadata
            .uid
            .clone()
            .or_else(|| pod.metadata.name.clone())
            .unwrap_or_default(),
        index,
        cell_id: node(pod).unwrap_or_default(),
        reason: terminated
            .reason
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "CRASHED".into()),
        exit_status: terminated.exit_code,
        exit_description: terminated
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("exited with status {}", terminated.exit_code)),
        crash_count,
        crash_timestamp: terminated
            .finished_at
            .as_ref()
            .map_or_else(now_unix_nanos, nanos),
    };
    (seen, Some(event))
}

#[cfg(test)]
mod tests;
