//! The `cube` command: every Cube service, the local Cloud Foundry experience
//! (`cube up`, `cube push`) and the staging steps, in one binary.
//!
//! This file only parses the command line; each subcommand lives in `cmd/`.
//! `push/` is the client side of `cube push`, `apps` and friends (what the `cf`
//! CLI does against CC), the CLI's own logic.

mod cmd;
mod push;

fn main() -> std::process::ExitCode {
    let cli: cmd::Cli = cube_runtime::config::parse();
    cmd::main(cli)
}
