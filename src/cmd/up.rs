//! `cube up`.

/// Flags of `cube up`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    Err(super::not_built("up", 9))
}
