//! `hookgate endpoints`: list, show, create, update and revoke the
//! organisation's webhook endpoints.

use std::process::ExitCode;

use serde_json::{json, Map, Value};

use super::{items, query, Context};
use crate::output::{self, column, Column};

const COLUMNS: [Column; 4] = [
    column("ENDPOINT ID", "endpoint_id"),
    column("STATUS", "status"),
    column("URL", "url"),
    column("EVENTS", "subscribed_events"),
];

#[derive(clap::Subcommand)]
pub enum Command {
    /// List endpoints.
    #[command(after_help = "Examples:\n  hookgate endpoints list\n  \
hookgate endpoints list --status STATUS_ACTIVE --event-type wallets.transaction.created -o json")]
    List {
        /// Only endpoints in this status (STATUS_ACTIVE, STATUS_INACTIVE).
        #[arg(long)]
        status: Option<String>,
        /// Only endpoints subscribed to this event type.
        #[arg(long)]
        event_type: Option<String>,
        /// Page size (1 to 50).
        #[arg(long)]
        limit: Option<u32>,
        /// Cursor of the next (older) page, from a previous answer.
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one endpoint.
    #[command(after_help = "Example:\n  hookgate endpoints show 6b1a...")]
    Show {
        /// The endpoint's id.
        endpoint_id: String,
    },
    /// Register an endpoint.
    #[command(
        after_help = "Example:\n  hookgate endpoints create --url https://hooks.example.com/cobo \\\n    \
--events wallets.transaction.created,wallets.transaction.succeeded"
    )]
    Create {
        /// Where events are posted.
        #[arg(long)]
        url: String,
        /// Event types, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
    },
    /// Change an endpoint's subscription or description.
    #[command(
        after_help = "Example:\n  hookgate endpoints update 6b1a... --events wallets.transaction.updated"
    )]
    Update {
        /// The endpoint's id.
        endpoint_id: String,
        /// New event types, comma-separated.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Revoke an endpoint, permanently (it receives nothing new).
    #[command(after_help = "Example:\n  hookgate endpoints revoke 6b1a...")]
    Revoke {
        /// The endpoint's id.
        endpoint_id: String,
    },
}

pub async fn run(context: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let api = context.connection.org_client()?;
    let format = context.output;
    match command {
        Command::List {
            status,
            event_type,
            limit,
            after,
        } => {
            let query = query(&[
                ("status", status),
                ("event_type", event_type),
                ("limit", limit.map(|l| l.to_string())),
                ("after", after),
            ]);
            let answer = api.get(&format!("/v2/webhooks/endpoints{query}")).await?;
            match format {
                output::Format::Json => output::json::print(&answer),
                output::Format::Table => {
                    output::list(format, &items(&answer), &COLUMNS);
                    let next = answer["pagination"]["after"].as_str().unwrap_or_default();
                    if !next.is_empty() {
                        eprintln!("more: --after {next}");
                    }
                }
            }
        }
        Command::Show { endpoint_id } => {
            let answer = api
                .get(&format!("/v2/webhooks/endpoints/{endpoint_id}"))
                .await?;
            output::record(format, &answer);
        }
        Command::Create {
            url,
            events,
            description,
        } => {
            let mut body = json!({"url": url, "subscribed_events": events});
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            let answer = api.post("/v2/webhooks/endpoints", &body).await?;
            let id = answer["endpoint_id"].as_str().unwrap_or_default();
            output::done(format, &format!("Created endpoint {id}"), &answer);
        }
        Command::Update {
            endpoint_id,
            events,
            description,
        } => {
            let mut body = Map::new();
            if let Some(events) = events {
                body.insert("subscribed_events".into(), json!(events));
            }
            if let Some(description) = description {
                body.insert("description".into(), json!(description));
            }
            if body.is_empty() {
                return Err(crate::exit::usage(
                    "nothing to change: pass --events or --description",
                ));
            }
            let path = format!("/v2/webhooks/endpoints/{endpoint_id}");
            let answer = api.put(&path, &Value::Object(body)).await?;
            output::done(format, &format!("Updated endpoint {endpoint_id}"), &answer);
        }
        Command::Revoke { endpoint_id } => {
            let path = format!("/v2/webhooks/endpoints/{endpoint_id}");
            let answer = api
                .put(&path, &json!({"status": "STATUS_INACTIVE"}))
                .await?;
            output::done(format, &format!("Revoked endpoint {endpoint_id}"), &answer);
        }
    }
    Ok(ExitCode::SUCCESS)
}
