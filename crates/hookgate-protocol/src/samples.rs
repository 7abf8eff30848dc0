//! Sample payloads for test triggers.
//!
//! A test trigger sends an event whose `data` is a realistic sample of the
//! type's data type, with the caller's `override_data` shallow-merged over it
//! (top-level keys replaced, nothing merged deeper), as Cobo's trigger does.

use serde_json::{Map, Value};

use crate::catalogue::EventType;

const TRANSACTION_EVENT: &str = include_str!("../data/samples/v2-webhook-withdrawal-created.json");
const TSS_REQUEST_EVENT: &str = include_str!("../data/samples/v2-webhook-tss-keygen-created.json");

/// The sample `data` for an event type: a full `Transaction` or `TSSRequest`
/// for core types, and a bare `{"data_type": ...}` for the others.
pub fn sample_data(event_type: &EventType) -> Map<String, Value> {
    let source = match event_type.data_type.as_deref() {
        Some("Transaction") => Some(TRANSACTION_EVENT),
        Some("TSSRequest") => Some(TSS_REQUEST_EVENT),
        _ => None,
    };

    if let Some(source) = source {
        let event: Value = serde_json::from_str(source).expect("compiled-in sample is valid JSON");
        if let Some(Value::Object(data)) = event.get("data") {
            return data.clone();
        }
    }

    let mut data = Map::new();
    if let Some(data_type) = &event_type.data_type {
        data.insert("data_type".into(), Value::String(data_type.clone()));
    }
    data
}

/// Replaces the top-level keys of `data` with those of `overrides`.
pub fn shallow_merge(data: &mut Map<String, Value>, overrides: Map<String, Value>) {
    for (key, value) in overrides {
        data.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::find;
    use serde_json::json;

    #[test]
    fn transaction_sample_is_typed() {
        let data = sample_data(find("wallets.transaction.updated").unwrap());
        assert_eq!(data["data_type"], "Transaction");
        assert!(data["transaction_id"].is_string());
        assert!(data["created_timestamp"].is_u64());
    }

    #[test]
    fn non_core_sample_is_bare_discriminator() {
        let data = sample_data(find("wallets.created").unwrap());
        assert_eq!(Value::Object(data), json!({"data_type": "WalletInfo"}));
    }

    #[test]
    fn merge_replaces_top_level_keys_only() {
        let mut data = sample_data(find("wallets.transaction.created").unwrap());
        let overrides = json!({"status": "Completed", "source": {"source_type": "Asset"}});
        shallow_merge(&mut data, overrides.as_object().unwrap().clone());
        assert_eq!(data["status"], "Completed");
        assert_eq!(data["source"], json!({"source_type": "Asset"}));
        assert_eq!(data["data_type"], "Transaction");
    }
}
