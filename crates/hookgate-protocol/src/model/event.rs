//! The WaaS 2.0 webhook event: an envelope (`event_id`, `url`,
//! `created_timestamp`, `type`) around a flat `data` object whose
//! `data_type` field says what the rest of it is.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{open_enum, Extra, Transaction, TssRequest};

open_enum! {
    /// Delivery status of an event, present only in API read-backs.
    pub enum EventStatus {
        /// Delivered.
        Success = "Success",
        /// Not delivered yet; more attempts will follow.
        Retrying = "Retrying",
        /// Every attempt failed.
        Failed = "Failed",
    }
}

/// One webhook event, as delivered to one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// Id of this copy of the event; the same on every attempt, so it is
    /// the key to deduplicate deliveries on.
    pub event_id: String,
    /// The endpoint URL this copy was delivered to.
    pub url: String,
    /// When the event was triggered, Unix ms.
    pub created_timestamp: i64,
    /// The event type, such as `wallets.transaction.succeeded`. Kept as text:
    /// the catalogue grows, and an unknown type is not an error.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload.
    pub data: EventData,
    /// Delivery status (API read-backs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EventStatus>,
    /// When the next attempt is due, Unix ms (read-backs while `Retrying`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_timestamp: Option<i64>,
    /// Attempts left (read-backs while `Retrying`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries_left: Option<u32>,
    /// Every field not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `data` of an event, by its `data_type`.
#[derive(Clone, Debug, PartialEq)]
pub enum EventData {
    /// `data_type: "Transaction"`.
    Transaction(Box<Transaction>),
    /// `data_type: "TSSRequest"`.
    TssRequest(Box<TssRequest>),
    /// Any other data type (or none), kept whole, `data_type` included.
    Other(Map<String, Value>),
}

/// The discriminator field of [`EventData`].
pub const DATA_TYPE: &str = "data_type";

impl EventData {
    /// The `data_type` as sent, if any.
    pub fn data_type(&self) -> Option<&str> {
        match self {
            EventData::Transaction(_) => Some("Transaction"),
            EventData::TssRequest(_) => Some("TSSRequest"),
            EventData::Other(map) => map.get(DATA_TYPE).and_then(Value::as_str),
        }
    }

    /// The transaction, for transaction events.
    pub fn as_transaction(&self) -> Option<&Transaction> {
        match self {
            EventData::Transaction(transaction) => Some(transaction),
            _ => None,
        }
    }

    /// The TSS request, for TSS request events.
    pub fn as_tss_request(&self) -> Option<&TssRequest> {
        match self {
            EventData::TssRequest(request) => Some(request),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for EventData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(deserializer)?;

        let typed = match map.get(DATA_TYPE).and_then(Value::as_str) {
            Some("Transaction") => "Transaction",
            Some("TSSRequest") => "TSSRequest",
            _ => return Ok(EventData::Other(map)),
        };

        map.shift_remove(DATA_TYPE);
        let fields = Value::Object(map);
        let parsed = if typed == "Transaction" {
            serde_json::from_value(fields).map(|t| EventData::Transaction(Box::new(t)))
        } else {
            serde_json::from_value(fields).map(|r| EventData::TssRequest(Box::new(r)))
        };
        parsed.map_err(|e| D::Error::custom(format!("data of data_type {typed}: {e}")))
    }
}

impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (data_type, fields) = match self {
            EventData::Transaction(t) => ("Transaction", serde_json::to_value(t)),
            EventData::TssRequest(r) => ("TSSRequest", serde_json::to_value(r)),
            EventData::Other(map) => return map.serialize(serializer),
        };
        let Value::Object(fields) = fields.map_err(serde::ser::Error::custom)? else {
            return Err(serde::ser::Error::custom(
                "data did not serialise to an object",
            ));
        };

        // `data_type` goes first, as the server writes it.
        let mut map = Map::with_capacity(fields.len() + 1);
        map.insert(DATA_TYPE.into(), Value::String(data_type.into()));
        map.extend(fields);
        map.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::samples::V2_WEBHOOKS;
    use crate::model::{TransactionStatus, TssRequestType};

    #[test]
    fn every_webhook_sample_parses_and_round_trips() {
        for (name, text) in V2_WEBHOOKS {
            let event: WebhookEvent = serde_json::from_str(text).expect(name);
            let original: Value = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_value(&event).unwrap(), original, "{name}");
            assert!(event.extra.is_empty(), "{name}");

            let typed =
                event.data.as_transaction().is_some() || event.data.as_tss_request().is_some();
            assert!(typed, "{name} should have typed data");
        }
    }

    #[test]
    fn round_trip_keeps_data_type_first() {
        let (_, text) = V2_WEBHOOKS[0];
        let event: WebhookEvent = serde_json::from_str(text).unwrap();
        let out = serde_json::to_value(&event).unwrap();
        assert_eq!(
            out["data"].as_object().unwrap().keys().next().unwrap(),
            DATA_TYPE
        );
    }

    #[test]
    fn typed_fields_are_read() {
        let text = V2_WEBHOOKS
            .iter()
            .find(|(n, _)| n.contains("withdrawal-succeeded"))
            .unwrap()
            .1;
        let event: WebhookEvent = serde_json::from_str(text).unwrap();
        let transaction = event.data.as_transaction().unwrap();
        assert_eq!(transaction.status, Some(TransactionStatus::Completed));
        assert_eq!(
            transaction.cobo_id.as_deref(),
            Some("20250311100512000277250000371794")
        );

        let text = V2_WEBHOOKS
            .iter()
            .find(|(n, _)| n.contains("tss-keygen-created"))
            .unwrap()
            .1;
        let event: WebhookEvent = serde_json::from_str(text).unwrap();
        let request = event.data.as_tss_request().unwrap();
        assert_eq!(request.request_type, Some(TssRequestType::KeyGen));
    }

    #[test]
    fn unknown_data_type_and_fields_are_kept() {
        let text = r#"{"event_id":"e","url":"u","created_timestamp":1,"type":"wallets.created",
            "data":{"data_type":"Wallets","wallet_id":"w"},"shard":7}"#;
        let event: WebhookEvent = serde_json::from_str(text).unwrap();
        assert_eq!(event.data.data_type(), Some("Wallets"));
        assert!(matches!(event.data, EventData::Other(_)));
        assert_eq!(event.extra["shard"], 7);
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), original);
    }

    #[test]
    fn unknown_enum_values_in_typed_data_are_kept() {
        let text = r#"{"event_id":"e","url":"u","created_timestamp":1,"type":"x.y",
            "data":{"data_type":"TSSRequest","tss_request_id":"t","type":"Reshare",
            "status":"Sleeping","new_field":[1,2]}}"#;
        let event: WebhookEvent = serde_json::from_str(text).unwrap();
        let request = event.data.as_tss_request().unwrap();
        assert_eq!(
            request.request_type,
            Some(TssRequestType::Other("Reshare".into()))
        );
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), original);
    }
}
