//! The demo's receiver: what a customer's services would run.
//!
//! Every route verifies the signature with the receiver library before
//! looking at the body, and refuses what does not verify:
//!
//! - `/orders` books each transaction outcome (WaaS 2.0 events);
//! - `/ledger` does the same work but refuses its first requests, so that
//!   retries show;
//! - `/waas1` books outcomes reported through WaaS 1.0 notifications;
//!   outcomes are deduplicated on the Cobo transaction id across both
//!   generations, so a transaction reported twice is booked once;
//! - `/approvals` approves withdrawals up to a limit and denies larger ones.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hookgate_receiver::{body, DedupKey, DedupStore, Mark, MemoryDedupStore, Verifier};

/// Requests the flaky endpoint refuses before it recovers.
pub const FLAKY_FAILURES: u32 = 6;

/// Above this amount the approval service denies a withdrawal.
pub const APPROVAL_LIMIT: f64 = 10_000.0;

/// State shared by the routes.
#[derive(Default)]
pub struct Receiver {
    v2: OnceLock<Verifier>,
    v1: OnceLock<Verifier>,
    /// Requests whose signature verified.
    pub verified: AtomicU64,
    /// Requests refused for their signature.
    pub rejected: AtomicU64,
    flaky_refusals: AtomicU32,
    /// Event ids received, by route.
    pub received: Mutex<HashMap<&'static str, HashSet<String>>>,
    bookings: MemoryDedupStore,
    /// Transaction outcomes booked, by generation that reported first.
    pub booked: Mutex<Vec<(String, &'static str)>>,
    /// Reports skipped as already booked.
    pub duplicates: AtomicU64,
    /// WaaS 1.0 notifications whose signature verified.
    pub waas1_verified: AtomicU64,
}

impl Receiver {
    /// Sets the server's public keys, once they are known.
    pub fn trust(&self, v2_public_key: &str, v1_public_key: &str) -> anyhow::Result<()> {
        self.v2.set(Verifier::cobo_v2(v2_public_key)?).ok();
        self.v1.set(Verifier::cobo_v1(v1_public_key)?).ok();
        Ok(())
    }

    /// Serves the routes on a free loopback port.
    pub async fn serve(self: Arc<Self>) -> anyhow::Result<SocketAddr> {
        let app = Router::new()
            .route("/orders", post(|s, h, b| webhook(s, h, b, "orders", false)))
            .route("/ledger", post(|s, h, b| webhook(s, h, b, "ledger", true)))
            .route("/waas1", post(waas1))
            .route("/approvals", post(approve))
            .with_state(self);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(addr)
    }

    fn check(&self, verifier: &OnceLock<Verifier>, headers: &HeaderMap, body: &[u8]) -> bool {
        let verified = verifier
            .get()
            .is_some_and(|v| v.verify(headers, body).is_ok());
        let counter = if verified {
            &self.verified
        } else {
            &self.rejected
        };
        counter.fetch_add(1, Ordering::SeqCst);
        verified
    }

    /// Books a transaction outcome once, whichever generation reports it.
    fn book(&self, key: Option<DedupKey>, via: &'static str) {
        let Some(key @ DedupKey::TransactionState { .. }) = key else {
            return;
        };
        match self.bookings.mark(&key) {
            Ok(Mark::New) => self
                .booked
                .lock()
                .expect("lock")
                .push((key.to_string(), via)),
            Ok(Mark::Duplicate) => {
                self.duplicates.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => eprintln!("demo receiver: booking failed: {e}"),
        }
    }
}

async fn webhook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    raw: Bytes,
    route: &'static str,
    flaky: bool,
) -> StatusCode {
    if flaky && receiver.flaky_refusals.fetch_add(1, Ordering::SeqCst) < FLAKY_FAILURES {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if !receiver.check(&receiver.v2, &headers, &raw) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = body::parse_event(&raw) else {
        return StatusCode::BAD_REQUEST;
    };

    let is_final =
        event.event_type.ends_with(".succeeded") || event.event_type.ends_with(".failed");
    if route == "orders" && is_final {
        receiver.book(DedupKey::for_event_transaction(&event), "WaaS 2.0");
    }
    let mut received = receiver.received.lock().expect("lock");
    received.entry(route).or_default().insert(event.event_id);
    StatusCode::OK
}

async fn waas1(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    raw: Bytes,
) -> (StatusCode, &'static str) {
    if !receiver.check(&receiver.v1, &headers, &raw) {
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    receiver.waas1_verified.fetch_add(1, Ordering::SeqCst);
    let Ok(notification) = body::parse_v1(&raw) else {
        return (StatusCode::BAD_REQUEST, "not a WaaS 1.0 body");
    };
    receiver.book(DedupKey::for_v1(&notification), "WaaS 1.0");
    (StatusCode::OK, "ok")
}

async fn approve(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    raw: Bytes,
) -> (StatusCode, &'static str) {
    if !receiver.check(&receiver.v2, &headers, &raw) {
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    let Ok(transaction) = body::parse_callback(&raw) else {
        return (StatusCode::BAD_REQUEST, "not a transaction");
    };
    let amount = serde_json::to_value(&transaction).ok().and_then(|t| {
        t["destination"]["account_output"]["amount"]
            .as_str()
            .and_then(|a| a.parse::<f64>().ok())
    });
    match amount {
        Some(amount) if amount <= APPROVAL_LIMIT => (StatusCode::OK, "ok"),
        _ => (StatusCode::OK, "deny"),
    }
}
