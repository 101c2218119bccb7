//! Optional mini-controllers, so backends see pods come and go as on a real
//! cluster: the StatefulSet controller (pods `<name>-<ordinal>` for the
//! replicas, recreated when deleted or when the template changes, status
//! counts), a scheduler + kubelet (new pods become scheduled, running and
//! ready — or stay unschedulable), and a Job controller (Jobs become active;
//! finished Jobs are deleted after `ttlSecondsAfterFinished`, with what they own).
//!
//! They write through the store like any client (pods are validated on
//! create), so a StatefulSet whose pods a real cluster could not create
//! (e.g. a name too long for the revision label) gets no pods here either.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Shared;
use super::resources::{self, Kind};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Key, Store, WriteOptions, now};

/// Knobs of the simulated cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// New pods get scheduled (else they stay `PodScheduled=False`).
    pub schedulable: bool,
    /// Scheduled pods become ready (else they run but never pass readiness).
    pub ready: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            schedulable: true,
            ready: true,
        }
    }
}

/// Runs the controllers until the server is dropped.
pub async fn run(shared: Weak<Shared>) {
    let Some(mut changes) = shared.upgrade().map(|s| s.store().subscribe()) else {
        return;
    };
    loop {
        {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let settings = shared.settings();
            let mut store = shared.store();
            // Each pass may enable the next (create pod → schedule it); a
            // few passes reach the fixed point.
            for _ in 0..5 {
                if !reconcile(&mut store, settings) {
                    break;
                }
            }
        }
        // Changes wake the controllers; so does time (Job TTLs).
        tokio::select! {
            change = changes.recv() => match change {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

/// Wakes the controllers (after settings change).
pub fn nudge(shared: &Arc<Shared>) {
    let mut store = shared.store();
    let settings = shared.settings();
    for _ in 0..5 {
        if !reconcile(&mut store, settings) {
            break;
        }
    }
}

fn kind(plural: &str) -> &'static Kind {
    match resources::by_plural(plural) {
        Some(kind) => kind,
        None => &resources::KINDS[0],
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn revision(name: &str, template: &Value) -> String {
    let digest = Sha256::digest(template.to_string().as_bytes());
    let mut hash = hex::encode(digest);
    hash.truncate(10);
    format!("{name}-{hash}")
}

fn condition_true(pod: &Value, kind: &str) -> bool {
    pod.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| s(c, &["type"]) == kind && s(c, &["status"]) == "True")
        })
}

/// One pass over everything; whether anything changed.
pub fn reconcile(store: &mut Store, settings: Settings) -> bool {
    let before = store.resource_version();
    statefulsets(store);
    kubelet(store, settings);
    jobs(store);
    store.resource_version() != before
}

/// What the StatefulSet controller reads of a pod.
struct OwnedPod {
    name: String,
    revision: String,
    ready: bool,
}

/// Every pod by the uid of its owners, read by reference once per pass (a
/// pass used to copy each namespace's pods twice per StatefulSet, holding the
/// store's lock: quadratic, and the fake's bottleneck under load).
fn pods_by_owner(store: &Store) -> HashMap<String, Vec<OwnedPod>> {
    let mut owned: HashMap<String, Vec<OwnedPod>> = HashMap::new();
    for (key, pod) in store.objects(kind("pods"), None) {
        let refs = pod
            .get("metadata")
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array);
        for owner in refs.into_iter().flatten() {
            owned
                .entry(s(owner, &["uid"]).to_owned())
                .or_default()
                .push(OwnedPod {
                    name: key.name.clone(),
                    revision: s(pod, &["metadata", "labels", "controller-revision-hash"])
                        .to_owned(),
                    ready: condition_true(pod, "Ready"),
                });
        }
    }
    owned
}

fn statefulsets(store: &mut Store) {
    let (all, _) = store.list(
        kind("statefulsets"),
        None,
        &LabelSelector::default(),
        &FieldSelector::default(),
    );
    let mut pods = pods_by_owner(store);
    for (key, sts) in all {
        let uid = s(&sts, &["metadata", "uid"]).to_owned();
        let replicas = sts
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let template = sts
            .get("spec")
            .and_then(|s| s.get("template"))
            .cloned()
            .unwrap_or(Value::Null);
        let revision = revision(&key.name, &template);
        // Pods past the replicas or of another revision go; the rest stay.
        let mut kept: Vec<OwnedPod> = Vec::new();
        for pod in pods.remove(&uid).unwrap_or_default() {
            let ordinal = crate::apiserver::ordinal(&pod.name, &key.name);
            let stale = pod.revision != revision;
            if (ordinal.is_none_or(|o| o >= replicas) || stale)
                && store
                    .delete(kind("pods"), &key.namespace, &pod.name, None, false)
                    .is_ok()
            {
                continue;
            }
            kept.push(pod);
        }
        for ordinal in 0..replicas {
            let name = format!("{}-{ordinal}", key.name);
            if store.contains(kind("pods"), &key.namespace, &name) {
                continue;
            }
            let pod = pod_from_template(&sts, &template, &name, ordinal, &revision);
            match store.create(kind("pods"), &key.namespace, pod, &WriteOptions::default()) {
                Ok(_) => kept.push(OwnedPod {
                    name,
                    revision: revision.clone(),
                    ready: false,
                }),
                Err(e) => {
                    tracing::warn!(statefulset = %key.name, error = %e.message, "create Pod failed")
                }
            }
        }
        let ready = kept.iter().filter(|p| p.ready).count();
        let current = kept.iter().filter(|p| p.revision == revision).count();
        let owned = kept;
        let status = json!({
            "observedGeneration": sts.get("metadata").and_then(|m| m.get("generation")).cloned().unwrap_or(json!(1)),
            "replicas": owned.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": current,
            "currentRevision": revision,
            "updateRevision": revision,
        });
        if sts.get("status") != Some(&status) {
            let mut next = sts.clone();
            next["status"] = status;
            let options = WriteOptions {
                status: true,
                ..WriteOptions::default()
            };
            let _ = store.replace(
                kind("statefulsets"),
                &key.namespace,
                &key.name,
                next,
                &options,
            );
        }
    }
}

fn pod_from_template(
    sts: &Value,
    template: &Value,
    name: &str,
    ordinal: u64,
    revision: &str,
) -> Value {
    let mut labels = template
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .cloned()
        .unwrap_or(json!({}));
    labels["apps.kubernetes.io/pod-index"] = json!(ordinal.to_string());
    labels["statefulset.kubernetes.io/pod-name"] = json!(name);
    labels["controller-revision-hash"] = json!(revision);
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    spec["hostname"] = json!(name);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": template.get("metadata").and_then(|m| m.get("annotations")).cloned().unwrap_or(json!({})),
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": s(sts, &["metadata", "name"]),
                "uid": s(sts, &["metadata", "uid"]),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    })
}

fn kubelet(store: &mut Store, settings: Settings) {
    // Only pods the kubelet has yet to start (or to schedule) are copied.
    let pods: Vec<(Key, Value)> = store
        .objects(kind("pods"), None)
        .filter(|(_, pod)| {
            let conditions = pod
                .get("status")
                .and_then(|s| s.get("conditions"))
                .and_then(Value::as_array);
            conditions.is_none_or(|c| {
                c.is_empty()
                    || c.iter()
                        .any(|c| s(c, &["type"]) == "PodScheduled" && s(c, &["status"]) == "False")
            })
        })
        .map(|(key, pod)| (key.clone(), pod.clone()))
        .collect();
    for (key, pod) in pods {
        let conditions = pod
            .get("status")
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let unscheduled = conditions
            .iter()
            .any(|c| s(c, &["type"]) == "PodScheduled" && s(c, &["status"]) == "False");
        let fresh = conditions.is_empty();
        if !(fresh || (unscheduled && settings.schedulable)) {
            continue;
        }
        let now = now();
        let status = if settings.schedulable {
            let _ = store.mutate(kind("pods"), &key.namespace, &key.name, |p| {
                p["spec"]["nodeName"] = json!("fake-node");
            });
            let ready = if settings.ready { "True" } else { "False" };
            let containers: Vec<Value> = pod
                .get("spec")
                .and_then(|s| s.get("containers"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, c)| json!({
                    "name": s(c, &["name"]),
                    "image": s(c, &["image"]),
                    "imageID": format!("fake://{}", s(c, &["image"])),
                    "containerID": format!("containerd://{}-{i}-0", s(&pod, &["metadata", "uid"])),
                    "ready": settings.ready,
                    "started": true,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }))
                .collect();
            json!({
                "phase": "Running",
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.2",
                "startTime": now,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
                    {"type": "Ready", "status": ready, "lastTransitionTime": now},
                ],
                "containerStatuses": containers,
            })
        } else if unscheduled {
            continue;
        } else {
            json!({
                "phase": "Pending",
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
                    "lastTransitionTime": now,
                }],
            })
        };
        let Ok(mut next) = store.get(kind("pods"), &key.namespace, &key.name) else {
            continue;
        };
        next["status"] = status;
        let options = WriteOptions {
            status: true,
            ..WriteOptions::default()
        };
        let _ = store.replace(kind("pods"), &key.namespace, &key.name, next, &options);
    }
}

/// When a finished Job finished (its Complete/Failed condition turned true),
/// in unix seconds.
fn finished_at(job: &Value) -> Option<i64> {
    let conditions = job.get("status")?.get("conditions")?.as_array()?;
    let done = conditions.iter().find(|c| {
        matches!(s(c, &["type"]), "Complete" | "Failed") && s(c, &["status"]) == "True"
    })?;
    let at = s(done, &["lastTransitionTime"]);
    Some(
        at.parse::<k8s_openapi::jiff::Timestamp>()
            .map_or(0, |t| t.as_second()),
    )
}

fn jobs(store: &mut Store) {
    let (jobs, _) = store.list(
        kind("jobs"),
        None,
        &LabelSelector::default(),
        &FieldSelector::default(),
    );
    let now_seconds = now()
        .parse::<k8s_openapi::jiff::Timestamp>()
        .map_or(0, |t| t.as_second());
    for (key, job) in jobs {
        // The TTL controller: finished Jobs go after ttlSecondsAfterFinished.
        let ttl = job
            .get("spec")
            .and_then(|s| s.get("ttlSecondsAfterFinished"))
            .and_then(Value::as_i64);
        if let (Some(ttl), Some(finished)) = (ttl, finished_at(&job))
            && finished + ttl <= now_seconds
        {
            let _ = store.delete(kind("jobs"), &key.namespace, &key.name, None, false);
            continue;
        }
        if job.get("status").and_then(|s| s.get("startTime")).is_some() {
            continue;
        }
        let mut next = job.clone();
        next["status"] = json!({"startTime": now(), "active": 1});
        let options = WriteOptions {
            status: true,
            ..WriteOptions::default()
        };
        let _ = store.replace(kind("jobs"), &key.namespace, &key.name, next, &options);
    }
}
