//! Waiting for instances through OPI's Eirini-compatible API
//! (`GET /apps/{guid}/{version}/instances`), so `cube push` can say when the
//! app runs. Own types: this crate does not depend on `opi`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sim::view::AppView;
use crate::{Error, Result};

/// `GET /apps/{guid}/{version}/instances` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancesResponse {
    /// The LRP.
    #[serde(default)]
    pub process_guid: String,
    /// Its instances.
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// Error text, if OPI sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Index.
    pub index: u32,
    /// Since when (Unix seconds or nanoseconds, as the backend reports).
    #[serde(default)]
    pub since: i64,
    /// `RUNNING`, `CLAIMED`, `UNCLAIMED`, `CRASHED`, `UNKNOWN`.
    pub state: String,
    /// Why it cannot be placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_error: Option<String>,
}

/// Polls OPI for an app's instances.
#[derive(Debug, Clone)]
pub struct OpiClient {
    http: reqwest::Client,
    base: url::Url,
}

impl OpiClient {
    /// A client for OPI at `base_url`.
    pub fn new(base_url: &str) -> Result<Self> {
        Self::with_access(base_url, &cube_runtime::access::ClientAccess::default())
    }

    /// A client for OPI at `base_url` with Cube's access settings.
    pub fn with_access(
        base_url: &str,
        access: &cube_runtime::access::ClientAccess,
    ) -> Result<Self> {
        let base = crate::client::urls::parse(base_url)?;
        let http = access
            .builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::ClientSetup(e.to_string()))?;
        Ok(OpiClient { http, base })
    }

    /// One look at the instances; 404 (not desired yet) is an empty list.
    pub async fn instances(&self, app: &AppView) -> Result<Vec<Instance>> {
        let path = format!("/apps/{}/{}/instances", app.guid, app.version);
        let url = crate::client::urls::join(&self.base, &path);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| {
                Error::Push(format!(
                    "cannot reach OPI at {} to watch the instances: {e} (pass --no-wait to push without waiting)",
                    self.base
                ))
            })?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !response.status().is_success() {
            return Err(Error::Push(format!(
                "OPI answered {path} with {}",
                response.status()
            )));
        }
        let body: InstancesResponse = response
            .json()
            .await
            .map_err(|e| Error::Push(format!("OPI's answer to {path}: {e}")))?;
        Ok(body.instances)
    }

    /// Polls until every desired instance runs, one crashes for good, or the
    /// timeout passes.
    pub async fn wait_running(
        &self,
        app: &AppView,
        timeout: Duration,
        interval: Duration,
        say: &mut (dyn FnMut(String) + Send),
    ) -> Result<Vec<Instance>> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            let instances = self.instances(app).await?;
            let running = instances.iter().filter(|i| i.state == "RUNNING").count();
            let summary = format!("   {running} of {} instances running", app.instances);
            if summary != last {
                say(summary.clone());
                last = summary;
            }
            if running >= app.instances as usize {
                return Ok(instances);
            }
            if let Some(error) = instances.iter().find_map(|i| i.placement_error.clone()) {
                return Err(Error::Push(format!(
                    "instances of {} cannot be placed: {error}",
                    app.name
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::Push(format!(
                    "{} of {} instances of {} running after {timeout:?}",
                    running, app.instances, app.name
                )));
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// `cf push`-style instance table.
pub fn table(instances: &[Instance]) -> String {
    let mut lines = vec!["     state      since".to_owned()];
    let mut sorted: Vec<&Instance> = instances.iter().collect();
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
