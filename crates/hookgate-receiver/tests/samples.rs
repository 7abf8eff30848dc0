//! Every sample body, signed as the server would sign it, verifies and
//! parses into its typed model; 2.0 bodies round-trip to equal JSON.

use hookgate_protocol::signing::cobo_v2::Signer;
use hookgate_receiver::model::{Transaction, V1Callback, WebhookEvent};
use hookgate_receiver::Verifier;
use serde_json::Value;

fn samples() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/samples");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn assert_round_trip<T: serde::Serialize>(name: &str, parsed: &T, raw: &[u8]) {
    let original: Value = serde_json::from_slice(raw).unwrap();
    assert_eq!(serde_json::to_value(parsed).unwrap(), original, "{name}");
}

#[test]
fn every_sample_verifies_and_parses() {
    let signer = Signer::generate();
    let verifier = Verifier::cobo_v2(&signer.public_key_hex()).unwrap();
    let mut counts = [0usize; 3];

    for (name, raw) in samples() {
        let signature = signer.sign(&raw, "1741687575300");
        let headers = [
            ("Biz-Timestamp", "1741687575300"),
            ("Biz-Resp-Signature", &signature),
        ];

        if name.starts_with("v2-webhook-") {
            let (event, _) = verifier
                .verify_json::<WebhookEvent, _>(&headers, &raw)
                .unwrap();
            assert_round_trip(&name, &event, &raw);
            counts[0] += 1;
        } else if name.starts_with("v2-callback-") {
            let (message, _) = verifier
                .verify_json::<Transaction, _>(&headers, &raw)
                .unwrap();
            assert_round_trip(&name, &message, &raw);
            counts[1] += 1;
        } else if name.starts_with("v1-") {
            let (callback, _) = verifier
                .verify_json::<V1Callback, _>(&headers, &raw)
                .unwrap();
            assert_round_trip(&name, &callback, &raw);
            counts[2] += 1;
        } else {
            panic!("unexpected sample {name}");
        }
    }
    assert_eq!(counts, [16, 2, 3]);
}

#[test]
fn transaction_events_also_parse_as_bare_callback_transactions() {
    for (name, raw) in samples() {
        if !name.starts_with("v2-webhook-") || name.contains("tss") {
            continue;
        }
        let mut value: Value = serde_json::from_slice(&raw).unwrap();
        let data = value["data"].as_object_mut().unwrap();
        data.shift_remove("data_type");
        let transaction: Transaction = serde_json::from_value(Value::Object(data.clone())).unwrap();
        assert_eq!(
            serde_json::to_value(&transaction).unwrap(),
            Value::Object(data.clone())
        );
    }
}
