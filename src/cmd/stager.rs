//! `cube stager`.

/// Flags of `cube stager`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    Err(super::not_built("stager", 8))
}
