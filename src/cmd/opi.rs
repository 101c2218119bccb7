//! `cube opi`: serve the Orchestrator Provider Interface over a backend.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use cube_runtime::{ReadyCheck, Service};
use opi::Scheduler;
use opi::http::ApiConfig;
use opi::routing::RouteSource;
use opi::service::ServiceConfig;

use super::backend::{Backend, BackendArgs, RoutingMode};

/// Flags of `cube opi`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    backend: BackendArgs,

    /// Address of the OPI API.
    #[arg(long, default_value = "127.0.0.1:8085")]
    listen: SocketAddr,

    /// Address of the admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:9085")]
    admin_listen: SocketAddr,

    /// Cloud Controller's internal API URL; crash and task events are reported
    /// there (user:password@ in the URL is sent as Basic auth).
    #[arg(long)]
    cc_url: Option<reqwest::Url>,

    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = opi::http::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,

    /// St8ge's URL: CC sends staging requests to OPI's URL (as it did to
    /// Eirini), and OPI forwards `/stage/…` there.
    #[arg(long)]
    stager_url: Option<reqwest::Url>,

    #[command(flatten)]
    access: cube_runtime::access::AccessArgs,

    #[command(flatten)]
    nats: NatsArgs,
}

/// Flags of the gorouter route emitter (CF's route-emitter, for Cube).
#[derive(clap::Args)]
#[command(next_help_heading = "Cloud Foundry gorouter")]
pub struct NatsArgs {
    /// Register every ready instance's routes with Cloud Foundry's gorouter
    /// through these NATS servers (`nats://host:4222`, comma-separated for a
    /// cluster): `router.register` for each instance's address and hostnames,
    /// repeated on an interval, `router.unregister` as soon as it stops or
    /// becomes unready. Off without it. Works with the local and k8s backends.
    #[arg(long, env = "CUBE_NATS_URL", value_name = "URL")]
    nats_url: Option<String>,

    /// NATS user name.
    #[arg(long, env = "CUBE_NATS_USER", requires = "nats_url")]
    nats_user: Option<String>,

    /// NATS password; prefer the environment variable (never logged).
    #[arg(
        long,
        env = "CUBE_NATS_PASSWORD",
        hide_env_values = true,
        requires = "nats_url"
    )]
    nats_password: Option<String>,

    /// How often every registration is repeated (gorouter prunes routes after
    /// 120 s without one); a gorouter's announced interval takes precedence.
    #[arg(long, default_value = "20s", value_parser = super::duration::positive)]
    nats_register_interval: std::time::Duration,
}

impl std::fmt::Debug for NatsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsArgs")
            .field("nats_url", &self.nats_url.as_ref().map(|_| "<set>"))
            .field("nats_user", &self.nats_user)
            .field(
                "nats_password",
                &self.nats_password.as_ref().map(|_| "<redacted>"),
            )
            .field("nats_register_interval", &self.nats_register_interval)
            .finish()
    }
}

/// Starts the route emitter when `--nats-url` is given: it registers
/// `source`'s endpoints with gorouter until `service` shuts down, then
/// unregisters them (await the handle before stopping the instances).
pub fn spawn_route_emitter(
    args: &NatsArgs,
    source: Option<Arc<dyn RouteSource>>,
    service: &Service,
) -> anyhow::Result<Option<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    let Some(servers) = &args.nats_url else {
        return Ok(None);
    };
    let source = source.context(
        "--nats-url needs a backend that knows where instances listen: local or k8s \
         (on Diego, Diego's own route-emitter registers routes)",
    )?;
    let mut config = route_emitter::EmitterConfig::new(servers.clone());
    config.user.clone_from(&args.nats_user);
    config.password.clone_from(&args.nats_password);
    config.register_interval = args.nats_register_interval;
    config.check()?;
    let metrics = route_emitter::EmitterMetrics::register(&service.metrics)?;
    let shutdown = service.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        route_emitter::run(config, source, metrics, shutdown)
            .await
            .context("route emitter failed")
    })))
}

/// `/readyz` follows the backend's own readiness.
struct BackendReady(Arc<dyn Scheduler>);

#[async_trait::async_trait]
impl ReadyCheck for BackendReady {
    fn name(&self) -> &str {
        "backend"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ready().await
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.backend.k8s.routing.refuse_unless(
        args.backend.backend == Backend::K8s,
        "add --backend k8s (the local backend routes by Host header in `cube up`)",
    )?;
    let access = args.access.server()?;
    let client = args.access.client()?;
    let scheduler = args.backend.build(&client, RoutingMode::None).await?;
    let service = Service::from_signals();
    service
        .readiness
        .add(Arc::new(BackendReady(scheduler.clone())));
    let emitter = spawn_route_emitter(&args.nats, scheduler.clone().routes(), &service)?;
    let (admin_addr, admin) = service.spawn_admin(args.admin_listen).await?;
    let listener = cube_runtime::bind(args.listen).await?;
    tracing::info!(
        backend = ?args.backend.backend,
        api = %listener.local_addr()?,
        admin = %admin_addr,
        "cube opi started"
    );
    let config = ServiceConfig {
        api: ApiConfig {
            max_body_bytes: args.max_body_bytes,
            registry: args.backend.registry.clone(),
            stager_url: args.stager_url,
            client,
        },
        cc_url: args.cc_url,
        access,
    };
    opi::service::run(
        config,
        scheduler.clone(),
        listener,
        &service.metrics,
        service.shutdown.clone(),
    )
    .await
    .context("OPI service failed")?;
    stop(scheduler, emitter).await?;
    admin.await.context("admin server task failed")??;
    Ok(())
}

/// After the API stopped: the route emitter unregisters the routes first,
/// then the backend stops what it runs here (what is desired stays).
pub async fn stop(
    scheduler: Arc<dyn Scheduler>,
    emitter: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    if let Some(emitter) = emitter {
        emitter.await.context("route emitter task failed")??;
    }
    scheduler.shutdown().await;
    Ok(())
}
