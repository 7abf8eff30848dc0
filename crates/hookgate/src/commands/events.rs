//! `hookgate events`: the events delivered to one endpoint, one event with
//! its attempts, and manual retries.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::{items, query, Context};
use crate::output::{self, column, Column, Format};

const COLUMNS: [Column; 5] = [
    column("EVENT ID", "event_id"),
    column("TYPE", "type"),
    column("STATUS", "status"),
    column("CREATED", "created_timestamp"),
    column("RETRIES LEFT", "retries_left"),
];

const ATTEMPT_COLUMNS: [Column; 5] = [
    column("TIME", "created_timestamp"),
    column("STATUS CODE", "response_status_code"),
    column("MS", "response_time"),
    column("SUCCESS", "success"),
    column("FAILURE", "failure_reason"),
];

#[derive(clap::Subcommand)]
pub enum Command {
    /// List an endpoint's events, newest first.
    #[command(
        after_help = "Examples:\n  hookgate events list --endpoint 6b1a...\n  \
hookgate events list --endpoint 6b1a... --status Failed,Retrying --type wallets.transaction.created"
    )]
    List {
        /// The endpoint's id.
        #[arg(long)]
        endpoint: String,
        /// Only events in these statuses (Success, Retrying, Failed; comma-separated).
        #[arg(long)]
        status: Option<String>,
        /// Only events of this type.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Page size (1 to 50).
        #[arg(long)]
        limit: Option<u32>,
        /// Cursor of the next (older) page, from a previous answer.
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one event and every attempt made to deliver it.
    #[command(after_help = "Example:\n  hookgate events show --endpoint 6b1a... 0f9c...")]
    Show {
        /// The endpoint's id.
        #[arg(long)]
        endpoint: String,
        /// The event's id.
        event_id: String,
    },
    /// Deliver a Retrying or Failed event again now.
    #[command(after_help = "Example:\n  hookgate events retry --endpoint 6b1a... 0f9c...")]
    Retry {
        /// The endpoint's id.
        #[arg(long)]
        endpoint: String,
        /// The event's id.
        event_id: String,
    },
}

pub async fn run(context: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let api = context.connection.org_client()?;
    let format = context.output;
    match command {
        Command::List {
            endpoint,
            status,
            event_type,
            limit,
            after,
        } => {
            let query = query(&[
                ("status", status),
                ("type", event_type),
                ("limit", limit.map(|l| l.to_string())),
                ("after", after),
            ]);
            let path = format!("/v2/webhooks/endpoints/{endpoint}/events{query}");
            let answer = api.get(&path).await?;
            match format {
                Format::Json => output::json::print(&answer),
                Format::Table => output::list(format, &items(&answer), &COLUMNS),
            }
        }
        Command::Show { endpoint, event_id } => {
            let base = format!("/v2/webhooks/endpoints/{endpoint}/events/{event_id}");
            let event = api.get(&base).await?;
            let logs = api.get(&format!("{base}/logs")).await?;
            let attempts = items(&logs);
            match format {
                Format::Json => output::json::print(&json!({"event": event, "attempts": attempts})),
                Format::Table => {
                    let mut summary = event.clone();
                    if let Some(object) = summary.as_object_mut() {
                        object.remove("data");
                    }
                    output::record(format, &summary);
                    println!("\nattempts:");
                    output::list(format, &attempts, &ATTEMPT_COLUMNS);
                }
            }
        }
        Command::Retry { endpoint, event_id } => {
            let path = format!("/v2/webhooks/endpoints/{endpoint}/events/{event_id}/retry");
            let answer = api.post(&path, &Value::Object(Default::default())).await?;
            output::done(format, &format!("Retrying event {event_id}"), &answer);
        }
    }
    Ok(ExitCode::SUCCESS)
}
