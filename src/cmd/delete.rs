//! `cube delete`: delete an app with its builds and blobs.

/// Flags of `cube delete`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// App name.
    name: String,

    /// URL of the (simulated) Cloud Controller.
    #[arg(long, default_value = super::push::DEFAULT_CC_URL)]
    cc_url: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let sim = cc::push::SimClient::new(&args.cc_url)?;
    sim.delete(&args.name).await?;
    println!("Deleted {}.", args.name);
    Ok(())
}
