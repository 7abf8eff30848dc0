//! What `listen` prints: one line per event and per forward on standard
//! output (a JSON document per line with `--output json`), and connection
//! news on standard error.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::forward::Outcome;
use super::frames::Event;
use crate::output::{json, Format};

/// Prints for one run of `listen`.
#[derive(Clone, Copy)]
pub struct Printer {
    pub format: Format,
}

/// `HH:MM:SS` (UTC) of the time now.
fn clock() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

impl Printer {
    /// An event arrived.
    pub fn event(&self, event: &Event) {
        match self.format {
            Format::Json => json::line(&json!({
                "type": "event",
                "event_id": event.event_id,
                "event_type": event.event_type,
                "created_timestamp": event.created_timestamp,
                "cursor": event.cursor,
                "headers": event.headers,
                "body": event.body,
            })),
            Format::Table => println!("{}  {:<40}  {}", clock(), event.event_type, event.event_id),
        }
    }

    /// An event was forwarded, or could not be.
    pub fn forwarded(&self, event: &Event, url: &str, outcome: &Outcome) {
        let ms = outcome.latency.as_millis();
        match self.format {
            Format::Json => json::line(&json!({
                "type": "forwarded",
                "event_id": event.event_id,
                "url": url,
                "status": outcome.status,
                "latency_ms": ms,
                "error": outcome.error,
            })),
            Format::Table => match (&outcome.status, &outcome.error) {
                (Some(status), _) => {
                    println!(
                        "{}    -> {status} in {ms} ms  ({})",
                        clock(),
                        event.event_id
                    )
                }
                (None, error) => println!(
                    "{}    -> failed: {}  ({})",
                    clock(),
                    error.as_deref().unwrap_or("no answer"),
                    event.event_id
                ),
            },
        }
    }

    /// Connection news, for people: always on standard error.
    pub fn note(&self, text: &str) {
        eprintln!("{} {text}", clock());
    }
}
