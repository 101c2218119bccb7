//! [`run`]: St8ge's API until shutdown (what `cube stager` and `cube up` call).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cube_runtime::Service;
use cube_runtime::access::{ClientAccess, Secret};
use opi::http::OpiClient;
use reqwest::Url;

use crate::api::{self, Api, Metrics};
use crate::buildpacks::Shipped;
use crate::recipe::Recipe;
use crate::{Error, Result};

/// The staging image that makes the local backend run the task on the host.
pub const DEFAULT_STAGER_IMAGE: &str = "cube/host-exec";
/// Default staging timeout (CC's default `staging.timeout_in_seconds`).
pub const DEFAULT_STAGING_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// St8ge's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// OPI's API.
    pub opi_url: String,
    /// St8ge's URL as staging tasks reach it (`None`: `http://<listen address>`).
    pub public_url: Option<Url>,
    /// The Registry droplets are imported into (`None`: CC only).
    pub registry_url: Option<Url>,
    /// When set, CC callbacks must go to this origin.
    pub cc_url: Option<Url>,
    /// The shipped buildpacks (`None`: look in the default places).
    pub buildpacks_dir: Option<PathBuf>,
    /// The `cube` binary the staging task runs.
    pub cube_binary: String,
    /// The staging image.
    pub stager_image: String,
    /// The most staging may take.
    pub staging_timeout: Duration,
    /// How St8ge reaches OPI; staging tasks get its token and CA (in their
    /// environment, which backends keep in Secrets) to report back.
    pub client: ClientAccess,
    /// Every St8ge replica's URL (this one's `public_url` among them), asked
    /// for the logs of stagings another replica runs ([`crate::peers`]).
    /// Empty: one replica.
    pub peers: Vec<Url>,
}

impl Config {
    /// Defaults for reaching OPI at `opi_url`; the task runs this process's binary.
    pub fn new(opi_url: impl Into<String>) -> Self {
        Self {
            opi_url: opi_url.into(),
            public_url: None,
            registry_url: None,
            cc_url: None,
            buildpacks_dir: None,
            cube_binary: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "cube".into()),
            stager_image: DEFAULT_STAGER_IMAGE.into(),
            staging_timeout: DEFAULT_STAGING_TIMEOUT,
            client: ClientAccess::default(),
            peers: Vec::new(),
        }
    }
}

/// Builds the API state for `listener`'s address.
pub fn api(config: &Config, listen: std::net::SocketAddr, metrics: Metrics) -> Result<Api> {
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{listen}"))
            .map_err(|e| Error::Config(format!("public URL from {listen}: {e}")))?,
    };
    // Staging tasks call this URL back; "any address" is not one they can reach.
    let unspecified = match public_url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_unspecified(),
        _ => false,
    };
    if unspecified {
        return Err(Error::Config(format!(
            "staging tasks cannot call St8ge back at {public_url}: give --public-url, \
             the URL they reach it at (e.g. https://cube-stager.cube-system.svc.cluster.local:8086)"
        )));
    }
    let shipped = match &config.buildpacks_dir {
        Some(dir) => Some(Shipped::new(dir)?),
        None => Shipped::find_default(),
    };
    match &shipped {
        Some(shipped) => {
            tracing::info!(dir = %shipped.dir().display(), buildpacks = ?shipped.names()?, "default buildpacks")
        }
        None => {
            tracing::warn!("no buildpacks directory found: stagings must name buildpacks with URLs")
        }
    }
    let peers = crate::peers::Peers::new(&config.peers, &public_url, &config.client)?;
    Ok(Api {
        peers,
        opi: OpiClient::with_access(&config.opi_url, &config.client)?,
        recipe: Recipe {
            cube_binary: config.cube_binary.clone(),
            image: config.stager_image.clone(),
            public_url,
            registry_url: config.registry_url.clone(),
            staging_timeout: config.staging_timeout,
            credentials: config
                .client
                .task_environment()
                .into_iter()
                .map(|(name, value)| (name, Secret::new(value)))
                .collect(),
        },
        shipped,
        cc_url: config.cc_url.clone(),
        metrics,
        logs: crate::logs::Logs::default(),
        deadlines: crate::deadline::Deadlines::default(),
        cc_access: config.client.clone(),
    })
}

/// Serves St8ge on `listener` until `service` shuts down.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    service: Service,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("listener: {e}")))?;
    let metrics = Metrics::register(&service.metrics)?;
    let api = Arc::new(api(&config, addr, metrics)?);
    // Followers of staging logs end at shutdown, so draining does not wait
    // for stagings to finish.
    let logs = api.logs.clone();
    let shutdown = service.shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        logs.close();
    });
    tracing::info!(api = %addr, public = %api.recipe.public_url, opi = %config.opi_url, "St8ge started");
    // Shipped buildpacks are public zips that staging tasks fetch like any
    // other buildpack URL, without credentials.
    let router = service
        .access
        .guard_except(api::router(api), &["/buildpacks"]);
    cube_runtime::serve_with(listener, router, service.shutdown.clone(), &service.access)
        .await
        .map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_on(listen: &str, public_url: Option<&str>) -> Result<Api> {
        let mut config = Config::new("http://127.0.0.1:9");
        config.buildpacks_dir = Some(std::env::temp_dir());
        config.public_url = public_url.map(|u| Url::parse(u).unwrap());
        let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
        api(&config, listen.parse().unwrap(), metrics)
    }

    #[test]
    fn any_address_is_no_callback_url_for_staging_tasks() {
        for listen in ["0.0.0.0:8086", "[::]:8086"] {
            let Err(error) = api_on(listen, None) else {
                panic!("{listen} accepted as the URL tasks call back");
            };
            assert!(error.to_string().contains("--public-url"), "{error}");
        }
        let api = api_on("0.0.0.0:8086", Some("https://st8ge.example:8086")).unwrap();
        assert_eq!(
            api.recipe.public_url.as_str(),
            "https://st8ge.example:8086/"
        );
        let api = api_on("127.0.0.1:8086", None).unwrap();
        assert_eq!(api.recipe.public_url.as_str(), "http://127.0.0.1:8086/");
    }
}
