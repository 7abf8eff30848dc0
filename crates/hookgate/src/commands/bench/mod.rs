//! `hookgate bench`: how much the server carries and how fast events arrive,
//! measured end to end on one machine.
//!
//! The server runs as a child process (`hookgate serve`, SQLite, durable on
//! commit) so that its memory and CPU are its own. With `--database-url` it
//! runs on a scratch PostgreSQL database (created for the run, dropped
//! after it), and with `--nodes N` as N processes sharing that database,
//! the publishing clients spread over them; memory and CPU are then summed
//! over the nodes. The benchmark runs a fast
//! loopback receiver ([`receiver`]) and publishes through the real producer
//! API from concurrent clients, as fast as possible or at a fixed rate.
//! Latency is measured from the moment each publish was *scheduled* (so a
//! stalled server cannot hide its backlog) and from its acknowledgement, to
//! the first receipt. Every run ends with a ledger: published = delivered +
//! pending + failed; a run that does not balance is reported void.

mod receiver;
mod scratch;
mod stats;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::json;
#[cfg(test)]
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::client::ApiClient;
use receiver::Receipts;
use stats::{process_use, rate, summarise, ProcessUse, Summary};

/// Options of `hookgate bench`.
#[derive(clap::Args)]
#[command(after_help = "Scenarios:
  sustained   one endpoint, 1 KiB events, publish and deliver as fast as possible
  fanout      ten endpoints per event
  large       64 KiB events
  latency     a fixed 1,000 events/s, for latency
  publish     deliveries paused: durable publishes alone
  isolation   a healthy endpoint beside one that hangs, at a fixed rate, with a
              backlog for the hung one published first (--retrying)
  backlog     publish a backlog with deliveries paused, restart, measure the drain

Examples:
  hookgate bench --scenario sustained --events 50000
  hookgate bench --scenario latency --rate 1000 --events 10000 --output json
  hookgate bench --scenario backlog --events 1000000
  hookgate bench --scenario sustained --database-url postgres://postgres@127.0.0.1/postgres --nodes 2")]
pub struct Args {
    /// What to measure.
    #[arg(long, default_value = "sustained")]
    scenario: Scenario,
    /// Events (occurrences) to publish; each scenario has its own default.
    #[arg(long)]
    events: Option<usize>,
    /// Publishes per second (default: as fast as possible, except `latency`
    /// and `isolation`: 1000).
    #[arg(long)]
    rate: Option<f64>,
    /// Approximate size of each event body, bytes.
    #[arg(long)]
    size: Option<usize>,
    /// Healthy endpoints subscribed to every event.
    #[arg(long)]
    endpoints: Option<usize>,
    /// Concurrent publishing clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Longest wait for deliveries after the last publish.
    #[arg(long, default_value_t = 600)]
    drain_timeout_secs: u64,
    /// Run on PostgreSQL: a server to create a scratch database
    /// `hookgate_bench_<id>` on (dropped after the run).
    #[arg(long)]
    database_url: Option<String>,
    /// Events published for the hung endpoint alone before the measured
    /// load (`isolation`; default 100000), so that they are pending and
    /// retrying against it all through the measurement.
    #[arg(long)]
    retrying: Option<usize>,
    /// Server processes sharing the database (needs --database-url above 1).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

/// The scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Sustained,
    Fanout,
    Large,
    Latency,
    Publish,
    Isolation,
    Backlog,
}

/// What a scenario runs, once its defaults and the flags are combined.
#[derive(Clone, Debug, Serialize)]
struct Plan {
    scenario: Scenario,
    events: usize,
    rate: Option<f64>,
    size: usize,
    endpoints: usize,
    dead_endpoint: bool,
    retrying: usize,
    concurrency: usize,
    database: &'static str,
    nodes: usize,
}

impl Plan {
    fn from(args: &Args) -> Self {
        use Scenario::*;
        let (events, rate, size, endpoints) = match args.scenario {
            Sustained => (50_000, None, 1024, 1),
            Fanout => (10_000, None, 1024, 10),
            Large => (5_000, None, 64 * 1024, 1),
            Latency => (10_000, Some(1000.0), 1024, 1),
            Publish => (50_000, None, 1024, 1),
            Isolation => (20_000, Some(1000.0), 1024, 1),
            Backlog => (1_000_000, None, 1024, 1),
        };
        Plan {
            scenario: args.scenario,
            events: args.events.unwrap_or(events),
            rate: args.rate.or(rate),
            size: args.size.unwrap_or(size),
            endpoints: args.endpoints.unwrap_or(endpoints).max(1),
            dead_endpoint: args.scenario == Isolation,
            retrying: match args.scenario {
                Isolation => args.retrying.unwrap_or(100_000),
                _ => 0,
            },
            concurrency: args.concurrency,
            database: if args.database_url.is_some() {
                "postgres"
            } else {
                "sqlite"
            },
            nodes: args.nodes,
        }
    }
}

/// Refuses options that cannot make a run, before anything starts.
fn check(args: &Args) -> anyhow::Result<()> {
    use crate::exit::usage;
    if args.events == Some(0) {
        return Err(usage("--events must be at least 1"));
    }
    if args.concurrency == 0 {
        return Err(usage("--concurrency must be at least 1"));
    }
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate >= 0.01) {
            return Err(usage(format!(
                "--rate must be a number of publishes per second, at least 0.01 (got {rate})"
            )));
        }
    }
    if args.retrying.is_some() && args.scenario != Scenario::Isolation {
        return Err(usage("--retrying applies to --scenario isolation only"));
    }
    if args.nodes == 0 {
        return Err(usage("--nodes must be at least 1"));
    }
    if args.nodes > 1 && args.database_url.is_none() {
        return Err(usage(
            "--nodes above 1 needs --database-url: nodes share a PostgreSQL database",
        ));
    }
    Ok(())
}

/// Everything a run measured.
#[derive(Debug, Serialize)]
struct Report {
    plan: Plan,
    publish_seconds: f64,
    publishes_per_second: f64,
    deliveries: usize,
    delivery_seconds: f64,
    deliveries_per_second: f64,
    latency_from_schedule: Summary,
    latency_from_ack: Summary,
    duplicates: u64,
    server: ProcessUse,
    ledger: Ledger,
}

/// published = delivered + pending + failed, for the healthy endpoints.
#[derive(Debug, Serialize)]
struct Ledger {
    published: usize,
    delivered: usize,
    pending: u64,
    failed: u64,
    balanced: bool,
}

const ADMIN_TOKEN: &str = "bench-admin-token-not-secret";

pub async fn run(context: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    check(&args)?;
    let plan = Plan::from(&args);
    let scratch = match &args.database_url {
        Some(url) => Some(scratch::Database::create(url).await?),
        None => None,
    };
    let workdir = std::env::temp_dir().join(format!("hookgate-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&workdir)?;
    let database_url = scratch.as_ref().map(|db| db.url.clone());
    // Interrupted, the run is dropped: its server processes are killed with
    // it (they are started to die with their handles), and the scratch
    // files and database go as after any other run.
    let outcome = tokio::select! {
        outcome = run_plan(&plan, &workdir, &args, database_url.as_deref()) => Some(outcome),
        _ = super::serve::shutdown_signal() => None,
    };
    let _ = std::fs::remove_dir_all(&workdir);
    if let Some(scratch) = scratch {
        scratch.drop_now().await;
    }
    let Some(outcome) = outcome else {
        eprintln!("interrupted: the server under test was stopped and its files removed");
        return Ok(ExitCode::from(130));
    };

    let report = outcome?;
    if context.output == crate::output::Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(if report.ledger.balanced {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_plan(
    plan: &Plan,
    workdir: &Path,
    args: &Args,
    database_url: Option<&str>,
) -> anyhow::Result<Report> {
    let origin = Instant::now();
    let receipts = Arc::new(Receipts::new(origin, plan.events, plan.endpoints));
    let receiver_addr = receiver::serve(receipts.clone()).await?;
    let hung_addr = if plan.dead_endpoint {
        Some(hung_listener().await?)
    } else {
        None
    };

    let paused = matches!(plan.scenario, Scenario::Publish | Scenario::Backlog);
    let mut server = Nodes::start(workdir, plan, paused, database_url).await?;
    let admin = ApiClient::new(&server.base, ADMIN_TOKEN);
    let org_id = setup(&admin, plan, receiver_addr, hung_addr).await?;

    if plan.retrying > 0 {
        eprintln!(
            "publishing {} events for the hung endpoint alone...",
            plan.retrying
        );
        let started = Instant::now();
        preload(&server.bases(), &org_id, plan).await?;
        eprintln!("published them in {:.1} s", started.elapsed().as_secs_f64());
    }
    eprintln!("publishing {} events ({:?})...", plan.events, plan.scenario);
    let load = publish(&server.bases(), &org_id, plan, origin).await?;
    let publish_elapsed = load.elapsed;

    if plan.scenario == Scenario::Backlog {
        let at_rest = server.process_use();
        eprintln!(
            "backlog of {} stored; server peak RSS so far {:.0} MiB; restarting with deliveries on",
            load.acked, at_rest.peak_rss_mib
        );
        server.stop().await;
        server = Nodes::start(workdir, plan, false, database_url).await?;
    }

    let drain_started = Instant::now();
    let expected = if paused && plan.scenario == Scenario::Publish {
        0
    } else {
        load.acked * plan.endpoints
    };
    wait_for(
        &receipts,
        expected,
        Duration::from_secs(args.drain_timeout_secs),
    )
    .await;
    let drain_elapsed = drain_started.elapsed();
    let server_use = server.process_use();
    let published = load.acked * (plan.endpoints + usize::from(plan.dead_endpoint)) + plan.retrying;
    let counts = settled_counts(&server.bases(), published).await;
    server.stop().await;

    let delivered = receipts.distinct();
    let (from_schedule, from_ack) = latencies(&receipts, &load, plan.endpoints);
    let delivery_span = if plan.scenario == Scenario::Backlog {
        drain_elapsed
    } else {
        Duration::from_nanos(last_receipt_ns(&receipts, plan).saturating_sub(load.first_ns))
    };

    // The server's own books must balance, and every delivery it counts as
    // succeeded to a healthy endpoint must have reached the receiver.
    let ledger = Ledger {
        published,
        delivered: counts.succeeded as usize,
        pending: counts.pending,
        failed: counts.failed,
        balanced: false,
    };
    let books = ledger.published as u64 == counts.succeeded + ledger.pending + ledger.failed;
    let balanced = books && delivered as u64 >= counts.succeeded;
    Ok(Report {
        plan: plan.clone(),
        publish_seconds: publish_elapsed.as_secs_f64(),
        publishes_per_second: rate(load.acked, publish_elapsed),
        deliveries: delivered,
        delivery_seconds: delivery_span.as_secs_f64(),
        deliveries_per_second: rate(delivered, delivery_span),
        latency_from_schedule: from_schedule,
        latency_from_ack: from_ack,
        duplicates: receipts.duplicates.load(Ordering::Relaxed),
        server: server_use,
        ledger: Ledger { balanced, ..ledger },
    })
}

/// A listener that accepts connections and never answers: an endpoint that
/// hangs until the attempt times out.
async fn hung_listener() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok(addr)
}

/// The server under test: one process, or several sharing a database.
struct Nodes {
    /// The first node's address, for setting up.
    base: String,
    nodes: Vec<Server>,
}

impl Nodes {
    /// Starts `plan.nodes` servers. They share the data directory, so that
    /// all sign with the keys the first one generated.
    async fn start(
        workdir: &Path,
        plan: &Plan,
        paused: bool,
        database_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        for n in 0..plan.nodes {
            nodes.push(Server::start(workdir, plan, paused, database_url, n).await?);
        }
        Ok(Self {
            base: nodes[0].base.clone(),
            nodes,
        })
    }

    fn bases(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.base.clone()).collect()
    }

    /// Peak memory and CPU, summed over the nodes.
    fn process_use(&self) -> ProcessUse {
        let mut total = ProcessUse::default();
        for node in &self.nodes {
            let used = process_use(node.pid());
            total.peak_rss_mib += used.peak_rss_mib;
            total.cpu_seconds += used.cpu_seconds;
        }
        total
    }

    async fn stop(&mut self) {
        for node in &mut self.nodes {
            node.stop().await;
        }
    }
}

/// One server under test, as a child process.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(
        workdir: &Path,
        plan: &Plan,
        paused: bool,
        database_url: Option<&str>,
        node: usize,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port();
        let config = workdir.join(format!("hookgate-{node}.toml"));
        let database = database_url
            .map(|url| format!("database_url = {url:?}\n"))
            .unwrap_or_default();
        let retry = if plan.dead_endpoint {
            "[1000, 2000]"
        } else {
            "[30000, 60000]"
        };
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n{database}\
                 admin_token = \"{ADMIN_TOKEN}\"\n\
                 log = \"warn\"\nmax_body_bytes = 1048576\n\n[delivery]\npaused = {paused}\n\
                 webhook_retry_ms = {retry}\n\n[network]\nallow_cidrs = [\"127.0.0.0/8\"]\n",
                data = workdir.join("data"),
            ),
        )?;

        let exe = std::env::current_exe().context("finding the hookgate binary")?;
        let child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env_remove("HOOKGATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting hookgate serve")?;
        let base = format!("http://127.0.0.1:{port}");

        let http = reqwest::Client::builder().no_proxy().build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ready = http.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(Self { child, base });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server did not become ready within 60 s")
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Creates the organisation and its endpoints; returns the org id.
async fn setup(
    admin: &ApiClient,
    plan: &Plan,
    receiver: SocketAddr,
    hung: Option<SocketAddr>,
) -> anyhow::Result<String> {
    let org = admin
        .post("/producer/orgs", &json!({"name": "bench"}))
        .await?;
    let org_id = org["org_id"].as_str().context("org id")?.to_owned();
    let key = admin
        .post(
            &format!("/producer/orgs/{org_id}/api_keys"),
            &json!({"name": "bench"}),
        )
        .await?;
    let org_client = admin.with_token(key["secret"].as_str().context("secret")?);

    let mut urls: Vec<String> = (0..plan.endpoints)
        .map(|k| format!("http://{receiver}/r/{k}"))
        .collect();
    if let Some(hung) = hung {
        urls.push(format!("http://{hung}/hangs"));
    }
    for url in urls {
        let types = if url.ends_with("/hangs") {
            vec![EVENT_TYPE, RETRYING_TYPE]
        } else {
            vec![EVENT_TYPE]
        };
        let body = json!({"url": url, "subscribed_events": types});
        org_client.post("/v2/webhooks/endpoints", &body).await?;
    }
    Ok(org_id)
}

const EVENT_TYPE: &str = "wallets.transaction.succeeded";

/// The type of the events published for the hung endpoint alone.
const RETRYING_TYPE: &str = "wallets.transaction.failed";

/// What the publishing clients did.
struct Load {
    acked: usize,
    elapsed: Duration,
    first_ns: u64,
    scheduled_ns: Vec<AtomicU64>,
    acked_ns: Vec<AtomicU64>,
}

/// The publish request of event `seq`, split around its sequence number so
/// that building one costs a copy.
fn request_parts(org_id: &str, event_type: &str, size: usize) -> (String, String) {
    let mut data = hookgate_protocol::samples::sample_data(
        hookgate_protocol::catalogue::find(event_type).expect("core type"),
    );
    data.insert("status".into(), json!("Completed"));
    let base = serde_json::to_string(&data).expect("serialises").len() + 200;
    data.insert(
        "description".into(),
        json!("x".repeat(size.saturating_sub(base))),
    );
    data.insert("bench_seq".into(), json!(0));

    let body = json!({"org_id": org_id, "type": event_type, "data": data}).to_string();
    let marker = "\"bench_seq\":0";
    let at = body.find(marker).expect("marker present") + marker.len() - 1;
    (body[..at].to_owned(), body[at + 1..].to_owned())
}

/// Publishes from `plan.concurrency` clients, client `k` to node `k % n`.
async fn publish(
    bases: &[String],
    org_id: &str,
    plan: &Plan,
    origin: Instant,
) -> anyhow::Result<Load> {
    let (head, tail) = request_parts(org_id, EVENT_TYPE, plan.size);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(plan.concurrency)
        .build()?;
    let load = Arc::new(Load {
        acked: 0,
        elapsed: Duration::ZERO,
        first_ns: 0,
        scheduled_ns: (0..plan.events).map(|_| AtomicU64::new(0)).collect(),
        acked_ns: (0..plan.events).map(|_| AtomicU64::new(0)).collect(),
    });
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let started = origin.elapsed();

    let mut tasks = Vec::new();
    for client in 0..plan.concurrency {
        let url = format!("{}/producer/v2/events", bases[client % bases.len()]);
        let (http, head, tail) = (http.clone(), head.clone(), tail.clone());
        let (load, next, acked) = (load.clone(), next.clone(), acked.clone());
        let (events, fixed_rate) = (plan.events, plan.rate);
        tasks.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= events {
                    return Ok::<(), anyhow::Error>(());
                }
                let scheduled = match fixed_rate {
                    Some(r) => started + Duration::from_secs_f64(seq as f64 / r),
                    None => origin.elapsed(),
                };
                if fixed_rate.is_some() {
                    tokio::time::sleep_until((origin + scheduled).into()).await;
                }
                load.scheduled_ns[seq].store(scheduled.as_nanos() as u64, Ordering::Relaxed);

                let body = format!("{head}{seq}{tail}");
                let response = http
                    .post(&url)
                    .bearer_auth(ADMIN_TOKEN)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                if response.status().as_u16() != 202 {
                    bail!("publish {seq} answered {}", response.status());
                }
                load.acked_ns[seq].store(origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.context("a publishing client panicked")??;
    }

    let elapsed = origin.elapsed() - started;
    let mut load = Arc::into_inner(load).expect("every client finished");
    load.acked = acked.load(Ordering::Relaxed);
    load.elapsed = elapsed;
    load.first_ns = started.as_nanos() as u64;
    Ok(load)
}

/// Publishes `plan.retrying` events that only the hung endpoint receives, as
/// fast as the clients can.
async fn preload(bases: &[String], org_id: &str, plan: &Plan) -> anyhow::Result<()> {
    let (head, tail) = request_parts(org_id, RETRYING_TYPE, plan.size);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(plan.concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for client in 0..plan.concurrency {
        let url = format!("{}/producer/v2/events", bases[client % bases.len()]);
        let (http, head, tail, next) = (http.clone(), head.clone(), tail.clone(), next.clone());
        let events = plan.retrying;
        tasks.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= events {
                    return Ok::<(), anyhow::Error>(());
                }
                let response = http
                    .post(&url)
                    .bearer_auth(ADMIN_TOKEN)
                    .header("content-type", "application/json")
                    .body(format!("{head}{seq}{tail}"))
                    .send()
                    .await?;
                if response.status().as_u16() != 202 {
                    bail!("publish {seq} answered {}", response.status());
                }
            }
        }));
    }
    for task in tasks {
        task.await.context("a publishing client panicked")??;
    }
    Ok(())
}

/// Waits until `expected` distinct receipts, progress stalls for 30 s, or
/// `limit` passes.
async fn wait_for(receipts: &Receipts, expected: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = (0, Instant::now());
    loop {
        let got = receipts.distinct();
        if got >= expected || Instant::now() > deadline {
            return;
        }
        if got != last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(30) {
            eprintln!("no progress for 30 s at {got} of {expected} deliveries; stopping");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn latencies(receipts: &Receipts, load: &Load, endpoints: usize) -> (Summary, Summary) {
    let mut from_schedule = Vec::new();
    let mut from_ack = Vec::new();
    for (seq, scheduled) in load.scheduled_ns.iter().enumerate() {
        let scheduled = scheduled.load(Ordering::Relaxed);
        let acked = load.acked_ns[seq].load(Ordering::Relaxed);
        for endpoint in 0..endpoints {
            if let Some(at) = receipts.received_at(seq, endpoint) {
                from_schedule.push(at.saturating_sub(scheduled));
                from_ack.push(at.saturating_sub(acked));
            }
        }
    }
    (summarise(from_schedule), summarise(from_ack))
}

fn last_receipt_ns(receipts: &Receipts, plan: &Plan) -> u64 {
    (0..plan.events)
        .flat_map(|seq| (0..plan.endpoints).map(move |e| (seq, e)))
        .filter_map(|(seq, e)| receipts.received_at(seq, e))
        .max()
        .unwrap_or(0)
}

/// Counts the server reports at `/metrics`.
#[derive(Debug, Default)]
struct ServerCounts {
    succeeded: u64,
    pending: u64,
    failed: u64,
}

/// The server's counts once its books settle (outcomes are recorded a
/// moment after the receiver answers), or as they stand after 10 s. With
/// several nodes, the outcome counters are summed over the nodes; the
/// backlog is read from the shared database, so once.
async fn settled_counts(bases: &[String], published: usize) -> ServerCounts {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut counts = ServerCounts::default();
        for (n, base) in bases.iter().enumerate() {
            let node = server_counts(base).await.unwrap_or_default();
            counts.succeeded += node.succeeded;
            counts.failed += node.failed;
            if n == 0 {
                counts.pending = node.pending;
            }
        }
        let total = counts.succeeded + counts.pending + counts.failed;
        if total == published as u64 || Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn server_counts(base: &str) -> anyhow::Result<ServerCounts> {
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    Ok(ServerCounts {
        succeeded: value("hookgate_deliveries_succeeded_total"),
        pending: value("hookgate_retry_backlog"),
        failed: value("hookgate_deliveries_failed_total"),
    })
}

fn print_table(r: &Report) {
    let p = &r.plan;
    println!("scenario          {:?}", p.scenario);
    println!("database          {}, {} node(s)", p.database, p.nodes);
    println!(
        "plan              {} events, {} B, {} endpoint(s){}, {}, {} clients",
        p.events,
        p.size,
        p.endpoints,
        if p.dead_endpoint {
            format!(" + 1 hung with {} more events for it alone", p.retrying)
        } else {
            String::new()
        },
        p.rate
            .map_or("as fast as possible".to_owned(), |r| format!("{r}/s")),
        p.concurrency
    );
    println!(
        "publish           {:.0} events/s ({} in {:.2} s)",
        r.publishes_per_second,
        (r.ledger.published - p.retrying) / (p.endpoints + usize::from(p.dead_endpoint)),
        r.publish_seconds
    );
    println!(
        "delivery          {:.0} deliveries/s ({} in {:.2} s)",
        r.deliveries_per_second, r.deliveries, r.delivery_seconds
    );
    for (name, s) in [
        ("from schedule", r.latency_from_schedule),
        ("from ack", r.latency_from_ack),
    ] {
        println!(
            "latency {name:<9} p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
        );
    }
    println!(
        "server            peak RSS {:.0} MiB, CPU {:.1} s",
        r.server.peak_rss_mib, r.server.cpu_seconds
    );
    let l = &r.ledger;
    println!(
        "ledger            published {} = succeeded {} + pending {} + failed {}: {}",
        l.published,
        l.delivered,
        l.pending,
        l.failed,
        if l.balanced {
            "balanced"
        } else {
            "VOID (does not balance)"
        }
    );
    if r.duplicates > 0 {
        println!(
            "duplicates        {} (at-least-once redeliveries)",
            r.duplicates
        );
    }
}

/// The body a publish sends.
#[cfg(test)]
fn body_of(org_id: &str, size: usize, seq: usize) -> Value {
    let (head, tail) = request_parts(org_id, EVENT_TYPE, size);
    serde_json::from_str(&format!("{head}{seq}{tail}")).expect("valid JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn checked(line: &[&str]) -> anyhow::Result<()> {
        use clap::Parser;
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(line.iter().copied()))
            .expect("flags parse");
        check(&cli.args)
    }

    #[test]
    fn options_that_cannot_make_a_run_are_usage_errors() {
        for line in [
            &["--rate", "0"][..],
            &["--rate", "NaN"],
            &["--events", "0"],
            &["--concurrency", "0"],
            &["--retrying", "10"],
            &["--nodes", "2"],
        ] {
            let error = checked(line).expect_err("refused");
            assert_eq!(crate::exit::code_of(&error), ExitCode::from(2), "{line:?}");
        }
        assert!(checked(&["--scenario", "isolation", "--retrying", "10"]).is_ok());
        assert!(checked(&["--rate", "0.5", "--events", "3"]).is_ok());
    }

    #[test]
    fn request_body_is_valid_and_carries_the_sequence() {
        let body = body_of("org", 1024, 4711);
        assert_eq!(body["data"]["bench_seq"], 4711);
        let size = body.to_string().len();
        assert!((900..1300).contains(&size), "{size}");
        let large = body_of("org", 65536, 1).to_string().len();
        assert!((60_000..70_000).contains(&large), "{large}");
    }
}
