//! `hookgate`: the delivery server and the tools around it.
//!
//! Each subcommand lives in its own file under `commands/`.

mod client;
mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Self-hosted webhook and approval-callback delivery, wire-compatible with
/// Cobo WaaS 2.0 and 1.0.
#[derive(Parser)]
#[command(name = "hookgate", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(commands::serve::Args),
    /// Run the whole delivery path on realistic data, with no set-up.
    Demo(commands::demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts");

    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Demo(args) => commands::demo::run(args).await,
        }
    });

    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
