//! A server killed with SIGKILL in the middle of deliveries loses nothing it
//! accepted: after a restart on the same data directory, every event whose
//! publish was answered 202 reaches the receiver (at least once).
//!
//! The real `hookgate serve` binary runs as a child process with a settings
//! file in a temporary directory; the receiver runs in the test.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

use support::receiver::{Receiver, Reply};
use support::server::{ApiClient, ADMIN_TOKEN};
use support::{eventually, eventually_within, transaction, TempDir, TX_CREATED};

/// Events published while the server is killed.
const PUBLISHES: usize = 300;

/// Publishes in flight at once.
const PUBLISHERS: usize = 24;

/// What the receiver's answers cost: long enough that deliveries are in
/// flight when the server dies.
const RECEIVER_PAUSE: Duration = Duration::from_millis(200);

fn write_settings(dir: &Path) -> std::path::PathBuf {
    let data_dir = dir.join("data");
    let text = format!(
        r#"listen = "127.0.0.1:0"
data_dir = "{data_dir}"
admin_token = "{ADMIN_TOKEN}"
log = "warn"

[delivery]
timeout_ms = 1000
lease_ms = 6000
webhook_retry_ms = [50, 100]
webhook_max_attempts = 10
jitter = 0.0
poll_interval_ms = 50
max_in_flight_per_endpoint = 16

[network]
allow_cidrs = ["127.0.0.0/8"]
"#,
        data_dir = data_dir.display()
    );
    let path = dir.join("hookgate.toml");
    std::fs::write(&path, text).expect("the settings file can be written");
    path
}

/// `hookgate serve` in a child process.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    /// Starts the binary and waits until it says where it listens and
    /// answers `/healthz`.
    async fn start(config: &Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, _) in std::env::vars() {
            if name.starts_with("HOOKGATE_") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().expect("hookgate serve starts");

        // Read stderr to the end in the background, so the child never
        // blocks on a full pipe, and pick out the listening address.
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, address) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut found = Some(found);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("hookgate listening on ") {
                    if let Some(found) = found.take() {
                        let _ = found.send(rest.trim().to_owned());
                    }
                }
            }
        });
        let base = tokio::time::timeout(support::DEADLINE, address)
            .await
            .expect("hookgate serve says where it listens in time")
            .expect("hookgate serve says where it listens before exiting");

        let health = ApiClient::new(&base, None);
        eventually("the restarted server to answer /healthz", || async {
            (health.get("/healthz").await.status == 200).then_some(())
        })
        .await;
        Self { child, base }
    }

    /// SIGKILL: no shutdown code runs.
    async fn kill(mut self) {
        self.child.kill().await.expect("the child can be killed");
    }
}

/// Publishes one event with its own client so a dead server fails only this
/// request; the event id when the answer was 202.
async fn publish(http: reqwest::Client, base: String, org_id: String, n: usize) -> Option<String> {
    let body = serde_json::json!({
        "org_id": org_id,
        "type": TX_CREATED,
        "data": transaction(&format!("tx-crash-{n}")),
    });
    let response = http
        .post(format!("{base}/producer/v2/events"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .ok()?;
    if response.status().as_u16() != 202 {
        return None;
    }
    let answer: serde_json::Value = response.json().await.ok()?;
    ApiClient::event_ids(&answer).into_iter().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_event_is_delivered_after_a_kill_and_restart() {
    let dir = TempDir::new("crash");
    let config = write_settings(dir.path());
    let receiver = Receiver::start(|_| Reply::After(RECEIVER_PAUSE, 200)).await;

    let serve = Serve::start(&config).await;
    let admin = ApiClient::new(&serve.base, Some(ADMIN_TOKEN));
    let org = admin.new_org().await;
    org.api
        .create_endpoint(&receiver.url("/crash"), &[TX_CREATED])
        .await;

    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let slots = Arc::new(Semaphore::new(PUBLISHERS));
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let publishers: Vec<_> = (0..PUBLISHES)
        .map(|n| {
            let (http, base, org_id) = (http.clone(), serve.base.clone(), org.org_id.clone());
            let (accepted, slots) = (accepted.clone(), slots.clone());
            tokio::spawn(async move {
                let _slot = slots.acquire_owned().await.expect("the semaphore is open");
                if let Some(event_id) = publish(http, base, org_id, n).await {
                    accepted.lock().unwrap().push(event_id);
                }
            })
        })
        .collect();

    // Kill once deliveries are under way and plenty of accepted events have
    // not reached the receiver yet.
    let backlog = eventually("accepted events to pile up behind the receiver", || async {
        let accepted: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();
        let received = receiver.event_ids();
        let waiting = accepted.difference(&received).count();
        (received.len() >= 10 && waiting >= 50).then_some(waiting)
    })
    .await;
    serve.kill().await;
    for publisher in publishers {
        publisher.await.expect("a publisher task ends");
    }
    let accepted: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();
    let undelivered = accepted.difference(&receiver.event_ids()).count();
    assert!(
        backlog >= 50 && undelivered > 0,
        "the kill came before every delivery"
    );

    let serve = Serve::start(&config).await;
    eventually_within(
        Duration::from_secs(60),
        "every accepted event to arrive",
        || async {
            let received = receiver.event_ids();
            accepted
                .iter()
                .all(|id| received.contains(id))
                .then_some(())
        },
    )
    .await;
    serve.kill().await;
}
