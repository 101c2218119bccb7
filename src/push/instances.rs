//! Waiting for an app's instances through OPI's
//! `GET /apps/{guid}/{version}/instances` ([`OpiClient::instances`]), so
//! `cube push` can say when the app runs.
//!
//! OPI answers an LRP it does not know with 404 (Eirini's body, `error` saying
//! `not found`): the Sink has not desired the new version yet, so push keeps
//! waiting. Any other failure ends the wait.

use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use cc::sim::view::AppView;
use opi::http::OpiClient;
use opi::model::LrpId;
use opi::model::wire::{InstanceBody, InstancesResponse};

use super::PushOptions;

/// Polls until every desired instance of `app` runs, one cannot be placed, or
/// `options.start_timeout` passes; `say` hears how many run when that changes.
pub async fn wait_running(
    opi: &OpiClient,
    app: &AppView,
    options: &PushOptions,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<Vec<InstanceBody>> {
    let timeout = options.start_timeout;
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let instances = instances(opi, app).await?;
        let running = instances.iter().filter(|i| i.state == "RUNNING").count();
        let summary = format!("   {running} of {} instances running", app.instances);
        if summary != last {
            say(summary.clone());
            last = summary;
        }
        if running >= app.instances as usize {
            return Ok(instances);
        }
        if let Some(error) = instances
            .iter()
            .map(|i| &i.placement_error)
            .find(|e| !e.is_empty())
        {
            bail!("instances of {} cannot be placed: {error}", app.name);
        }
        if Instant::now() >= deadline {
            bail!(
                "{running} of {} instances of {} running after {timeout:?}",
                app.instances,
                app.name
            );
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

/// One look at `app`'s instances. An LRP OPI does not know yet has none.
async fn instances(opi: &OpiClient, app: &AppView) -> Result<Vec<InstanceBody>> {
    let id = LrpId::new(&app.guid, &app.version);
    match opi.instances(&id).await {
        Ok(InstancesResponse {
            instances,
            error: None,
            ..
        }) => Ok(instances),
        Ok(InstancesResponse {
            error: Some(error), ..
        }) if error.contains("not found") => Ok(Vec::new()),
        Err(opi::Error::NotFound(_)) => Ok(Vec::new()),
        Ok(InstancesResponse {
            error: Some(error), ..
        }) => Err(anyhow!(
            "OPI cannot report the instances of {} (process {}): {error}",
            app.name,
            app.process_guid
        )),
        Err(error) => Err(anyhow!(
            "cannot watch the instances of {} (process {}) through OPI: {error} \
             (pass --no-wait to push without waiting)",
            app.name,
            app.process_guid
        )),
    }
}

/// `cf push`-style instance table.
pub fn table(instances: &[InstanceBody]) -> String {
    let mut lines = vec!["     state      since".to_owned()];
    let mut sorted: Vec<&InstanceBody> = instances.iter().collect();
    sorted.sort_by_key(|i| i.index);
    for instance in sorted {
        lines.push(format!(
            "#{:<3} {:<10} {}",
            instance.index,
            instance.state.to_lowercase(),
            instance.since
        ));
    }
    lines.join("\n")
}
