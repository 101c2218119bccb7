//! `cube push`: push an app directory (or a Docker image) to the simulated CC,
//! stage it through St8ge, start it and wait for its instances.

use std::path::PathBuf;
use std::time::Duration;

use cc::sim::SimClient;
use opi::http::OpiClient;

use crate::push::PushOptions;

/// Default URL of `cube cc-sim`.
pub const DEFAULT_CC_URL: &str = "http://127.0.0.1:9022";
/// Default URL of OPI (`cube up`'s).
pub const DEFAULT_OPI_URL: &str = "http://127.0.0.1:8085";
/// Default URL of `cube up`'s app router.
pub const DEFAULT_ROUTER_URL: &str = "http://localhost:8080";

/// Flags of `cube push`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// App directory (ignored with --docker-image).
    #[arg(default_value = ".")]
    dir: PathBuf,

    /// App name.
    #[arg(long, short = 'n')]
    name: String,

    /// Number of instances.
    #[arg(long, short = 'i')]
    instances: Option<u32>,

    /// Memory limit, e.g. 256M or 1G (plain numbers are MB).
    #[arg(long, short = 'm', value_parser = parse_megabytes)]
    memory: Option<u64>,

    /// Disk limit, e.g. 1G (plain numbers are MB).
    #[arg(long, short = 'k', value_parser = parse_megabytes)]
    disk: Option<u64>,

    /// Buildpack name or URL; repeat for several. Default: auto-detect.
    #[arg(long, short = 'b')]
    buildpack: Vec<String>,

    /// Run this Docker image instead of staging app bits.
    #[arg(long, short = 'o')]
    docker_image: Option<String>,

    /// Start command.
    #[arg(long, short = 'c')]
    command: Option<String>,

    /// URL of the (simulated) Cloud Controller.
    #[arg(long, default_value = DEFAULT_CC_URL)]
    cc_url: String,

    /// OPI's URL: push waits until the instances run and shows them.
    #[arg(long, default_value = DEFAULT_OPI_URL)]
    opi_url: String,

    /// Do not wait for the instances to run.
    #[arg(long)]
    no_wait: bool,

    /// The app router (`cube up`'s), used to print the app's URLs.
    #[arg(long, default_value = DEFAULT_ROUTER_URL)]
    router_url: url::Url,

    /// Seconds staging may take.
    #[arg(long, default_value_t = 900)]
    staging_timeout: u64,

    /// Seconds instances may take to start (with --opi-url).
    #[arg(long, default_value_t = 300)]
    start_timeout: u64,

    #[command(flatten)]
    access: cube_runtime::access::ClientArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let access = args.access.client(None)?;
    let sim = SimClient::with_access(&args.cc_url, &access)?;
    let opi = if args.no_wait {
        None
    } else {
        Some(OpiClient::with_access(&args.opi_url, &access)?)
    };
    let options = PushOptions {
        name: args.name,
        dir: args.dir,
        instances: args.instances,
        memory_mb: args.memory,
        disk_mb: args.disk,
        buildpacks: args.buildpack,
        docker_image: args.docker_image,
        command: args.command,
        staging_timeout: Duration::from_secs(args.staging_timeout),
        start_timeout: Duration::from_secs(args.start_timeout),
        poll_interval: Duration::from_millis(500),
        staging_logs: !args.no_wait,
    };
    let app =
        crate::push::push(&sim, opi.as_ref(), options, &mut |line| println!("{line}")).await?;
    println!();
    println!("name:       {}", app.name);
    println!("routes:     {}", app.routes.join(", "));
    let urls: Vec<String> = app
        .routes
        .iter()
        .map(|route| crate::push::route_url(route, &args.router_url))
        .collect();
    if !urls.is_empty() {
        println!("urls:       {}", urls.join(", "));
    }
    println!("instances:  {}", app.instances);
    println!("memory:     {}M", app.memory_mb);
    if let Some(droplet) = &app.droplet {
        if let Some(buildpack) = &droplet.detected_buildpack {
            println!("buildpack:  {buildpack}");
        }
        if let Some(image) = &droplet.docker_image {
            println!("image:      {image}");
        }
    }
    Ok(())
}

/// `256M`, `1G`, `512` (MB) → megabytes.
pub fn parse_megabytes(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let (number, factor) = if let Some(n) = upper.strip_suffix("GB").or(upper.strip_suffix('G')) {
        (n, 1024)
    } else if let Some(n) = upper.strip_suffix("MB").or(upper.strip_suffix('M')) {
        (n, 1)
    } else {
        (upper.as_str(), 1)
    };
    number
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| n * factor)
        .ok_or_else(|| format!("`{text}` is not a size like 256M or 1G"))
}

#[cfg(test)]
mod tests {
    use super::parse_megabytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_megabytes("256M"), Ok(256));
        assert_eq!(parse_megabytes("1g"), Ok(1024));
        assert_eq!(parse_megabytes("2GB"), Ok(2048));
        assert_eq!(parse_megabytes("64"), Ok(64));
        assert!(parse_megabytes("0").is_err());
        assert!(parse_megabytes("lots").is_err());
    }
}
