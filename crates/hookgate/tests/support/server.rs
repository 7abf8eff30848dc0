//! A real Hookgate server on loopback, and a client of its HTTP API.
//!
//! [`base_settings`] is the one place that chooses storage and timing for
//! every in-process test server; `HOOKGATE_TEST_BACKEND=postgres` runs them
//! on PostgreSQL (see [`super::database`]).

use std::path::Path;
use std::time::Duration;

use hookgate_server::settings::Settings;
use hookgate_server::RunningServer;
use reqwest::Method;
use serde_json::{json, Value};

use super::{eventually, TempDir};

/// The admin token every test server is given.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Settings of a test server: listens on a free loopback port, keeps its
/// data in `data_dir` (embedded SQLite, or a database of its own on the
/// PostgreSQL backend), may dial loopback, and retries on a millisecond
/// schedule with a short attempt timeout.
pub fn base_settings(data_dir: &Path) -> Settings {
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().expect("a socket address"),
        data_dir: data_dir.to_owned(),
        database_url: super::database::database_url_for(data_dir),
        admin_token: Some(ADMIN_TOKEN.into()),
        log: "warn".into(),
        ..Settings::default()
    };
    settings.network.allow_cidrs = vec!["127.0.0.0/8".parse().expect("a CIDR")];

    let delivery = &mut settings.delivery;
    delivery.timeout_ms = 500;
    delivery.lease_ms = delivery.timeout_ms + 5_000;
    delivery.webhook_retry_ms = vec![50, 100];
    delivery.webhook_max_attempts = 5;
    delivery.jitter = 0.0;
    delivery.poll_interval_ms = 50;
    settings
}

/// A server started for one test, stopped and removed when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// Hex Ed25519 public key, as the server reported it at start.
    pub public_key_v2: String,
    /// The producer surface.
    pub admin: ApiClient,
    server: Option<RunningServer>,
    _dir: TempDir,
}

impl TestServer {
    /// Starts a server on [`base_settings`], changed by `tune`.
    pub async fn start(tune: impl FnOnce(&mut Settings)) -> Self {
        let dir = TempDir::new("server");
        let mut settings = base_settings(dir.path());
        tune(&mut settings);

        let server = hookgate_server::start(settings)
            .await
            .expect("the test server starts");
        let base = format!("http://{}", server.addr);
        Self {
            admin: ApiClient::new(&base, Some(&server.admin_token)),
            public_key_v2: server.public_key_v2.clone(),
            base,
            server: Some(server),
            _dir: dir,
        }
    }

    /// A client with no credential, or with `token`.
    pub fn client(&self, token: Option<&str>) -> ApiClient {
        ApiClient::new(&self.base, token)
    }

    /// Creates an organisation and an API key for it.
    pub async fn new_org(&self) -> Org {
        self.admin.new_org().await
    }

    /// Whether `/healthz` answers `ok`.
    pub async fn healthy(&self) -> bool {
        let answer = self.client(None).call(Method::GET, "/healthz", None).await;
        answer.status == 200 && answer.text == "ok"
    }

    /// Stops the server and waits for its listener to close.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

/// An organisation and a client acting for it.
pub struct Org {
    pub org_id: String,
    pub api: ApiClient,
}

/// An HTTP answer: status, the raw text and, when it is JSON, the value.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

impl Answer {
    /// Asserts `status` and gives the JSON.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        self.json
    }

    /// Asserts the error format of the API: a 4xx with an integer
    /// `error_code`, an `error_message` and an `error_id`.
    #[track_caller]
    pub fn expect_error(&self, status: u16) {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        assert!(
            self.json["error_code"].is_i64(),
            "no error_code: {}",
            self.text
        );
        let message = self.json["error_message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "no error_message: {}", self.text);
        let id = self.json["error_id"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "no error_id: {}", self.text);
    }
}

/// A client of the server's HTTP API with one credential (or none).
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ApiClient {
    pub fn new(base: &str, token: Option<&str>) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("the test client builds");
        Self {
            http,
            base: base.to_owned(),
            token: token.map(str::to_owned),
        }
    }

    /// Sends `body` (as JSON) and reads the answer.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON serialises"));
        self.send(method, path, bytes, "application/json").await
    }

    /// Sends raw bytes with `content_type` and reads the answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("the answer body is readable");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    // Producer surface (admin token).

    pub async fn new_org(&self) -> Org {
        let org = self
            .post("/producer/orgs", &json!({"name": "Test Org"}))
            .await
            .expect(201);
        let org_id = org["org_id"].as_str().expect("org_id").to_owned();
        let key = self
            .post(
                &format!("/producer/orgs/{org_id}/api_keys"),
                &json!({"name": "tests"}),
            )
            .await
            .expect(201);
        let secret = key["secret"].as_str().expect("secret");
        Org {
            org_id,
            api: ApiClient::new(&self.base, Some(secret)),
        }
    }

    /// Publishes and asserts the 202; gives the answer.
    pub async fn publish(&self, org_id: &str, event_type: &str, data: Value) -> Value {
        let body = json!({"org_id": org_id, "type": event_type, "data": data});
        self.post("/producer/v2/events", &body).await.expect(202)
    }

    /// The event ids of a publish answer, in order.
    pub fn event_ids(published: &Value) -> Vec<String> {
        published["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
            .collect()
    }

    // Organisation surface (API key).

    /// Registers an endpoint and gives its id.
    pub async fn create_endpoint(&self, url: &str, events: &[&str]) -> String {
        let body = json!({"url": url, "subscribed_events": events});
        let endpoint = self.post("/v2/webhooks/endpoints", &body).await.expect(201);
        endpoint["endpoint_id"]
            .as_str()
            .expect("endpoint_id")
            .to_owned()
    }

    pub async fn event(&self, endpoint_id: &str, event_id: &str) -> Value {
        self.get(&format!(
            "/v2/webhooks/endpoints/{endpoint_id}/events/{event_id}"
        ))
        .await
        .expect(200)
    }

    /// The attempt logs of an event, oldest first.
    pub async fn logs(&self, endpoint_id: &str, event_id: &str) -> Vec<Value> {
        let logs = self
            .get(&format!(
                "/v2/webhooks/endpoints/{endpoint_id}/events/{event_id}/logs"
            ))
            .await
            .expect(200);
        logs["data"].as_array().expect("data").clone()
    }

    /// Asks for a manual retry; gives the answer.
    pub async fn retry(&self, endpoint_id: &str, event_id: &str) -> Answer {
        let path = format!("/v2/webhooks/endpoints/{endpoint_id}/events/{event_id}/retry");
        self.call(Method::POST, &path, None).await
    }

    /// Waits until the event reaches `status` and gives it.
    pub async fn wait_status(&self, endpoint_id: &str, event_id: &str, status: &str) -> Value {
        eventually(&format!("event {event_id} to be {status}"), || async {
            let event = self.event(endpoint_id, event_id).await;
            (event["status"] == status).then_some(event)
        })
        .await
    }

    /// Waits until the event has at least `count` attempt logs and gives them.
    pub async fn wait_logs(&self, endpoint_id: &str, event_id: &str, count: usize) -> Vec<Value> {
        eventually(
            &format!("{count} attempt logs of event {event_id}"),
            || async {
                let logs = self.logs(endpoint_id, event_id).await;
                (logs.len() >= count).then_some(logs)
            },
        )
        .await
    }
}
