//! `cube up`: the whole of Cloud Foundry on one machine, in one process — the
//! CC simulator, the Registry, St8ge, OPI over the local backend, the Sink and
//! the local router.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cube_runtime::Service;
use cube_runtime::access::ClientAccess;
use opi::Scheduler;
use opi::http::ApiConfig;
use opi::service::ServiceConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::backend::{
    Backend, BackendArgs, DEFAULT_HOST_EXEC_IMAGE, DiegoArgs, LocalArgs, RoutingMode,
};

/// Flags of `cube up`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where every service keeps its data (CC state, droplets, images, app
    /// processes' scratch dirs). Restarting with the same directory brings the
    /// apps back.
    #[arg(long, default_value = ".cube")]
    data_dir: PathBuf,

    /// The app router: `http://<app>.localhost:<port>` reaches app `<app>`.
    #[arg(long, default_value = "127.0.0.1:8080")]
    router_listen: SocketAddr,

    /// The simulated Cloud Controller (used by `cube push`).
    #[arg(long, default_value = "127.0.0.1:9022")]
    cc_listen: SocketAddr,

    /// The OPI API.
    #[arg(long, default_value = "127.0.0.1:8085")]
    opi_listen: SocketAddr,

    /// St8ge.
    #[arg(long, default_value = "127.0.0.1:8086")]
    stager_listen: SocketAddr,

    /// The registry.
    #[arg(long, default_value = "127.0.0.1:8087")]
    registry_listen: SocketAddr,

    /// One admin server for all services (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:9080")]
    admin_listen: SocketAddr,

    /// Time between Sink cycles.
    #[arg(long, default_value = "2s", value_parser = super::duration::positive)]
    interval: Duration,

    /// Domain of apps' routes.
    #[arg(long, default_value = "localhost")]
    apps_domain: String,

    /// The buildpacks St8ge offers when a push names none (default: the
    /// `buildpacks/` directory of this checkout or next to the binary).
    #[arg(long)]
    buildpacks_dir: Option<PathBuf>,

    /// Run apps on Kubernetes (--kubeconfig) instead of local processes;
    /// --namespace and the routing flags apply there only.
    #[command(flatten)]
    k8s: super::backend::K8sArgs,

    /// With --kubeconfig: the registry's host[:port] as the cluster's kubelets
    /// reach it (default: the registry's listen address).
    #[arg(long, requires = "kubeconfig")]
    registry_host: Option<String>,

    /// With --kubeconfig: the image staging Jobs run (the `cube` image built
    /// from the Containerfile).
    #[arg(long, default_value = "cube:latest")]
    stager_image: String,

    #[command(flatten)]
    nats: super::opi::NatsArgs,

    /// TLS and credentials, applied to every service's API (and the clients
    /// between them) at once.
    #[command(flatten)]
    access: cube_runtime::access::AccessArgs,
}

/// Every listener, bound before anything starts so a port clash fails fast
/// and names the port.
struct Listeners {
    router: TcpListener,
    cc: TcpListener,
    opi: TcpListener,
    stager: TcpListener,
    registry: TcpListener,
}

impl Listeners {
    async fn bind(args: &Args) -> anyhow::Result<Self> {
        Ok(Self {
            router: cube_runtime::bind(args.router_listen).await?,
            cc: cube_runtime::bind(args.cc_listen).await?,
            opi: cube_runtime::bind(args.opi_listen).await?,
            stager: cube_runtime::bind(args.stager_listen).await?,
            registry: cube_runtime::bind(args.registry_listen).await?,
        })
    }
}

/// Where each service answers.
struct Urls {
    cc: String,
    opi: String,
    stager: String,
    registry: String,
    /// The registry as kubelets (or the local backend) name it.
    registry_host: String,
    router: SocketAddr,
}

impl Urls {
    fn of(bound: &Listeners, args: &Args) -> anyhow::Result<Self> {
        let tls = args.access.is_tls();
        let url = |listener: &TcpListener| -> anyhow::Result<String> {
            let scheme = if tls { "https" } else { "http" };
            Ok(format!("{scheme}://{}", listener.local_addr()?))
        };
        let registry = url(&bound.registry)?;
        let registry_host = args.registry_host.clone().unwrap_or_else(|| {
            registry
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .to_owned()
        });
        Ok(Self {
            cc: url(&bound.cc)?,
            opi: url(&bound.opi)?,
            stager: url(&bound.stager)?,
            registry,
            registry_host,
            router: bound.router.local_addr()?,
        })
    }
}

/// What every service of `cube up` shares while it starts them.
struct Up {
    args: Args,
    urls: Urls,
    data: PathBuf,
    client: ClientAccess,
    service: Service,
    backend: BackendArgs,
    tasks: JoinSet<anyhow::Result<()>>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.k8s.routing.refuse_unless(
        args.k8s.kubeconfig.is_some(),
        "add --kubeconfig (locally, --router-listen routes by Host header)",
    )?;
    if args.k8s.namespace.is_some() && args.k8s.kubeconfig.is_none() {
        anyhow::bail!("--namespace applies to Kubernetes only: add --kubeconfig");
    }
    let bound = Listeners::bind(&args).await?;
    let urls = Urls::of(&bound, &args)?;
    let data = args.data_dir.clone();
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create the data dir {}", data.display()))?;
    let client = args.access.client()?;
    let service = Service::from_signals().with_access(args.access.server()?, client.clone());
    let (admin_addr, admin) = service.spawn_admin(args.admin_listen).await?;
    let backend = backend(&args, &urls, &data)?;
    let scheduler = backend.build(&client, RoutingMode::Ingress).await?;
    let mut up = Up {
        args,
        urls,
        data,
        client,
        service,
        backend,
        tasks: JoinSet::new(),
    };
    up.registry(bound.registry);
    up.cloud_controller(bound.cc);
    up.opi(scheduler.clone(), bound.opi)?;
    up.stager(bound.stager)?;
    up.sink();
    up.route_emitter(&scheduler)?;
    up.router(&scheduler, bound.router)?;
    up.print_banner(admin_addr);
    let failure = up.run_until_stopped().await;
    // Stop the apps' processes; their desired state stays in the data dir.
    scheduler.shutdown().await;
    admin.await.context("admin server task failed")??;
    println!("Cube stopped. `cube up` again brings the apps back.");
    failure.map_or(Ok(()), Err)
}

/// The backend `cube up` runs apps on: Kubernetes with --kubeconfig, else
/// local processes under the data dir, pulling droplets from the Registry.
fn backend(args: &Args, urls: &Urls, data: &std::path::Path) -> anyhow::Result<BackendArgs> {
    let kind = match args.k8s.kubeconfig {
        Some(_) => Backend::K8s,
        None => Backend::Local,
    };
    Ok(BackendArgs {
        backend: kind,
        registry: urls.registry_host.clone(),
        local: LocalArgs {
            data_dir: data.join("local"),
            registry_url: reqwest::Url::parse(&urls.registry)?,
            host_exec_image: DEFAULT_HOST_EXEC_IMAGE.to_owned(),
        },
        k8s: args.k8s.clone(),
        diego: DiegoArgs::default(),
    })
}

impl Up {
    /// The Registry: droplet images; imports fetch droplets from the simulator.
    fn registry(&mut self, listener: TcpListener) {
        let mut config = registry::Config::new(self.data.join("registry"));
        config.cc_url = Some(self.urls.cc.clone());
        let service = self.service.clone();
        self.tasks.spawn(async move {
            registry::run(config, listener, service)
                .await
                .context("registry failed")
        });
    }

    /// The CC simulator: stages through St8ge.
    fn cloud_controller(&mut self, listener: TcpListener) {
        let mut config = cc::sim::Config::new(self.data.join("cc-sim"));
        config.stager_url = Some(self.urls.stager.clone());
        config.apps_domain = self.args.apps_domain.clone();
        config.public_url = Some(self.urls.cc.clone());
        config.client = self.client.clone();
        let service = self.service.clone();
        self.tasks.spawn(async move {
            cc::sim::run(config, listener, service)
                .await
                .context("CC simulator failed")
        });
    }

    /// OPI over the backend; crashes and task completions go to the simulator.
    fn opi(&mut self, scheduler: Arc<dyn Scheduler>, listener: TcpListener) -> anyhow::Result<()> {
        let mut cc_callbacks = reqwest::Url::parse(&self.urls.cc)?;
        let _ = cc_callbacks.set_username(cc::client::DEFAULT_USER);
        let _ = cc_callbacks.set_password(Some(cc::client::DEFAULT_PASSWORD));
        let config = ServiceConfig {
            api: ApiConfig {
                registry: self.urls.registry_host.clone(),
                client: self.client.clone(),
                ..ApiConfig::default()
            },
            cc_url: Some(cc_callbacks),
            access: self.service.access.clone(),
        };
        let registry = self.service.metrics.clone();
        let shutdown = self.service.shutdown.clone();
        self.tasks.spawn(async move {
            opi::service::run(config, scheduler, listener, &registry, shutdown)
                .await
                .context("OPI failed")
        });
        Ok(())
    }

    /// St8ge: stages through OPI, as host tasks on the local backend or as
    /// Jobs of the `cube` image on Kubernetes.
    fn stager(&mut self, listener: TcpListener) -> anyhow::Result<()> {
        let mut config = stager::Config::new(self.urls.opi.clone());
        config.public_url = Some(reqwest::Url::parse(&self.urls.stager)?);
        config.registry_url = Some(reqwest::Url::parse(&self.urls.registry)?);
        config.cc_url = Some(reqwest::Url::parse(&self.urls.cc)?);
        config.stager_image = match self.backend.backend {
            Backend::Local => DEFAULT_HOST_EXEC_IMAGE.to_owned(),
            _ => self.args.stager_image.clone(),
        };
        config.buildpacks_dir = self.args.buildpacks_dir.clone();
        config.client = self.client.clone();
        let service = self.service.clone();
        self.tasks.spawn(async move {
            stager::run(config, listener, service)
                .await
                .context("St8ge failed")
        });
        Ok(())
    }

    /// The Sink: CC → OPI every interval.
    fn sink(&mut self) {
        let mut cc = cc::ClientConfig::new(self.urls.cc.clone());
        cc.access = self.client.clone();
        let config = sink::Config {
            cc,
            opi_url: self.urls.opi.clone(),
            registry_url: Some(self.urls.registry.clone()),
            interval: self.args.interval,
            settings: sink::Settings::default(),
            leader_election: None,
        };
        let service = self.service.clone();
        self.tasks
            .spawn(async move { sink::run(config, service).await.context("Sink failed") });
    }

    /// gorouter registration over NATS, when asked for.
    fn route_emitter(&mut self, scheduler: &Arc<dyn Scheduler>) -> anyhow::Result<()> {
        let source = scheduler.clone().routes();
        if let Some(emitter) =
            super::opi::spawn_route_emitter(&self.args.nats, source, &self.service)?
        {
            self.tasks
                .spawn(async move { emitter.await.context("route emitter task failed")? });
        }
        Ok(())
    }

    /// The router: Host header → healthy local instances. On Kubernetes the
    /// cluster's ingress routes.
    fn router(
        &mut self,
        scheduler: &Arc<dyn Scheduler>,
        listener: TcpListener,
    ) -> anyhow::Result<()> {
        if self.backend.backend != Backend::Local {
            return Ok(());
        }
        let source = scheduler
            .clone()
            .routes()
            .context("the local backend knows where its instances listen")?;
        let router = opi_local::router::router(source)?;
        let shutdown = self.service.shutdown.clone();
        self.tasks.spawn(async move {
            cube_runtime::serve(listener, router, shutdown)
                .await
                .context("router failed")
        });
        Ok(())
    }

    fn print_banner(&self, admin_addr: SocketAddr) {
        println!(
            "\nCube is up. Everything runs in this process; Ctrl-C stops it.\n\n\
             \x20 apps           http://<app>.{domain}:{router_port}\n\
             \x20 Cloud Controller (simulated)  {cc}\n\
             \x20 OPI            {opi}\n\
             \x20 St8ge          {stager}\n\
             \x20 Registry       {registry}\n\
             \x20 admin          http://{admin_addr}  (/metrics /healthz /readyz)\n\
             \x20 apps run on    {backend}\n\
             \x20 data           {data}\n\n\
             Push an app from another terminal:\n\n\
             \x20 cube push examples/python-hello --name hello\n\
             \x20 curl http://hello.{domain}:{router_port}\n",
            domain = self.args.apps_domain,
            router_port = self.urls.router.port(),
            cc = self.urls.cc,
            opi = self.urls.opi,
            stager = self.urls.stager,
            registry = self.urls.registry,
            backend = self.backend.describe(),
            data = self.data.display(),
        );
    }

    /// Runs until Ctrl-C/SIGTERM, or until a service fails (then stops the
    /// rest); the failure, if any.
    async fn run_until_stopped(&mut self) -> Option<anyhow::Error> {
        let mut failure = None;
        tokio::select! {
            () = self.service.shutdown.cancelled() => {}
            Some(result) = self.tasks.join_next() => {
                failure = Some(match result {
                    Ok(Ok(())) => anyhow::anyhow!("a service stopped unexpectedly"),
                    Ok(Err(error)) => error,
                    Err(join) => anyhow::anyhow!("a service panicked: {join}"),
                });
                self.service.shutdown.cancel();
            }
        }
        while let Some(result) = self.tasks.join_next().await {
            if let Ok(Err(error)) = result {
                tracing::warn!(error = %format!("{error:#}"), "service stopped with an error");
            }
        }
        failure
    }
}
