//! End-to-end staging on the local backend, in one process: the CC simulator,
//! the Registry, OPI over `opi_local::LocalScheduler` and St8ge, each on
//! 127.0.0.1:0. The staging task is three OPI steps, each a process of the
//! built `cube` (`cube stage download`, `build`, `upload`) in the task's
//! scratch dir.
//!
//! - the python example stages with the shipped buildpacks (none named), its
//!   droplet reaches CC and the Registry;
//! - a Docker app staged from that droplet's image reports the image config;
//! - a failing buildpack fails the build with `BuildpackCompileFailed` naming it;
//! - cancelling a running staging stops the task and reports the cancellation;
//! - a staging that outlives St8ge's staging timeout is reported to CC as
//!   `StagingTimeExpired` once, and its task is stopped.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cc::sim::client::SimClient;
use cc::sim::state::{AppManifest, BuildState};
use cube_runtime::Service;
use opi::Scheduler;

struct Cube {
    cc: SimClient,
    cc_url: String,
    stager_url: String,
    registry_url: String,
    opi: opi::http::OpiClient,
    service: Service,
    local: opi_local::LocalScheduler,
    _dir: tempfile::TempDir,
}

impl Cube {
    async fn stop(self) {
        self.service.shutdown.cancel();
        self.local.shutdown().await;
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(dir: &Path, name: &str, body: &str) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let path = dir.join("bin").join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The shipped buildpacks plus `broken` (finalize exits 9) and `slow`
/// (finalize sleeps), in a directory of their own.
fn buildpacks(root: &Path) -> PathBuf {
    let dir = root.join("buildpacks");
    for name in ["python", "binary"] {
        for entry in std::fs::read_dir(repo().join("buildpacks").join(name).join("bin")).unwrap() {
            let entry = entry.unwrap();
            let body = std::fs::read_to_string(entry.path()).unwrap();
            let body = body.trim_start_matches("#!/bin/sh\n");
            script(&dir.join(name), entry.file_name().to_str().unwrap(), body);
        }
    }
    std::fs::copy(repo().join("buildpacks/order"), dir.join("order")).unwrap();
    script(&dir.join("broken"), "detect", "exit 0");
    script(
        &dir.join("broken"),
        "finalize",
        "echo 'broken buildpack: giving up' >&2\nexit 9",
    );
    script(&dir.join("slow"), "detect", "exit 0");
    script(
        &dir.join("slow"),
        "finalize",
        "echo started > \"$1/../slow-started\"\nsleep 120",
    );
    dir
}

async fn start() -> Cube {
    start_timing_out_after(Duration::from_secs(300)).await
}

async fn start_timing_out_after(staging_timeout: Duration) -> Cube {
    let dir = tempfile::tempdir().unwrap();
    let bind = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
    let (cc_l, opi_l, stager_l, registry_l) =
        (bind().await, bind().await, bind().await, bind().await);
    let url = |l: &tokio::net::TcpListener| format!("http://{}", l.local_addr().unwrap());
    let (cc_url, opi_url, stager_url, registry_url) =
        (url(&cc_l), url(&opi_l), url(&stager_l), url(&registry_l));
    let service = Service::new(cube_runtime::Shutdown::new());

    let mut registry = registry::Config::new(dir.path().join("registry"));
    registry.cc_url = Some(cc_url.clone());
    tokio::spawn(registry::run(registry, registry_l, service.clone()));

    let mut sim = cc::sim::Config::new(dir.path().join("cc-sim"));
    sim.stager_url = Some(stager_url.clone());
    tokio::spawn(cc::sim::run(sim, cc_l, service.clone()));

    let http = opi::http::http_client_builder().build().unwrap();
    let droplets = opi_local::droplet::RegistryDroplets::new(
        reqwest::Url::parse(&registry_url).unwrap(),
        http,
    );
    let local = opi_local::LocalScheduler::start(
        opi_local::LocalConfig {
            root: dir.path().join("local"),
            host_exec_image: Some(stager::service::DEFAULT_STAGER_IMAGE.into()),
        },
        Arc::new(droplets),
    )
    .await
    .unwrap();
    let mut cc_callbacks = reqwest::Url::parse(&cc_url).unwrap();
    cc_callbacks.set_username(cc::client::DEFAULT_USER).unwrap();
    cc_callbacks
        .set_password(Some(cc::client::DEFAULT_PASSWORD))
        .unwrap();
    let opi_config = opi::service::ServiceConfig {
        api: opi::http::ApiConfig::default(),
        cc_url: Some(cc_callbacks),
        access: service.access.clone(),
    };
    let scheduler: Arc<dyn Scheduler> = Arc::new(local.clone());
    let metrics = service.metrics.clone();
    let shutdown = service.shutdown.clone();
    tokio::spawn(async move {
        opi::service::run(opi_config, scheduler, opi_l, &metrics, shutdown).await
    });

    let mut config = stager::Config::new(opi_url.clone());
    config.cube_binary = env!("CARGO_BIN_EXE_cube").into();
    config.registry_url = Some(reqwest::Url::parse(&registry_url).unwrap());
    config.cc_url = Some(reqwest::Url::parse(&cc_url).unwrap());
    config.buildpacks_dir = Some(buildpacks(dir.path()));
    config.staging_timeout = staging_timeout;
    tokio::spawn(stager::run(
        config,
        stager_l,
        Service::new(service.shutdown.clone()),
    ));

    Cube {
        cc: SimClient::new(&cc_url).unwrap(),
        cc_url,
        stager_url,
        registry_url,
        opi: opi::http::OpiClient::new(&opi_url).unwrap(),
        service,
        local,
        _dir: dir,
    }
}

/// Creates app `name` from `dir` with `buildpacks` and stages it (not started).
async fn push(cube: &Cube, name: &str, dir: &Path, buildpacks: &[&str]) -> String {
    let manifest = AppManifest {
        buildpacks: Some(buildpacks.iter().map(|b| (*b).to_owned()).collect()),
        ..AppManifest::default()
    };
    cube.cc.put_app(name, &manifest).await.unwrap();
    // The directory as a zip, by St8ge's packer: `cube push`'s `zip_dir` is in
    // the binary, out of this test's reach, and any zip of the files will do.
    let zip = stager::zip::pack_dir(dir).unwrap();
    cube.cc.upload_bits(name, zip).await.unwrap();
    cube.cc.stage(name, false).await.unwrap().guid
}

/// Waits (at most 3 minutes) for app `name`'s latest build to leave `Staging`.
async fn finished_build(cube: &Cube, name: &str) -> cc::sim::state::Build {
    for _ in 0..900 {
        let app = cube.cc.get(name).await.unwrap();
        if let Some(build) = app.build
            && build.state != BuildState::Staging
        {
            return build;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("staging of {name} did not finish within 3 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_example_stages_with_the_shipped_buildpacks() {
    let cube = start().await;
    let build_guid = push(&cube, "hello", &repo().join("examples/python-hello"), &[]).await;
    let build = finished_build(&cube, "hello").await;
    assert_eq!(build.state, BuildState::Staged, "error: {:?}", build.error);
    let app = cube.cc.get("hello").await.unwrap();
    let droplet = app.droplet.unwrap();
    assert_eq!(droplet.process_types["web"], "python3 app.py");
    assert_eq!(droplet.detected_buildpack.as_deref(), Some("python"));
    let hash = droplet.hash.unwrap();
    assert_eq!(build.uploaded_droplet.as_ref().unwrap().0, hash);

    // The Registry holds the droplet image the Sink will ask for.
    let manifest = reqwest::Client::new()
        .get(format!(
            "{}/v2/cloudfoundry/{}/manifests/{hash}",
            cube.registry_url, app.guid
        ))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), 200, "droplet image in the registry");

    // The droplet CC stored is laid out as CF's.
    let bytes = reqwest::get(format!(
        "{}/internal/v2/droplets/{}/{hash}/download",
        cube.cc_url, app.guid
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    for entry in archive.entries().unwrap() {
        names.push(entry.unwrap().path().unwrap().display().to_string());
    }
    for expected in [
        "app/app.py",
        "profile.d/python.sh",
        "staging_info.yml",
        "tmp/",
        "logs/",
        "deps/0",
    ] {
        assert!(
            names.iter().any(|n| n.trim_start_matches("./") == expected),
            "{expected} not in {names:?}"
        );
    }

    // Docker staging reads an image config: use the droplet image just made.
    let image = format!(
        "{}/cloudfoundry/{}:{hash}",
        cube.registry_url.trim_start_matches("http://"),
        app.guid
    );
    let manifest = AppManifest {
        docker_image: Some(image.clone()),
        ..AppManifest::default()
    };
    cube.cc.put_app("from-image", &manifest).await.unwrap();
    cube.cc.stage("from-image", false).await.unwrap();
    let build = finished_build(&cube, "from-image").await;
    assert_eq!(build.state, BuildState::Staged, "error: {:?}", build.error);
    let droplet = cube.cc.get("from-image").await.unwrap().droplet.unwrap();
    assert_eq!(droplet.docker_image.as_deref(), Some(image.as_str()));
    let metadata: serde_json::Value = serde_json::from_str(&droplet.execution_metadata).unwrap();
    assert_eq!(metadata["user"], "vcap", "{metadata}");
    assert_eq!(metadata["workdir"], "/home/vcap/app", "{metadata}");

    // The task finished (it reported itself; OPI's success callback is ignored).
    let task = cube.opi.get_task(&build_guid).await.unwrap();
    assert_eq!(task.state, "COMPLETED");
    assert!(!task.failed, "{}", task.failure_reason);
    cube.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_buildpack_fails_the_build_naming_it() {
    let cube = start().await;
    let guid = push(
        &cube,
        "broken-app",
        &repo().join("examples/procfile-hello"),
        &["broken"],
    )
    .await;
    let build = finished_build(&cube, "broken-app").await;
    assert_eq!(build.state, BuildState::Failed);
    let error = build.error.unwrap();
    assert_eq!(error.id, "BuildpackCompileFailed");
    assert!(error.message.contains("broken"), "{}", error.message);
    assert!(error.message.contains("status 9"), "{}", error.message);
    let app = cube.cc.get("broken-app").await.unwrap();
    assert!(app.droplet.is_none(), "no droplet from a failed build");

    // St8ge's log holds every step's output (whether the steps ran as one
    // process or several), the buildpack's stderr included; it has ended.
    let url = format!("{}/stage/{guid}/logs", cube.stager_url);
    let read = async { reqwest::get(url).await.unwrap().text().await.unwrap() };
    let log = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("a finished staging's log ends");
    for line in [
        "-----> Downloading app bits",
        "-----> Running finalize of buildpack broken",
        "broken buildpack: giving up",
        "-----> Staging failed (BuildpackCompileFailed)",
    ] {
        assert!(log.contains(line), "{line:?} not in the log:\n{log}");
    }
    cube.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_stops_the_task_and_reports() {
    let cube = start().await;
    let guid = push(
        &cube,
        "slow-app",
        &repo().join("examples/procfile-hello"),
        &["slow"],
    )
    .await;
    // Wait until the slow buildpack is running (at most 2 minutes).
    let marker = cube
        ._dir
        .path()
        .join("local/tasks")
        .join(&guid)
        .join("slow-started");
    for _ in 0..600 {
        if marker.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(marker.exists(), "the slow buildpack never started");
    let response = reqwest::Client::new()
        .delete(format!("{}/stage/{guid}", cube.stager_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let build = finished_build(&cube, "slow-app").await;
    assert_eq!(build.state, BuildState::Failed);
    let error = build.error.unwrap();
    assert_eq!(error.id, "StagingError");
    assert!(error.message.contains("cancelled"), "{}", error.message);
    let task = cube.opi.get_task(&guid).await.unwrap();
    assert_eq!(task.state, "COMPLETED");
    assert!(task.failed);
    // Cancelling again: the task is done; OPI still knows it, so no 404 here,
    // but an unknown guid is.
    let response = reqwest::Client::new()
        .delete(format!("{}/stage/no-such-staging", cube.stager_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    cube.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_staging_past_its_timeout_is_reported_once_and_stopped() {
    let cube = start_timing_out_after(Duration::from_secs(3)).await;
    let guid = push(
        &cube,
        "late-app",
        &repo().join("examples/procfile-hello"),
        &["slow"],
    )
    .await;
    let build = finished_build(&cube, "late-app").await;
    assert_eq!(build.state, BuildState::Failed);
    let error = build.error.unwrap();
    assert_eq!(error.id, "StagingTimeExpired", "{}", error.message);
    assert!(error.message.contains("3s"), "{}", error.message);
    // The task is cancelled (exactly-once reporting to CC is the router
    // test's: this CC refuses a second completion anyway).
    let mut state = String::new();
    for _ in 0..300 {
        let task = cube.opi.get_task(&guid).await.unwrap();
        if task.state == "COMPLETED" {
            assert!(task.failed);
            assert_eq!(task.failure_reason, "cancelled");
            state.clear();
            break;
        }
        state = task.state;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(state.is_empty(), "the task is still {state}");
    assert!(
        !cube
            ._dir
            .path()
            .join("local/tasks")
            .join(&guid)
            .join("droplet.tgz")
            .exists(),
        "the build step was stopped before it wrote a droplet"
    );
    cube.stop().await;
}

/// The process group leaders among this process's children whose working
/// directory is under `dir` (a staging task's processes).
fn task_leaders(dir: &Path) -> Vec<i32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .unwrap_or("");
            ppid == me
                && std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_staging_task_is_a_staging_error() {
    let cube = start().await;
    let guid = push(
        &cube,
        "killed-app",
        &repo().join("examples/procfile-hello"),
        &["slow"],
    )
    .await;
    let scratch = cube._dir.path().join("local/tasks").join(&guid);
    let marker = scratch.join("slow-started");
    for _ in 0..600 {
        if marker.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(marker.exists(), "the slow buildpack never started");
    // SIGKILL the task's process, as the OOM killer would: nothing of the
    // task gets to report, so the report must come from the scheduler's side.
    let leaders = task_leaders(&scratch);
    assert!(
        !leaders.is_empty(),
        "no task process under {}",
        scratch.display()
    );
    for pid in &leaders {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    let build = finished_build(&cube, "killed-app").await;
    assert_eq!(build.state, BuildState::Failed);
    let error = build.error.unwrap();
    assert_eq!(error.id, "StagingError", "{}", error.message);
    assert!(!error.message.trim().is_empty());
    let app = cube.cc.get("killed-app").await.unwrap();
    assert!(app.droplet.is_none(), "no droplet from a killed staging");
    let task = cube.opi.get_task(&guid).await.unwrap();
    assert_eq!(task.state, "COMPLETED");
    assert!(task.failed);
    cube.stop().await;
}
