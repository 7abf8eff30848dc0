//! `hookgate demo`: the whole delivery path on realistic data, no set-up.
//!
//! It starts a server on a fresh SQLite database in a temporary directory,
//! and a local receiver that verifies the signature of every request it
//! gets. Through the real API it registers an organisation and two
//! endpoints with different subscriptions, then replays the lifecycle of a
//! few withdrawals and deposits: created, updated while confirming with a
//! rising `confirmed_num`, then succeeded or failed. One endpoint fails its
//! first requests, so retries show. Retry gaps are short so the run ends
//! within seconds. It exits 0 only when every published event was
//! delivered and every delivered request verified.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hookgate_protocol::signing::cobo_v2;
use hookgate_server::settings::Settings;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::client::ApiClient;

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

/// Requests the flaky endpoint refuses before it recovers.
const FLAKY_FAILURES: u32 = 6;

/// Attempts a callback message gets in the demo before it ends `Failed`.
const DEMO_CALLBACK_ATTEMPTS: u32 = 4;

/// Above this amount the demo's approval service denies a withdrawal.
const APPROVAL_LIMIT: f64 = 10_000.0;

/// Longest the demo waits for deliveries to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::init_logging(if args.verbose { "info" } else { "warn" });

    let data_dir = std::env::temp_dir().join(format!("hookgate-demo-{}", uuid::Uuid::new_v4()));
    let settings = demo_settings(&data_dir, args.port);
    let server = hookgate_server::start(settings)
        .await
        .context("starting the server")?;
    let base = format!("http://{}", server.addr);

    let receiver = Arc::new(Receiver::default());
    let receiver_addr = receiver.clone().serve().await?;
    let admin = ApiClient::new(&base, &server.admin_token);

    println!("Hookgate demo");
    println!("  server    {base}  (SQLite in {})", data_dir.display());
    println!("  receiver  http://{receiver_addr}  (verifies every signature)");

    let org = admin
        .post("/producer/orgs", &json!({"name": "Demo Exchange"}))
        .await?;
    let org_id = text(&org["org_id"])?;
    let key = admin
        .post(
            &format!("/producer/orgs/{org_id}/api_keys"),
            &json!({"name": "demo"}),
        )
        .await?;
    let org_client = admin.with_token(&text(&key["secret"])?);

    let public_key = org_client.get("/v2/webhooks/public_key").await?;
    let public_key = cobo_v2::parse_public_key(&text(&public_key["public_key"])?)?;
    receiver.key.set(public_key).ok();

    let endpoints = [
        DemoEndpoint::register(
            &org_client,
            "orders service",
            format!("http://{receiver_addr}/orders"),
            &ALL_TRANSACTION_TYPES,
        )
        .await?,
        DemoEndpoint::register(
            &org_client,
            "ledger (fails at first)",
            format!("http://{receiver_addr}/ledger"),
            &[
                "wallets.transaction.succeeded",
                "wallets.transaction.failed",
            ],
        )
        .await?,
    ];

    let started = Instant::now();
    let published = publish_lifecycles(&admin, &org_id).await?;
    println!("  published {published} occurrences; waiting for deliveries to settle...");
    settle(&org_client, &endpoints).await?;

    let mut report = Vec::new();
    for endpoint in &endpoints {
        report.push(endpoint.tally(&org_client).await?);
    }
    let mut healthy = print_report(&report, &receiver, started.elapsed());

    let approvals = ask_for_approvals(&admin, &org_client, &org_id, &key, receiver_addr).await?;
    healthy &= print_approvals(&approvals);

    if args.keep_running {
        println!();
        println!("The server keeps running. Try:");
        println!(
            "  curl -H 'Authorization: Bearer {}' {base}/v2/webhooks/endpoints",
            text(&key["secret"])?
        );
        println!("  admin token (producer surface): {}", server.admin_token);
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
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
    settings.delivery.callback_retry_ms = vec![100, 200, 300];
    settings.delivery.callback_max_attempts = DEMO_CALLBACK_ATTEMPTS;
    settings
}

fn text(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .context("the server's answer lacks an expected field")
}

const ALL_TRANSACTION_TYPES: [&str; 4] = [
    "wallets.transaction.created",
    "wallets.transaction.updated",
    "wallets.transaction.succeeded",
    "wallets.transaction.failed",
];

/// One registered endpoint and what it subscribed to.
struct DemoEndpoint {
    name: &'static str,
    endpoint_id: String,
    subscribed: Vec<&'static str>,
}

/// What one endpoint's events came to.
struct Tally {
    name: &'static str,
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
        url: String,
        types: &[&'static str],
    ) -> anyhow::Result<Self> {
        let body = json!({"url": url, "subscribed_events": types, "description": name});
        let endpoint = client.post("/v2/webhooks/endpoints", &body).await?;
        Ok(Self {
            name,
            endpoint_id: text(&endpoint["endpoint_id"])?,
            subscribed: types.to_vec(),
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
            subscribed: if self.subscribed.len() == ALL_TRANSACTION_TYPES.len() {
                "all transaction events".into()
            } else {
                self.subscribed
                    .iter()
                    .map(|t| t.rsplit('.').next().unwrap_or(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            events: events.len(),
            delivered: 0,
            retried: 0,
            failed: 0,
            event_ids: Vec::new(),
        };
        for event in &events {
            let event_id = text(&event["event_id"])?;
            match event["status"].as_str() {
                Some("Success") => tally.delivered += 1,
                Some("Failed") => tally.failed += 1,
                _ => {}
            }
            let path = format!(
                "/v2/webhooks/endpoints/{}/events/{event_id}/logs",
                self.endpoint_id
            );
            let logs = client.get(&path).await?;
            if logs["data"]
                .as_array()
                .is_some_and(|attempts| attempts.len() > 1)
            {
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

/// Publishes the lifecycle of three withdrawals and two deposits; returns
/// how many occurrences were published.
async fn publish_lifecycles(admin: &ApiClient, org_id: &str) -> anyhow::Result<usize> {
    let template = hookgate_protocol::samples::sample_data(
        hookgate_protocol::catalogue::find("wallets.transaction.updated").expect("core type"),
    );
    let plans = [
        ("Withdrawal", "ETH", "ETH_USDT", "1250.75", true),
        ("Withdrawal", "ETH", "ETH_USDT", "842.10", false),
        ("Withdrawal", "TRON", "TRON_USDT", "19.99", true),
        ("Deposit", "BTC", "BTC", "0.0421735", true),
        ("Deposit", "BTC", "BTC", "0.5", false),
    ];

    let mut tasks = Vec::new();
    for (kind, chain, token, amount, succeeds) in plans {
        let admin = admin.clone();
        let org_id = org_id.to_owned();
        let mut tx = template.clone();
        shape_transaction(&mut tx, kind, chain, token, amount);
        tasks.push(tokio::spawn(async move {
            publish_one_lifecycle(&admin, &org_id, tx, succeeds).await
        }));
    }

    let mut published = 0;
    for task in tasks {
        published += task.await.context("a publishing task failed")??;
    }
    Ok(published)
}

fn shape_transaction(
    tx: &mut Map<String, Value>,
    kind: &str,
    chain: &str,
    token: &str,
    amount: &str,
) {
    let mut rng = rand::thread_rng();
    let cobo_id: String = (0..32)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect();
    let now = hookgate_server::now_ms();
    tx.insert(
        "transaction_id".into(),
        json!(uuid::Uuid::new_v4().to_string()),
    );
    tx.insert("cobo_id".into(), json!(cobo_id));
    tx.insert(
        "request_id".into(),
        json!(format!("demo-{}", &uuid::Uuid::new_v4().to_string()[..8])),
    );
    tx.insert("type".into(), json!(kind));
    tx.insert("chain_id".into(), json!(chain));
    tx.insert("token_id".into(), json!(token));
    tx.insert(
        "initiator_type".into(),
        json!(if kind == "Deposit" { "External" } else { "API" }),
    );
    tx.insert("created_timestamp".into(), json!(now));
    tx.insert("updated_timestamp".into(), json!(now));
    if let Some(output) = tx
        .get_mut("destination")
        .and_then(|d| d.get_mut("account_output"))
    {
        output["amount"] = json!(amount);
    }
}

async fn publish_one_lifecycle(
    admin: &ApiClient,
    org_id: &str,
    mut tx: Map<String, Value>,
    succeeds: bool,
) -> anyhow::Result<usize> {
    let mut steps: Vec<(&str, &str, &str, u64)> = vec![("created", "Submitted", "", 0)];
    for confirmed in 1..=3 {
        steps.push((
            "updated",
            "Confirming",
            "PendingBlockConfirmations",
            confirmed,
        ));
    }
    steps.push(if succeeds {
        ("succeeded", "Completed", "", 12)
    } else {
        ("failed", "Failed", "FailedOnChain", 3)
    });

    for (step, status, sub_status, confirmed) in &steps {
        tx.insert("status".into(), json!(status));
        tx.insert("sub_status".into(), json!(sub_status));
        tx.insert("confirmed_num".into(), json!(confirmed));
        tx.insert("updated_timestamp".into(), json!(hookgate_server::now_ms()));
        let body = json!({
            "org_id": org_id,
            "type": format!("wallets.transaction.{step}"),
            "data": tx,
            "idempotency_key": format!("{}-{step}-{confirmed}", tx["transaction_id"].as_str().unwrap_or("")),
        });
        admin.post("/producer/v2/events", &body).await?;
    }
    Ok(steps.len())
}

/// The demo's receiver: verifies every request, records what it got.
#[derive(Default)]
struct Receiver {
    key: OnceLock<cobo_v2::PublicKey>,
    verified: AtomicU64,
    rejected: AtomicU64,
    flaky_refusals: AtomicU32,
    received: Mutex<HashMap<String, HashSet<String>>>,
}

impl Receiver {
    async fn serve(self: Arc<Self>) -> anyhow::Result<SocketAddr> {
        let app = Router::new()
            .route("/orders", post(|s, h, b| receive(s, h, b, "orders", false)))
            .route("/ledger", post(|s, h, b| receive(s, h, b, "ledger", true)))
            .route("/approvals", post(approve))
            .with_state(self);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(addr)
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
    endpoint: &'static str,
    flaky: bool,
) -> StatusCode {
    if flaky && receiver.flaky_refusals.fetch_add(1, Ordering::SeqCst) < FLAKY_FAILURES {
        return StatusCode::SERVICE_UNAVAILABLE;
    }

    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let verified = receiver.key.get().is_some_and(|key| {
        cobo_v2::verify(
            key,
            &body,
            header("biz-timestamp"),
            header("biz-resp-signature"),
        )
        .is_ok()
    });
    if !verified {
        receiver.rejected.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    receiver.verified.fetch_add(1, Ordering::SeqCst);

    let event_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|event| event["event_id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut received = receiver.received.lock().expect("receiver lock");
    received
        .entry(endpoint.to_owned())
        .or_default()
        .insert(event_id);
    StatusCode::OK
}

/// Prints the table; returns whether every event is accounted for.
fn print_report(report: &[Tally], receiver: &Receiver, elapsed: Duration) -> bool {
    println!();
    println!(
        "  {:<26} {:<28} {:>9} {:>9} {:>7} {:>6}",
        "endpoint", "subscribed", "published", "delivered", "retried", "failed"
    );
    let mut totals = (0, 0, 0, 0);
    for t in report {
        println!(
            "  {:<26} {:<28} {:>9} {:>9} {:>7} {:>6}",
            t.name, t.subscribed, t.events, t.delivered, t.retried, t.failed
        );
        totals = (
            totals.0 + t.events,
            totals.1 + t.delivered,
            totals.2 + t.retried,
            totals.3 + t.failed,
        );
    }
    println!(
        "  {:<26} {:<28} {:>9} {:>9} {:>7} {:>6}",
        "total", "", totals.0, totals.1, totals.2, totals.3
    );

    let verified = receiver.verified.load(Ordering::SeqCst);
    let rejected = receiver.rejected.load(Ordering::SeqCst);
    println!();
    println!("  signatures verified by the receiver: {verified} ({rejected} failed to verify)");

    let received = receiver.received.lock().expect("receiver lock");
    let missing: usize = report
        .iter()
        .zip(["orders", "ledger"])
        .map(|(t, name)| {
            let got = received.get(name);
            t.event_ids
                .iter()
                .filter(|id| !got.is_some_and(|g| g.contains(*id)))
                .count()
        })
        .sum();

    let healthy = rejected == 0 && missing == 0 && totals.0 == totals.1;
    if healthy {
        println!(
            "  every published event was delivered and verified, in {:.1}s",
            elapsed.as_secs_f64()
        );
    } else {
        println!(
            "  NOT ACCOUNTED FOR: {missing} events never reached the receiver verified, \
             {} not delivered, {rejected} bad signatures",
            totals.0 - totals.1
        );
    }
    healthy
}

/// The demo's approval service: approves withdrawals up to
/// [`APPROVAL_LIMIT`], denies larger ones, and refuses anything unsigned.
async fn approve(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let verified = receiver.key.get().is_some_and(|key| {
        cobo_v2::verify(
            key,
            &body,
            header("biz-timestamp"),
            header("biz-resp-signature"),
        )
        .is_ok()
    });
    if !verified {
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }

    let transaction: Value = serde_json::from_slice(&body).unwrap_or_default();
    let amount = transaction["destination"]["account_output"]["amount"]
        .as_str()
        .and_then(|a| a.parse::<f64>().ok())
        .unwrap_or(f64::INFINITY);
    if amount <= APPROVAL_LIMIT {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::OK, "deny")
    }
}

/// One approval asked in the demo and what came of it.
struct Approval {
    what: String,
    expected: &'static str,
    status: String,
    proceed: bool,
}

/// Links callback endpoints to two API keys (one answered by the demo's
/// approval service, one whose service is down) and asks about three
/// withdrawals.
async fn ask_for_approvals(
    admin: &ApiClient,
    org_client: &ApiClient,
    org_id: &str,
    payouts_key: &Value,
    receiver_addr: SocketAddr,
) -> anyhow::Result<Vec<Approval>> {
    let payouts_key_id = text(&payouts_key["api_key_id"])?;
    org_client
        .post(
            "/v2/developers/callback_endpoints",
            &json!({"url": format!("http://{receiver_addr}/approvals"),
                    "api_key_id": payouts_key_id, "description": "risk engine"}),
        )
        .await?;

    let treasury_key = admin
        .post(
            &format!("/producer/orgs/{org_id}/api_keys"),
            &json!({"name": "treasury bot"}),
        )
        .await?;
    let treasury_key_id = text(&treasury_key["api_key_id"])?;
    let closed_port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.local_addr()?.port()
    };
    org_client
        .post(
            "/v2/developers/callback_endpoints",
            &json!({"url": format!("http://127.0.0.1:{closed_port}/approvals"),
                    "api_key_id": treasury_key_id, "description": "service that is down"}),
        )
        .await?;

    let template = hookgate_protocol::samples::sample_data(
        hookgate_protocol::catalogue::find("wallets.transaction.created").expect("core type"),
    );
    let cases = [
        (
            payouts_key_id.as_str(),
            "1250.75",
            "Approved",
            "payout of 1,250.75 USDT",
        ),
        (
            payouts_key_id.as_str(),
            "250000",
            "Denied",
            "payout of 250,000 USDT (over the limit)",
        ),
        (
            treasury_key_id.as_str(),
            "99.5",
            "Failed",
            "payout of 99.5 USDT, approver down",
        ),
    ];

    let mut approvals = Vec::new();
    for (api_key_id, amount, expected, what) in cases {
        let mut tx = template.clone();
        tx.remove("data_type");
        shape_transaction(&mut tx, "Withdrawal", "ETH", "ETH_USDT", amount);
        tx.insert("status".into(), json!("PendingAuthorization"));
        tx.insert("sub_status".into(), json!("PendingDoubleCheck"));
        let asked = admin
            .post(
                "/producer/v2/callbacks",
                &json!({"org_id": org_id, "api_key_id": api_key_id, "transaction": tx,
                        "wait_ms": 15_000}),
            )
            .await?;
        approvals.push(Approval {
            what: what.to_owned(),
            expected,
            status: text(&asked["status"])?,
            proceed: asked["proceed"].as_bool().unwrap_or(false),
        });
    }
    Ok(approvals)
}

/// Prints the approvals; returns whether each ended as expected.
fn print_approvals(approvals: &[Approval]) -> bool {
    println!();
    println!("  approval callbacks (the customer's answer decides; silence never approves)");
    let mut all_expected = true;
    for a in approvals {
        let verdict = if a.proceed { "goes ahead" } else { "blocked" };
        let note = if a.status == "Failed" {
            format!(" after {DEMO_CALLBACK_ATTEMPTS} unanswered attempts")
        } else {
            String::new()
        };
        println!("  {:<44} {:<9} {verdict}{note}", a.what, a.status);
        all_expected &= a.status == a.expected && a.proceed == (a.expected == "Approved");
    }
    if !all_expected {
        println!("  NOT AS EXPECTED: an approval ended otherwise than its case says");
    }
    all_expected
}
