//! `hookgate webhook listen`: the options; the relay itself is in
//! `listen/`.

use std::process::ExitCode;
use std::time::Duration;

use crate::commands::Context;
use crate::exit::usage;
use crate::listen::{self, Config};

use super::trigger::known_type;

/// Options of `hookgate webhook listen`.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  hookgate webhook listen\n  \
hookgate webhook listen --events wallets.transaction.created,wallets.transaction.updated\n  \
hookgate webhook listen --forward 'http://127.0.0.1:3000/webhooks/cobo?env=dev'\n\n\
Each event is printed as it arrives. With --forward it is also posted to the\n\
URL with the exact body bytes and the server's signature headers\n\
(Biz-Timestamp, Biz-Resp-Signature and the underscore spellings), so a handler\n\
that verifies signatures with the server's public key works as in production.\n\
A lost connection is noticed by pings, reported, and reopened with backoff;\n\
events published meanwhile are delivered when it is back.")]
pub struct Args {
    /// Only these event types (comma-separated); all when absent.
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    events: Vec<String>,
    /// Post each event to this local URL (path and query are kept).
    #[arg(long, value_name = "URL")]
    forward: Option<String>,
    /// Seconds to wait for the local handler before giving up on one event.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    forward_timeout: f64,
    /// Events forwarded at once; later ones wait in a bounded queue.
    #[arg(long, default_value_t = 8, value_name = "N")]
    concurrency: usize,
    /// Seconds between pings to the server.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    ping_interval: f64,
    /// Seconds without any frame after which the connection counts as dead.
    #[arg(long, default_value_t = 6.0, value_name = "SECONDS")]
    dead_after: f64,
    /// Resume after this cursor (printed with each event in JSON output).
    #[arg(long, value_name = "CURSOR")]
    after: Option<String>,
    /// Stop after this many events (and their forwards) instead of running
    /// until interrupted.
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// Stop retrying after this many seconds without a connection.
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
    give_up_after: f64,
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value < 86_400.0) {
        return Err(usage(format!(
            "--{flag} must be a positive number of seconds"
        )));
    }
    Ok(Duration::from_secs_f64(value))
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    for event_type in &args.events {
        known_type(event_type)?;
    }
    let forward = match &args.forward {
        Some(text) => Some(
            reqwest::Url::parse(text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| usage(format!("--forward {text:?} is not an http(s) URL")))?,
        ),
        None => None,
    };
    if args.concurrency == 0 || args.concurrency > 256 {
        return Err(usage("--concurrency must be between 1 and 256"));
    }
    let config = Config {
        events: args.events,
        forward,
        forward_timeout: seconds("forward-timeout", args.forward_timeout)?,
        concurrency: args.concurrency,
        ping_interval: seconds("ping-interval", args.ping_interval)?,
        dead_after: seconds("dead-after", args.dead_after)?,
        after: args.after,
        max_events: args.max_events,
        give_up_after: seconds("give-up-after", args.give_up_after)?,
        format: context.output,
    };
    let api = context.connection.org_client()?;
    listen::run(&api, config).await
}
