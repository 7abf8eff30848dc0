//! The frames of the event stream, as the client sends and reads them.

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The subscribe frame, in the shape Cobo's CLI sends: no list (an empty
/// `event_types`) means every type.
pub fn subscribe(event_types: &[String]) -> String {
    let message = if event_types.is_empty() {
        json!({})
    } else {
        json!({"event_type": event_types})
    };
    json!({"type": "subscribe", "action": "webhook_event_fetch", "message": message}).to_string()
}

/// One event: the exact body and the headers it was signed with.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Event {
    pub cursor: String,
    pub occurrence_id: String,
    pub event_id: String,
    pub event_type: String,
    pub created_timestamp: i64,
    pub headers: Map<String, Value>,
    pub body: String,
}

/// A frame from the server.
#[derive(Debug, PartialEq)]
pub enum ServerFrame {
    /// The subscription is in force; `cursor` marks "now".
    Subscribed { cursor: Option<String> },
    /// An event.
    Event(Box<Event>),
    /// The client fell behind by `missed`; the server replays after `after`.
    Overflow {
        missed: Option<u64>,
        after: Option<String>,
    },
    /// The server refused something.
    Error(String),
    /// A frame this client does not know; ignored.
    Other(String),
}

/// Reads a text frame.
pub fn parse(text: &str) -> ServerFrame {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return ServerFrame::Other(text.chars().take(80).collect());
    };
    match value["type"].as_str() {
        Some("subscribed") => ServerFrame::Subscribed {
            cursor: value["cursor"].as_str().map(str::to_owned),
        },
        Some("event") => match serde_json::from_value::<Event>(value) {
            Ok(event) => ServerFrame::Event(Box::new(event)),
            Err(e) => ServerFrame::Other(format!("malformed event frame: {e}")),
        },
        Some("overflow") => ServerFrame::Overflow {
            missed: value["missed"].as_u64(),
            after: value["after"].as_str().map(str::to_owned),
        },
        Some("error") => ServerFrame::Error(
            value["message"]
                .as_str()
                .unwrap_or("unspecified")
                .to_owned(),
        ),
        _ => ServerFrame::Other(text.chars().take(80).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_frame_has_cobos_shape() {
        let frame: Value = serde_json::from_str(&subscribe(&["wallets.created".into()])).unwrap();
        assert_eq!(
            frame,
            json!({
                "type": "subscribe",
                "action": "webhook_event_fetch",
                "message": {"event_type": ["wallets.created"]}
            })
        );
    }

    #[test]
    fn subscribe_frame_without_types_asks_for_all() {
        let frame: Value = serde_json::from_str(&subscribe(&[])).unwrap();
        assert_eq!(frame["message"], json!({}));
        assert_eq!(frame["action"], "webhook_event_fetch");
    }

    #[test]
    fn event_frames_keep_the_body_string_exactly() {
        let body = r#"{"event_id":"e","url":"u\/v","data":{"a":"\u0026"}}"#;
        let frame = json!({
            "type": "event", "cursor": "1.2", "occurrence_id": "o", "event_id": "o",
            "event_type": "wallets.created", "created_timestamp": 5,
            "headers": {"Biz-Timestamp": "5"}, "body": body,
        });
        let ServerFrame::Event(event) = parse(&frame.to_string()) else {
            panic!("not an event");
        };
        assert_eq!(event.body, body);
    }

    #[test]
    fn unknown_frames_are_tolerated() {
        assert!(matches!(parse(r#"{"type":"news"}"#), ServerFrame::Other(_)));
        assert!(matches!(parse("not json"), ServerFrame::Other(_)));
        assert_eq!(
            parse(r#"{"type":"error","message":"no"}"#),
            ServerFrame::Error("no".into())
        );
    }
}
