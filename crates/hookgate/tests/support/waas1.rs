//! WaaS 1.0 callbacks in the integration tests.
//!
//! - [`CoboReceiver`]: a real HTTP server on loopback playing a customer's
//!   service that receives both generations. It checks every request with
//!   `hookgate_receiver` (paths under `/waas2` with the Ed25519 key, every
//!   other path with the secp256k1 key), books each Cobo transaction outcome
//!   once with a [`MemoryDedupStore`], records each request, and answers as
//!   the test's plan says;
//! - [`Waas1Org`]: an organisation with the calls the 1.0 tests make: its
//!   1.0 URLs, the producer's 1.0 push, and reading back what happened.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hookgate_receiver::{body, DedupKey, DedupStore, Mark, MemoryDedupStore, Verifier};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::server::{Answer, ApiClient, TestServer};
use super::DEADLINE;

/// The shared sample bodies, by file name.
pub fn sample(file: &str) -> Value {
    let path = format!(
        "{}/../../testdata/samples/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// The body of the real Cobo-signed 1.0 vector, exactly as Cobo sent it.
pub fn cobo_signed_vector() -> Value {
    let path = format!(
        "{}/../../testdata/vectors/signatures.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let vectors: Value = serde_json::from_str(&text).expect("the vectors are JSON");
    vectors["cobo_v1_secp256k1"]
        .as_array()
        .expect("cobo_v1_secp256k1")
        .iter()
        .find(|v| v["valid"] == true && v["body"].is_string())
        .expect("a valid Cobo-signed vector")
        .clone()
}

/// What the receiver knows of a request when it chooses its answer.
pub struct Request {
    /// The URL path, such as `/v1/notify`.
    pub path: String,
    /// 1 for the first request with these exact body bytes on this path, 2
    /// for the second, ...
    pub nth: usize,
    /// The body as JSON (`null` when it is not).
    pub json: Value,
}

/// The receiver's answer: a status and an exact body.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
        }
    }

    /// 200 `ok`: acknowledged (notification) or approved (confirmation).
    pub fn ok() -> Self {
        Self::text(200, "ok")
    }

    /// 200 `deny`.
    pub fn deny() -> Self {
        Self::text(200, "deny")
    }
}

/// One request as it arrived, after its signature checked out.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivered {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

type Plan = dyn Fn(&Request) -> Reply + Send + Sync;

struct Shared {
    v1: Verifier,
    v2: Verifier,
    plan: Box<Plan>,
    delivered: Mutex<Vec<Delivered>>,
    per_body: Mutex<HashMap<(String, Bytes), usize>>,
    /// Requests whose signature did not verify, described.
    unverified: Mutex<Vec<String>>,
    bookings: MemoryDedupStore,
    /// Each transaction outcome booked: its key and the generation that
    /// reported it first.
    booked: Mutex<Vec<(String, &'static str)>>,
}

/// A customer's service receiving WaaS 1.0 and 2.0 traffic on loopback.
pub struct CoboReceiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl CoboReceiver {
    /// Starts on a free port of 127.0.0.1. Requests under `/waas2` are
    /// verified with `v2_key`, all others with `v1_key`; a request that fails
    /// is answered 401 and recorded as unverified.
    pub async fn start(
        v1_key: &str,
        v2_key: &str,
        plan: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            v1: Verifier::cobo_v1(v1_key).expect("a WaaS 1.0 public key"),
            v2: Verifier::cobo_v2(v2_key).expect("a WaaS 2.0 public key"),
            plan: Box::new(plan),
            delivered: Mutex::default(),
            per_body: Mutex::default(),
            unverified: Mutex::default(),
            bookings: MemoryDedupStore::new(),
            booked: Mutex::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the receiver can listen on 127.0.0.1");
        let addr = listener.local_addr().expect("a local address");
        let state = shared.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { receive(state, uri, headers, body).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every verified request to `path`, in arrival order.
    pub fn delivered_at(&self, path: &str) -> Vec<Delivered> {
        let delivered = self.shared.delivered.lock().expect("receiver records");
        delivered
            .iter()
            .filter(|d| d.path == path)
            .cloned()
            .collect()
    }

    /// How many verified requests came to `path`.
    pub fn count_at(&self, path: &str) -> usize {
        self.delivered_at(path).len()
    }

    /// The transaction outcomes booked, as (dedup key, generation), in the
    /// order they were booked.
    pub fn booked(&self) -> Vec<(String, &'static str)> {
        self.shared.booked.lock().expect("receiver records").clone()
    }

    /// Asserts that every request so far carried a valid signature of the
    /// generation its path belongs to.
    #[track_caller]
    pub fn assert_all_verified(&self) {
        let bad = self.shared.unverified.lock().expect("receiver records");
        assert!(bad.is_empty(), "requests that failed verification: {bad:?}");
    }
}

impl Drop for CoboReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(shared: Arc<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let waas2 = path.starts_with("/waas2");
    let verifier = if waas2 { &shared.v2 } else { &shared.v1 };
    if let Err(e) = verifier.verify(&headers, &body) {
        let problem = format!("{path}: {e}: {}", String::from_utf8_lossy(&body));
        shared.unverified.lock().expect("records").push(problem);
        return StatusCode::UNAUTHORIZED.into_response();
    }

    book(&shared, waas2, &body);
    let nth = {
        let mut counts = shared.per_body.lock().expect("receiver records");
        let n = counts.entry((path.clone(), body.clone())).or_default();
        *n += 1;
        *n
    };
    let json = serde_json::from_slice(&body).unwrap_or_default();
    shared.delivered.lock().expect("records").push(Delivered {
        path: path.clone(),
        headers,
        body,
    });

    let reply = (shared.plan)(&Request { path, nth, json });
    let status = StatusCode::from_u16(reply.status).expect("a valid status");
    (status, reply.body).into_response()
}

/// Books the transaction outcome a verified body reports, once per Cobo
/// transaction and state, whichever generation reports it first.
fn book(shared: &Shared, waas2: bool, raw: &[u8]) {
    let (key, via) = if waas2 {
        let key = body::parse_event(raw)
            .ok()
            .and_then(|e| DedupKey::for_event_transaction(&e));
        (key, "WaaS 2.0")
    } else {
        let key = body::parse_v1(raw).ok().and_then(|c| DedupKey::for_v1(&c));
        (key, "WaaS 1.0")
    };
    let Some(key) = key else { return };
    if shared.bookings.mark(&key).expect("the memory store marks") == Mark::New {
        let mut booked = shared.booked.lock().expect("records");
        booked.push((key.to_string(), via));
    }
}

/// An organisation as the 1.0 tests use it.
pub struct Waas1Org {
    pub org_id: String,
    /// Acts for the organisation with an API key.
    pub api: ApiClient,
    /// The producer surface (admin token).
    pub admin: ApiClient,
}

impl Waas1Org {
    pub async fn create(server: &TestServer) -> Self {
        let org = server.new_org().await;
        Self {
            org_id: org.org_id,
            api: org.api,
            admin: server.admin.clone(),
        }
    }

    /// The Ed25519 (2.0) and secp256k1 (1.0) public keys, as published.
    pub async fn public_keys(&self) -> (String, String) {
        let keys = self.api.get("/v2/webhooks/public_key").await.expect(200);
        let key = |i: usize| {
            keys["keys"][i]["public_key"]
                .as_str()
                .expect("a key")
                .to_owned()
        };
        assert_eq!(keys["keys"][0]["scheme"], "cobo_v2_ed25519", "{keys}");
        assert_eq!(keys["keys"][1]["scheme"], "cobo_v1_secp256k1", "{keys}");
        (key(0), key(1))
    }

    /// Changes the organisation's 1.0 URLs; gives the answer.
    pub async fn put_urls(&self, change: &Value) -> Answer {
        let path = "/v2/developers/waas1_callbacks";
        self.api
            .call(reqwest::Method::PUT, path, Some(change))
            .await
    }

    /// Sets the 1.0 transaction notification URL; gives its endpoint id.
    pub async fn set_notification_url(&self, url: &str) -> String {
        let urls = self
            .put_urls(&json!({"transaction_notification_url": url}))
            .await
            .expect(200);
        assert_eq!(urls["transaction_notification"]["url"], url, "{urls}");
        urls["transaction_notification"]["endpoint_id"]
            .as_str()
            .expect("endpoint_id")
            .to_owned()
    }

    /// Sets the 1.0 withdrawal confirmation URL.
    pub async fn set_confirmation_url(&self, url: &str) {
        let urls = self
            .put_urls(&json!({"withdrawal_confirmation_url": url}))
            .await
            .expect(200);
        assert_eq!(urls["withdrawal_confirmation"]["url"], url, "{urls}");
    }

    /// Pushes a 1.0 body of `kind`; gives the raw answer.
    pub async fn push(&self, kind: &str, body: &Value, wait_ms: Option<u64>) -> Answer {
        let mut request = json!({"org_id": self.org_id, "kind": kind, "body": body});
        if let Some(wait_ms) = wait_ms {
            request["wait_ms"] = json!(wait_ms);
        }
        self.admin
            .post("/producer/v1/notifications", &request)
            .await
    }

    /// Pushes a transaction notification; gives its event id.
    pub async fn notify(&self, body: &Value) -> String {
        let answer = self.push("transaction", body, None).await.expect(202);
        answer["event_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no event_id: {answer}"))
            .to_owned()
    }

    /// Asks for a withdrawal confirmation, waiting for the decision up to
    /// the whole test deadline; gives the producer's answer.
    pub async fn confirm(&self, body: &Value) -> Value {
        let wait = DEADLINE.as_millis() as u64;
        self.push("withdrawal_confirmation", body, Some(wait))
            .await
            .expect(200)
    }

    /// A decision as the producer reads it back.
    pub async fn decision(&self, message_id: &str) -> Value {
        self.admin
            .get(&format!("/producer/v2/callbacks/{message_id}"))
            .await
            .expect(200)
    }
}
