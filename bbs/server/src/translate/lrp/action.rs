//! CC's action tree: the app's launcher run, the ssh daemon beside it, and
//! walks over every run action (for the environment).
//!
//! CC's `action` is `Codependent[app run, sidecar runs…, sshd run]`, or a
//! bare run (bbs-spec §2.1). The app run is the first run of
//! [`LAUNCHER`] with arguments `[app, <start command>, <execution metadata>]`.

use bbs_models::{Action, RunAction};

use super::super::Refusal;

/// CC's launcher: runs the app's start command in the droplet or image.
pub const LAUNCHER: &str = "/tmp/lifecycle/launcher";
/// Diego's ssh daemon, run beside the app when the app allows `cf ssh`.
pub const SSHD: &str = "/tmp/lifecycle/diego-sshd";
/// Diego's health-check program, run by `monitor`.
pub const HEALTHCHECK: &str = "/tmp/lifecycle/healthcheck";
/// The app directory the launcher is given (relative to `/home/vcap`, where
/// Cube's droplet images keep the app too).
const APP_DIR_ARG: &str = "app";

/// The app process of a `DesiredLRP`, as its launcher run states it.
#[derive(Debug)]
pub struct Launch<'a> {
    /// The launcher run.
    pub run: &'a RunAction,
    /// Its path in the request (`action.codependent_action.actions[0].run_action`).
    pub field: String,
    /// The start command (empty: the droplet's own, from `staging_info.yml`,
    /// or the image's entrypoint).
    pub start_command: &'a str,
    /// The `diego-sshd` run beside it, if any.
    pub sshd: Option<Sshd>,
}

/// The ssh daemon CC runs beside an app that allows `cf ssh`.
#[derive(Debug)]
pub struct Sshd {
    /// The container port it listens on (its `-address=…:<port>`).
    pub port: Option<u16>,
}

/// The app's launcher run (and the sshd run) of `action`.
///
/// Refused: no action; actions other than a run or a codependent action of
/// runs; a second launcher run (a sidecar — Cube's backends run one process
/// per instance); runs of other programs; a launcher run Cube cannot honour
/// ([`check_app_run`]).
pub fn launch(action: Option<&Action>) -> Result<Launch<'_>, Refusal> {
    let action = action.ok_or_else(|| Refusal::new("action", "must be set"))?;
    let mut app: Option<(String, &RunAction)> = None;
    let mut sshd: Option<Sshd> = None;
    for (field, run) in top_level_runs(action)? {
        match run.path.as_str() {
            LAUNCHER if app.is_none() => app = Some((field, run)),
            LAUNCHER => return Err(sidecar(field)),
            SSHD if sshd.is_none() => sshd = Some(sshd_of(run)),
            SSHD => return Err(Refusal::new(field, "a second diego-sshd run")),
            other => {
                return Err(Refusal::new(
                    format!("{field}.path"),
                    format!("{other:?}: Cube runs only CC's launcher ({LAUNCHER})"),
                ));
            }
        }
    }
    let (field, run) = app.ok_or_else(|| {
        Refusal::new(
            "action",
            format!("has no run of {LAUNCHER} (the app process)"),
        )
    })?;
    check_app_run(&field, run)?;
    Ok(Launch {
        start_command: &run.args[1],
        run,
        field,
        sshd,
    })
}

fn sidecar(field: String) -> Refusal {
    Refusal::new(
        field,
        "a sidecar (a second launcher run): Cube's backends run one process per instance",
    )
}

/// The runs at the top of `action`: itself, or each child of a codependent
/// action, with their paths.
fn top_level_runs(action: &Action) -> Result<Vec<(String, &RunAction)>, Refusal> {
    exactly_one_kind("action", action)?;
    if let Some(run) = &action.run_action {
        return Ok(vec![("action.run_action".to_owned(), run)]);
    }
    let Some(codependent) = &action.codependent_action else {
        return Err(Refusal::new(
            "action",
            format!(
                "a {} action: Cube runs the launcher run, alone or in a codependent action",
                kinds(action).join(", ")
            ),
        ));
    };
    let mut runs = Vec::with_capacity(codependent.actions.len());
    for (i, child) in codependent.actions.iter().enumerate() {
        let field = format!("action.codependent_action.actions[{i}]");
        exactly_one_kind(&field, child)?;
        let run = child.run_action.as_ref().ok_or_else(|| {
            Refusal::new(
                &field,
                format!(
                    "a {} action: only run actions are understood here",
                    kinds(child).join(", ")
                ),
            )
        })?;
        runs.push((format!("{field}.run_action"), run));
    }
    Ok(runs)
}

/// Refuses an action that sets no kind or several (BBS: exactly one).
pub fn exactly_one_kind(field: &str, action: &Action) -> Result<(), Refusal> {
    match kinds(action).len() {
        1 => Ok(()),
        0 => Err(Refusal::new(field, "sets no action")),
        _ => Err(Refusal::new(
            field,
            format!("sets several actions ({})", kinds(action).join(", ")),
        )),
    }
}

/// The kinds `action` sets, by their field names.
pub fn kinds(action: &Action) -> Vec<&'static str> {
    [
        (action.download_action.is_some(), "download"),
        (action.upload_action.is_some(), "upload"),
        (action.run_action.is_some(), "run"),
        (action.timeout_action.is_some(), "timeout"),
        (action.emit_progress_action.is_some(), "emit_progress"),
        (action.try_action.is_some(), "try"),
        (action.parallel_action.is_some(), "parallel"),
        (action.serial_action.is_some(), "serial"),
        (action.codependent_action.is_some(), "codependent"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

/// Refuses what the launcher run asks that Cube's backends cannot do: other
/// arguments than `[app, <start command>, <metadata>]`, a working directory,
/// suppressed logs, files mounted into the process.
fn check_app_run(field: &str, run: &RunAction) -> Result<(), Refusal> {
    if run.args.len() != 3 {
        return Err(Refusal::new(
            format!("{field}.args"),
            format!(
                "the launcher takes [app dir, start command, execution metadata], got {} arguments",
                run.args.len()
            ),
        ));
    }
    if run.args[0] != APP_DIR_ARG {
        return Err(Refusal::new(
            format!("{field}.args[0]"),
            format!(
                "{:?}: Cube's images keep the app in {APP_DIR_ARG:?} (/home/vcap/app)",
                run.args[0]
            ),
        ));
    }
    if !run.dir.is_empty() {
        return Err(Refusal::new(
            format!("{field}.dir"),
            "Cube's backends start the app in its image's working directory",
        ));
    }
    if run.suppress_log_output {
        return Err(Refusal::new(
            format!("{field}.suppress_log_output"),
            "Cube's backends always keep the app's logs",
        ));
    }
    if !run.volume_mounted_files.is_empty() {
        return Err(Refusal::new(
            format!("{field}.volume_mounted_files"),
            "Cube's backends mount no files into a process",
        ));
    }
    Ok(())
}

fn sshd_of(run: &RunAction) -> Sshd {
    let port = run
        .args
        .iter()
        .find_map(|arg| arg.strip_prefix("-address="))
        .and_then(|address| address.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok());
    Sshd { port }
}

/// Every run action in `action` (nested at any depth), with its path under
/// `field`.
pub fn all_runs<'a>(field: &str, action: &'a Action, out: &mut Vec<(String, &'a RunAction)>) {
    if let Some(run) = &action.run_action {
        out.push((format!("{field}.run_action"), run));
    }
    let nested = [
        (
            "timeout_action",
            action
                .timeout_action
                .as_ref()
                .and_then(|a| a.action.as_deref()),
        ),
        (
            "try_action",
            action.try_action.as_ref().and_then(|a| a.action.as_deref()),
        ),
        (
            "emit_progress_action",
            action
                .emit_progress_action
                .as_ref()
                .and_then(|a| a.action.as_deref()),
        ),
    ];
    for (kind, child) in nested {
        if let Some(child) = child {
            all_runs(&format!("{field}.{kind}.action"), child, out);
        }
    }
    let lists = [
        (
            "serial_action",
            action.serial_action.as_ref().map(|a| &a.actions),
        ),
        (
            "parallel_action",
            action.parallel_action.as_ref().map(|a| &a.actions),
        ),
        (
            "codependent_action",
            action.codependent_action.as_ref().map(|a| &a.actions),
        ),
    ];
    for (kind, children) in lists {
        for (i, child) in children.into_iter().flatten().enumerate() {
            all_runs(&format!("{field}.{kind}.actions[{i}]"), child, out);
        }
    }
}

/// Calls `visit` on every run action in `action`, nested at any depth.
pub fn each_run_mut(action: &mut Action, visit: &mut dyn FnMut(&mut RunAction)) {
    if let Some(run) = &mut action.run_action {
        visit(run);
    }
    let nested = [
        action
            .timeout_action
            .as_mut()
            .and_then(|a| a.action.as_deref_mut()),
        action
            .try_action
            .as_mut()
            .and_then(|a| a.action.as_deref_mut()),
        action
            .emit_progress_action
            .as_mut()
            .and_then(|a| a.action.as_deref_mut()),
    ];
    for child in nested.into_iter().flatten() {
        each_run_mut(child, visit);
    }
    let lists = [
        action.serial_action.as_mut().map(|a| &mut a.actions),
        action.parallel_action.as_mut().map(|a| &mut a.actions),
        action.codependent_action.as_mut().map(|a| &mut a.actions),
    ];
    for child in lists.into_iter().flatten().flatten() {
        each_run_mut(child, visit);
    }
}
