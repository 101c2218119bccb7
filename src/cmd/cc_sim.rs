//! `cube cc-sim`.

/// Flags of `cube cc-sim`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    Err(super::not_built("cc-sim", 5))
}
