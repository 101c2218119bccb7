//! Pods as OPI instances, and crash detection: pure functions over the
//! compact [`PodRecord`] the watch cache keeps of each pod.
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
//!
//! The cache holds a [`PodRecord`] per pod, not the k8s-openapi `Pod`: those
//! structs are large even when mostly empty (10,000 slimmed pods took ~80 MB).
//! [`record`] keeps exactly what [`instance`], [`observe`] and the route
//! source read, with the strings many pods share (process guid, version,
//! namespace, node) interned in [`Strings`].

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
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
    index_of(&pod.metadata)
}

fn index_of(meta: &ObjectMeta) -> Option<u32> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(labels::POD_INDEX))
        .and_then(|i| i.parse().ok())
        .or_else(|| pod_ordinal(meta.name.as_deref()?))
}

/// Shared copies of strings many pods carry (process guid, version,
/// namespace, node name): each distinct value is stored once.
#[derive(Debug, Default)]
pub struct Strings(HashSet<Arc<str>>);

impl Strings {
    /// The shared copy of `value`.
    pub fn intern(&mut self, value: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(value) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(value);
        self.0.insert(shared.clone());
        shared
    }

    /// Forgets the values no record uses any more.
    pub fn purge(&mut self) {
        self.0.retain(|s| Arc::strong_count(s) > 1);
    }

    /// How many distinct values are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The LRP a pod belongs to (full process guid and version, from its
/// annotations).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Process {
    /// The process guid.
    pub guid: Arc<str>,
    /// The version.
    pub version: Arc<str>,
}

impl Process {
    /// As an [`LrpId`].
    pub fn id(&self) -> LrpId {
        LrpId::new(&*self.guid, &*self.version)
    }

    /// Whether this is `id`.
    pub fn is(&self, id: &LrpId) -> bool {
        *self.guid == id.guid && *self.version == id.version
    }
}

/// A pod condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `True`.
    True,
    /// `False`.
    False,
    /// Anything else (`Unknown`).
    Unknown,
}

/// The parts of a pod condition the backend reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Its status.
    pub status: Status,
    /// Its last transition, in unix nanoseconds.
    pub since: Option<i64>,
    /// Its message, else its reason (kept only for `PodScheduled=False`,
    /// the placement error).
    pub message: Option<Box<str>>,
}

/// A termination of the app container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// Exit code.
    pub exit_code: i32,
    /// When it finished, in unix nanoseconds.
    pub finished_at: Option<i64>,
    /// The container id.
    pub container_id: Option<Box<str>>,
    /// The kubelet's reason (`Error`, `OOMKilled`).
    pub reason: Option<Box<str>>,
    /// The kubelet's message.
    pub message: Option<Box<str>>,
}

/// The app container's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppContainer {
    /// Restarts so far.
    pub restart_count: i32,
    /// Waiting in `CrashLoopBackOff`.
    pub backoff: bool,
    /// Its current state, when terminated.
    pub terminated: Option<Box<Termination>>,
    /// Its last state, when terminated.
    pub last_terminated: Option<Box<Termination>>,
}

/// A pod as the watch cache keeps it: what instances, crash detection and
/// routing read, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRecord {
    /// The pod uid (the instance guid).
    pub uid: Arc<str>,
    /// The pod name.
    pub name: Box<str>,
    /// Its namespace.
    pub namespace: Arc<str>,
    /// The LRP it belongs to.
    pub process: Option<Process>,
    /// Its index.
    pub index: Option<u32>,
    /// Creation time, in unix nanoseconds (0 when unknown).
    pub created: i64,
    /// Being deleted.
    pub deleting: bool,
    /// Phase `Failed`.
    pub failed: bool,
    /// The `PodScheduled` condition.
    pub scheduled: Option<Condition>,
    /// The `Ready` condition.
    pub ready: Option<Condition>,
    /// The app container's status.
    pub app: Option<AppContainer>,
    /// The node it runs on.
    pub node: Option<Arc<str>>,
    /// Its IP.
    pub ip: Option<IpAddr>,
    /// The app container's ports.
    pub ports: Box<[u16]>,
}

fn boxed(value: Option<&String>) -> Option<Box<str>> {
    value.map(|s| Box::from(s.as_str()))
}

fn condition(conditions: Option<&Vec<PodCondition>>, kind: &str) -> Option<Condition> {
    let c = conditions?.iter().find(|c| c.type_ == kind)?;
    let status = match c.status.as_str() {
        "True" => Status::True,
        "False" => Status::False,
        _ => Status::Unknown,
    };
    Some(Condition {
        status,
        since: c.last_transition_time.as_ref().map(nanos),
        message: (kind == "PodScheduled" && status == Status::False)
            .then(|| boxed(c.message.as_ref().or(c.reason.as_ref())))
            .flatten(),
    })
}

fn termination(t: &ContainerStateTerminated) -> Box<Termination> {
    Box::new(Termination {
        exit_code: t.exit_code,
        finished_at: t.finished_at.as_ref().map(nanos),
        container_id: boxed(t.container_id.as_ref()),
        reason: boxed(t.reason.as_ref()),
        message: boxed(t.message.as_ref()),
    })
}

fn app_container(status: &ContainerStatus) -> AppContainer {
    let state = status.state.as_ref();
    AppContainer {
        restart_count: status.restart_count,
        backoff: state
            .and_then(|s| s.waiting.as_ref())
            .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff")),
        terminated: state.and_then(|s| s.terminated.as_ref()).map(termination),
        last_terminated: status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(termination),
    }
}

/// The record the cache keeps of `pod`.
pub fn record(pod: &PodView, strings: &mut Strings) -> PodRecord {
    let meta = &pod.metadata;
    let annotations = meta.annotations.as_ref();
    let process = annotations.and_then(|a| {
        Some(Process {
            guid: strings.intern(a.get(labels::PROCESS_GUID)?),
            version: strings.intern(a.get(labels::VERSION)?),
        })
    });
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_ref());
    let statuses = status.and_then(|s| s.container_statuses.as_ref());
    let app = statuses.and_then(|statuses| {
        statuses
            .iter()
            .find(|s| s.name == CONTAINER)
            .or_else(|| statuses.first())
    });
    let ports = spec
        .and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == CONTAINER)
                .or_else(|| s.containers.first())
        })
        .and_then(|c| c.ports.as_ref())
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| u16::try_from(p.container_port).ok())
                .collect()
        })
        .unwrap_or_default();
    PodRecord {
        // Unique per pod: shared with the cache's key, not interned.
        uid: Arc::from(meta.uid.as_deref().unwrap_or_default()),
        name: Box::from(meta.name.as_deref().unwrap_or_default()),
        namespace: strings.intern(meta.namespace.as_deref().unwrap_or_default()),
        process,
        index: index_of(meta),
        created: meta.creation_timestamp.as_ref().map_or(0, nanos),
        deleting: meta.deletion_timestamp.is_some(),
        failed: status.and_then(|s| s.phase.as_deref()) == Some("Failed"),
        scheduled: condition(conditions, "PodScheduled"),
        ready: condition(conditions, "Ready"),
        app: app.map(app_container),
        node: spec
            .and_then(|s| s.node_name.as_deref())
            .map(|n| strings.intern(n)),
        ip: status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok()),
        ports,
    }
}

/// The instance a pod is, or `None` for a pod being deleted or without index.
pub fn instance(pod: &PodRecord) -> Option<Instance> {
    if pod.deleting {
        return None;
    }
    let index = pod.index?;
    let since_of = |c: Option<&Condition>| c.and_then(|c| c.since).unwrap_or(pod.created);
    let (crash_count, crash_reason) = crashes(pod);
    let at = |state: InstanceState, since: i64| Instance {
        index,
        since,
        state,
        placement_error: String::new(),
        crash_count,
        crash_reason: crash_reason.clone(),
    };

    let scheduled = pod.scheduled.as_ref();
    if let Some(c) = scheduled.filter(|c| c.status == Status::False) {
        return Some(Instance {
            placement_error: c.message.as_deref().unwrap_or("not scheduled").to_owned(),
            ..at(InstanceState::Unclaimed, since_of(Some(c)))
        });
    }
    if let Some(app) = &pod.app {
        if let Some(terminated) = app.terminated.as_ref().filter(|t| t.exit_code != 0) {
            return Some(at(
                InstanceState::Crashed,
                terminated.finished_at.unwrap_or(pod.created),
            ));
        }
        if app.backoff {
            let since = app
                .last_terminated
                .as_ref()
                .and_then(|t| t.finished_at)
                .unwrap_or(pod.created);
            return Some(at(InstanceState::Crashed, since));
        }
    }
    if pod.failed {
        return Some(at(InstanceState::Crashed, pod.created));
    }
    let ready = pod.ready.as_ref();
    if ready.is_some_and(|c| c.status == Status::True) {
        return Some(at(InstanceState::Running, since_of(ready)));
    }
    Some(at(InstanceState::Claimed, since_of(scheduled)))
}

/// What a router needs of a pod that may take traffic: its LRP, index, IP
/// and ports, when it is running and ready with an IP (else `None`). Two
/// records with equal views serve the same endpoints.
pub fn serving(pod: &PodRecord) -> Option<(&Process, u32, IpAddr, &[u16])> {
    let running = instance(pod).is_some_and(|i| i.state == InstanceState::Running);
    if !running {
        return None;
    }
    Some((pod.process.as_ref()?, pod.index?, pod.ip?, &pod.ports))
}

/// What [`observe`] remembers of a pod between observations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The last termination reported (or deliberately skipped).
    pub last_termination: Option<Box<str>>,
}

fn termination_key(t: &Termination, restart_count: i32) -> Box<str> {
    t.container_id
        .clone()
        .or_else(|| t.finished_at.map(|f| f.to_string().into()))
        .unwrap_or_else(|| format!("restart-{restart_count}").into())
}

/// The newest termination of the app container and the crash count it
/// makes: restarts so far, plus one while it is still terminated.
fn last_exit(pod: &PodRecord) -> Option<(&Termination, u32)> {
    let app = pod.app.as_ref()?;
    let restarts = u32::try_from(app.restart_count).unwrap_or(0);
    let current = app.terminated.as_deref().map(|t| (t, restarts + 1));
    let previous = app.last_terminated.as_deref().map(|t| (t, restarts));
    current.or(previous).map(|(t, count)| (t, count.max(1)))
}

/// The newest non-zero termination of the app container, its key and the
/// crash count it makes.
fn latest_crash(pod: &PodRecord) -> Option<(&Termination, Box<str>, u32)> {
    let restart_count = pod.app.as_ref()?.restart_count;
    let (terminated, count) = last_exit(pod)?;
    (terminated.exit_code != 0).then(|| {
        (
            terminated,
            termination_key(terminated, restart_count),
            count,
        )
    })
}

/// What CC shows of a termination: the kubelet's message, else the exit status.
fn exit_description(terminated: &Termination) -> String {
    terminated
        .message
        .as_deref()
        .filter(|m| !m.is_empty())
        .map_or_else(
            || format!("exited with status {}", terminated.exit_code),
            str::to_owned,
        )
}

/// The instance's crash count and reason: the app container's restarts
/// (plus one while it is terminated) and the description of its last
/// non-zero termination; `0` and empty for a container that never crashed.
fn crashes(pod: &PodRecord) -> (u32, String) {
    match latest_crash(pod) {
        Some((terminated, _, count)) => (count, exit_description(terminated)),
        None => {
            let restarts = pod.app.as_ref().map_or(0, |app| app.restart_count);
            (u32::try_from(restarts).unwrap_or(0), String::new())
        }
    }
}

/// Looks at a new state of a pod. Returns what to remember and, when the app
/// container shows a non-zero termination not reported before, the crash.
/// With `report` false (a pod first seen while (re)listing after a restart of
/// the backend) the termination is remembered without reporting, so a restart
/// of Cube does not report old crashes again.
pub fn observe(
    previous: Option<&Seen>,
    pod: &PodRecord,
    report: bool,
) -> (Seen, Option<CrashEvent>) {
    let mut seen = previous.cloned().unwrap_or_default();
    let Some((terminated, key, crash_count)) = latest_crash(pod) else {
        return (seen, None);
    };
    if seen.last_termination.as_deref() == Some(&*key) {
        return (seen, None);
    }
    seen.last_termination = Some(key);
    // A pod being deleted (stop, scale-down, rolling update) exits with
    // SIGTERM/SIGKILL statuses on purpose: that is not a crash.
    if !report || pod.deleting {
        return (seen, None);
    }
    let (Some(process), Some(index)) = (&pod.process, pod.index) else {
        return (seen, None);
    };
    let instance = if pod.uid.is_empty() {
        pod.name.to_string()
    } else {
        pod.uid.to_string()
    };
    let event = CrashEvent {
        id: process.id(),
        instance,
        index,
        cell_id: pod.node.as_deref().unwrap_or_default().to_owned(),
        reason: terminated
            .reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or("CRASHED")
            .to_owned(),
        exit_status: terminated.exit_code,
        exit_description: exit_description(terminated),
        crash_count,
        crash_timestamp: terminated.finished_at.unwrap_or_else(now_unix_nanos),
    };
    (seen, Some(event))
}

pub mod cache;
pub mod view;

pub use view::PodView;

#[cfg(test)]
mod tests;
