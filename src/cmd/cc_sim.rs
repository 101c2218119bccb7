//! `cube cc-sim`: serve the Cloud Controller simulator.

use std::net::SocketAddr;
use std::path::PathBuf;

use cube_runtime::Service;

/// Flags of `cube cc-sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address of the simulated CC (internal API, blobs, `/sim` JSON API).
    #[arg(long, default_value = "127.0.0.1:9022")]
    listen: SocketAddr,

    /// Address of the admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:9023")]
    admin_listen: SocketAddr,

    /// Directory for state and blobs; created if missing. A restart with the
    /// same directory loses nothing.
    #[arg(long, default_value = ".cube/cc-sim")]
    data_dir: PathBuf,

    /// St8ge's URL; staging requests go to `<URL>/stage/<guid>`. Without it only
    /// Docker apps stage.
    #[arg(long)]
    stager_url: Option<String>,

    /// Seed this many started Docker apps (`fake-app-<i>`) for tests and benchmarks.
    #[arg(long, default_value_t = 0)]
    fake_apps: usize,

    /// Image of the `--fake-apps` apps.
    #[arg(long, default_value = cc::sim::DEFAULT_FAKE_APP_IMAGE)]
    fake_app_image: String,

    /// Basic auth user of the internal API.
    #[arg(long, default_value = cc::client::DEFAULT_USER)]
    internal_user: String,

    /// Basic auth password of the internal API.
    #[arg(long, default_value = cc::client::DEFAULT_PASSWORD)]
    internal_password: String,

    /// URL others reach this simulator at, used in callback and droplet URLs
    /// (default: http://<listen>).
    #[arg(long)]
    public_url: Option<String>,

    /// Domain of apps' default routes (`<app>.<domain>`).
    #[arg(long, default_value = "localhost")]
    apps_domain: String,

    #[command(flatten)]
    access: cube_runtime::access::AccessArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = cc::sim::Config {
        data_dir: args.data_dir,
        stager_url: args.stager_url,
        fake_apps: args.fake_apps,
        fake_app_image: args.fake_app_image,
        username: args.internal_user,
        password: args.internal_password,
        // Over TLS, callback and droplet URLs must say https.
        public_url: args.public_url.or_else(|| {
            args.access
                .is_tls()
                .then(|| format!("https://{}", args.listen))
        }),
        apps_domain: args.apps_domain,
        client: args.access.client()?,
    };
    let service = Service::from_signals().with_access(args.access.server()?, config.client.clone());
    let (admin_addr, _admin) = service.spawn_admin(args.admin_listen).await?;
    let listener = cube_runtime::bind(args.listen).await?;
    tracing::info!(%admin_addr, "cc-sim admin server listening");
    cc::sim::run(config, listener, service).await?;
    Ok(())
}
