//! `cube registry`.

/// Flags of `cube registry`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    Err(super::not_built("registry", 7))
}
