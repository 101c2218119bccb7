//! Pure translation between OPI's domain types and BBS records: no I/O, every
//! decision testable with plain function calls.
//!
//! - [`rootfs`]: image references ⇄ `docker://` root filesystems.
//! - [`lrp`]: [`opi::model::DesiredLrp`] ⇄ BBS `DesiredLRP`, updates and
//!   scheduling infos.
//! - [`task`]: [`opi::model::Task`] → BBS task, BBS task → status/completion.
//! - [`instance`]: ActualLRPs → instances, crash events → OPI crash events.

pub mod instance;
pub mod lrp;
pub mod rootfs;
pub mod task;

use opi::model::{LrpLifecycle, RegistryCredentials};

use crate::error::DiegoError;
use crate::proto;

/// The BBS domain of Cube's LRPs (the one Cloud Controller uses).
pub const APPS_DOMAIN: &str = "cf-apps";
/// The BBS domain of Cube's tasks (the one Cloud Controller uses).
pub const TASKS_DOMAIN: &str = "cf-tasks";
/// Where a droplet image keeps the app, and so where its processes start.
pub const APP_DIR: &str = "/home/vcap/app";
/// The user droplet processes run as (the droplet image's own user).
pub const DROPLET_USER: &str = "vcap";
/// The user docker-image processes run as: Garden does not read the image's
/// `USER`, and most images have no `vcap`, so — like Cloud Controller when
/// the image names no user — `root` (inside the container's user namespace).
pub const DOCKER_USER: &str = "root";
/// Open-file limit of app processes (Cloud Controller's default).
pub const NOFILE: u64 = 16384;

/// A run action: `path args…` in `dir` as `user` with `env`.
fn run_action(
    path: &str,
    args: &[String],
    dir: &str,
    user: &str,
    env: Vec<proto::EnvironmentVariable>,
    log_source: String,
) -> proto::Action {
    proto::Action {
        run_action: Some(proto::RunAction {
            path: path.to_owned(),
            args: args.to_vec(),
            dir: dir.to_owned(),
            env,
            resource_limits: Some(proto::ResourceLimits {
                optional_nofile: Some(proto::resource_limits::OptionalNofile::Nofile(NOFILE)),
                optional_nproc: None,
            }),
            user: user.to_owned(),
            log_source,
            suppress_log_output: false,
            ..proto::RunAction::default()
        }),
        ..proto::Action::default()
    }
}

/// A static metric tag.
fn tag(value: &str) -> proto::MetricTagValue {
    proto::MetricTagValue {
        r#static: value.to_owned(),
        dynamic: 0,
    }
}

/// A dynamic metric tag (index or instance guid, filled in by the cell).
fn dynamic_tag(value: proto::metric_tag_value::DynamicValue) -> proto::MetricTagValue {
    proto::MetricTagValue {
        r#static: String::new(),
        dynamic: value as i32,
    }
}

/// What a lifecycle becomes in a BBS record.
struct Runnable {
    root_fs: String,
    action: proto::Action,
    image_username: String,
    image_password: String,
}

/// The root filesystem, run action and registry credentials that run
/// `lifecycle` (a droplet image from Cube's registry at `registry`, or a
/// docker image) with `env`.
///
/// Garden starts exactly the command it is given and never reads an image's
/// entrypoint, so a docker image without a command, or a droplet without a
/// start command, cannot be run: [`DiegoError::Unsupported`].
fn runnable(
    lifecycle: &LrpLifecycle,
    registry: &str,
    env: Vec<proto::EnvironmentVariable>,
    log_source: String,
) -> Result<Runnable, DiegoError> {
    match lifecycle {
        LrpLifecycle::Buildpack {
            droplet_guid,
            droplet_hash,
            start_command,
        } => {
            if start_command.trim().is_empty() {
                return Err(DiegoError::Unsupported(
                    "the Diego backend needs the droplet's start command".into(),
                ));
            }
            let image = opi::model::droplet_image(registry, droplet_guid, droplet_hash);
            Ok(Runnable {
                root_fs: rootfs::root_fs(&image),
                action: run_action(
                    "/bin/sh",
                    &["-c".to_owned(), start_command.clone()],
                    APP_DIR,
                    DROPLET_USER,
                    env,
                    log_source,
                ),
                image_username: String::new(),
                image_password: String::new(),
            })
        }
        LrpLifecycle::Docker {
            image,
            command,
            credentials,
        } => {
            let Some((path, args)) = command.split_first() else {
                return Err(DiegoError::Unsupported(
                    "the Diego backend needs the command of a docker image \
                     (Garden does not read the image's entrypoint)"
                        .into(),
                ));
            };
            let (image_username, image_password) = image_credentials(credentials.as_ref());
            Ok(Runnable {
                root_fs: rootfs::root_fs(image),
                action: run_action(path, args, "", DOCKER_USER, env, log_source),
                image_username,
                image_password,
            })
        }
    }
}

/// `(image_username, image_password)` of a BBS record (empty without credentials).
fn image_credentials(credentials: Option<&RegistryCredentials>) -> (String, String) {
    credentials
        .map(|c| (c.username.clone(), c.password.clone()))
        .unwrap_or_default()
}

/// The run action inside `action` (Cube writes it bare; Cloud Controller
/// wraps it in codependent/timeout actions, which are looked through).
fn find_run(action: &proto::Action) -> Option<&proto::RunAction> {
    if let Some(run) = &action.run_action {
        return Some(run);
    }
    let nested = [
        action
            .timeout_action
            .as_ref()
            .and_then(|a| a.action.as_deref()),
        action.try_action.as_ref().and_then(|a| a.action.as_deref()),
        action
            .emit_progress_action
            .as_ref()
            .and_then(|a| a.action.as_deref()),
    ];
    let lists = [
        action.serial_action.as_ref().map(|a| &a.actions),
        action.parallel_action.as_ref().map(|a| &a.actions),
        action.codependent_action.as_ref().map(|a| &a.actions),
    ];
    nested
        .into_iter()
        .flatten()
        .chain(lists.into_iter().flatten().flatten())
        .find_map(find_run)
}

/// The lifecycle a BBS record runs: a droplet image of `registry` started in
/// the app directory as `vcap` through `/bin/sh -c`, or else a docker image.
fn lifecycle_of(
    root_fs: &str,
    action: Option<&proto::Action>,
    image_username: &str,
    image_password: &str,
    registry: &str,
) -> Result<LrpLifecycle, DiegoError> {
    let image = rootfs::image(root_fs).ok_or_else(|| {
        DiegoError::Unreadable(format!("root_fs {root_fs:?} is not a docker image"))
    })?;
    let run = action
        .and_then(find_run)
        .ok_or_else(|| DiegoError::Unreadable("no run action".into()))?;
    if run.dir == APP_DIR
        && run.user == DROPLET_USER
        && run.path == "/bin/sh"
        && run.args.len() == 2
        && run.args[0] == "-c"
        && let Some((droplet_guid, droplet_hash)) = droplet_of(&image, registry)
    {
        return Ok(LrpLifecycle::Buildpack {
            droplet_guid,
            droplet_hash,
            start_command: run.args[1].clone(),
        });
    }
    let mut command = vec![run.path.clone()];
    command.extend(run.args.iter().cloned());
    let credentials = (!image_username.is_empty()).then(|| RegistryCredentials {
        username: image_username.to_owned(),
        password: image_password.to_owned(),
    });
    Ok(LrpLifecycle::Docker {
        image,
        command,
        credentials,
    })
}

/// `(droplet_guid, droplet_hash)` when `image` is a droplet image of `registry`.
fn droplet_of(image: &str, registry: &str) -> Option<(String, String)> {
    let registry = registry.trim_end_matches('/');
    let rest = if registry.is_empty() {
        image
    } else {
        image.strip_prefix(registry)?.strip_prefix('/')?
    };
    let (guid, hash) = rest.strip_prefix("cloudfoundry/")?.split_once(':')?;
    (!guid.is_empty() && !guid.contains('/') && !hash.is_empty())
        .then(|| (guid.to_owned(), hash.to_owned()))
}
