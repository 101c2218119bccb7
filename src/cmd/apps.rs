//! `cube apps`: list apps with their state, instances and URLs.

/// Flags of `cube apps`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// URL of the (simulated) Cloud Controller.
    #[arg(long, default_value = super::push::DEFAULT_CC_URL)]
    cc_url: String,

    /// The app router (`cube up`'s), used to print reachable URLs.
    #[arg(long, default_value = super::push::DEFAULT_ROUTER_URL)]
    router_url: url::Url,

    #[command(flatten)]
    access: cube_runtime::access::ClientArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let sim = cc::sim::SimClient::with_access(&args.cc_url, &args.access.client(None)?)?;
    let apps = sim.list().await?;
    if apps.is_empty() {
        println!("No apps found.");
    } else {
        println!("{}", crate::push::apps_table(&apps, Some(&args.router_url)));
    }
    Ok(())
}
