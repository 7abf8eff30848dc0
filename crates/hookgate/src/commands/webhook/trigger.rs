//! `hookgate webhook trigger`: asks the server to send a sample event of a
//! type (with optional overrides) to every subscribed endpoint and every
//! listener. The type and the override are checked here, before any
//! request.

use std::process::ExitCode;

use hookgate_protocol::catalogue;
use serde_json::{json, Map, Value};

use crate::commands::Context;
use crate::exit::usage;
use crate::output;

/// Options of `hookgate webhook trigger`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  hookgate webhook trigger wallets.transaction.created\n  \
hookgate webhook trigger wallets.transaction.updated --override '{\"status\":\"Completed\"}'"
)]
pub struct Args {
    /// Event type, from `hookgate webhook events`.
    event_type: String,
    /// JSON object whose top-level keys replace the sample's data fields.
    #[arg(long = "override", value_name = "JSON")]
    override_data: Option<String>,
}

/// The event type, or a usage error naming the closest ones.
pub fn known_type(name: &str) -> anyhow::Result<&'static str> {
    match catalogue::find(name) {
        Some(entry) => Ok(entry.event_type.as_str()),
        None => Err(usage(format!(
            "{name:?} is not an event type; did you mean: {}? \
             (hookgate webhook events lists them all)",
            catalogue::closest(name, 3).join(", ")
        ))),
    }
}

/// The override as a JSON object, or a usage error that says what is wrong.
pub fn parse_override(text: &str) -> anyhow::Result<Map<String, Value>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        usage(format!(
            "--override is not valid JSON ({e}); quote it for the shell, \
             like --override '{{\"status\":\"Completed\"}}'"
        ))
    })?;
    match value {
        Value::Object(fields) => Ok(fields),
        other => {
            let kind = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            Err(usage(format!(
                "--override must be a JSON object of data fields, like \
                 '{{\"status\":\"Completed\"}}', not {kind}"
            )))
        }
    }
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let event_type = known_type(&args.event_type)?;
    let overrides = args
        .override_data
        .as_deref()
        .map(parse_override)
        .transpose()?;
    let api = context.connection.org_client()?;

    let mut body = json!({"event_type": event_type});
    if let Some(overrides) = overrides {
        body["override_data"] = Value::Object(overrides);
    }
    let answer = api.post("/v2/webhooks/events/trigger", &body).await?;
    let message = format!("Triggered {event_type}: sent to subscribed endpoints and listeners");
    output::done(context.output, &message, &answer);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_get_the_closest_names() {
        let error = known_type("wallets.transaction.create").unwrap_err();
        assert!(
            error.to_string().contains("wallets.transaction.created"),
            "{error}"
        );
    }

    #[test]
    fn overrides_must_be_objects() {
        assert!(parse_override(r#"{"status":"Completed"}"#).is_ok());
        let error = parse_override("[1]").unwrap_err().to_string();
        assert!(error.contains("not an array"), "{error}");
        let error = parse_override("{status:").unwrap_err().to_string();
        assert!(error.contains("not valid JSON"), "{error}");
    }
}
