//! `cube stager`: serve St8ge, which stages apps as one-off scheduler tasks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use cube_runtime::Service;

/// Flags of `cube stager`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address of St8ge's API.
    #[arg(long, default_value = "127.0.0.1:8086")]
    listen: SocketAddr,

    /// Address of the admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:9086")]
    admin_listen: SocketAddr,

    /// OPI's API, where staging tasks run.
    #[arg(long, default_value = "http://127.0.0.1:8085")]
    opi_url: String,

    /// The Registry droplets are imported into (empty: CC only).
    #[arg(long, default_value = "http://127.0.0.1:8087")]
    registry_url: String,

    /// Cloud Controller's internal URL: completion callbacks must point there
    /// (unset: any callback URL is accepted).
    #[arg(long)]
    cc_url: Option<String>,

    /// Directory of the default buildpacks (default: `buildpacks/` here, next to
    /// the binary, or in the checkout it was built from).
    #[arg(long)]
    buildpacks_dir: Option<PathBuf>,

    /// St8ge's URL as staging tasks reach it (default: http://<listen>). With
    /// several replicas, each replica's own URL (e.g. its pod's name behind a
    /// headless Service): a staging task calls back the replica that desired it.
    #[arg(long)]
    public_url: Option<String>,

    /// Every St8ge replica's URL (comma-separated, this one's --public-url
    /// among them): a replica asks the others for logs of stagings they run.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    peer: Vec<String>,

    /// The `cube` binary staging tasks run (default: this binary).
    #[arg(long)]
    cube_binary: Option<String>,

    /// The staging image (`cube/host-exec` runs on the host with the local backend).
    #[arg(long, default_value = stager::service::DEFAULT_STAGER_IMAGE)]
    stager_image: String,

    /// The most staging may take.
    #[arg(long, default_value = "15m", value_parser = super::duration::positive)]
    staging_timeout: Duration,

    #[command(flatten)]
    access: cube_runtime::access::AccessArgs,
}

impl Args {
    /// The library config these flags describe.
    pub fn config(&self) -> anyhow::Result<stager::Config> {
        let mut config = stager::Config::new(self.opi_url.clone());
        config.registry_url = if self.registry_url.is_empty() {
            None
        } else {
            Some(reqwest::Url::parse(&self.registry_url).context("--registry-url")?)
        };
        config.cc_url = url(self.cc_url.as_deref(), "--cc-url")?;
        config.buildpacks_dir = self.buildpacks_dir.clone();
        config.public_url = url(self.public_url.as_deref(), "--public-url")?;
        if config.public_url.is_none() && self.access.is_tls() {
            // Staging tasks must call back over TLS.
            config.public_url = Some(reqwest::Url::parse(&format!("https://{}", self.listen))?);
        }
        if let Some(binary) = &self.cube_binary {
            config.cube_binary = binary.clone();
        }
        config.stager_image = self.stager_image.clone();
        config.staging_timeout = self.staging_timeout;
        config.peers = self
            .peer
            .iter()
            .map(|p| reqwest::Url::parse(p).with_context(|| format!("--peer {p:?}")))
            .collect::<anyhow::Result<_>>()?;
        config.client = self.access.client()?;
        Ok(config)
    }
}

fn url(text: Option<&str>, flag: &str) -> anyhow::Result<Option<reqwest::Url>> {
    text.filter(|t| !t.is_empty())
        .map(|t| reqwest::Url::parse(t).with_context(|| format!("{flag} {t:?}")))
        .transpose()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config()?;
    let service = Service::from_signals().with_access(args.access.server()?, config.client.clone());
    let (admin_addr, admin) = service.spawn_admin(args.admin_listen).await?;
    let listener = cube_runtime::bind(args.listen).await?;
    tracing::info!(admin = %admin_addr, "cube stager starting");
    stager::run(config, listener, service)
        .await
        .context("St8ge failed")?;
    admin.await.context("admin server task failed")??;
    Ok(())
}
