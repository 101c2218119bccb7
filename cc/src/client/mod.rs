//! A client for CC's internal APIs: what the Sink, St8ge and OPI call.
//!
//! - Basic auth from the config, or from a callback URL's userinfo (CC embeds
//!   credentials in the URLs it hands out).
//! - TLS through rustls (ring): an optional CA that replaces the platform roots,
//!   and an optional client certificate for mTLS.
//! - Connect and request timeouts.
//! - Retries with exponential backoff on connect errors, timeouts and 5xx only;
//!   a 4xx is returned at once.

mod retry;
pub mod urls;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use cube_runtime::body::{Limited, read_limited};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

pub use retry::{Outcome, RetryPolicy, is_retryable};

use crate::model::{
    AppCrashed, BulkToken, CcErrorBody, DesireAppRequestFromCC, DesiredAppsPage,
    DropletUploadTarget, Fingerprint, FingerprintWalk, FingerprintsPage, Job, ProcessGuid,
    StagingCompletion, TaskCompleted,
};
use crate::{Error, Result};

/// Default user for CC's internal API (and the simulator's).
pub const DEFAULT_USER: &str = "internal_user";
/// Default password for CC's internal API (and the simulator's).
pub const DEFAULT_PASSWORD: &str = "internal_password";

/// The largest JSON answer read from CC (a bulk page of 5,000 apps is a few
/// MiB); a larger one is refused, not buffered.
pub const MAX_JSON_ANSWER: u64 = 64 * 1024 * 1024;

/// The most of an error answer's body kept to describe it.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// What one try got back.
enum Answer {
    /// A 2xx answer's body.
    Body(Bytes),
    /// Another status, with (the start of) its body.
    Status(StatusCode, String),
    /// A 2xx answer whose body is over the limit.
    TooLarge(u64),
}

/// How to reach CC.
#[derive(Clone)]
pub struct ClientConfig {
    /// CC's internal API base URL (`http://127.0.0.1:9022`).
    pub base_url: String,
    /// Basic auth user; `None` sends no credentials.
    pub username: Option<String>,
    /// Basic auth password.
    pub password: Option<String>,
    /// PEM CA bundle to trust instead of the platform roots.
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate (chain) for mTLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request, body included.
    pub request_timeout: Duration,
    /// Retries on 5xx and connect errors.
    pub retry: RetryPolicy,
    /// Cube's TLS settings (the CA of Cube's services, its client
    /// certificate); its bearer token is never sent to CC.
    pub access: cube_runtime::access::ClientAccess,
}

impl ClientConfig {
    /// A config for `base_url` with the default credentials, no TLS extras, 5 s
    /// connect and 60 s request timeouts and the default retry policy.
    pub fn new(base_url: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            username: Some(DEFAULT_USER.into()),
            password: Some(DEFAULT_PASSWORD.into()),
            ca_cert: None,
            client_cert: None,
            client_key: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            access: cube_runtime::access::ClientAccess::default(),
        }
    }
}

// Hand-written so that passwords (and credentials in the URL) never reach logs.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &urls::redact_text(&self.base_url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_cert", &self.ca_cert)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &urls::redact(&self.base))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A CC internal-API client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    username: Option<String>,
    password: Option<String>,
    retry: RetryPolicy,
}

/// One request to send (possibly several times).
enum Body<'a> {
    None,
    Json(Vec<u8>),
    /// Multipart `upload[droplet]` (CC's own upload endpoint).
    Droplet(&'a Bytes),
    /// The bytes as the body, with their `Content-Length` (cc-uploader).
    Raw(&'a Bytes),
}

impl Client {
    /// Builds a client; reads the CA and client certificate files now, so a
    /// missing or bad file is reported at start-up, naming the file.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let base = urls::parse(&config.base_url)?;
        let mut builder = config
            .access
            .tls_builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .tls_backend_rustls();
        if let Some(path) = &config.ca_cert {
            let pem = read(path, "CA certificate")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::ClientSetup(format!("CA certificate {}: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(Error::ClientSetup(format!(
                    "CA certificate {} holds no PEM certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        match (&config.client_cert, &config.client_key) {
            (Some(cert), Some(key)) => {
                let mut pem = read(cert, "client certificate")?;
                pem.push(b'\n');
                pem.extend(read(key, "client key")?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    Error::ClientSetup(format!(
                        "client certificate {} / key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(Error::ClientSetup(
                    "a client certificate needs both a certificate and a key file".into(),
                ));
            }
        }
        let http = builder
            .build()
            .map_err(|e| Error::ClientSetup(e.to_string()))?;
        Ok(Client {
            http,
            base,
            username: config.username,
            password: config.password,
            retry: config.retry,
        })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// One page of fingerprints after `token`.
    pub async fn fingerprints_page(
        &self,
        batch_size: u32,
        token: BulkToken,
    ) -> Result<FingerprintsPage> {
        let url = urls::bulk_apps(&self.base, batch_size, token, true);
        self.json(Method::GET, url, Body::None).await
    }

    /// Walks every page of fingerprints, `batch_size` at a time, until CC answers
    /// an empty page. Any failed page fails the walk: a partial list would make
    /// the caller stop apps that still exist.
    pub async fn fingerprints(&self, batch_size: u32) -> Result<Vec<Fingerprint>> {
        let mut walk = FingerprintWalk::new(batch_size);
        loop {
            let token = walk.token();
            let page = self.fingerprints_page(batch_size, token).await?;
            match walk.add(page) {
                Ok(true) => return Ok(walk.into_fingerprints()),
                Ok(false) => {}
                Err(message) => {
                    return Err(Error::Decode {
                        method: "GET".into(),
                        url: urls::redact(&urls::bulk_apps(&self.base, batch_size, token, true)),
                        message,
                    });
                }
            }
        }
    }

    /// One page of full desired-app records after `token`.
    pub async fn desired_apps_page(
        &self,
        batch_size: u32,
        token: BulkToken,
    ) -> Result<DesiredAppsPage> {
        let url = urls::bulk_apps(&self.base, batch_size, token, false);
        self.json(Method::GET, url, Body::None).await
    }

    /// Full records for `process_guids` (`POST /internal/bulk/apps`). Guids CC
    /// does not know (deleted apps, old versions) are simply absent.
    pub async fn desired_apps(
        &self,
        process_guids: &[ProcessGuid],
    ) -> Result<Vec<DesireAppRequestFromCC>> {
        let url = urls::join(&self.base, "/internal/bulk/apps");
        self.json(Method::POST, url, json_body(&process_guids)?)
            .await
    }

    /// Reports staging's outcome to the `completion_callback` CC gave.
    pub async fn staging_completed(
        &self,
        completion_callback: &str,
        completion: &StagingCompletion,
    ) -> Result<()> {
        let url = urls::parse(completion_callback)?;
        self.send(Method::POST, url, json_body(completion)?, MAX_JSON_ANSWER)
            .await
            .map(drop)
    }

    /// Reports a crashed instance.
    pub async fn app_crashed(&self, process_guid: &ProcessGuid, crash: &AppCrashed) -> Result<()> {
        let path = format!("/internal/v4/apps/{process_guid}/crashed");
        let url = urls::join(&self.base, &path);
        self.send(Method::POST, url, json_body(crash)?, MAX_JSON_ANSWER)
            .await
            .map(drop)
    }

    /// Reports a finished task to its `completion_callback`.
    pub async fn task_completed(
        &self,
        completion_callback: &str,
        completed: &TaskCompleted,
    ) -> Result<()> {
        let url = urls::parse(completion_callback)?;
        self.send(Method::POST, url, json_body(completed)?, MAX_JSON_ANSWER)
            .await
            .map(drop)
    }

    /// Sends a droplet to `droplet_upload_uri` the way its receiver takes it
    /// ([`DropletUploadTarget`]): to cc-uploader as the raw body (it answers
    /// once CC's job finished), to CC's own endpoint as multipart, then polling
    /// CC's job (`interval` apart, at most `max_polls` times) until it finished.
    pub async fn deliver_droplet(
        &self,
        droplet_upload_uri: &str,
        droplet: Bytes,
        interval: Duration,
        max_polls: u32,
    ) -> Result<()> {
        let url = urls::parse(droplet_upload_uri)?;
        match DropletUploadTarget::of(&url) {
            DropletUploadTarget::CcUploader => {
                self.upload_droplet_to_cc_uploader(droplet_upload_uri, droplet)
                    .await
            }
            DropletUploadTarget::CloudController => {
                let job = self.upload_droplet(droplet_upload_uri, droplet).await?;
                self.wait_for_job(job, interval, max_polls).await.map(drop)
            }
        }
    }

    /// Uploads a droplet to CC's own `droplet_upload_uri` (multipart field
    /// `upload[droplet]`) and returns CC's job. A cc-uploader URI is refused:
    /// cc-uploader would store the multipart body itself as the droplet.
    pub async fn upload_droplet(&self, droplet_upload_uri: &str, droplet: Bytes) -> Result<Job> {
        let url = urls::parse(droplet_upload_uri)?;
        if DropletUploadTarget::of(&url) == DropletUploadTarget::CcUploader {
            return Err(Error::InvalidUrl {
                url: urls::redact(&url),
                reason: "a cc-uploader URI takes the raw droplet, not multipart \
                         (use deliver_droplet or upload_droplet_to_cc_uploader)"
                    .into(),
            });
        }
        self.json(Method::POST, url, Body::Droplet(&droplet)).await
    }

    /// Uploads a droplet to a cc-uploader `droplet_upload_uri`
    /// (`/v1/droplet/{guid}?cc-droplet-upload-uri=…`): the raw bytes as the
    /// body with their `Content-Length`, no multipart. cc-uploader answers an
    /// empty `201` after CC's upload job finished, so there is nothing to poll.
    pub async fn upload_droplet_to_cc_uploader(
        &self,
        droplet_upload_uri: &str,
        droplet: Bytes,
    ) -> Result<()> {
        let url = urls::parse(droplet_upload_uri)?;
        self.send(Method::POST, url, Body::Raw(&droplet), MAX_ERROR_BODY)
            .await
            .map(drop)
    }

    /// Polls a job until it is finished or failed, at most `max_polls` times,
    /// `interval` apart. A failed job is an error naming CC's reason.
    pub async fn wait_for_job(&self, job: Job, interval: Duration, max_polls: u32) -> Result<Job> {
        let mut job = job;
        for _ in 0..max_polls {
            match job.entity.status {
                crate::model::JobStatus::Finished => return Ok(job),
                crate::model::JobStatus::Failed => {
                    return Err(Error::Status {
                        method: "GET".into(),
                        url: job.metadata.url.clone(),
                        status: 200,
                        body: format!(
                            "job {} failed: {}",
                            job.entity.guid,
                            job.entity.error.as_deref().unwrap_or("no reason given")
                        ),
                    });
                }
                _ => {}
            }
            tokio::time::sleep(interval).await;
            // CC may answer with a path on itself: like cc-uploader's
            // poller, it is taken on the scheme and host the client talks to.
            let url = self
                .base
                .join(&job.metadata.url)
                .map_err(|e| Error::InvalidUrl {
                    url: urls::redact_text(&job.metadata.url),
                    reason: e.to_string(),
                })?;
            job = self.json(Method::GET, url, Body::None).await?;
        }
        Err(Error::Unreachable {
            method: "GET".into(),
            url: job.metadata.url,
            message: format!("job still {:?} after {max_polls} polls", job.entity.status),
        })
    }

    /// Downloads a blob CC serves (a droplet from `droplet_uri`, app bits from
    /// `app_bits_download_uri`).
    pub async fn download(&self, uri: &str) -> Result<Bytes> {
        let url = urls::parse(uri)?;
        self.send(Method::GET, url, Body::None, u64::MAX).await
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Body<'_>,
    ) -> Result<T> {
        let shown = urls::redact(&url);
        let bytes = self
            .send(method.clone(), url, body, MAX_JSON_ANSWER)
            .await?;
        // Name the field a bad answer breaks (`[3].num_instances: …`).
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| Error::Decode {
            method: method.to_string(),
            url: shown,
            message: match e.path().to_string().as_str() {
                "." => e.into_inner().to_string(),
                path => format!("{path}: {}", e.into_inner()),
            },
        })
    }

    /// Sends with retries; returns the body of a 2xx answer, refusing one
    /// over `limit` bytes.
    async fn send(&self, method: Method, url: Url, body: Body<'_>, limit: u64) -> Result<Bytes> {
        let shown = urls::redact(&url);
        let mut attempt = 1;
        loop {
            let tried = self
                .try_once(method.clone(), url.clone(), &body, limit)
                .await;
            let (outcome, error) = match tried {
                Ok(Answer::Body(bytes)) => return Ok(bytes),
                Ok(Answer::TooLarge(size)) => {
                    return Err(Error::Decode {
                        method: method.to_string(),
                        url: shown,
                        message: format!(
                            "answer of {size} bytes or more, over the {limit}-byte limit"
                        ),
                    });
                }
                Ok(Answer::Status(status, text)) => (
                    Outcome::Status(status.as_u16()),
                    Error::Status {
                        method: method.to_string(),
                        url: shown.clone(),
                        status: status.as_u16(),
                        body: describe_error_body(&text),
                    },
                ),
                Err(e) => (
                    Outcome::NoAnswer,
                    Error::Unreachable {
                        method: method.to_string(),
                        url: shown.clone(),
                        message: describe_reqwest_error(&e),
                    },
                ),
            };
            match self.retry.backoff(attempt) {
                Some(wait) if is_retryable(outcome) => {
                    tracing::debug!(%method, url = %shown, attempt, %error, ?wait, "retrying CC request");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return Err(error),
            }
        }
    }

    /// One try; `Err` when there was no answer. Bodies are read up to
    /// `limit` bytes (2xx) or [`MAX_ERROR_BODY`] (other statuses), never
    /// further.
    async fn try_once(
        &self,
        method: Method,
        url: Url,
        body: &Body<'_>,
        limit: u64,
    ) -> std::result::Result<Answer, reqwest::Error> {
        let has_userinfo = !url.username().is_empty();
        let mut request = self.http.request(method, url);
        if !has_userinfo && let Some(user) = &self.username {
            request = request.basic_auth(user, self.password.as_ref());
        }
        request = match body {
            Body::None => request,
            Body::Json(bytes) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Droplet(bytes) => {
                let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                    .file_name("droplet.tgz")
                    .mime_str("application/octet-stream")?;
                request.multipart(reqwest::multipart::Form::new().part("upload[droplet]", part))
            }
            // A `Bytes` body has a known length, so reqwest sends
            // `Content-Length` (not chunked), which cc-uploader requires.
            Body::Raw(bytes) => request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body((*bytes).clone()),
        };
        let response = request.send().await?;
        let status = response.status();
        Ok(if status.is_success() {
            match read_limited(response, limit, false).await? {
                Limited::Whole(body) => Answer::Body(body),
                Limited::Over { size, .. } => Answer::TooLarge(size),
            }
        } else {
            // Enough of an error body to describe it.
            let (Limited::Whole(head) | Limited::Over { head, .. }) =
                read_limited(response, MAX_ERROR_BODY, true).await?;
            Answer::Status(status, String::from_utf8_lossy(&head).into_owned())
        })
    }
}

fn json_body<T: Serialize + ?Sized>(value: &T) -> Result<Body<'static>> {
    serde_json::to_vec(value)
        .map(Body::Json)
        .map_err(|e| Error::ClientSetup(format!("cannot encode request body: {e}")))
}

fn read(path: &PathBuf, what: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        what,
        path: path.clone(),
        cause: source,
    })
}

/// CC's error description when the body is a CC error, else the body itself
/// (cut short).
fn describe_error_body(text: &str) -> String {
    if let Ok(body) = serde_json::from_str::<CcErrorBody>(text) {
        return format!("{}: {}", body.error_code, body.description);
    }
    let text = text.trim();
    if text.chars().count() > 300 {
        let cut: String = text.chars().take(300).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

/// reqwest's error with its causes, which hold the useful part
/// ("connection refused", "operation timed out").
fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_passwords() {
        let mut config = ClientConfig::new("https://cc:url-s3cret@127.0.0.1:9022");
        config.password = Some("field-s3cret".into());
        let client = Client::new(config.clone()).unwrap();
        let mut sim = crate::sim::Config::new("/tmp/cc-sim");
        sim.password = "sim-s3cret".into();
        for shown in [
            format!("{config:?}"),
            format!("{client:?}"),
            format!("{sim:?}"),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }

    #[test]
    fn bad_tls_files_are_named_at_start_up() {
        let mut config = ClientConfig::new("https://127.0.0.1:9022");
        config.ca_cert = Some("/nonexistent/ca.pem".into());
        let err = Client::new(config).unwrap_err().to_string();
        assert!(err.contains("CA certificate /nonexistent/ca.pem"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("ca.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let mut config = ClientConfig::new("https://127.0.0.1:9022");
        config.ca_cert = Some(junk);
        let err = Client::new(config).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");

        let mut config = ClientConfig::new("https://127.0.0.1:9022");
        config.client_cert = Some("/nonexistent/cert.pem".into());
        let err = Client::new(config).unwrap_err().to_string();
        assert!(err.contains("both a certificate and a key"), "{err}");

        let err = Client::new(ClientConfig::new("not a url"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid URL `not a url`"), "{err}");
    }

    #[test]
    fn error_bodies_are_summarised() {
        let cc = r#"{"code":10005,"description":"batch_size is missing","error_code":"CF-BadQueryParameter"}"#;
        assert_eq!(
            describe_error_body(cc),
            "CF-BadQueryParameter: batch_size is missing"
        );
        let long = "x".repeat(1000);
        assert_eq!(describe_error_body(&long).chars().count(), 301);
    }
}
