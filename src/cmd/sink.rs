//! `cube sink`.

/// Flags of `cube sink`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    Err(super::not_built("sink", 6))
}
