//! A real HTTP receiver on loopback whose answers each test programs, and a
//! listener that resets every connection it accepts.
//!
//! The receiver records every request (path, headers, raw body), counts the
//! requests of each event, and tracks how many requests of one event are
//! in flight at once, so a test can assert that no event is ever attempted
//! twice concurrently.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the receiver knows of a request when it chooses its answer.
pub struct Call {
    /// The URL path, such as `/a`.
    pub path: String,
    /// The body's `event_id`, when it has one.
    pub event_id: Option<String>,
    /// 1 for the first request of this event, 2 for the second, ...
    pub nth: usize,
    /// The body as JSON (`null` when it is not).
    pub json: serde_json::Value,
}

/// An answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// This status and an empty body.
    Status(u16),
    /// A redirect to `location`.
    Redirect(u16, String),
    /// Waits, then answers with this status.
    After(Duration, u16),
    /// 200 with a body of this many bytes, sent in chunks.
    Huge(usize),
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub event_id: Option<String>,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Plan = dyn Fn(&Call) -> Reply + Send + Sync;

#[derive(Default)]
struct Counters {
    received: Vec<Received>,
    per_event: HashMap<String, usize>,
    in_flight: HashMap<String, usize>,
    most_in_flight: HashMap<String, usize>,
}

struct Shared {
    plan: Box<Plan>,
    counters: Mutex<Counters>,
}

/// The receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Starts on a free port of 127.0.0.1, answering as `plan` says.
    pub async fn start(plan: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("an address"), plan)
            .await
            .expect("the receiver can listen on 127.0.0.1")
    }

    /// Starts on `addr` (port 0 for a free one).
    pub async fn start_on(
        addr: SocketAddr,
        plan: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            plan: Box::new(plan),
            counters: Default::default(),
        });
        let state = shared.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { handle(state, uri, headers, body).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        match self.addr {
            SocketAddr::V4(v4) => format!("http://{v4}{path}"),
            SocketAddr::V6(v6) => format!("http://[{}]:{}{path}", v6.ip(), v6.port()),
        }
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.counters().received.clone()
    }

    /// The requests that came to `path`.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// The requests that carried `event_id`.
    pub fn received_event(&self, event_id: &str) -> Vec<Received> {
        let wanted = Some(event_id);
        self.received()
            .into_iter()
            .filter(|r| r.event_id.as_deref() == wanted)
            .collect()
    }

    /// How many requests came in all.
    pub fn count(&self) -> usize {
        self.counters().received.len()
    }

    /// The event ids seen so far.
    pub fn event_ids(&self) -> std::collections::HashSet<String> {
        self.counters().per_event.keys().cloned().collect()
    }

    /// The most requests of `event_id` that were ever in flight at once.
    pub fn most_in_flight(&self, event_id: &str) -> usize {
        self.counters()
            .most_in_flight
            .get(event_id)
            .copied()
            .unwrap_or(0)
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.shared.counters.lock().expect("receiver counters")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Leaves the in-flight count of one event when the request ends, however
/// it ends (answered, or dropped because the sender hung up).
struct InFlight {
    shared: Arc<Shared>,
    event_id: Option<String>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(id) = &self.event_id {
            let mut counters = self.shared.counters.lock().expect("receiver counters");
            if let Some(n) = counters.in_flight.get_mut(id) {
                *n -= 1;
            }
        }
    }
}

async fn handle(shared: Arc<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let event_id = json["event_id"].as_str().map(str::to_owned);
    let path = uri.path().to_owned();

    let nth = {
        let mut counters = shared.counters.lock().expect("receiver counters");
        counters.received.push(Received {
            path: path.clone(),
            headers,
            body,
            event_id: event_id.clone(),
        });
        match &event_id {
            Some(id) => {
                let now = {
                    let n = counters.in_flight.entry(id.clone()).or_default();
                    *n += 1;
                    *n
                };
                let most = counters.most_in_flight.entry(id.clone()).or_default();
                *most = (*most).max(now);
                let seen = counters.per_event.entry(id.clone()).or_default();
                *seen += 1;
                *seen
            }
            None => 1,
        }
    };
    let _guard = InFlight {
        shared: shared.clone(),
        event_id: event_id.clone(),
    };

    let reply = (shared.plan)(&Call {
        path,
        event_id,
        nth,
        json,
    });
    respond(reply).await
}

async fn respond(reply: Reply) -> Response {
    let status = |code: u16| StatusCode::from_u16(code).expect("a valid status");
    match reply {
        Reply::Status(code) => status(code).into_response(),
        Reply::Redirect(code, location) => (status(code), [("location", location)]).into_response(),
        Reply::After(pause, code) => {
            tokio::time::sleep(pause).await;
            status(code).into_response()
        }
        Reply::Huge(len) => {
            const CHUNK: usize = 64 * 1024;
            let chunks = (0..len.div_ceil(CHUNK)).map(move |i| {
                let size = CHUNK.min(len - i * CHUNK);
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; size]))
            });
            Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
    }
}

/// Accepts connections, reads what the client sends, then resets the
/// connection (RST, not a clean close) without answering.
pub struct Resetter {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Resetter {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the resetter can listen");
        let addr = listener.local_addr().expect("a local address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer))
                            .await;
                    // A zero linger makes the close send RST at once; only
                    // a non-zero linger would block the thread on drop.
                    #[allow(deprecated)]
                    let _ = stream.set_linger(Some(Duration::ZERO));
                    drop(stream);
                });
            }
        });
        Self {
            addr,
            accepted,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Resetter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
