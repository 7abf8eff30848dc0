//! Conformance with Cobo's own WaaS 1.0 Python SDK: what the server pushes
//! to a 1.0 URL, a `cobo-custody` user can verify.
//!
//! The real server runs in-process and pushes 1.0 transaction notifications
//! (the custodial and MPC samples of `testdata/samples/`, given as objects,
//! and the body of the Cobo-signed vector of `testdata/vectors/`, given as
//! an exact string) and one withdrawal confirmation to a receiver on
//! loopback. The captured requests, with the real Cobo-signed vector as a
//! control, go to `tests/python/cobo_custody_verify.py`, which checks each
//! signature with the SDK's `verify_ecdsa_signature`.
//!
//! Runs only when `HOOKGATE_PYTHON_COBO_CUSTODY` names a Python interpreter
//! with `cobo-custody` installed; `scripts/test` makes one and sets it.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use support::server::TestServer;
use support::waas1::{cobo_signed_vector, sample, CoboReceiver, Delivered, Reply, Waas1Org};

const PYTHON_VAR: &str = "HOOKGATE_PYTHON_COBO_CUSTODY";
const VERIFY_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/cobo_custody_verify.py"
);

/// The longest the Python check may run.
const CHECK_DEADLINE: Duration = Duration::from_secs(120);

/// One capture in the form `cobo_custody_verify.py` reads.
fn capture(label: &str, headers: BTreeMap<String, String>, body: &[u8], key: &str) -> Value {
    json!({
        "label": label,
        "headers": headers,
        "body_b64": BASE64.encode(body),
        "public_key_hex": key,
    })
}

fn headers_of(delivered: &Delivered) -> BTreeMap<String, String> {
    delivered
        .headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cobo_custody_verifies_every_waas1_push() {
    let Some(python) = std::env::var_os(PYTHON_VAR).filter(|p| !p.is_empty()) else {
        println!("skipped: {PYTHON_VAR} not set (scripts/test sets it)");
        return;
    };

    let server = TestServer::start(|settings| {
        settings.delivery.waas1_notification_retry_ms = vec![100];
        settings.delivery.callback_retry_ms = vec![100];
    })
    .await;
    let org = Waas1Org::create(&server).await;
    let (v2_key, v1_key) = org.public_keys().await;
    let receiver = CoboReceiver::start(&v1_key, &v2_key, |_| Reply::ok()).await;
    let endpoint_id = org.set_notification_url(&receiver.url("/v1/notify")).await;
    org.set_confirmation_url(&receiver.url("/v1/confirm")).await;

    let vector = cobo_signed_vector();
    let vector_body = vector["body"].as_str().expect("the vector's body");
    let notifications = [
        (
            "custodial deposit",
            sample("v1-custodial-deposit-notification.json"),
        ),
        (
            "MPC withdrawal",
            sample("v1-mpc-transaction-notification.json"),
        ),
        ("Cobo's vector body, as a string", json!(vector_body)),
    ];
    for (_, body) in &notifications {
        let event_id = org.notify(body).await;
        org.api
            .wait_status(&endpoint_id, &event_id, "Success")
            .await;
    }
    let decision = org
        .confirm(&sample("v1-custodial-withdrawal-confirmation.json"))
        .await;
    assert_eq!(decision["status"], "Approved", "{decision}");
    receiver.assert_all_verified();

    let pushed = receiver.delivered_at("/v1/notify");
    assert_eq!(pushed.len(), notifications.len(), "each acknowledged once");
    assert!(
        pushed.iter().any(|p| p.body == vector_body.as_bytes()),
        "the vector body arrives as Cobo's exact bytes"
    );
    let confirmed = receiver.delivered_at("/v1/confirm");
    assert_eq!(confirmed.len(), 1);

    let mut captures: Vec<Value> = pushed
        .iter()
        .map(|p| {
            let label = notifications
                .iter()
                .find(|(_, body)| match body {
                    Value::String(exact) => p.body == exact.as_bytes(),
                    object => p.json() == *object,
                })
                .map_or("notification", |(label, _)| label);
            capture(label, headers_of(p), &p.body, &v1_key)
        })
        .collect();
    captures.push(capture(
        "withdrawal confirmation",
        headers_of(&confirmed[0]),
        &confirmed[0].body,
        &v1_key,
    ));
    // Control: Cobo's own signature, as Cobo sent it.
    let cobo_headers = BTreeMap::from([
        (
            "biz_timestamp".to_owned(),
            vector["biz_timestamp"].as_str().unwrap().to_owned(),
        ),
        (
            "biz_resp_signature".to_owned(),
            vector["signature_der_hex"].as_str().unwrap().to_owned(),
        ),
    ]);
    let cobo_key = vector["public_key_hex"].as_str().unwrap();
    captures.push(capture(
        "control: signed by Cobo",
        cobo_headers,
        vector_body.as_bytes(),
        cobo_key,
    ));

    let temp = support::TempDir::new("cobo-custody");
    let captures_file = temp.path().join("captures.json");
    std::fs::write(
        &captures_file,
        serde_json::to_vec_pretty(&captures).unwrap(),
    )
    .unwrap();
    let check = tokio::process::Command::new(&python)
        .arg("-B")
        .arg(VERIFY_SCRIPT)
        .arg(&captures_file)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(CHECK_DEADLINE, check)
        .await
        .unwrap_or_else(|_| panic!("{VERIFY_SCRIPT} ran longer than {CHECK_DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("cannot run {python:?} from {PYTHON_VAR}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "cobo_custody refused deliveries ({}):\n{stderr}\n{stdout}",
        output.status
    );
    assert!(
        stdout.contains(&format!("all {} deliveries", captures.len())),
        "{stdout}"
    );

    server.stop().await;
}
