//! One module per subcommand.

pub mod bench;
pub mod callbacks;
pub mod demo;
pub mod endpoints;
pub mod events;
pub mod serve;
pub mod verify;
pub mod webhook;

use crate::output::Format;
use crate::profile::ConnectionArgs;

/// What every command gets besides its own arguments.
pub struct Context {
    /// Server and credentials (flags, variables, profile).
    pub connection: ConnectionArgs,
    /// Output format.
    pub output: Format,
}

/// `?a=1&b=2` from the pairs whose value is set; empty when none is.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in pairs {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            serializer.append_pair(name, value);
            any = true;
        }
    }
    if any {
        format!("?{}", serializer.finish())
    } else {
        String::new()
    }
}

/// The `data` array of a list answer.
pub fn items(answer: &serde_json::Value) -> Vec<serde_json::Value> {
    answer["data"]
        .as_array()
        .or_else(|| answer.as_array())
        .cloned()
        .unwrap_or_default()
}

/// Starts logging at `level` unless `RUST_LOG` says otherwise.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
