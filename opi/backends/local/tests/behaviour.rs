//! Local-backend behaviour beyond the conformance kit: environment, restart
//! of `cube` itself, health-check gating, crash restarts and docker refusal.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use opi::Scheduler;
use opi::conformance::{Harness, TaskOutcome, eventually, sample_lrp};
use opi::model::{DesiredLrp, Event, HealthCheckType, InstanceState, LrpId, LrpLifecycle};
use opi::routing::RouteSource;
use opi_local::droplet::FileDroplets;
use opi_local::{LocalConfig, LocalScheduler};

use common::{DROPLET_GUID, DROPLET_HASH, write_droplet};

const PATIENCE: Duration = Duration::from_secs(20);

struct Lifecycles;

#[async_trait::async_trait]
impl Harness for Lifecycles {
    fn scheduler(&self) -> &dyn Scheduler {
        unreachable!("only used for sample_lrp")
    }
    fn lrp_lifecycle(&self, _port: u16) -> LrpLifecycle {
        LrpLifecycle::Buildpack {
            droplet_guid: DROPLET_GUID.into(),
            droplet_hash: DROPLET_HASH.into(),
            start_command: String::new(),
        }
    }
    fn task_lifecycle(&self, _: TaskOutcome) -> LrpLifecycle {
        self.lrp_lifecycle(0)
    }
    async fn crash_instance(&self, _: &LrpId, _: u32, _: i32) -> Result<(), String> {
        Ok(())
    }
    async fn finish_task(&self, _: &str, _: TaskOutcome) -> Result<(), String> {
        Ok(())
    }
}

fn lrp(instances: u32) -> DesiredLrp {
    sample_lrp(&Lifecycles, "hello", "v1", instances)
}

async fn start(dir: &tempfile::TempDir) -> LocalScheduler {
    let droplets = dir.path().join("droplet-store");
    std::fs::create_dir_all(&droplets).unwrap();
    write_droplet(&droplets);
    LocalScheduler::start(
        LocalConfig {
            root: dir.path().join("root"),
            host_exec_image: Some("cube/host".into()),
        },
        Arc::new(FileDroplets::new(droplets)),
    )
    .await
    .unwrap()
}

async fn running(scheduler: &LocalScheduler, id: &LrpId, count: usize) {
    eventually(PATIENCE, || async {
        let instances = scheduler.instances(id).await.map_err(|e| e.to_string())?;
        let up = instances
            .iter()
            .filter(|i| i.state == InstanceState::Running)
            .count();
        if up == count && instances.len() == count {
            Ok(())
        } else {
            Err(format!("{instances:?}"))
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_get_the_cf_environment() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = start(&dir).await;
    let mut lrp = lrp(2);
    lrp.lifecycle = LrpLifecycle::Buildpack {
        droplet_guid: DROPLET_GUID.into(),
        droplet_hash: DROPLET_HASH.into(),
        start_command:
            "env > env-$CF_INSTANCE_INDEX.txt; exec busybox httpd -f -p 127.0.0.1:$PORT -h .".into(),
    };
    scheduler.desire(lrp.clone()).await.unwrap();
    running(&scheduler, &lrp.id, 2).await;
    let app = scheduler.droplet_dir(&lrp.id).unwrap().join("app");
    let endpoints = scheduler.endpoints();
    assert_eq!(endpoints.len(), 2);
    for endpoint in &endpoints {
        let text =
            std::fs::read_to_string(app.join(format!("env-{}.txt", endpoint.index))).unwrap();
        let env: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        assert_eq!(env["PORT"], endpoint.port.to_string());
        assert_eq!(env["CF_INSTANCE_INDEX"], endpoint.index.to_string());
        assert_eq!(env["GREETING"], "hello", "the app's environment");
        assert_eq!(env["HOME"], app.display().to_string());
        assert!(
            env["VCAP_APPLICATION"].contains(r#""application_name":"hello""#),
            "{}",
            env["VCAP_APPLICATION"]
        );
        assert_eq!(env["CF_INSTANCE_GUID"], endpoint.instance_guid);
        assert_eq!(endpoint.host, "127.0.0.1");
        assert_eq!(endpoint.hostnames, vec!["hello.example.com".to_string()]);
        assert_eq!(endpoint.process_guid, lrp.id.process_guid());
        // And the instance really serves on that port.
        let body = opi::http::http_client_builder()
            .build()
            .unwrap()
            .get(format!("http://127.0.0.1:{}/index.html", endpoint.port))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "hello from a droplet\n");
    }
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_backend_brings_instances_back() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = start(&dir).await;
    let lrp = lrp(2);
    scheduler.desire(lrp.clone()).await.unwrap();
    running(&scheduler, &lrp.id, 2).await;
    scheduler.shutdown().await;
    drop(scheduler);

    let again = start(&dir).await;
    let list = again.list().await.unwrap();
    assert_eq!(list, vec![lrp.scheduling_info()]);
    running(&again, &lrp.id, 2).await;
    // Stopping forgets it for good: a third start has nothing.
    again.stop(&lrp.id).await.unwrap();
    again.shutdown().await;
    let third = start(&dir).await;
    assert!(third.list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_is_running_only_once_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = start(&dir).await;
    let mut events = scheduler.events();
    let mut lrp = lrp(1);
    // Serves, but /healthz is missing: the http check never passes.
    lrp.health_check.kind = HealthCheckType::Http;
    lrp.health_check.http_endpoint = "/healthz".into();
    lrp.start_timeout_ms = 600;
    scheduler.desire(lrp.clone()).await.unwrap();
    let states = scheduler.instances(&lrp.id).await.unwrap();
    assert_ne!(states[0].state, InstanceState::Running);
    let event = tokio::time::timeout(PATIENCE, events.next())
        .await
        .unwrap()
        .unwrap();
    let Event::Crashed(crash) = event else {
        panic!("{event:?}")
    };
    assert_eq!(crash.reason, "failed to start");
    assert!(
        crash.exit_description.contains("/healthz"),
        "{}",
        crash.exit_description
    );
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_restart_immediately_and_count_up() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = start(&dir).await;
    let mut events = scheduler.events();
    let lrp = lrp(1);
    scheduler.desire(lrp.clone()).await.unwrap();
    for expected_count in 1..=2 {
        running(&scheduler, &lrp.id, 1).await;
        let app = scheduler.droplet_dir(&lrp.id).unwrap().join("app");
        std::fs::write(app.join(".c"), "9").unwrap();
        std::fs::rename(app.join(".c"), app.join("crash-0")).unwrap();
        let event = tokio::time::timeout(PATIENCE, events.next())
            .await
            .unwrap()
            .unwrap();
        let Event::Crashed(crash) = event else {
            panic!("{event:?}")
        };
        assert_eq!(crash.exit_status, 9);
        assert_eq!(crash.crash_count, expected_count);
        assert_eq!(crash.index, 0);
    }
    // Within the first three crashes the instance comes straight back.
    running(&scheduler, &lrp.id, 1).await;
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_images_are_refused_clearly_and_host_tasks_run() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = start(&dir).await;
    let mut lrp = lrp(1);
    lrp.lifecycle = LrpLifecycle::Docker {
        image: "nginx".into(),
        command: Vec::new(),
        credentials: None,
    };
    let err = scheduler.desire(lrp.clone()).await.unwrap_err();
    assert!(matches!(err, opi::Error::NotSupported(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("not supported by the local backend"),
        "{err}"
    );
    assert!(scheduler.list().await.unwrap().is_empty());

    // A task on the configured host-exec image runs its argv on the host.
    let mut events = scheduler.events();
    let mut task = opi::conformance::sample_task(&Lifecycles, "host-task", TaskOutcome::Succeed);
    task.lifecycle = LrpLifecycle::Docker {
        image: "cube/host".into(),
        command: vec!["sh".into(), "-c".into(), "exit 4".into()],
        credentials: None,
    };
    scheduler.desire_task(task).await.unwrap();
    let event = tokio::time::timeout(PATIENCE, events.next())
        .await
        .unwrap()
        .unwrap();
    let Event::TaskCompleted(done) = event else {
        panic!("{event:?}")
    };
    assert!(done.failed);
    assert_eq!(done.failure_reason, "exited with status 4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_reaches_healthy_instances_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = start(&dir).await;
    let mut lrp = lrp(2);
    lrp.routes.cf_router[0].hostname = "hello.localhost".into();
    lrp.lifecycle = LrpLifecycle::Buildpack {
        droplet_guid: DROPLET_GUID.into(),
        droplet_hash: DROPLET_HASH.into(),
        start_command: "mkdir -p $TMPDIR/www && echo instance-$CF_INSTANCE_INDEX > $TMPDIR/www/index.html && exec busybox httpd -f -p 127.0.0.1:$PORT -h $TMPDIR/www".into(),
    };
    scheduler.desire(lrp.clone()).await.unwrap();
    running(&scheduler, &lrp.id, 2).await;

    let router = opi_local::router::router(std::sync::Arc::new(scheduler.clone())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = opi::http::http_client_builder().build().unwrap();
    let get = |host: &'static str| {
        let http = http.clone();
        async move {
            let response = http
                .get(format!("http://{addr}/index.html"))
                .header("host", host)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let (status, body) = get("HELLO.localhost:8080").await;
        assert_eq!(status, 200, "{body}");
        seen.insert(body.trim().to_owned());
    }
    assert_eq!(seen.len(), 2, "both instances answered: {seen:?}");

    let (status, body) = get("nobody.localhost").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("no app has the route nobody.localhost"),
        "{body}"
    );

    scheduler
        .update(
            &lrp.id,
            opi::model::LrpUpdate {
                instances: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (status, body) = get("hello.localhost").await;
    assert_eq!(status, 503);
    assert!(body.contains("no running instances"), "{body}");
    scheduler.shutdown().await;
}

/// Waits until the counter moves past `seen` and `endpoints()` satisfies `want`.
async fn endpoints_until(
    scheduler: &LocalScheduler,
    changes: &mut tokio::sync::watch::Receiver<u64>,
    want: impl Fn(&[opi::routing::Endpoint]) -> bool,
) -> Vec<opi::routing::Endpoint> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let endpoints = scheduler.endpoints();
            if want(&endpoints) {
                return endpoints;
            }
            changes.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("endpoints never matched: {:?}", scheduler.endpoints()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_source_follows_instances_and_routes() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = start(&dir).await;
    let mut changes = scheduler.changes();
    let lrp = lrp(2);
    scheduler.desire(lrp.clone()).await.unwrap();
    // Only a change wakes the waiter: each step below waits on the counter.
    let two = endpoints_until(&scheduler, &mut changes, |e| e.len() == 2).await;
    assert_eq!(
        two.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![0, 1],
        "{two:?}"
    );

    // A restarted instance leaves and comes back as a new incarnation.
    scheduler.stop_instance(&lrp.id, 1).await.unwrap();
    let old = two[1].clone();
    let back = endpoints_until(&scheduler, &mut changes, |e| {
        e.len() == 2
            && e.iter()
                .any(|e| e.index == 1 && e.instance_guid != old.instance_guid)
    })
    .await;
    assert_eq!(back[0], two[0], "instance 0 was left alone");
    assert_ne!(back[1].port, 0);

    // New hostnames show at once.
    let mut routes = lrp.routes.clone();
    routes.cf_router[0].hostname = "renamed.example.com".into();
    scheduler
        .update(
            &lrp.id,
            opi::model::LrpUpdate {
                routes: Some(routes),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let renamed = endpoints_until(&scheduler, &mut changes, |e| {
        e.iter().all(|e| e.hostnames == ["renamed.example.com"])
    })
    .await;
    assert_eq!(renamed.len(), 2);

    // Stopping the LRP removes every endpoint.
    scheduler.stop(&lrp.id).await.unwrap();
    endpoints_until(&scheduler, &mut changes, <[_]>::is_empty).await;
    scheduler.shutdown().await;
}

/// Cancelling a task with steps kills the running step's whole process group
/// (a background child too) and no later step starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_task_with_steps_kills_the_running_step() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = start(&dir).await;
    let mut events = scheduler.events();
    let mut task = opi::conformance::sample_task(&Lifecycles, "stepped", TaskOutcome::Succeed);
    task.lifecycle = LrpLifecycle::Docker {
        image: "cube/host".into(),
        command: Vec::new(),
        credentials: None,
    };
    let sh = |script: &str| vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
    task.steps = vec![
        opi::model::TaskStep {
            name: "prepare".into(),
            command: sh("echo ready > \"$CUBE_WORKSPACE/prepared\""),
        },
        opi::model::TaskStep {
            name: "wait".into(),
            command: sh("sleep 300 & echo $! > \"$CUBE_WORKSPACE/sleeper\"; wait"),
        },
        opi::model::TaskStep {
            name: "after".into(),
            command: sh("touch \"$CUBE_WORKSPACE/after\""),
        },
    ];
    scheduler.desire_task(task).await.unwrap();
    let workspace = dir.path().join("root/tasks/stepped");
    let sleeper = workspace.join("sleeper");
    eventually(PATIENCE, || async {
        match std::fs::read_to_string(&sleeper) {
            Ok(pid) if !pid.trim().is_empty() => Ok(()),
            _ => Err("the second step has not started its child".to_owned()),
        }
    })
    .await
    .unwrap();
    assert!(
        workspace.join("prepared").exists(),
        "steps share the workspace"
    );
    let pid: i32 = std::fs::read_to_string(&sleeper)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    scheduler.cancel_task("stepped").await.unwrap();
    let event = tokio::time::timeout(PATIENCE, events.next())
        .await
        .unwrap()
        .unwrap();
    let Event::TaskCompleted(done) = event else {
        panic!("{event:?}")
    };
    assert!(done.failed);
    assert_eq!(done.failure_reason, "cancelled");
    // Killed; once its new parent reaps it, the pid is gone.
    eventually(PATIENCE, || async {
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Err(_) => Ok(()),
            Ok(()) => Err(format!(
                "the step's background child {pid} survived the cancel"
            )),
        }
    })
    .await
    .unwrap();
    assert!(
        !workspace.join("after").exists(),
        "a step ran after the cancel"
    );
}
