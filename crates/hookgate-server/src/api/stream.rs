//! The event stream: a WebSocket at `/v2/webhooks/events/stream/` that
//! pushes the organisation's events to a listening command-line client
//! (ours, `hookgate webhook listen`, or Cobo's).
//!
//! The session, in order:
//!
//! 1. The client authenticates the upgrade request like any `/v2` call and
//!    may pass `after` (a cursor it was sent before, to resume) and `url`
//!    (where it forwards copies; it becomes the body's `url`).
//! 2. It sends the subscribe frame
//!    `{"type":"subscribe","action":"webhook_event_fetch",
//!    "message":{"event_type":[...]}}` (no list or an empty one: all
//!    types). The server answers `{"type":"subscribed", "event_types",
//!    "cursor"}`, the cursor marking "now" for a client that has none yet.
//! 3. With `after`, the occurrences stored after it are replayed first;
//!    then live ones follow as they are published.
//!
//! Each event is one text frame: `{"type":"event", "cursor",
//! "occurrence_id", "event_id", "event_type", "created_timestamp",
//! "headers", "body"}`. `body` is the exact request body as a JSON string,
//! built like an endpoint copy with the occurrence id as `event_id`, and
//! `headers` are the signature headers of a delivery of those bytes, so a
//! client that posts `body` with `headers` to a local handler reproduces a
//! real delivery. A client that falls
//! [`LISTENER_BUFFER`](crate::stream::LISTENER_BUFFER) occurrences behind
//! is sent `{"type":"overflow","missed":n,"after":cursor}` and then the
//! missed occurrences from the store.
//!
//! Limitation: cursors order occurrences by trigger time, taken just before
//! the commit. An occurrence committed a few milliseconds after a later-
//! triggered one can be missing from a replay that starts between the two.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hookgate_protocol::{catalogue, envelope};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use super::auth::OrgCaller;
use super::{ApiError, AppState};
use crate::now_ms;
use crate::store::Cursor;
use crate::stream::LiveOccurrence;

/// The body's `url` when the client forwards nowhere.
pub const DEFAULT_URL: &str = "hookgate-cli://listen";

/// How long a client has to send its subscribe frame.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(30);

/// How often the server pings an idle client.
const PING_EVERY: Duration = Duration::from_secs(15);

/// Longest wait to hand one frame to a client before giving it up.
const SEND_WITHIN: Duration = Duration::from_secs(10);

/// Occurrences read from the store per page of a replay.
const REPLAY_PAGE: usize = 200;

/// Most occurrences one replay sends; a client further behind is told and
/// resumes from the last cursor it got.
const REPLAY_MAX: usize = 10_000;

/// Longest `url` Cobo's SDK accepts in a body.
const MAX_URL_LEN: usize = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/webhooks/events/stream/", get(open))
        .route("/v2/webhooks/events/stream", get(open))
}

#[derive(Deserialize)]
struct StreamParams {
    after: Option<String>,
    url: Option<String>,
}

async fn open(
    caller: OrgCaller,
    State(state): State<AppState>,
    Query(params): Query<StreamParams>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade
        .map_err(|_| ApiError::invalid("this is a WebSocket: connect with a WebSocket client"))?;
    let after = match params.after.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            Cursor::decode(text)
                .ok_or_else(|| ApiError::invalid("after is not a cursor from this stream"))?,
        ),
    };
    let url = params.url.filter(|u| !u.is_empty());
    let url = url.unwrap_or_else(|| DEFAULT_URL.to_owned());
    if url.len() > MAX_URL_LEN {
        return Err(ApiError::invalid("url must be at most 500 characters"));
    }

    let session = Session {
        state,
        org_id: caller.org_id,
        url,
        filter: Vec::new(),
        last: after,
    };
    Ok(upgrade.on_upgrade(move |socket| session.run(socket)))
}

/// Why a session ends.
enum End {
    /// The client closed or went away.
    Gone,
    /// The client broke the protocol; it was told why.
    Refused,
}

struct Session {
    state: AppState,
    org_id: String,
    /// Body `url` of this client's copies.
    url: String,
    /// Event types wanted; empty for all.
    filter: Vec<String>,
    /// Cursor of the last occurrence sent (or the resume point).
    last: Option<Cursor>,
}

impl Session {
    async fn run(mut self, mut socket: WebSocket) {
        let outcome = self.serve(&mut socket).await;
        if matches!(outcome, End::Refused) {
            let _ = socket.send(Message::Close(None)).await;
        }
        tracing::debug!(org_id = %self.org_id, "listener left");
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> End {
        if let Err(end) = self.await_subscribe(socket).await {
            return end;
        }

        let mut live = self.state.hub.subscribe(&self.org_id);
        let start = Cursor {
            created: now_ms(),
            row: i64::MIN,
        };
        let subscribed = json!({
            "type": "subscribed",
            "event_types": self.filter,
            "cursor": start.encode(),
        });
        if let Err(end) = send(socket, subscribed).await {
            return end;
        }

        let mut replayed = HashSet::new();
        if let Some(after) = self.last {
            match self.replay(socket, after).await {
                Ok(ids) => replayed = ids,
                Err(end) => return end,
            }
        } else {
            self.last = Some(start);
        }

        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(occurrence) => {
                        if replayed.remove(&occurrence.occurrence_id) {
                            continue;
                        }
                        if let Err(end) = self.send_event(socket, &occurrence).await {
                            return end;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let after = self.last.unwrap_or(start);
                        let notice = json!({
                            "type": "overflow",
                            "missed": missed,
                            "after": after.encode(),
                        });
                        tracing::info!(org_id = %self.org_id, missed, "listener fell behind");
                        if let Err(end) = send(socket, notice).await {
                            return end;
                        }
                        match self.replay(socket, after).await {
                            Ok(ids) => replayed = ids,
                            Err(end) => return end,
                        }
                    }
                    Err(RecvError::Closed) => return End::Gone,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if let Err(end) = self.resubscribe(socket, text.as_str()).await {
                            return end;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::Gone,
                    Some(Ok(_)) => {}
                },
                _ = ping.tick() => {
                    if let Err(end) = send_message(socket, Message::Ping(Default::default())).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Waits for the first subscribe frame.
    async fn await_subscribe(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        let deadline = tokio::time::sleep(SUBSCRIBE_WITHIN);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        return self.apply_subscribe(socket, text.as_str()).await;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(End::Gone),
                    Some(Ok(_)) => {}
                },
                _ = &mut deadline => {
                    let error = error_frame("send a subscribe frame first");
                    let _ = send(socket, error).await;
                    return Err(End::Refused);
                }
            }
        }
    }

    /// A later subscribe frame changes the filter.
    async fn resubscribe(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), End> {
        self.apply_subscribe(socket, text).await?;
        let answer = json!({"type": "subscribed", "event_types": self.filter});
        send(socket, answer).await
    }

    async fn apply_subscribe(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), End> {
        match parse_subscribe(text) {
            Ok(filter) => {
                self.filter = filter;
                Ok(())
            }
            Err(problem) => {
                let _ = send(socket, error_frame(&problem)).await;
                Err(End::Refused)
            }
        }
    }

    /// Sends the occurrences stored after `after`; gives their ids, so the
    /// same occurrences arriving live are not sent twice.
    async fn replay(
        &mut self,
        socket: &mut WebSocket,
        after: Cursor,
    ) -> Result<HashSet<String>, End> {
        let mut sent = HashSet::new();
        let mut from = after;
        while sent.len() < REPLAY_MAX {
            let page = self
                .state
                .store
                .occurrences_after(self.org_id.clone(), Some(from), REPLAY_PAGE)
                .await;
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(org_id = %self.org_id, %error, "replay failed");
                    let _ = send(socket, error_frame("the server cannot replay now")).await;
                    return Err(End::Refused);
                }
            };
            let full = page.len() == REPLAY_PAGE;
            for stored in page {
                from = stored.cursor;
                let Some(occurrence) = LiveOccurrence::from_stored(stored) else {
                    continue;
                };
                sent.insert(occurrence.occurrence_id.clone());
                self.send_event(socket, &occurrence).await?;
            }
            if !full {
                return Ok(sent);
            }
        }
        let notice = json!({"type": "overflow", "missed": null, "after": from.encode()});
        send(socket, notice).await?;
        Ok(sent)
    }

    /// Signs this client's copy of `occurrence` and sends it, when the
    /// filter wants it; moves the resume point either way.
    async fn send_event(
        &mut self,
        socket: &mut WebSocket,
        occurrence: &LiveOccurrence,
    ) -> Result<(), End> {
        let key = |c: Cursor| (c.created, c.row);
        if self
            .last
            .is_none_or(|last| key(occurrence.cursor) > key(last))
        {
            self.last = Some(occurrence.cursor);
        }
        if !self.filter.is_empty() && !self.filter.contains(&occurrence.event_type) {
            return Ok(());
        }

        let body = envelope::webhook_body(
            &occurrence.occurrence_id,
            &self.url,
            occurrence.created_timestamp,
            &occurrence.event_type,
            &occurrence.data,
        );
        let headers: Map<String, Value> = self
            .state
            .dispatcher
            .sign_now(&body)
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        let frame = json!({
            "type": "event",
            "cursor": occurrence.cursor.encode(),
            "occurrence_id": occurrence.occurrence_id,
            "event_id": occurrence.occurrence_id,
            "event_type": occurrence.event_type,
            "created_timestamp": occurrence.created_timestamp,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        send(socket, frame).await
    }
}

/// The event types a subscribe frame asks for (empty: all), or why the
/// frame is refused.
fn parse_subscribe(text: &str) -> Result<Vec<String>, String> {
    let frame: Value =
        serde_json::from_str(text).map_err(|_| "frames must be JSON objects".to_owned())?;
    if frame["type"] != "subscribe" {
        return Err(format!(
            "expected {{\"type\":\"subscribe\",\"action\":\"webhook_event_fetch\",...}}, \
             got type {}",
            frame["type"]
        ));
    }
    if !frame["action"].is_null() && frame["action"] != "webhook_event_fetch" {
        return Err(format!(
            "unknown action {}: only webhook_event_fetch",
            frame["action"]
        ));
    }
    let types = match &frame["message"]["event_type"] {
        Value::Null => return Ok(Vec::new()),
        Value::String(one) => vec![one.clone()],
        Value::Array(list) => list
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("message.event_type must be a list of strings")?,
        _ => return Err("message.event_type must be a list of strings".into()),
    };
    for name in &types {
        if catalogue::find(name).is_none() {
            return Err(format!(
                "{name:?} is not an event type (closest: {})",
                catalogue::closest(name, 3).join(", ")
            ));
        }
    }
    Ok(types)
}

fn error_frame(message: &str) -> Value {
    json!({"type": "error", "message": message})
}

async fn send(socket: &mut WebSocket, frame: Value) -> Result<(), End> {
    send_message(socket, Message::Text(frame.to_string().into())).await
}

/// Sends one frame, giving up on a client that does not read it in time.
async fn send_message(socket: &mut WebSocket, message: Message) -> Result<(), End> {
    match tokio::time::timeout(SEND_WITHIN, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(End::Gone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_frame_of_cobo_shape_is_accepted() {
        let frame = r#"{"type":"subscribe","action":"webhook_event_fetch",
            "message":{"event_type":["wallets.transaction.created"]}}"#;
        assert_eq!(
            parse_subscribe(frame),
            Ok(vec!["wallets.transaction.created".to_owned()])
        );
    }

    #[test]
    fn subscribe_frame_without_a_list_means_all_types() {
        let frame = r#"{"type":"subscribe","action":"webhook_event_fetch","message":{}}"#;
        assert_eq!(parse_subscribe(frame), Ok(Vec::new()));
    }

    #[test]
    fn unknown_event_types_are_refused_with_a_hint() {
        let frame =
            r#"{"type":"subscribe","message":{"event_type":["wallets.transaction.create"]}}"#;
        let problem = parse_subscribe(frame).unwrap_err();
        assert!(problem.contains("wallets.transaction.created"), "{problem}");
    }

    #[test]
    fn other_frames_are_refused() {
        assert!(parse_subscribe("hello").is_err());
        assert!(parse_subscribe(r#"{"type":"ping"}"#).is_err());
        assert!(parse_subscribe(r#"{"type":"subscribe","action":"other"}"#).is_err());
    }
}
