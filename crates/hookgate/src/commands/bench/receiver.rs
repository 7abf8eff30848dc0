//! The benchmark's receiver: as fast as a loopback HTTP server can be, and
//! exact about what it got.
//!
//! Each event carries its sequence number in `data.bench_seq`; the receiver
//! finds it with a byte search (no JSON parsing on the hot path) and stamps
//! the first receipt of each (sequence, endpoint) pair in a preallocated
//! table of atomics. Later receipts of the same pair count as duplicates.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

/// Receipt times, nanoseconds after `origin` (0: not yet received).
pub struct Receipts {
    origin: Instant,
    endpoints: usize,
    first_seen: Vec<AtomicU64>,
    /// Requests that carried a pair already received.
    pub duplicates: AtomicU64,
    /// Requests received in all.
    pub requests: AtomicU64,
}

impl Receipts {
    /// Room for `events` sequence numbers times `endpoints`.
    pub fn new(origin: Instant, events: usize, endpoints: usize) -> Self {
        Self {
            origin,
            endpoints,
            first_seen: (0..events * endpoints).map(|_| AtomicU64::new(0)).collect(),
            duplicates: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    fn record(&self, seq: usize, endpoint: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = self.first_seen.get(seq * self.endpoints + endpoint) else {
            return;
        };
        let now = self.origin.elapsed().as_nanos().max(1) as u64;
        if slot
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// When `seq` reached `endpoint`, nanoseconds after the origin.
    pub fn received_at(&self, seq: usize, endpoint: usize) -> Option<u64> {
        let ns = self.first_seen[seq * self.endpoints + endpoint].load(Ordering::Relaxed);
        (ns != 0).then_some(ns)
    }

    /// Distinct (sequence, endpoint) pairs received.
    pub fn distinct(&self) -> usize {
        self.first_seen
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != 0)
            .count()
    }
}

/// Serves `POST /r/{endpoint}` on a free loopback port.
pub async fn serve(receipts: Arc<Receipts>) -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route("/r/{endpoint}", post(receive))
        .with_state(receipts);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn receive(
    State(receipts): State<Arc<Receipts>>,
    Path(endpoint): Path<usize>,
    body: Bytes,
) -> StatusCode {
    match sequence_of(&body) {
        Some(seq) => {
            receipts.record(seq, endpoint);
            StatusCode::OK
        }
        None => StatusCode::BAD_REQUEST,
    }
}

/// The number after `"bench_seq":` in `body`.
pub fn sequence_of(body: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"bench_seq\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&body[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sequence_number() {
        assert_eq!(
            sequence_of(br#"{"data":{"a":1,"bench_seq":4711,"b":2}}"#),
            Some(4711)
        );
        assert_eq!(sequence_of(br#"{"data":{}}"#), None);
    }

    #[test]
    fn counts_each_pair_once() {
        let receipts = Receipts::new(Instant::now(), 4, 2);
        receipts.record(1, 1);
        receipts.record(1, 1);
        receipts.record(3, 0);
        assert_eq!(receipts.distinct(), 2);
        assert_eq!(receipts.duplicates.load(Ordering::Relaxed), 1);
        assert!(receipts.received_at(1, 1).is_some());
        assert!(receipts.received_at(1, 0).is_none());
    }
}
