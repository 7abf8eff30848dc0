//! Bad input to the HTTP API is refused with a 4xx in the API's error format
//! and leaves nothing half-written; and the event list pages and filters.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use support::receiver::{Receiver, Reply};
use support::server::{Answer, ApiClient, Org, TestServer, ADMIN_TOKEN};
use support::{eventually, transaction, wallet_info, TX_CREATED, WALLET_CREATED};

/// Largest request body the fixture's server accepts.
const MAX_BODY: usize = 256 * 1024;

/// A server, an organisation with one endpoint, and its receiver.
struct Fixture {
    server: TestServer,
    org: Org,
    endpoint_id: String,
    receiver: Receiver,
}

impl Fixture {
    async fn new() -> Self {
        let server = TestServer::start(|s| s.max_body_bytes = MAX_BODY).await;
        let org = server.new_org().await;
        let receiver = Receiver::start(|_| Reply::Status(200)).await;
        let endpoint_id = org
            .api
            .create_endpoint(&receiver.url("/ok"), &[TX_CREATED])
            .await;
        Self {
            server,
            org,
            endpoint_id,
            receiver,
        }
    }

    async fn publish_raw(&self, body: Vec<u8>) -> Answer {
        let admin = &self.server.admin;
        admin
            .send(
                Method::POST,
                "/producer/v2/events",
                Some(body),
                "application/json",
            )
            .await
    }

    async fn publish(&self, body: &Value) -> Answer {
        self.server.admin.post("/producer/v2/events", body).await
    }

    async fn register(&self, body: &Value) -> Answer {
        self.org.api.post("/v2/webhooks/endpoints", body).await
    }

    /// The organisation still has only the fixture's endpoint, which has no
    /// events, nothing was delivered, and the server is healthy.
    async fn assert_nothing_written(&self) {
        let endpoints = self.org.api.get("/v2/webhooks/endpoints").await.expect(200);
        assert_eq!(endpoints["pagination"]["total_count"], 1, "{endpoints}");
        assert_eq!(
            endpoints["data"][0]["endpoint_id"],
            self.endpoint_id.as_str()
        );
        assert_eq!(
            endpoints["data"][0]["subscribed_events"],
            json!([TX_CREATED])
        );

        let path = format!("/v2/webhooks/endpoints/{}/events", self.endpoint_id);
        let events = self.org.api.get(&path).await.expect(200);
        assert_eq!(events["pagination"]["total_count"], 0, "{events}");

        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(self.receiver.count(), 0);
        assert!(self.server.healthy().await);
    }
}

fn good_event(org_id: &str) -> Value {
    json!({"org_id": org_id, "type": TX_CREATED, "data": transaction("tx-good")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_refused() {
    let f = Fixture::new().await;
    let cut = br#"{"org_id": "x", "type": "#.to_vec();
    f.publish_raw(cut).await.expect_error(400);
    f.publish_raw(b"not json at all".to_vec())
        .await
        .expect_error(400);
    f.publish_raw(Vec::new()).await.expect_error(400);

    let api = &f.org.api;
    let answer = api.send(
        Method::POST,
        "/v2/webhooks/endpoints",
        Some(b"{".to_vec()),
        "application/json",
    );
    answer.await.expect_error(400);
    let path = format!("/v2/webhooks/endpoints/{}", f.endpoint_id);
    api.send(
        Method::PUT,
        &path,
        Some(b"[1,".to_vec()),
        "application/json",
    )
    .await
    .expect_error(400);

    let body = serde_json::to_vec(&good_event(&f.org.org_id)).unwrap();
    let answer = f.server.admin.send(
        Method::POST,
        "/producer/v2/events",
        Some(body),
        "text/plain",
    );
    let answer = answer.await;
    assert!((400..500).contains(&answer.status), "{}", answer.text);
    answer.expect_error(answer.status);
    f.assert_nothing_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_with_413() {
    let f = Fixture::new().await;
    let mut event = good_event(&f.org.org_id);
    event["data"]["memo"] = json!("m".repeat(MAX_BODY * 2));
    f.publish(&event).await.expect_error(413);

    let big = json!({
        "url": f.receiver.url("/big"),
        "subscribed_events": [TX_CREATED],
        "description": "d".repeat(MAX_BODY * 2),
    });
    f.register(&big).await.expect_error(413);
    f.assert_nothing_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_refused_without_harm() {
    let f = Fixture::new().await;
    for depth in [10_000, 30_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let body = format!(
            r#"{{"org_id":"{}","type":"{TX_CREATED}","data":{{"deep":{arrays}}}}}"#,
            f.org.org_id
        );
        f.publish_raw(body.into_bytes()).await.expect_error(400);

        let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let body = format!(r#"{{"url":{objects},"subscribed_events":["{TX_CREATED}"]}}"#);
        let api = &f.org.api;
        let answer = api.send(
            Method::POST,
            "/v2/webhooks/endpoints",
            Some(body.into_bytes()),
            "application/json",
        );
        answer.await.expect_error(400);
    }
    f.assert_nothing_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_fields_are_refused() {
    let f = Fixture::new().await;
    let org_id = f.org.org_id.as_str();
    for field in ["org_id", "type", "data"] {
        let mut event = good_event(org_id);
        event.as_object_mut().unwrap().remove(field);
        f.publish(&event).await.expect_error(400);
    }
    for field in [
        "transaction_id",
        "wallet_id",
        "initiator_type",
        "source",
        "created_timestamp",
    ] {
        let mut event = good_event(org_id);
        event["data"].as_object_mut().unwrap().remove(field);
        let answer = f.publish(&event).await;
        answer.expect_error(400);
        assert!(
            answer.text.contains(field),
            "the error names {field}: {}",
            answer.text
        );
    }
    f.register(&json!({"subscribed_events": [TX_CREATED]}))
        .await
        .expect_error(400);
    f.register(&json!({"url": f.receiver.url("/x")}))
        .await
        .expect_error(400);
    f.server
        .admin
        .post("/producer/orgs", &json!({}))
        .await
        .expect_error(400);
    f.assert_nothing_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_of_the_wrong_type_are_refused() {
    let f = Fixture::new().await;
    let org_id = f.org.org_id.as_str();
    let url = f.receiver.url("/x");

    let mut event = good_event(org_id);
    event["data"] = json!([1, 2, 3]);
    f.publish(&event).await.expect_error(400);
    let mut event = good_event(org_id);
    event["idempotency_key"] = json!(42);
    f.publish(&event).await.expect_error(400);
    for (field, value) in [
        ("created_timestamp", json!("1701396866000")),
        ("updated_timestamp", json!(1701396866000.5)),
        ("transaction_id", json!(7)),
        ("confirmed_num", json!("3")),
    ] {
        let mut event = good_event(org_id);
        event["data"][field] = value;
        f.publish(&event).await.expect_error(400);
    }

    f.register(&json!({"url": url, "subscribed_events": TX_CREATED}))
        .await
        .expect_error(400);
    f.register(&json!({"url": 8080, "subscribed_events": [TX_CREATED]}))
        .await
        .expect_error(400);
    f.register(&json!({"url": url, "subscribed_events": [1]}))
        .await
        .expect_error(400);
    let path = format!("/v2/webhooks/endpoints/{}", f.endpoint_id);
    f.org
        .api
        .put(&path, &json!({"subscribed_events": "x"}))
        .await
        .expect_error(400);
    f.assert_nothing_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_event_types_are_refused() {
    let f = Fixture::new().await;
    let url = f.receiver.url("/x");
    let typo = json!({"url": url, "subscribed_events": ["wallets.transaction.suceeded"]});
    let answer = f.register(&typo).await;
    answer.expect_error(400);
    assert!(
        answer.text.contains("wallets.transaction.succeeded"),
        "a hint: {}",
        answer.text
    );
    let mixed = json!({"url": url, "subscribed_events": [TX_CREATED, "no.such.type"]});
    f.register(&mixed).await.expect_error(400);
    f.register(&json!({"url": url, "subscribed_events": []}))
        .await
        .expect_error(400);

    let path = format!("/v2/webhooks/endpoints/{}", f.endpoint_id);
    f.org
        .api
        .put(&path, &json!({"subscribed_events": ["no.such.type"]}))
        .await
        .expect_error(400);

    let mut event = good_event(&f.org.org_id);
    event["type"] = json!("no.such.type");
    f.publish(&event).await.expect_error(400);
    f.assert_nothing_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_that_are_not_http_are_refused() {
    let f = Fixture::new().await;
    let long = format!("{}/{}", f.receiver.url(""), "a".repeat(600));
    for url in [
        "ftp://127.0.0.1/hooks",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://127.0.0.1:70/",
        "127.0.0.1:9000/hooks",
        "/relative/path",
        "",
        "http://",
        long.as_str(),
    ] {
        let answer = f
            .register(&json!({"url": url, "subscribed_events": [TX_CREATED]}))
            .await;
        answer.expect_error(400);
    }
    f.assert_nothing_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_with_user_info_are_refused() {
    let f = Fixture::new().await;
    let port = f.receiver.addr.port();
    for url in [
        format!("http://user:secret@127.0.0.1:{port}/hooks"),
        format!("http://user@127.0.0.1:{port}/hooks"),
        format!("https://:secret@127.0.0.1:{port}/hooks"),
    ] {
        let answer = f
            .register(&json!({"url": url, "subscribed_events": [TX_CREATED]}))
            .await;
        answer.expect_error(400);
    }
    f.assert_nothing_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_credentials_are_refused_with_401() {
    let f = Fixture::new().await;
    let base = &f.server.base;
    let org_secret_client = f.org.api.clone();
    let event = good_event(&f.org.org_id);
    let endpoint = json!({"url": f.receiver.url("/x"), "subscribed_events": [TX_CREATED]});

    let producers = [
        ApiClient::new(base, None),
        ApiClient::new(base, Some("wrong-token-0123456789")),
        ApiClient::new(base, Some(&format!("{ADMIN_TOKEN}x"))),
        org_secret_client.clone(),
    ];
    for client in &producers {
        client
            .post("/producer/v2/events", &event)
            .await
            .expect_error(401);
        client
            .post("/producer/orgs", &json!({"name": "intruder"}))
            .await
            .expect_error(401);
    }

    let organisations = [
        ApiClient::new(base, None),
        ApiClient::new(base, Some("hgk_0000000000000000000000000000000000000000")),
        ApiClient::new(base, Some(ADMIN_TOKEN)),
    ];
    for client in &organisations {
        client
            .post("/v2/webhooks/endpoints", &endpoint)
            .await
            .expect_error(401);
        client.get("/v2/webhooks/endpoints").await.expect_error(401);
        client
            .get("/v2/webhooks/public_key")
            .await
            .expect_error(401);
        let path = format!("/v2/webhooks/endpoints/{}/events", f.endpoint_id);
        client.get(&path).await.expect_error(401);
    }
    f.assert_nothing_written().await;
}

/// Lists the fixture endpoint's events with `query`.
async fn page(api: &ApiClient, endpoint_id: &str, query: &str) -> Value {
    api.get(&format!(
        "/v2/webhooks/endpoints/{endpoint_id}/events?{query}"
    ))
    .await
    .expect(200)
}

fn ids(page: &Value) -> Vec<String> {
    let data = page["data"].as_array().expect("data");
    data.iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_list_pages_with_cursors_and_filters() {
    let server = TestServer::start(|s| s.delivery.webhook_max_attempts = 1).await;
    let org = server.new_org().await;
    // Wallet events are delivered; transaction events fail their only attempt.
    let receiver = Receiver::start(|call| {
        Reply::Status(if call.json["type"] == WALLET_CREATED {
            200
        } else {
            500
        })
    })
    .await;
    let endpoint_id = org
        .api
        .create_endpoint(&receiver.url("/list"), &[TX_CREATED, WALLET_CREATED])
        .await;

    let mut published = Vec::new();
    for n in 0..25 {
        let answer = if n % 2 == 0 {
            server
                .admin
                .publish(&org.org_id, TX_CREATED, transaction(&format!("tx-{n}")))
                .await
        } else {
            server
                .admin
                .publish(&org.org_id, WALLET_CREATED, wallet_info(&format!("w{n}")))
                .await
        };
        published.extend(ApiClient::event_ids(&answer));
    }
    eventually("every event to settle", || async {
        let retrying = page(&org.api, &endpoint_id, "status=Retrying").await;
        (retrying["pagination"]["total_count"] == 0).then_some(())
    })
    .await;

    let first = page(&org.api, &endpoint_id, "limit=10").await;
    assert_eq!(first["pagination"]["total_count"], 25);
    assert_eq!(
        first["pagination"]["before"], "",
        "nothing is newer than the first page"
    );
    let after = first["pagination"]["after"]
        .as_str()
        .expect("after")
        .to_owned();
    assert!(!after.is_empty());

    let second = page(&org.api, &endpoint_id, &format!("limit=10&after={after}")).await;
    let after = second["pagination"]["after"]
        .as_str()
        .expect("after")
        .to_owned();
    let before = second["pagination"]["before"]
        .as_str()
        .expect("before")
        .to_owned();
    assert!(!after.is_empty() && !before.is_empty());
    let third = page(&org.api, &endpoint_id, &format!("limit=10&after={after}")).await;
    assert_eq!(
        third["pagination"]["after"], "",
        "nothing is older than the last page"
    );

    let (first_ids, second_ids, third_ids) = (ids(&first), ids(&second), ids(&third));
    assert_eq!(
        (first_ids.len(), second_ids.len(), third_ids.len()),
        (10, 10, 5)
    );
    let all: Vec<String> = [first_ids.clone(), second_ids, third_ids].concat();
    let mut newest_first = published.clone();
    newest_first.reverse();
    assert_eq!(all, newest_first, "every event once, newest first");

    let back = page(&org.api, &endpoint_id, &format!("limit=10&before={before}")).await;
    assert_eq!(ids(&back), first_ids, "before leads back to the newer page");

    let transactions = page(
        &org.api,
        &endpoint_id,
        &format!("type={TX_CREATED}&limit=50"),
    )
    .await;
    assert_eq!(transactions["pagination"]["total_count"], 13);
    assert!(ids(&transactions)
        .iter()
        .all(|id| published.iter().step_by(2).any(|p| p == id)));
    let delivered = page(&org.api, &endpoint_id, "status=Success&limit=50").await;
    assert_eq!(delivered["pagination"]["total_count"], 12);
    let data = delivered["data"].as_array().unwrap();
    assert!(data
        .iter()
        .all(|e| e["status"] == "Success" && e["type"] == WALLET_CREATED));
    let failed = page(
        &org.api,
        &endpoint_id,
        &format!("status=Failed&type={TX_CREATED}"),
    )
    .await;
    assert_eq!(failed["pagination"]["total_count"], 13);
    assert_eq!(ids(&failed).len(), 10, "the default limit is 10");
    let either = page(&org.api, &endpoint_id, "status=Success,Failed&limit=50").await;
    assert_eq!(ids(&either).into_iter().collect::<HashSet<_>>().len(), 25);

    let events = format!("/v2/webhooks/endpoints/{endpoint_id}/events");
    for bad in [
        "limit=0",
        "limit=51",
        "status=Delivered",
        "after=not-a-cursor",
        "limit=x",
    ] {
        let answer = org.api.get(&format!("{events}?{bad}")).await;
        answer.expect_error(400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_in_the_error_format() {
    let f = Fixture::new().await;
    f.org.api.get("/v2/no/such/route").await.expect_error(404);
    let path = format!("/v2/webhooks/endpoints/{}", f.endpoint_id);
    f.org
        .api
        .call(Method::DELETE, &path, None)
        .await
        .expect_error(405);
    f.server
        .admin
        .get("/producer/v2/events")
        .await
        .expect_error(405);
    f.assert_nothing_written().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start(|_| {}).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connects");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: hookgate\r\nX-Slow: ")
        .await
        .expect("writes");

    let limit = hookgate_server::listener::HEADER_TIMEOUT + Duration::from_secs(15);
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match slow.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the half-sent request was still open after {limit:?}"
    );

    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
}
