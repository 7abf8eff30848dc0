//! Cross-checks our Standard Webhooks signer against the reference Python
//! library: about fifty cases, valid and tampered, signed here and verified
//! there by `tests/python/standard_webhooks_check.py`.
//!
//! Runs only when `HOOKGATE_PYTHON_STANDARDWEBHOOKS` names a Python
//! interpreter that has the package of `tests/python/requirements.txt`.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hookgate_protocol::signing::standard::{Ed25519Signer, Secret};
use hookgate_receiver::Verifier;
use serde_json::{json, Value};

const PYTHON_VAR: &str = "HOOKGATE_PYTHON_STANDARDWEBHOOKS";

fn bodies() -> Vec<Vec<u8>> {
    vec![
        br#"{"type":"wallets.transaction.succeeded","data":{"amount":"1250.75"}}"#.to_vec(),
        br#"{"url":"https:\/\/x.example\/p?a=1\u0026b=2"}"#.to_vec(),
        "{\"note\":\"Zoë 😊 \u{2028}\"}\r\n".as_bytes().to_vec(),
        b"{\"bad\":\"\xff\xfe\"}".to_vec(),
        b"".to_vec(),
        vec![b'x'; 5000],
    ]
}

struct Case {
    name: String,
    id: String,
    timestamp: String,
    body: Vec<u8>,
    secret: String,
    signature: String,
    valid: bool,
}

fn cases(now: u64) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, body) in bodies().into_iter().enumerate() {
        let secret = Secret::generate();
        let other = Secret::generate();
        let id = format!("msg_{i}_{now}");
        let ts = now.to_string();
        let good = secret.sign(&id, &ts, &body);
        let mut add = |name: &str, id: &str, ts: &str, body: &[u8], signature: String, valid| {
            cases.push(Case {
                name: format!("{name} #{i}"),
                id: id.into(),
                timestamp: ts.into(),
                body: body.to_vec(),
                secret: secret.to_whsec(),
                signature,
                valid,
            })
        };

        add("valid", &id, &ts, &body, good.clone(), true);
        let rotated = format!("{} {good}", other.sign(&id, &ts, &body));
        add("rotation", &id, &ts, &body, rotated, true);
        let with_v1a = format!("{} {good}", Ed25519Signer::generate().sign(&id, &ts, &body));
        add("beside v1a", &id, &ts, &body, with_v1a, true);
        add(
            "other secret",
            &id,
            &ts,
            &body,
            other.sign(&id, &ts, &body),
            false,
        );
        add(
            "other id",
            &format!("{id}x"),
            &ts,
            &body,
            good.clone(),
            false,
        );
        add(
            "other timestamp",
            &id,
            &(now - 1).to_string(),
            &body,
            good.clone(),
            false,
        );
        let mut tampered = body.clone();
        tampered.push(b' ');
        add(
            "body with a trailing space",
            &id,
            &ts,
            &tampered,
            good.clone(),
            false,
        );
        let only_v1a = Ed25519Signer::generate().sign(&id, &ts, &body);
        add("only v1a", &id, &ts, &body, only_v1a, false);
    }
    cases
}

fn our_verdict(case: &Case) -> bool {
    let verifier = Verifier::standard_secret(&case.secret).unwrap();
    let headers = [
        ("webhook-id", case.id.as_str()),
        ("webhook-timestamp", case.timestamp.as_str()),
        ("webhook-signature", case.signature.as_str()),
    ];
    verifier.verify(&headers, &case.body).is_ok()
}

#[test]
fn python_reference_agrees_with_our_signer() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cases = cases(now);
    assert_eq!(cases.len(), 48);
    for case in &cases {
        assert_eq!(
            our_verdict(case),
            case.valid,
            "our own verifier on {}",
            case.name
        );
    }

    let Ok(python) = std::env::var(PYTHON_VAR) else {
        println!("skipped: set {PYTHON_VAR} to a Python with tests/python/requirements.txt");
        return;
    };

    let json: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "id": c.id, "timestamp": c.timestamp,
                "body_base64": BASE64.encode(&c.body), "secret": c.secret,
                "signature": c.signature, "valid": c.valid,
            })
        })
        .collect();
    let path = std::env::temp_dir().join(format!("hookgate-sw-cases-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/standard_webhooks_check.py"
    );
    let output = Command::new(&python)
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "python disagreed:\n{stdout}\n{stderr}"
    );
}
