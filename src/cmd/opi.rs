//! `cube opi`.

/// Flags of `cube opi`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    Err(super::not_built("opi", 3))
}
