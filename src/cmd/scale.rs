//! `cube scale`: change an app's instances, memory or disk.

/// Flags of `cube scale`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// App name.
    name: String,

    /// Number of instances.
    #[arg(long, short = 'i')]
    instances: Option<u32>,

    /// Memory limit, e.g. 256M or 1G (restarts the app).
    #[arg(long, short = 'm', value_parser = super::push::parse_megabytes)]
    memory: Option<u64>,

    /// Disk limit, e.g. 1G (restarts the app).
    #[arg(long, short = 'k', value_parser = super::push::parse_megabytes)]
    disk: Option<u64>,

    /// URL of the (simulated) Cloud Controller.
    #[arg(long, default_value = super::push::DEFAULT_CC_URL)]
    cc_url: String,

    #[command(flatten)]
    access: cube_runtime::access::ClientArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.instances.is_none() && args.memory.is_none() && args.disk.is_none() {
        anyhow::bail!("nothing to scale: give --instances, --memory or --disk");
    }
    let sim = cc::sim::SimClient::with_access(&args.cc_url, &args.access.client(None)?)?;
    let scale = cc::sim::state::Scale {
        instances: args.instances,
        memory_mb: args.memory,
        disk_mb: args.disk,
    };
    let app = sim.scale(&args.name, &scale).await?;
    println!(
        "Scaled {}: {} instance(s), {}M memory, {}M disk",
        app.name, app.instances, app.memory_mb, app.disk_mb
    );
    Ok(())
}
