//! [`LocalScheduler`]: the [`Scheduler`] implementation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use opi::events::EventBus;
use opi::model::validate::Invalid;
use opi::model::{
    DesiredLrp, Instance, LrpId, LrpLifecycle, LrpUpdate, SchedulingInfo, Task, TaskState,
    TaskStatus, WORKSPACE_ENV,
};
use opi::routing::{Endpoint, InstanceAddress, RouteSource, lrp_endpoints};
use opi::{Error as OpiError, Scheduler};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::droplet::{self, DropletSource};
use crate::orphans;
use crate::process::{Launch, ensure_dir};
use crate::store::Store;
use crate::supervisor::{InstanceHandle, InstanceSpec};
use crate::task::{self, TaskRuntime};

/// Settings of the local backend.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where droplets, desired state and instance scratch dirs live.
    pub root: PathBuf,
    /// Tasks with a docker lifecycle naming this image run their command on
    /// the host in a scratch directory (St8ge's staging tasks). `None`: docker
    /// tasks are refused like docker LRPs.
    pub host_exec_image: Option<String>,
}

struct LrpRuntime {
    lrp: Arc<DesiredLrp>,
    command: String,
    droplet_dir: PathBuf,
    instances: Vec<InstanceHandle>,
}

struct Inner {
    config: LocalConfig,
    droplets: Arc<dyn DropletSource>,
    store: Store,
    lrps: Mutex<HashMap<LrpId, LrpRuntime>>,
    tasks: Mutex<HashMap<String, TaskRuntime>>,
    events: EventBus,
    fetching: tokio::sync::Mutex<()>,
    http: reqwest::Client,
    /// Bumped whenever an instance changes state or an LRP is desired,
    /// updated or stopped ([`RouteSource::changes`]).
    changes: Arc<watch::Sender<u64>>,
}

/// Runs LRPs and tasks as processes on this machine. Cheap to clone.
#[derive(Clone)]
pub struct LocalScheduler {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn not_found(id: &LrpId) -> OpiError {
    OpiError::NotFound(format!("LRP {id}"))
}

impl LocalScheduler {
    /// Opens the backend at `config.root`, reloading every LRP desired before
    /// and starting its instances.
    pub async fn start(
        config: LocalConfig,
        droplets: Arc<dyn DropletSource>,
    ) -> Result<Self, Error> {
        ensure_dir(&config.root)?;
        // Instances a killed predecessor left running would otherwise run
        // twice once the stored LRPs are brought back.
        orphans::reap(&config.root.join("instances"), &config.root);
        let store = Store::open(config.root.join("lrps"))?;
        let http = opi::http::http_client_builder()
            .build()
            .map_err(|e| Error::Droplet {
                droplet: String::new(),
                message: format!("cannot build HTTP client: {e}"),
            })?;
        let scheduler = Self {
            inner: Arc::new(Inner {
                config,
                droplets,
                store,
                lrps: Mutex::new(HashMap::new()),
                tasks: Mutex::new(HashMap::new()),
                events: EventBus::default(),
                fetching: tokio::sync::Mutex::new(()),
                http,
                changes: Arc::new(watch::Sender::new(0)),
            }),
        };
        let (lrps, problems) = scheduler.inner.store.load_all()?;
        for problem in problems {
            tracing::error!(error = %problem, "a stored LRP could not be read; moved aside");
        }
        for lrp in lrps {
            let id = lrp.id.clone();
            if let Err(error) = scheduler.desire(lrp).await {
                tracing::error!(lrp = %id, %error, "cannot bring back a stored LRP");
            } else {
                tracing::info!(lrp = %id, "restored LRP");
            }
        }
        Ok(scheduler)
    }

    /// Stops every instance and task process (the desired state stays on
    /// disk, so the next [`LocalScheduler::start`] brings them back): the
    /// backend's [`Scheduler::shutdown`].
    async fn stop_processes(&self) {
        let runtimes: Vec<LrpRuntime> = lock(&self.inner.lrps).drain().map(|(_, r)| r).collect();
        self.bump();
        for runtime in runtimes {
            for instance in runtime.instances {
                instance.stop().await;
            }
        }
        for task in lock(&self.inner.tasks).values() {
            task.cancel.cancel();
        }
    }

    /// Tells route publishers that endpoints may have changed.
    fn bump(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The directory the droplet of `id` is unpacked in (its `app/` is `$HOME`).
    pub fn droplet_dir(&self, id: &LrpId) -> Option<PathBuf> {
        lock(&self.inner.lrps)
            .get(id)
            .map(|r| r.droplet_dir.clone())
    }

    async fn ensure_droplet(&self, guid: &str, hash: &str) -> Result<PathBuf, OpiError> {
        let dir = self
            .inner
            .config
            .root
            .join("droplets")
            .join(format!("{guid}-{hash}"));
        if dir.is_dir() {
            return Ok(dir);
        }
        let _one_at_a_time = self.inner.fetching.lock().await;
        if dir.is_dir() {
            return Ok(dir);
        }
        let downloads = self.inner.config.root.join("downloads");
        ensure_dir(&downloads)?;
        let tgz = downloads.join(format!("{guid}-{hash}.tgz"));
        let fetched = self.inner.droplets.download(guid, hash, &tgz).await;
        let result = match fetched {
            Ok(()) => {
                let (tgz_path, dest) = (tgz.clone(), dir.clone());
                tokio::task::spawn_blocking(move || droplet::extract(&tgz_path, &dest))
                    .await
                    .map_err(|e| OpiError::Internal(format!("droplet extraction panicked: {e}")))?
                    .map_err(OpiError::from)
            }
            Err(e) => Err(OpiError::from(e)),
        };
        let _ = tokio::fs::remove_file(&tgz).await;
        result.map(|()| dir)
    }

    fn spawn_instance(&self, runtime: &LrpRuntime, index: u32) -> InstanceHandle {
        let run_dir = self
            .inner
            .config
            .root
            .join("instances")
            .join(runtime.lrp.id.process_guid())
            .join(index.to_string());
        InstanceHandle::spawn(InstanceSpec {
            lrp: runtime.lrp.clone(),
            index,
            command: runtime.command.clone(),
            droplet_dir: runtime.droplet_dir.clone(),
            run_dir,
            events: self.inner.events.clone(),
            http: self.inner.http.clone(),
            changes: self.inner.changes.clone(),
        })
    }

    async fn release_droplet_if_unused(&self, droplet_dir: &Path) {
        let in_use = lock(&self.inner.lrps)
            .values()
            .any(|r| r.droplet_dir == droplet_dir)
            || lock(&self.inner.tasks)
                .values()
                .any(|t| !matches!(*task::lock(&t.state), TaskState::Completed { .. }));
        if !in_use {
            let _ = tokio::fs::remove_dir_all(droplet_dir).await;
        }
    }
}

/// Instances that are running and healthy, dialled at 127.0.0.1 on the one
/// port each instance listens on (`$PORT`): every routed container port of
/// the LRP reaches that port, as the local router always did.
impl RouteSource for LocalScheduler {
    /// Every route host of every desired LRP, running or not.
    fn routed_hosts(&self) -> std::collections::BTreeSet<String> {
        lock(&self.inner.lrps)
            .values()
            .flat_map(|r| r.lrp.routes.cf_router.iter())
            .map(|route| opi::routing::route_host(&route.hostname))
            .collect()
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        let lrps = lock(&self.inner.lrps);
        let mut endpoints = Vec::new();
        for runtime in lrps.values() {
            for (instance, index) in runtime.instances.iter().zip(0u32..) {
                let status = instance.status();
                if let (opi::model::InstanceState::Running, Some(port)) =
                    (status.state, status.port)
                {
                    let address = InstanceAddress {
                        instance_guid: status.instance_guid,
                        index,
                        host: "127.0.0.1".into(),
                    };
                    endpoints.extend(lrp_endpoints(&runtime.lrp, &address, |_| Some(port)));
                }
            }
        }
        endpoints.sort();
        endpoints
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }
}

/// The start command: the LRP's, or the droplet's `staging_info.yml` one.
fn start_command(lrp_command: &str, droplet_dir: &Path) -> Option<String> {
    if !lrp_command.trim().is_empty() {
        return Some(lrp_command.to_owned());
    }
    let text = std::fs::read_to_string(droplet_dir.join("staging_info.yml")).ok()?;
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        return json["start_command"]
            .as_str()
            .map(str::to_owned)
            .filter(|c| !c.is_empty());
    }
    text.lines()
        .find_map(|line| line.strip_prefix("start_command:"))
        .map(|c| c.trim().trim_matches('"').to_owned())
        .filter(|c| !c.is_empty())
}

fn docker_not_supported(what: &str) -> OpiError {
    OpiError::NotSupported(format!(
        "docker images are not supported by the local backend ({what}); push the app with a buildpack, or use the Kubernetes backend"
    ))
}

#[async_trait::async_trait]
impl Scheduler for LocalScheduler {
    async fn desire(&self, lrp: DesiredLrp) -> Result<(), OpiError> {
        let LrpLifecycle::Buildpack {
            droplet_guid,
            droplet_hash,
            start_command: lrp_command,
        } = &lrp.lifecycle
        else {
            return Err(docker_not_supported(&format!("LRP {}", lrp.id)));
        };
        if lock(&self.inner.lrps)
            .get(&lrp.id)
            .is_some_and(|r| *r.lrp == lrp)
        {
            return Ok(());
        }
        let droplet_dir = self.ensure_droplet(droplet_guid, droplet_hash).await?;
        let command = start_command(lrp_command, &droplet_dir).ok_or_else(|| {
            Invalid::new(
                "lifecycle.buildpack_lifecycle.start_command",
                "is empty and the droplet's staging_info.yml names no start command",
            )
        })?;
        self.inner.store.save(&lrp)?;
        let mut runtime = LrpRuntime {
            lrp: Arc::new(lrp),
            command,
            droplet_dir,
            instances: Vec::new(),
        };
        for index in 0..runtime.lrp.instances {
            let handle = self.spawn_instance(&runtime, index);
            runtime.instances.push(handle);
        }
        let replaced = lock(&self.inner.lrps).insert(runtime.lrp.id.clone(), runtime);
        self.bump();
        if let Some(old) = replaced {
            for instance in old.instances {
                instance.stop().await;
            }
        }
        Ok(())
    }

    async fn update(&self, id: &LrpId, update: LrpUpdate) -> Result<(), OpiError> {
        let (retired, lrp) = {
            let mut lrps = lock(&self.inner.lrps);
            let runtime = lrps.get_mut(id).ok_or_else(|| not_found(id))?;
            let mut lrp = (*runtime.lrp).clone();
            lrp.apply(&update);
            runtime.lrp = Arc::new(lrp.clone());
            let want = usize::try_from(lrp.instances).unwrap_or(usize::MAX);
            let retired = if runtime.instances.len() > want {
                runtime.instances.split_off(want)
            } else {
                Vec::new()
            };
            (retired, lrp)
        };
        // New routes or fewer instances change the endpoints now.
        self.bump();
        self.inner.store.save(&lrp)?;
        for instance in retired {
            instance.stop().await;
        }
        let mut lrps = lock(&self.inner.lrps);
        if let Some(runtime) = lrps.get_mut(id) {
            let have = u32::try_from(runtime.instances.len()).unwrap_or(u32::MAX);
            for index in have..runtime.lrp.instances {
                let handle = self.spawn_instance(runtime, index);
                runtime.instances.push(handle);
            }
        }
        Ok(())
    }

    async fn get(&self, id: &LrpId) -> Result<DesiredLrp, OpiError> {
        lock(&self.inner.lrps)
            .get(id)
            .map(|r| (*r.lrp).clone())
            .ok_or_else(|| not_found(id))
    }

    async fn list(&self) -> Result<Vec<SchedulingInfo>, OpiError> {
        Ok(lock(&self.inner.lrps)
            .values()
            .map(|r| r.lrp.scheduling_info())
            .collect())
    }

    async fn stop(&self, id: &LrpId) -> Result<(), OpiError> {
        let runtime = lock(&self.inner.lrps)
            .remove(id)
            .ok_or_else(|| not_found(id))?;
        self.bump();
        self.inner.store.remove(id)?;
        for instance in runtime.instances {
            instance.stop().await;
        }
        let _ = tokio::fs::remove_dir_all(
            self.inner
                .config
                .root
                .join("instances")
                .join(id.process_guid()),
        )
        .await;
        self.release_droplet_if_unused(&runtime.droplet_dir).await;
        Ok(())
    }

    async fn stop_instance(&self, id: &LrpId, index: u32) -> Result<(), OpiError> {
        let lrps = lock(&self.inner.lrps);
        let runtime = lrps.get(id).ok_or_else(|| not_found(id))?;
        let instance = runtime
            .instances
            .get(usize::try_from(index).unwrap_or(usize::MAX))
            .ok_or_else(|| OpiError::NotFound(format!("instance {index} of LRP {id}")))?;
        instance.restart();
        Ok(())
    }

    async fn instances(&self, id: &LrpId) -> Result<Vec<Instance>, OpiError> {
        let lrps = lock(&self.inner.lrps);
        let runtime = lrps.get(id).ok_or_else(|| not_found(id))?;
        Ok(runtime
            .instances
            .iter()
            .zip(0u32..)
            .map(|(instance, index)| {
                let status = instance.status();
                Instance {
                    index,
                    since: status.since,
                    state: status.state,
                    placement_error: status.placement_error,
                    crash_count: status.crash_count,
                    crash_reason: status.crash_reason,
                }
            })
            .collect())
    }

    async fn desire_task(&self, task: Task) -> Result<(), OpiError> {
        if lock(&self.inner.tasks).contains_key(&task.guid) {
            return Err(OpiError::Conflict(format!(
                "task {} already exists",
                task.guid
            )));
        }
        let scratch = self.inner.config.root.join("tasks").join(&task.guid);
        ensure_dir(&scratch)?;
        let mut env: Vec<(String, String)> = task
            .environment
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect();
        let (command, cwd, home) = match &task.lifecycle {
            LrpLifecycle::Buildpack {
                droplet_guid,
                droplet_hash,
                start_command,
            } => {
                let droplet_dir = self.ensure_droplet(droplet_guid, droplet_hash).await?;
                let app = droplet_dir.join("app");
                env.push((
                    "DEPS_DIR".into(),
                    droplet_dir.join("deps").display().to_string(),
                ));
                (start_command.clone(), app.clone(), app)
            }
            LrpLifecycle::Docker { image, command, .. }
                if self.inner.config.host_exec_image.as_deref() == Some(image.as_str()) =>
            {
                (shell_join(command), scratch.clone(), scratch.clone())
            }
            LrpLifecycle::Docker { image, .. } => {
                return Err(docker_not_supported(&format!("task image {image}")));
            }
        };
        if command.trim().is_empty() && task.steps.is_empty() {
            return Err(Invalid::new("lifecycle", "the task has no command to run").into());
        }
        env.push(("HOME".into(), home.display().to_string()));
        env.push(("TMPDIR".into(), scratch.display().to_string()));
        env.push(("CF_TASK_GUID".into(), task.guid.clone()));
        let processes = if task.steps.is_empty() {
            vec![task::TaskProcess {
                step: None,
                launch: Launch {
                    command,
                    cwd,
                    env,
                    log_name: format!("task/{}", task.guid),
                },
            }]
        } else {
            // Validation allows steps only with a docker lifecycle, which
            // runs here only as the host-exec image, in the scratch dir.
            env.retain(|(name, _)| name != WORKSPACE_ENV);
            env.push((WORKSPACE_ENV.into(), scratch.display().to_string()));
            task.steps
                .iter()
                .map(|step| task::TaskProcess {
                    step: Some(step.name.clone()),
                    launch: Launch {
                        command: shell_join(&step.command),
                        cwd: cwd.clone(),
                        env: env.clone(),
                        log_name: format!("task/{}/{}", task.guid, step.name),
                    },
                })
                .collect()
        };
        let runtime = TaskRuntime {
            task: task.clone(),
            state: Arc::new(Mutex::new(TaskState::Pending)),
            cancel: CancellationToken::new(),
        };
        {
            let mut tasks = lock(&self.inner.tasks);
            if tasks.contains_key(&task.guid) {
                return Err(OpiError::Conflict(format!(
                    "task {} already exists",
                    task.guid
                )));
            }
            task::spawn(
                &task,
                processes,
                runtime.state.clone(),
                runtime.cancel.clone(),
                self.inner.events.clone(),
            );
            tasks.insert(task.guid.clone(), runtime);
        }
        Ok(())
    }

    async fn get_task(&self, guid: &str) -> Result<TaskStatus, OpiError> {
        lock(&self.inner.tasks)
            .get(guid)
            .map(task_status)
            .ok_or_else(|| OpiError::NotFound(format!("task {guid}")))
    }

    async fn list_tasks(&self) -> Result<Vec<TaskStatus>, OpiError> {
        Ok(lock(&self.inner.tasks).values().map(task_status).collect())
    }

    async fn cancel_task(&self, guid: &str) -> Result<(), OpiError> {
        let tasks = lock(&self.inner.tasks);
        let runtime = tasks
            .get(guid)
            .ok_or_else(|| OpiError::NotFound(format!("task {guid}")))?;
        runtime.cancel.cancel();
        Ok(())
    }

    fn event_bus(&self) -> &EventBus {
        &self.inner.events
    }

    fn routes(self: Arc<Self>) -> Option<Arc<dyn RouteSource>> {
        Some(self)
    }

    async fn shutdown(&self) {
        self.stop_processes().await;
    }
}

fn task_status(runtime: &TaskRuntime) -> TaskStatus {
    TaskStatus {
        guid: runtime.task.guid.clone(),
        name: runtime.task.name.clone(),
        app_guid: runtime.task.app.guid.clone(),
        state: task::lock(&runtime.state).clone(),
    }
}

/// Joins argv into one shell command, quoting each word.
fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            if !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
            {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_join_quotes_what_needs_it() {
        let argv = vec![
            "cube".into(),
            "stage".into(),
            "it's here".into(),
            String::new(),
        ];
        assert_eq!(shell_join(&argv), r"cube stage 'it'\''s here' ''");
    }

    #[test]
    fn start_command_falls_back_to_staging_info() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(start_command("", dir.path()), None);
        std::fs::write(
            dir.path().join("staging_info.yml"),
            r#"{"detected_buildpack":"python","start_command":"python app.py"}"#,
        )
        .unwrap();
        assert_eq!(
            start_command("", dir.path()).as_deref(),
            Some("python app.py")
        );
        assert_eq!(start_command("./run", dir.path()).as_deref(), Some("./run"));
        std::fs::write(
            dir.path().join("staging_info.yml"),
            "start_command: ./web\n",
        )
        .unwrap();
        assert_eq!(start_command("", dir.path()).as_deref(), Some("./web"));
    }
}
