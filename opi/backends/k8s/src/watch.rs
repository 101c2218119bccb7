//! The watches behind [`crate::K8sScheduler`]: a pod watch feeding the
//! [`PodCache`] of compact records, which also turns container restarts
//! into crash events, a Job
//! watch that turns finished Jobs into task-completed events, and the
//! StatefulSet and namespace watches that keep [`Placements`] and the
//! [`RouteTable`] current.
//!
//! Both loops run until their [`tokio::task::JoinHandle`] is aborted; watch
//! errors (apiserver down, 410 Gone) are retried with backoff by
//! kube-runtime, which relists and hands us `Init…InitDone` again.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use opi::events::EventBus;
use opi::model::Event;

use crate::instances::PodView;
use crate::instances::cache::PodCache;
use crate::instances::view::resource_as;
use crate::labels;
use crate::placements::Placements;
use crate::routes::RouteTable;

/// Field manager of the completion-reported annotation: a separate manager
/// so this one-field apply never touches the fields `cube` owns.
pub const COMPLETION_MANAGER: &str = "cube-task-completion";

/// Pods per page while (re)listing. Each page's body is read and decoded
/// whole before its pods become records, and the allocator keeps what that
/// took: with kube's default of 500 the cache of 10,000 pods cost 2.7 MB per
/// 1,000 in the `watch-memory` benchmark, with 100 1.1–1.2 MB. 100 LISTs for
/// 10,000 pods, once per relist, cost the apiserver little.
const LIST_PAGE: u32 = 100;

/// The pod watch loop: keeps `cache` equal to the LRP pods in scope and
/// publishes their crashes.
pub fn pods(
    api: Api<PodView>,
    cache: Arc<PodCache>,
    events: EventBus,
    synced: Arc<AtomicBool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let config = watcher::Config::default()
        .labels(&format!("{}={}", labels::SOURCE_TYPE, labels::SOURCE_APP))
        .page_size(LIST_PAGE);
    let stream = watcher(api, config).default_backoff();
    async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init) => cache.relisting(),
                Ok(watcher::Event::InitApply(pod)) => {
                    if let Some(crash) = cache.apply(&pod, true) {
                        events.publish(Event::Crashed(crash));
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    cache.listed();
                    synced.store(true, Ordering::SeqCst);
                }
                Ok(watcher::Event::Apply(pod)) => {
                    if let Some(crash) = cache.apply(&pod, false) {
                        tracing::info!(
                            process_guid = %crash.id,
                            index = crash.index,
                            exit_status = crash.exit_status,
                            "instance crashed"
                        );
                        events.publish(Event::Crashed(crash));
                    }
                }
                Ok(watcher::Event::Delete(pod)) => cache.delete(&pod),
                Err(error) => tracing::warn!(%error, "pod watch failed; retrying"),
            }
        }
    }
}

/// The Job watch loop: reports each finished task once and marks its Job.
pub fn jobs(
    api: Api<Job>,
    client: Client,
    events: EventBus,
    synced: Arc<AtomicBool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let config = watcher::Config::default().labels(&format!(
        "{}={}",
        labels::SOURCE_TYPE,
        labels::SOURCE_TASK
    ));
    let stream = watcher(api, config).default_backoff();
    async move {
        // Jobs reported by this process whose annotation may not be back yet.
        let mut reported: HashSet<String> = HashSet::new();
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let job = match event {
                Ok(watcher::Event::Apply(job) | watcher::Event::InitApply(job)) => job,
                Ok(watcher::Event::Delete(job)) => {
                    reported.remove(&job.metadata.uid.clone().unwrap_or_default());
                    continue;
                }
                Ok(watcher::Event::InitDone) => {
                    synced.store(true, Ordering::SeqCst);
                    continue;
                }
                Ok(watcher::Event::Init) => continue,
                Err(error) => {
                    tracing::warn!(%error, "job watch failed; retrying");
                    continue;
                }
            };
            let uid = job.metadata.uid.clone().unwrap_or_default();
            if reported.contains(&uid) {
                continue;
            }
            let Some(completion) = crate::tasks::completion_naming_step(&client, &job).await else {
                continue;
            };
            reported.insert(uid);
            tracing::info!(task_guid = %completion.guid, failed = completion.failed, "task completed");
            events.publish(Event::TaskCompleted(completion));
            mark_reported(&client, &job).await;
        }
    }
}

async fn mark_reported(client: &Client, job: &Job) {
    let (Some(name), Some(namespace)) = (&job.metadata.name, &job.metadata.namespace) else {
        return;
    };
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "annotations": { labels::COMPLETION_REPORTED: "true" },
        },
    });
    let params = PatchParams::apply(COMPLETION_MANAGER).force();
    if let Err(error) = api.patch(name, &params, &Patch::Apply(&patch)).await {
        // Not fatal: at worst a restarted Cube reports the completion again.
        tracing::warn!(%error, job = %name, "could not mark task completion as reported");
    }
}

/// A StatefulSet as the placement watch reads it: its metadata only. The
/// apiserver still sends whole objects; skipping the pod template while
/// decoding keeps each event cheap (one per desire).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StatefulSetMeta {
    /// The StatefulSet's metadata.
    pub metadata: ObjectMeta,
}

resource_as!(StatefulSetMeta, StatefulSet);

/// The StatefulSet watch loop: keeps `placements` equal to every StatefulSet
/// in scope, and `routes` equal to the routes of Cube's ones. Not filtered
/// by label, so that the collision check also sees StatefulSets Cube did
/// not write; only names, the process guid, the app guid and the routes are
/// kept.
pub fn statefulsets(
    api: Api<StatefulSetMeta>,
    placements: Arc<Placements>,
    routes: Arc<RouteTable>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let location = |sts: &StatefulSetMeta| {
                (
                    sts.metadata.namespace.clone().unwrap_or_default(),
                    sts.metadata.name.clone().unwrap_or_default(),
                )
            };
            match event {
                Ok(watcher::Event::Init) => {
                    placements.statefulsets_relisting();
                    routes.relisting();
                }
                Ok(watcher::Event::InitApply(sts) | watcher::Event::Apply(sts)) => {
                    routes.seen(&sts.metadata);
                    let guid = sts
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(labels::PROCESS_GUID))
                        .cloned();
                    placements.statefulset_seen(location(&sts), guid);
                }
                Ok(watcher::Event::InitDone) => {
                    placements.statefulsets_listed();
                    routes.listed();
                }
                Ok(watcher::Event::Delete(sts)) => {
                    routes.gone(&sts.metadata);
                    placements.statefulset_gone(&location(&sts));
                }
                Err(error) => tracing::warn!(%error, "StatefulSet watch failed; retrying"),
            }
        }
    }
}

/// The namespace watch loop: keeps `placements` equal to the namespaces
/// labelled with a space guid.
pub fn namespaces(
    api: Api<Namespace>,
    placements: Arc<Placements>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let stream =
        watcher(api, watcher::Config::default().labels(labels::SPACE_GUID)).default_backoff();
    async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let space = |ns: &Namespace| {
                ns.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::SPACE_GUID))
                    .cloned()
                    .unwrap_or_default()
            };
            match event {
                Ok(watcher::Event::Init) => placements.namespaces_relisting(),
                Ok(watcher::Event::InitApply(ns) | watcher::Event::Apply(ns)) => {
                    let name = ns.metadata.name.clone().unwrap_or_default();
                    placements.namespace_seen(space(&ns), name);
                }
                Ok(watcher::Event::InitDone) => placements.namespaces_listed(),
                Ok(watcher::Event::Delete(ns)) => {
                    placements.namespace_gone(ns.metadata.name.as_deref().unwrap_or_default());
                }
                Err(error) => tracing::warn!(%error, "namespace watch failed; retrying"),
            }
        }
    }
}
