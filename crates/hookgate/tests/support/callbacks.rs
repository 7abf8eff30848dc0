//! Approval callbacks in the integration tests.
//!
//! - [`Approver`]: a real HTTP server on loopback playing a customer's
//!   approval service. It checks the Cobo 2.0 signature of every request it
//!   gets, records each one, and answers as the test's plan says (`ok`,
//!   `deny`, near misses, errors, redirects, late answers);
//! - [`CallbackOrg`] and the free functions: the callback API as the
//!   producer and the organisation call it;
//! - [`ServeProcess`]: the real `hookgate serve` binary in a child process,
//!   for tests that kill the server with SIGKILL.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hookgate_protocol::signing::cobo_v2;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::server::{Answer, ApiClient, ADMIN_TOKEN};
use super::{eventually, DEADLINE};

/// The withdrawal every callback test asks about, from the shared samples.
const WITHDRAWAL_SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/samples/v2-callback-withdrawal.json"
);

/// The sample withdrawal with its own `transaction_id`, `request_id` and
/// `wallet_id`, so that tests never share a message.
pub fn withdrawal(label: &str) -> Value {
    let text = std::fs::read_to_string(WITHDRAWAL_SAMPLE).expect("the withdrawal sample exists");
    let mut tx: Value = serde_json::from_str(&text).expect("the withdrawal sample is JSON");
    let unique = uuid::Uuid::new_v4();
    tx["transaction_id"] = json!(format!("{label}-{unique}"));
    tx["request_id"] = json!(format!("request-{label}-{unique}"));
    tx["wallet_id"] = json!(uuid::Uuid::new_v4().to_string());
    tx
}

/// The `transaction_id` of a transaction.
pub fn transaction_id(tx: &Value) -> String {
    tx["transaction_id"]
        .as_str()
        .expect("transaction_id")
        .to_owned()
}

/// What the approver knows of a request when it chooses its answer.
pub struct Question {
    /// The URL path, such as `/risk`.
    pub path: String,
    /// The body's `transaction_id`.
    pub transaction_id: String,
    /// 1 for the first request about this transaction on this path, 2 for
    /// the second, ...
    pub nth: usize,
}

/// The approver's answer to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    body: String,
    location: Option<String>,
    delay: Duration,
}

impl Reply {
    /// 200 with this exact body.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            location: None,
            delay: Duration::ZERO,
        }
    }

    /// 200 `ok`: approve.
    pub fn ok() -> Self {
        Self::text(200, "ok")
    }

    /// 200 `deny`: reject.
    pub fn deny() -> Self {
        Self::text(200, "deny")
    }

    /// A 302 to `location`.
    pub fn redirect(location: &str) -> Self {
        Self {
            location: Some(location.to_owned()),
            ..Self::text(302, "")
        }
    }

    /// Holds the answer for far longer than any test's attempt timeout.
    pub fn hang() -> Self {
        Self::ok().after(Duration::from_secs(60))
    }

    /// The same answer, sent after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Asked {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub transaction_id: String,
}

impl Asked {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

type Plan = dyn Fn(&Question) -> Reply + Send + Sync;

struct Shared {
    /// The server's public key, 64 hex characters.
    public_key_hex: String,
    plan: Box<Plan>,
    asked: Mutex<Vec<Asked>>,
    per_question: Mutex<HashMap<(String, String), usize>>,
    /// Requests of each (path, transaction) being answered right now, and
    /// the most there ever were at once.
    in_flight: Mutex<HashMap<(String, String), (usize, usize)>>,
    /// Requests whose signature did not verify, described.
    unverified: Mutex<Vec<String>>,
}

/// A customer's approval service on loopback.
pub struct Approver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Approver {
    /// Starts on a free port of 127.0.0.1; verifies every request with
    /// `public_key_hex` and answers as `plan` says.
    pub async fn start(
        public_key_hex: &str,
        plan: impl Fn(&Question) -> Reply + Send + Sync + 'static,
    ) -> Self {
        cobo_v2::parse_public_key(public_key_hex).expect("the public key parses");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the approver can listen on 127.0.0.1");
        let addr = listener.local_addr().expect("a local address");
        let shared = Arc::new(Shared {
            public_key_hex: public_key_hex.to_owned(),
            plan: Box::new(plan),
            asked: Mutex::default(),
            per_question: Mutex::default(),
            in_flight: Mutex::default(),
            unverified: Mutex::default(),
        });
        let state = shared.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { answer(state, method, uri, headers, body).await }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// The URL of `path` on this approver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request about `transaction_id`, in arrival order.
    pub fn asked(&self, transaction_id: &str) -> Vec<Asked> {
        let asked = self.shared.asked.lock().expect("approver records");
        asked
            .iter()
            .filter(|a| a.transaction_id == transaction_id)
            .cloned()
            .collect()
    }

    /// The requests about `transaction_id` that came to `path`.
    pub fn asked_at(&self, path: &str, transaction_id: &str) -> Vec<Asked> {
        self.asked(transaction_id)
            .into_iter()
            .filter(|a| a.path == path)
            .collect()
    }

    /// The most requests about `transaction_id` on `path` that were ever
    /// being answered at once.
    pub fn most_at_once(&self, path: &str, transaction_id: &str) -> usize {
        let in_flight = self.shared.in_flight.lock().expect("approver records");
        let key = (path.to_owned(), transaction_id.to_owned());
        in_flight.get(&key).map_or(0, |(_, most)| *most)
    }

    /// Every request so far.
    pub fn count(&self) -> usize {
        self.shared.asked.lock().expect("approver records").len()
    }

    /// Asserts that every request so far carried a valid Cobo 2.0 signature.
    #[track_caller]
    pub fn assert_all_signed(&self) {
        let bad = self.shared.unverified.lock().expect("approver records");
        assert!(bad.is_empty(), "requests whose signature failed: {bad:?}");
    }
}

impl Drop for Approver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    let transaction_id = json["transaction_id"].as_str().unwrap_or("").to_owned();

    let timestamp = header_text(&headers, "biz-timestamp");
    let signature = header_text(&headers, "biz-resp-signature");
    let key = cobo_v2::parse_public_key(&shared.public_key_hex).expect("the key parsed before");
    if let Err(e) = cobo_v2::verify(&key, &body, &timestamp, &signature) {
        let problem = format!("{method} {path} ({transaction_id}): {e}");
        shared.unverified.lock().expect("records").push(problem);
        return StatusCode::UNAUTHORIZED.into_response();
    }

    let question = (path.clone(), transaction_id.clone());
    let nth = {
        let mut counts = shared.per_question.lock().expect("approver records");
        let n = counts.entry(question.clone()).or_default();
        *n += 1;
        *n
    };
    let _answering = Answering::begin(shared.clone(), question);
    shared.asked.lock().expect("approver records").push(Asked {
        method,
        path: path.clone(),
        headers,
        body,
        transaction_id: transaction_id.clone(),
    });

    let reply = (shared.plan)(&Question {
        path,
        transaction_id,
        nth,
    });
    tokio::time::sleep(reply.delay).await;
    let status = StatusCode::from_u16(reply.status).expect("a valid status");
    match reply.location {
        Some(location) => (status, [("location", location)], reply.body).into_response(),
        None => (status, reply.body).into_response(),
    }
}

/// Counts one request as being answered until it is dropped: when the
/// answer is sent, or when the server hangs up first.
struct Answering {
    shared: Arc<Shared>,
    question: (String, String),
}

impl Answering {
    fn begin(shared: Arc<Shared>, question: (String, String)) -> Self {
        {
            let mut in_flight = shared.in_flight.lock().expect("approver records");
            let (now, most) = in_flight.entry(question.clone()).or_default();
            *now += 1;
            *most = (*most).max(*now);
        }
        Self { shared, question }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let mut in_flight = self.shared.in_flight.lock().expect("approver records");
        if let Some((now, _)) = in_flight.get_mut(&self.question) {
            *now -= 1;
        }
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// An organisation with one API key, as the callback tests use it.
pub struct CallbackOrg {
    pub org_id: String,
    pub api_key_id: String,
    /// The API key's bearer secret.
    pub secret: String,
    /// Acts for the organisation with the API key's bearer secret.
    pub api: ApiClient,
    /// The producer surface (admin token).
    pub admin: ApiClient,
}

impl CallbackOrg {
    /// Creates an organisation and one API key on the server at `base`.
    pub async fn create(base: &str) -> Self {
        let admin = ApiClient::new(base, Some(ADMIN_TOKEN));
        let org = admin
            .post("/producer/orgs", &json!({"name": "Approvals Org"}))
            .await
            .expect(201);
        let org_id = text(&org["org_id"]);
        let (api_key_id, secret) = new_api_key(&admin, &org_id).await;
        Self {
            api: ApiClient::new(base, Some(&secret)),
            org_id,
            api_key_id,
            secret,
            admin,
        }
    }

    /// The same organisation on a server now listening at `base` (after a
    /// restart on the same data directory).
    pub fn on(self, base: &str) -> Self {
        Self {
            api: ApiClient::new(base, Some(&self.secret)),
            admin: ApiClient::new(base, Some(ADMIN_TOKEN)),
            ..self
        }
    }

    /// Registers another API key of this organisation; gives its id.
    pub async fn another_api_key(&self) -> String {
        new_api_key(&self.admin, &self.org_id).await.0
    }

    /// Links a callback endpoint at `url` to `api_key_id`; gives its id.
    pub async fn link(&self, url: &str, api_key_id: &str) -> String {
        let body = json!({"url": url, "api_key_id": api_key_id});
        let endpoint = self
            .api
            .post("/v2/developers/callback_endpoints", &body)
            .await
            .expect(201);
        assert_eq!(endpoint["api_key_id"], api_key_id, "{endpoint}");
        assert_eq!(endpoint["status"], "STATUS_ACTIVE", "{endpoint}");
        text(&endpoint["callback_endpoint_id"])
    }

    /// Asks whether `tx` may go ahead, waiting up to `wait_ms`; gives the
    /// answer of the producer surface.
    pub async fn ask_with(&self, api_key_id: &str, tx: &Value, wait_ms: u64) -> Value {
        let body = json!({"org_id": self.org_id, "api_key_id": api_key_id,
                          "transaction": tx, "wait_ms": wait_ms});
        self.admin
            .post("/producer/v2/callbacks", &body)
            .await
            .expect(200)
    }

    /// [`Self::ask_with`] for the organisation's first API key.
    pub async fn ask(&self, tx: &Value, wait_ms: u64) -> Value {
        self.ask_with(&self.api_key_id, tx, wait_ms).await
    }

    /// The decision so far, as the producer reads it.
    pub async fn decision(&self, message_id: &str) -> Value {
        self.admin
            .get(&format!("/producer/v2/callbacks/{message_id}"))
            .await
            .expect(200)
    }

    /// Waits until the message leaves `Retrying`; gives the producer's view.
    pub async fn decided(&self, message_id: &str) -> Value {
        eventually(&format!("a decision on message {message_id}"), || async {
            let decision = self.decision(message_id).await;
            (decision["status"] != "Retrying").then_some(decision)
        })
        .await
    }

    /// The message as the organisation sees it.
    pub async fn message(&self, message_id: &str) -> Value {
        self.api
            .get(&format!("/v2/developers/callback_messages/{message_id}"))
            .await
            .expect(200)
    }

    /// The messages matching `query` (such as `status=Approved`).
    pub async fn messages(&self, query: &str) -> Vec<Value> {
        let list = self
            .api
            .get(&format!("/v2/developers/callback_messages?{query}"))
            .await
            .expect(200);
        list["data"].as_array().expect("data").clone()
    }

    /// Every attempt of the message, oldest first.
    pub async fn logs(&self, message_id: &str) -> Vec<Value> {
        let logs = self
            .api
            .get(&format!(
                "/v2/developers/callback_messages/{message_id}/logs"
            ))
            .await
            .expect(200);
        logs["data"].as_array().expect("data").clone()
    }

    /// Asks for a manual retry of the message.
    pub async fn retry(&self, message_id: &str) -> Answer {
        let path = format!("/v2/developers/callback_messages/{message_id}/retry");
        self.api.call(reqwest::Method::POST, &path, None).await
    }
}

async fn new_api_key(admin: &ApiClient, org_id: &str) -> (String, String) {
    let key = admin
        .post(
            &format!("/producer/orgs/{org_id}/api_keys"),
            &json!({"name": "payouts"}),
        )
        .await
        .expect(201);
    (text(&key["api_key_id"]), text(&key["secret"]))
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

/// `hookgate serve` in a child process, killed with SIGKILL when dropped.
pub struct ServeProcess {
    /// `http://127.0.0.1:port`.
    pub base: String,
    child: Child,
}

impl ServeProcess {
    /// Runs the binary with `config` (a TOML file) and waits until it
    /// reports the address it listens on.
    pub fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env_remove("HOOKGATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the hookgate binary starts");

        let stderr = child.stderr.take().expect("stderr is piped");
        let (found, listening) = mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("hookgate listening on ") {
                    if let Some(found) = found.take() {
                        let _ = found.send(base.trim().to_owned());
                    }
                }
            }
        });

        let base = match listening.recv_timeout(DEADLINE) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("hookgate serve did not report its address within {DEADLINE:?}");
            }
        };
        Self { base, child }
    }

    /// Kills the server with SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}
