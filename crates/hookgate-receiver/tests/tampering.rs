//! Verification is over exact bytes: any single changed byte of the body,
//! the timestamp or the signature fails, and bodies with escapes, emoji,
//! line separators, CRLF endings or invalid UTF-8 verify exactly as signed.

use hookgate_protocol::signing::standard::Secret;
use hookgate_protocol::signing::{cobo_v1, cobo_v2};
use hookgate_receiver::{ReceiverError, Verifier};
use proptest::prelude::*;

const TIMESTAMP_MS: &str = "1701396866123";
const TIMESTAMP_S: &str = "1701396866";

/// A message signed under one scheme, ready to be altered.
struct Signed {
    verifier: Verifier,
    body: Vec<u8>,
    timestamp: String,
    signature: String,
    standard: bool,
}

impl Signed {
    fn cobo_v2(body: &[u8]) -> Self {
        let signer = cobo_v2::Signer::generate();
        Self {
            verifier: Verifier::cobo_v2(&signer.public_key_hex()).unwrap(),
            signature: signer.sign(body, TIMESTAMP_MS),
            body: body.to_vec(),
            timestamp: TIMESTAMP_MS.into(),
            standard: false,
        }
    }

    fn cobo_v1(body: &[u8]) -> Self {
        let signer = cobo_v1::Signer::generate();
        Self {
            verifier: Verifier::cobo_v1(&signer.public_key_hex()).unwrap(),
            signature: signer.sign(body, TIMESTAMP_MS),
            body: body.to_vec(),
            timestamp: TIMESTAMP_MS.into(),
            standard: false,
        }
    }

    fn standard(body: &[u8]) -> Self {
        let secret = Secret::generate();
        Self {
            verifier: Verifier::standard_secret(&secret.to_whsec())
                .unwrap()
                .without_freshness(),
            signature: secret.sign("msg_1", TIMESTAMP_S, body),
            body: body.to_vec(),
            timestamp: TIMESTAMP_S.into(),
            standard: true,
        }
    }

    fn verify(&self, body: &[u8], timestamp: &[u8], signature: &[u8]) -> Result<(), ReceiverError> {
        let pairs: Vec<(&str, &[u8])> = if self.standard {
            vec![
                ("webhook-id", b"msg_1"),
                ("webhook-timestamp", timestamp),
                ("webhook-signature", signature),
            ]
        } else {
            vec![
                ("Biz-Timestamp", timestamp),
                ("Biz-Resp-Signature", signature),
            ]
        };
        self.verifier.verify(&pairs, body).map(drop)
    }

    fn verify_as_signed(&self) -> Result<(), ReceiverError> {
        self.verify(
            &self.body,
            self.timestamp.as_bytes(),
            self.signature.as_bytes(),
        )
    }
}

fn all_schemes(body: &[u8]) -> [Signed; 3] {
    [
        Signed::cobo_v2(body),
        Signed::cobo_v1(body),
        Signed::standard(body),
    ]
}

fn flip(bytes: &[u8], index: usize, new: u8) -> Option<Vec<u8>> {
    let mut changed = bytes.to_vec();
    let slot = changed.get_mut(index % bytes.len())?;
    if *slot == new {
        return None;
    }
    *slot = new;
    Some(changed)
}

#[test]
fn awkward_bodies_verify_exactly_as_signed() {
    let bodies: [&[u8]; 6] = [
        br#"{"url":"https:\/\/x.example\/p?a=1\u0026b=2"}"#,
        "{\"note\":\"Zoë 😊\"}".as_bytes(),
        "{\"sep\":\"a\u{2028}b\u{2029}c\"}".as_bytes(),
        b"{\"a\":1}\r\n",
        b"{\"a\":\"\xff\xfe not UTF-8\"}",
        b"",
    ];
    for body in bodies {
        for signed in all_schemes(body) {
            assert!(
                signed.verify_as_signed().is_ok(),
                "{:?}",
                String::from_utf8_lossy(body)
            );

            // Re-serialising what was parsed is not the same message.
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
                let again = serde_json::to_vec(&value).unwrap();
                if again != body {
                    let outcome = signed.verify(
                        &again,
                        signed.timestamp.as_bytes(),
                        signed.signature.as_bytes(),
                    );
                    assert!(matches!(outcome, Err(ReceiverError::SignatureMismatch)));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_changed_body_byte_fails(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        index in any::<usize>(),
        new in any::<u8>(),
    ) {
        for signed in all_schemes(&body) {
            let Some(changed) = flip(&body, index, new) else { continue };
            let ts = signed.timestamp.as_bytes();
            prop_assert!(signed.verify(&changed, ts, signed.signature.as_bytes()).is_err());
        }
    }

    #[test]
    fn any_changed_timestamp_byte_fails(index in any::<usize>(), new in any::<u8>()) {
        for signed in all_schemes(b"{\"event_id\":\"e\"}") {
            let Some(changed) = flip(signed.timestamp.as_bytes(), index, new) else { continue };
            // A changed byte that trims away (a space) is the same header value.
            if changed.trim_ascii() == signed.timestamp.as_bytes() { continue; }
            let outcome = signed.verify(&signed.body, &changed, signed.signature.as_bytes());
            prop_assert!(outcome.is_err());
        }
    }

    #[test]
    fn any_changed_signature_byte_fails(index in any::<usize>(), new in any::<u8>()) {
        for signed in all_schemes(b"{\"event_id\":\"e\"}") {
            let Some(changed) = flip(signed.signature.as_bytes(), index, new) else { continue };
            if changed.trim_ascii() == signed.signature.as_bytes() { continue; }
            // Hex is case-insensitive: an upper-case digit is the same signature.
            if !signed.standard && changed.eq_ignore_ascii_case(signed.signature.as_bytes()) {
                continue;
            }
            let outcome = signed.verify(&signed.body, signed.timestamp.as_bytes(), &changed);
            prop_assert!(outcome.is_err(), "accepted {:?}", String::from_utf8_lossy(&changed));
        }
    }
}
