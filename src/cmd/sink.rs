//! `cube sink`: keep the scheduler equal to what Cloud Controller desires.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use cube_runtime::Service;

/// Flags of `cube sink`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cloud Controller's internal API.
    #[arg(long, default_value = "http://127.0.0.1:9022")]
    cc_url: String,

    /// User for CC's internal API (Basic auth).
    #[arg(long, default_value = cc::client::DEFAULT_USER)]
    cc_username: String,

    /// Password for CC's internal API.
    #[arg(long, default_value = cc::client::DEFAULT_PASSWORD, hide_default_value = true)]
    cc_password: String,

    /// CA bundle to trust for CC (instead of the system roots).
    #[arg(long)]
    cc_ca: Option<PathBuf>,

    /// Client certificate for mTLS to CC.
    #[arg(long, requires = "cc_key")]
    cc_cert: Option<PathBuf>,

    /// Key of --cc-cert.
    #[arg(long, requires = "cc_cert")]
    cc_key: Option<PathBuf>,

    /// OPI's API.
    #[arg(long, default_value = "http://127.0.0.1:8085")]
    opi_url: String,

    /// The registry that must hold droplet images (empty: do not check).
    #[arg(long, default_value = "http://127.0.0.1:8087")]
    registry_url: String,

    /// Time between cycles (e.g. 15s, 500ms, 2m).
    #[arg(long, default_value = "15s", value_parser = super::duration::positive)]
    interval: Duration,

    /// Page size of CC's bulk API.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch_size: u32,

    /// Most OPI writes in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    parallel: u32,

    /// Refuse a cycle's stops when they exceed this fraction of all LRPs…
    #[arg(long, default_value_t = 0.5)]
    max_stop_fraction: f64,

    /// …and this many LRPs.
    #[arg(long, default_value_t = 10)]
    mass_stop_min: usize,

    /// Stop however many LRPs CC no longer desires.
    #[arg(long)]
    allow_mass_stop: bool,

    /// Address of the admin server (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:9088")]
    admin_listen: SocketAddr,

    /// Only the holder of a Kubernetes Lease writes, so several replicas can
    /// run and never both write (in-cluster config or $KUBECONFIG).
    #[arg(long)]
    leader_election: bool,

    /// Namespace of the Lease.
    #[arg(long, default_value = "cube-system")]
    leader_election_namespace: String,

    /// Name of the Lease.
    #[arg(long, default_value = "cube-sink")]
    leader_election_name: String,

    /// This replica's identity in the Lease (default: host name and pid).
    #[arg(long)]
    leader_election_identity: Option<String>,

    /// How long the Lease lasts without renewal.
    #[arg(long, default_value = "15s", value_parser = super::duration::positive)]
    leader_election_duration: Duration,

    #[command(flatten)]
    access: cube_runtime::access::ClientArgs,
}

impl Args {
    /// The library config these flags describe.
    pub fn config(&self) -> anyhow::Result<sink::Config> {
        if !(self.max_stop_fraction > 0.0 && self.max_stop_fraction <= 1.0) {
            anyhow::bail!(
                "--max-stop-fraction must be in (0, 1], got {}",
                self.max_stop_fraction
            );
        }
        let mut cc = cc::ClientConfig::new(self.cc_url.clone());
        cc.username = Some(self.cc_username.clone());
        cc.password = Some(self.cc_password.clone());
        cc.ca_cert = self.cc_ca.clone();
        cc.client_cert = self.cc_cert.clone();
        cc.client_key = self.cc_key.clone();
        cc.access = self.access.client(None)?;
        Ok(sink::Config {
            cc,
            opi_url: self.opi_url.clone(),
            registry_url: Some(self.registry_url.clone()).filter(|u| !u.is_empty()),
            interval: self.interval,
            settings: sink::Settings {
                batch_size: self.batch_size,
                parallel: usize::try_from(self.parallel).unwrap_or(32),
                max_stop_fraction: self.max_stop_fraction,
                mass_stop_min: self.mass_stop_min,
                allow_mass_stop: self.allow_mass_stop,
            },
            leader_election: self.leader_election.then(|| sink::leader::LeaseConfig {
                namespace: self.leader_election_namespace.clone(),
                name: self.leader_election_name.clone(),
                identity: self.leader_election_identity.clone().unwrap_or_else(|| {
                    let host = std::env::var("HOSTNAME")
                        .ok()
                        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                        .map(|h| h.trim().to_owned())
                        .unwrap_or_else(|| "sink".into());
                    format!("{host}-{}", std::process::id())
                }),
                duration: self.leader_election_duration,
            }),
        })
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config()?;
    let service = Service::from_signals();
    let (admin_addr, admin) = service.spawn_admin(args.admin_listen).await?;
    tracing::info!(admin = %admin_addr, cc = %args.cc_url, opi = %args.opi_url, "cube sink started");
    sink::run(config, service).await.context("sink failed")?;
    admin.await.context("admin server task failed")??;
    Ok(())
}
