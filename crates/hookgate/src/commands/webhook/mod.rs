//! `hookgate webhook`: the event catalogue, test triggers, listening (with
//! forwarding to a local handler) and grading a handler's signature checks.

pub mod events;
pub mod listen;
pub mod test;
pub mod trigger;

use std::process::ExitCode;

use super::Context;

#[derive(clap::Subcommand)]
pub enum Command {
    /// List the event types, with their data types and descriptions.
    Events(events::Args),
    /// Send a sample event of a type to every subscribed endpoint and listener.
    Trigger(trigger::Args),
    /// Print the organisation's events as they happen, and forward them.
    Listen(listen::Args),
    /// Check that a local handler accepts signed events and rejects forged ones.
    Test(test::Args),
}

pub async fn run(context: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Events(args) => events::run(context, args).await,
        Command::Trigger(args) => trigger::run(context, args).await,
        Command::Listen(args) => listen::run(context, args).await,
        Command::Test(args) => test::run(context, args).await,
    }
}
