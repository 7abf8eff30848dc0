//! The delivery path end to end: a real server on loopback publishes to a
//! real receiver, and the tests check what the receiver got and what the API
//! reports about each attempt.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hookgate_protocol::signing::cobo_v2;
use hookgate_server::dispatch::client::{SendError, Sender};
use hookgate_server::dispatch::netpolicy::NetworkPolicy;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use support::receiver::{Receiver, Reply, Resetter};
use support::server::{ApiClient, TestServer};
use support::{eventually, transaction, wallet_info, TX_CREATED, TX_UPDATED, WALLET_CREATED};

/// Waits a moment so that anything wrongly sent would have arrived: used
/// only before asserting that something did *not* happen.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

fn only_event_id(published: &Value) -> String {
    let ids = ApiClient::event_ids(published);
    assert_eq!(ids.len(), 1, "expected one event: {published}");
    ids[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_is_signed_afresh_over_the_same_body() {
    let server = TestServer::start(|_| {}).await;
    let org = server.new_org().await;
    let receiver =
        Receiver::start(|call| Reply::Status(if call.nth == 1 { 500 } else { 200 })).await;
    let url = receiver.url("/hooks/cobo");
    let endpoint_id = org.api.create_endpoint(&url, &[TX_CREATED]).await;

    let keys = org.api.get("/v2/webhooks/public_key").await.expect(200);
    let key_hex = keys["public_key"].as_str().expect("public_key");
    assert_eq!(key_hex, server.public_key_v2);
    let key = cobo_v2::parse_public_key(key_hex).expect("the published key parses");

    let published = server
        .admin
        .publish(&org.org_id, TX_CREATED, transaction("tx-sig"))
        .await;
    let event_id = only_event_id(&published);
    org.api
        .wait_status(&endpoint_id, &event_id, "Success")
        .await;

    let attempts = receiver.received_event(&event_id);
    assert_eq!(attempts.len(), 2, "one failed attempt, then one delivered");
    let mut timestamps = Vec::new();
    for attempt in &attempts {
        assert_eq!(attempt.header("content-type"), Some("application/json"));
        let timestamp = attempt.header("Biz-Timestamp").expect("Biz-Timestamp");
        let signature = attempt
            .header("Biz-Resp-Signature")
            .expect("Biz-Resp-Signature");
        cobo_v2::verify(&key, &attempt.body, timestamp, signature)
            .expect("the signature verifies over the raw body");
        assert_eq!(attempt.header("BIZ_TIMESTAMP"), Some(timestamp));
        assert_eq!(attempt.header("BIZ_RESP_SIGNATURE"), Some(signature));

        let millis: i64 = timestamp.parse().expect("the timestamp is an integer");
        assert!(
            millis > 1_600_000_000_000,
            "the timestamp is in milliseconds: {millis}"
        );
        let mut tampered = attempt.body.to_vec();
        tampered.push(b' ');
        assert!(cobo_v2::verify(&key, &tampered, timestamp, signature).is_err());
        timestamps.push(timestamp.to_owned());
    }
    assert_eq!(
        attempts[0].body, attempts[1].body,
        "every attempt sends the same bytes"
    );
    assert_ne!(
        timestamps[0], timestamps[1],
        "every attempt gets a fresh timestamp"
    );

    let body = attempts[0].json();
    let keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["event_id", "url", "created_timestamp", "type", "data"]
    );
    assert_eq!(body["event_id"], event_id.as_str());
    assert_eq!(body["url"], url.as_str());
    assert!(body["created_timestamp"].is_i64());
    assert_eq!(body["type"], TX_CREATED);
    assert_eq!(body["data"]["data_type"], "Transaction");
    assert_eq!(body["data"]["transaction_id"], "tx-sig");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_endpoint_gets_exactly_its_types_with_its_own_event_id_and_url() {
    let server = TestServer::start(|_| {}).await;
    let org = server.new_org().await;
    let receiver = Receiver::start(|_| Reply::Status(200)).await;
    let only_tx = org
        .api
        .create_endpoint(&receiver.url("/a"), &[TX_CREATED])
        .await;
    let both = org
        .api
        .create_endpoint(&receiver.url("/b"), &[TX_CREATED, WALLET_CREATED])
        .await;
    let only_wallets = org
        .api
        .create_endpoint(&receiver.url("/c"), &[WALLET_CREATED])
        .await;
    let _unrelated = org
        .api
        .create_endpoint(&receiver.url("/d"), &[TX_UPDATED])
        .await;

    let tx = server
        .admin
        .publish(&org.org_id, TX_CREATED, transaction("tx-fan"))
        .await;
    let wallet = server
        .admin
        .publish(&org.org_id, WALLET_CREATED, wallet_info("fan"))
        .await;

    let targets = |published: &Value| -> Vec<String> {
        let events = published["events"].as_array().expect("events");
        events
            .iter()
            .map(|e| e["endpoint_id"].as_str().expect("endpoint_id").to_owned())
            .collect()
    };
    assert_eq!(targets(&tx), [only_tx.clone(), both.clone()]);
    assert_eq!(targets(&wallet), [both.clone(), only_wallets.clone()]);

    let all: Vec<(String, String)> = [&tx, &wallet]
        .into_iter()
        .flat_map(|p| p["events"].as_array().expect("events").clone())
        .map(|e| {
            (
                e["endpoint_id"].as_str().unwrap().into(),
                e["event_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (endpoint_id, event_id) in &all {
        org.api.wait_status(endpoint_id, event_id, "Success").await;
    }
    settle().await;

    let types_at = |path: &str| -> Vec<String> {
        let mut types: Vec<String> = receiver
            .received_at(path)
            .iter()
            .map(|r| r.json()["type"].as_str().expect("type").to_owned())
            .collect();
        types.sort();
        types
    };
    assert_eq!(types_at("/a"), [TX_CREATED]);
    assert_eq!(
        types_at("/b"),
        [WALLET_CREATED, TX_CREATED],
        "sorted by name"
    );
    assert_eq!(types_at("/c"), [WALLET_CREATED]);
    assert!(types_at("/d").is_empty());

    let mut event_ids = std::collections::HashSet::new();
    for request in receiver.received() {
        let body = request.json();
        assert_eq!(
            body["url"],
            receiver.url(&request.path).as_str(),
            "each copy names its URL"
        );
        assert!(event_ids.insert(body["event_id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(event_ids.len(), 4, "each copy has its own event_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_endpoint_receives_nothing_new_and_stays_revoked() {
    let server = TestServer::start(|_| {}).await;
    let org = server.new_org().await;
    let receiver = Receiver::start(|_| Reply::Status(200)).await;
    let kept = org
        .api
        .create_endpoint(&receiver.url("/kept"), &[TX_CREATED])
        .await;
    let revoked = org
        .api
        .create_endpoint(&receiver.url("/revoked"), &[TX_CREATED])
        .await;

    let path = format!("/v2/webhooks/endpoints/{revoked}");
    let answer = org
        .api
        .put(&path, &json!({"status": "STATUS_INACTIVE"}))
        .await
        .expect(200);
    assert_eq!(answer["status"], "STATUS_INACTIVE");

    let published = server
        .admin
        .publish(&org.org_id, TX_CREATED, transaction("tx-rev"))
        .await;
    let events = published["events"].as_array().expect("events");
    assert_eq!(
        events.len(),
        1,
        "only the active endpoint gets a copy: {published}"
    );
    assert_eq!(events[0]["endpoint_id"], kept.as_str());
    org.api
        .wait_status(&kept, &only_event_id(&published), "Success")
        .await;
    settle().await;
    assert!(receiver.received_at("/revoked").is_empty());

    org.api
        .put(&path, &json!({"status": "STATUS_ACTIVE"}))
        .await
        .expect_error(409);
    org.api
        .put(&path, &json!({"description": "back?"}))
        .await
        .expect_error(409);
    let endpoint = org.api.get(&path).await.expect(200);
    assert_eq!(endpoint["status"], "STATUS_INACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_until_the_receiver_accepts() {
    // A long first gap leaves time to look at the event while it waits.
    let server = TestServer::start(|s| s.delivery.webhook_retry_ms = vec![3_000, 50]).await;
    let org = server.new_org().await;
    let receiver =
        Receiver::start(|call| Reply::Status(if call.nth <= 2 { 500 } else { 200 })).await;
    let endpoint_id = org
        .api
        .create_endpoint(&receiver.url("/flaky"), &[TX_CREATED])
        .await;

    let published = server
        .admin
        .publish(&org.org_id, TX_CREATED, transaction("tx-retry"))
        .await;
    let event_id = only_event_id(&published);

    // Logs first: an attempt's log and the event's state are written together,
    // so an event read after its first log already counts that attempt.
    let waiting = eventually("the event to wait for its second attempt", || async {
        let logs = org.api.logs(&endpoint_id, &event_id).await;
        let event = org.api.event(&endpoint_id, &event_id).await;
        (logs.len() == 1 && event["status"] == "Retrying").then_some((event, logs))
    })
    .await;
    let (event, logs) = waiting;
    assert_eq!(event["retries_left"], 4, "5 attempts in all, 1 made");
    let next = event["next_retry_timestamp"]
        .as_i64()
        .expect("next_retry_timestamp");
    let first = logs[0]["created_timestamp"]
        .as_i64()
        .expect("created_timestamp");
    assert!(
        next >= first + 3_000,
        "the next attempt follows the schedule"
    );

    let event = org
        .api
        .wait_status(&endpoint_id, &event_id, "Success")
        .await;
    assert!(event.get("next_retry_timestamp").is_none());
    assert!(event.get("retries_left").is_none());

    let logs = org.api.logs(&endpoint_id, &event_id).await;
    let summary: Vec<(Value, Value, Value)> = logs
        .iter()
        .map(|l| {
            (
                l["response_status_code"].clone(),
                l["success"].clone(),
                l["failure_reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!(500), json!(false), json!("status 500")),
            (json!(500), json!(false), json!("status 500")),
            (json!(200), json!(true), Value::Null),
        ]
    );
    for log in &logs {
        let body = log["request_body"].as_str().expect("request_body");
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap()["event_id"],
            event_id.as_str()
        );
        assert!(log["request_headers"]["Biz-Resp-Signature"].is_string());
    }
    assert_eq!(receiver.received_event(&event_id).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_event_fails_and_a_manual_retry_delivers_it() {
    let server = TestServer::start(|s| s.delivery.webhook_max_attempts = 3).await;
    let org = server.new_org().await;
    let healthy = Arc::new(AtomicBool::new(false));
    let state = healthy.clone();
    let receiver = Receiver::start(move |_| {
        Reply::Status(if state.load(Ordering::SeqCst) {
            200
        } else {
            503
        })
    })
    .await;
    let endpoint_id = org
        .api
        .create_endpoint(&receiver.url("/down"), &[TX_CREATED])
        .await;

    let published = server
        .admin
        .publish(&org.org_id, TX_CREATED, transaction("tx-fail"))
        .await;
    let event_id = only_event_id(&published);

    let event = org.api.wait_status(&endpoint_id, &event_id, "Failed").await;
    assert!(event.get("retries_left").is_none());
    let logs = org.api.logs(&endpoint_id, &event_id).await;
    assert_eq!(logs.len(), 3);
    assert!(logs.iter().all(|l| l["failure_reason"] == "status 503"));
    settle().await;
    assert_eq!(
        receiver.received_event(&event_id).len(),
        3,
        "no attempt after the last"
    );

    healthy.store(true, Ordering::SeqCst);
    let answer = org.api.retry(&endpoint_id, &event_id).await.expect(201);
    assert_eq!(answer, json!({"retried": true}));
    org.api
        .wait_status(&endpoint_id, &event_id, "Success")
        .await;
    let logs = org.api.logs(&endpoint_id, &event_id).await;
    assert_eq!(logs.len(), 4);
    assert_eq!(logs[3]["success"], true);

    org.api
        .retry(&endpoint_id, &event_id)
        .await
        .expect_error(409);
    settle().await;
    assert_eq!(receiver.received_event(&event_id).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_manual_retries_never_overlap_attempts_of_one_event() {
    let server = TestServer::start(|s| s.delivery.webhook_max_attempts = 1).await;
    let org = server.new_org().await;
    let receiver = Receiver::start(|_| Reply::After(Duration::from_millis(150), 500)).await;
    let endpoint_id = org
        .api
        .create_endpoint(&receiver.url("/slow"), &[TX_CREATED])
        .await;

    let published = server
        .admin
        .publish(&org.org_id, TX_CREATED, transaction("tx-race"))
        .await;
    let event_id = only_event_id(&published);
    org.api.wait_status(&endpoint_id, &event_id, "Failed").await;

    let mut accepted = 0;
    for round in 1..=4 {
        let asks: Vec<_> = (0..12)
            .map(|_| {
                let api = org.api.clone();
                let (endpoint_id, event_id) = (endpoint_id.clone(), event_id.clone());
                tokio::spawn(async move { api.retry(&endpoint_id, &event_id).await })
            })
            .collect();
        for ask in asks {
            let answer = ask.await.expect("the retry request ran");
            match answer.status {
                201 => accepted += 1,
                409 => answer.expect_error(409),
                other => panic!("round {round}: unexpected answer {other}: {}", answer.text),
            }
        }
        eventually("the retried event to settle", || async {
            let event = org.api.event(&endpoint_id, &event_id).await;
            let logs = org.api.logs(&endpoint_id, &event_id).await;
            (event["status"] == "Failed" && logs.len() == receiver.received_event(&event_id).len())
                .then_some(())
        })
        .await;
    }

    assert!(accepted >= 4, "at least one retry per round was accepted");
    assert_eq!(
        receiver.most_in_flight(&event_id),
        1,
        "two attempts of one event overlapped"
    );
    let attempts = org.api.logs(&endpoint_id, &event_id).await.len();
    assert!(
        attempts >= 5,
        "the first attempt and one per round at least: {attempts}"
    );
}

/// Starts a server that makes a single attempt per event, points one
/// endpoint at `url`, publishes one event and gives the settled event and
/// its only attempt log.
async fn one_attempt(server: &TestServer, url: &str) -> (Value, Value) {
    let org = server.new_org().await;
    let endpoint_id = org.api.create_endpoint(url, &[TX_CREATED]).await;
    let published = server
        .admin
        .publish(&org.org_id, TX_CREATED, transaction("tx-one"))
        .await;
    let event_id = only_event_id(&published);
    let event = eventually("the event to settle", || async {
        let event = org.api.event(&endpoint_id, &event_id).await;
        (event["status"] != "Retrying").then_some(event)
    })
    .await;
    let logs = org.api.logs(&endpoint_id, &event_id).await;
    assert_eq!(logs.len(), 1, "{logs:?}");
    (event, logs[0].clone())
}

async fn single_attempt_server() -> TestServer {
    TestServer::start(|s| s.delivery.webhook_max_attempts = 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_the_log_names_the_location() {
    let server = single_attempt_server().await;
    let landing = Arc::new(std::sync::Mutex::new(String::new()));
    let target = landing.clone();
    let receiver = Receiver::start(move |call| match call.path.as_str() {
        "/found" => Reply::Redirect(302, target.lock().unwrap().clone()),
        "/temporary" => Reply::Redirect(307, target.lock().unwrap().clone()),
        _ => Reply::Status(200),
    })
    .await;
    *landing.lock().unwrap() = receiver.url("/landing");

    for path in ["/found", "/temporary"] {
        let (event, log) = one_attempt(&server, &receiver.url(path)).await;
        assert_eq!(event["status"], "Failed");
        assert_eq!(log["success"], false);
        assert!(log["response_status_code"] == 302 || log["response_status_code"] == 307);
        let reason = log["failure_reason"].as_str().expect("failure_reason");
        assert!(reason.contains(&receiver.url("/landing")), "{reason}");
        assert!(reason.contains("redirect"), "{reason}");
    }
    settle().await;
    assert!(
        receiver.received_at("/landing").is_empty(),
        "a redirect was followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_server_errors_are_failed_attempts_with_their_status() {
    let server = single_attempt_server().await;
    let receiver = Receiver::start(|call| match call.path.as_str() {
        "/400" => Reply::Status(400),
        "/404" => Reply::Status(404),
        "/500" => Reply::Status(500),
        _ => Reply::Status(502),
    })
    .await;
    for status in [400, 404, 500, 502] {
        let (event, log) = one_attempt(&server, &receiver.url(&format!("/{status}"))).await;
        assert_eq!(event["status"], "Failed");
        assert_eq!(log["response_status_code"], status);
        assert_eq!(log["failure_reason"], format!("status {status}"));
        assert_eq!(log["success"], false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_slower_than_the_timeout_is_a_timeout() {
    let server = single_attempt_server().await;
    let receiver = Receiver::start(|_| Reply::After(Duration::from_millis(2_500), 200)).await;
    let (event, log) = one_attempt(&server, &receiver.url("/slow")).await;
    assert_eq!(event["status"], "Failed");
    assert_eq!(log["failure_reason"], "timeout");
    assert!(log["response_status_code"].is_null());
    assert!(server.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_connection_is_a_failed_attempt() {
    let server = single_attempt_server().await;
    let resetter = Resetter::start().await;
    let (event, log) = one_attempt(&server, &resetter.url()).await;
    assert_eq!(event["status"], "Failed");
    assert!(log["response_status_code"].is_null());
    let reason = log["failure_reason"].as_str().expect("failure_reason");
    assert!(reason.contains("reset"), "{reason}");
    assert!(resetter.accepted() >= 1, "the attempt reached the listener");
    assert!(server.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_content_is_not_a_delivery_but_created_is() {
    let server = single_attempt_server().await;
    let receiver = Receiver::start(|call| match call.path.as_str() {
        "/204" => Reply::Status(204),
        "/202" => Reply::Status(202),
        _ => Reply::Status(201),
    })
    .await;

    for status in [204, 202] {
        let (event, log) = one_attempt(&server, &receiver.url(&format!("/{status}"))).await;
        assert_eq!(event["status"], "Failed");
        assert_eq!(log["failure_reason"], format!("status {status}"));
    }
    let (event, log) = one_attempt(&server, &receiver.url("/201")).await;
    assert_eq!(event["status"], "Success");
    assert_eq!(log["response_status_code"], 201);
    assert_eq!(log["success"], true);
    assert!(log["failure_reason"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_response_body_is_logged_cut_at_64_kib() {
    let server = single_attempt_server().await;
    let receiver = Receiver::start(|call| match call.path.as_str() {
        "/huge" => Reply::Huge(10 * 1024 * 1024),
        _ => Reply::Status(200),
    })
    .await;

    let (event, log) = one_attempt(&server, &receiver.url("/huge")).await;
    assert_eq!(event["status"], "Success");
    assert_eq!(log["response_status_code"], 200);
    assert_eq!(
        log["response_body"].as_str().expect("response_body").len(),
        64 * 1024
    );
    assert_eq!(log["response_body_truncated"], true);

    assert!(server.healthy().await);
    let (event, log) = one_attempt(&server, &receiver.url("/after")).await;
    assert_eq!(event["status"], "Success");
    assert_eq!(log["response_body_truncated"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_public_addresses_are_refused_before_dialling() {
    let server = TestServer::start(|s| {
        s.network.allow_cidrs.clear();
        s.delivery.webhook_max_attempts = 1;
    })
    .await;
    let receiver = Receiver::start(|_| Reply::Status(200)).await;
    let port = receiver.addr.port();
    // A receiver on ::1 too, where the machine has IPv6 loopback.
    let receiver_v6 = Receiver::start_on("[::1]:0".parse().unwrap(), |_| Reply::Status(200))
        .await
        .ok();
    let port_v6 = receiver_v6.as_ref().map_or(port, |r| r.addr.port());

    // Nothing listens on 169.254.169.254 and nothing may ever try to reach
    // it: the server must refuse the literal address before any dial.
    let urls = [
        format!("http://127.0.0.1:{port}/v4"),
        format!("http://[::1]:{port_v6}/v6"),
        format!("http://localhost:{port}/name"),
        format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ];
    // Registration refuses what no attempt could reach, and says how to
    // open it.
    let org = server.new_org().await;
    for url in &urls {
        let body = json!({"url": url, "subscribed_events": [TX_CREATED]});
        let answer = org
            .api
            .call(Method::POST, "/v2/webhooks/endpoints", Some(&body))
            .await;
        assert_eq!(answer.status, 400, "{url}: {}", answer.text);
        assert!(
            answer.text.contains("allow_cidrs"),
            "{url}: {}",
            answer.text
        );
    }

    // Each attempt checks the address it would dial, names resolved first:
    // the same refusal holds for anything registration let through.
    let sender = Sender::new(NetworkPolicy::default(), Duration::from_secs(2), 8);
    for url in &urls {
        let sent = sender
            .post(url, HeaderMap::new(), Bytes::from_static(b"{}"))
            .await;
        assert!(
            matches!(sent, Err(SendError::Blocked(_))),
            "{url}: {sent:?}"
        );
    }
    settle().await;
    assert_eq!(receiver.count(), 0, "a refused address was dialled");
    assert_eq!(
        receiver_v6.map_or(0, |r| r.count()),
        0,
        "a refused address was dialled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_twice_with_one_idempotency_key_delivers_once() {
    let server = TestServer::start(|_| {}).await;
    let org = server.new_org().await;
    let receiver = Receiver::start(|_| Reply::Status(200)).await;
    let endpoint_id = org
        .api
        .create_endpoint(&receiver.url("/once"), &[TX_CREATED])
        .await;

    let body = json!({
        "org_id": org.org_id,
        "type": TX_CREATED,
        "data": transaction("tx-idem"),
        "idempotency_key": "order-42-created",
    });
    let first = server
        .admin
        .post("/producer/v2/events", &body)
        .await
        .expect(202);
    let second = server
        .admin
        .post("/producer/v2/events", &body)
        .await
        .expect(202);
    assert_eq!(first["occurrence_id"], second["occurrence_id"]);
    assert_eq!(first["events"], second["events"]);

    let event_id = only_event_id(&first);
    org.api
        .wait_status(&endpoint_id, &event_id, "Success")
        .await;
    let third = server
        .admin
        .post("/producer/v2/events", &body)
        .await
        .expect(202);
    assert_eq!(first["events"], third["events"]);
    settle().await;

    assert_eq!(receiver.count(), 1, "one delivery for one occurrence");
    let list = org
        .api
        .get(&format!("/v2/webhooks/endpoints/{endpoint_id}/events"))
        .await;
    assert_eq!(list.expect(200)["pagination"]["total_count"], 1);
}

/// Publishes `count` transactions `{prefix}-0`, `{prefix}-1`, ... one after
/// another; returns the event id of each.
async fn publish_transactions(
    server: &TestServer,
    org_id: &str,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let mut event_ids = Vec::new();
    for n in 0..count {
        let data = transaction(&format!("{prefix}-{n}"));
        event_ids.push(only_event_id(
            &server.admin.publish(org_id, TX_CREATED, data).await,
        ));
    }
    event_ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_backlog_behind_a_slow_endpoint_is_attempted_once_per_event() {
    // Two attempts at a time to one endpoint that takes 250 ms each: the
    // last events wait longer than a lease (5.5 s) before their attempt
    // starts. The very last one takes longer still, so that for a while it
    // is the only attempt in flight to the endpoint.
    const EVENTS: usize = 60;
    let server = TestServer::start(|s| s.delivery.max_in_flight_per_endpoint = 2).await;
    let org = server.new_org().await;
    let last = format!("tx-backlog-{}", EVENTS - 1);
    let receiver = Receiver::start(move |call| {
        let slowest = call.json["data"]["transaction_id"] == last.as_str();
        Reply::After(Duration::from_millis(if slowest { 450 } else { 250 }), 200)
    })
    .await;
    let endpoint_id = org
        .api
        .create_endpoint(&receiver.url("/slow"), &[TX_CREATED])
        .await;

    let event_ids = publish_transactions(&server, &org.org_id, "tx-backlog", EVENTS).await;
    let events = format!("/v2/webhooks/endpoints/{endpoint_id}/events?status=Success");
    eventually("every event to be delivered", || async {
        let delivered = org.api.get(&events).await.expect(200);
        (delivered["pagination"]["total_count"] == EVENTS).then_some(())
    })
    .await;
    settle().await;

    for event_id in &event_ids {
        assert_eq!(
            receiver.most_in_flight(event_id),
            1,
            "overlapping attempts of {event_id}"
        );
        let attempts = receiver.received_event(event_id).len();
        assert_eq!(attempts, 1, "{event_id} was sent {attempts} times");
    }
}

/// A gauge or counter of the server's `/metrics`.
async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoints_backlog_waits_in_the_database_not_in_memory() {
    // Two attempts at a time, 200 ms each: thirty events published at once
    // would otherwise all wait in memory for the endpoint's two slots.
    const EVENTS: usize = 30;
    let server = TestServer::start(|s| s.delivery.max_in_flight_per_endpoint = 2).await;
    let org = server.new_org().await;
    let receiver = Receiver::start(|_| Reply::After(Duration::from_millis(200), 200)).await;
    let endpoint_id = org
        .api
        .create_endpoint(&receiver.url("/slow"), &[TX_CREATED])
        .await;

    let event_ids = publish_transactions(&server, &org.org_id, "tx-waiting", EVENTS).await;

    // At most a full queue from the publishes and one claim's worth.
    let events = format!("/v2/webhooks/endpoints/{endpoint_id}/events?status=Success");
    let most_waiting = std::cell::Cell::new(0.0f64);
    eventually("every event to be delivered", || async {
        let waiting = metric(&server, "hookgate_attempts_waiting").await;
        most_waiting.set(most_waiting.get().max(waiting));
        let delivered = org.api.get(&events).await.expect(200);
        (delivered["pagination"]["total_count"] == EVENTS).then_some(())
    })
    .await;
    let most_waiting = most_waiting.get();
    assert!(
        most_waiting <= 4.0,
        "{most_waiting} deliveries waited in memory"
    );
    settle().await;

    for event_id in &event_ids {
        let attempts = receiver.received_event(event_id).len();
        assert_eq!(attempts, 1, "{event_id} was sent {attempts} times");
    }
    assert_eq!(metric(&server, "hookgate_attempts_waiting").await, 0.0);
}
