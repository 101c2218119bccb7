//! One task per instance: start the process, wait for its health check, watch
//! it, and on an unexpected exit report a crash and restart it following
//! Diego's policy ([`crate::restart`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opi::events::EventBus;
use opi::model::{CrashEvent, DesiredLrp, Event, HealthCheckType, InstanceState, now_unix_nanos};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::health;
use crate::orphans;
use crate::process::{self, Launch};
use crate::restart::{RESET_AFTER, restart_delay};

/// How long an instance may take to pass its first health check when CC
/// sends no start timeout.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a starting instance is probed.
const STARTUP_PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// How often a running instance is probed.
const LIVENESS_INTERVAL: Duration = Duration::from_secs(3);

/// Everything an instance needs to run.
pub(crate) struct InstanceSpec {
    pub lrp: Arc<DesiredLrp>,
    pub index: u32,
    pub command: String,
    pub droplet_dir: PathBuf,
    pub run_dir: PathBuf,
    pub events: EventBus,
    pub http: reqwest::Client,
    /// Bumped on every state change of the instance ([`opi::routing::RouteSource::changes`]).
    pub changes: Arc<watch::Sender<u64>>,
}

/// What the backend reports about an instance.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub state: InstanceState,
    pub since: i64,
    pub placement_error: String,
    pub port: Option<u16>,
    /// This incarnation's `CF_INSTANCE_GUID` (empty before the first launch).
    pub instance_guid: String,
    /// Crashes counted by the restart policy (reset as it resets).
    pub crash_count: u32,
    /// The exit description of the last crash counted, else empty.
    pub crash_reason: String,
}

/// A running supervisor.
pub(crate) struct InstanceHandle {
    status: Arc<Mutex<Status>>,
    restart: Arc<Notify>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl InstanceHandle {
    /// Starts supervising instance `spec.index`.
    pub fn spawn(spec: InstanceSpec) -> Self {
        let status = Arc::new(Mutex::new(Status {
            state: InstanceState::Unclaimed,
            since: now_unix_nanos(),
            placement_error: String::new(),
            port: None,
            instance_guid: String::new(),
            crash_count: 0,
            crash_reason: String::new(),
        }));
        let restart = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(
            spec,
            status.clone(),
            restart.clone(),
            stop.clone(),
        ));
        Self {
            status,
            restart,
            stop,
            task,
        }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    /// Replaces the process with a fresh one (not counted as a crash).
    pub fn restart(&self) {
        self.restart.notify_one();
    }

    /// Stops the process and the supervisor.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn lock(status: &Mutex<Status>) -> std::sync::MutexGuard<'_, Status> {
    match status.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Where a supervisor records its instance's status, and who hears of changes.
struct Tracker<'a> {
    status: &'a Mutex<Status>,
    changes: &'a watch::Sender<u64>,
}

impl Tracker<'_> {
    /// Records a new state and bumps the change counter (routers re-read endpoints).
    fn set(&self, state: InstanceState, port: Option<u16>, placement_error: String) {
        {
            let mut status = lock(self.status);
            status.state = state;
            status.since = now_unix_nanos();
            status.port = port;
            status.placement_error = placement_error;
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Records the restart policy's crash count and the last crash's
    /// description (`0` and empty when the policy starts counting anew).
    fn crashes(&self, crash_count: u32, crash_reason: &str) {
        let mut status = lock(self.status);
        status.crash_count = crash_count;
        crash_reason.clone_into(&mut status.crash_reason);
    }

    /// Records the guid of a new incarnation (no state change by itself).
    fn incarnation(&self, instance_guid: &str) {
        instance_guid.clone_into(&mut lock(self.status).instance_guid);
    }
}

enum Outcome {
    Stopped,
    Restart,
    Crashed {
        exit_status: i32,
        reason: String,
        description: String,
        healthy_for: Duration,
    },
}

async fn supervise(
    spec: InstanceSpec,
    status: Arc<Mutex<Status>>,
    restart: Arc<Notify>,
    stop: CancellationToken,
) {
    let name = format!("{}/{}", display_name(&spec.lrp), spec.index);
    let tracker = Tracker {
        status: &status,
        changes: &spec.changes,
    };
    let mut crash_count = 0u32;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let port = match process::free_port() {
            Ok(port) => port,
            Err(e) => {
                tracker.set(InstanceState::Unclaimed, None, format!("no free port: {e}"));
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let instance_guid = format!("{:x}-{}", now_unix_nanos(), spec.index);
        let launch = Launch {
            command: spec.command.clone(),
            cwd: spec.droplet_dir.join("app"),
            env: environment(&spec, port, &instance_guid),
            log_name: name.clone(),
        };
        if let Err(e) = process::ensure_dir(&spec.run_dir.join("tmp")) {
            tracing::warn!(instance = %name, error = %e, "cannot create the instance's tmp dir");
        }
        tracker.incarnation(&instance_guid);
        tracker.set(InstanceState::Claimed, Some(port), String::new());
        let outcome = match process::spawn(&launch) {
            Ok(mut spawned) => {
                orphans::record(&spec.run_dir, spawned.group());
                let outcome =
                    watch(&spec, &mut spawned.child, port, &tracker, &restart, &stop).await;
                if matches!(outcome, Outcome::Restart) {
                    // Unroutable before the old process goes away, not after.
                    tracker.set(InstanceState::Claimed, None, String::new());
                }
                spawned.terminate(process::STOP_GRACE).await;
                orphans::forget(&spec.run_dir);
                outcome
            }
            Err(e) => Outcome::Crashed {
                exit_status: -1,
                reason: "CRASHED".into(),
                description: format!("cannot start the start command: {e}"),
                healthy_for: Duration::ZERO,
            },
        };
        match outcome {
            Outcome::Stopped => return,
            Outcome::Restart => {
                // CC replaced the instance: Diego starts a new ActualLRP,
                // whose crash count starts at 0.
                crash_count = 0;
                tracker.crashes(0, "");
                continue;
            }
            Outcome::Crashed {
                exit_status,
                reason,
                description,
                healthy_for,
            } => {
                if healthy_for >= RESET_AFTER {
                    crash_count = 0;
                }
                crash_count += 1;
                tracing::warn!(instance = %name, exit_status, %description, crash_count, "instance crashed");
                tracker.crashes(crash_count, &description);
                tracker.set(InstanceState::Crashed, None, String::new());
                spec.events.publish(Event::Crashed(CrashEvent {
                    id: spec.lrp.id.clone(),
                    instance: instance_guid,
                    index: spec.index,
                    cell_id: "local".into(),
                    reason,
                    exit_status,
                    exit_description: description,
                    crash_count,
                    crash_timestamp: now_unix_nanos(),
                }));
                let delay = restart_delay(crash_count);
                let wait = async {
                    match delay {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = restart.notified() => {
                        crash_count = 0;
                        tracker.crashes(0, "");
                    }
                    () = wait => {}
                }
            }
        }
    }
}

async fn watch(
    spec: &InstanceSpec,
    child: &mut tokio::process::Child,
    port: u16,
    tracker: &Tracker<'_>,
    restart: &Notify,
    stop: &CancellationToken,
) -> Outcome {
    let lrp = &spec.lrp;
    let start_timeout = match lrp.start_timeout_ms {
        0 => DEFAULT_START_TIMEOUT,
        ms => Duration::from_millis(ms),
    };
    let deadline = Instant::now() + start_timeout;
    let crashed = |exit: std::io::Result<std::process::ExitStatus>, healthy_for| {
        let (exit_status, description) = match exit {
            Ok(exit) => process::describe_exit(exit),
            Err(e) => (-1, format!("cannot wait for the process: {e}")),
        };
        Outcome::Crashed {
            exit_status,
            reason: "CRASHED".into(),
            description,
            healthy_for,
        }
    };
    // Starting: probe until healthy.
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return Outcome::Stopped,
            () = restart.notified() => return Outcome::Restart,
            exit = child.wait() => return crashed(exit, Duration::ZERO),
            () = tokio::time::sleep(STARTUP_PROBE_INTERVAL) => {
                match health::check(&lrp.health_check, port, &spec.http).await {
                    Ok(()) => break,
                    Err(why) if Instant::now() >= deadline => {
                        return Outcome::Crashed {
                            exit_status: 0,
                            reason: "failed to start".into(),
                            description: format!("instance never healthy after {start_timeout:?}: {why}"),
                            healthy_for: Duration::ZERO,
                        };
                    }
                    Err(_) => {}
                }
            }
        }
    }
    tracker.set(InstanceState::Running, Some(port), String::new());
    let healthy_since = Instant::now();
    let probes = lrp.health_check.kind != HealthCheckType::Process;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return Outcome::Stopped,
            () = restart.notified() => return Outcome::Restart,
            exit = child.wait() => return crashed(exit, healthy_since.elapsed()),
            () = tokio::time::sleep(LIVENESS_INTERVAL), if probes => {
                if let Err(why) = health::check(&lrp.health_check, port, &spec.http).await {
                    return Outcome::Crashed {
                        exit_status: 0,
                        reason: "health check failed".into(),
                        description: why,
                        healthy_for: healthy_since.elapsed(),
                    };
                }
            }
        }
    }
}

fn display_name(lrp: &DesiredLrp) -> String {
    if lrp.app.name.is_empty() {
        lrp.id.process_guid()
    } else if lrp.process_type == "web" {
        lrp.app.name.clone()
    } else {
        format!("{}-{}", lrp.app.name, lrp.process_type)
    }
}

/// The instance's environment, as Diego gives it to a buildpack app.
fn environment(spec: &InstanceSpec, port: u16, instance_guid: &str) -> Vec<(String, String)> {
    let lrp = &spec.lrp;
    let home = spec.droplet_dir.join("app");
    let mut env: BTreeMap<String, String> = lrp.environment.clone().into_inner();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set("HOME", home.display().to_string());
    set("TMPDIR", spec.run_dir.join("tmp").display().to_string());
    set(
        "DEPS_DIR",
        spec.droplet_dir.join("deps").display().to_string(),
    );
    set("PORT", port.to_string());
    set("VCAP_APP_PORT", port.to_string());
    set("VCAP_APP_HOST", "127.0.0.1".into());
    set("CF_INSTANCE_INDEX", spec.index.to_string());
    set("INSTANCE_INDEX", spec.index.to_string());
    set("CF_INSTANCE_GUID", instance_guid.to_owned());
    set("CF_INSTANCE_IP", "127.0.0.1".into());
    set("CF_INSTANCE_INTERNAL_IP", "127.0.0.1".into());
    set("CF_INSTANCE_PORT", port.to_string());
    set("CF_INSTANCE_ADDR", format!("127.0.0.1:{port}"));
    set(
        "CF_INSTANCE_PORTS",
        format!(r#"[{{"external":{port},"internal":{port}}}]"#),
    );
    if !env.contains_key("MEMORY_LIMIT") {
        env.insert("MEMORY_LIMIT".into(), format!("{}m", lrp.memory_mb));
    }
    if !env.contains_key("LANG") {
        env.insert("LANG".into(), "en_US.UTF-8".into());
    }
    if !env.contains_key("VCAP_APPLICATION") {
        let uris: Vec<&str> = lrp
            .routes
            .cf_router
            .iter()
            .map(|r| r.hostname.as_str())
            .collect();
        let vcap = serde_json::json!({
            "application_id": lrp.app.guid,
            "application_name": lrp.app.name,
            "application_uris": uris,
            "application_version": lrp.id.version,
            "name": lrp.app.name,
            "uris": uris,
            "space_id": lrp.space.guid,
            "space_name": lrp.space.name,
            "organization_id": lrp.org.guid,
            "organization_name": lrp.org.name,
            "process_id": lrp.id.guid,
            "process_type": lrp.process_type,
            "version": lrp.id.version,
            "limits": {"mem": lrp.memory_mb, "disk": lrp.disk_mb, "fds": 16384},
        });
        env.insert("VCAP_APPLICATION".into(), vcap.to_string());
    }
    env.into_iter().collect()
}
