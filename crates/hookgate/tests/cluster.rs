//! Three `hookgate serve` processes on one PostgreSQL database share the
//! deliveries, and one of them dying with deliveries in flight loses none.
//!
//! A steady stream of publishes is spread over the three nodes; the
//! receiver holds every request a moment, so that each node always has
//! attempts in flight, and counts, per event, how many attempts it is
//! serving at once. One node is killed with SIGKILL mid-stream. Then every
//! accepted event must arrive, no event may ever be attempted twice at
//! once, and once the dead node's leases have expired the two survivors
//! must deliver new events about as fast as three did.
//!
//! Needs `HOOKGATE_TEST_DATABASE_URL`; says it is skipped and passes
//! without it.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use support::callbacks::ServeProcess;
use support::database::{drop_database, fresh_database, test_database_url};
use support::server::{ApiClient, ADMIN_TOKEN};
use support::{eventually_within, TempDir, TX_CREATED};

/// How long the receiver holds each request.
const HOLD: Duration = Duration::from_millis(300);
/// Attempt timeout: far above [`HOLD`], so that no attempt times out on a
/// busy machine and is retried while the receiver still holds it (which
/// the receiver would count as an overlap, though the server is right).
const TIMEOUT_MS: u64 = 4_000;
/// Lease of every node: the attempt timeout plus the least margin.
const LEASE_MS: u64 = TIMEOUT_MS + 5_000;

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    in_flight: HashMap<String, usize>,
    overlaps: Vec<String>,
    /// First receipt of each event: (event created, received), Unix ms.
    first: HashMap<String, (i64, i64)>,
    requests: usize,
}

/// Counts an attempt out when its request ends, even when the request is
/// dropped because the node sending it died.
struct InFlight {
    seen: Arc<Mutex<Seen>>,
    event_id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = seen.in_flight.get_mut(&self.event_id) {
            *count -= 1;
        }
    }
}

async fn receive(State(seen): State<Arc<Mutex<Seen>>>, body: Bytes) -> &'static str {
    let envelope: Value = serde_json::from_slice(&body).expect("a JSON envelope");
    let event_id = envelope["event_id"].as_str().expect("event_id").to_owned();
    let created = envelope["created_timestamp"]
        .as_i64()
        .expect("created_timestamp");
    {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.requests += 1;
        let now = hookgate_server::now_ms();
        seen.first.entry(event_id.clone()).or_insert((created, now));
        let count = seen.in_flight.entry(event_id.clone()).or_default();
        *count += 1;
        if *count > 1 {
            seen.overlaps.push(event_id.clone());
        }
    }
    let _counted = InFlight { seen, event_id };
    tokio::time::sleep(HOLD).await;
    "ok"
}

async fn start_receiver(seen: Arc<Mutex<Seen>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(receive)).with_state(seen);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn node_config(dir: &Path, node: usize, database_url: &str) -> std::path::PathBuf {
    let config = dir.join(format!("node-{node}.toml"));
    let text = format!(
        r#"listen = "127.0.0.1:0"
data_dir = {data:?}
database_url = {database_url:?}
database_max_connections = 8
admin_token = "{ADMIN_TOKEN}"
log = "warn"

[delivery]
timeout_ms = {TIMEOUT_MS}
lease_ms = {LEASE_MS}
webhook_retry_ms = [200, 400]
webhook_max_attempts = 10
jitter = 0.0
poll_interval_ms = 100

[network]
allow_cidrs = ["127.0.0.0/8"]
"#,
        data = dir.join("data"),
    );
    std::fs::write(&config, text).expect("config written");
    config
}

/// Publishes one event a `gap`, round robin over `nodes`, for `span`; gives
/// the accepted event ids with the time each publish was sent.
async fn publish_for(
    nodes: &[ApiClient],
    org_id: &str,
    span: Duration,
    gap: Duration,
    first_seq: usize,
) -> Vec<(String, Instant)> {
    let mut accepted = Vec::new();
    let started = Instant::now();
    let mut seq = first_seq;
    while started.elapsed() < span {
        let node = &nodes[seq % nodes.len()];
        let body = json!({"org_id": org_id, "type": TX_CREATED,
                          "data": support::transaction(&format!("tx-{seq}"))});
        let sent = Instant::now();
        let answer = node.post("/producer/v2/events", &body).await;
        if answer.status == 202 {
            for id in ApiClient::event_ids(&answer.json) {
                accepted.push((id, sent));
            }
        }
        seq += 1;
        tokio::time::sleep(gap).await;
    }
    accepted
}

/// Drops the test's database when the test ends, passed or not.
struct DropDatabase {
    admin: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        drop_database(&self.admin, &self.name);
    }
}

fn median_latency(seen: &Seen, events: &[(String, Instant)]) -> i64 {
    let mut latencies: Vec<i64> = events
        .iter()
        .filter_map(|(id, _)| seen.first.get(id).map(|(c, r)| r - c))
        .collect();
    latencies.sort_unstable();
    latencies.get(latencies.len() / 2).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_deliveries_and_survive_losing_one() {
    let Some(admin_url) = test_database_url() else {
        println!("skipped: HOOKGATE_TEST_DATABASE_URL is not set");
        return;
    };
    let (database_url, database) = fresh_database(&admin_url);
    let _database = DropDatabase {
        admin: admin_url.clone(),
        name: database,
    };
    let dir = TempDir::new("cluster");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let hook_url = start_receiver(seen.clone()).await;

    // The first node migrates the database and writes the signing keys the
    // others then share; the others start together.
    let mut nodes = vec![ServeProcess::start(&node_config(
        dir.path(),
        0,
        &database_url,
    ))];
    for n in 1..3 {
        nodes.push(ServeProcess::start(&node_config(
            dir.path(),
            n,
            &database_url,
        )));
    }
    let admins: Vec<ApiClient> = nodes
        .iter()
        .map(|n| ApiClient::new(&n.base, Some(ADMIN_TOKEN)))
        .collect();
    let org = admins[0].new_org().await;
    org.api.create_endpoint(&hook_url, &[TX_CREATED]).await;

    // Three nodes: a steady stream, each node with attempts in flight.
    let gap = Duration::from_millis(40);
    let before = publish_for(&admins, &org.org_id, Duration::from_secs(3), gap, 0).await;

    // One dies with deliveries in flight; publishing goes on to the others.
    let victim = nodes.pop().expect("three nodes");
    let survivors = &admins[..2];
    victim.kill();
    let killed = Instant::now();
    let meanwhile = publish_for(survivors, &org.org_id, Duration::from_secs(2), gap, 10_000).await;

    // Once its leases have expired, the survivors carry the load alone.
    let lease = Duration::from_millis(LEASE_MS);
    tokio::time::sleep((lease + Duration::from_secs(1)).saturating_sub(killed.elapsed())).await;
    let after = publish_for(survivors, &org.org_id, Duration::from_secs(3), gap, 20_000).await;

    let accepted: HashSet<String> = before
        .iter()
        .chain(&meanwhile)
        .chain(&after)
        .map(|(id, _)| id.clone())
        .collect();
    eventually_within(
        Duration::from_secs(60),
        "every accepted event to arrive",
        || {
            let missing = {
                let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                accepted
                    .iter()
                    .filter(|id| !seen.first.contains_key(*id))
                    .count()
            };
            async move { (missing == 0).then_some(()) }
        },
    )
    .await;

    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        seen.overlaps.is_empty(),
        "events attempted twice at once: {:?} ({} requests for {} events)",
        seen.overlaps,
        seen.requests,
        accepted.len()
    );
    let baseline = median_latency(&seen, &before);
    let recovered = median_latency(&seen, &after);
    println!(
        "{} events, {} requests; median latency {baseline} ms with three nodes, \
         {recovered} ms with two after the leases expired",
        accepted.len(),
        seen.requests
    );
    assert!(
        recovered <= (baseline * 4).max(1_500),
        "latency after recovery ({recovered} ms) is far above the baseline ({baseline} ms)"
    );
    drop(seen);
    drop(nodes);
}
