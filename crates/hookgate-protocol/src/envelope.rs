//! The WaaS 2.0 webhook event body, built once per delivered copy.
//!
//! The envelope is `event_id`, `url`, `created_timestamp`, `type`, `data`, in
//! that order, compact. `data` is flat: `data_type` first, then the payload's
//! fields. The bytes built here are the bytes stored, signed and sent on
//! every attempt.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::catalogue::EventType;

#[derive(Serialize)]
struct Envelope<'a> {
    event_id: &'a str,
    url: &'a str,
    created_timestamp: i64,
    #[serde(rename = "type")]
    event_type: &'a str,
    data: &'a RawValue,
}

/// Why a payload cannot be published as an event of its type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataError {
    /// `data.data_type` names another data type than the catalogue gives.
    #[error("data.data_type is {given:?} but {event_type} carries {expected:?}")]
    WrongDataType {
        /// The event type published.
        event_type: String,
        /// What the catalogue says.
        expected: String,
        /// What the payload said.
        given: String,
    },
    /// A field Cobo's SDK requires is missing.
    #[error("data.{0} is required for a {1}")]
    MissingField(&'static str, &'static str),
    /// A field has a JSON type Cobo's SDK refuses.
    #[error("data.{0} must be {1}")]
    WrongType(String, &'static str),
}

const TRANSACTION_REQUIRED: [&str; 7] = [
    "transaction_id",
    "wallet_id",
    "initiator_type",
    "source",
    "destination",
    "created_timestamp",
    "updated_timestamp",
];

const INTEGER_FIELDS: [&str; 4] = [
    "created_timestamp",
    "updated_timestamp",
    "confirmed_num",
    "confirming_threshold",
];

/// Puts `data` in the shape the event type carries: `data_type` first (added
/// from the catalogue when absent), and for `Transaction` payloads the fields
/// and JSON types that Cobo's SDK insists on.
pub fn normalise_data(
    event_type: &EventType,
    data: Map<String, Value>,
) -> Result<Map<String, Value>, DataError> {
    let Some(expected) = &event_type.data_type else {
        return Ok(data);
    };

    if let Some(given) = data.get("data_type") {
        if given.as_str() != Some(expected.as_str()) {
            return Err(DataError::WrongDataType {
                event_type: event_type.event_type.clone(),
                expected: expected.clone(),
                given: given.to_string(),
            });
        }
    }

    if expected == "Transaction" {
        check_transaction(&data)?;
    }

    let mut shaped = Map::with_capacity(data.len() + 1);
    shaped.insert("data_type".into(), Value::String(expected.clone()));
    shaped.extend(data.into_iter().filter(|(key, _)| key != "data_type"));
    Ok(shaped)
}

/// Checks the fields and types Cobo's SDK requires of a `Transaction`
/// (shared by webhook data and callback bodies).
pub fn check_transaction(data: &Map<String, Value>) -> Result<(), DataError> {
    for field in TRANSACTION_REQUIRED {
        if data.get(field).is_none_or(Value::is_null) {
            return Err(DataError::MissingField(field, "Transaction"));
        }
    }

    for field in INTEGER_FIELDS {
        if let Some(value) = data.get(field) {
            if !(value.is_i64() || value.is_u64() || value.is_null()) {
                return Err(DataError::WrongType(field.into(), "a JSON integer"));
            }
        }
    }

    for field in ["transaction_id", "wallet_id", "initiator_type"] {
        if !data[field].is_string() {
            return Err(DataError::WrongType(field.into(), "a string"));
        }
    }
    Ok(())
}

/// Serialises `data` once, for splicing into every copy's envelope.
pub fn data_json(data: &Map<String, Value>) -> Box<RawValue> {
    let text = serde_json::to_string(data).expect("a JSON map always serialises");
    RawValue::from_string(text).expect("serde_json output is valid JSON")
}

/// The exact body of one event copy.
pub fn webhook_body(
    event_id: &str,
    url: &str,
    created_timestamp: i64,
    event_type: &str,
    data: &RawValue,
) -> Vec<u8> {
    let envelope = Envelope {
        event_id,
        url,
        created_timestamp,
        event_type,
        data,
    };
    serde_json::to_vec(&envelope).expect("the envelope always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::find;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn body_has_envelope_order_and_flat_data() {
        let data = normalise_data(
            find("wallets.created").unwrap(),
            object(json!({"wallet_id": "w", "name": "a\u{2028}b"})),
        )
        .unwrap();
        let body = webhook_body(
            "e1",
            "https://x.test/h",
            17,
            "wallets.created",
            &data_json(&data),
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"event_id\":\"e1\",\"url\":\"https://x.test/h\",\"created_timestamp\":17,\
             \"type\":\"wallets.created\",\"data\":{\"data_type\":\"WalletInfo\",\
             \"wallet_id\":\"w\",\"name\":\"a\u{2028}b\"}}"
        );
    }

    #[test]
    fn sample_transaction_is_accepted_unchanged() {
        let event_type = find("wallets.transaction.updated").unwrap();
        let sample = crate::samples::sample_data(event_type);
        assert_eq!(normalise_data(event_type, sample.clone()).unwrap(), sample);
    }

    #[test]
    fn transaction_without_wallet_is_refused() {
        let event_type = find("wallets.transaction.updated").unwrap();
        let mut sample = crate::samples::sample_data(event_type);
        sample.remove("wallet_id");
        assert_eq!(
            normalise_data(event_type, sample),
            Err(DataError::MissingField("wallet_id", "Transaction"))
        );
    }

    #[test]
    fn string_timestamp_is_refused() {
        let event_type = find("wallets.transaction.updated").unwrap();
        let mut sample = crate::samples::sample_data(event_type);
        sample.insert("created_timestamp".into(), json!("1741687512345"));
        assert!(matches!(
            normalise_data(event_type, sample),
            Err(DataError::WrongType(..))
        ));
    }

    #[test]
    fn mismatched_data_type_is_refused() {
        let event_type = find("wallets.transaction.updated").unwrap();
        let data = object(json!({"data_type": "TSSRequest"}));
        assert!(matches!(
            normalise_data(event_type, data),
            Err(DataError::WrongDataType { .. })
        ));
    }
}
