//! `cube apps`.

/// Flags of `cube apps`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    Err(super::not_built("apps", 5))
}
