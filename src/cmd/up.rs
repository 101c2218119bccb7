//! `cube up`: the whole of Cloud Foundry on one machine, in one process — the
//! CC simulator, the Registry, St8ge, OPI over the local backend, the Sink and
//! the local router.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cube_runtime::Service;
use opi::Scheduler;
use opi::http::ApiConfig;
use opi::service::ServiceConfig;
use tokio::task::JoinSet;

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

    /// Run apps on Kubernetes with this kubeconfig instead of local processes.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,

    /// With --kubeconfig: put every app in this existing namespace instead of
    /// one per space.
    #[arg(long, requires = "kubeconfig")]
    namespace: Option<String>,

    /// With --kubeconfig: the registry's host[:port] as the cluster's kubelets
    /// reach it (default: the registry's listen address).
    #[arg(long, requires = "kubeconfig")]
    registry_host: Option<String>,

    /// With --kubeconfig: the image staging Jobs run (the `cube` image built
    /// from the Containerfile).
    #[arg(long, default_value = "cube:latest")]
    stager_image: String,

    // With --kubeconfig: how routes reach the apps (default here: ingress).
    #[command(flatten)]
    routing: super::opi::RoutingArgs,

    #[command(flatten)]
    nats: super::opi::NatsArgs,

    /// TLS and credentials, applied to every service's API (and the clients
    /// between them) at once.
    #[command(flatten)]
    access: cube_runtime::access::AccessArgs,
}

/// The scheduler `cube up` runs apps on.
enum Backend {
    Local(opi_local::LocalScheduler),
    Kubernetes(Arc<opi_k8s::K8sScheduler>),
}

/// Every listener, bound before anything starts so a port clash fails fast
/// and names the port.
struct Listeners {
    router: tokio::net::TcpListener,
    cc: tokio::net::TcpListener,
    opi: tokio::net::TcpListener,
    stager: tokio::net::TcpListener,
    registry: tokio::net::TcpListener,
}

fn url(listener: &tokio::net::TcpListener, tls: bool) -> anyhow::Result<String> {
    let scheme = if tls { "https" } else { "http" };
    Ok(format!("{scheme}://{}", listener.local_addr()?))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.routing.refuse_unless(
        args.kubeconfig.is_some(),
        "add --kubeconfig (locally, --router-listen routes by Host header)",
    )?;
    let bound = Listeners {
        router: cube_runtime::bind(args.router_listen).await?,
        cc: cube_runtime::bind(args.cc_listen).await?,
        opi: cube_runtime::bind(args.opi_listen).await?,
        stager: cube_runtime::bind(args.stager_listen).await?,
        registry: cube_runtime::bind(args.registry_listen).await?,
    };
    let tls = args.access.is_tls();
    let cc_url = url(&bound.cc, tls)?;
    let opi_url = url(&bound.opi, tls)?;
    let stager_url = url(&bound.stager, tls)?;
    let registry_url = url(&bound.registry, tls)?;
    let router_addr = bound.router.local_addr()?;
    let data = args.data_dir.clone();
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create the data dir {}", data.display()))?;

    let client = args.access.client()?;
    let service = Service::from_signals().with_access(args.access.server()?, client.clone());
    let (admin_addr, admin) = service.spawn_admin(args.admin_listen).await?;
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();

    // Registry: droplet images; imports fetch droplets from the simulator.
    {
        let mut config = registry::Config::new(data.join("registry"));
        config.cc_url = Some(cc_url.clone());
        let service = service.clone();
        let listener = bound.registry;
        tasks.spawn(async move {
            registry::run(config, listener, service)
                .await
                .context("registry failed")
        });
    }

    // CC simulator: stages through St8ge.
    {
        let mut config = cc::sim::Config::new(data.join("cc-sim"));
        config.stager_url = Some(stager_url.clone());
        config.apps_domain = args.apps_domain.clone();
        config.public_url = Some(cc_url.clone());
        config.client = client.clone();
        let service = service.clone();
        let listener = bound.cc;
        tasks.spawn(async move {
            cc::sim::run(config, listener, service)
                .await
                .context("CC simulator failed")
        });
    }

    // OPI over the local backend (or Kubernetes); crashes go to the simulator.
    let registry_host = args.registry_host.clone().unwrap_or_else(|| {
        registry_url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_owned()
    });
    let backend = match &args.kubeconfig {
        None => Backend::Local(
            super::opi::local_backend_with(
                data.join("local"),
                reqwest::Url::parse(&registry_url)?,
                super::opi::DEFAULT_HOST_EXEC_IMAGE.to_owned(),
                &client,
            )
            .await?,
        ),
        Some(kubeconfig) => Backend::Kubernetes(Arc::new(
            super::opi::k8s_backend_with(
                Some(kubeconfig),
                args.namespace.clone(),
                args.routing.routing(super::opi::RoutingMode::Ingress)?,
                &registry_host,
                &client,
            )
            .await?,
        )),
    };
    {
        let scheduler: Arc<dyn Scheduler> = match &backend {
            Backend::Local(local) => Arc::new(local.clone()),
            Backend::Kubernetes(k8s) => k8s.clone(),
        };
        let mut cc_callbacks = reqwest::Url::parse(&cc_url)?;
        let _ = cc_callbacks.set_username(cc::client::DEFAULT_USER);
        let _ = cc_callbacks.set_password(Some(cc::client::DEFAULT_PASSWORD));
        let config = ServiceConfig {
            api: ApiConfig {
                registry: registry_host.clone(),
                client: client.clone(),
                ..ApiConfig::default()
            },
            cc_url: Some(cc_callbacks),
            access: service.access.clone(),
        };
        let registry = service.metrics.clone();
        let shutdown = service.shutdown.clone();
        let listener = bound.opi;
        tasks.spawn(async move {
            opi::service::run(config, scheduler, listener, &registry, shutdown)
                .await
                .context("OPI failed")
        });
    }

    // St8ge: stages as host tasks on the local backend, through OPI.
    {
        let mut config = stager::Config::new(opi_url.clone());
        config.public_url = Some(reqwest::Url::parse(&stager_url)?);
        config.registry_url = Some(reqwest::Url::parse(&registry_url)?);
        config.cc_url = Some(reqwest::Url::parse(&cc_url)?);
        config.stager_image = match &backend {
            Backend::Local(_) => super::opi::DEFAULT_HOST_EXEC_IMAGE.to_owned(),
            Backend::Kubernetes(_) => args.stager_image.clone(),
        };
        config.buildpacks_dir = args.buildpacks_dir.clone();
        config.client = client.clone();
        let service = service.clone();
        let listener = bound.stager;
        tasks.spawn(async move {
            stager::run(config, listener, service)
                .await
                .context("St8ge failed")
        });
    }

    // Sink: CC → OPI every interval.
    {
        let settings = sink::Settings::default();
        let mut cc = cc::ClientConfig::new(cc_url.clone());
        cc.access = client.clone();
        let config = sink::Config {
            cc,
            opi_url: opi_url.clone(),
            registry_url: Some(registry_url.clone()),
            interval: args.interval,
            settings,
            leader_election: None,
        };
        let service = service.clone();
        tasks.spawn(async move { sink::run(config, service).await.context("Sink failed") });
    }

    // gorouter registration over NATS, when asked for.
    {
        let source: Arc<dyn opi::routing::RouteSource> = match &backend {
            Backend::Local(local) => Arc::new(local.clone()),
            Backend::Kubernetes(k8s) => k8s.clone(),
        };
        if let Some(emitter) = super::opi::spawn_route_emitter(&args.nats, Some(source), &service)?
        {
            tasks.spawn(async move { emitter.await.context("route emitter task failed")? });
        }
    }

    // Router: Host header → healthy local instances. On Kubernetes the
    // cluster's ingress routes.
    if let Backend::Local(local) = &backend {
        let router = opi_local::router::router(local.clone())?;
        let shutdown = service.shutdown.clone();
        let listener = bound.router;
        tasks.spawn(async move {
            cube_runtime::serve(listener, router, shutdown)
                .await
                .context("router failed")
        });
    }
    let scheduler_line = match &args.kubeconfig {
        None => format!("local processes under {}", data.join("local").display()),
        Some(kubeconfig) => format!(
            "Kubernetes ({}); kubelets pull droplet images from {registry_host}",
            kubeconfig.display()
        ),
    };

    println!(
        "\nCube is up. Everything runs in this process; Ctrl-C stops it.\n\n\
         \x20 apps           http://<app>.{domain}:{router_port}\n\
         \x20 Cloud Controller (simulated)  {cc_url}\n\
         \x20 OPI            {opi_url}\n\
         \x20 St8ge          {stager_url}\n\
         \x20 Registry       {registry_url}\n\
         \x20 admin          http://{admin_addr}  (/metrics /healthz /readyz)\n\
         \x20 apps run on    {scheduler_line}\n\
         \x20 data           {data}\n\n\
         Push an app from another terminal:\n\n\
         \x20 cube push examples/python-hello --name hello\n\
         \x20 curl http://hello.{domain}:{router_port}\n",
        domain = args.apps_domain,
        router_port = router_addr.port(),
        data = data.display(),
    );

    // Run until Ctrl-C/SIGTERM, or until a service fails (then stop the rest).
    let mut failure = None;
    tokio::select! {
        () = service.shutdown.cancelled() => {}
        Some(result) = tasks.join_next() => {
            failure = Some(match result {
                Ok(Ok(())) => anyhow::anyhow!("a service stopped unexpectedly"),
                Ok(Err(error)) => error,
                Err(join) => anyhow::anyhow!("a service panicked: {join}"),
            });
            service.shutdown.cancel();
        }
    }
    while let Some(result) = tasks.join_next().await {
        if let Ok(Err(error)) = result {
            tracing::warn!(error = %format!("{error:#}"), "service stopped with an error");
        }
    }
    // Stop the apps' processes; their desired state stays in the data dir.
    if let Backend::Local(local) = &backend {
        local.shutdown().await;
    }
    admin.await.context("admin server task failed")??;
    println!("Cube stopped. `cube up` again brings the apps back.");
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
