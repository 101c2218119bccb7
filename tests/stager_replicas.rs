//! Two St8ge processes (the built `cube stager`) behind one Service, as
//! `deploy/` runs them, over one OPI (the memory scheduler, served here) and a
//! recording CC. CC's requests may land on either replica; a staging must be
//! settled once, by whichever replica hears its outcome:
//!
//! - a staging task calls back the replica that desired it (its own
//!   `--public-url`), and the other replica streams that staging's log from
//!   its peer;
//! - an outcome that reaches the *other* replica (a task of an older St8ge
//!   that called the Service) is forwarded to CC there, and the desiring
//!   replica, whose deadline then passes, asks the scheduler and reports no
//!   `StagingTimeExpired` after the success;
//! - a staging that really outlives its deadline is reported
//!   `StagingTimeExpired` once, and its task cancelled.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, Uri};
use common::free_port;
use http_body_util::BodyExt;
use opi::Scheduler;
use opi::memory::MemoryScheduler;
use opi::model::TaskState;
use tower::ServiceExt;

/// St8ge's staging timeout in this test.
const TIMEOUT: Duration = Duration::from_secs(3);

type Recorded = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

struct Stager {
    child: Child,
    url: String,
}

impl Drop for Stager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Replicas {
    a: Stager,
    b: Stager,
    scheduler: Arc<MemoryScheduler>,
    /// The task bodies OPI received, by task guid.
    tasks: Recorded,
    /// What CC received: (path, body).
    cc: Recorded,
    cc_url: String,
    http: reqwest::Client,
    _buildpacks: tempfile::TempDir,
}

/// Serves `router` on 127.0.0.1 and returns its URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// OPI's real router over `scheduler`, recording the task bodies it gets.
async fn opi(scheduler: Arc<MemoryScheduler>, tasks: Recorded) -> String {
    let router = opi::http::router(
        scheduler as Arc<dyn Scheduler>,
        opi::http::ApiConfig::default(),
        opi::http::ApiMetrics::register(&prometheus::Registry::new()).unwrap(),
    );
    serve(Router::new().fallback(move |request: Request<Body>| {
        let (router, tasks) = (router.clone(), tasks.clone());
        async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            if parts.method == Method::POST
                && let Some(guid) = parts.uri.path().strip_prefix("/tasks/")
            {
                let task = serde_json::from_slice(&bytes).unwrap();
                tasks.lock().unwrap().push((guid.to_owned(), task));
            }
            let request = Request::from_parts(parts, Body::from(bytes));
            router.oneshot(request).await.unwrap()
        }
    }))
    .await
}

/// A CC that records every staging completion and answers 200.
async fn cc(calls: Recorded) -> String {
    serve(Router::new().fallback(move |uri: Uri, body: Bytes| {
        let calls = calls.clone();
        async move {
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            calls.lock().unwrap().push((uri.path().to_owned(), json));
            StatusCode::OK
        }
    }))
    .await
}

/// `cube stager` on `port`, one of `peers`, waiting until it answers.
async fn stager(port: u16, peers: &str, opi_url: &str, cc_url: &str, buildpacks: &str) -> Stager {
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_cube"))
        .args(["stager", "--log", "warn"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--public-url", &url, "--peer", peers])
        .args([
            "--opi-url",
            opi_url,
            "--cc-url",
            cc_url,
            "--registry-url",
            "",
        ])
        .args(["--buildpacks-dir", buildpacks, "--staging-timeout", "3s"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stager = Stager { child, url };
    for _ in 0..150 {
        if reqwest::get(format!("{}/buildpacks", stager.url))
            .await
            .is_ok()
        {
            return stager;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cube stager on {port} did not answer within 15 s");
}

async fn replicas() -> Replicas {
    let scheduler = Arc::new(MemoryScheduler::new());
    let (tasks, calls) = (Recorded::default(), Recorded::default());
    let opi_url = opi(scheduler.clone(), tasks.clone()).await;
    let cc_url = cc(calls.clone()).await;
    let buildpacks = tempfile::tempdir().unwrap();
    std::fs::write(buildpacks.path().join("order"), "").unwrap();
    let dir = buildpacks.path().to_str().unwrap().to_owned();
    let (port_a, port_b) = (free_port(), free_port());
    let peers = format!("http://127.0.0.1:{port_a},http://127.0.0.1:{port_b}");
    let a = stager(port_a, &peers, &opi_url, &cc_url, &dir).await;
    let b = stager(port_b, &peers, &opi_url, &cc_url, &dir).await;
    Replicas {
        a,
        b,
        scheduler,
        tasks,
        cc: calls,
        cc_url,
        http: reqwest::Client::new(),
        _buildpacks: buildpacks,
    }
}

impl Replicas {
    /// CC's `POST /stage/{guid}`, landing on `replica`.
    async fn stage(&self, replica: &Stager, guid: &str) {
        let mut body: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/stager/testdata/staging_request_buildpack.json"
            ))
            .unwrap(),
        )
        .unwrap();
        body["staging_guid"] = guid.into();
        body["completion_callback"] = self.callback(guid).into();
        let answer = self
            .http
            .post(format!("{}/stage/{guid}", replica.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap());
    }

    fn callback(&self, guid: &str) -> String {
        format!(
            "{}/internal/v3/staging/{guid}/build_completed?start=true",
            self.cc_url
        )
    }

    /// The environment variable `name` of the staging task OPI received.
    fn task_env(&self, guid: &str, name: &str) -> String {
        let tasks = self.tasks.lock().unwrap();
        let (_, task) = tasks.iter().find(|(g, _)| g == guid).unwrap();
        let env = task["environment"].as_array().unwrap();
        let entry = env.iter().find(|e| e["name"] == name).unwrap();
        entry["value"].as_str().unwrap().to_owned()
    }

    /// The URL the staging task of `guid` reports its outcome to.
    fn task_completion_url(&self, guid: &str) -> String {
        let tasks = self.tasks.lock().unwrap();
        let (_, task) = tasks.iter().find(|(g, _)| g == guid).unwrap();
        task["completion_callback"].as_str().unwrap().to_owned()
    }

    /// What the upload step does at the end: POST the result to `url`.
    async fn report_success(&self, url: &str) {
        let body = serde_json::json!({"result": {
            "lifecycle_type": "buildpack",
            "lifecycle_metadata": {"detected_buildpack": "python", "buildpacks": []},
            "process_types": {"web": "python3 app.py"},
            "execution_metadata": ""
        }});
        let answer = self.http.post(url).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    }

    /// What CC heard about `guid`.
    fn heard(&self, guid: &str) -> Vec<serde_json::Value> {
        let path = format!("/internal/v3/staging/{guid}/build_completed");
        let calls = self.cc.lock().unwrap();
        calls
            .iter()
            .filter(|(p, _)| *p == path)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

/// Replaces the origin of `url` with `replica`'s.
fn at(replica: &Stager, url: &str) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    let origin = reqwest::Url::parse(&replica.url).unwrap();
    url.set_port(origin.port()).unwrap();
    url.to_string()
}

async fn past_the_deadline() {
    tokio::time::sleep(TIMEOUT + Duration::from_secs(2)).await;
}

#[tokio::test]
async fn two_replicas_settle_each_staging_once() {
    let r = replicas().await;

    // 1. The staging task calls back the replica that desired it (B), and A
    //    serves its log from B.
    let one = "11111111-1111-4111-8111-111111111111";
    r.stage(&r.b, one).await;
    let logs_url = r.task_env(one, "CUBE_LOGS_URL");
    assert!(logs_url.starts_with(&r.b.url), "{logs_url} is B's");
    let completion = r.task_completion_url(one);
    assert!(completion.starts_with(&r.b.url), "{completion} is B's");
    let appended = r
        .http
        .post(&logs_url)
        .body("-----> Installing python\n")
        .send()
        .await;
    assert_eq!(appended.unwrap().status(), 204);
    let log = r
        .http
        .get(format!("{}/stage/{one}/logs?follow=false", r.a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), 200);
    assert!(log.text().await.unwrap().contains("Installing python"));
    r.report_success(&completion).await;
    r.scheduler.complete_task(one, false, "", "").unwrap();

    // 2. The outcome of a staging A desired lands on B (a task that called
    //    the Service): B tells CC, and A's deadline then stays quiet.
    let two = "22222222-2222-4222-8222-222222222222";
    r.stage(&r.a, two).await;
    let completion = r.task_completion_url(two);
    assert!(completion.starts_with(&r.a.url), "{completion} is A's");
    r.report_success(&at(&r.b, &completion)).await;
    r.scheduler.complete_task(two, false, "", "").unwrap();

    // 3. A staging nobody finishes times out, once, on the replica that ran it.
    let three = "33333333-3333-4333-8333-333333333333";
    r.stage(&r.a, three).await;

    past_the_deadline().await;
    for guid in [one, two] {
        let heard = r.heard(guid);
        assert_eq!(heard.len(), 1, "{guid}: CC heard once: {heard:?}");
        assert_eq!(heard[0]["result"]["process_types"]["web"], "python3 app.py");
    }
    let heard = r.heard(three);
    assert_eq!(heard.len(), 1, "CC heard of the timeout once: {heard:?}");
    assert_eq!(heard[0]["error"]["id"], "StagingTimeExpired");
    let task = r.scheduler.get_task(three).await.unwrap();
    assert!(
        matches!(&task.state, TaskState::Completed { failure_reason, .. } if failure_reason == "cancelled"),
        "the timed-out task is cancelled: {task:?}"
    );
    let unknown = r
        .http
        .get(format!(
            "{}/stage/44444444-4444-4444-8444-444444444444/logs",
            r.a.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404, "no replica has it");
}
