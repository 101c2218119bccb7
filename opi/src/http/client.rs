//! [`OpiClient`]: a reqwest client for the OPI HTTP API.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::model::wire::{
    DesireLrpRequest, DesiredLrpBody, DesiredLrpResponse, ErrorResponse, InstancesResponse,
    SchedulingInfoBody, SchedulingInfosResponse, TaskRequest, TaskResponse, UpdateLrpRequest,
};
use crate::model::{DesiredLrp, LrpId, Task};

/// A client for one OPI server. Cheap to clone (connections are pooled).
///
/// Errors come back as the server's [`Error`] variant (a 404 is
/// [`Error::NotFound`], a 400 is [`Error::BadBody`] with the server's message);
/// a server that cannot be reached or times out is [`Error::Unavailable`].
#[derive(Debug, Clone)]
pub struct OpiClient {
    base: Url,
    http: reqwest::Client,
}

impl OpiClient {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8085`), with
    /// a 30 s request timeout.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        Self::with_access(base_url, &cube_runtime::access::ClientAccess::default())
    }

    /// A client for the server at `base_url` that trusts `access`'s CA,
    /// presents its client certificate and sends its token.
    pub fn with_access(
        base_url: &str,
        access: &cube_runtime::access::ClientAccess,
    ) -> Result<Self, Error> {
        let http = access
            .builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Internal(format!("cannot build HTTP client: {e}")))?;
        Self::with_http(base_url, http)
    }

    /// A client using a pre-configured reqwest client (TLS, client certs, …).
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Result<Self, Error> {
        let base = Url::parse(base_url)
            .map_err(|e| Error::Internal(format!("invalid OPI URL {base_url:?}: {e}")))?;
        if base.cannot_be_a_base() {
            return Err(Error::Internal(format!("invalid OPI URL {base_url:?}")));
        }
        Ok(Self { base, http })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for segment in segments {
                path.push(segment);
            }
        }
        url
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<reqwest::Response, Error> {
        let url = self.url(segments);
        let mut request = self.http.request(method, url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("OPI at {url}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(Error::from_status(status, error_message(text)))
    }

    async fn json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, Error> {
        response
            .json()
            .await
            .map_err(|e| Error::Internal(format!("unexpected OPI response: {e}")))
    }

    /// `PUT /apps/{process_guid}`.
    pub async fn desire(&self, request: &DesireLrpRequest) -> Result<(), Error> {
        let process_guid = format!("{}-{}", request.guid, request.version);
        self.send(Method::PUT, &["apps", &process_guid], Some(request))
            .await
            .map(drop)
    }

    /// Desires a validated LRP.
    pub async fn desire_lrp(&self, lrp: &DesiredLrp) -> Result<(), Error> {
        self.desire(&DesireLrpRequest::from(lrp)).await
    }

    /// `POST /apps/{process_guid}`.
    pub async fn update(&self, request: &UpdateLrpRequest) -> Result<(), Error> {
        let process_guid = format!("{}-{}", request.guid, request.version);
        self.send(Method::POST, &["apps", &process_guid], Some(request))
            .await
            .map(drop)
    }

    /// `GET /apps`.
    pub async fn list(&self) -> Result<Vec<SchedulingInfoBody>, Error> {
        let response = self.send::<()>(Method::GET, &["apps"], None).await?;
        Ok(Self::json::<SchedulingInfosResponse>(response)
            .await?
            .desired_lrp_scheduling_infos)
    }

    /// `GET /apps/{guid}/{version}`.
    pub async fn get(&self, id: &LrpId) -> Result<DesiredLrpBody, Error> {
        let response = self
            .send::<()>(Method::GET, &["apps", &id.guid, &id.version], None)
            .await?;
        Ok(Self::json::<DesiredLrpResponse>(response)
            .await?
            .desired_lrp)
    }

    /// `GET /apps/{guid}/{version}/instances`.
    pub async fn instances(&self, id: &LrpId) -> Result<InstancesResponse, Error> {
        let response = self
            .send::<()>(
                Method::GET,
                &["apps", &id.guid, &id.version, "instances"],
                None,
            )
            .await?;
        Self::json(response).await
    }

    /// `PUT /apps/{guid}/{version}/stop`.
    pub async fn stop(&self, id: &LrpId) -> Result<(), Error> {
        self.send::<()>(Method::PUT, &["apps", &id.guid, &id.version, "stop"], None)
            .await
            .map(drop)
    }

    /// `PUT /apps/{guid}/{version}/stop/{index}`.
    pub async fn stop_instance(&self, id: &LrpId, index: u32) -> Result<(), Error> {
        let index = index.to_string();
        self.send::<()>(
            Method::PUT,
            &["apps", &id.guid, &id.version, "stop", &index],
            None,
        )
        .await
        .map(drop)
    }

    /// `POST /tasks/{guid}`.
    pub async fn desire_task(&self, guid: &str, request: &TaskRequest) -> Result<(), Error> {
        self.send(Method::POST, &["tasks", guid], Some(request))
            .await
            .map(drop)
    }

    /// Desires a validated task.
    pub async fn desire_task_spec(&self, task: &Task) -> Result<(), Error> {
        self.desire_task(&task.guid, &TaskRequest::from(task)).await
    }

    /// `GET /tasks`.
    pub async fn list_tasks(&self) -> Result<Vec<TaskResponse>, Error> {
        let response = self.send::<()>(Method::GET, &["tasks"], None).await?;
        Self::json(response).await
    }

    /// `GET /tasks/{guid}`.
    pub async fn get_task(&self, guid: &str) -> Result<TaskResponse, Error> {
        let response = self.send::<()>(Method::GET, &["tasks", guid], None).await?;
        Self::json(response).await
    }

    /// `DELETE /tasks/{guid}`.
    pub async fn cancel_task(&self, guid: &str) -> Result<(), Error> {
        self.send::<()>(Method::DELETE, &["tasks", guid], None)
            .await
            .map(drop)
    }
}

/// A reqwest client builder that works with Cube's TLS setup: reqwest is built
/// without a bundled crypto provider, so this installs rustls' `ring` provider
/// process-wide first (a no-op when one is installed already).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Err only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Whether a status means "try again later".
pub(crate) fn is_transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// The message of an OPI error body: OPI's `{"error":{"message"}}`, the
/// instances route's `{"error":"…"}` string, or else the text itself.
fn error_message(text: String) -> String {
    if let Ok(body) = serde_json::from_str::<ErrorResponse>(&text) {
        return body.error.message;
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(body)) => match body.get("error") {
            Some(serde_json::Value::String(message)) => message.clone(),
            _ => text,
        },
        _ => text,
    }
}
