//! `hookgate demo`: the whole delivery path on realistic data, no set-up.
//!
//! It starts a server on a fresh SQLite database in a temporary directory
//! and a local receiver ([`receiver`]) that verifies the signature of every
//! request with the receiver library. Through the real API it registers an
//! organisation with two 2.0 endpoints of different subscriptions and a
//! WaaS 1.0 notification URL, replays the lifecycles of a few withdrawals
//! and deposits ([`lifecycles`]), and asks for three approvals
//! ([`approvals`]). One endpoint fails its first requests, so retries show;
//! retry gaps are short, so the run ends within seconds. It exits 0 only
//! when every published event was delivered and verified, every outcome was
//! booked once, and every approval ended as expected.

mod approvals;
mod lifecycles;
mod receiver;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hookgate_server::settings::Settings;
use serde_json::{json, Value};

use crate::client::ApiClient;
use receiver::Receiver;

/// Options of `hookgate demo`.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  hookgate demo\n  hookgate demo --keep-running --port 8080")]
pub struct Args {
    /// Keep the server (and the demo receiver) running afterwards, for
    /// exploring with the API.
    #[arg(long)]
    keep_running: bool,
    /// Port of the server (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Show the server's log.
    #[arg(long, short)]
    verbose: bool,
}

/// Longest the demo waits for deliveries to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

const ALL_TRANSACTION_TYPES: [&str; 4] = [
    "wallets.transaction.created",
    "wallets.transaction.updated",
    "wallets.transaction.succeeded",
    "wallets.transaction.failed",
];

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::init_logging(if args.verbose { "info" } else { "warn" });

    let data_dir = std::env::temp_dir().join(format!("hookgate-demo-{}", uuid::Uuid::new_v4()));
    let server = hookgate_server::start(demo_settings(&data_dir, args.port))
        .await
        .context("starting the server")?;
    let base = format!("http://{}", server.addr);
    let receiver = Arc::new(Receiver::default());
    let receiver_addr = receiver.clone().serve().await?;

    println!("Hookgate demo");
    println!("  server    {base}  (SQLite in {})", data_dir.display());
    println!("  receiver  http://{receiver_addr}  (verifies every signature)");

    let admin = ApiClient::new(&base, &server.admin_token);
    let org = admin
        .post("/producer/orgs", &json!({"name": "Demo Exchange"}))
        .await?;
    let org_id = text(&org["org_id"])?;
    let key_path = format!("/producer/orgs/{org_id}/api_keys");
    let key = admin
        .post(&key_path, &json!({"name": "payouts bot"}))
        .await?;
    let org_client = admin.with_token(&text(&key["secret"])?);

    let keys = org_client.get("/v2/webhooks/public_key").await?;
    receiver.trust(
        &text(&keys["keys"][0]["public_key"])?,
        &text(&keys["keys"][1]["public_key"])?,
    )?;

    let endpoints = register_endpoints(&org_client, receiver_addr).await?;
    let started = Instant::now();
    let published = lifecycles::publish_all(&admin, &org_id).await?;
    println!(
        "  published {} occurrences and {} WaaS 1.0 notifications; waiting for deliveries...",
        published.occurrences, published.waas1_notifications
    );
    settle(&org_client, &endpoints).await?;

    let mut tallies = Vec::new();
    for endpoint in &endpoints {
        tallies.push(endpoint.tally(&org_client).await?);
    }
    let mut healthy = print_deliveries(&tallies, &receiver, started.elapsed());
    healthy &= print_bookings(&receiver, published.waas1_notifications);

    let key_id = text(&key["api_key_id"])?;
    let asked = approvals::ask(&admin, &org_client, &org_id, &key_id, receiver_addr).await?;
    healthy &= approvals::print(&asked);

    if args.keep_running {
        println!();
        println!("The server keeps running. Try:");
        println!(
            "  curl -H 'Authorization: Bearer {}' {base}/v2/webhooks/endpoints",
            text(&key["secret"])?
        );
        println!("  admin token (producer surface): {}", server.admin_token);
        println!("Press Ctrl-C (or send SIGTERM) to stop; the temporary data is removed.");
        super::serve::shutdown_signal().await;
    }

    server.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn demo_settings(data_dir: &std::path::Path, port: u16) -> Settings {
    let mut settings = Settings {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir: data_dir.to_owned(),
        ..Settings::default()
    };
    settings.network.allow_cidrs = vec!["127.0.0.0/8".parse().expect("a valid CIDR")];
    settings.delivery.webhook_retry_ms = vec![200, 400, 800, 1600];
    settings.delivery.waas1_notification_retry_ms = vec![200, 400, 800, 1600];
    settings.delivery.callback_retry_ms = vec![100, 200, 300];
    settings.delivery.callback_max_attempts = approvals::DEMO_CALLBACK_ATTEMPTS;
    settings
}

/// A string field of an API answer.
fn text(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .context("the server's answer lacks an expected field")
}

/// Registers the two 2.0 endpoints and the 1.0 notification URL.
async fn register_endpoints(
    client: &ApiClient,
    receiver_addr: SocketAddr,
) -> anyhow::Result<Vec<DemoEndpoint>> {
    let orders = DemoEndpoint::register(
        client,
        "orders service",
        "orders",
        format!("http://{receiver_addr}/orders"),
        &ALL_TRANSACTION_TYPES,
    )
    .await?;
    let ledger = DemoEndpoint::register(
        client,
        "ledger (fails at first)",
        "ledger",
        format!("http://{receiver_addr}/ledger"),
        &[
            "wallets.transaction.succeeded",
            "wallets.transaction.failed",
        ],
    )
    .await?;

    let waas1 = client
        .put(
            "/v2/developers/waas1_callbacks",
            &json!({"transaction_notification_url": format!("http://{receiver_addr}/waas1")}),
        )
        .await?;
    let waas1 = DemoEndpoint {
        name: "WaaS 1.0 notifications",
        route: "waas1",
        endpoint_id: text(&waas1["transaction_notification"]["endpoint_id"])?,
        subscribed: "final outcomes (1.0)".into(),
    };
    Ok(vec![orders, ledger, waas1])
}

/// One registered endpoint.
struct DemoEndpoint {
    name: &'static str,
    route: &'static str,
    endpoint_id: String,
    subscribed: String,
}

/// What one endpoint's events came to.
struct Tally {
    name: &'static str,
    route: &'static str,
    subscribed: String,
    events: usize,
    delivered: usize,
    retried: usize,
    failed: usize,
    event_ids: Vec<String>,
}

impl DemoEndpoint {
    async fn register(
        client: &ApiClient,
        name: &'static str,
        route: &'static str,
        url: String,
        types: &[&str],
    ) -> anyhow::Result<Self> {
        let body = json!({"url": url, "subscribed_events": types, "description": name});
        let endpoint = client.post("/v2/webhooks/endpoints", &body).await?;
        let subscribed = if types.len() == ALL_TRANSACTION_TYPES.len() {
            "all transaction events".to_owned()
        } else {
            let short: Vec<&str> = types
                .iter()
                .map(|t| t.rsplit('.').next().unwrap_or(t))
                .collect();
            short.join(", ")
        };
        Ok(Self {
            name,
            route,
            endpoint_id: text(&endpoint["endpoint_id"])?,
            subscribed,
        })
    }

    async fn events(&self, client: &ApiClient, filter: &str) -> anyhow::Result<Vec<Value>> {
        let mut events = Vec::new();
        let mut after = String::new();
        loop {
            let path = format!(
                "/v2/webhooks/endpoints/{}/events?limit=50&after={after}{filter}",
                self.endpoint_id
            );
            let page = client.get(&path).await?;
            events.extend(page["data"].as_array().cloned().unwrap_or_default());
            after = page["pagination"]["after"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if after.is_empty() {
                return Ok(events);
            }
        }
    }

    async fn tally(&self, client: &ApiClient) -> anyhow::Result<Tally> {
        let events = self.events(client, "").await?;
        let mut tally = Tally {
            name: self.name,
            route: self.route,
            subscribed: self.subscribed.clone(),
            events: events.len(),
            delivered: 0,
            retried: 0,
            failed: 0,
            event_ids: Vec::new(),
        };
        for event in &events {
            let event_id = text(&event["event_id"])
                .or_else(|_| text(&event["id"]))
                .or_else(|_| text(&event["cobo_id"]))?;
            match event["status"].as_str() {
                Some("Success") => tally.delivered += 1,
                Some("Failed") => tally.failed += 1,
                _ => {}
            }
            let logs = client
                .get(&format!(
                    "/v2/webhooks/endpoints/{}/events/{}/logs",
                    self.endpoint_id,
                    text(&event["event_id"]).unwrap_or_default()
                ))
                .await;
            if logs.is_ok_and(|l| l["data"].as_array().is_some_and(|a| a.len() > 1)) {
                tally.retried += 1;
            }
            tally.event_ids.push(event_id);
        }
        Ok(tally)
    }
}

/// Waits until no event of any endpoint is still `Retrying`.
async fn settle(client: &ApiClient, endpoints: &[DemoEndpoint]) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let mut pending = 0;
        for endpoint in endpoints {
            pending += endpoint.events(client, "&status=Retrying").await?.len();
        }
        if pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{pending} events still Retrying after {}s",
                SETTLE_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prints the delivery table; returns whether every event is accounted for.
fn print_deliveries(tallies: &[Tally], receiver: &Receiver, elapsed: Duration) -> bool {
    let row = |name: &str, subscribed: &str, counts: [usize; 4]| {
        let [events, delivered, retried, failed] = counts;
        println!(
            "  {name:<26} {subscribed:<28} {events:>9} {delivered:>9} {retried:>7} {failed:>6}"
        );
    };
    println!();
    println!(
        "  {:<26} {:<28} {:>9} {:>9} {:>7} {:>6}",
        "endpoint", "subscribed", "published", "delivered", "retried", "failed"
    );
    let mut totals = [0; 4];
    for t in tallies {
        let counts = [t.events, t.delivered, t.retried, t.failed];
        row(t.name, &t.subscribed, counts);
        for (total, count) in totals.iter_mut().zip(counts) {
            *total += count;
        }
    }
    row("total", "", totals);

    let verified = receiver.verified.load(Ordering::SeqCst);
    let rejected = receiver.rejected.load(Ordering::SeqCst);
    println!();
    println!("  signatures verified by the receiver: {verified} ({rejected} failed to verify)");

    let missing: usize = {
        let received = receiver.received.lock().expect("lock");
        tallies
            .iter()
            .filter(|t| t.route != "waas1")
            .map(|t| {
                let got = received.get(t.route);
                t.event_ids
                    .iter()
                    .filter(|id| !got.is_some_and(|g| g.contains(*id)))
                    .count()
            })
            .sum()
    };
    let undelivered = totals[0] - totals[1];
    let healthy = rejected == 0 && missing == 0 && undelivered == 0;
    if healthy {
        println!(
            "  every published event was delivered and verified, in {:.1}s",
            elapsed.as_secs_f64()
        );
    } else {
        println!(
            "  NOT ACCOUNTED FOR: {missing} events never reached the receiver, \
             {undelivered} not delivered, {rejected} bad signatures"
        );
    }
    healthy
}

/// Prints how outcomes reported through both generations were booked;
/// returns whether each transaction was booked exactly once.
fn print_bookings(receiver: &Receiver, transactions: usize) -> bool {
    let booked = receiver.booked.lock().expect("lock");
    let duplicates = receiver.duplicates.load(Ordering::SeqCst) as usize;
    let waas1 = receiver.waas1_verified.load(Ordering::SeqCst);
    let first_via = |via: &str| booked.iter().filter(|(_, v)| *v == via).count();

    println!();
    println!("  WaaS 1.0 and 2.0 side by side (deduplicated on the Cobo transaction id)");
    println!(
        "  {transactions} transactions finished: {} reports, {waas1} of them WaaS 1.0 \
         (secp256k1-signed, verified)",
        booked.len() + duplicates
    );
    println!(
        "  booked {} outcomes ({} first seen via 2.0, {} via 1.0), skipped {duplicates} duplicates",
        booked.len(),
        first_via("WaaS 2.0"),
        first_via("WaaS 1.0")
    );
    println!("  (1.0 amounts are in the smallest unit, 2.0 in the main unit: never compared raw)");

    let healthy = booked.len() == transactions && duplicates == transactions;
    if !healthy {
        println!("  NOT AS EXPECTED: each transaction should be booked exactly once");
    }
    healthy
}
