//! Conformance with Cobo's own Python SDK: what the server sends, an SDK
//! user can verify and parse.
//!
//! The real server runs in-process and delivers to a capture receiver on
//! loopback that keeps each request's raw body bytes and headers. The test
//! publishes the `data` of every WaaS 2.0 webhook sample in
//! `testdata/samples/` and triggers one `Transaction` and one `TSSRequest`
//! test event, then hands the captures to `tests/python/cobo_waas2_verify.py`,
//! which checks each signature with the SDK's verify functions and parses
//! each body with `cobo_waas2.models.WebhookEvent`.
//!
//! Runs only when `HOOKGATE_PYTHON_COBO_WAAS2` names a Python interpreter
//! with `cobo-waas2` installed; `scripts/test` makes one and sets it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hookgate_server::settings::{DeliverySettings, NetworkSettings, Settings};
use serde_json::{json, Value};

const PYTHON_VAR: &str = "HOOKGATE_PYTHON_COBO_WAAS2";
const SAMPLES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/samples");
const VERIFY_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/cobo_waas2_verify.py"
);

/// The event types whose data the SDK parses into a typed class.
const CORE_TYPES: [&str; 8] = [
    "wallets.transaction.created",
    "wallets.transaction.updated",
    "wallets.transaction.succeeded",
    "wallets.transaction.failed",
    "wallets.mpc.tss_request.created",
    "wallets.mpc.tss_request.updated",
    "wallets.mpc.tss_request.succeeded",
    "wallets.mpc.tss_request.failed",
];

/// Test events asked of the trigger route, one per typed data class.
const TRIGGERED: [&str; 2] = [
    "wallets.transaction.succeeded",
    "wallets.mpc.tss_request.updated",
];

/// The longest wait for every delivery to arrive.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);

/// The longest the Python check may run.
const CHECK_DEADLINE: Duration = Duration::from_secs(120);

/// One request as the capture receiver saw it.
struct Capture {
    headers: BTreeMap<String, String>,
    body: Bytes,
}

type Captures = Arc<Mutex<Vec<Capture>>>;

/// A receiver on 127.0.0.1 that keeps every request and answers 200.
async fn start_capture_receiver() -> (String, Captures) {
    let captures = Captures::default();
    let kept = captures.clone();
    let app = Router::new().route(
        "/cobo/waas2/events",
        post(move |headers: HeaderMap, body: Bytes| async move {
            let headers = headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into(),
                    )
                })
                .collect();
            kept.lock().unwrap().push(Capture { headers, body });
            StatusCode::OK
        }),
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/cobo/waas2/events"), captures)
}

fn settings(data_dir: &Path) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        network: NetworkSettings {
            allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        },
        // A lost first attempt is retried quickly instead of failing the test.
        delivery: DeliverySettings {
            webhook_retry_ms: vec![200],
            jitter: 0.0,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The envelope `type` and `data` of every WaaS 2.0 webhook sample, by file.
fn webhook_samples() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(SAMPLES_DIR)
        .unwrap_or_else(|e| panic!("cannot read {SAMPLES_DIR}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("v2-webhook-") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no v2-webhook-*.json in {SAMPLES_DIR}");

    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let sample: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                sample,
            )
        })
        .collect()
}

/// Sends a JSON request and returns the answer, asserting its status.
async fn call(
    request: reqwest::RequestBuilder,
    token: &str,
    body: Value,
    expected: reqwest::StatusCode,
) -> Value {
    let response = request.bearer_auth(token).json(&body).send().await.unwrap();
    let status = response.status();
    let answer = response.text().await.unwrap();
    assert_eq!(status, expected, "request {body} was answered {answer}");
    serde_json::from_str(&answer).unwrap_or(Value::Null)
}

/// Waits until `count` requests have arrived, then a little longer so that an
/// unexpected extra delivery is caught too.
async fn wait_for(captures: &Captures, count: usize) {
    let deadline = tokio::time::Instant::now() + DELIVERY_DEADLINE;
    while captures.lock().unwrap().len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} deliveries arrived within {DELIVERY_DEADLINE:?}",
            captures.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Writes the captures in the form `cobo_waas2_verify.py` reads.
fn write_captures(path: &Path, captures: &[Capture], public_key: &str) {
    let list: Vec<Value> = captures
        .iter()
        .map(|capture| {
            json!({
                "headers": capture.headers,
                "body_b64": BASE64.encode(&capture.body),
                "public_key_hex": public_key,
            })
        })
        .collect();
    std::fs::write(path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cobo_sdk_verifies_and_parses_every_delivery() {
    let Some(python) = std::env::var_os(PYTHON_VAR).filter(|p| !p.is_empty()) else {
        println!("skipped: {PYTHON_VAR} not set (scripts/test sets it)");
        return;
    };

    let temp = tempfile::tempdir().unwrap();
    let server = hookgate_server::start(settings(&temp.path().join("data")))
        .await
        .unwrap();
    let api = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let (endpoint_url, captures) = start_capture_receiver().await;

    let admin = server.admin_token.as_str();
    let org = call(
        http.post(format!("{api}/producer/orgs")),
        admin,
        json!({"name": "Cobo SDK conformance"}),
        reqwest::StatusCode::CREATED,
    )
    .await;
    let org_id = org["org_id"].as_str().unwrap().to_owned();
    let key = call(
        http.post(format!("{api}/producer/orgs/{org_id}/api_keys")),
        admin,
        json!({"name": "conformance"}),
        reqwest::StatusCode::CREATED,
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_owned();

    let endpoint = call(
        http.post(format!("{api}/v2/webhooks/endpoints")),
        &secret,
        json!({"url": endpoint_url, "subscribed_events": CORE_TYPES}),
        reqwest::StatusCode::CREATED,
    )
    .await;
    let endpoint_id = endpoint["endpoint_id"].as_str().unwrap().to_owned();

    let public_key = http
        .get(format!("{api}/v2/webhooks/public_key"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        public_key, server.public_key_v2,
        "the API publishes the key the server signs with"
    );

    // Every sample's data, published as the wallet platform would.
    let samples = webhook_samples();
    let mut published: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for (file, sample) in &samples {
        let answer = call(
            http.post(format!("{api}/producer/v2/events")),
            admin,
            json!({"org_id": org_id, "type": sample["type"], "data": sample["data"]}),
            reqwest::StatusCode::ACCEPTED,
        )
        .await;
        let events = answer["events"].as_array().unwrap();
        assert_eq!(
            events.len(),
            1,
            "{file}: one copy for the one subscribed endpoint"
        );
        assert_eq!(events[0]["endpoint_id"], json!(endpoint_id), "{file}");
        let event_id = events[0]["event_id"].as_str().unwrap().to_owned();
        published.insert(event_id, (file.clone(), sample.clone()));
    }

    // And the server's own test events.
    for event_type in TRIGGERED {
        call(
            http.post(format!("{api}/v2/webhooks/events/trigger")),
            &secret,
            json!({"event_type": event_type}),
            reqwest::StatusCode::CREATED,
        )
        .await;
    }

    let expected = samples.len() + TRIGGERED.len();
    wait_for(&captures, expected).await;
    let captures = std::mem::take(&mut *captures.lock().unwrap());
    assert_eq!(
        captures.len(),
        expected,
        "each event is delivered once when answered 200"
    );

    // What the server promised before any SDK looks at it: each published
    // sample arrives once, to this endpoint's URL, with its data unchanged.
    let mut seen = BTreeSet::new();
    let mut triggered = Vec::new();
    for capture in &captures {
        let body: Value = serde_json::from_slice(&capture.body).expect("a delivery body is JSON");
        let event_id = body["event_id"]
            .as_str()
            .expect("event_id is a string")
            .to_owned();
        assert!(
            seen.insert(event_id.clone()),
            "event {event_id} delivered twice"
        );
        assert_eq!(body["url"], json!(endpoint_url), "event {event_id}");
        match published.get(&event_id) {
            Some((file, sample)) => {
                assert_eq!(body["type"], sample["type"], "{file}: type");
                assert_eq!(
                    body["data"], sample["data"],
                    "{file}: data must arrive unchanged"
                );
            }
            None => triggered.push(body["type"].as_str().unwrap_or_default().to_owned()),
        }
    }
    triggered.sort();
    let mut asked: Vec<String> = TRIGGERED.iter().map(|t| t.to_string()).collect();
    asked.sort();
    assert_eq!(triggered, asked, "one delivery per triggered test event");

    // Now Cobo's SDK.
    let captures_file = temp.path().join("captures.json");
    write_captures(&captures_file, &captures, &server.public_key_v2);
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
        "cobo_waas2 refused deliveries ({}):\n{stderr}\n{stdout}",
        output.status
    );

    server.stop().await;
}
