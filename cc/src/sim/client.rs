//! A client for the simulator's JSON API (`/sim/...`): what `cube push`,
//! `cube apps`, `cube scale`, `cube start`, `cube stop` and `cube delete`
//! drive, and how tests and St8ge's tests put apps into the simulator.

use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;

use super::state::{AppManifest, Build, Scale};
use super::view::{AppList, AppView};
use crate::model::CcErrorBody;
use crate::{Error, Result};

/// Talks to `cube cc-sim`'s JSON API.
#[derive(Debug, Clone)]
pub struct SimClient {
    http: reqwest::Client,
    base: Url,
}

impl SimClient {
    /// A client for the simulator at `base_url`.
    pub fn new(base_url: &str) -> Result<Self> {
        Self::with_access(base_url, &cube_runtime::access::ClientAccess::default())
    }

    /// A client for the simulator at `base_url` with Cube's access settings
    /// (the `/sim` API requires them when the simulator does).
    pub fn with_access(
        base_url: &str,
        access: &cube_runtime::access::ClientAccess,
    ) -> Result<Self> {
        let base = crate::client::urls::parse(base_url)?;
        let http = access
            .builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| Error::ClientSetup(e.to_string()))?;
        Ok(SimClient { http, base })
    }

    /// The simulator's URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Every app.
    pub async fn list(&self) -> Result<Vec<AppView>> {
        let list: AppList = self.call(Method::GET, "/sim/apps", None).await?;
        Ok(list.apps)
    }

    /// One app.
    pub async fn get(&self, name: &str) -> Result<AppView> {
        self.call(Method::GET, &format!("/sim/apps/{name}"), None)
            .await
    }

    /// Creates or updates an app.
    pub async fn put_app(&self, name: &str, manifest: &AppManifest) -> Result<AppView> {
        let body = serde_json::to_vec(manifest)
            .map_err(|e| Error::Push(format!("cannot encode the manifest: {e}")))?;
        self.call(Method::PUT, &format!("/sim/apps/{name}"), Some(body))
            .await
    }

    /// Uploads app bits (a zip).
    pub async fn upload_bits(&self, name: &str, zip: Vec<u8>) -> Result<AppView> {
        self.call(Method::PUT, &format!("/sim/apps/{name}/bits"), Some(zip))
            .await
    }

    /// Asks the simulator to stage the app (through its stager).
    pub async fn stage(&self, name: &str, start: bool) -> Result<Build> {
        let query = if start { "?start=true" } else { "" };
        self.call(
            Method::POST,
            &format!("/sim/apps/{name}/stage{query}"),
            None,
        )
        .await
    }

    /// The latest build's staging log, following it until staging completed
    /// (at most `timeout`); read it with [`StagingLog::next_line`].
    pub async fn staging_logs(&self, name: &str, timeout: Duration) -> Result<StagingLog> {
        let url = crate::client::urls::join(&self.base, &format!("/sim/apps/{name}/staging_logs"));
        let response = self
            .http
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.unwrap_or_default();
            return Err(Error::Push(error_message(&bytes)));
        }
        Ok(StagingLog {
            response,
            pending: Vec::new(),
            ended: false,
        })
    }

    /// Starts an app.
    pub async fn start(&self, name: &str) -> Result<AppView> {
        self.call(Method::POST, &format!("/sim/apps/{name}/start"), None)
            .await
    }

    /// Stops an app.
    pub async fn stop(&self, name: &str) -> Result<AppView> {
        self.call(Method::POST, &format!("/sim/apps/{name}/stop"), None)
            .await
    }

    /// Scales an app.
    pub async fn scale(&self, name: &str, scale: &Scale) -> Result<AppView> {
        let body = serde_json::to_vec(scale)
            .map_err(|e| Error::Push(format!("cannot encode the scale request: {e}")))?;
        self.call(Method::PUT, &format!("/sim/apps/{name}/scale"), Some(body))
            .await
    }

    /// Deletes an app.
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.send(Method::DELETE, &format!("/sim/apps/{name}"), None)
            .await
            .map(drop)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let bytes = self.send(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Push(format!(
                "CC at {} answered {path} with something unexpected: {e}",
                self.base
            ))
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<bytes::Bytes> {
        let url = crate::client::urls::join(&self.base, path);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::Push(format!("reading CC's answer: {}", root_cause(&e))))?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(Error::Push(error_message(&bytes)))
    }

    fn unreachable(&self, error: &reqwest::Error) -> Error {
        Error::Push(format!(
            "cannot reach CC at {}: {}",
            crate::client::urls::redact(&self.base),
            root_cause(error)
        ))
    }
}

/// CC's error description, or the body as text.
fn error_message(bytes: &[u8]) -> String {
    match serde_json::from_slice::<CcErrorBody>(bytes) {
        Ok(body) => body.description,
        Err(_) => String::from_utf8_lossy(bytes).trim().to_owned(),
    }
}

/// A staging log being read line by line as the stager sends it.
#[derive(Debug)]
pub struct StagingLog {
    response: reqwest::Response,
    pending: Vec<u8>,
    ended: bool,
}

impl StagingLog {
    /// The next line (without its newline); `None` once staging completed.
    pub async fn next_line(&mut self) -> Result<Option<String>> {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Ok(Some(String::from_utf8_lossy(&line[..end]).into_owned()));
            }
            if self.ended {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.pending);
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.pending.extend_from_slice(&chunk),
                Ok(None) => self.ended = true,
                Err(e) => {
                    return Err(Error::Push(format!(
                        "reading the staging log: {}",
                        root_cause(&e)
                    )));
                }
            }
        }
    }
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
