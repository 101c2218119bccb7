//! `cube registry` and `cube registry gc`: flags → [`registry::Config`] →
//! [`registry::run`] / [`registry::gc::collect`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use registry::droplet::Limits;
use registry::rootfs::RootfsSource;

/// Flags of `cube registry`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Address of the OCI registry API.
    #[arg(long, default_value = "127.0.0.1:8087")]
    listen: SocketAddr,

    /// Address of the admin port (/metrics, /healthz, /readyz).
    #[arg(long, default_value = "127.0.0.1:9087")]
    admin_listen: SocketAddr,

    #[command(flatten)]
    store: StoreArgs,

    #[command(flatten)]
    access: cube_runtime::access::AccessArgs,

    /// Cloud Controller base URL for droplet downloads (`{"uri": ...}` imports);
    /// relative URIs resolve against it and absolute ones must point at it.
    /// Credentials in the URL are sent as Basic auth.
    #[arg(long, value_name = "URL")]
    cc_url: Option<String>,

    /// Base image of droplet images: an OCI image layout directory, or an image
    /// reference pulled once from its registry.
    #[arg(long, value_name = "REF|DIR")]
    rootfs: Option<String>,

    /// Pull a `--rootfs` reference over plain HTTP.
    #[arg(long)]
    rootfs_insecure: bool,

    /// Users and tokens file (lines `user|token <name> sha256:<hex> [push|pull]`);
    /// without it the registry needs no credentials.
    #[arg(long, value_name = "FILE")]
    auth: Option<PathBuf>,

    /// With `--auth`, let anyone pull.
    #[arg(long)]
    anonymous_pull: bool,

    /// Largest droplet `.tgz` accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_compressed)]
    max_droplet_bytes: u64,

    /// Largest unpacked droplet, in bytes (stops gzip bombs).
    #[arg(long, default_value_t = Limits::default().max_unpacked)]
    max_unpacked_bytes: u64,

    /// Most entries in one droplet.
    #[arg(long, default_value_t = Limits::default().max_entries)]
    max_droplet_entries: u64,

    /// Largest blob accepted by push, in bytes.
    #[arg(long, default_value_t = 16 << 30)]
    max_blob_bytes: u64,

    /// Memory for hot blobs, in bytes (0: none); blobs up to half of it are
    /// served from memory.
    #[arg(long, default_value_t = registry::config::DEFAULT_BLOB_CACHE_BYTES)]
    blob_cache_bytes: u64,

    /// Mount a blob pushed with `?mount=<digest>` and no `from` from any
    /// repository that holds it (201) instead of starting an upload (202).
    #[arg(long)]
    automatic_crossmount: bool,
}

/// Where the registry keeps its data.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// Directory for blobs and repositories (and, with --object-store, for temp
    /// files and upload sessions only).
    #[arg(long, value_name = "DIR", default_value = "cube-data/registry")]
    data_dir: PathBuf,

    /// Keep blobs and repositories in an S3-compatible store,
    /// `s3://bucket/prefix`; credentials, region and endpoint from `AWS_*`.
    #[arg(long, value_name = "URL")]
    object_store: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Delete blobs no manifest references (and stale upload sessions).
    Gc(GcArgs),
}

/// Flags of `cube registry gc`.
#[derive(Debug, clap::Args)]
struct GcArgs {
    #[command(flatten)]
    store: StoreArgs,

    /// Keep anything younger than this (`90s`, `30m`, `1h`, `2d`), so pushes in
    /// flight are not collected.
    #[arg(long, default_value = "1h", value_parser = super::duration::parse)]
    grace: Duration,

    /// Only report what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

fn config(args: &Args) -> registry::Config {
    let mut config = registry::Config::new(&args.store.data_dir);
    config.object_store = args.store.object_store.clone();
    config.rootfs = args
        .rootfs
        .as_deref()
        .map(|r| RootfsSource::parse(r, args.rootfs_insecure));
    config.cc_url = args.cc_url.clone();
    config.auth_file = args.auth.clone();
    config.anonymous_pull = args.anonymous_pull;
    config.droplet_limits = Limits {
        max_compressed: args.max_droplet_bytes,
        max_unpacked: args.max_unpacked_bytes,
        max_entries: args.max_droplet_entries,
    };
    config.max_blob_bytes = args.max_blob_bytes;
    config.blob_cache_bytes = args.blob_cache_bytes;
    config.automatic_crossmount = args.automatic_crossmount;
    config
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Command::Gc(gc)) = args.command {
        return run_gc(gc).await;
    }
    let service = cube_runtime::Service::from_signals()
        .with_access(args.access.server()?, args.access.client()?);
    let (admin, _admin_task) = service.spawn_admin(args.admin_listen).await?;
    tracing::info!(%admin, "admin port listening");
    let listener = cube_runtime::bind(args.listen).await?;
    registry::run(config(&args), listener, service)
        .await
        .context("registry stopped")
}

async fn run_gc(args: GcArgs) -> anyhow::Result<()> {
    let mut config = registry::Config::new(&args.store.data_dir);
    config.object_store = args.store.object_store;
    let store = registry::server::open_store(&config).await?;
    let report = registry::gc::collect(&store, args.grace, args.dry_run).await?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    println!(
        "gc: {verb} {} blobs ({} bytes), kept {}, removed {} stale uploads",
        report.deleted.len(),
        report.freed_bytes,
        report.kept,
        report.stale_uploads
    );
    for digest in &report.deleted {
        println!("  {digest}");
    }
    Ok(())
}
