//! `cube push` and friends: drive the simulator's JSON API like `cf push`
//! drives CC — create or update the app, upload bits, stage through St8ge,
//! start, and (given OPI's URL) wait until the instances run.

mod client;
mod instances;
mod zip;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use client::{SimClient, StagingLog};
pub use instances::{Instance, InstancesResponse, LrpInstances, OpiClient, lrp_instances};
pub use zip::zip_dir;

use crate::sim::state::{AppManifest, AppState, BuildState};
use crate::sim::view::AppView;
use crate::{Error, Result};

/// What to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// App name.
    pub name: String,
    /// App directory (buildpack apps).
    pub dir: PathBuf,
    /// Instances.
    pub instances: Option<u32>,
    /// Memory in MB.
    pub memory_mb: Option<u64>,
    /// Disk in MB.
    pub disk_mb: Option<u64>,
    /// Buildpacks (names or URLs); empty = auto-detect.
    pub buildpacks: Vec<String>,
    /// Docker image; makes it a Docker app (the directory is not uploaded).
    pub docker_image: Option<String>,
    /// Start command.
    pub command: Option<String>,
    /// How long staging may take.
    pub staging_timeout: Duration,
    /// How long instances may take to run (with `opi`).
    pub start_timeout: Duration,
    /// How often to poll.
    pub poll_interval: Duration,
    /// Print the staging output as it happens (`cf push` does; `--no-wait` not).
    pub staging_logs: bool,
}

/// Pushes an app; `say` receives progress lines. Returns the app as started.
pub async fn push(
    sim: &SimClient,
    opi: Option<&OpiClient>,
    options: PushOptions,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<AppView> {
    let name = options.name.clone();
    // Check the directory before touching CC: a typo must not create an app.
    let bits = match options.docker_image {
        Some(_) => None,
        None => Some(zip_dir(&options.dir)?),
    };
    let manifest = AppManifest {
        instances: options.instances,
        memory_mb: options.memory_mb,
        disk_mb: options.disk_mb,
        buildpacks: options
            .docker_image
            .is_none()
            .then(|| options.buildpacks.clone()),
        docker_image: options.docker_image.clone(),
        command: options.command.clone(),
        ..AppManifest::default()
    };
    say(format!("Pushing app {name} to {}...", sim.base_url()));
    sim.put_app(&name, &manifest).await?;
    if let Some((zip, files)) = bits {
        say(format!(
            "Uploading {} ({files} files, {} bytes)...",
            options.dir.display(),
            zip.len()
        ));
        sim.upload_bits(&name, zip).await?;
    }
    say("Staging app...".into());
    let build = sim.stage(&name, true).await?;
    say(format!("   build {} {:?}", build.guid, build.state));
    let deadline = Instant::now() + options.staging_timeout;
    if options.staging_logs && build.state == BuildState::Staging {
        show_staging_logs(sim, &name, deadline, say).await;
    }
    let mut shown = build.state;
    let app = loop {
        let app = sim.get(&name).await?;
        let Some(current) = app.build.as_ref().filter(|b| b.guid == build.guid) else {
            return Err(Error::Push(format!(
                "app {name} was changed by someone else while staging"
            )));
        };
        if current.state != shown {
            say(format!("   build {} {:?}", current.guid, current.state));
            shown = current.state;
        }
        match current.state {
            BuildState::Staged => break app,
            BuildState::Failed => {
                let reason = current
                    .error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.id, e.message))
                    .unwrap_or_else(|| "no reason given".into());
                // One line, whatever the buildpack said.
                let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
                return Err(Error::Push(format!("staging {name} failed: {reason}")));
            }
            BuildState::Staging => {}
        }
        if Instant::now() >= deadline {
            return Err(Error::Push(format!(
                "staging {name} did not finish within {:?} (build {} is still staging)",
                options.staging_timeout, build.guid
            )));
        }
        tokio::time::sleep(options.poll_interval).await;
    };
    let app = if app.state == AppState::Started {
        app
    } else {
        say("Starting app...".into());
        sim.start(&name).await?
    };
    say(format!(
        "   desired: {} instance(s) of {} (process {})",
        app.instances, app.name, app.process_guid
    ));
    match opi {
        Some(opi) => {
            say("Waiting for instances to run...".into());
            let instances = opi
                .wait_running(&app, options.start_timeout, options.poll_interval, say)
                .await?;
            say(instances::table(&instances));
        }
        None => say(
            "   (no OPI URL given: not waiting for instances; the Sink converges the scheduler)"
                .into(),
        ),
    }
    Ok(app)
}

/// Prints app `name`'s staging output as it arrives, until staging completed
/// or `deadline`. Best effort: without a log (an older stager, a restarted
/// St8ge) push still follows the build's state.
async fn show_staging_logs(
    sim: &SimClient,
    name: &str,
    deadline: Instant,
    say: &mut (dyn FnMut(String) + Send),
) {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut log = match sim.staging_logs(name, left).await {
        Ok(log) => log,
        Err(error) => {
            say(format!("   (no staging output: {error})"));
            return;
        }
    };
    loop {
        match tokio::time::timeout_at(deadline.into(), log.next_line()).await {
            Ok(Ok(Some(line))) => say(format!("   {line}")),
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(error)) => {
                say(format!("   (staging output ended early: {error})"));
                return;
            }
        }
    }
}

/// The URL a route is reached at through `router` (the local router of
/// `cube up`, e.g. `http://localhost:8080`): `hello.localhost` →
/// `http://hello.localhost:8080`; a route's path is kept.
pub fn route_url(route: &str, router: &url::Url) -> String {
    let (host, path) = match route.split_once('/') {
        Some((host, path)) => (host, format!("/{path}")),
        None => (route, String::new()),
    };
    match router.port() {
        Some(port) => format!("{}://{host}:{port}{path}", router.scheme()),
        None => format!("{}://{host}{path}", router.scheme()),
    }
}

/// `cube apps` table: name, state, instances, memory, lifecycle, URLs (through
/// `router` when given, else the bare routes).
pub fn apps_table(apps: &[AppView], router: Option<&url::Url>) -> String {
    let mut rows = vec![[
        "name".to_owned(),
        "state".to_owned(),
        "instances".to_owned(),
        "memory".to_owned(),
        "lifecycle".to_owned(),
        "urls".to_owned(),
    ]];
    for app in apps {
        let state = match (&app.state, app.build.as_ref().map(|b| b.state)) {
            (_, Some(BuildState::Staging)) => "staging",
            (_, Some(BuildState::Failed)) if app.droplet.is_none() => "staging failed",
            (AppState::Started, _) if app.droplet.is_none() => "not staged",
            (AppState::Started, _) => "started",
            (AppState::Stopped, _) => "stopped",
        };
        let lifecycle = match &app.lifecycle {
            crate::sim::state::Lifecycle::Docker { image } => format!("docker {image}"),
            crate::sim::state::Lifecycle::Buildpack { buildpacks, .. } if buildpacks.is_empty() => {
                "buildpack (auto)".to_owned()
            }
            crate::sim::state::Lifecycle::Buildpack { buildpacks, .. } => {
                format!("buildpack {}", buildpacks.join(","))
            }
        };
        rows.push([
            app.name.clone(),
            state.to_owned(),
            app.instances.to_string(),
            format!("{}M", app.memory_mb),
            lifecycle,
            app.routes
                .iter()
                .map(|route| match router {
                    Some(router) => route_url(route, router),
                    None => route.clone(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    render(&rows)
}

fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
                .collect::<Vec<_>>()
                .join("   ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
