//! The app's environment: CC's `environment_variables` and the launcher
//! run's `env` → one OPI [`Environment`]; and the stored copy's values
//! removed and filled back.
//!
//! In a Diego container the run's variables are added to the container's
//! (`environment_variables`), the run's winning; OPI has one map, so it holds
//! what the app sees. CC puts the lifecycle's defaults in
//! `environment_variables` (`LANG`, …) and the app's variables (service
//! credentials among them) in the run's `env`, and gives `diego-sshd` the
//! same `env` as the app.
//!
//! The stored copy keeps every variable's name in its place but no value;
//! reads fill each value back from the OPI environment by name. A variable of
//! `environment_variables` that the app's `env` overrides with another value
//! therefore reads back with the value the app sees.

use std::collections::BTreeMap;

use bbs_models::{DesiredLrp, EnvironmentVariable};
use opi::model::{Environment, LrpLifecycle};

use super::action::{Launch, all_runs, each_run_mut};
use crate::translate::Refusal;

/// The environment the app sees, or a refusal naming a variable: a blank
/// name or one with `=` or NUL, a name listed twice in one list with
/// different values, a run beside the app (sshd) whose variable differs from
/// the app's (Cube keeps one environment per LRP).
pub fn environment(lrp: &DesiredLrp, launch: &Launch<'_>) -> Result<Environment, Refusal> {
    let mut map = BTreeMap::new();
    insert_list(
        &mut map,
        &lrp.environment_variables,
        "environment_variables",
    )?;
    let mut own = BTreeMap::new();
    insert_list(&mut own, &launch.run.env, &format!("{}.env", launch.field))?;
    map.extend(own);
    for (field, run) in other_runs(lrp, &launch.field) {
        for (i, var) in run.env.iter().enumerate() {
            let field = format!("{field}.env[{i}]");
            check_name(&format!("{field}.name"), &var.name)?;
            if map.get(&var.name) != Some(&var.value) {
                return Err(Refusal::new(
                    field,
                    format!(
                        "{} differs from the app's environment (Cube keeps one environment per LRP)",
                        var.name
                    ),
                ));
            }
        }
    }
    Ok(Environment::new(map))
}

/// Every run in `action`, `setup` and `monitor` but the app's launcher run.
fn other_runs<'a>(
    lrp: &'a DesiredLrp,
    app_field: &str,
) -> Vec<(String, &'a bbs_models::RunAction)> {
    let mut runs = Vec::new();
    for (field, action) in [
        ("action", &lrp.action),
        ("setup", &lrp.setup),
        ("monitor", &lrp.monitor),
    ] {
        if let Some(action) = action {
            all_runs(field, action, &mut runs);
        }
    }
    runs.retain(|(field, _)| field != app_field);
    runs
}

/// Adds `list` to `map`; a name twice in `list` must keep its value.
fn insert_list(
    map: &mut BTreeMap<String, String>,
    list: &[EnvironmentVariable],
    field: &str,
) -> Result<(), Refusal> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, var) in list.iter().enumerate() {
        check_name(&format!("{field}[{i}].name"), &var.name)?;
        if let Some(earlier) = seen.insert(&var.name, &var.value)
            && earlier != var.value
        {
            return Err(Refusal::new(
                format!("{field}[{i}]"),
                format!("{} is listed twice with different values", var.name),
            ));
        }
        map.insert(var.name.clone(), var.value.clone());
    }
    Ok(())
}

/// The BBS's rule (a name) and OPI's (no `=`, no NUL).
fn check_name(field: &str, name: &str) -> Result<(), Refusal> {
    if name.is_empty() {
        return Err(Refusal::new(field, "name cannot be blank"));
    }
    if name.contains('=') || name.contains('\0') {
        return Err(Refusal::new(
            field,
            format!("{name:?} must not contain '=' or NUL"),
        ));
    }
    Ok(())
}

/// Removes every secret from `lrp`: the value of every environment variable
/// (container and runs) and the registry credentials.
pub fn remove_secrets(lrp: &mut DesiredLrp) {
    fill(lrp, &|_| String::new());
    lrp.image_username.clear();
    lrp.image_password.clear();
}

/// Fills back what [`remove_secrets`] removed: values by name from
/// `environment`, credentials from a docker `lifecycle`.
pub fn restore_secrets(lrp: &mut DesiredLrp, environment: &Environment, lifecycle: &LrpLifecycle) {
    fill(lrp, &|name| {
        environment.get(name).cloned().unwrap_or_default()
    });
    if let LrpLifecycle::Docker {
        credentials: Some(credentials),
        ..
    } = lifecycle
    {
        lrp.image_username.clone_from(&credentials.username);
        lrp.image_password.clone_from(&credentials.password);
    }
}

/// Sets every environment variable's value to `value(name)`.
fn fill(lrp: &mut DesiredLrp, value: &dyn Fn(&str) -> String) {
    for var in &mut lrp.environment_variables {
        var.value = value(&var.name);
    }
    let actions = [&mut lrp.action, &mut lrp.setup, &mut lrp.monitor];
    for action in actions.into_iter().flatten() {
        each_run_mut(action, &mut |run| {
            for var in &mut run.env {
                var.value = value(&var.name);
            }
        });
    }
}
