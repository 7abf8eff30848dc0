//! The relay behind `hookgate webhook listen`.
//!
//! One loop, one connection at a time:
//!
//! 1. open the WebSocket `/v2/webhooks/events/stream/` (authenticated like
//!    any API call), passing the last cursor seen so that the server
//!    replays what was published while this client was away, and the
//!    forward URL, which becomes the body's `url`;
//! 2. send the subscribe frame ([`frames::subscribe`]);
//! 3. print each event, hand it to the [`forward::Forwarder`], remember its
//!    cursor; ping every `ping_interval` and count the connection dead
//!    after `dead_after` without any frame;
//! 4. on loss, say so and reconnect after a backoff that doubles from
//!    [`BACKOFF_FIRST`] up to [`BACKOFF_MAX`], with random jitter, until
//!    `give_up_after` passes without a connection.
//!
//! A refusal by the server (bad credential, unknown event type) ends the
//! run with exit code 3 instead of retrying.

pub mod forward;
pub mod frames;
pub mod print;

use std::collections::{HashSet, VecDeque};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::client::ApiClient;
use crate::exit::Failure;
use crate::output::Format;
use forward::Forwarder;
use frames::ServerFrame;
use print::Printer;

/// Path of the event stream.
pub const STREAM_PATH: &str = "/v2/webhooks/events/stream/";

/// First wait before reconnecting.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);

/// Longest wait between two connection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Longest wait for the WebSocket handshake.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);

/// Event ids remembered to drop duplicates around a reconnect.
const REMEMBERED: usize = 10_000;

/// What a run of `listen` does.
pub struct Config {
    pub events: Vec<String>,
    pub forward: Option<reqwest::Url>,
    pub forward_timeout: Duration,
    pub concurrency: usize,
    pub ping_interval: Duration,
    pub dead_after: Duration,
    pub after: Option<String>,
    pub max_events: Option<u64>,
    pub give_up_after: Duration,
    pub format: Format,
}

/// How one connection ended.
enum Ended {
    /// Lost; worth reconnecting.
    Lost(String),
    /// `max_events` reached.
    Done,
}

/// What survives from one connection to the next.
struct Progress {
    cursor: Option<String>,
    seen: HashSet<String>,
    order: VecDeque<String>,
    count: u64,
}

impl Progress {
    /// Whether `event_id` is new (and remembers it).
    fn first_time(&mut self, event_id: &str) -> bool {
        if !self.seen.insert(event_id.to_owned()) {
            return false;
        }
        self.order.push_back(event_id.to_owned());
        if self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// Backoff before attempt `failures` (1-based): doubling, capped, with
/// jitter between half and all of it.
pub fn backoff(failures: u32) -> Duration {
    let doubled = BACKOFF_FIRST.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let capped = doubled.min(BACKOFF_MAX);
    capped.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// The WebSocket URL of the stream on `base`, with the resume cursor and
/// forward URL.
pub fn stream_url(base: &str, after: Option<&str>, forward: Option<&str>) -> (String, String) {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(after) = after {
        query.append_pair("after", after);
    }
    if let Some(forward) = forward {
        query.append_pair("url", forward);
    }
    let query = query.finish();
    let path = if query.is_empty() {
        STREAM_PATH.to_owned()
    } else {
        format!("{STREAM_PATH}?{query}")
    };
    let ws_base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        format!("ws://{}", base.trim_start_matches("http://"))
    };
    (format!("{ws_base}{path}"), path)
}

/// Runs until `max_events`, a refusal, or `give_up_after` without a
/// connection.
pub async fn run(api: &ApiClient, config: Config) -> anyhow::Result<ExitCode> {
    let printer = Printer {
        format: config.format,
    };
    let forwarder = match &config.forward {
        Some(url) => Some(Forwarder::start(
            url.clone(),
            config.forward_timeout,
            config.concurrency,
            printer,
        )?),
        None => None,
    };
    let mut progress = Progress {
        cursor: config.after.clone(),
        seen: HashSet::new(),
        order: VecDeque::new(),
        count: 0,
    };

    let what = if config.events.is_empty() {
        "all event types".to_owned()
    } else {
        config.events.join(", ")
    };
    printer.note(&format!(
        "listening on {} for {what} (Ctrl-C to stop)",
        api.base()
    ));

    let mut failures = 0u32;
    let mut connected_at = Instant::now();
    let outcome = loop {
        match session(api, &config, &mut progress, &printer, forwarder.as_ref()).await {
            Ok(Ended::Done) => break Ok(()),
            Ok(Ended::Lost(reason)) => {
                printer.note(&format!("connection lost: {reason}"));
                failures = 0;
                connected_at = Instant::now();
            }
            Err(Attempt::Refused(failure)) => break Err(failure),
            Err(Attempt::Failed(reason)) => {
                if connected_at.elapsed() > config.give_up_after {
                    break Err(Failure::Unavailable(format!(
                        "no connection for {} s: {reason}",
                        config.give_up_after.as_secs()
                    )));
                }
                printer.note(&format!("cannot connect: {reason}"));
            }
        }
        failures += 1;
        let wait = backoff(failures);
        printer.note(&format!("reconnecting in {:.1} s", wait.as_secs_f64()));
        tokio::time::sleep(wait).await;
    };

    if let Some(forwarder) = forwarder {
        forwarder.finish().await;
    }
    outcome.map(|()| ExitCode::SUCCESS).map_err(Into::into)
}

/// Why a connection could not be used.
enum Attempt {
    /// The server said no: stop.
    Refused(Failure),
    /// Anything else: try again.
    Failed(String),
}

async fn session(
    api: &ApiClient,
    config: &Config,
    progress: &mut Progress,
    printer: &Printer,
    forwarder: Option<&Forwarder>,
) -> Result<Ended, Attempt> {
    let forward = config.forward.as_ref().map(|u| u.as_str());
    let (url, path) = stream_url(api.base(), progress.cursor.as_deref(), forward);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Attempt::Refused(Failure::Usage(format!("bad server URL: {e}"))))?;
    for (name, value) in api.auth_headers("GET", &path, b"") {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            request.headers_mut().insert(name, value);
        }
    }

    let connecting = tokio_tungstenite::connect_async(request);
    let mut socket = match tokio::time::timeout(HANDSHAKE_WITHIN, connecting).await {
        Err(_) => return Err(Attempt::Failed("the handshake timed out".into())),
        Ok(Err(WsError::Http(response))) if response.status().is_client_error() => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error_message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| body.into_owned());
            return Err(Attempt::Refused(Failure::Refused {
                status: response.status().as_u16(),
                request: format!("GET {STREAM_PATH}"),
                message,
            }));
        }
        Ok(Err(e)) => return Err(Attempt::Failed(e.to_string())),
        Ok(Ok((socket, _))) => socket,
    };

    let subscribe = Message::Text(frames::subscribe(&config.events).into());
    if let Err(e) = socket.send(subscribe).await {
        return Err(Attempt::Failed(e.to_string()));
    }

    let mut last_frame = Instant::now();
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.tick().await;
    let mut subscribed = false;
    loop {
        tokio::select! {
            incoming = socket.next() => {
                let text = match incoming {
                    None => return Ok(Ended::Lost("the server closed the connection".into())),
                    Some(Err(e)) => return Ok(Ended::Lost(e.to_string())),
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        return Ok(Ended::Lost(format!("the server closed the connection {why}")));
                    }
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => {
                        last_frame = Instant::now();
                        continue;
                    }
                };
                last_frame = Instant::now();
                match frames::parse(text.as_str()) {
                    ServerFrame::Subscribed { cursor } => {
                        if progress.cursor.is_none() {
                            progress.cursor = cursor;
                        }
                        if !subscribed {
                            printer.note("connected");
                            subscribed = true;
                        }
                    }
                    ServerFrame::Event(event) => {
                        progress.cursor = Some(event.cursor.clone());
                        if !progress.first_time(&event.event_id) {
                            continue;
                        }
                        printer.event(&event);
                        if let Some(forwarder) = forwarder {
                            forwarder.send(Arc::new(*event)).await;
                        }
                        progress.count += 1;
                        if config.max_events.is_some_and(|max| progress.count >= max) {
                            let _ = socket.close(None).await;
                            return Ok(Ended::Done);
                        }
                    }
                    ServerFrame::Overflow { missed, .. } => {
                        let missed = missed.map_or("some".to_owned(), |n| n.to_string());
                        printer.note(&format!(
                            "fell behind: {missed} events are being replayed from the server"
                        ));
                    }
                    ServerFrame::Error(message) => {
                        return Err(Attempt::Refused(Failure::Refused {
                            status: 400,
                            request: "subscribe".into(),
                            message,
                        }));
                    }
                    ServerFrame::Other(_) => {}
                }
            }
            _ = ping.tick() => {
                if last_frame.elapsed() > config.dead_after {
                    return Ok(Ended::Lost(format!(
                        "no answer to pings for {:.0} s",
                        last_frame.elapsed().as_secs_f64()
                    )));
                }
                if let Err(e) = socket.send(Message::Ping(Default::default())).await {
                    return Ok(Ended::Lost(e.to_string()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls_switch_scheme_and_carry_the_cursor() {
        let (url, path) = stream_url("http://127.0.0.1:8080", Some("a.b"), None);
        assert_eq!(
            url,
            "ws://127.0.0.1:8080/v2/webhooks/events/stream/?after=a.b"
        );
        assert_eq!(path, "/v2/webhooks/events/stream/?after=a.b");
        let (url, _) = stream_url(
            "https://h.example",
            None,
            Some("http://127.0.0.1:3000/h?x=1"),
        );
        assert_eq!(
            url,
            "wss://h.example/v2/webhooks/events/stream/?url=http%3A%2F%2F127.0.0.1%3A3000%2Fh%3Fx%3D1"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        for failures in 1..40 {
            let wait = backoff(failures);
            assert!(wait <= BACKOFF_MAX);
            assert!(wait >= BACKOFF_FIRST / 2);
        }
        assert!(backoff(1) <= BACKOFF_FIRST);
    }

    #[test]
    fn duplicates_are_dropped_and_memory_is_bounded() {
        let mut progress = Progress {
            cursor: None,
            seen: HashSet::new(),
            order: VecDeque::new(),
            count: 0,
        };
        assert!(progress.first_time("a"));
        assert!(!progress.first_time("a"));
        for i in 0..REMEMBERED + 10 {
            progress.first_time(&i.to_string());
        }
        assert!(progress.seen.len() <= REMEMBERED);
    }
}
