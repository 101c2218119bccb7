//! Which scheduler runs the apps: [`BackendArgs`], the one place that builds
//! a backend, for `cube opi`, `cube up` (and `cube bbs`). A backend is an
//! `Arc<dyn Scheduler>`; where its instances listen
//! ([`opi::Scheduler::routes`]) and what stops with it
//! ([`opi::Scheduler::shutdown`]) are its own methods.

use std::sync::Arc;

use anyhow::Context;
use cube_runtime::access::ClientAccess;
use opi::Scheduler;

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

/// The backend and its flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// Scheduler backend.
    #[arg(long, value_enum, default_value = "memory")]
    pub backend: Backend,

    /// Registry host[:port] that serves droplet images (shown in LRP images;
    /// what kubelets pull).
    #[arg(long, default_value = "")]
    pub registry: String,

    #[command(flatten)]
    pub local: LocalArgs,

    #[command(flatten)]
    pub k8s: K8sArgs,

    #[command(flatten)]
    pub diego: DiegoArgs,
}

impl BackendArgs {
    /// Builds the chosen backend, reaching Cube's services with `access`;
    /// `routing` is the Kubernetes routing when `--routing` is not given.
    pub async fn build(
        &self,
        access: &ClientAccess,
        routing: RoutingMode,
    ) -> anyhow::Result<Arc<dyn Scheduler>> {
        Ok(match self.backend {
            Backend::Memory => Arc::new(opi::memory::MemoryScheduler::new()),
            Backend::K8s => Arc::new(kubernetes(&self.k8s, routing, &self.registry, access).await?),
            Backend::Diego => Arc::new(diego(&self.diego, &self.registry)?),
            Backend::Local => Arc::new(local(&self.local, access).await?),
        })
    }

    /// The name of the backend, for logs and `cube up`'s banner.
    pub fn describe(&self) -> String {
        match self.backend {
            Backend::Memory => "memory (nothing runs)".into(),
            Backend::K8s => match &self.k8s.kubeconfig {
                Some(kubeconfig) => format!(
                    "Kubernetes ({}); kubelets pull droplet images from {}",
                    kubeconfig.display(),
                    self.registry
                ),
                None => "Kubernetes (in-cluster configuration)".into(),
            },
            Backend::Diego => "Diego's BBS".into(),
            Backend::Local => format!("local processes under {}", self.local.data_dir.display()),
        }
    }
}

/// Connects the Kubernetes backend; droplet images are served by `registry`.
/// With a token in `access`, kubelets pull droplet images with it: the
/// backend writes a pull Secret into each namespace it places droplet
/// workloads in.
async fn kubernetes(
    args: &K8sArgs,
    routing: RoutingMode,
    registry: &str,
    access: &ClientAccess,
) -> anyhow::Result<opi_k8s::K8sScheduler> {
    let config = opi_k8s::Config {
        namespace: args.namespace.clone(),
        registry: registry.to_owned(),
        routing: args.routing.routing(routing)?,
        registry_credentials: access.token().map(|token| opi::model::RegistryCredentials {
            username: "cube".into(),
            password: token.expose().to_owned(),
        }),
        ..opi_k8s::Config::default()
    };
    opi_k8s::K8sScheduler::connect(args.kubeconfig.as_deref(), config)
        .await
        .context("cannot connect to Kubernetes")
}

/// The docker image name that makes the local backend run a task's command
/// on the host (St8ge's staging tasks).
pub const DEFAULT_HOST_EXEC_IMAGE: &str = "cube/host-exec";

/// Starts the local backend, reloading what was desired before; droplets
/// come from the Registry, a Cube service.
async fn local(
    args: &LocalArgs,
    access: &ClientAccess,
) -> anyhow::Result<opi_local::LocalScheduler> {
    let http = access
        .builder()
        .build()
        .context("cannot build HTTP client")?;
    let droplets = opi_local::droplet::RegistryDroplets::new(args.registry_url.clone(), http);
    opi_local::LocalScheduler::start(
        opi_local::LocalConfig {
            root: args.data_dir.clone(),
            host_exec_image: Some(args.host_exec_image.clone()),
        },
        Arc::new(droplets),
    )
    .await
    .with_context(|| {
        format!(
            "cannot start the local backend in {}",
            args.data_dir.display()
        )
    })
}

/// Flags of the local backend.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Local backend")]
pub struct LocalArgs {
    /// Where the local backend keeps droplets, desired state and scratch dirs.
    #[arg(long, default_value = ".cube/local")]
    pub data_dir: std::path::PathBuf,

    /// Registry the local backend pulls droplet images from.
    #[arg(long, default_value = "http://127.0.0.1:8087")]
    pub registry_url: reqwest::Url,

    /// Tasks whose docker image is this run their command on the host
    /// (St8ge's staging tasks on the local backend).
    #[arg(long, default_value = DEFAULT_HOST_EXEC_IMAGE)]
    pub host_exec_image: String,
}

/// Flags of the Kubernetes backend.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Kubernetes backend")]
pub struct K8sArgs {
    /// Kubeconfig file; without it, the in-cluster configuration (or
    /// $KUBECONFIG / ~/.kube/config) is used.
    #[arg(long, env = "CUBE_KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,

    /// Put every app and task in this (existing) namespace instead of one
    /// namespace per CF space.
    #[arg(long, env = "CUBE_NAMESPACE")]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub routing: RoutingArgs,
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
#[derive(Debug, Clone, clap::Args)]
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

/// Flags of the Diego backend.
#[derive(Debug, Clone, Default, clap::Args)]
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
fn diego(args: &DiegoArgs, registry: &str) -> anyhow::Result<opi_diego::DiegoScheduler> {
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
