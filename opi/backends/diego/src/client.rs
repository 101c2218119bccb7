//! [`BbsClient`]: one method per BBS route Cube uses. Every call POSTs a
//! protobuf body (`application/x-protobuf`) and decodes the protobuf answer;
//! the BBS reports failures inside a 200 response as `Error{type,message}`,
//! which become [`DiegoError::Bbs`]. Connection failures and HTTP error
//! statuses (a BBS that lost its lock, a load balancer without one) are
//! [`DiegoError::Unreachable`].

use std::time::Duration;

use bytes::Bytes;
use cube_runtime::body::{Limited, read_limited};
use prost::Message;
use reqwest::Url;

use crate::error::DiegoError;
use crate::proto;

/// How long one request (not an event stream) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// PEM material for mutual TLS with the BBS.
#[derive(Clone)]
pub struct TlsPem {
    /// The CA that signed the BBS's certificate.
    pub ca: Vec<u8>,
    /// The client certificate (chain).
    pub cert: Vec<u8>,
    /// The client certificate's private key.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsPem { <redacted> }")
    }
}

/// A response that may carry a BBS error.
pub trait BbsResponse: Message + Default {
    /// The error, if the BBS reported one.
    fn error(&self) -> Option<&proto::Error>;
}

macro_rules! responses {
    ($($t:ident),* $(,)?) => {
        $(impl BbsResponse for proto::$t {
            fn error(&self) -> Option<&proto::Error> {
                self.error.as_ref()
            }
        })*
    };
}

responses!(
    UpsertDomainResponse,
    DesiredLrpLifecycleResponse,
    DesiredLrpResponse,
    DesiredLrpSchedulingInfosResponse,
    ActualLrPsResponse,
    ActualLrpLifecycleResponse,
    TaskLifecycleResponse,
    TasksResponse,
    TaskResponse,
);

/// A client of one BBS. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BbsClient {
    http: reqwest::Client,
    base: Url,
}

impl BbsClient {
    /// A client of the BBS at `base` (e.g. `https://bbs.service.cf.internal:8889`)
    /// presenting `tls`'s client certificate and trusting only its CA; plain
    /// HTTP when `tls` is `None`.
    pub fn new(base: Url, tls: Option<&TlsPem>) -> Result<Self, DiegoError> {
        let config = |e: reqwest::Error| DiegoError::Config(e.to_string());
        let mut builder = opi::http::http_client_builder().connect_timeout(CONNECT_TIMEOUT);
        if let Some(tls) = tls {
            let ca = reqwest::Certificate::from_pem_bundle(&tls.ca).map_err(config)?;
            if ca.is_empty() {
                return Err(DiegoError::Config(
                    "the BBS CA file has no certificate".into(),
                ));
            }
            let mut identity_pem = tls.cert.clone();
            identity_pem.push(b'\n');
            identity_pem.extend_from_slice(&tls.key);
            let identity = reqwest::Identity::from_pem(&identity_pem).map_err(config)?;
            builder = builder.tls_certs_only(ca).identity(identity);
        }
        let http = builder.build().map_err(config)?;
        Ok(Self { http, base })
    }

    fn url(&self, path: &str) -> Result<Url, DiegoError> {
        self.base
            .join(path)
            .map_err(|e| DiegoError::Config(format!("BBS URL {}: {e}", self.base)))
    }

    async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, DiegoError> {
        let mut request = self
            .http
            .post(self.url(path)?)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|e| DiegoError::Unreachable(format!("POST {path}: {}", error_chain(&e))))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(DiegoError::Unreachable(format!(
                "POST {path}: HTTP {status}: {}",
                text.trim()
            )));
        }
        Ok(response)
    }

    /// POSTs `request` to `path` and decodes the answer, turning a BBS error
    /// in it into [`DiegoError::Bbs`].
    pub async fn call<Req: Message, Resp: BbsResponse>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp, DiegoError> {
        let response = self
            .post(path, request.encode_to_vec(), Some(REQUEST_TIMEOUT))
            .await?;
        let body = read_body(response, path).await?;
        let reply = Resp::decode(body).map_err(|e| DiegoError::Decode(format!("{path}: {e}")))?;
        match reply.error() {
            Some(error) => Err(DiegoError::Bbs {
                kind: proto::error::Type::try_from(error.r#type)
                    .unwrap_or(proto::error::Type::UnknownError),
                message: error.message.clone(),
            }),
            None => Ok(reply),
        }
    }

    /// `/v1/ping`: whether the BBS is up and serving.
    pub async fn ping(&self) -> Result<bool, DiegoError> {
        let response = self
            .post("/v1/ping", Vec::new(), Some(REQUEST_TIMEOUT))
            .await?;
        let body = read_body(response, "/v1/ping").await?;
        let ping = proto::PingResponse::decode(body)
            .map_err(|e| DiegoError::Decode(format!("/v1/ping: {e}")))?;
        Ok(ping.available)
    }

    /// `/v1/domains/upsert`: marks `domain` fresh for `ttl`.
    pub async fn upsert_domain(&self, domain: &str, ttl: Duration) -> Result<(), DiegoError> {
        let request = proto::UpsertDomainRequest {
            domain: domain.to_owned(),
            ttl: u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX),
        };
        self.call::<_, proto::UpsertDomainResponse>("/v1/domains/upsert", &request)
            .await
            .map(drop)
    }

    /// `/v1/desired_lrp/desire.r2`.
    pub async fn desire_lrp(&self, lrp: proto::DesiredLrp) -> Result<(), DiegoError> {
        let request = proto::DesireLrpRequest {
            desired_lrp: Some(lrp),
        };
        self.call::<_, proto::DesiredLrpLifecycleResponse>("/v1/desired_lrp/desire.r2", &request)
            .await
            .map(drop)
    }

    /// `/v1/desired_lrp/update`.
    pub async fn update_lrp(
        &self,
        process_guid: &str,
        update: proto::DesiredLrpUpdate,
    ) -> Result<(), DiegoError> {
        let request = proto::UpdateDesiredLrpRequest {
            process_guid: process_guid.to_owned(),
            update: Some(update),
        };
        self.call::<_, proto::DesiredLrpLifecycleResponse>("/v1/desired_lrp/update", &request)
            .await
            .map(drop)
    }

    /// `/v1/desired_lrp/remove`.
    pub async fn remove_lrp(&self, process_guid: &str) -> Result<(), DiegoError> {
        let request = proto::RemoveDesiredLrpRequest {
            process_guid: process_guid.to_owned(),
        };
        self.call::<_, proto::DesiredLrpLifecycleResponse>("/v1/desired_lrp/remove", &request)
            .await
            .map(drop)
    }

    /// `/v1/desired_lrps/get_by_process_guid.r3`.
    pub async fn desired_lrp(&self, process_guid: &str) -> Result<proto::DesiredLrp, DiegoError> {
        let request = proto::DesiredLrpByProcessGuidRequest {
            process_guid: process_guid.to_owned(),
        };
        let response: proto::DesiredLrpResponse = self
            .call("/v1/desired_lrps/get_by_process_guid.r3", &request)
            .await?;
        response
            .desired_lrp
            .ok_or_else(|| DiegoError::Decode("get_by_process_guid answered no LRP".into()))
    }

    /// `/v1/desired_lrp_scheduling_infos/list` in `domain`, of `process_guids`
    /// only when not empty.
    pub async fn scheduling_infos(
        &self,
        domain: &str,
        process_guids: &[String],
    ) -> Result<Vec<proto::DesiredLrpSchedulingInfo>, DiegoError> {
        let request = proto::DesiredLrPsRequest {
            domain: domain.to_owned(),
            process_guids: process_guids.to_vec(),
            app_guids: Vec::new(),
        };
        let response: proto::DesiredLrpSchedulingInfosResponse = self
            .call("/v1/desired_lrp_scheduling_infos/list", &request)
            .await?;
        Ok(response.desired_lrp_scheduling_infos)
    }

    /// `/v1/actual_lrps/list` of one process guid.
    pub async fn actual_lrps(
        &self,
        domain: &str,
        process_guid: &str,
    ) -> Result<Vec<proto::ActualLrp>, DiegoError> {
        let request = proto::ActualLrPsRequest {
            domain: domain.to_owned(),
            process_guid: process_guid.to_owned(),
            ..proto::ActualLrPsRequest::default()
        };
        let response: proto::ActualLrPsResponse =
            self.call("/v1/actual_lrps/list", &request).await?;
        Ok(response.actual_lrps)
    }

    /// `/v1/actual_lrps/retire`: stops one instance (Diego starts a new one).
    pub async fn retire(&self, key: proto::ActualLrpKey) -> Result<(), DiegoError> {
        let request = proto::RetireActualLrpRequest {
            actual_lrp_key: Some(key),
        };
        self.call::<_, proto::ActualLrpLifecycleResponse>("/v1/actual_lrps/retire", &request)
            .await
            .map(drop)
    }

    /// `/v1/tasks/desire.r2`.
    pub async fn desire_task(&self, request: &proto::DesireTaskRequest) -> Result<(), DiegoError> {
        self.call::<_, proto::TaskLifecycleResponse>("/v1/tasks/desire.r2", request)
            .await
            .map(drop)
    }

    /// `/v1/tasks/list.r3` in `domain`.
    pub async fn tasks(&self, domain: &str) -> Result<Vec<proto::Task>, DiegoError> {
        let request = proto::TasksRequest {
            domain: domain.to_owned(),
            cell_id: String::new(),
        };
        let response: proto::TasksResponse = self.call("/v1/tasks/list.r3", &request).await?;
        Ok(response.tasks)
    }

    /// `/v1/tasks/get_by_task_guid.r3`.
    pub async fn task(&self, guid: &str) -> Result<proto::Task, DiegoError> {
        let request = proto::TaskByGuidRequest {
            task_guid: guid.to_owned(),
        };
        let response: proto::TaskResponse =
            self.call("/v1/tasks/get_by_task_guid.r3", &request).await?;
        response
            .task
            .ok_or_else(|| DiegoError::Decode("get_by_task_guid answered no task".into()))
    }

    /// `/v1/tasks/cancel`.
    pub async fn cancel_task(&self, guid: &str) -> Result<(), DiegoError> {
        let request = proto::TaskGuidRequest {
            task_guid: guid.to_owned(),
        };
        self.call::<_, proto::TaskLifecycleResponse>("/v1/tasks/cancel", &request)
            .await
            .map(drop)
    }

    /// `/v1/tasks/resolving`: claims a `COMPLETED` task for its consumer
    /// (state `RESOLVING`); a task in any other state is an
    /// `InvalidStateTransition`.
    pub async fn resolving_task(&self, guid: &str) -> Result<(), DiegoError> {
        let request = proto::TaskGuidRequest {
            task_guid: guid.to_owned(),
        };
        self.call::<_, proto::TaskLifecycleResponse>("/v1/tasks/resolving", &request)
            .await
            .map(drop)
    }

    /// `/v1/tasks/delete`: removes a `RESOLVING` task; a task in any other
    /// state is an `InvalidStateTransition`.
    pub async fn delete_task(&self, guid: &str) -> Result<(), DiegoError> {
        let request = proto::TaskGuidRequest {
            task_guid: guid.to_owned(),
        };
        self.call::<_, proto::TaskLifecycleResponse>("/v1/tasks/delete", &request)
            .await
            .map(drop)
    }

    /// Opens an SSE event stream (`/v1/events/lrp_instances.r1`,
    /// `/v1/events/tasks.r1`) for all cells; the response body streams the
    /// events (see [`crate::events`]).
    pub async fn subscribe(&self, path: &str) -> Result<reqwest::Response, DiegoError> {
        self.post(path, proto::EventsByCellId::default().encode_to_vec(), None)
            .await
    }
}

/// An error and its causes, which is where reqwest says what really failed
/// (connection refused, certificate unknown, …).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The largest BBS answer read (all actual LRPs of a large foundation are
/// tens of MiB); a larger one is refused, not buffered.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// The body of a BBS answer to `path`, up to [`MAX_ANSWER_BYTES`].
async fn read_body(response: reqwest::Response, path: &str) -> Result<Bytes, DiegoError> {
    match read_limited(response, MAX_ANSWER_BYTES as u64, false)
        .await
        .map_err(|e| DiegoError::Unreachable(format!("POST {path}: {}", error_chain(&e))))?
    {
        Limited::Whole(body) => Ok(body),
        Limited::Over { .. } => Err(DiegoError::Decode(format!(
            "{path}: answer over {MAX_ANSWER_BYTES} bytes"
        ))),
    }
}
