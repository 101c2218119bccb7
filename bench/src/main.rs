//! `cargo run -p cube-bench --release -- <scenario>|all`
//!
//! Each scenario measures Cube and, in the same run, its peer (another
//! implementation) or the physical limit of the same work, and prints a
//! table and a last line `<scenario>: <figures> … ratio <x>`: machines here
//! are shared and noisy, so only same-run ratios compare across runs.

mod harness;
mod scenarios;

use clap::Parser;

const SCENARIOS: &[&str] = &[
    "opi-desire",
    "sink-converge",
    "droplet-import",
    "registry-pull",
    "watch-memory",
    "access",
    "bbs-desire",
];

/// Cube's benchmarks.
#[derive(Debug, Parser)]
#[command(name = "cube-bench")]
struct Cli {
    /// A scenario, or `all`.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(
        ["all", "opi-desire", "sink-converge", "droplet-import", "registry-pull", "watch-memory", "access", "bbs-desire"]
    ))]
    scenario: String,
}

async fn run(scenario: &str) -> anyhow::Result<()> {
    match scenario {
        "opi-desire" => scenarios::opi_desire::run().await,
        "sink-converge" => scenarios::sink_converge::run().await,
        "droplet-import" => scenarios::droplet_import::run().await,
        "registry-pull" => scenarios::registry_pull::run().await,
        "watch-memory" => scenarios::watch_memory::run().await,
        "access" => scenarios::access::run().await,
        "bbs-desire" => scenarios::bbs_desire::run().await,
        other => anyhow::bail!("unknown scenario {other}"),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let list: Vec<&str> = if cli.scenario == "all" {
            SCENARIOS.to_vec()
        } else {
            vec![cli.scenario.as_str()]
        };
        let mut failed = Vec::new();
        for scenario in list {
            if let Err(error) = run(scenario).await {
                eprintln!("{scenario}: FAILED: {error:#}");
                failed.push(scenario);
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("failed: {}", failed.join(", "))
        }
    })
}
