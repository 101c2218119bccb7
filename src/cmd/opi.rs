//! `cube opi`: serve the Orchestrator Provider Interface over a backend.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use cube_runtime::{ReadyCheck, Service};
use opi::Scheduler;
use opi::http::ApiConfig;
use opi::routing::RouteSource;
use opi::service::ServiceConfig;

/// Which scheduler runs the apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// In memory: nothing really runs (tests, demos, trying the API).
    Memory,
    /// Kubernetes (StatefulSets, Jobs).
    K8s,
    /// Diego's BBS.
    Diego,
    /// Processes on this machine.
    Local,
}

/// Flags of `cube opi`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scheduler backend.
    #[arg(long, value_enum, default_value = "memory")]
    backend: Backend,

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

    /// Registry host[:port] that serves droplet images (shown in LRP images).
    #[arg(long, default_value = "")]
    registry: String,

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
    local: LocalArgs,

    #[command(flatten)]
    k8s: K8sArgs,

    #[command(flatten)]
    diego: DiegoArgs,

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

/// Flags of the local backend.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Local backend")]
pub struct LocalArgs {
    /// Where the local backend keeps droplets, desired state and scratch dirs.
    #[arg(long, default_value = ".cube/local")]
    data_dir: std::path::PathBuf,

    /// Registry the local backend pulls droplet images from.
    #[arg(long, default_value = "http://127.0.0.1:8087")]
    registry_url: reqwest::Url,

    /// Tasks whose docker image is this run their command on the host
    /// (St8ge's staging tasks on the local backend).
    #[arg(long, default_value = DEFAULT_HOST_EXEC_IMAGE)]
    host_exec_image: String,
}

/// Flags of the Kubernetes backend.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Kubernetes backend")]
pub struct K8sArgs {
    /// Kubeconfig file; without it, the in-cluster configuration (or
    /// $KUBECONFIG / ~/.kube/config) is used.
    #[arg(long, env = "CUBE_KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,

    /// Put every app and task in this (existing) namespace instead of one
    /// namespace per CF space.
    #[arg(long, env = "CUBE_NAMESPACE")]
    namespace: Option<String>,

    #[command(flatten)]
    routing: RoutingArgs,
}

/// How apps' `cf-router` routes reach their pods on Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoutingMode {
    /// No Service, Ingress or HTTPRoute: something else routes (e.g.
    /// gorouter, with --nats-url).
    None,
    /// A Service and an Ingress per process (one rule per route host).
    Ingress,
    /// A Service and a Gateway API HTTPRoute per process.
    Gateway,
}

/// Routing flags of the Kubernetes backend (`cube opi`, `cube up --kubeconfig`).
#[derive(Debug, clap::Args)]
pub struct RoutingArgs {
    /// How routes reach apps' pods (default: none for `cube opi`, ingress for
    /// `cube up --kubeconfig`).
    #[arg(long, value_enum, env = "CUBE_ROUTING")]
    routing: Option<RoutingMode>,

    /// With --routing ingress: the Ingresses' class (default: the cluster's
    /// default IngressClass).
    #[arg(long, env = "CUBE_INGRESS_CLASS")]
    ingress_class: Option<String>,

    /// With --routing ingress: a TLS Secret, in each app namespace, serving
    /// every route host.
    #[arg(long)]
    ingress_tls_secret: Option<String>,

    /// With --routing gateway: the Gateway that HTTPRoutes attach to.
    #[arg(long, env = "CUBE_GATEWAY_NAME")]
    gateway_name: Option<String>,

    /// With --routing gateway: the Gateway's namespace (default: each app's).
    #[arg(long, env = "CUBE_GATEWAY_NAMESPACE")]
    gateway_namespace: Option<String>,
}

impl RoutingArgs {
    /// An error naming the routing flags when any is given to a backend that
    /// has no use for them (they would be silently ignored).
    pub fn refuse_unless(&self, applies: bool, hint: &str) -> anyhow::Result<()> {
        let given = [
            ("--routing", self.routing.is_some()),
            ("--ingress-class", self.ingress_class.is_some()),
            ("--ingress-tls-secret", self.ingress_tls_secret.is_some()),
            ("--gateway-name", self.gateway_name.is_some()),
            ("--gateway-namespace", self.gateway_namespace.is_some()),
        ];
        match given.iter().find(|(_, set)| *set) {
            Some((flag, _)) if !applies => {
                anyhow::bail!("{flag} applies to the Kubernetes backend only: {hint}")
            }
            _ => Ok(()),
        }
    }

    /// The backend's routing; `default` when --routing is not given.
    pub fn routing(&self, default: RoutingMode) -> anyhow::Result<opi_k8s::config::Routing> {
        use opi_k8s::config::Routing;
        Ok(match self.routing.unwrap_or(default) {
            RoutingMode::None => Routing::None,
            RoutingMode::Ingress => Routing::Ingress {
                class: self.ingress_class.clone(),
                tls_secret: self.ingress_tls_secret.clone(),
            },
            RoutingMode::Gateway => Routing::Gateway {
                name: self
                    .gateway_name
                    .clone()
                    .context("--routing gateway needs --gateway-name")?,
                namespace: self.gateway_namespace.clone(),
            },
        })
    }
}

/// Connects the Kubernetes backend; droplet images are served by `registry`.
pub async fn k8s_backend(
    args: &K8sArgs,
    registry: &str,
    access: &cube_runtime::access::ClientAccess,
) -> anyhow::Result<opi_k8s::K8sScheduler> {
    let routing = args.routing.routing(RoutingMode::None)?;
    k8s_backend_with(
        args.kubeconfig.as_deref(),
        args.namespace.clone(),
        routing,
        registry,
        access,
    )
    .await
}

/// Connects the Kubernetes backend from its parts. With a token in
/// `access`, kubelets pull droplet images with it: the backend writes a pull
/// Secret into each namespace it places droplet workloads in.
pub async fn k8s_backend_with(
    kubeconfig: Option<&std::path::Path>,
    namespace: Option<String>,
    routing: opi_k8s::config::Routing,
    registry: &str,
    access: &cube_runtime::access::ClientAccess,
) -> anyhow::Result<opi_k8s::K8sScheduler> {
    let config = opi_k8s::Config {
        namespace,
        registry: registry.to_owned(),
        routing,
        registry_credentials: access.token().map(|token| opi::model::RegistryCredentials {
            username: "cube".into(),
            password: token.expose().to_owned(),
        }),
        ..opi_k8s::Config::default()
    };
    opi_k8s::K8sScheduler::connect(kubeconfig, config)
        .await
        .context("cannot connect to Kubernetes")
}

/// Flags of the Diego backend.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Diego backend")]
pub struct DiegoArgs {
    /// The BBS API URL, e.g. https://bbs.service.cf.internal:8889.
    #[arg(long)]
    bbs_url: Option<reqwest::Url>,

    /// CA certificate (PEM) that signed the BBS's certificate.
    #[arg(long)]
    bbs_ca: Option<std::path::PathBuf>,

    /// Client certificate (PEM) presented to the BBS.
    #[arg(long)]
    bbs_cert: Option<std::path::PathBuf>,

    /// Private key (PEM) of the client certificate.
    #[arg(long)]
    bbs_key: Option<std::path::PathBuf>,
}

/// Connects the Diego backend to the BBS (mutual TLS for `https://`);
/// droplet images are served by `registry`.
pub fn diego_backend(
    args: &DiegoArgs,
    registry: &str,
) -> anyhow::Result<opi_diego::DiegoScheduler> {
    let url = args
        .bbs_url
        .clone()
        .context("--backend diego needs --bbs-url")?;
    let read = |flag: &str, path: &Option<std::path::PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
        path.as_ref()
            .map(|p| {
                std::fs::read(p).with_context(|| format!("cannot read {flag} {}", p.display()))
            })
            .transpose()
    };
    let tls = match (
        read("--bbs-ca", &args.bbs_ca)?,
        read("--bbs-cert", &args.bbs_cert)?,
        read("--bbs-key", &args.bbs_key)?,
    ) {
        (Some(ca), Some(cert), Some(key)) => Some(opi_diego::TlsPem { ca, cert, key }),
        (None, None, None) if url.scheme() == "http" => None,
        _ => anyhow::bail!("the BBS speaks mutual TLS: give --bbs-ca, --bbs-cert and --bbs-key"),
    };
    let config = opi_diego::DiegoConfig {
        bbs_url: url,
        tls,
        registry: registry.to_owned(),
        domain_ttl: opi_diego::DEFAULT_DOMAIN_TTL,
    };
    opi_diego::DiegoScheduler::new(config).context("cannot set up the BBS client")
}

/// The docker image name that makes the local backend run a task's command
/// on the host (St8ge's staging tasks).
pub const DEFAULT_HOST_EXEC_IMAGE: &str = "cube/host-exec";

/// Starts the local backend, reloading what was desired before.
pub async fn local_backend(
    args: &LocalArgs,
    access: &cube_runtime::access::ClientAccess,
) -> anyhow::Result<opi_local::LocalScheduler> {
    local_backend_with(
        args.data_dir.clone(),
        args.registry_url.clone(),
        args.host_exec_image.clone(),
        access,
    )
    .await
}

/// Starts the local backend in `root`, pulling droplets from `registry_url`.
pub async fn local_backend_with(
    root: std::path::PathBuf,
    registry_url: reqwest::Url,
    host_exec_image: String,
    access: &cube_runtime::access::ClientAccess,
) -> anyhow::Result<opi_local::LocalScheduler> {
    // Droplets come from the Registry, a Cube service.
    let http = access
        .builder()
        .build()
        .context("cannot build HTTP client")?;
    let droplets = opi_local::droplet::RegistryDroplets::new(registry_url, http);
    opi_local::LocalScheduler::start(
        opi_local::LocalConfig {
            root: root.clone(),
            host_exec_image: Some(host_exec_image),
        },
        Arc::new(droplets),
    )
    .await
    .with_context(|| format!("cannot start the local backend in {}", root.display()))
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
    args.k8s.routing.refuse_unless(
        matches!(args.backend, Backend::K8s),
        "add --backend k8s (the local backend routes by Host header in `cube up`)",
    )?;
    let access = args.access.server()?;
    let client = args.access.client()?;
    let mut local_shutdown = None;
    let mut route_source: Option<Arc<dyn RouteSource>> = None;
    let scheduler: Arc<dyn Scheduler> = match args.backend {
        Backend::Memory => Arc::new(opi::memory::MemoryScheduler::new()),
        Backend::K8s => {
            let k8s = Arc::new(k8s_backend(&args.k8s, &args.registry, &client).await?);
            route_source = Some(k8s.clone());
            k8s
        }
        Backend::Diego => Arc::new(diego_backend(&args.diego, &args.registry)?),
        Backend::Local => {
            let local = local_backend(&args.local, &client).await?;
            local_shutdown = Some(local.clone());
            route_source = Some(Arc::new(local.clone()));
            Arc::new(local)
        }
    };
    let service = Service::from_signals();
    service
        .readiness
        .add(Arc::new(BackendReady(scheduler.clone())));
    let emitter = spawn_route_emitter(&args.nats, route_source, &service)?;
    let (admin_addr, admin) = service.spawn_admin(args.admin_listen).await?;
    let listener = cube_runtime::bind(args.listen).await?;
    tracing::info!(
        backend = ?args.backend,
        api = %listener.local_addr()?,
        admin = %admin_addr,
        "cube opi started"
    );
    let config = ServiceConfig {
        api: ApiConfig {
            max_body_bytes: args.max_body_bytes,
            registry: args.registry,
            stager_url: args.stager_url,
            client,
        },
        cc_url: args.cc_url,
        access,
    };
    opi::service::run(
        config,
        scheduler,
        listener,
        &service.metrics,
        service.shutdown.clone(),
    )
    .await
    .context("OPI service failed")?;
    if let Some(emitter) = emitter {
        // Routes go before the instances do.
        emitter.await.context("route emitter task failed")??;
    }
    if let Some(local) = local_shutdown {
        // Stop the app processes; their desired state stays on disk.
        local.shutdown().await;
    }
    admin.await.context("admin server task failed")??;
    Ok(())
}
