//! WaaS 1.0 API callbacks end to end: a real server pushes 1.0 transaction
//! notifications and withdrawal confirmations to a real receiver that checks
//! every request with `hookgate_receiver` and the secp256k1 key the API
//! publishes, beside WaaS 2.0 traffic to the same organisation. The tests
//! check what arrives (exact bytes), what counts as an acknowledgement, how
//! many pushes are made, the decisions, that the generations never cross,
//! and that a receiver books each transaction once across both.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookgate_protocol::waas1::to_python_json;
use hookgate_receiver::{DedupKey, TransactionState};
use hookgate_server::settings::Settings;
use serde_json::{json, Value};

use support::server::{base_settings, ApiClient, TestServer, ADMIN_TOKEN};
use support::waas1::{cobo_signed_vector, sample, CoboReceiver, Reply, Waas1Org};
use support::{eventually, TempDir};

const CUSTODIAL_DEPOSIT: &str = "v1-custodial-deposit-notification.json";
const MPC_WITHDRAWAL: &str = "v1-mpc-transaction-notification.json";
const CUSTODIAL_CONFIRMATION: &str = "v1-custodial-withdrawal-confirmation.json";

/// Attempts of a withdrawal confirmation before it ends `Failed`.
const CONFIRMATION_ATTEMPTS: u32 = 3;

/// Gaps of a few milliseconds between pushes; the number of notification
/// pushes stays at its default (14).
fn v1_timing(settings: &mut Settings) {
    let delivery = &mut settings.delivery;
    delivery.timeout_ms = 300;
    delivery.lease_ms = delivery.timeout_ms + 5_000;
    delivery.waas1_notification_retry_ms = vec![3, 6];
    delivery.callback_retry_ms = vec![10, 20];
    delivery.callback_max_attempts = CONFIRMATION_ATTEMPTS;
    delivery.jitter = 0.0;
}

/// A server on [`v1_timing`], an organisation, and a receiver that trusts
/// the keys the organisation reads from the API.
async fn setup(
    plan: impl Fn(&support::waas1::Request) -> Reply + Send + Sync + 'static,
) -> (TestServer, Waas1Org, CoboReceiver) {
    let server = TestServer::start(v1_timing).await;
    let org = Waas1Org::create(&server).await;
    let (v2_key, v1_key) = org.public_keys().await;
    let receiver = CoboReceiver::start(&v1_key, &v2_key, plan).await;
    (server, org, receiver)
}

/// Waits a moment so that anything wrongly sent would have arrived: used
/// only before asserting that something did *not* happen.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

fn events_path(endpoint_id: &str) -> String {
    format!("/v2/webhooks/endpoints/{endpoint_id}/events")
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

/// A custodial body with its own `id`, so that tests never share one.
fn custodial(id: &str) -> Value {
    let mut body = sample(CUSTODIAL_DEPOSIT);
    body["id"] = json!(id);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v1_public_key_is_compressed_secp256k1_and_survives_a_restart() {
    let dir = TempDir::new("waas1-key");
    let published_v1_key = |server: hookgate_server::RunningServer| async move {
        let admin = ApiClient::new(&format!("http://{}", server.addr), Some(ADMIN_TOKEN));
        let org = admin.new_org().await;
        let keys = org.api.get("/v2/webhooks/public_key").await.expect(200);
        assert_eq!(keys["keys"][1]["scheme"], "cobo_v1_secp256k1", "{keys}");
        let key = text(&keys["keys"][1]["public_key"]);
        assert_eq!(
            key, server.public_key_v1,
            "the API publishes the signing key"
        );
        server.stop().await;
        key
    };

    let first = hookgate_server::start(base_settings(dir.path()))
        .await
        .expect("the server starts");
    let key = published_v1_key(first).await;
    assert_eq!(key.len(), 66, "33 bytes in hex: {key}");
    assert!(key.starts_with("02") || key.starts_with("03"), "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    hookgate_protocol::signing::cobo_v1::parse_public_key(&key).expect("a point on secp256k1");

    let second = hookgate_server::start(base_settings(dir.path()))
        .await
        .expect("the server starts again on the same data directory");
    assert_eq!(
        published_v1_key(second).await,
        key,
        "the same key after a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ok_acknowledges_and_the_bytes_arrive_as_given() {
    let (_server, org, receiver) = setup(|_| Reply::ok()).await;
    let endpoint_id = org.set_notification_url(&receiver.url("/v1/notify")).await;

    // A string body is sent byte for byte: spacing, escapes, raw UTF-8 and
    // a trailing CRLF that no JSON writer would produce.
    let exact = "{\"id\":  \"20250311114730000640468000557405\" ,\"coin\":\"BTC\",\
                 \"memo\":\"Zo\u{eb} \u{1F60A}\",\"remark\":\"a\\/b\\u0026c\"}\r\n";
    let string_event = org.notify(&json!(exact)).await;

    // An object body is written once, the way Cobo's servers wrote JSON.
    let mut object = sample(CUSTODIAL_DEPOSIT);
    object["remark"] = json!("Zoë paid 😊 \"in full\"");
    let object_event = org.notify(&object).await;

    for event_id in [&string_event, &object_event] {
        let event = org.api.wait_status(&endpoint_id, event_id, "Success").await;
        assert_eq!(event["endpoint_id"], endpoint_id.as_str(), "{event}");
    }

    // The API shows the 1.0 body inside an envelope, its own `status` and
    // `type` untouched.
    let event = org.api.event(&endpoint_id, &object_event).await;
    assert_eq!(event["event_id"], object_event.as_str(), "{event}");
    assert_eq!(event["type"], "waas1.transaction_notification", "{event}");
    assert_eq!(event["url"], receiver.url("/v1/notify"), "{event}");
    assert!(event["created_timestamp"].is_i64(), "{event}");
    assert_eq!(event["data"], object, "{event}");
    assert_eq!(event["data"]["status"], "success", "{event}");
    receiver.assert_all_verified();

    let delivered = receiver.delivered_at("/v1/notify");
    assert_eq!(delivered.len(), 2, "one push each: both said ok");
    let sent: Vec<&[u8]> = delivered.iter().map(|d| &d.body[..]).collect();
    assert!(
        sent.contains(&exact.as_bytes()),
        "the string, byte for byte"
    );

    let python = to_python_json(&object);
    let written = String::from_utf8(python.clone()).expect("ASCII");
    assert!(sent.contains(&&python[..]), "the object in Python's form");
    assert!(written.starts_with("{\"id\": \"2025"), "{written}");
    assert!(written.contains("\", \"coin\": \"BTC\", "), "{written}");
    assert!(
        written.contains("Zo\\u00eb paid \\ud83d\\ude0a \\\"in full\\\""),
        "{written}"
    );
    assert!(written.is_ascii(), "non-ASCII is escaped: {written}");

    for request in &delivered {
        assert_eq!(request.header("content-type"), Some("application/json"));
        let timestamp = request.header("Biz-Timestamp").expect("Biz-Timestamp");
        assert!(timestamp.parse::<i64>().expect("digits") > 1_600_000_000_000);
        let signature = request.header("Biz-Resp-Signature").expect("signature");
        assert_eq!(request.header("BIZ_RESP_SIGNATURE"), Some(signature));
    }

    // The log shows the exact bytes sent.
    let logs = org.api.logs(&endpoint_id, &string_event).await;
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["request_body"], exact);
    assert_eq!(logs[0]["success"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_but_ok_is_a_failed_push_and_is_pushed_again() {
    let near_misses: [(u16, &str); 6] = [
        (200, "OK"),
        (200, "\"ok\""),
        (200, ""),
        (204, ""),
        (500, "ok"),
        (200, "{\"ok\":true}"),
    ];
    let (_server, org, receiver) = setup(move |request| match near_misses.get(request.nth - 1) {
        Some((status, body)) => Reply::text(*status, body),
        None => Reply::ok(),
    })
    .await;
    let endpoint_id = org.set_notification_url(&receiver.url("/v1/notify")).await;

    let event_id = org.notify(&custodial("near-misses")).await;
    org.api
        .wait_status(&endpoint_id, &event_id, "Success")
        .await;
    receiver.assert_all_verified();

    let pushes = receiver.delivered_at("/v1/notify");
    assert_eq!(pushes.len(), 7, "six refused pushes, then ok");
    assert!(
        pushes.iter().all(|p| p.body == pushes[0].body),
        "same bytes"
    );

    let logs = org.api.wait_logs(&endpoint_id, &event_id, 7).await;
    let outcomes: Vec<(Value, Value)> = logs
        .iter()
        .map(|l| (l["response_status_code"].clone(), l["success"].clone()))
        .collect();
    let mut expected: Vec<(Value, Value)> = near_misses
        .iter()
        .map(|(status, _)| (json!(status), json!(false)))
        .collect();
    expected.push((json!(200), json!(true)));
    assert_eq!(outcomes, expected, "{logs:?}");
    for log in &logs[..6] {
        let reason = log["failure_reason"].as_str().unwrap_or_default();
        assert!(!reason.is_empty(), "a failed push says why: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourteen_pushes_without_ok_then_failed_and_a_manual_retry_works() {
    let acknowledge = Arc::new(AtomicBool::new(false));
    let switch = acknowledge.clone();
    let (_server, org, receiver) = setup(move |_| {
        if switch.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::text(200, "received")
        }
    })
    .await;
    let endpoint_id = org.set_notification_url(&receiver.url("/v1/notify")).await;

    let event_id = org.notify(&custodial("never-ok")).await;
    let failed = org.api.wait_status(&endpoint_id, &event_id, "Failed").await;
    assert_eq!(failed["endpoint_id"], endpoint_id.as_str(), "{failed}");
    settle().await;
    assert_eq!(receiver.count_at("/v1/notify"), 14, "the default 14 pushes");
    assert_eq!(org.api.logs(&endpoint_id, &event_id).await.len(), 14);
    receiver.assert_all_verified();

    // The notification is listed with the 2.0 event API, under the
    // organisation's 1.0 endpoint.
    let listed = org.api.get(&events_path(&endpoint_id)).await.expect(200);
    let listed = listed["data"].as_array().expect("data").clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["event_id"], event_id.as_str(), "{listed:?}");
    assert_eq!(listed[0]["status"], "Failed", "{listed:?}");
    assert_eq!(listed[0]["data"]["id"], "never-ok", "{listed:?}");
    let failed_only = org
        .api
        .get(&format!("{}?status=Failed", events_path(&endpoint_id)))
        .await
        .expect(200);
    assert_eq!(failed_only["data"].as_array().map(Vec::len), Some(1));

    acknowledge.store(true, Ordering::SeqCst);
    org.api.retry(&endpoint_id, &event_id).await.expect(201);
    org.api
        .wait_status(&endpoint_id, &event_id, "Success")
        .await;
    assert_eq!(receiver.count_at("/v1/notify"), 15, "one more push");
    let logs = org.api.logs(&endpoint_id, &event_id).await;
    assert_eq!(logs.len(), 15);
    assert_eq!(logs[14]["success"], true);
    receiver.assert_all_verified();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawal_confirmations_approve_deny_and_fail_closed() {
    let (_server, org, receiver) = setup(|request| {
        let request_id = request.json["request_id"].as_str().unwrap_or_default();
        if request_id.starts_with("approve") {
            Reply::ok()
        } else if request_id.starts_with("deny") {
            Reply::deny()
        } else {
            Reply::text(503, "busy")
        }
    })
    .await;
    org.set_confirmation_url(&receiver.url("/v1/confirm")).await;
    let confirmation = |request_id: &str| {
        let mut body = sample(CUSTODIAL_CONFIRMATION);
        body["request_id"] = json!(format!("{request_id}-{}", uuid::Uuid::new_v4()));
        body
    };

    let approve = confirmation("approve");
    let approved = org.confirm(&approve).await;
    assert_eq!(approved["status"], "Approved", "{approved}");
    assert_eq!(approved["result"], "ok", "{approved}");
    assert_eq!(approved["proceed"], true, "{approved}");

    let denied = org.confirm(&confirmation("deny")).await;
    assert_eq!(denied["status"], "Denied", "{denied}");
    assert_eq!(denied["result"], "deny", "{denied}");
    assert_eq!(denied["proceed"], false, "{denied}");

    let silent = confirmation("silent");
    let failed = org.confirm(&silent).await;
    assert_eq!(failed["status"], "Failed", "{failed}");
    assert_eq!(failed["proceed"], false, "fails closed: {failed}");
    settle().await;
    let silent_pushes = receiver
        .delivered_at("/v1/confirm")
        .into_iter()
        .filter(|d| d.json()["request_id"] == silent["request_id"])
        .count();
    assert_eq!(silent_pushes, CONFIRMATION_ATTEMPTS as usize);

    // Asked again with the same request_id: the same message, the same
    // decision, and nothing new sent.
    let before = receiver.count_at("/v1/confirm");
    let again = org.confirm(&approve).await;
    assert_eq!(again, approved, "the same message and decision");
    settle().await;
    assert_eq!(receiver.count_at("/v1/confirm"), before, "not asked again");

    for answer in [&approved, &denied, &failed] {
        let message_id = text(&answer["message_id"]);
        assert_eq!(&org.decision(&message_id).await, answer, "polling agrees");
    }

    receiver.assert_all_verified();
    let first = &receiver.delivered_at("/v1/confirm")[0];
    assert_eq!(
        first.body,
        to_python_json(&approve),
        "the body in Python's form"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waas1_and_waas2_traffic_never_cross() {
    let (server, org, receiver) = setup(|_| Reply::ok()).await;
    let v1_notify = receiver.url("/v1/notify");
    let v1_confirm = receiver.url("/v1/confirm");
    let v1_endpoint = org.set_notification_url(&v1_notify).await;
    org.set_confirmation_url(&v1_confirm).await;

    // A 2.0 endpoint subscribed to every event type, and a 2.0 callback
    // endpoint linked to an API key.
    let definitions = org
        .api
        .get("/v2/webhooks/events/definitions")
        .await
        .expect(200);
    let every_type: Vec<String> = definitions
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| text(&d["event_type"]))
        .collect();
    let types: Vec<&str> = every_type.iter().map(String::as_str).collect();
    let v2_endpoint = org
        .api
        .create_endpoint(&receiver.url("/waas2/events"), &types)
        .await;
    let key = server
        .admin
        .post(
            &format!("/producer/orgs/{}/api_keys", org.org_id),
            &json!({"name": "payouts"}),
        )
        .await
        .expect(201);
    let api_key_id = text(&key["api_key_id"]);
    org.api
        .post(
            "/v2/developers/callback_endpoints",
            &json!({"url": receiver.url("/waas2/approve"), "api_key_id": api_key_id}),
        )
        .await
        .expect(201);

    // Every 2.0 event type, as test events.
    for event_type in &every_type {
        org.api
            .post(
                "/v2/webhooks/events/trigger",
                &json!({"event_type": event_type}),
            )
            .await
            .expect(201);
    }
    let mut tx = sample("v2-callback-withdrawal.json");
    tx["request_id"] = json!(format!("v2-{}", uuid::Uuid::new_v4()));
    let v2_ask = json!({"org_id": org.org_id, "api_key_id": api_key_id,
                        "transaction": tx, "wait_ms": 10_000});
    let v2_decision = server
        .admin
        .post("/producer/v2/callbacks", &v2_ask)
        .await
        .expect(200);
    assert_eq!(v2_decision["status"], "Approved", "{v2_decision}");

    // And 1.0 traffic.
    let v1_event = org.notify(&custodial("separation")).await;
    org.api
        .wait_status(&v1_endpoint, &v1_event, "Success")
        .await;
    let mut confirmation = sample(CUSTODIAL_CONFIRMATION);
    confirmation["request_id"] = json!(format!("v1-{}", uuid::Uuid::new_v4()));
    assert_eq!(org.confirm(&confirmation).await["status"], "Approved");

    eventually("every 2.0 event type to arrive", || async {
        (receiver.count_at("/waas2/events") >= every_type.len()).then_some(())
    })
    .await;
    settle().await;

    receiver.assert_all_verified();
    assert_eq!(receiver.count_at("/waas2/events"), every_type.len());
    assert_eq!(receiver.count_at("/waas2/approve"), 1);
    assert_eq!(receiver.count_at("/v1/notify"), 1, "only the 1.0 push");
    assert_eq!(receiver.count_at("/v1/confirm"), 1, "only the 1.0 question");
    for event in receiver.delivered_at("/waas2/events") {
        assert!(event.json()["event_id"].is_string(), "a 2.0 envelope");
    }

    // The 2.0 endpoint's events are 2.0 events only, and the reverse.
    let v2_listed = org.api.get(&events_path(&v2_endpoint)).await.expect(200);
    assert_eq!(
        v2_listed["pagination"]["total_count"],
        every_type.len(),
        "{v2_listed}"
    );
    let v1_listed = org.api.get(&events_path(&v1_endpoint)).await.expect(200);
    assert_eq!(v1_listed["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_url_serves_one_generation_only() {
    let (server, org, receiver) = setup(|_| Reply::ok()).await;
    let v1_notify = receiver.url("/v1/notify");
    let v1_confirm = receiver.url("/v1/confirm");
    org.set_notification_url(&v1_notify).await;
    org.set_confirmation_url(&v1_confirm).await;
    let key = server
        .admin
        .post(
            &format!("/producer/orgs/{}/api_keys", org.org_id),
            &json!({"name": "payouts"}),
        )
        .await
        .expect(201);
    let api_key_id = text(&key["api_key_id"]);

    // 2.0 registrations at an active 1.0 URL.
    for url in [&v1_notify, &v1_confirm] {
        let endpoint = json!({"url": url, "subscribed_events": ["wallets.transaction.succeeded"]});
        let answer = org.api.post("/v2/webhooks/endpoints", &endpoint).await;
        answer.expect_error(409);
        let link = json!({"url": url, "api_key_id": api_key_id});
        let answer = org
            .api
            .post("/v2/developers/callback_endpoints", &link)
            .await;
        answer.expect_error(409);
    }

    // 1.0 URLs at an active 2.0 URL.
    let v2_events = receiver.url("/v2-events");
    let v2_approve = receiver.url("/v2-approve");
    org.api
        .create_endpoint(&v2_events, &["wallets.transaction.succeeded"])
        .await;
    org.api
        .post(
            "/v2/developers/callback_endpoints",
            &json!({"url": v2_approve, "api_key_id": api_key_id}),
        )
        .await
        .expect(201);
    for url in [&v2_events, &v2_approve] {
        for field in [
            "transaction_notification_url",
            "withdrawal_confirmation_url",
        ] {
            let answer = org.put_urls(&json!({ field: url })).await;
            answer.expect_error(409);
        }
    }

    // The refused changes left the 1.0 URLs as they were.
    let urls = org
        .api
        .get("/v2/developers/waas1_callbacks")
        .await
        .expect(200);
    assert_eq!(urls["transaction_notification"]["url"], v1_notify.as_str());
    assert_eq!(urls["withdrawal_confirmation"]["url"], v1_confirm.as_str());
}

/// Publishes the 2.0 `succeeded` event of `sample_file` to the organisation.
async fn publish_succeeded(org: &Waas1Org, sample_file: &str) {
    let event = sample(sample_file);
    let body = json!({"org_id": org.org_id, "type": event["type"], "data": event["data"]});
    org.admin
        .post("/producer/v2/events", &body)
        .await
        .expect(202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_by_side_each_transaction_is_booked_once_whatever_the_order() {
    let deposit = sample(CUSTODIAL_DEPOSIT);
    let withdrawal = sample(MPC_WITHDRAWAL);
    let deposit_id = text(&deposit["id"]);
    let withdrawal_id = text(&withdrawal["cobo_id"]);
    assert_ne!(deposit_id, withdrawal_id);
    let expected_keys: Vec<String> = [&deposit_id, &withdrawal_id]
        .iter()
        .map(|cobo_id| {
            DedupKey::TransactionState {
                cobo_id: cobo_id.to_string(),
                state: TransactionState::Succeeded,
            }
            .to_string()
        })
        .collect();

    for v1_first in [true, false] {
        // The first try of each body is refused, so that every report also
        // arrives twice and the receiver must skip its own repeats.
        let (_server, org, receiver) = setup(|request| {
            if request.nth == 1 {
                Reply::text(503, "busy")
            } else {
                Reply::ok()
            }
        })
        .await;
        let v1_endpoint = org.set_notification_url(&receiver.url("/v1/notify")).await;
        let v2_endpoint = org
            .api
            .create_endpoint(
                &receiver.url("/waas2/events"),
                &["wallets.transaction.succeeded"],
            )
            .await;

        let report_v1 = || async {
            let a = org.notify(&deposit).await;
            let b = org.notify(&withdrawal).await;
            (a, b)
        };
        let report_v2 = || async {
            publish_succeeded(&org, "v2-webhook-deposit-succeeded.json").await;
            publish_succeeded(&org, "v2-webhook-withdrawal-succeeded.json").await;
        };
        let v1_events = if v1_first {
            let ids = report_v1().await;
            org.api.wait_status(&v1_endpoint, &ids.1, "Success").await;
            report_v2().await;
            ids
        } else {
            report_v2().await;
            eventually("the 2.0 events to be delivered", || async {
                (receiver.count_at("/waas2/events") >= 4).then_some(())
            })
            .await;
            report_v1().await
        };
        for event_id in [&v1_events.0, &v1_events.1] {
            org.api.wait_status(&v1_endpoint, event_id, "Success").await;
        }
        eventually("every 2.0 event to be delivered", || async {
            let listed = org
                .api
                .get(&format!("{}?status=Success", events_path(&v2_endpoint)))
                .await
                .expect(200);
            (listed["data"].as_array().map(Vec::len) == Some(2)).then_some(())
        })
        .await;
        settle().await;

        receiver.assert_all_verified();
        assert_eq!(receiver.count_at("/v1/notify"), 4, "two bodies, two tries");
        assert_eq!(
            receiver.count_at("/waas2/events"),
            4,
            "two events, two tries"
        );
        let booked = receiver.booked();
        let mut keys: Vec<String> = booked.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        let mut wanted = expected_keys.clone();
        wanted.sort();
        assert_eq!(keys, wanted, "each transaction booked once: {booked:?}");
        let first_via = if v1_first { "WaaS 1.0" } else { "WaaS 2.0" };
        assert!(
            booked.iter().all(|(_, via)| *via == first_via),
            "booked by the generation that reported first: {booked:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_reason() {
    let (_server, org, receiver) = setup(|_| Reply::ok()).await;
    org.set_notification_url(&receiver.url("/v1/notify")).await;
    org.set_confirmation_url(&receiver.url("/v1/confirm")).await;

    let unknown_kind = org.push("deposit", &custodial("bad-kind"), None).await;
    unknown_kind.expect_error(400);

    for body in [
        json!(42),
        json!(null),
        json!(["a", "list"]),
        json!("not JSON at all"),
        json!("[1, 2]"),
        json!("\"a string in a string\""),
    ] {
        for kind in ["transaction", "withdrawal_confirmation"] {
            let answer = org.push(kind, &body, Some(100)).await;
            answer.expect_error(400);
        }
    }

    let mut no_request_id = sample(CUSTODIAL_CONFIRMATION);
    no_request_id.as_object_mut().unwrap().remove("request_id");
    let mut empty_request_id = sample(CUSTODIAL_CONFIRMATION);
    empty_request_id["request_id"] = json!("");
    for body in [no_request_id, empty_request_id] {
        let answer = org.push("withdrawal_confirmation", &body, Some(100)).await;
        answer.expect_error(400);
    }

    for url in ["ftp://example.com/hook", "not a url", "javascript:alert(1)"] {
        for field in [
            "transaction_notification_url",
            "withdrawal_confirmation_url",
        ] {
            let answer = org.put_urls(&json!({ field: url })).await;
            answer.expect_error(400);
        }
    }

    settle().await;
    assert_eq!(receiver.count_at("/v1/notify"), 0, "nothing was pushed");
    assert_eq!(receiver.count_at("/v1/confirm"), 0, "nothing was asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cobo_signed_vector_body_is_forwarded_unchanged() {
    let (_server, org, receiver) = setup(|_| Reply::ok()).await;
    let endpoint_id = org.set_notification_url(&receiver.url("/v1/notify")).await;
    let vector = cobo_signed_vector();
    let body = text(&vector["body"]);

    let event_id = org.notify(&json!(body)).await;
    org.api
        .wait_status(&endpoint_id, &event_id, "Success")
        .await;
    let delivered = receiver.delivered_at("/v1/notify");
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].body, body.as_bytes(), "Cobo's own bytes");
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        to_python_json(&parsed),
        body.as_bytes(),
        "already Python's form"
    );
    receiver.assert_all_verified();
}
