//! `push` against a real simulator on 127.0.0.1 (a stand-in St8ge, a
//! stand-in OPI), ports chosen by the OS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as AxumPath, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use cc::model::{StagingCompletion, StagingError, StagingRequest};
use cc::sim::SimClient;
use cc::{Client, ClientConfig, RetryPolicy};
use cube_runtime::{Service, Shutdown};
use opi::http::OpiClient;

use super::{PushOptions, push};

struct RunningSim {
    url: String,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<cc::Result<()>>,
}

impl RunningSim {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("sim stops within 30s")
            .unwrap()
            .unwrap();
    }
}

async fn start_sim(dir: &Path, configure: impl FnOnce(&mut cc::sim::Config)) -> RunningSim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = cc::sim::Config::new(dir);
    configure(&mut config);
    let shutdown = Shutdown::new();
    let service = Service::new(shutdown.clone());
    let task = tokio::spawn(cc::sim::run(config, listener, service));
    RunningSim {
        url: format!("http://{addr}"),
        shutdown,
        task,
    }
}

fn client(url: &str) -> Client {
    let mut config = ClientConfig::new(url);
    config.retry = RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    };
    Client::new(config).unwrap()
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A stand-in for St8ge: on `POST /stage/{guid}` it answers 202 and, in the
/// background, does what a staging task does through the CC client: download the
/// app bits, deliver a droplet (through the cc-uploader URI the simulator
/// hands out), call the completion callback.
async fn fake_stager(fail_with: Option<&'static str>) -> (SocketAddr, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let state = (requests.clone(), fail_with);
    let router = Router::new()
        .route(
            "/stage/{guid}/logs",
            get(|AxumPath(guid): AxumPath<String>| async move {
                format!("-----> fake staging of {guid}\n-----> done")
            }),
        )
        .route(
            "/stage/{guid}",
            post(
                |State((requests, fail_with)): State<(Arc<AtomicUsize>, Option<&'static str>)>,
                 AxumPath(_guid): AxumPath<String>,
                 axum::Json(request): axum::Json<StagingRequest>| async move {
                    requests.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(stage_in_background(request, fail_with));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(state);
    (serve(router).await, requests)
}

/// What [`fake_stager`]'s staging task does: fail with `fail_with`, or
/// download the bits, upload a droplet and report success.
async fn stage_in_background(request: StagingRequest, fail_with: Option<&'static str>) {
    let cc = Client::new(ClientConfig {
        username: None,
        password: None,
        ..ClientConfig::new("http://127.0.0.1:1")
    })
    .unwrap();
    let completion = match fail_with {
        Some(message) => StagingCompletion::Failed(StagingError::staging(message)),
        None => {
            let lifecycle = request.lifecycle.buildpack_lifecycle.unwrap();
            let bits = cc.download(&lifecycle.app_bits_download_uri).await.unwrap();
            assert!(bits.starts_with(b"PK"));
            let droplet = axum::body::Bytes::from_static(b"a droplet built from the bits");
            // The sim hands a cc-uploader URI: the raw body.
            cc.deliver_droplet(
                &lifecycle.droplet_upload_uri,
                droplet,
                Duration::from_millis(10),
                100,
            )
            .await
            .unwrap();
            serde_json::from_str(include_str!(
                "../../cc/testdata/staging_completion_buildpack.json"
            ))
            .unwrap()
        }
    };
    cc.staging_completed(&request.completion_callback, &completion)
        .await
        .unwrap();
}

fn push_options(name: &str, dir: &Path) -> PushOptions {
    PushOptions {
        name: name.into(),
        dir: dir.to_owned(),
        instances: Some(2),
        memory_mb: Some(128),
        disk_mb: None,
        buildpacks: vec!["ruby_buildpack".into()],
        docker_image: None,
        command: None,
        staging_timeout: Duration::from_secs(30),
        start_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
        staging_logs: false,
    }
}

#[tokio::test]
async fn push_stages_through_the_stager_and_serves_the_droplet() {
    let (stager, requests) = fake_stager(None).await;
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), |c| {
        c.stager_url = Some(format!("http://{stager}"))
    })
    .await;
    let app_dir = tempfile::tempdir().unwrap();
    std::fs::write(app_dir.path().join("app.rb"), "puts :hi").unwrap();
    let api = SimClient::new(&sim.url).unwrap();
    let mut lines = Vec::new();
    let options = PushOptions {
        staging_logs: true,
        ..push_options("rb", app_dir.path())
    };
    let app = push(&api, None, options, &mut |line| lines.push(line))
        .await
        .unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert!(app.desired);
    assert_eq!(app.instances, 2);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("STAGED") || l.contains("Staged")),
        "{lines:?}"
    );
    // The stager's staging log, through the simulator, line by line.
    let build = app.build.as_ref().unwrap();
    let shown = lines
        .iter()
        .position(|l| *l == format!("   -----> fake staging of {}", build.guid))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(lines[shown + 1], "   -----> done");

    let cc = client(&sim.url);
    let records = cc
        .desired_apps(&[cc::model::ProcessGuid(app.process_guid.clone())])
        .await
        .unwrap();
    assert_eq!(
        records[0].start_command,
        "bundle exec rackup config.ru -p $PORT"
    );
    let droplet = cc
        .download(records[0].droplet_uri.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(&droplet[..], b"a droplet built from the bits");

    let events: serde_json::Value = reqwest::get(format!("{}/sim/events", sim.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["staging_requested", "droplet_uploaded", "staging_completed"]
    );
    assert_eq!(events["events"][1]["body"]["via"], "cc-uploader");
    let recorded = events["events"][0]["body"].to_string();
    assert!(
        !recorded.contains("internal_password"),
        "credentials are not recorded: {recorded}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn push_reports_staging_failure_and_missing_stager_in_one_line() {
    let (stager, _) = fake_stager(Some("buildpack compile failed")).await;
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), |c| {
        c.stager_url = Some(format!("http://{stager}"))
    })
    .await;
    let app_dir = tempfile::tempdir().unwrap();
    let api = SimClient::new(&sim.url).unwrap();
    let error = push(&api, None, push_options("rb", app_dir.path()), &mut |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "staging rb failed: StagingError: buildpack compile failed"
    );
    sim.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), |_| {}).await;
    let api = SimClient::new(&sim.url).unwrap();
    let error = push(&api, None, push_options("rb", app_dir.path()), &mut |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no stager configured"), "{error}");
    assert!(!error.contains('\n'));
    let error = push(
        &api,
        None,
        push_options("rb", Path::new("/nonexistent/app")),
        &mut |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("/nonexistent/app"), "{error}");
    sim.stop().await;

    let unreachable = SimClient::new("http://127.0.0.1:9").unwrap();
    let error = unreachable.list().await.unwrap_err().to_string();
    assert!(
        error.starts_with("cannot reach CC at http://127.0.0.1:9"),
        "{error}"
    );
}

/// What [`fake_opi`] answers, in turn: (status, body).
type Answers = Arc<Vec<(StatusCode, &'static str)>>;
/// The `{guid}/{version}` [`fake_opi`] was asked for, in order.
type Asked = Arc<Mutex<Vec<String>>>;

/// A stand-in OPI whose instances route answers, in turn, each of `answers`
/// (status, body), repeating the last one; it records the paths asked for.
async fn fake_opi(answers: Vec<(StatusCode, &'static str)>) -> (String, Asked) {
    let asked = Asked::default();
    let state = (Arc::new(answers), asked.clone());
    let router = Router::new()
        .route(
            "/apps/{guid}/{version}/instances",
            get(
                |State((answers, asked)): State<(Answers, Asked)>,
                 AxumPath((guid, version)): AxumPath<(String, String)>| async move {
                    let mut asked = asked.lock().unwrap();
                    asked.push(format!("{guid}/{version}"));
                    let (status, body) = answers[(asked.len() - 1).min(answers.len() - 1)];
                    (status, [("content-type", "application/json")], body)
                },
            ),
        )
        .with_state(state);
    (format!("http://{}", serve(router).await), asked)
}

/// A Docker app pushed to a simulator without a stager: staged at once.
async fn push_docker_app(opi: &OpiClient) -> (anyhow::Result<cc::sim::view::AppView>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), |_| {}).await;
    let api = SimClient::new(&sim.url).unwrap();
    let options = PushOptions {
        docker_image: Some("nginx".into()),
        instances: Some(2),
        start_timeout: Duration::from_secs(5),
        ..push_options("web", dir.path())
    };
    let mut lines = Vec::new();
    let app = push(&api, Some(opi), options, &mut |line| lines.push(line)).await;
    sim.stop().await;
    (app, lines)
}

const NOT_DESIRED_YET: &str = r#"{"process_guid":"pg","instances":[],"error":"LRP pg not found"}"#;
const TWO_RUNNING: &str = r#"{"process_guid":"pg","instances":[
    {"index":1,"since":20,"state":"RUNNING"},
    {"index":0,"since":10,"state":"RUNNING"}]}"#;

#[tokio::test]
async fn push_waits_through_not_found_until_the_instances_run() {
    let (url, asked) = fake_opi(vec![
        (StatusCode::NOT_FOUND, NOT_DESIRED_YET),
        (StatusCode::NOT_FOUND, NOT_DESIRED_YET),
        (StatusCode::OK, TWO_RUNNING),
    ])
    .await;
    let (app, lines) = push_docker_app(&OpiClient::new(&url).unwrap()).await;
    let app = app.unwrap();
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 3);
    assert_eq!(asked[0], format!("{}/{}", app.guid, app.version));
    assert!(
        lines.contains(&"   0 of 2 instances running".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"   2 of 2 instances running".to_owned()),
        "{lines:?}"
    );
    let table = lines.last().unwrap();
    assert_eq!(
        table,
        "     state      since\n#0   running    10\n#1   running    20"
    );
}

#[tokio::test]
async fn push_fails_on_an_unplaceable_instance_or_another_opi_error() {
    let unplaceable = r#"{"process_guid":"pg","instances":[
        {"index":0,"since":1,"state":"UNCLAIMED","placement_error":"insufficient resources: memory"}]}"#;
    let (url, _) = fake_opi(vec![(StatusCode::OK, unplaceable)]).await;
    let (app, _) = push_docker_app(&OpiClient::new(&url).unwrap()).await;
    let error = format!("{:#}", app.unwrap_err());
    assert_eq!(
        error,
        "instances of web cannot be placed: insufficient resources: memory"
    );

    let broken = r#"{"error":{"code":"Internal","message":"etcd unavailable"}}"#;
    let (url, _) = fake_opi(vec![(StatusCode::INTERNAL_SERVER_ERROR, broken)]).await;
    let (app, _) = push_docker_app(&OpiClient::new(&url).unwrap()).await;
    let error = format!("{:#}", app.unwrap_err());
    assert!(error.contains("etcd unavailable"), "{error}");
    assert!(error.contains("--no-wait"), "{error}");

    // Nothing listens on port 9 (discard) on loopback in test environments.
    let (app, _) = push_docker_app(&OpiClient::new("http://127.0.0.1:9").unwrap()).await;
    let error = format!("{:#}", app.unwrap_err());
    assert!(
        error.starts_with("cannot watch the instances of web"),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error}");
}

#[test]
fn route_urls_go_through_the_router() {
    let router = url::Url::parse("http://localhost:8080").unwrap();
    assert_eq!(
        super::route_url("hello.localhost", &router),
        "http://hello.localhost:8080"
    );
    assert_eq!(
        super::route_url("hello.localhost/api/v1", &router),
        "http://hello.localhost:8080/api/v1"
    );
    let https = url::Url::parse("https://apps.example.com").unwrap();
    assert_eq!(
        super::route_url("hello.example.com", &https),
        "https://hello.example.com"
    );
}
