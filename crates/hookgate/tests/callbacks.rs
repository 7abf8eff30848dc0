//! Approval callbacks end to end: a real server asks a real approval
//! service (which checks every signature) whether withdrawals may go ahead,
//! and the tests check the decision the producer gets, what the
//! organisation sees, and that a decision, once made, never changes.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hookgate_server::settings::Settings;
use serde_json::{json, Value};

use support::callbacks::{transaction_id, withdrawal, Approver, CallbackOrg, Reply, ServeProcess};
use support::server::{TestServer, ADMIN_TOKEN};
use support::{eventually, eventually_within, TempDir};

/// How long a producer request may wait for a decision in these tests.
const WAIT_MS: u64 = 10_000;

/// Attempts per callback endpoint before a message ends `Failed`.
const MAX_ATTEMPTS: u32 = 4;

/// Millisecond retries, a short attempt timeout (still ample for a reply
/// over loopback on a busy machine), few attempts.
fn approval_timing(settings: &mut Settings) {
    let delivery = &mut settings.delivery;
    delivery.timeout_ms = 1_000;
    delivery.lease_ms = delivery.timeout_ms + 5_000;
    delivery.callback_retry_ms = vec![20, 40];
    delivery.callback_max_attempts = MAX_ATTEMPTS;
    delivery.jitter = 0.0;
}

/// A server on [`approval_timing`], an organisation, and an approver that
/// verifies with the key the organisation reads from the API.
async fn setup(
    plan: impl Fn(&support::callbacks::Question) -> Reply + Send + Sync + 'static,
) -> (TestServer, CallbackOrg, Approver) {
    setup_with(approval_timing, plan).await
}

async fn setup_with(
    tune: impl FnOnce(&mut Settings),
    plan: impl Fn(&support::callbacks::Question) -> Reply + Send + Sync + 'static,
) -> (TestServer, CallbackOrg, Approver) {
    let server = TestServer::start(tune).await;
    let org = CallbackOrg::create(&server.base).await;
    let approver = Approver::start(&public_key(&org).await, plan).await;
    (server, org, approver)
}

async fn public_key(org: &CallbackOrg) -> String {
    let keys = org.api.get("/v2/webhooks/public_key").await.expect(200);
    keys["public_key"].as_str().expect("public_key").to_owned()
}

fn message_id(answer: &Value) -> String {
    answer["message_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no message_id: {answer}"))
        .to_owned()
}

/// Waits a moment so that anything wrongly sent would have arrived: used
/// only before asserting that something did *not* happen.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_is_the_bare_transaction_signed_afresh_on_every_attempt() {
    let (_server, org, approver) = setup(|q| match q.nth {
        1 | 2 => Reply::text(500, ""),
        _ => Reply::ok(),
    })
    .await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;
    let tx = withdrawal("signed");
    let tx_id = transaction_id(&tx);

    let answer = org.ask(&tx, WAIT_MS).await;
    assert_eq!(answer["status"], "Approved", "{answer}");

    let asked = approver.asked(&tx_id);
    assert_eq!(asked.len(), 3, "two failed attempts, then the answer");
    approver.assert_all_signed();
    for request in &asked {
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.body, asked[0].body,
            "every attempt sends the same bytes"
        );
        let body = request.json();
        assert_eq!(
            body, tx,
            "the body is the transaction as the producer gave it"
        );
        for envelope_field in ["data_type", "data", "event_id", "type"] {
            if envelope_field == "type" {
                assert_eq!(body["type"], "Withdrawal");
                continue;
            }
            assert!(
                body.get(envelope_field).is_none(),
                "no envelope field {envelope_field}: {body}"
            );
        }
        let timestamp = request.header("Biz-Timestamp").expect("Biz-Timestamp");
        let millis: i64 = timestamp.parse().expect("the timestamp is an integer");
        assert!(millis > 1_600_000_000_000, "milliseconds: {millis}");
    }
    let stamps: Vec<_> = asked.iter().map(|a| a.header("Biz-Timestamp")).collect();
    let signatures: Vec<_> = asked
        .iter()
        .map(|a| a.header("Biz-Resp-Signature"))
        .collect();
    for i in 1..asked.len() {
        assert_ne!(stamps[i], stamps[i - 1], "a fresh timestamp per attempt");
        assert_ne!(
            signatures[i],
            signatures[i - 1],
            "a fresh signature per attempt"
        );
    }

    let logs = org.logs(&message_id(&answer)).await;
    assert_eq!(logs.len(), 3, "{logs:?}");
    let sent = String::from_utf8(asked[0].body.to_vec()).expect("UTF-8");
    for log in &logs {
        assert_eq!(
            log["request_body"],
            sent.as_str(),
            "the log shows the sent bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_approves_and_deny_rejects() {
    let (_server, org, approver) = setup(|q| {
        if q.transaction_id.starts_with("approve") {
            Reply::ok()
        } else {
            Reply::deny()
        }
    })
    .await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;

    let approved_tx = withdrawal("approve");
    let approved = org.ask(&approved_tx, WAIT_MS).await;
    assert_eq!(approved["status"], "Approved", "{approved}");
    assert_eq!(approved["result"], "ok");
    assert_eq!(approved["proceed"], true);

    let denied_tx = withdrawal("deny");
    let denied = org.ask(&denied_tx, WAIT_MS).await;
    assert_eq!(denied["status"], "Denied", "{denied}");
    assert_eq!(denied["result"], "deny");
    assert_eq!(denied["proceed"], false);

    let approved_id = message_id(&approved);
    assert_eq!(org.decision(&approved_id).await, approved, "polling agrees");
    let message = org.message(&approved_id).await;
    assert_eq!(message["status"], "Approved");
    assert_eq!(message["result"], "ok");
    assert_eq!(message["transaction_id"], approved_tx["transaction_id"]);
    assert_eq!(message["request_id"], approved_tx["request_id"]);
    assert_eq!(message["wallet_id"], approved_tx["wallet_id"]);
    assert_eq!(message["data"], approved_tx);
    assert_eq!(message["url"], approver.url("/risk"));

    // Every filter of the message list finds the message it names, and
    // only that one.
    let denied_id = message_id(&denied);
    let tx_id = |tx: &Value| tx["transaction_id"].as_str().unwrap().to_owned();
    let filters = [
        format!("callback_message_ids={approved_id}"),
        format!(
            "request_ids={}",
            approved_tx["request_id"].as_str().unwrap()
        ),
        format!("transaction_ids={}", tx_id(&approved_tx)),
        format!("wallet_ids={}", approved_tx["wallet_id"].as_str().unwrap()),
        "status=Approved".to_owned(),
    ];
    for filter in filters {
        let found = org.messages(&filter).await;
        let ids: Vec<_> = found.iter().map(|m| m["id"].clone()).collect();
        assert_eq!(ids, vec![json!(approved_id)], "{filter}");
    }
    let both = org
        .messages(&format!("callback_message_ids={approved_id},{denied_id}"))
        .await;
    assert_eq!(both.len(), 2);
    let denied_only = org.messages("status=Denied").await;
    assert_eq!(denied_only.len(), 1);
    assert_eq!(denied_only[0]["id"], denied_id.as_str());
    org.api
        .get("/v2/developers/callback_messages?status=approved")
        .await
        .expect_error(400);
    approver.assert_all_signed();
}

/// Replies that look like an answer but are not exactly `ok`: each is a
/// failed attempt, retried, and the `ok` that follows decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_miss_replies_are_failed_attempts_and_retried() {
    let cases: [(&str, u16, &str, &str); 5] = [
        ("/upper", 200, "OK", "not exactly ok or deny"),
        ("/quoted", 200, "\"ok\"", "not exactly ok or deny"),
        (
            "/json",
            200,
            "{\"result\":\"ok\"}",
            "not exactly ok or deny",
        ),
        ("/empty", 200, "", "not exactly ok or deny"),
        ("/no-content", 204, "ok", "status 204"),
    ];
    let (_server, org, approver) = setup(move |q| {
        let (_, status, body, _) = cases
            .iter()
            .find(|c| q.path.ends_with(c.0))
            .expect("a known path");
        match q.nth {
            1 => Reply::text(*status, body),
            _ => Reply::ok(),
        }
    })
    .await;

    let runs = cases.iter().map(|(path, _, body, reason)| {
        let org = &org;
        let approver = &approver;
        async move {
            let api_key_id = org.another_api_key().await;
            org.link(&approver.url(path), &api_key_id).await;
            let tx = withdrawal("near-miss");
            let answer = org.ask_with(&api_key_id, &tx, WAIT_MS).await;
            assert_eq!(answer["status"], "Approved", "{path}: {answer}");
            assert_eq!(answer["proceed"], true, "{path}");

            let logs = org.logs(&message_id(&answer)).await;
            assert_eq!(logs.len(), 2, "{path}: {logs:?}");
            assert_eq!(logs[0]["success"], false, "{path}: {body:?} is no answer");
            let why = logs[0]["failure_reason"].as_str().unwrap_or_default();
            assert!(why.contains(reason), "{path}: {why}");
            assert_eq!(logs[1]["success"], true, "{path}");
            assert_eq!(approver.asked(&transaction_id(&tx)).len(), 2, "{path}");
        }
    });
    join_all(runs).await;
    approver.assert_all_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitespace_around_the_answer_does_not_matter() {
    let (_server, org, approver) = setup(|q| {
        if q.transaction_id.starts_with("spaced-ok") {
            Reply::text(200, " ok\n")
        } else {
            Reply::text(201, "\r\n\tdeny  ")
        }
    })
    .await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;

    let approved = org.ask(&withdrawal("spaced-ok"), WAIT_MS).await;
    assert_eq!(approved["status"], "Approved", "{approved}");
    let denied = org.ask(&withdrawal("spaced-deny"), WAIT_MS).await;
    assert_eq!(denied["status"], "Denied", "{denied}");
    assert_eq!(org.logs(&message_id(&approved)).await.len(), 1);
    assert_eq!(org.logs(&message_id(&denied)).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_retried_and_a_later_ok_approves() {
    let (_server, org, approver) = setup(|q| match q.nth {
        1 => Reply::text(500, "ok"),
        _ => Reply::ok(),
    })
    .await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;

    let answer = org.ask(&withdrawal("error-then-ok"), WAIT_MS).await;
    assert_eq!(answer["status"], "Approved", "{answer}");
    let logs = org.logs(&message_id(&answer)).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[0]["response_status_code"], 500);
    assert_eq!(logs[0]["failure_reason"], "status 500");
    assert_eq!(logs[1]["response_body"], "ok");
    approver.assert_all_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_retried_and_a_later_deny_rejects() {
    let (_server, org, approver) = setup(|q| match q.nth {
        1 => Reply::hang(),
        _ => Reply::deny(),
    })
    .await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;

    let answer = org.ask(&withdrawal("timeout-then-deny"), WAIT_MS).await;
    assert_eq!(answer["status"], "Denied", "{answer}");
    assert_eq!(answer["proceed"], false);
    let logs = org.logs(&message_id(&answer)).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[0]["success"], false);
    let why = logs[0]["failure_reason"].as_str().unwrap_or_default();
    assert!(why.contains("timeout"), "{why}");
    assert_eq!(logs[1]["response_body"], "deny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_is_logged() {
    let elsewhere = Arc::new(std::sync::OnceLock::<String>::new());
    let target = elsewhere.clone();
    let (_server, org, approver) = setup(move |q| match (q.path.as_str(), q.nth) {
        ("/risk", 1) => Reply::redirect(target.get().expect("set before asking")),
        _ => Reply::ok(),
    })
    .await;
    elsewhere.set(approver.url("/elsewhere")).unwrap();
    org.link(&approver.url("/risk"), &org.api_key_id).await;

    let tx = withdrawal("redirect");
    let answer = org.ask(&tx, WAIT_MS).await;
    assert_eq!(answer["status"], "Approved", "{answer}");
    let logs = org.logs(&message_id(&answer)).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[0]["response_status_code"], 302);
    let why = logs[0]["failure_reason"].as_str().unwrap_or_default();
    assert!(why.contains("redirect"), "{why}");
    assert!(
        why.contains("/elsewhere"),
        "the log names the Location: {why}"
    );
    assert!(
        approver
            .asked_at("/elsewhere", &transaction_id(&tx))
            .is_empty(),
        "the redirect was followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_attempts_fail_closed_and_a_manual_retry_can_still_approve() {
    let answering = Arc::new(AtomicBool::new(false));
    let switch = answering.clone();
    let (_server, org, approver) = setup(move |q| {
        if q.transaction_id.starts_with("deny") {
            Reply::deny()
        } else if switch.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::text(503, "busy")
        }
    })
    .await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;

    let tx = withdrawal("exhausted");
    let answer = org.ask(&tx, WAIT_MS).await;
    assert_eq!(answer["status"], "Failed", "{answer}");
    assert_eq!(answer["proceed"], false, "silence never approves");
    assert_eq!(answer["result"], Value::Null);
    let id = message_id(&answer);
    let logs = org.logs(&id).await;
    assert_eq!(logs.len(), MAX_ATTEMPTS as usize, "{logs:?}");
    assert!(logs.iter().all(|l| l["success"] == false));
    settle().await;
    assert_eq!(
        approver.asked(&transaction_id(&tx)).len(),
        MAX_ATTEMPTS as usize,
        "a Failed message is not asked again by itself"
    );

    answering.store(true, Ordering::SeqCst);
    assert_eq!(org.retry(&id).await.expect(201), json!({"retried": true}));
    let decided = org.decided(&id).await;
    assert_eq!(decided["status"], "Approved", "{decided}");
    assert_eq!(decided["proceed"], true);
    assert_eq!(org.logs(&id).await.len(), MAX_ATTEMPTS as usize + 1);

    let again = org.retry(&id).await;
    again.expect_error(409);
    assert_eq!(org.decision(&id).await["status"], "Approved");

    let denied = org.ask(&withdrawal("deny"), WAIT_MS).await;
    assert_eq!(denied["status"], "Denied", "{denied}");
    let denied_id = message_id(&denied);
    org.retry(&denied_id).await.expect_error(409);
    settle().await;
    let still = org.decision(&denied_id).await;
    assert_eq!(still["status"], "Denied", "{still}");
    assert_eq!(still["proceed"], false);
    assert_eq!(
        org.logs(&denied_id).await.len(),
        1,
        "the denial was not asked again"
    );
    approver.assert_all_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_callback_endpoint_the_transaction_goes_ahead_at_once() {
    let server = TestServer::start(approval_timing).await;
    let org = CallbackOrg::create(&server.base).await;

    let started = Instant::now();
    let answer = org.ask(&withdrawal("unchecked"), WAIT_MS).await;
    assert_eq!(answer["status"], "NotConfigured", "{answer}");
    assert_eq!(answer["proceed"], true);
    assert_eq!(answer["message_id"], Value::Null);
    assert!(
        started.elapsed() < Duration::from_millis(WAIT_MS / 2),
        "the answer did not wait for a decision that cannot come"
    );
    assert!(org.messages("").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_twice_about_one_transaction_asks_the_approver_once() {
    let (_server, org, approver) = setup(|_| Reply::ok().after(Duration::from_millis(100))).await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;
    let tx = withdrawal("twice");

    let first = org.ask(&tx, 0).await;
    assert_eq!(first["status"], "Retrying", "{first}");
    let second = org.ask(&tx, WAIT_MS).await;
    assert_eq!(second["message_id"], first["message_id"]);
    assert_eq!(second["status"], "Approved", "{second}");
    let third = org.ask(&tx, WAIT_MS).await;
    assert_eq!(
        third, second,
        "a decided transaction gets the same decision"
    );

    settle().await;
    assert_eq!(approver.asked(&transaction_id(&tx)).len(), 1);
    let listed = org
        .messages(&format!("transaction_ids={}", transaction_id(&tx)))
        .await;
    assert_eq!(listed.len(), 1);
}

/// The answer each approver of a two-endpoint key gives, by path.
fn two_endpoint_reply(path: &str) -> Reply {
    if path.ends_with("/ok") {
        Reply::ok()
    } else if path.ends_with("/deny") {
        Reply::deny()
    } else if path.ends_with("/hang") {
        Reply::hang()
    } else {
        Reply::text(500, "down")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_endpoints_all_must_approve_and_failure_never_approves() {
    let (_server, org, approver) = setup(|q| two_endpoint_reply(&q.path)).await;
    let answers = ["ok", "deny", "fail"];
    let mut combinations = Vec::new();
    for a in answers {
        for b in answers {
            combinations.push((a, b));
        }
    }

    let runs = combinations.iter().enumerate().map(|(i, (a, b))| {
        let org = &org;
        let approver = &approver;
        async move {
            let expected = if *a == "deny" || *b == "deny" {
                "Denied"
            } else if *a == "fail" || *b == "fail" {
                "Failed"
            } else {
                "Approved"
            };
            let api_key_id = org.another_api_key().await;
            org.link(&approver.url(&format!("/pair{i}/first/{a}")), &api_key_id)
                .await;
            org.link(&approver.url(&format!("/pair{i}/second/{b}")), &api_key_id)
                .await;

            let answer = org
                .ask_with(&api_key_id, &withdrawal("pair"), WAIT_MS)
                .await;
            assert_eq!(answer["status"], expected, "{a} + {b}: {answer}");
            assert_eq!(answer["proceed"], expected == "Approved", "{a} + {b}");
            let message = org.message(&message_id(&answer)).await;
            assert_eq!(message["endpoints"].as_array().map(Vec::len), Some(2));
        }
    });
    join_all(runs).await;
    approver.assert_all_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_decides_without_waiting_for_the_other_endpoint() {
    // A long attempt timeout: the silent endpoint holds its attempt open
    // far longer than the deny takes.
    let (_server, org, approver) = setup_with(
        |settings| {
            approval_timing(settings);
            settings.delivery.timeout_ms = 6_000;
            settings.delivery.lease_ms = 11_000;
        },
        |q| two_endpoint_reply(&q.path),
    )
    .await;
    let silent = org.link(&approver.url("/hang"), &org.api_key_id).await;
    org.link(&approver.url("/deny"), &org.api_key_id).await;
    let tx = withdrawal("deny-first");

    let started = Instant::now();
    let answer = org.ask(&tx, WAIT_MS).await;
    assert_eq!(answer["status"], "Denied", "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the deny waited for the silent endpoint: {:?}",
        started.elapsed()
    );
    assert_eq!(approver.asked_at("/hang", &transaction_id(&tx)).len(), 1);

    let message = org.message(&message_id(&answer)).await;
    let endpoints = message["endpoints"].as_array().expect("endpoints");
    let silent_view = endpoints
        .iter()
        .find(|e| e["callback_endpoint_id"] == silent.as_str())
        .expect("the silent endpoint is listed");
    assert_eq!(silent_view["status"], "Cancelled", "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_request_returns_as_soon_as_the_decision_arrives() {
    let (_server, org, approver) = setup(|_| Reply::ok().after(Duration::from_millis(200))).await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;

    let started = Instant::now();
    let answer = org.ask(&withdrawal("waiting"), WAIT_MS).await;
    let elapsed = started.elapsed();
    assert_eq!(answer["status"], "Approved", "{answer}");
    assert!(
        elapsed < Duration::from_millis(WAIT_MS / 2),
        "the request sat out its wait after the decision: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_is_final_under_concurrent_retries_and_asks() {
    // Retries are a minute apart, so only manual retries drive attempts;
    // after the first error, every answer alternates ok and deny, so a
    // second decision would show.
    let (_server, org, approver) = setup_with(
        |settings| {
            approval_timing(settings);
            settings.delivery.callback_retry_ms = vec![60_000];
            settings.delivery.callback_max_attempts = 30;
        },
        |q| match q.nth {
            1 => Reply::text(500, ""),
            n if n % 2 == 0 => Reply::ok().after(Duration::from_millis(100)),
            _ => Reply::deny().after(Duration::from_millis(100)),
        },
    )
    .await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;
    let tx = withdrawal("race");
    let id = message_id(&org.ask(&tx, 0).await);
    eventually("the first attempt to fail", || async {
        (org.logs(&id).await.len() == 1).then_some(())
    })
    .await;

    let retries = (0..20).map(|_| org.retry(&id));
    let asks = (0..20).map(|_| org.ask(&tx, 0));
    let (retried, asked) = tokio::join!(join_all(retries), join_all(asks));
    for answer in &retried {
        assert!(
            answer.status == 201 || answer.status == 409,
            "a retry either starts an attempt or is refused: {answer:?}"
        );
    }
    assert!(retried.iter().any(|a| a.status == 201), "one retry started");
    for answer in &asked {
        assert_eq!(message_id(answer), id, "one message per transaction");
    }

    let decided = org.decided(&id).await;
    let status = decided["status"].as_str().expect("status").to_owned();
    assert!(status == "Approved" || status == "Denied", "{decided}");

    let late = join_all((0..20).map(|_| org.retry(&id))).await;
    assert!(late.iter().all(|a| a.status == 409), "{late:?}");
    settle().await;

    let logs = org.logs(&id).await;
    let answered: Vec<_> = logs.iter().filter(|l| l["success"] == true).collect();
    assert_eq!(
        answered.len(),
        1,
        "exactly one answer was recorded: {logs:?}"
    );
    let result = answered[0]["response_body"].as_str().unwrap_or_default();
    assert_eq!(
        decided["result"],
        result.trim(),
        "the recorded answer decided"
    );
    assert_eq!(
        org.decision(&id).await,
        decided,
        "the decision never changed"
    );
    assert_eq!(
        approver.asked(&transaction_id(&tx)).len(),
        logs.len(),
        "every request the approver got is logged"
    );
    approver.assert_all_signed();
}

/// One endpoint runs out of attempts (the message ends `Failed`) while the
/// other is still answering; a manual retry right then must not ask that
/// endpoint a second time while its first request is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_retry_never_asks_an_endpoint_twice_at_once() {
    let (_server, org, approver) = setup_with(
        |settings| {
            approval_timing(settings);
            settings.delivery.timeout_ms = 3_000;
            settings.delivery.lease_ms = 8_000;
        },
        |q| match (q.path.as_str(), q.nth) {
            ("/down", n) if n <= MAX_ATTEMPTS as usize => Reply::text(500, "down"),
            ("/slow", 1) => Reply::ok().after(Duration::from_millis(1_500)),
            _ => Reply::ok(),
        },
    )
    .await;
    org.link(&approver.url("/down"), &org.api_key_id).await;
    org.link(&approver.url("/slow"), &org.api_key_id).await;
    let tx = withdrawal("retry-in-flight");
    let tx_id = transaction_id(&tx);

    let answer = org.ask(&tx, WAIT_MS).await;
    assert_eq!(answer["status"], "Failed", "{answer}");
    assert_eq!(approver.asked_at("/slow", &tx_id).len(), 1);
    let id = message_id(&answer);
    org.retry(&id).await.expect(201);

    let decided = org.decided(&id).await;
    assert_eq!(decided["status"], "Approved", "{decided}");
    assert_eq!(
        approver.most_at_once("/slow", &tx_id),
        1,
        "the endpoint was asked again while its first request was open"
    );
    let logs = org.logs(&id).await;
    let mut log_ids: Vec<_> = logs.iter().map(|l| l["id"].to_string()).collect();
    log_ids.sort();
    log_ids.dedup();
    assert_eq!(log_ids.len(), logs.len(), "one log per attempt: {logs:?}");
    approver.assert_all_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_callback_endpoint_is_not_asked() {
    let (_server, org, approver) = setup(|_| Reply::ok()).await;
    org.link(&approver.url("/kept"), &org.api_key_id).await;
    let revoked = org.link(&approver.url("/revoked"), &org.api_key_id).await;
    let changed = org
        .api
        .put(
            &format!("/v2/developers/callback_endpoints/{revoked}"),
            &json!({"status": "STATUS_INACTIVE"}),
        )
        .await
        .expect(200);
    assert_eq!(changed["status"], "STATUS_INACTIVE");

    let tx = withdrawal("revoked");
    let answer = org.ask(&tx, WAIT_MS).await;
    assert_eq!(answer["status"], "Approved", "{answer}");
    settle().await;
    let tx_id = transaction_id(&tx);
    assert_eq!(approver.asked_at("/kept", &tx_id).len(), 1);
    assert!(approver.asked_at("/revoked", &tx_id).is_empty());
    let message = org.message(&message_id(&answer)).await;
    assert_eq!(message["endpoints"].as_array().map(Vec::len), Some(1));
}

/// Settings of the binary server for the crash test, as its TOML file.
fn crash_config(data_dir: &std::path::Path) -> String {
    format!(
        r#"listen = "127.0.0.1:0"
data_dir = "{}"
admin_token = "{ADMIN_TOKEN}"
log = "warn"

[delivery]
timeout_ms = 2500
lease_ms = 7500
callback_retry_ms = [20, 40]
callback_max_attempts = 4
jitter = 0.0
poll_interval_ms = 50

[network]
allow_cidrs = ["127.0.0.0/8"]
"#,
        data_dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_and_a_decision_both_survive_sigkill() {
    let dir = TempDir::new("callback-crash");
    let config = dir.path().join("hookgate.toml");
    std::fs::write(&config, crash_config(&dir.path().join("data"))).expect("config written");

    let server = ServeProcess::start(&config);
    let org = CallbackOrg::create(&server.base).await;
    let approver = Approver::start(&public_key(&org).await, |q| match q.nth {
        // The first question is held while the server is killed.
        1 if q.transaction_id.starts_with("in-flight") => Reply::ok().after(Duration::from_secs(2)),
        _ => Reply::ok(),
    })
    .await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;

    // Killed between the question and its answer: asked again after restart.
    let pending = withdrawal("in-flight");
    let pending_tx = transaction_id(&pending);
    let asked = org.ask(&pending, 0).await;
    assert_eq!(asked["status"], "Retrying", "{asked}");
    let pending_id = message_id(&asked);
    eventually("the approver to be asked", || async {
        (!approver.asked(&pending_tx).is_empty()).then_some(())
    })
    .await;
    server.kill();

    let server = ServeProcess::start(&config);
    let org = org.on(&server.base);
    let decided = eventually_within(
        Duration::from_secs(30),
        "the question to be asked again after the restart",
        || async {
            let decision = org.decision(&pending_id).await;
            (decision["status"] != "Retrying").then_some(decision)
        },
    )
    .await;
    assert_eq!(decided["status"], "Approved", "{decided}");
    assert!(
        approver.asked(&pending_tx).len() >= 2,
        "asked after restart"
    );

    // Killed right after a decision: the decision is still there.
    let quick = withdrawal("decided");
    let answer = org.ask(&quick, WAIT_MS).await;
    assert_eq!(answer["status"], "Approved", "{answer}");
    let quick_id = message_id(&answer);
    server.kill();

    let server = ServeProcess::start(&config);
    let org = org.on(&server.base);
    let after = org.decision(&quick_id).await;
    assert_eq!(after["status"], "Approved", "{after}");
    assert_eq!(after["proceed"], true);
    settle().await;
    assert_eq!(
        approver.asked(&transaction_id(&quick)).len(),
        1,
        "a decided message is not asked again after a restart"
    );
    assert_eq!(org.message(&quick_id).await["status"], "Approved");
    approver.assert_all_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_deliveries_are_not_reachable_through_the_event_api() {
    let (_server, org, approver) = setup(|_| Reply::text(500, "")).await;
    let callback_endpoint_id = org.link(&approver.url("/risk"), &org.api_key_id).await;

    let asked = org.ask(&withdrawal("hidden"), 0).await;
    let message_id = message_id(&asked);
    let logs = eventually("a logged attempt", || async {
        let logs = org.logs(&message_id).await;
        (!logs.is_empty()).then_some(logs)
    })
    .await;
    let log_id = logs[0]["id"].as_str().expect("log id");
    let delivery_id = log_id.rsplit_once('-').expect("delivery-attempt").0;

    let event = format!("/v2/webhooks/endpoints/{callback_endpoint_id}/events/{delivery_id}");
    for (method, path) in [
        (reqwest::Method::GET, event.clone()),
        (reqwest::Method::GET, format!("{event}/logs")),
        (reqwest::Method::POST, format!("{event}/retry")),
    ] {
        let answer = org.api.call(method, &path, None).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_that_arrives_after_the_message_failed_makes_it_denied() {
    let slow_timing = |settings: &mut Settings| {
        approval_timing(settings);
        settings.delivery.timeout_ms = 4_000;
        settings.delivery.lease_ms = 9_000;
    };
    let (_server, org, approver) = setup_with(slow_timing, |q| {
        if q.path == "/quick-to-fail" {
            Reply::text(500, "")
        } else if q.nth == 1 {
            Reply::deny().after(Duration::from_millis(1_500))
        } else {
            Reply::ok()
        }
    })
    .await;
    org.link(&approver.url("/quick-to-fail"), &org.api_key_id)
        .await;
    org.link(&approver.url("/slow-to-deny"), &org.api_key_id)
        .await;

    let answer = org.ask(&withdrawal("late-deny"), 800).await;
    assert_eq!(answer["status"], "Failed", "{answer}");
    let message_id = message_id(&answer);

    let denied = eventually("the late deny to be kept", || async {
        let decision = org.decision(&message_id).await;
        (decision["status"] == "Denied").then_some(decision)
    })
    .await;
    assert_eq!(denied["proceed"], false);
    assert_eq!(
        org.retry(&message_id).await.status,
        409,
        "a refusal is final"
    );
    settle().await;
    assert_eq!(org.decision(&message_id).await["status"], "Denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_again_with_the_same_ids_about_other_money_is_refused() {
    let (_server, org, approver) = setup(|_| Reply::ok()).await;
    org.link(&approver.url("/risk"), &org.api_key_id).await;

    let original = withdrawal("same-ids");
    let first = org.ask(&original, WAIT_MS).await;
    assert_eq!(first["status"], "Approved", "{first}");

    let mut changed = original.clone();
    changed["destination"]["account_output"]["amount"] = json!("250000");
    let body = json!({
        "org_id": org.org_id, "api_key_id": org.api_key_id,
        "transaction": changed, "wait_ms": 0,
    });
    let answer = org
        .admin
        .call(reqwest::Method::POST, "/producer/v2/callbacks", Some(&body))
        .await;
    assert_eq!(answer.status, 409, "{}", answer.text);
    assert_eq!(approver.asked(&transaction_id(&original)).len(), 1);
}
