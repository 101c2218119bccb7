//! The client side of `cube push` and friends: drive the simulated CC's `/sim`
//! JSON API ([`SimClient`]) like `cf push` drives CC — create or update the
//! app, upload bits, stage through St8ge, start, and (given OPI's URL) wait
//! until the instances run. This is what the `cf` CLI does on the user's
//! machine, so it lives with the CLI; CC's side is in the `cc` crate.

mod bits;
mod instances;
mod table;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use cc::sim::SimClient;
use cc::sim::state::{AppManifest, AppState, Build, BuildState};
use cc::sim::view::AppView;
use opi::http::OpiClient;

pub use table::{apps_table, route_url};

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

impl PushOptions {
    /// The app as the simulator's `PUT /sim/apps/{name}` takes it.
    fn manifest(&self) -> AppManifest {
        AppManifest {
            instances: self.instances,
            memory_mb: self.memory_mb,
            disk_mb: self.disk_mb,
            buildpacks: self.docker_image.is_none().then(|| self.buildpacks.clone()),
            docker_image: self.docker_image.clone(),
            command: self.command.clone(),
            ..AppManifest::default()
        }
    }
}

/// Pushes an app; `say` receives progress lines. Returns the app as started.
/// With `opi`, waits until its instances run (see [`instances::wait_running`]).
pub async fn push(
    sim: &SimClient,
    opi: Option<&OpiClient>,
    options: PushOptions,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<AppView> {
    let name = options.name.as_str();
    // Check the directory before touching CC: a typo must not create an app.
    let bits = match options.docker_image {
        Some(_) => None,
        None => Some(bits::zip_dir(&options.dir)?),
    };
    say(format!("Pushing app {name} to {}...", sim.base_url()));
    sim.put_app(name, &options.manifest()).await?;
    if let Some((zip, files)) = bits {
        say(format!(
            "Uploading {} ({files} files, {} bytes)...",
            options.dir.display(),
            zip.len()
        ));
        sim.upload_bits(name, zip).await?;
    }
    let app = stage(sim, &options, say).await?;
    let app = if app.state == AppState::Started {
        app
    } else {
        say("Starting app...".into());
        sim.start(name).await?
    };
    say(format!(
        "   desired: {} instance(s) of {} (process {})",
        app.instances, app.name, app.process_guid
    ));
    match opi {
        Some(opi) => {
            say("Waiting for instances to run...".into());
            let instances = instances::wait_running(opi, &app, &options, say).await?;
            say(instances::table(&instances));
        }
        None => say(
            "   (no OPI URL given: not waiting for instances; the Sink converges the scheduler)"
                .into(),
        ),
    }
    Ok(app)
}

/// Stages the app with `start=true` and follows its build (printing the
/// staging output, when asked) until it is staged, failed, or the staging
/// timeout passed. Returns the app as it is once staged.
async fn stage(
    sim: &SimClient,
    options: &PushOptions,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<AppView> {
    let name = options.name.as_str();
    say("Staging app...".into());
    let build = sim.stage(name, true).await?;
    say(format!("   build {} {:?}", build.guid, build.state));
    let deadline = Instant::now() + options.staging_timeout;
    if options.staging_logs && build.state == BuildState::Staging {
        show_staging_logs(sim, name, deadline, say).await;
    }
    let mut shown = build.state;
    loop {
        let app = sim.get(name).await?;
        let current = this_build(&app, &build)?;
        if current.state != shown {
            say(format!("   build {} {:?}", current.guid, current.state));
            shown = current.state;
        }
        match current.state {
            BuildState::Staged => return Ok(app),
            BuildState::Failed => return Err(staging_failed(name, current)),
            BuildState::Staging => {}
        }
        if Instant::now() >= deadline {
            bail!(
                "staging {name} did not finish within {:?} (build {} is still staging)",
                options.staging_timeout,
                build.guid
            );
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

/// The app's latest build if it is still `build`, the one push started.
fn this_build<'a>(app: &'a AppView, build: &Build) -> Result<&'a Build> {
    app.build
        .as_ref()
        .filter(|b| b.guid == build.guid)
        .ok_or_else(|| anyhow!("app {} was changed by someone else while staging", app.name))
}

/// Why staging `name` failed, in one line whatever the buildpack said.
fn staging_failed(name: &str, build: &Build) -> anyhow::Error {
    let reason = build
        .error
        .as_ref()
        .map(|e| format!("{}: {}", e.id, e.message))
        .unwrap_or_else(|| "no reason given".into());
    let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    anyhow!("staging {name} failed: {reason}")
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
