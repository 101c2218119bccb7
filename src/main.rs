//! The `cube` command: every Cube service, the local Cloud Foundry experience
//! (`cube up`, `cube push`) and the staging steps, in one binary.
//!
//! This file only parses the command line; each subcommand lives in `cmd/`.

mod cmd;

fn main() -> std::process::ExitCode {
    let cli: cmd::Cli = cube_runtime::config::parse();
    cmd::main(cli)
}
