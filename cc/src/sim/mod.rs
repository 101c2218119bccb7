//! `cube cc-sim`: a simulator of exactly the Cloud Controller APIs Cube uses.
//!
//! Internal API (HTTP Basic, default `internal_user`/`internal_password`):
//! - `GET /internal/bulk/apps?batch_size=N[&format=fingerprint]&token={"id":N}`
//!   and `POST /internal/bulk/apps` — see [`bulk`];
//! - `POST /internal/v3/staging/{guid}/build_completed`,
//!   `POST /internal/v4/apps/{process_guid}/crashed`,
//!   `POST /internal/v4/tasks/{guid}/completed` — recorded, see [`callbacks`];
//! - `POST /staging/v3/droplets/{guid}/upload` (and `/internal/v4/droplets/{guid}/upload`),
//!   `GET /staging/jobs/{guid}` (and `/internal/v4/staging_jobs/{guid}`),
//!   `GET /staging/packages/{guid}` — see [`blobs`].
//!
//! cc-uploader's `POST /v1/droplet/{guid}?cc-droplet-upload-uri=…` (raw body,
//! `Content-Length`, an empty `201`; the credentials are those of the CC URL in
//! the query) — see [`cc_uploader`]. Staging requests hand the stager such a
//! URI, as an Eirini-era CC does.
//!
//! Without credentials: `GET /internal/v2/droplets/{app_guid}/{hash}/download`
//! (CC's "perma" droplet URL), `GET /sim/events` and the JSON API of [`api`],
//! whose client is [`client::SimClient`].
//!
//! State lives in the data directory ([`store`]); a restart loses nothing.

pub mod api;
mod atomic;
pub mod auth;
pub mod blobs;
pub mod bulk;
pub mod callbacks;
pub mod cc_uploader;
pub mod client;
pub mod desire;
#[cfg(test)]
mod eirini_tests;
mod metrics;
mod response;
#[cfg(test)]
mod router_tests;
pub mod stage_answer;
pub mod staging;
pub mod state;
pub mod store;
pub mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use url::Url;

use crate::client::{DEFAULT_PASSWORD, DEFAULT_USER};
use crate::{Error, Result};
pub use client::{SimClient, StagingLog};
use metrics::Metrics;
use store::Store;

/// The largest upload (app bits, droplet) the simulator takes.
pub const MAX_UPLOAD_BYTES: usize = 2 * 1024 * 1024 * 1024;
/// Largest JSON body accepted (bulk requests of 10,000 guids are ~0.5 MiB);
/// larger ones get 413 instead of being read up to [`MAX_UPLOAD_BYTES`].
pub const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;

/// The image `--fake-apps` apps run by default.
pub const DEFAULT_FAKE_APP_IMAGE: &str = "docker.io/library/busybox:1.36";

/// How the simulator is set up. `Debug` leaves the password out.
#[derive(Clone)]
pub struct Config {
    /// Where state and blobs live.
    pub data_dir: PathBuf,
    /// St8ge's base URL; without it only Docker apps stage.
    pub stager_url: Option<String>,
    /// Seed this many started Docker apps (`fake-app-<i>`).
    pub fake_apps: usize,
    /// Image of the fake apps.
    pub fake_app_image: String,
    /// Basic auth user of the internal API.
    pub username: String,
    /// Basic auth password of the internal API.
    pub password: String,
    /// URL others reach the simulator at (callbacks, droplet URIs); default
    /// `http://<listen address>`.
    pub public_url: Option<String>,
    /// Domain of default routes (`<app>.<domain>`).
    pub apps_domain: String,
    /// How the simulator reaches St8ge (CA, client certificate, token).
    pub client: cube_runtime::access::ClientAccess,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("stager_url", &self.stager_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("public_url", &self.public_url)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for `data_dir`: no stager, no fake apps, default credentials.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            stager_url: None,
            fake_apps: 0,
            fake_app_image: DEFAULT_FAKE_APP_IMAGE.into(),
            username: DEFAULT_USER.into(),
            password: DEFAULT_PASSWORD.into(),
            public_url: None,
            apps_domain: "localhost".into(),
            client: cube_runtime::access::ClientAccess::default(),
        }
    }
}

/// A running simulator's shared state.
pub struct Sim {
    store: Store,
    public_url: Url,
    stager_url: Option<Url>,
    username: String,
    password: String,
    apps_domain: String,
    http: reqwest::Client,
    metrics: Metrics,
}

impl Sim {
    /// Opens the data directory, seeds fake apps and prepares the stager client.
    /// `listen` is the bound address, the default public URL.
    pub async fn open(
        config: Config,
        listen: std::net::SocketAddr,
        registry: &prometheus::Registry,
    ) -> Result<Arc<Self>> {
        cube_runtime::install_crypto_provider();
        let public_url = crate::client::urls::parse(
            &config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{listen}")),
        )?;
        let stager_url = config
            .stager_url
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(crate::client::urls::parse)
            .transpose()?;
        let data_dir = config.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
            .await
            .map_err(|e| Error::Io {
                action: "open",
                path: config.data_dir.clone(),
                cause: std::io::Error::other(e.to_string()),
            })??;
        if config.fake_apps > 0 {
            let now = now_micros();
            let image = config.fake_app_image.clone();
            let count = config.fake_apps;
            let added = store
                .update(|state| Ok(state.seed_fake_apps(count, &image, now)))
                .await?;
            tracing::info!(added, total = count, "seeded fake apps");
        }
        let http = config
            .client
            .builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::ClientSetup(e.to_string()))?;
        let metrics = Metrics::register(registry)?;
        let sim = Sim {
            store,
            public_url,
            stager_url,
            username: config.username,
            password: config.password,
            apps_domain: config.apps_domain,
            http,
            metrics,
        };
        sim.metrics.refresh(&sim.store.snapshot());
        Ok(Arc::new(sim))
    }

    /// The routes.
    pub fn router(self: &Arc<Self>) -> Router {
        self.router_with(&cube_runtime::access::Access::open())
    }

    /// The routes, with the `/sim` API (what `cube push` calls) guarded by
    /// `access`; the internal API keeps CC's Basic auth, and the droplet
    /// download stays open like CC's.
    pub fn router_with(self: &Arc<Self>, access: &cube_runtime::access::Access) -> Router {
        let expected = Arc::new(auth::basic_header(&self.username, &self.password));
        let internal = Router::new()
            .route(
                "/internal/bulk/apps",
                get(bulk::get_apps)
                    .post(bulk::post_apps)
                    .layer(json_limit()),
            )
            .route(
                "/internal/v3/staging/{guid}/build_completed",
                post(callbacks::build_completed).layer(json_limit()),
            )
            .route(
                "/internal/v4/apps/{process_guid}/crashed",
                post(callbacks::app_crashed).layer(json_limit()),
            )
            .route(
                "/internal/v4/tasks/{task_guid}/completed",
                post(callbacks::task_completed).layer(json_limit()),
            )
            .route(
                "/staging/v3/droplets/{guid}/upload",
                post(blobs::upload_droplet),
            )
            .route(
                "/internal/v4/droplets/{guid}/upload",
                post(blobs::upload_droplet),
            )
            .route("/staging/jobs/{guid}", get(blobs::job))
            .route("/internal/v4/staging_jobs/{guid}", get(blobs::job))
            .route("/staging/packages/{guid}", get(blobs::download_package))
            .route_layer(axum::middleware::from_fn_with_state(
                expected,
                auth::require_basic,
            ));
        let open = Router::new()
            .route(
                "/internal/v2/droplets/{app_guid}/{hash}/download",
                get(blobs::download_droplet),
            )
            .route("/sim/events", get(callbacks::events))
            .route("/sim/apps", get(api::list))
            .route(
                "/sim/apps/{name}",
                get(api::get)
                    .put(api::put)
                    .delete(api::delete)
                    .layer(json_limit()),
            )
            .route("/sim/apps/{name}/bits", put(api::put_bits))
            .route(
                "/sim/apps/{name}/stage",
                post(api::stage).layer(json_limit()),
            )
            .route("/sim/apps/{name}/staging_logs", get(api::staging_logs))
            .route("/sim/apps/{name}/start", post(api::start))
            .route("/sim/apps/{name}/stop", post(api::stop))
            .route(
                "/sim/apps/{name}/scale",
                put(api::scale).layer(json_limit()),
            );
        let open = access.guard_except(open, &["/internal/v2/droplets"]);
        // cc-uploader checks no credentials of its own: CC checks those of the
        // upload URL it is given.
        let uploader = Router::new().route("/v1/droplet/{guid}", post(cc_uploader::upload_droplet));
        let sim = self.clone();
        internal
            .merge(open)
            .merge(uploader)
            .fallback(|uri: axum::http::Uri| async move {
                Error::not_found(format!("no route {}", uri.path()))
            })
            .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    let sim = sim.clone();
                    async move {
                        let upload = req.uri().path().ends_with("/upload")
                            || req.uri().path().ends_with("/bits");
                        // cc-uploader answers in its own plain text.
                        let uploader = req.uri().path().starts_with("/v1/");
                        let response = next.run(req).await;
                        sim.metrics.refresh(&sim.store.snapshot());
                        // axum's body-limit rejection is plain text: answer
                        // in CC's error format like every other refusal.
                        if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE
                            && !uploader
                        {
                            let limit = if upload {
                                MAX_UPLOAD_BYTES
                            } else {
                                MAX_JSON_BYTES
                            };
                            return Error::too_large(limit).into_response();
                        }
                        response
                    }
                },
            ))
            .with_state(self.clone())
    }

    /// A URL on this simulator that carries the internal-API credentials in its
    /// userinfo, as CC's callback and blob URLs do.
    pub fn internal_url(&self, path_and_query: &str) -> String {
        let mut url = self.public_url.clone();
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        url.set_path(path);
        url.set_query(query);
        let _ = url.set_username(&self.username);
        let _ = url.set_password(Some(&self.password));
        url.to_string()
    }

    /// The URL the simulator is reached at.
    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// The droplet upload URI an Eirini-era CC hands a stager for `build_guid`:
    /// the simulator's cc-uploader endpoint, with CC's own upload URL (and
    /// its credentials) in `cc-droplet-upload-uri`.
    pub fn droplet_upload_uri(&self, build_guid: &str) -> String {
        let mut root = self.public_url.clone();
        root.set_path("/");
        root.set_query(None);
        let cc_upload = self.internal_url(&format!("/internal/v4/droplets/{build_guid}/upload"));
        crate::model::cc_uploader_droplet_uri(&root, build_guid, &cc_upload).to_string()
    }

    /// The persistent state.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Runs the simulator on `listener` until the service shuts down.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    service: cube_runtime::Service,
) -> Result<()> {
    let addr = listener.local_addr().map_err(|source| Error::Io {
        action: "read the address of",
        path: PathBuf::from("listener"),
        cause: source,
    })?;
    let sim = Sim::open(config, addr, &service.metrics).await?;
    let dir = sim.store.dir().to_owned();
    service
        .readiness
        .add_fn("cc-sim data dir", move || match std::fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() && !meta.permissions().readonly() => Ok(()),
            Ok(_) => Err(format!("{} is not a writable directory", dir.display())),
            Err(e) => Err(format!("{}: {e}", dir.display())),
        });
    tracing::info!(%addr, public_url = %sim.public_url, "cc-sim serving");
    cube_runtime::serve_with(
        listener,
        sim.router_with(&service.access),
        service.shutdown.clone(),
        &service.access,
    )
    .await?;
    Ok(())
}

/// Microseconds since the epoch.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// ISO 8601 (UTC, seconds) of a microsecond timestamp, as CC's presenters print.
pub fn iso8601(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// The body limit of JSON routes (innermost wins over the upload limit).
fn json_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_JSON_BYTES)
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_matches_known_dates() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::iso8601(1_700_000_000_000_000),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(super::iso8601(951_782_400_000_000), "2000-02-29T00:00:00Z");
    }
}
