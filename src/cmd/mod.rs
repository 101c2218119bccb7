//! Subcommands. Each module turns its flags into a library config and calls the
//! library's `run`; no service logic lives here.

mod apps;
mod backend;
mod bbs;
mod cc_sim;
mod delete;
mod duration;
mod opi;
mod push;
mod registry;
mod scale;
mod sink;
mod stage;
mod stager;
mod start;
mod stop;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cube_runtime::telemetry::LogFormat;

/// Cube runs Cloud Foundry apps on Kubernetes, Diego or local processes.
#[derive(Debug, Parser)]
#[command(name = "cube", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// YAML file with settings (keys are flag names; a subcommand's name as key holds
    /// settings for that subcommand). Flags and CUBE_* variables take precedence.
    #[arg(long, global = true, env = "CUBE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log line format.
    #[arg(long, global = true, env = "CUBE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,

    /// Log filter, e.g. `info` or `opi=debug,info`.
    #[arg(long, global = true, env = "CUBE_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run CC simulator, Sink, Registry, St8ge and OPI in one process: a local Cloud Foundry.
    Up(up::Args),
    /// Serve the Orchestrator Provider Interface over a scheduler backend.
    Opi(opi::Args),
    /// Serve Diego's BBS API to Cloud Controller over a scheduler backend.
    Bbs(bbs::Args),
    /// Converge the scheduler to what Cloud Controller desires.
    Sink(sink::Args),
    /// Serve the OCI registry that turns droplets into images.
    Registry(registry::Args),
    /// Serve St8ge, which stages apps as one-off scheduler tasks.
    Stager(stager::Args),
    /// Run one step of a staging task (St8ge's task runs these).
    Stage(stage::Args),
    /// Serve a simulator of Cloud Controller's internal APIs.
    CcSim(cc_sim::Args),
    /// Push an app directory to the (simulated) Cloud Controller, stage and start it.
    Push(push::Args),
    /// List apps with their state, instances and URLs.
    Apps(apps::Args),
    /// Change an app's instances, memory or disk.
    Scale(scale::Args),
    /// Start a staged app.
    Start(start::Args),
    /// Stop an app.
    Stop(stop::Args),
    /// Delete an app.
    Delete(delete::Args),
}

/// Runs the parsed command line and turns the outcome into an exit code.
pub fn main(cli: Cli) -> ExitCode {
    if let Err(error) = cube_runtime::telemetry::init(cli.log_format, &cli.log) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    cube_runtime::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Opi(args) => opi::run(args).await,
            Command::Bbs(args) => bbs::run(args).await,
            Command::Sink(args) => sink::run(args).await,
            Command::Registry(args) => registry::run(args).await,
            Command::Stager(args) => stager::run(args).await,
            Command::Stage(args) => stage::run(args).await,
            Command::CcSim(args) => cc_sim::run(args).await,
            Command::Push(args) => push::run(args).await,
            Command::Apps(args) => apps::run(args).await,
            Command::Scale(args) => scale::run(args).await,
            Command::Start(args) => start::run(args).await,
            Command::Stop(args) => stop::run(args).await,
            Command::Delete(args) => delete::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
