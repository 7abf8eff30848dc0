//! Shared pieces of the integration tests.
//!
//! - [`server`]: a real Hookgate server started in process on loopback, with
//!   a fresh data directory, and a client of its HTTP API;
//! - [`receiver`]: a real HTTP receiver whose answers each test programs,
//!   and a listener that resets every connection;
//! - here: temporary directories, polling with a deadline, and event data.
//!
//! Tests never assert timing: they poll with [`eventually`] until what they
//! wait for is true, up to a generous deadline, so that a slow machine makes
//! them slower but not flaky.

#![allow(dead_code)]

pub mod callbacks;
pub mod capture;
pub mod cli;
pub mod database;
pub mod receiver;
pub mod server;
pub mod waas1;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Longest wait for anything a test expects to happen.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Pause between two looks.
const POLL: Duration = Duration::from_millis(25);

/// Polls `probe` until it gives a value, and panics naming `what` once
/// [`DEADLINE`] has passed.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(DEADLINE, what, probe).await
}

/// [`eventually`] with its own deadline.
pub async fn eventually_within<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < deadline,
            "gave up after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory.
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("hookgate-{label}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("the temporary directory can be created");
        Self { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        database::drop_databases_under(&self.path);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A `Transaction` payload with every field Cobo's SDK requires.
pub fn transaction(transaction_id: &str) -> Value {
    json!({
        "transaction_id": transaction_id,
        "cobo_id": format!("cobo-{transaction_id}"),
        "request_id": format!("request-{transaction_id}"),
        "wallet_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "type": "Withdrawal",
        "status": "Submitted",
        "chain_id": "ETH",
        "token_id": "ETH",
        "initiator_type": "API",
        "source": {"source_type": "Org-Controlled", "wallet_id": "f47ac10b"},
        "destination": {"destination_type": "Address", "account_output": {"address": "0xabc"}},
        "created_timestamp": 1_701_396_866_000_i64,
        "updated_timestamp": 1_701_396_866_000_i64
    })
}

/// A payload for a type the server carries through unchanged.
pub fn wallet_info(name: &str) -> Value {
    json!({"wallet_id": format!("wallet-{name}"), "name": name, "wallet_type": "Custodial"})
}

/// Event types used across the tests.
pub const TX_CREATED: &str = "wallets.transaction.created";
pub const TX_UPDATED: &str = "wallets.transaction.updated";
pub const WALLET_CREATED: &str = "wallets.created";
