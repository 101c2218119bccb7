//! The OPI conformance kit: one suite every backend must pass.
//!
//! A backend's own test hands in a constructor for a [`Harness`] (a fresh
//! backend plus the few controls the kit cannot perform through
//! [`Scheduler`] itself, such as making an instance crash) and calls [`run`]:
//!
//! ```ignore
//! #[tokio::test]
//! async fn conformance() {
//!     opi::conformance::run(|| async { MyHarness::new().await }).await;
//! }
//! ```
//!
//! Every case starts from a new harness. States that a real scheduler reaches
//! asynchronously (instances running, tasks completing) are awaited for at
//! most [`Harness::patience`]; nothing is timed. [`run`] panics with the list of
//! failed cases and why.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::model::{
    DesiredLrp, Event, HealthCheck, HealthCheckType, InstanceState, LrpId, LrpLifecycle, LrpUpdate,
    Named, Route, Routes, Task, TaskState, TaskStep,
};
use crate::{Error, Scheduler};

/// How a conformance task should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Exit 0.
    Succeed,
    /// Exit non-zero.
    Fail,
    /// Keep running until cancelled.
    RunUntilCancelled,
}

/// A backend under test plus the controls the kit needs.
#[async_trait::async_trait]
pub trait Harness: Send + Sync {
    /// The backend.
    fn scheduler(&self) -> &dyn Scheduler;

    /// A lifecycle this backend can run as a long-running, healthy process
    /// listening on `port` (docker image for Kubernetes, droplet for local…).
    fn lrp_lifecycle(&self, port: u16) -> LrpLifecycle;

    /// A lifecycle for a task that ends as `outcome` says.
    fn task_lifecycle(&self, outcome: TaskOutcome) -> LrpLifecycle;

    /// The docker lifecycle (image, no command) tasks with steps run in.
    /// Default: busybox, for backends whose harness plays the scheduler.
    fn steps_lifecycle(&self) -> LrpLifecycle {
        LrpLifecycle::Docker {
            image: "docker.io/library/busybox:1.36".into(),
            command: Vec::new(),
            credentials: None,
        }
    }

    /// The command of step `name`, which exits as `outcome` says (`Succeed`
    /// or `Fail`). Where the backend really runs commands, it must first
    /// check that exactly the steps `before` ran before it, in that order, in
    /// the same `$CUBE_WORKSPACE` (failing otherwise), then record its own
    /// name there: [`recording_step`] does. The default, for harnesses that
    /// play the scheduler in [`Harness::finish_task`]: `/bin/false` to fail,
    /// `/bin/true` to succeed.
    fn step_command(&self, name: &str, before: &[&str], outcome: TaskOutcome) -> Vec<String> {
        let _ = (name, before);
        let program = if outcome == TaskOutcome::Fail {
            "/bin/false"
        } else {
            "/bin/true"
        };
        vec![program.to_owned()]
    }

    /// Makes instance `index` of `id` exit with `exit_status` (kill the process,
    /// mark the container terminated, …).
    async fn crash_instance(&self, id: &LrpId, index: u32, exit_status: i32) -> Result<(), String>;

    /// Lets a task desired with `outcome` reach it, for backends whose tasks do
    /// not end by themselves (memory, fake apiserver). Others do nothing.
    async fn finish_task(&self, guid: &str, outcome: TaskOutcome) -> Result<(), String>;

    /// How long asynchronous states may take to appear.
    fn patience(&self) -> Duration {
        Duration::from_secs(20)
    }

    /// A new backend over the same scheduler, as a restarted OPI builds it.
    /// The kit has called [`Scheduler::shutdown`] on [`Harness::scheduler`]
    /// first, and calls it on the new one when the case ends. Without it the
    /// kit fails `list_survives_restart`.
    async fn restart(&self) -> Result<Arc<dyn Scheduler>, String> {
        Err("the harness cannot restart its backend (implement Harness::restart)".into())
    }

    /// Whether [`Harness::set_reachable`] can cut the backend off its
    /// scheduler (a backend over a remote scheduler: Kubernetes, Diego). A
    /// backend that is its own scheduler (local processes) answers `false`,
    /// and the kit does not check the `Unavailable` rule for it.
    fn can_cut_off(&self) -> bool {
        false
    }

    /// Makes the scheduler unreachable for the backend (`false`: the
    /// apiserver or BBS stops answering) or reachable again.
    async fn set_reachable(&self, reachable: bool) -> Result<(), String> {
        let _ = reachable;
        Err("this harness cannot cut its backend off the scheduler".into())
    }
}

type CaseResult = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn call<T>(what: &str, result: Result<T, Error>) -> Result<T, String> {
    result.map_err(|e| format!("{what} failed: {e}"))
}

fn expect_not_found<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) -> CaseResult {
    match result {
        Err(Error::NotFound(_)) => Ok(()),
        other => Err(format!("{what}: expected NotFound, got {other:?}")),
    }
}

/// Polls `probe` until it returns `Ok`, for at most `patience`; returns the
/// last error otherwise.
pub async fn eventually<F, Fut>(patience: Duration, mut probe: F) -> CaseResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = CaseResult>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut delay = Duration::from_millis(5);
    loop {
        match probe().await {
            Ok(()) => return Ok(()),
            Err(last) if tokio::time::Instant::now() >= deadline => {
                return Err(format!("not reached within {patience:?}: {last}"));
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(250));
            }
        }
    }
}

/// A realistic LRP for app `name` with `instances` instances.
pub fn sample_lrp(harness: &dyn Harness, name: &str, version: &str, instances: u32) -> DesiredLrp {
    let port = 8080;
    let guid = format!("{name}-guid");
    DesiredLrp {
        id: LrpId::new(guid.clone(), version),
        process_type: "web".into(),
        app: Named {
            guid: guid.clone(),
            name: name.into(),
        },
        space: Named {
            guid: "space-guid".into(),
            name: "dev".into(),
        },
        org: Named {
            guid: "org-guid".into(),
            name: "acme".into(),
        },
        instances,
        memory_mb: 64,
        disk_mb: 128,
        cpu_weight: 10,
        ports: vec![port],
        routes: Routes {
            cf_router: vec![Route {
                hostname: format!("{name}.example.com"),
                port: i64::from(port),
            }],
            other: BTreeMap::new(),
        },
        environment: BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]).into(),
        health_check: HealthCheck {
            kind: HealthCheckType::Port,
            http_endpoint: String::new(),
            timeout_ms: 1000,
        },
        start_timeout_ms: 60_000,
        lifecycle: harness.lrp_lifecycle(port),
        annotation: "1700000000.0".into(),
        user_defined_annotations: BTreeMap::new(),
        volume_mounts: Vec::new(),
        placement_tags: Vec::new(),
        egress_rules: Vec::new(),
    }
}

/// A task of app `name` that ends as `outcome` says.
pub fn sample_task(harness: &dyn Harness, guid: &str, outcome: TaskOutcome) -> Task {
    Task {
        guid: guid.into(),
        name: "migrate".into(),
        app: Named {
            guid: "task-app-guid".into(),
            name: "task-app".into(),
        },
        space: Named {
            guid: "space-guid".into(),
            name: "dev".into(),
        },
        org: Named {
            guid: "org-guid".into(),
            name: "acme".into(),
        },
        completion_callback: "http://127.0.0.1:9/internal/v4/tasks/completed".into(),
        environment: Vec::new(),
        lifecycle: harness.task_lifecycle(outcome),
        memory_mb: 64,
        disk_mb: 128,
        cpu_weight: 10,
        steps: Vec::new(),
    }
}

/// A `/bin/sh` step command for backends that run commands for real: it
/// fails (status 97) unless `$CUBE_WORKSPACE/steps` lists exactly `before`,
/// appends `name` to it, and exits 0 (`Succeed`) or 1 (`Fail`). Names must be
/// plain DNS-1123 labels, as validated steps are.
pub fn recording_step(name: &str, before: &[&str], outcome: TaskOutcome) -> Vec<String> {
    let expected: String = before.iter().map(|b| format!("{b} ")).collect();
    let status = u8::from(outcome == TaskOutcome::Fail);
    let script = format!(
        "ran=\"$(cat \"$CUBE_WORKSPACE/steps\" 2>/dev/null)\"; \
         [ \"$ran\" = '{expected}' ] || {{ echo \"steps before {name}: '$ran', want '{expected}'\" >&2; exit 97; }}; \
         printf '%s ' {name} >> \"$CUBE_WORKSPACE/steps\"; exit {status}"
    );
    vec!["/bin/sh".into(), "-c".into(), script]
}

async fn running_instances(harness: &dyn Harness, id: &LrpId, count: usize) -> CaseResult {
    let scheduler = harness.scheduler();
    eventually(harness.patience(), || async move {
        let instances = call("instances", scheduler.instances(id).await)?;
        let running = instances
            .iter()
            .filter(|i| i.state == InstanceState::Running)
            .count();
        ensure!(
            instances.len() == count && running == count,
            "want {count} running instances, have {instances:?}"
        );
        let indices: Vec<u32> = instances.iter().map(|i| i.index).collect();
        let expected: Vec<u32> = (0..u32::try_from(count).unwrap_or(u32::MAX)).collect();
        ensure!(
            indices == expected,
            "indices {indices:?}, want {expected:?}"
        );
        Ok(())
    })
    .await
}

async fn next_event(
    harness: &dyn Harness,
    events: &mut BoxStream<'static, Event>,
    matches: impl Fn(&Event) -> bool,
) -> Result<Event, String> {
    let deadline = tokio::time::Instant::now() + harness.patience();
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(event)) if matches(&event) => return Ok(event),
            Ok(Some(_)) => continue,
            Ok(None) => return Err("event stream ended".into()),
            Err(_) => return Err(format!("no matching event within {:?}", harness.patience())),
        }
    }
}

// ---- cases -----------------------------------------------------------------

/// A backend keeps no state of its own: a restarted backend lists every LRP
/// as last desired and updated, and knows the tasks that are still running.
async fn list_survives_restart(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let alpha = sample_lrp(h, "alpha", "v1", 2);
    let beta = sample_lrp(h, "beta", "v1", 1);
    call("desire alpha", s.desire(alpha.clone()).await)?;
    call("desire beta", s.desire(beta.clone()).await)?;
    let update = LrpUpdate {
        annotation: Some("1700000099.0".into()),
        ..LrpUpdate::default()
    };
    call("update beta", s.update(&beta.id, update).await)?;
    let task = sample_task(h, "task-survives", TaskOutcome::RunUntilCancelled);
    call("desire task", s.desire_task(task).await)?;
    let mut events = s.events();
    s.shutdown().await;
    let restarted = h.restart().await?;
    let checked = restarted_state(h, restarted.as_ref(), &alpha.id, &beta.id).await;
    let task = task_across_restart(h, restarted.as_ref(), &mut events).await;
    restarted.shutdown().await;
    checked.and(task)
}

/// A task running when the backend shut down either still runs for the
/// restarted backend, or (a backend that runs tasks itself, like local
/// processes) was reported completed as it stopped: never silently gone.
async fn task_across_restart(
    h: &dyn Harness,
    restarted: &dyn Scheduler,
    events: &mut BoxStream<'static, Event>,
) -> CaseResult {
    match restarted.get_task("task-survives").await {
        Ok(status) if !matches!(status.state, TaskState::Completed { .. }) => call(
            "cancel the task after the restart",
            restarted.cancel_task("task-survives").await,
        ),
        known => {
            let completed =
                |e: &Event| matches!(e, Event::TaskCompleted(t) if t.guid == "task-survives");
            next_event(h, events, completed).await.map(drop).map_err(|why| {
                format!("task neither running after the restart ({known:?}) nor reported completed: {why}")
            })
        }
    }
}

/// What [`list_survives_restart`] expects of the restarted backend.
async fn restarted_state(
    h: &dyn Harness,
    restarted: &dyn Scheduler,
    alpha: &LrpId,
    beta: &LrpId,
) -> CaseResult {
    eventually(h.patience(), || async {
        let listed = call("list after restart", restarted.list().await)?;
        let find = |id: &LrpId| listed.iter().find(|i| i.id == *id).cloned();
        let (Some(a), Some(b)) = (find(alpha), find(beta)) else {
            return Err(format!("not both listed after restart: {listed:?}"));
        };
        ensure!(listed.len() == 2, "listed twice or more: {listed:?}");
        ensure!(a.instances == 2, "alpha instances {}", a.instances);
        ensure!(
            b.annotation == "1700000099.0",
            "beta's updated annotation lost: {:?}",
            b.annotation
        );
        Ok(())
    })
    .await
}

/// A scheduler that cannot be reached makes writes fail with `Unavailable`
/// (callers retry), and the same write succeeds once it is back.
async fn unreachable_scheduler_is_unavailable(h: &dyn Harness) -> CaseResult {
    if !h.can_cut_off() {
        return Ok(());
    }
    let s = h.scheduler();
    let lrp = sample_lrp(h, "outage", "v1", 1);
    let task = sample_task(h, "task-outage", TaskOutcome::Succeed);
    h.set_reachable(false).await?;
    let desired = s.desire(lrp.clone()).await;
    let tasked = s.desire_task(task.clone()).await;
    h.set_reachable(true).await?;
    ensure!(
        matches!(desired, Err(Error::Unavailable(_))),
        "desire while unreachable: expected Unavailable, got {desired:?}"
    );
    ensure!(
        matches!(tasked, Err(Error::Unavailable(_))),
        "desire_task while unreachable: expected Unavailable, got {tasked:?}"
    );
    eventually(h.patience(), || async {
        call("desire again", s.desire(lrp.clone()).await)
    })
    .await?;
    let got = call("get after the outage", s.get(&lrp.id).await)?;
    ensure!(got.instances == 1, "instances {}", got.instances);
    Ok(())
}

/// Environment values never show in what a backend returns, as `Debug`
/// prints it (logs, panics, error messages).
async fn secrets_stay_secret(h: &dyn Harness) -> CaseResult {
    const SECRET: &str = "conformance-secret-6c1f9e";
    let s = h.scheduler();
    let mut lrp = sample_lrp(h, "vault", "v1", 1);
    lrp.environment
        .insert("DATABASE_URL".into(), format!("postgres://u:{SECRET}@db"));
    let mut task = sample_task(h, "task-vault", TaskOutcome::RunUntilCancelled);
    task.environment.push(crate::model::EnvironmentVariable {
        name: "TOKEN".into(),
        value: SECRET.into(),
    });
    let shown = format!("{lrp:?} {task:?}");
    ensure!(
        !shown.contains(SECRET),
        "Debug of the desired LRP or task shows a secret"
    );
    call("desire", s.desire(lrp.clone()).await)?;
    call("desire_task", s.desire_task(task).await)?;
    let shown = format!(
        "{:?} {:?} {:?} {:?} {:?}",
        s.get(&lrp.id).await,
        s.list().await,
        s.instances(&lrp.id).await,
        s.get_task("task-vault").await,
        s.list_tasks().await
    );
    call("cancel", s.cancel_task("task-vault").await)?;
    ensure!(
        !shown.contains(SECRET),
        "a secret shows in what the backend returns: {shown}"
    );
    Ok(())
}

async fn desire_get_list(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let lrp = sample_lrp(h, "alpha", "v1", 2);
    call("desire", s.desire(lrp.clone()).await)?;
    let got = call("get", s.get(&lrp.id).await)?;
    ensure!(got.id == lrp.id, "get returned id {}", got.id);
    ensure!(got.instances == 2, "instances {}", got.instances);
    ensure!(got.routes == lrp.routes, "routes {:?}", got.routes);
    ensure!(
        got.annotation == lrp.annotation,
        "annotation {:?}",
        got.annotation
    );
    ensure!(
        got.process_type == "web",
        "process_type {:?}",
        got.process_type
    );
    ensure!(got.ports == lrp.ports, "ports {:?}", got.ports);
    ensure!(
        got.memory_mb == lrp.memory_mb,
        "memory_mb {}",
        got.memory_mb
    );
    ensure!(
        got.lifecycle == lrp.lifecycle,
        "lifecycle {:?}",
        got.lifecycle
    );
    let list = call("list", s.list().await)?;
    ensure!(list.len() == 1, "list has {} entries: {list:?}", list.len());
    ensure!(list[0] == lrp.scheduling_info(), "list entry {:?}", list[0]);
    running_instances(h, &lrp.id, 2).await
}

async fn desire_is_idempotent(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let lrp = sample_lrp(h, "beta", "v1", 1);
    call("first desire", s.desire(lrp.clone()).await)?;
    running_instances(h, &lrp.id, 1).await?;
    let before = call("instances", s.instances(&lrp.id).await)?;
    call("second desire", s.desire(lrp.clone()).await)?;
    let list = call("list", s.list().await)?;
    ensure!(list.len() == 1, "two desires gave {} LRPs", list.len());
    let after = call("instances", s.instances(&lrp.id).await)?;
    ensure!(
        before == after,
        "an identical desire restarted instances: {before:?} -> {after:?}"
    );
    Ok(())
}

async fn redesire_replaces(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let mut lrp = sample_lrp(h, "gamma", "v1", 1);
    call("desire", s.desire(lrp.clone()).await)?;
    lrp.memory_mb = 128;
    lrp.annotation = "1700000001.0".into();
    call("re-desire", s.desire(lrp.clone()).await)?;
    let got = call("get", s.get(&lrp.id).await)?;
    ensure!(
        got.memory_mb == 128,
        "memory_mb not replaced: {}",
        got.memory_mb
    );
    let list = call("list", s.list().await)?;
    ensure!(
        list.len() == 1 && list[0].annotation == "1700000001.0",
        "list after re-desire: {list:?}"
    );
    Ok(())
}

async fn update_changes_only_what_it_names(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let lrp = sample_lrp(h, "delta", "v1", 1);
    call("desire", s.desire(lrp.clone()).await)?;
    let routes = Routes {
        cf_router: vec![
            Route {
                hostname: "delta.example.com".into(),
                port: 8080,
            },
            Route {
                hostname: "www.delta.example.com".into(),
                port: 8080,
            },
        ],
        other: BTreeMap::new(),
    };
    let update = LrpUpdate {
        instances: Some(3),
        routes: Some(routes.clone()),
        annotation: Some("1700000002.0".into()),
    };
    call("update", s.update(&lrp.id, update).await)?;
    let got = call("get", s.get(&lrp.id).await)?;
    ensure!(got.instances == 3, "instances {}", got.instances);
    ensure!(got.routes == routes, "routes {:?}", got.routes);
    ensure!(
        got.annotation == "1700000002.0",
        "annotation {:?}",
        got.annotation
    );
    ensure!(
        got.memory_mb == lrp.memory_mb && got.lifecycle == lrp.lifecycle && got.ports == lrp.ports,
        "update changed more than instances/routes/annotation: {got:?}"
    );
    running_instances(h, &lrp.id, 3).await?;

    // Only the annotation: instances and routes stay.
    let update = LrpUpdate {
        annotation: Some("1700000003.0".into()),
        ..LrpUpdate::default()
    };
    call("annotation-only update", s.update(&lrp.id, update).await)?;
    let got = call("get", s.get(&lrp.id).await)?;
    ensure!(
        got.instances == 3 && got.routes == routes,
        "annotation-only update changed instances/routes: {got:?}"
    );

    // Scale to zero and back.
    let zero = LrpUpdate {
        instances: Some(0),
        ..LrpUpdate::default()
    };
    call("scale to zero", s.update(&lrp.id, zero).await)?;
    running_instances(h, &lrp.id, 0).await?;
    let one = LrpUpdate {
        instances: Some(1),
        ..LrpUpdate::default()
    };
    call("scale to one", s.update(&lrp.id, one).await)?;
    running_instances(h, &lrp.id, 1).await
}

async fn unknown_things_are_not_found(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let id = LrpId::new("nobody", "v0");
    expect_not_found("get", s.get(&id).await)?;
    expect_not_found("update", s.update(&id, LrpUpdate::default()).await)?;
    expect_not_found("stop", s.stop(&id).await)?;
    expect_not_found("stop_instance", s.stop_instance(&id, 0).await)?;
    expect_not_found("instances", s.instances(&id).await)?;
    expect_not_found("get_task", s.get_task("no-such-task").await)?;
    expect_not_found("cancel_task", s.cancel_task("no-such-task").await)?;

    let lrp = sample_lrp(h, "epsilon", "v1", 2);
    call("desire", s.desire(lrp.clone()).await)?;
    expect_not_found(
        "stop_instance beyond count",
        s.stop_instance(&lrp.id, 2).await,
    )?;
    let other_version = LrpId::new(lrp.id.guid.clone(), "v2");
    expect_not_found("get of another version", s.get(&other_version).await)
}

async fn stop_forgets(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let lrp = sample_lrp(h, "zeta", "v1", 2);
    call("desire", s.desire(lrp.clone()).await)?;
    running_instances(h, &lrp.id, 2).await?;
    call("stop", s.stop(&lrp.id).await)?;
    expect_not_found("get after stop", s.get(&lrp.id).await)?;
    let list = call("list", s.list().await)?;
    ensure!(list.is_empty(), "list after stop: {list:?}");
    expect_not_found("second stop", s.stop(&lrp.id).await)
}

async fn new_version_survives_stopping_old(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let v1 = sample_lrp(h, "eta", "v1", 1);
    let mut v2 = sample_lrp(h, "eta", "v2", 2);
    v2.annotation = "1700000009.0".into();
    call("desire v1", s.desire(v1.clone()).await)?;
    call("desire v2", s.desire(v2.clone()).await)?;
    call("stop v1", s.stop(&v1.id).await)?;
    let got = call("get v2", s.get(&v2.id).await)?;
    ensure!(got.instances == 2, "v2 has {} instances", got.instances);
    let list = call("list", s.list().await)?;
    ensure!(
        list.len() == 1 && list[0].id == v2.id,
        "after stopping v1 the list is {list:?}"
    );
    running_instances(h, &v2.id, 2).await
}

async fn stop_instance_replaces_it(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let lrp = sample_lrp(h, "theta", "v1", 2);
    call("desire", s.desire(lrp.clone()).await)?;
    running_instances(h, &lrp.id, 2).await?;
    call("stop_instance", s.stop_instance(&lrp.id, 1).await)?;
    let got = call("get", s.get(&lrp.id).await)?;
    ensure!(
        got.instances == 2,
        "stop_instance changed the count to {}",
        got.instances
    );
    running_instances(h, &lrp.id, 2).await
}

async fn crash_is_reported(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let lrp = sample_lrp(h, "iota", "v1", 2);
    call("desire", s.desire(lrp.clone()).await)?;
    running_instances(h, &lrp.id, 2).await?;
    let mut events = s.events();
    h.crash_instance(&lrp.id, 1, 3).await?;
    let event = next_event(
        h,
        &mut events,
        |e| matches!(e, Event::Crashed(c) if c.id == lrp.id),
    )
    .await?;
    let Event::Crashed(crash) = event else {
        return Err("not a crash event".into());
    };
    ensure!(crash.index == 1, "crash index {}", crash.index);
    ensure!(crash.exit_status == 3, "exit status {}", crash.exit_status);
    ensure!(crash.crash_count >= 1, "crash count {}", crash.crash_count);
    ensure!(
        crash.crash_timestamp > 0,
        "crash timestamp {}",
        crash.crash_timestamp
    );
    ensure!(!crash.reason.is_empty(), "empty crash reason");
    ensure!(!crash.instance.is_empty(), "empty instance id");
    Ok(())
}

/// An instance that crashed says so in [`Scheduler::instances`]: its crash
/// count is at least 1 and its crash reason describes the exit, whether it
/// is still crashed or already running again.
async fn crashes_are_counted(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let lrp = sample_lrp(h, "kappa", "v1", 2);
    call("desire", s.desire(lrp.clone()).await)?;
    running_instances(h, &lrp.id, 2).await?;
    let before = call("instances", s.instances(&lrp.id).await)?;
    ensure!(
        before
            .iter()
            .all(|i| i.crash_count == 0 && i.crash_reason.is_empty()),
        "instances that never crashed report crashes: {before:?}"
    );
    h.crash_instance(&lrp.id, 1, 3).await?;
    let id = &lrp.id;
    eventually(h.patience(), || async move {
        let instances = call("instances", s.instances(id).await)?;
        let crashed = instances.iter().find(|i| i.index == 1);
        ensure!(
            crashed.is_some_and(|i| i.crash_count >= 1 && !i.crash_reason.is_empty()),
            "instance 1 does not report its crash: {instances:?}"
        );
        let other = instances.iter().find(|i| i.index == 0);
        ensure!(
            other.is_some_and(|i| i.crash_count == 0),
            "instance 0 never crashed: {instances:?}"
        );
        Ok(())
    })
    .await
}

async fn tasks_run_and_report(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let mut events = s.events();
    let ok = sample_task(h, "task-ok", TaskOutcome::Succeed);
    let bad = sample_task(h, "task-bad", TaskOutcome::Fail);
    call("desire ok task", s.desire_task(ok.clone()).await)?;
    call("desire failing task", s.desire_task(bad.clone()).await)?;
    match s.desire_task(ok.clone()).await {
        Err(Error::Conflict(_)) => {}
        other => return Err(format!("duplicate task: expected Conflict, got {other:?}")),
    }
    let listed = call("list_tasks", s.list_tasks().await)?;
    for guid in ["task-ok", "task-bad"] {
        ensure!(
            listed.iter().any(|t| t.guid == guid),
            "{guid} not listed: {listed:?}"
        );
    }
    let status = call("get_task", s.get_task("task-ok").await)?;
    ensure!(status.name == "migrate", "task name {:?}", status.name);

    h.finish_task("task-ok", TaskOutcome::Succeed).await?;
    h.finish_task("task-bad", TaskOutcome::Fail).await?;
    let mut seen = BTreeMap::new();
    while seen.len() < 2 {
        let event = next_event(h, &mut events, |e| matches!(e, Event::TaskCompleted(_))).await?;
        if let Event::TaskCompleted(done) = event {
            seen.insert(done.guid.clone(), done);
        }
    }
    let done_ok = &seen["task-ok"];
    ensure!(
        !done_ok.failed,
        "successful task reported failed: {done_ok:?}"
    );
    ensure!(
        done_ok.completion_callback == ok.completion_callback,
        "callback {:?}",
        done_ok.completion_callback
    );
    let done_bad = &seen["task-bad"];
    ensure!(
        done_bad.failed,
        "failing task reported success: {done_bad:?}"
    );
    ensure!(
        !done_bad.failure_reason.is_empty(),
        "failing task has no reason"
    );
    let status = call("get_task after completion", s.get_task("task-bad").await)?;
    ensure!(
        matches!(status.state, TaskState::Completed { failed: true, .. }),
        "state {:?}",
        status.state
    );
    Ok(())
}

async fn cancel_stops_task(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let mut events = s.events();
    let task = sample_task(h, "task-long", TaskOutcome::RunUntilCancelled);
    call("desire task", s.desire_task(task).await)?;
    call("cancel", s.cancel_task("task-long").await)?;
    let event = next_event(
        h,
        &mut events,
        |e| matches!(e, Event::TaskCompleted(t) if t.guid == "task-long"),
    )
    .await?;
    let Event::TaskCompleted(done) = event else {
        return Err("not a task event".into());
    };
    ensure!(done.failed, "cancelled task reported success");
    ensure!(
        done.failure_reason.contains("cancel"),
        "failure reason {:?} does not say cancelled",
        done.failure_reason
    );
    Ok(())
}

/// A task of three steps, `first`, `second`, `third`; `second` ends as
/// `second` says and `third` fails whenever it runs after a failure.
fn stepped_task(h: &dyn Harness, guid: &str, second: TaskOutcome) -> Task {
    let third = if second == TaskOutcome::Fail {
        TaskOutcome::Fail
    } else {
        TaskOutcome::Succeed
    };
    let step = |name: &str, before: &[&str], outcome| TaskStep {
        name: name.into(),
        command: h.step_command(name, before, outcome),
    };
    let mut task = sample_task(h, guid, TaskOutcome::Succeed);
    task.lifecycle = h.steps_lifecycle();
    task.steps = vec![
        step("first", &[], TaskOutcome::Succeed),
        step("second", &["first"], second),
        step("third", &["first", "second"], third),
    ];
    task
}

async fn task_steps_run_in_order(h: &dyn Harness) -> CaseResult {
    let s = h.scheduler();
    let mut events = s.events();
    let ok = stepped_task(h, "steps-ok", TaskOutcome::Succeed);
    let bad = stepped_task(h, "steps-bad", TaskOutcome::Fail);
    call("desire task with steps", s.desire_task(ok).await)?;
    call("desire task with a failing step", s.desire_task(bad).await)?;
    h.finish_task("steps-ok", TaskOutcome::Succeed).await?;
    h.finish_task("steps-bad", TaskOutcome::Fail).await?;
    let mut seen = BTreeMap::new();
    while seen.len() < 2 {
        let event = next_event(
            h,
            &mut events,
            |e| matches!(e, Event::TaskCompleted(t) if t.guid.starts_with("steps-")),
        )
        .await?;
        if let Event::TaskCompleted(done) = event {
            seen.insert(done.guid.clone(), done);
        }
    }
    let done_ok = &seen["steps-ok"];
    ensure!(
        !done_ok.failed,
        "three succeeding steps (each checking the ones before it) failed: {done_ok:?}"
    );
    let done_bad = &seen["steps-bad"];
    ensure!(
        done_bad.failed,
        "a failing second step did not fail the task: {done_bad:?}"
    );
    ensure!(
        done_bad.failure_reason.contains("second") && !done_bad.failure_reason.contains("third"),
        "the failure reason {:?} must name the failing step `second` (and not `third`, \
         which must not run)",
        done_bad.failure_reason
    );
    Ok(())
}

type Case = for<'a> fn(&'a dyn Harness) -> BoxFuture<'a, CaseResult>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), |h| Box::pin($name(h)))),*]
    };
}

/// Every case, by name.
pub const CASES: &[(&str, Case)] = cases![
    desire_get_list,
    desire_is_idempotent,
    redesire_replaces,
    update_changes_only_what_it_names,
    unknown_things_are_not_found,
    stop_forgets,
    new_version_survives_stopping_old,
    stop_instance_replaces_it,
    crash_is_reported,
    crashes_are_counted,
    tasks_run_and_report,
    task_steps_run_in_order,
    cancel_stops_task,
    list_survives_restart,
    unreachable_scheduler_is_unavailable,
    secrets_stay_secret,
];

/// Runs every case, each against a fresh harness from `make`, and panics
/// listing the cases that failed.
pub async fn run<H, F, Fut>(make: F)
where
    H: Harness,
    F: Fn() -> Fut,
    Fut: Future<Output = H>,
{
    let mut failures = Vec::new();
    for (name, case) in CASES {
        let harness = make().await;
        if let Err(why) = case(&harness).await {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "OPI conformance failed:\n  {}",
        failures.join("\n  ")
    );
}
