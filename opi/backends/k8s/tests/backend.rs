//! Behaviour of the Kubernetes backend against the fake apiserver: the
//! objects it writes, how versions/updates/stops map to them, instance
//! states, crashes, tasks, faults and restarts.

use std::time::Duration;

use futures::StreamExt;
use http::Method;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use opi::Scheduler;
use opi::conformance::eventually;
use opi::model::{
    EnvironmentVariable, Event, InstanceState, LrpId, LrpLifecycle, LrpUpdate, Named,
    RegistryCredentials, Task, TaskState,
};
use opi_k8s::{Config, K8sScheduler};
use serde_json::Value;
use testkit::FakeApiServer;
use testkit::apiserver::{Fault, Settings};

mod common;

use common::lrp;

const PATIENCE: Duration = Duration::from_secs(10);

fn setup() -> (FakeApiServer, K8sScheduler) {
    let server = FakeApiServer::builder().controllers(true).build();
    let scheduler = K8sScheduler::new(server.client(), Config::default());
    (server, scheduler)
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn pod_uids(server: &FakeApiServer, namespace: &str) -> Vec<String> {
    let mut uids: Vec<String> = server
        .list("pods", Some(namespace))
        .iter()
        .map(|p| s(p, &["metadata", "uid"]).to_owned())
        .collect();
    uids.sort();
    uids
}

async fn running(scheduler: &K8sScheduler, id: &LrpId, count: usize) {
    eventually(PATIENCE, || async {
        let instances = scheduler.instances(id).await.map_err(|e| e.to_string())?;
        let up = instances
            .iter()
            .filter(|i| i.state == InstanceState::Running)
            .count();
        if instances.len() == count && up == count {
            Ok(())
        } else {
            Err(format!("{instances:?}"))
        }
    })
    .await
    .expect("instances running");
}

#[tokio::test]
async fn desire_creates_the_objects_of_the_kubernetes_mapping() {
    let (server, scheduler) = setup();
    scheduler
        .desire(lrp("myapp", "guid-1", "v1", 3))
        .await
        .expect("desire");
    let ns = server
        .get("namespaces", "", "acme-dev")
        .expect("namespace acme-dev");
    assert_eq!(
        s(&ns, &["metadata", "labels", "cloudfoundry.org/space-guid"]),
        "space-1"
    );
    let sts = server
        .get("statefulsets", "acme-dev", "myapp")
        .expect("StatefulSet myapp");
    assert_eq!(s(&sts, &["spec", "podManagementPolicy"]), "Parallel");
    assert!(server.get("secrets", "acme-dev", "myapp-env").is_some());
    assert!(
        server
            .get("poddisruptionbudgets", "acme-dev", "myapp")
            .is_some()
    );
    assert!(
        !sts.to_string().contains("very-secret"),
        "env values must stay out of the StatefulSet"
    );
    running(&scheduler, &LrpId::new("guid-1", "v1"), 3).await;
    let mut pods: Vec<String> = server
        .list("pods", Some("acme-dev"))
        .iter()
        .map(|p| s(p, &["metadata", "name"]).to_owned())
        .collect();
    pods.sort();
    assert_eq!(pods, ["myapp-0", "myapp-1", "myapp-2"]);

    // Every write was a server-side apply by field manager `cube`.
    let writes: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(!writes.is_empty());
    for write in writes {
        assert_eq!(write.method, "PATCH", "{write:?}");
        assert_eq!(
            write.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "{write:?}"
        );
        assert!(write.query.contains("fieldManager=cube"), "{write:?}");
    }
}

#[tokio::test]
async fn an_identical_desire_writes_nothing_new() {
    let (server, scheduler) = setup();
    let app = lrp("myapp", "guid-1", "v1", 2);
    scheduler.desire(app.clone()).await.expect("desire");
    running(&scheduler, &app.id, 2).await;
    let before = server.resource_version();
    scheduler.desire(app).await.expect("desire again");
    assert_eq!(
        server.resource_version(),
        before,
        "a repeated desire changed the cluster"
    );
}

#[tokio::test]
async fn non_web_processes_and_colliding_names() {
    let (server, scheduler) = setup();
    let mut worker = lrp("myapp", "guid-w", "v1", 1);
    worker.process_type = "worker".into();
    scheduler.desire(worker).await.expect("worker");
    assert!(
        server
            .get("statefulsets", "acme-dev", "myapp-worker")
            .is_some()
    );

    scheduler
        .desire(lrp("myapp", "guid-1", "v1", 1))
        .await
        .expect("first myapp");
    scheduler
        .desire(lrp("myapp", "guid-2", "v1", 1))
        .await
        .expect("second myapp");
    let second = format!("myapp-{}", opi_k8s::names::short_hash("guid-2"));
    assert!(server.get("statefulsets", "acme-dev", "myapp").is_some());
    assert!(
        server.get("statefulsets", "acme-dev", &second).is_some(),
        "the second guid gets a hashed name"
    );
    // Desiring the second again keeps its (hashed) name.
    scheduler
        .desire(lrp("myapp", "guid-2", "v1", 2))
        .await
        .expect("again");
    assert_eq!(server.list("statefulsets", Some("acme-dev")).len(), 3);
}

#[tokio::test]
async fn long_unicode_names_still_get_pods() {
    let (server, scheduler) = setup();
    let name = format!("Ünïcödé.App_{}", "x".repeat(300));
    let app = lrp(&name, "guid-long", "v1", 1);
    scheduler.desire(app.clone()).await.expect("desire");
    running(&scheduler, &app.id, 1).await;
    let sts = server.list("statefulsets", Some("acme-dev"));
    let sts_name = s(&sts[0], &["metadata", "name"]);
    assert!(sts_name.len() <= 52, "{sts_name}");
}

#[tokio::test]
async fn updates_scale_without_restarting_and_change_only_what_they_name() {
    let (server, scheduler) = setup();
    let app = lrp("myapp", "guid-1", "v1", 1);
    scheduler.desire(app.clone()).await.expect("desire");
    running(&scheduler, &app.id, 1).await;
    let first_pod = server.get("pods", "acme-dev", "myapp-0").expect("pod");
    scheduler
        .update(
            &app.id,
            LrpUpdate {
                instances: Some(3),
                annotation: Some("1700000005.0".into()),
                routes: None,
            },
        )
        .await
        .expect("update");
    running(&scheduler, &app.id, 3).await;
    let same_pod = server.get("pods", "acme-dev", "myapp-0").expect("pod");
    assert_eq!(
        s(&first_pod, &["metadata", "uid"]),
        s(&same_pod, &["metadata", "uid"]),
        "scaling restarted instance 0"
    );
    let got = scheduler.get(&app.id).await.expect("get");
    assert_eq!(got.instances, 3);
    assert_eq!(got.annotation, "1700000005.0");
    assert_eq!(got.routes, app.routes);
    assert_eq!(
        got.environment, app.environment,
        "env read back from the Secret"
    );

    // Down to one: the PDB goes.
    scheduler
        .update(
            &app.id,
            LrpUpdate {
                instances: Some(1),
                ..LrpUpdate::default()
            },
        )
        .await
        .expect("scale down");
    assert!(
        server
            .get("poddisruptionbudgets", "acme-dev", "myapp")
            .is_none()
    );
}

#[tokio::test]
async fn versions_roll_the_statefulset_and_stops_clean_up() {
    let (server, scheduler) = setup();
    let v1 = lrp("myapp", "guid-1", "v1", 2);
    let v2 = lrp("myapp", "guid-1", "v2", 2);
    scheduler.desire(v1.clone()).await.expect("v1");
    running(&scheduler, &v1.id, 2).await;
    scheduler.desire(v2.clone()).await.expect("v2");
    running(&scheduler, &v2.id, 2).await;
    for pod in server.list("pods", Some("acme-dev")) {
        assert_eq!(
            s(
                &pod,
                &["metadata", "annotations", "cloudfoundry.org/version"]
            ),
            "v2"
        );
    }
    scheduler.stop(&v1.id).await.expect("stop old version");
    assert!(
        server.get("statefulsets", "acme-dev", "myapp").is_some(),
        "stopping the old version must leave the new one running"
    );
    assert!(matches!(
        scheduler.stop(&v1.id).await,
        Err(opi::Error::NotFound(_))
    ));
    running(&scheduler, &v2.id, 2).await;

    scheduler.stop(&v2.id).await.expect("stop current");
    assert!(server.get("statefulsets", "acme-dev", "myapp").is_none());
    assert!(server.get("secrets", "acme-dev", "myapp-env").is_none());
    assert!(
        server
            .get("poddisruptionbudgets", "acme-dev", "myapp")
            .is_none()
    );
    assert!(
        server.list("pods", Some("acme-dev")).is_empty(),
        "pods garbage-collected"
    );
}

#[tokio::test]
async fn stop_instance_deletes_that_pod_only() {
    let (server, scheduler) = setup();
    let app = lrp("myapp", "guid-1", "v1", 2);
    scheduler.desire(app.clone()).await.expect("desire");
    running(&scheduler, &app.id, 2).await;
    let before = pod_uids(&server, "acme-dev");
    let zero = server.get("pods", "acme-dev", "myapp-0").expect("pod 0");
    scheduler.stop_instance(&app.id, 1).await.expect("stop 1");
    running(&scheduler, &app.id, 2).await;
    let after = pod_uids(&server, "acme-dev");
    assert_ne!(before, after, "instance 1 was not replaced");
    let zero_after = server.get("pods", "acme-dev", "myapp-0").expect("pod 0");
    assert_eq!(
        s(&zero, &["metadata", "uid"]),
        s(&zero_after, &["metadata", "uid"])
    );
}

#[tokio::test]
async fn unschedulable_instances_are_unclaimed_with_the_reason() {
    let server = FakeApiServer::builder()
        .controllers(true)
        .settings(Settings {
            schedulable: false,
            ready: true,
        })
        .build();
    let scheduler = K8sScheduler::new(server.client(), Config::default());
    let app = lrp("myapp", "guid-1", "v1", 1);
    scheduler.desire(app.clone()).await.expect("desire");
    eventually(PATIENCE, || async {
        let instances = scheduler
            .instances(&app.id)
            .await
            .map_err(|e| e.to_string())?;
        match instances.as_slice() {
            [one]
                if one.state == InstanceState::Unclaimed
                    && one.placement_error.contains("Insufficient memory") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("unclaimed");
    server.set_settings(Settings {
        schedulable: true,
        ready: false,
    });
    eventually(PATIENCE, || async {
        let instances = scheduler
            .instances(&app.id)
            .await
            .map_err(|e| e.to_string())?;
        match instances.as_slice() {
            [one] if one.state == InstanceState::Claimed => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("claimed once placed but not ready");
}

#[tokio::test]
async fn each_restart_after_a_failure_is_one_crash_event() {
    let (server, scheduler) = setup();
    let app = lrp("myapp", "guid-1", "v1", 1);
    scheduler.desire(app.clone()).await.expect("desire");
    running(&scheduler, &app.id, 1).await;
    let mut events = scheduler.events();
    let pods: Api<Pod> = Api::namespaced(server.client(), "acme-dev");
    let status = |restarts: i32, exit: i32, extra: &str| {
        serde_json::json!({"status": {
            "message": extra,
            "containerStatuses": [{
                "name": "opi", "image": "nginx", "imageID": "", "ready": false,
                "restartCount": restarts,
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                "lastState": {"terminated": {
                    "exitCode": exit, "reason": "Error",
                    "finishedAt": "2026-01-01T00:00:00Z",
                    "containerID": format!("containerd://c{restarts}"),
                }},
            }],
        }})
    };
    let params = PatchParams::default();
    pods.patch_status("myapp-0", &params, &Patch::Merge(&status(1, 7, "a")))
        .await
        .expect("crash 1");
    // The same termination seen again with other status changes: no new event.
    pods.patch_status("myapp-0", &params, &Patch::Merge(&status(1, 7, "b")))
        .await
        .expect("same crash");
    pods.patch_status("myapp-0", &params, &Patch::Merge(&status(2, 9, "c")))
        .await
        .expect("crash 2");
    let mut crashes = Vec::new();
    while crashes.len() < 2 {
        match tokio::time::timeout(PATIENCE, events.next()).await {
            Ok(Some(Event::Crashed(crash))) => crashes.push(crash),
            Ok(Some(_)) => {}
            other => panic!("no crash event: {other:?}"),
        }
    }
    assert_eq!(
        crashes
            .iter()
            .map(|c| (c.index, c.exit_status, c.crash_count))
            .collect::<Vec<_>>(),
        [(0, 7, 1), (0, 9, 2)]
    );
    assert_eq!(crashes[0].id, app.id);
    assert!(crashes[0].crash_timestamp > 0);
    // Nothing more arrives for the repeated status.
    pods.patch_status("myapp-0", &params, &Patch::Merge(&status(2, 9, "d")))
        .await
        .expect("repeat");
    let extra = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    assert!(extra.is_err(), "unexpected event {extra:?}");
}

#[tokio::test]
async fn docker_credentials_become_an_image_pull_secret() {
    let (server, scheduler) = setup();
    let mut app = lrp("private", "guid-p", "v1", 1);
    app.lifecycle = LrpLifecycle::Docker {
        image: "registry.example.com/team/app:1".into(),
        command: vec!["/app".into()],
        credentials: Some(RegistryCredentials {
            username: "robot".into(),
            password: "pw".into(),
        }),
    };
    scheduler.desire(app.clone()).await.expect("desire");
    let secret = server
        .get("secrets", "acme-dev", "private-registry")
        .expect("pull secret");
    assert_eq!(s(&secret, &["type"]), "kubernetes.io/dockerconfigjson");
    let sts = server
        .get("statefulsets", "acme-dev", "private")
        .expect("sts");
    assert_eq!(
        sts["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"],
        "private-registry"
    );
    let got = scheduler.get(&app.id).await.expect("get");
    assert_eq!(got.lifecycle, app.lifecycle, "credentials read back");
}

/// A completion callback with credentials in it, as CC's staging callbacks have.
const CALLBACK: &str = "http://internal_user:s3cret@127.0.0.1:9/done";

fn task(guid: &str) -> Task {
    Task {
        guid: guid.into(),
        name: "migrate".into(),
        app: Named {
            guid: "app-1".into(),
            name: "myapp".into(),
        },
        space: Named {
            guid: "space-1".into(),
            name: "dev".into(),
        },
        org: Named {
            guid: "org-1".into(),
            name: "acme".into(),
        },
        completion_callback: CALLBACK.into(),
        environment: vec![EnvironmentVariable {
            name: "DB_PASSWORD".into(),
            value: "hunter2".into(),
        }],
        lifecycle: LrpLifecycle::Docker {
            image: "busybox".into(),
            command: vec!["true".into()],
            credentials: None,
        },
        memory_mb: 64,
        disk_mb: 0,
        cpu_weight: 0,
        steps: Vec::new(),
    }
}

#[tokio::test]
async fn tasks_are_jobs_that_run_once_and_cancel_deletes_them() {
    let (server, scheduler) = setup();
    scheduler.desire_task(task("t-1")).await.expect("task");
    let jobs = server.list("jobs", Some("acme-dev"));
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 600);
    assert!(!job.to_string().contains("hunter2"));
    assert!(
        !job.to_string().contains("s3cret"),
        "the callback's credentials are not in the Job"
    );
    let job_name = s(job, &["metadata", "name"]).to_owned();
    let callback = server
        .get("secrets", "acme-dev", &format!("{job_name}-callback"))
        .expect("callback secret");
    assert_eq!(callback["metadata"]["ownerReferences"][0]["name"], job_name);
    let secret = server
        .get("secrets", "acme-dev", &format!("{job_name}-env"))
        .expect("env secret");
    assert_eq!(
        s(&secret, &["metadata", "ownerReferences", "0", "name"]),
        "",
        "(ownerReferences is a list)"
    );
    assert_eq!(secret["metadata"]["ownerReferences"][0]["name"], job_name);
    eventually(PATIENCE, || async {
        match scheduler.get_task("t-1").await.map(|t| t.state) {
            Ok(TaskState::Running) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("running");

    let mut events = scheduler.events();
    scheduler.cancel_task("t-1").await.expect("cancel");
    assert!(server.list("jobs", Some("acme-dev")).is_empty());
    assert!(
        server
            .get("secrets", "acme-dev", &format!("{job_name}-env"))
            .is_none(),
        "the env secret goes with its Job"
    );
    match tokio::time::timeout(PATIENCE, events.next()).await {
        Ok(Some(Event::TaskCompleted(done))) => {
            assert!(done.failed);
            assert_eq!(done.failure_reason, "cancelled");
            assert_eq!(done.completion_callback, CALLBACK);
        }
        other => panic!("no completion: {other:?}"),
    }
    assert!(matches!(
        scheduler.get_task("t-1").await,
        Err(opi::Error::NotFound(_))
    ));
}

#[tokio::test]
async fn apiserver_rejections_are_bad_requests_with_the_kubernetes_message() {
    let (_server, scheduler) = setup();
    let mut app = lrp("myapp", "guid-1", "v1", 1);
    app.user_defined_annotations
        .insert("not a valid key!".into(), "x".into());
    match scheduler.desire(app).await {
        Err(e @ opi::Error::BadBody(_)) => {
            assert_eq!(e.status().as_u16(), 400);
            let message = e.to_string();
            assert!(message.contains("is invalid"), "{message}");
            assert!(message.contains("not a valid key!"), "{message}");
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_apiserver_is_unavailable() {
    let (server, scheduler) = setup();
    server.set_unreachable(true);
    let result = scheduler.desire(lrp("myapp", "guid-1", "v1", 1)).await;
    assert!(
        matches!(result, Err(opi::Error::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(result.map_err(|e| e.status().as_u16()), Err(503));
    let list = scheduler.list().await;
    assert!(matches!(list, Err(opi::Error::Unavailable(_))), "{list:?}");
    server.set_unreachable(false);
    scheduler.list().await.expect("back");
}

#[tokio::test]
async fn apiserver_errors_5xx_are_unavailable() {
    let (server, scheduler) = setup();
    // Synced first, so that the fault meets `list` and not a watch's LIST.
    eventually(PATIENCE, || async { scheduler.ready().await })
        .await
        .expect("ready");
    server.inject(Fault::next(1, 500).on(Method::GET, "/statefulsets"));
    let result = scheduler.list().await;
    assert!(
        matches!(result, Err(opi::Error::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_interrupted_desire_is_completed_by_the_next() {
    let (server, scheduler) = setup();
    let app = lrp("myapp", "guid-1", "v1", 2);
    server.inject(Fault::next(1, 503).on(Method::PATCH, "/statefulsets/"));
    let first = scheduler.desire(app.clone()).await;
    assert!(
        matches!(first, Err(opi::Error::Unavailable(_))),
        "{first:?}"
    );
    assert!(
        server.get("secrets", "acme-dev", "myapp-env").is_some(),
        "half done"
    );
    assert!(server.get("statefulsets", "acme-dev", "myapp").is_none());

    scheduler.desire(app.clone()).await.expect("second desire");
    assert!(server.get("statefulsets", "acme-dev", "myapp").is_some());
    assert!(
        server
            .get("poddisruptionbudgets", "acme-dev", "myapp")
            .is_some()
    );
    running(&scheduler, &app.id, 2).await;
}

#[tokio::test]
async fn a_restarted_backend_rebuilds_everything_from_the_cluster() {
    let (server, scheduler) = setup();
    let app = lrp("myapp", "guid-1", "v1", 2);
    scheduler.desire(app.clone()).await.expect("desire");
    scheduler.desire_task(task("t-9")).await.expect("task");
    running(&scheduler, &app.id, 2).await;
    let instances = scheduler.instances(&app.id).await.expect("instances");
    drop(scheduler);

    let restarted = K8sScheduler::new(server.client(), Config::default());
    eventually(PATIENCE, || async { restarted.ready().await })
        .await
        .expect("ready");
    assert_eq!(restarted.get(&app.id).await.expect("get"), app);
    assert_eq!(
        restarted.list().await.expect("list"),
        vec![app.scheduling_info()]
    );
    assert_eq!(
        restarted.instances(&app.id).await.expect("instances"),
        instances
    );
    assert_eq!(
        restarted.get_task("t-9").await.expect("task").name,
        "migrate"
    );
}

#[tokio::test]
async fn a_completion_missed_while_down_is_reported_after_a_restart_once() {
    let (server, scheduler) = setup();
    scheduler.desire_task(task("t-5")).await.expect("task");
    drop(scheduler);
    // The Job finishes while no Cube is watching.
    let job = server.list("jobs", Some("acme-dev")).remove(0);
    let name = s(&job, &["metadata", "name"]).to_owned();
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(server.client(), "acme-dev");
    let done = serde_json::json!({"status": {"conditions": [
        {"type": "Complete", "status": "True",
         "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string()}
    ]}});
    jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&done))
        .await
        .expect("complete");

    let restarted = K8sScheduler::new(server.client(), Config::default());
    let mut events = restarted.events();
    match tokio::time::timeout(PATIENCE, events.next()).await {
        Ok(Some(Event::TaskCompleted(c))) => assert!(!c.failed && c.guid == "t-5"),
        other => panic!("no completion: {other:?}"),
    }
    eventually(PATIENCE, || async {
        let job = server.get("jobs", "acme-dev", &name).ok_or("gone")?;
        if s(
            &job,
            &[
                "metadata",
                "annotations",
                "cloudfoundry.org/completion-reported",
            ],
        ) == "true"
        {
            Ok(())
        } else {
            Err("not marked".to_owned())
        }
    })
    .await
    .expect("marked as reported");
    drop(restarted);
    let again = K8sScheduler::new(server.client(), Config::default());
    let mut events = again.events();
    eventually(PATIENCE, || async { again.ready().await })
        .await
        .expect("ready");
    let extra = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    assert!(extra.is_err(), "reported twice: {extra:?}");
}

#[tokio::test]
async fn connects_with_a_kubeconfig_file() {
    let server = FakeApiServer::builder().controllers(true).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = server.serve(listener);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters: [{{name: fake, cluster: {{server: 'http://{addr}'}}}}]\n\
             users: [{{name: me, user: {{token: t}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: me, namespace: default}}}}]\n"
        ),
    )
    .expect("write kubeconfig");
    let scheduler = K8sScheduler::connect(Some(&path), Config::default())
        .await
        .expect("connect");
    let app = lrp("myapp", "guid-1", "v1", 1);
    scheduler
        .desire(app.clone())
        .await
        .expect("desire over TCP");
    running(&scheduler, &app.id, 1).await;
    assert!(server.get("statefulsets", "acme-dev", "myapp").is_some());
    serving.abort();
}

#[tokio::test]
async fn a_missing_kubeconfig_is_a_clear_error() {
    let result = K8sScheduler::connect(
        Some(std::path::Path::new("/nonexistent/kubeconfig")),
        Config::default(),
    )
    .await;
    match result {
        Err(e @ opi_k8s::K8sError::Config(_)) => {
            assert!(e.to_string().contains("/nonexistent/kubeconfig"), "{e}");
        }
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("connected without a kubeconfig"),
    }
}

#[tokio::test]
async fn finished_tasks_are_reported_even_when_their_job_is_deleted_right_away() {
    let server = FakeApiServer::builder().controllers(true).build();
    let config = Config {
        task_ttl_seconds: 0,
        ..Config::default()
    };
    let scheduler = K8sScheduler::new(server.client(), config);
    eventually(PATIENCE, || async { scheduler.ready().await })
        .await
        .expect("ready");
    let mut events = scheduler.events();
    scheduler.desire_task(task("t-ttl")).await.expect("task");
    let job = server.list("jobs", Some("acme-dev")).remove(0);
    let name = s(&job, &["metadata", "name"]).to_owned();
    let failed = serde_json::json!({"status": {"conditions": [{
        "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
        "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
    }]}});
    Api::<k8s_openapi::api::batch::v1::Job>::namespaced(server.client(), "acme-dev")
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&failed))
        .await
        .expect("fail the job");
    match tokio::time::timeout(PATIENCE, events.next()).await {
        Ok(Some(Event::TaskCompleted(done))) => {
            assert!(done.failed);
            assert!(
                done.failure_reason.contains("BackoffLimitExceeded"),
                "{done:?}"
            );
        }
        other => panic!("no completion: {other:?}"),
    }
    eventually(PATIENCE, || async {
        match server.get("jobs", "acme-dev", &name) {
            None => Ok(()),
            Some(_) => Err("job still there".to_owned()),
        }
    })
    .await
    .expect("the TTL controller deleted the finished job");
}
