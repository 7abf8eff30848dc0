//! `hookgate`: the delivery server and the tools integrators use with it.
//!
//! - `commands/`: one file (or folder) per subcommand;
//! - `output/`: one file per output format;
//! - `listen/`: the relay behind `hookgate webhook listen`;
//! - `profile.rs`: where a command finds its server and credentials;
//! - `client.rs`: the HTTP API client; `exit.rs`: the exit codes.

mod client;
mod commands;
mod exit;
mod listen;
mod output;
mod profile;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::Context;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Self-hosted webhook and approval-callback delivery, wire-compatible with
/// Cobo WaaS 2.0 and 1.0.
#[derive(Parser)]
#[command(
    name = "hookgate",
    version,
    about,
    propagate_version = true,
    after_help = exit::HELP
)]
struct Cli {
    #[command(flatten)]
    connection: profile::ConnectionArgs,
    /// Output format.
    #[arg(long, short, global = true, env = "HOOKGATE_OUTPUT", value_enum,
          default_value_t = output::Format::Table)]
    output: output::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(commands::serve::Args),
    /// Run the whole delivery path on realistic data, with no set-up.
    Demo(commands::demo::Args),
    /// Measure throughput, latency, memory and CPU of a server on this machine.
    Bench(commands::bench::Args),
    /// Webhook events: the catalogue, test triggers, listening, handler tests.
    #[command(subcommand)]
    Webhook(commands::webhook::Command),
    /// Check the signature of a captured request.
    Verify(commands::verify::Args),
    /// Webhook endpoints of the organisation.
    #[command(subcommand)]
    Endpoints(commands::endpoints::Command),
    /// Events delivered to an endpoint, their attempts, manual retries.
    #[command(subcommand)]
    Events(commands::events::Command),
    /// Callback messages (approvals) and manual retries.
    #[command(subcommand)]
    Callbacks(commands::callbacks::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts");

    let context = Context {
        connection: cli.connection,
        output: cli.output,
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Demo(args) => commands::demo::run(args).await,
            Command::Bench(args) => commands::bench::run(&context, args).await,
            Command::Webhook(command) => commands::webhook::run(&context, command).await,
            Command::Verify(args) => commands::verify::run(&context, args).await,
            Command::Endpoints(command) => commands::endpoints::run(&context, command).await,
            Command::Events(command) => commands::events::run(&context, command).await,
            Command::Callbacks(command) => commands::callbacks::run(&context, command).await,
        }
    });

    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::code_of(&e)
        }
    }
}
