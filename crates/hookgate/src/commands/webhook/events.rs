//! `hookgate webhook events`: the event catalogue. Works offline from the
//! catalogue compiled into this binary; asks the server instead when one is
//! configured with an API key (flags, variables or profile).

use std::process::ExitCode;

use hookgate_protocol::catalogue;
use serde_json::{json, Value};

use crate::commands::{items, Context};
use crate::output::{self, column, Column};

const COLUMNS: [Column; 3] = [
    column("EVENT TYPE", "event_type"),
    column("DATA TYPE", "data_type"),
    column("DESCRIPTION", "description"),
];

/// Options of `hookgate webhook events`.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  hookgate webhook events\n  \
hookgate webhook events transaction\n  \
hookgate webhook events --server http://127.0.0.1:8080 --api-key $KEY -o json")]
pub struct Args {
    /// Only event types containing this text.
    filter: Option<String>,
    /// Use the compiled-in catalogue even when a server is configured.
    #[arg(long)]
    offline: bool,
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let values = context.connection.resolve()?.values;
    let online =
        values.server.is_some() && (values.api_key.is_some() || values.api_private_key.is_some());

    let all: Vec<Value> = if online && !args.offline {
        let api = context.connection.org_client()?;
        items(&api.get("/v2/webhooks/events/definitions").await?)
    } else {
        catalogue::all()
            .iter()
            .map(|t| {
                json!({
                    "event_type": t.event_type,
                    "data_type": t.data_type,
                    "description": t.description,
                })
            })
            .collect()
    };

    let wanted: Vec<Value> = match &args.filter {
        Some(text) => all
            .into_iter()
            .filter(|t| {
                t["event_type"]
                    .as_str()
                    .is_some_and(|n| n.contains(text.as_str()))
            })
            .collect(),
        None => all,
    };
    output::list(context.output, &wanted, &COLUMNS);
    Ok(ExitCode::SUCCESS)
}
