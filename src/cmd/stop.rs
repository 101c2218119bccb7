//! `cube stop`: stop an app (the Sink then stops its instances).

/// Flags of `cube stop`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// App name.
    name: String,

    /// URL of the (simulated) Cloud Controller.
    #[arg(long, default_value = super::push::DEFAULT_CC_URL)]
    cc_url: String,

    #[command(flatten)]
    access: cube_runtime::access::ClientArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let sim = cc::sim::SimClient::with_access(&args.cc_url, &args.access.client(None)?)?;
    let app = sim.stop(&args.name).await?;
    println!("Stopped {}.", app.name);
    Ok(())
}
