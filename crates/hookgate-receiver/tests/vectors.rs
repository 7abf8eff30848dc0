//! Every vector of `testdata/vectors/signatures.json`, verified through the
//! receiver's header layer, with the error kind each failure must give.

use std::time::{Duration, UNIX_EPOCH};

use hookgate_receiver::{ReceiverError, Verifier};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/vectors/signatures.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text<'a>(vector: &'a Value, field: &str) -> &'a str {
    vector[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {}", vector["name"]))
}

fn check_cobo(verifier: &Verifier, vector: &Value, signature_field: &str) -> usize {
    let headers = [
        ("Biz-Timestamp", text(vector, "biz_timestamp")),
        ("Biz-Resp-Signature", text(vector, signature_field)),
    ];
    let outcome = verifier.verify(&headers, text(vector, "body").as_bytes());
    if vector["valid"].as_bool().unwrap() {
        assert!(outcome.is_ok(), "{}: {outcome:?}", vector["name"]);
    } else {
        assert!(
            matches!(outcome, Err(ReceiverError::SignatureMismatch)),
            "{}: {outcome:?}",
            vector["name"]
        );
    }
    1
}

#[test]
fn cobo_v2_vectors() {
    let mut checked = 0;
    for vector in vectors()["cobo_v2_ed25519"].as_array().unwrap() {
        let verifier = Verifier::cobo_v2(text(vector, "public_key_hex")).unwrap();
        checked += check_cobo(&verifier, vector, "signature_hex");
    }
    assert_eq!(checked, 6);
}

#[test]
fn cobo_v1_vectors() {
    let mut checked = 0;
    for vector in vectors()["cobo_v1_secp256k1"].as_array().unwrap() {
        let verifier = Verifier::cobo_v1(text(vector, "public_key_hex")).unwrap();
        if vector.get("signature_der_hex").is_some() {
            checked += check_cobo(&verifier, vector, "signature_der_hex");
        }
    }
    assert_eq!(checked, 2);
}

#[test]
fn cobo_v1_self_generated_key_signs_and_verifies() {
    use hookgate_protocol::signing::cobo_v1::Signer;

    for vector in vectors()["cobo_v1_secp256k1"].as_array().unwrap() {
        let Some(private) = vector["private_key_hex"].as_str() else {
            continue;
        };
        let signer = Signer::from_private_hex(private).unwrap();
        let verifier = Verifier::cobo_v1(text(vector, "public_key_hex")).unwrap();
        let body = br#"{"id": "", "side": "withdraw"}"#;
        let signature = signer.sign(body, "1673345213334");
        let headers = [
            ("BIZ_TIMESTAMP", "1673345213334"),
            ("BIZ_RESP_SIGNATURE", &signature),
        ];
        assert!(verifier.verify(&headers, body).is_ok());
    }
}

#[test]
fn standard_webhooks_vectors() {
    let mut checked = 0;
    for vector in vectors()["standard_webhooks_hmac"].as_array().unwrap() {
        let timestamp = text(vector, "webhook_timestamp");
        let sent = UNIX_EPOCH + Duration::from_secs(timestamp.parse().unwrap());
        let verifier = Verifier::standard_secret(text(vector, "secret"))
            .unwrap()
            .with_clock(move || sent + Duration::from_secs(30));
        let headers = [
            ("Webhook-Id", text(vector, "webhook_id")),
            ("Webhook-Timestamp", timestamp),
            ("Webhook-Signature", text(vector, "signature_header")),
        ];

        let outcome = verifier.verify(&headers, text(vector, "body").as_bytes());
        if vector["valid"].as_bool().unwrap() {
            assert!(outcome.is_ok(), "{}: {outcome:?}", vector["name"]);
        } else {
            assert!(
                matches!(outcome, Err(ReceiverError::SignatureMismatch)),
                "{}: {outcome:?}",
                vector["name"]
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn standard_webhooks_vectors_are_too_old_today() {
    let vector = &vectors()["standard_webhooks_hmac"][0];
    let verifier = Verifier::standard_secret(text(vector, "secret")).unwrap();
    let headers = [
        ("webhook-id", text(vector, "webhook_id")),
        ("webhook-timestamp", text(vector, "webhook_timestamp")),
        ("webhook-signature", text(vector, "signature_header")),
    ];
    let body = text(vector, "body").as_bytes();
    assert!(matches!(
        verifier.verify(&headers, body),
        Err(ReceiverError::TooOld { .. })
    ));
    assert!(verifier.verify_ignoring_timestamp(&headers, body).is_ok());
}

#[test]
fn the_minimal_vector_event_parses_typed() {
    use hookgate_receiver::model::WebhookEvent;

    let vector = &vectors()["cobo_v2_ed25519"][0];
    let verifier = Verifier::cobo_v2(text(vector, "public_key_hex")).unwrap();
    let headers = [
        ("Biz-Timestamp", text(vector, "biz_timestamp")),
        ("Biz-Resp-Signature", text(vector, "signature_hex")),
    ];
    let body = text(vector, "body").as_bytes();
    let (event, _) = verifier
        .verify_json::<WebhookEvent, _>(&headers, body)
        .unwrap();
    let transaction = event.data.as_transaction().unwrap();
    assert_eq!(
        transaction.transaction_id,
        "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    );
}
