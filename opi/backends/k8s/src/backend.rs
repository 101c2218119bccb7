//! [`K8sScheduler`]: the [`opi::Scheduler`] over a Kubernetes apiserver.
//!
//! Every method reads the cluster and writes with server-side apply, so any
//! call can be repeated, a half-finished desire is completed by the next one,
//! and a restarted backend sees exactly what its predecessor left. The only
//! local state is rebuilt from watches ([`crate::watch`]): the pod cache and
//! [`Placements`], which says where a process's StatefulSet and a space's
//! namespace are, so that a desire costs a constant number of requests (two
//! applies for a new process in a known space) instead of cluster-wide LISTs
//! whose cost grows with the number of apps.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource};
use opi::events::EventBus;
use opi::model::{
    DesiredLrp, Event, Instance, LrpId, LrpUpdate, SchedulingInfo, Task, TaskCompletion, TaskState,
    TaskStatus,
};
use tokio::task::JoinHandle;

use crate::apply::optional;
use crate::config::{Config, Routing};
use crate::error::K8sError;
use crate::instances::cache::PodCache;
use crate::names::{self, label_value};
use crate::placements::{Known, Placements};
use crate::routes::{Changes, RouteTable};
use crate::translate::route::{self, HttpRoute};
use crate::translate::spec::{self, Secrets};
use crate::translate::{self, Placement, env_secret_name, registry_secret_name};
use crate::{labels, tasks, watch};

/// The Kubernetes backend. Dropping it stops its watches.
pub struct K8sScheduler {
    pub(crate) client: Client,
    pub(crate) config: Config,
    events: EventBus,
    pub(crate) pods: Arc<PodCache>,
    pub(crate) routes: Arc<RouteTable>,
    pub(crate) changes: Changes,
    pods_synced: Arc<AtomicBool>,
    jobs_synced: Arc<AtomicBool>,
    pub(crate) placements: Arc<Placements>,
    /// Namespaces this process has written the registry pull Secret into.
    pub(crate) pull_secrets: Mutex<HashSet<String>>,
    watches: Vec<JoinHandle<()>>,
}

impl Drop for K8sScheduler {
    fn drop(&mut self) {
        for watch in &self.watches {
            watch.abort();
        }
    }
}

type Result<T, E = K8sError> = std::result::Result<T, E>;

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// An `HTTPRoute` apply answered 404: the apiserver lacks the Gateway API
/// CRDs, which is a configuration error (other errors pass unchanged).
fn without_gateway_api(error: K8sError) -> K8sError {
    if error.is_not_found() {
        K8sError::Config(format!(
            "the apiserver does not serve HTTPRoutes (gateway.networking.k8s.io/v1): install the Gateway API CRDs, or use --routing ingress ({error})"
        ))
    } else {
        error
    }
}

fn not_found(id: &LrpId) -> opi::Error {
    opi::Error::NotFound(format!("LRP {id}"))
}

impl K8sScheduler {
    /// A backend on `client`; starts the pod, Job, StatefulSet and (with a
    /// namespace per space) namespace watches (call within a tokio runtime).
    pub fn new(client: Client, config: Config) -> Self {
        let events = EventBus::default();
        let pods_synced = Arc::new(AtomicBool::new(false));
        let jobs_synced = Arc::new(AtomicBool::new(false));
        let changes = Changes::default();
        let pods = Arc::new(PodCache::new(changes.clone()));
        let routes = Arc::new(RouteTable::new(changes.clone()));
        let pod_loop = watch::pods(
            Self::scoped_api(&client, &config),
            pods.clone(),
            events.clone(),
            pods_synced.clone(),
        );
        let job_loop = watch::jobs(
            Self::scoped_api(&client, &config),
            client.clone(),
            events.clone(),
            jobs_synced.clone(),
        );
        let placements = Arc::new(Placements::default());
        let set_loop = watch::statefulsets(
            Self::scoped_api(&client, &config),
            placements.clone(),
            routes.clone(),
        );
        let mut watches = vec![
            tokio::spawn(pod_loop),
            tokio::spawn(job_loop),
            tokio::spawn(set_loop),
        ];
        if config.namespace.is_some() {
            placements.no_namespaces_to_watch();
        } else {
            let api = Api::all(client.clone());
            watches.push(tokio::spawn(watch::namespaces(api, placements.clone())));
        }
        Self {
            client,
            config,
            events,
            pods,
            routes,
            changes,
            pods_synced,
            jobs_synced,
            placements,
            pull_secrets: Mutex::default(),
            watches,
        }
    }

    /// A backend from a kubeconfig file, or the in-cluster / default
    /// configuration when `kubeconfig` is `None`.
    pub async fn connect(
        kubeconfig: Option<&std::path::Path>,
        config: Config,
    ) -> Result<Self, K8sError> {
        // kube builds its TLS config on rustls' process-wide provider; Cube
        // uses ring (a no-op when the binary installed one already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kube_config = match kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path)?;
                kube::Config::from_custom_kubeconfig(
                    file,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await?
            }
            None => kube::Config::infer().await?,
        };
        let client = Client::try_from(kube_config).map_err(K8sError::from)?;
        Ok(Self::new(client, config))
    }

    /// The pod cache, for tests and diagnostics.
    pub fn pod_cache(&self) -> &PodCache {
        &self.pods
    }

    /// An API over every namespace Cube uses: the fixed one, or all.
    fn scoped_api<K>(client: &Client, config: &Config) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        match &config.namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }

    /// An API over `namespace`.
    pub(crate) fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    // ---- lookups ---------------------------------------------------------

    /// The StatefulSet of process `guid`, wherever it is: located by
    /// [`Placements`] and read with one GET; a LIST when the index is not
    /// synced yet or was stale.
    async fn find_statefulset(&self, guid: &str) -> Result<Option<StatefulSet>> {
        match self.placements.statefulset(guid) {
            Some(Known::Absent) => return Ok(None),
            Some(Known::At((namespace, name))) => {
                let found = optional(self.api::<StatefulSet>(&namespace).get(&name).await)?;
                if let Some(sts) = found
                    && annotation(&sts.metadata, labels::PROCESS_GUID) == Some(guid)
                {
                    return Ok(Some(sts));
                }
                // Deleted or replaced since: ask the apiserver.
                self.placements.forget(guid);
            }
            None => {}
        }
        self.list_statefulset(guid).await
    }

    /// The StatefulSet of process `guid`, by a LIST over Cube's scope.
    async fn list_statefulset(&self, guid: &str) -> Result<Option<StatefulSet>> {
        let selector = format!(
            "{}={},{}={}",
            labels::PROCESS_GUID,
            label_value(guid),
            labels::SOURCE_TYPE,
            labels::SOURCE_APP
        );
        let list = Self::scoped_api::<StatefulSet>(&self.client, &self.config)
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(list
            .items
            .into_iter()
            .find(|sts| annotation(&sts.metadata, labels::PROCESS_GUID) == Some(guid)))
    }

    /// The StatefulSet running exactly `id` (guid and current version).
    async fn current(&self, id: &LrpId) -> Result<StatefulSet, opi::Error> {
        let sts = self
            .find_statefulset(&id.guid)
            .await?
            .ok_or_else(|| not_found(id))?;
        if spec::lrp_id(&sts).as_ref() == Some(id) {
            Ok(sts)
        } else {
            Err(not_found(id))
        }
    }

    async fn secrets(&self, sts: &StatefulSet) -> Result<Secrets> {
        let namespace = sts.metadata.namespace.clone().unwrap_or_default();
        let name = sts.metadata.name.clone().unwrap_or_default();
        let api = self.api::<Secret>(&namespace);
        let decode = |secret: Option<Secret>| -> BTreeMap<String, Vec<u8>> {
            secret
                .and_then(|s| s.data)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        };
        let env = decode(optional(api.get(&env_secret_name(&name)).await)?);
        let environment = env
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let mut secrets = Secrets {
            environment,
            credentials: None,
        };
        let image = sts
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        // Only a pull Secret the pods use is part of the LRP (one left by an
        // interrupted desire is not).
        let pull_secret = registry_secret_name(&name);
        let uses_pull_secret = sts
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.image_pull_secrets.as_ref())
            .is_some_and(|refs| refs.iter().any(|r| r.name == pull_secret));
        if !uses_pull_secret {
            return Ok(secrets);
        }
        let registry = decode(optional(api.get(&pull_secret).await)?);
        if let Some(config) = registry.get(".dockerconfigjson") {
            secrets.credentials = translate::pod::credentials_from_docker_config(&image, config);
        }
        Ok(secrets)
    }

    async fn read_lrp(&self, sts: &StatefulSet) -> Result<DesiredLrp> {
        let secrets = self.secrets(sts).await?;
        spec::desired_lrp(sts, secrets).map_err(|e| K8sError::Corrupt(e.to_string()))
    }

    fn placement_of(sts: &StatefulSet, superseded_versions: Vec<String>) -> Placement {
        Placement {
            namespace: sts.metadata.namespace.clone().unwrap_or_default(),
            name: sts.metadata.name.clone().unwrap_or_default(),
            superseded_versions,
        }
    }

    /// The StatefulSet name for a new process in `namespace`: the plain name
    /// unless another process guid (or a StatefulSet Cube did not write)
    /// holds it. Reserved in [`Placements`] for this guid; read from the
    /// apiserver only while the index is not synced.
    async fn statefulset_name(&self, namespace: &str, lrp: &DesiredLrp) -> Result<String> {
        let (app, process_type, guid) = (&lrp.app.name, &lrp.process_type, &lrp.id.guid);
        if let Some(name) = self
            .placements
            .reserve_name(namespace, app, process_type, guid)
        {
            return Ok(name);
        }
        let plain = names::statefulset_name(app, process_type, guid);
        let existing = optional(self.api::<StatefulSet>(namespace).get(&plain).await)?;
        let name = match existing {
            Some(sts) if annotation(&sts.metadata, labels::PROCESS_GUID) != Some(guid) => {
                names::statefulset_name_on_collision(app, process_type, guid)
            }
            _ => plain,
        };
        self.placements.written(namespace, &name, guid);
        Ok(name)
    }

    /// Applies every object of `lrp` at `placement`, in an order that lets a
    /// repeated call finish what an interrupted one started.
    ///
    /// For a `new` process (no StatefulSet existed) the PDB and registry
    /// Secret it does not need are not looked for: a PDB is written only
    /// after its StatefulSet and deleted before it, and a registry Secret
    /// left by an interrupted desire is inert (the pod template does not name
    /// it, so neither pods nor [`Self::secrets`] read it) until the next
    /// desire or stop of that process removes it.
    async fn apply_lrp(&self, lrp: &DesiredLrp, placement: &Placement, new: bool) -> Result<()> {
        let namespace = &placement.namespace;
        self.apply(namespace, &translate::lrp::env_secret(lrp, placement))
            .await?;
        self.apply_or_remove(
            namespace,
            &registry_secret_name(&placement.name),
            translate::lrp::registry_secret(lrp, placement),
            new,
        )
        .await?;
        let statefulset = translate::lrp::statefulset(lrp, placement, &self.config);
        // The routing objects are owned by the StatefulSet: its uid comes
        // with the apply's answer (not read at all without routing).
        let uid = if self.config.routing.is_enabled() {
            Some(self.apply_uid(namespace, &statefulset).await?)
        } else {
            self.apply(namespace, &statefulset).await?;
            None
        };
        self.apply_or_remove(
            namespace,
            &placement.name,
            translate::lrp::pdb(lrp, placement),
            new,
        )
        .await?;
        if let Some(uid) = uid {
            self.apply_routes(lrp, placement, &uid, new).await?;
        }
        Ok(())
    }

    /// Applies the Service and the Ingress or `HTTPRoute` of `lrp` (owned
    /// by its StatefulSet `uid`), or removes those it no longer needs.
    async fn apply_routes(
        &self,
        lrp: &DesiredLrp,
        placement: &Placement,
        uid: &str,
        new: bool,
    ) -> Result<()> {
        let namespace = &placement.namespace;
        let owner = route::owner(&placement.name, uid);
        let service = names::service_name(&placement.name, &lrp.id.guid);
        self.apply_or_remove(
            namespace,
            &service,
            route::service(lrp, placement, &service, &owner),
            new,
        )
        .await?;
        match &self.config.routing {
            Routing::None => Ok(()),
            Routing::Ingress { class, tls_secret } => {
                let ingress = route::ingress(
                    lrp,
                    placement,
                    &service,
                    class.as_deref(),
                    tls_secret.as_deref(),
                    &owner,
                );
                self.apply_or_remove(namespace, &placement.name, ingress, new)
                    .await
            }
            Routing::Gateway {
                name,
                namespace: gateway_namespace,
            } => {
                let gateway = route::Gateway {
                    name,
                    namespace: gateway_namespace.as_deref(),
                };
                let http_route = route::http_route(lrp, placement, &service, &gateway, &owner);
                self.apply_or_remove(namespace, &placement.name, http_route, new)
                    .await
                    .map_err(without_gateway_api)
            }
        }
    }

    /// Deletes the Service and route object of process `guid` whose
    /// StatefulSet is `name` (the garbage collector would, later).
    async fn delete_routes(&self, namespace: &str, name: &str, guid: &str) -> Result<()> {
        match &self.config.routing {
            Routing::None => return Ok(()),
            Routing::Ingress { .. } => self.delete_if_present::<Ingress>(namespace, name).await?,
            Routing::Gateway { .. } => {
                self.delete_if_present::<HttpRoute>(namespace, name).await?;
            }
        }
        self.delete_if_present::<Service>(namespace, &names::service_name(name, guid))
            .await
    }

    async fn find_job(&self, guid: &str) -> Result<Option<Job>> {
        let selector = format!("{}={}", labels::TASK_GUID, label_value(guid));
        let list = Self::scoped_api::<Job>(&self.client, &self.config)
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(list
            .items
            .into_iter()
            .find(|job| tasks::guid(job) == Some(guid)))
    }
}

#[async_trait::async_trait]
impl opi::Scheduler for K8sScheduler {
    async fn desire(&self, lrp: DesiredLrp) -> Result<(), opi::Error> {
        let found = self.find_statefulset(&lrp.id.guid).await?;
        let new = found.is_none();
        let placement = match found {
            Some(sts) => {
                let mut superseded = spec::superseded_versions(&sts);
                if let Some(running) = spec::lrp_id(&sts)
                    && running.version != lrp.id.version
                    && !superseded.contains(&running.version)
                {
                    superseded.push(running.version);
                }
                superseded.retain(|v| v != &lrp.id.version);
                Self::placement_of(&sts, superseded)
            }
            None => {
                let namespace = self.namespace_for(&lrp.space, &lrp.org).await?;
                let name = self.statefulset_name(&namespace, &lrp).await?;
                Placement {
                    namespace,
                    name,
                    superseded_versions: Vec::new(),
                }
            }
        };
        self.ensure_pull_secret(&placement.namespace, &lrp.lifecycle)
            .await?;
        self.apply_lrp(&lrp, &placement, new).await?;
        Ok(())
    }

    async fn update(&self, id: &LrpId, update: LrpUpdate) -> Result<(), opi::Error> {
        let sts = self.current(id).await?;
        let mut lrp = self.read_lrp(&sts).await?;
        lrp.apply(&update);
        let placement = Self::placement_of(&sts, spec::superseded_versions(&sts));
        self.apply_lrp(&lrp, &placement, false).await?;
        Ok(())
    }

    async fn get(&self, id: &LrpId) -> Result<DesiredLrp, opi::Error> {
        let sts = self.current(id).await?;
        Ok(self.read_lrp(&sts).await?)
    }

    async fn list(&self) -> Result<Vec<SchedulingInfo>, opi::Error> {
        let selector = format!("{}={}", labels::SOURCE_TYPE, labels::SOURCE_APP);
        let list = Self::scoped_api::<StatefulSet>(&self.client, &self.config)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(K8sError::from)?;
        Ok(list
            .items
            .iter()
            .filter_map(|sts| {
                Some(SchedulingInfo {
                    id: spec::lrp_id(sts)?,
                    annotation: annotation(&sts.metadata, labels::LAST_UPDATED)
                        .unwrap_or("")
                        .to_owned(),
                    instances: u32::try_from(sts.spec.as_ref()?.replicas.unwrap_or(1)).unwrap_or(0),
                })
            })
            .collect())
    }

    async fn stop(&self, id: &LrpId) -> Result<(), opi::Error> {
        let sts = self
            .find_statefulset(&id.guid)
            .await?
            .ok_or_else(|| not_found(id))?;
        let superseded = spec::superseded_versions(&sts);
        if spec::lrp_id(&sts).as_ref() != Some(id) {
            // An older version: it was replaced already; forget it, and leave
            // the StatefulSet running the newer one.
            if !superseded.contains(&id.version) {
                return Err(not_found(id));
            }
            let lrp = self.read_lrp(&sts).await?;
            let remaining = superseded
                .into_iter()
                .filter(|v| v != &id.version)
                .collect();
            self.apply_lrp(&lrp, &Self::placement_of(&sts, remaining), false)
                .await?;
            return Ok(());
        }
        let placement = Self::placement_of(&sts, superseded);
        let namespace = &placement.namespace;
        // The StatefulSet goes last: while it exists, a repeated stop finds
        // it and finishes the job.
        self.delete_routes(namespace, &placement.name, &id.guid)
            .await?;
        self.delete_if_present::<PodDisruptionBudget>(namespace, &placement.name)
            .await?;
        self.delete_if_present::<Secret>(namespace, &registry_secret_name(&placement.name))
            .await?;
        self.delete_if_present::<Secret>(namespace, &env_secret_name(&placement.name))
            .await?;
        self.delete_if_present::<StatefulSet>(namespace, &placement.name)
            .await?;
        self.placements.forget(&id.guid);
        Ok(())
    }

    async fn stop_instance(&self, id: &LrpId, index: u32) -> Result<(), opi::Error> {
        let sts = self.current(id).await?;
        let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        if i64::from(index) >= i64::from(replicas) {
            return Err(opi::Error::NotFound(format!(
                "instance {index} of LRP {id}"
            )));
        }
        let namespace = sts.metadata.namespace.clone().unwrap_or_default();
        let pod = format!("{}-{index}", sts.metadata.name.clone().unwrap_or_default());
        // Gone already (being replaced) is as good as stopped.
        self.delete_if_present::<Pod>(&namespace, &pod).await?;
        Ok(())
    }

    async fn instances(&self, id: &LrpId) -> Result<Vec<Instance>, opi::Error> {
        let sts = self.current(id).await?;
        let namespace = sts.metadata.namespace.clone();
        let replicas = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let mut found: Vec<Instance> = self
            .pods
            .instances(namespace.as_deref().unwrap_or_default(), id)
            .into_iter()
            .filter(|instance| i64::from(instance.index) < i64::from(replicas))
            .collect();
        found.sort_by_key(|i| i.index);
        found.dedup_by_key(|i| i.index);
        Ok(found)
    }

    async fn desire_task(&self, task: Task) -> Result<(), opi::Error> {
        if self.find_job(&task.guid).await?.is_some() {
            return Err(opi::Error::Conflict(format!(
                "task {} already exists",
                task.guid
            )));
        }
        let namespace = self.namespace_for(&task.space, &task.org).await?;
        self.ensure_pull_secret(&namespace, &task.lifecycle).await?;
        let job = translate::task::job(&task, &namespace, &self.config);
        let params = PostParams {
            field_manager: Some(self.config.field_manager.clone()),
            ..PostParams::default()
        };
        // Create, not apply: a second task with this guid must fail, not merge.
        let created = self
            .api::<Job>(&namespace)
            .create(&params, &job)
            .await
            .map_err(K8sError::from)
            .map_err(|e| match e {
                e if e.is_conflict() => {
                    opi::Error::Conflict(format!("task {} already exists", task.guid))
                }
                e => opi::Error::from(e),
            })?;
        self.apply(&namespace, &translate::task::env_secret(&task, &created))
            .await?;
        if let Some(secret) = translate::task::callback_secret(&task, &created) {
            self.apply(&namespace, &secret).await?;
        }
        if let Some(secret) = translate::task::registry_secret(&task, &created) {
            self.apply(&namespace, &secret).await?;
        }
        Ok(())
    }

    async fn get_task(&self, guid: &str) -> Result<TaskStatus, opi::Error> {
        self.find_job(guid)
            .await?
            .as_ref()
            .and_then(tasks::status)
            .ok_or_else(|| opi::Error::NotFound(format!("task {guid}")))
    }

    async fn list_tasks(&self) -> Result<Vec<TaskStatus>, opi::Error> {
        let selector = format!("{}={}", labels::SOURCE_TYPE, labels::SOURCE_TASK);
        let list = Self::scoped_api::<Job>(&self.client, &self.config)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(K8sError::from)?;
        Ok(list.items.iter().filter_map(tasks::status).collect())
    }

    async fn cancel_task(&self, guid: &str) -> Result<(), opi::Error> {
        let job = self
            .find_job(guid)
            .await?
            .ok_or_else(|| opi::Error::NotFound(format!("task {guid}")))?;
        let namespace = job.metadata.namespace.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let finished = matches!(tasks::state(&job), TaskState::Completed { .. });
        // Read before the delete: the callback's Secret goes with the Job.
        let completion_callback = if finished {
            String::new()
        } else {
            tasks::callback(&self.client, &job).await
        };
        self.delete_if_present::<Job>(&namespace, &name).await?;
        if !finished {
            self.events.publish(Event::TaskCompleted(TaskCompletion {
                guid: guid.to_owned(),
                completion_callback,
                failed: true,
                failure_reason: "cancelled".into(),
                result: String::new(),
            }));
        }
        Ok(())
    }

    fn event_bus(&self) -> &EventBus {
        &self.events
    }

    fn routes(self: Arc<Self>) -> Option<Arc<dyn opi::routing::RouteSource>> {
        Some(self)
    }

    async fn ready(&self) -> Result<(), String> {
        if !self.pods_synced.load(Ordering::SeqCst) {
            return Err("pod cache not synced with the apiserver yet".into());
        }
        if !self.jobs_synced.load(Ordering::SeqCst) {
            return Err("job watch not synced with the apiserver yet".into());
        }
        if !self.placements.statefulsets_synced() {
            return Err("StatefulSet index not synced with the apiserver yet".into());
        }
        if !self.placements.namespaces_synced() {
            return Err("namespace index not synced with the apiserver yet".into());
        }
        Ok(())
    }
}
