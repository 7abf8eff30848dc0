//! `hookgate callbacks`: the organisation's callback messages (approval
//! requests) and manual retries.

use std::process::ExitCode;

use serde_json::Value;

use super::{items, query, Context};
use crate::output::{self, column, Column, Format};

const COLUMNS: [Column; 6] = [
    column("MESSAGE ID", "id"),
    column("STATUS", "status"),
    column("RESULT", "result"),
    column("REQUEST ID", "request_id"),
    column("TRANSACTION ID", "transaction_id"),
    column("CREATED", "created_timestamp"),
];

#[derive(clap::Subcommand)]
pub enum Command {
    /// List callback messages, newest first.
    #[command(after_help = "Examples:\n  hookgate callbacks list\n  \
hookgate callbacks list --status Failed --request-ids req-1,req-2 -o json")]
    List {
        /// Only messages in this status.
        #[arg(long)]
        status: Option<String>,
        /// Only these messages (comma-separated ids).
        #[arg(long)]
        message_ids: Option<String>,
        /// Only these request ids (comma-separated).
        #[arg(long)]
        request_ids: Option<String>,
        /// Only these transaction ids (comma-separated).
        #[arg(long)]
        transaction_ids: Option<String>,
        /// Only these wallet ids (comma-separated).
        #[arg(long)]
        wallet_ids: Option<String>,
        /// Page size (1 to 50).
        #[arg(long)]
        limit: Option<u32>,
        /// Cursor of the next (older) page, from a previous answer.
        #[arg(long)]
        after: Option<String>,
    },
    /// Ask again now for a Retrying or Failed message.
    #[command(after_help = "Example:\n  hookgate callbacks retry 2d4e...")]
    Retry {
        /// The callback message's id.
        message_id: String,
    },
}

pub async fn run(context: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let api = context.connection.org_client()?;
    let format = context.output;
    match command {
        Command::List {
            status,
            message_ids,
            request_ids,
            transaction_ids,
            wallet_ids,
            limit,
            after,
        } => {
            let query = query(&[
                ("status", status),
                ("callback_message_ids", message_ids),
                ("request_ids", request_ids),
                ("transaction_ids", transaction_ids),
                ("wallet_ids", wallet_ids),
                ("limit", limit.map(|l| l.to_string())),
                ("after", after),
            ]);
            let answer = api
                .get(&format!("/v2/developers/callback_messages{query}"))
                .await?;
            match format {
                Format::Json => output::json::print(&answer),
                Format::Table => output::list(format, &items(&answer), &COLUMNS),
            }
        }
        Command::Retry { message_id } => {
            let path = format!("/v2/developers/callback_messages/{message_id}/retry");
            let answer = api.post(&path, &Value::Object(Default::default())).await?;
            output::done(format, &format!("Asking again for {message_id}"), &answer);
        }
    }
    Ok(ExitCode::SUCCESS)
}
