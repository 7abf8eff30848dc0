//! Running the real `hookgate` binary: one-shot commands, a long-running
//! `webhook listen` whose output lines are collected as they come, and a
//! server run as a child process (for tests that restart it).
//!
//! Every child gets a clean environment for the client: no `HOOKGATE_*`
//! variable of the machine running the tests and an empty configuration
//! directory, so that no profile file of the user is read.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::server::ADMIN_TOKEN;
use super::{eventually, TempDir};

/// Longest any one-shot command may run.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_hookgate")
}

/// A command of the binary with a clean client environment.
pub fn command(config_home: &Path) -> Command {
    let mut command = Command::new(binary());
    for (name, _) in std::env::vars() {
        if name.starts_with("HOOKGATE_") {
            command.env_remove(name);
        }
    }
    command
        .env("XDG_CONFIG_HOME", config_home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The outcome of a one-shot command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The standard output as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `hookgate args...` to completion.
pub async fn run(config_home: &Path, args: &[&str]) -> Run {
    let output = command(config_home).args(args).output();
    let output = tokio::time::timeout(COMMAND_LIMIT, output)
        .await
        .expect("the command ends in time")
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// An organisation with its API key secret and id.
pub struct OrgKey {
    pub org_id: String,
    pub secret: String,
}

/// Creates an organisation and an API key on the server at `base`
/// (registering `public_key` for signed requests when given).
pub async fn new_org(base: &str, public_key: Option<&str>) -> OrgKey {
    let admin = super::server::ApiClient::new(base, Some(ADMIN_TOKEN));
    let org = admin
        .post("/producer/orgs", &json!({"name": "CLI tests"}))
        .await
        .expect(201);
    let org_id = org["org_id"].as_str().expect("org_id").to_owned();
    let mut key = json!({"name": "cli"});
    if let Some(public_key) = public_key {
        key["public_key"] = json!(public_key);
    }
    let key = admin
        .post(&format!("/producer/orgs/{org_id}/api_keys"), &key)
        .await
        .expect(201);
    OrgKey {
        org_id,
        secret: key["secret"].as_str().expect("secret").to_owned(),
    }
}

/// A running `hookgate webhook listen -o json`, its output collected.
pub struct Listening {
    child: Child,
    stdout: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Listening {
    /// Starts `hookgate --output json webhook listen args...` and waits
    /// until it says it is connected.
    pub async fn start(config_home: &Path, args: &[&str]) -> Self {
        let mut child = command(config_home)
            .args(["--output", "json", "webhook", "listen"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));

        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let sink = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("listen printed a line that is not JSON ({e}): {line}")
                });
                sink.lock().unwrap().push(value);
            }
        });
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });

        let listening = Self {
            child,
            stdout,
            stderr,
        };
        listening.wait_stderr("connected").await;
        listening
    }

    /// The JSON lines printed so far.
    pub fn lines(&self) -> Vec<Value> {
        self.stdout.lock().unwrap().clone()
    }

    /// The event lines printed so far.
    pub fn events(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["type"] == "event")
            .collect()
    }

    /// The forward outcome lines printed so far.
    pub fn forwards(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["type"] == "forwarded")
            .collect()
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until standard error has `count` lines containing `text`.
    pub async fn wait_stderr_count(&self, text: &str, count: usize) {
        eventually(&format!("listen to say {text:?} {count} times"), || async {
            let lines = self.stderr.lock().unwrap();
            (lines.iter().filter(|l| l.contains(text)).count() >= count).then_some(())
        })
        .await;
    }

    /// Waits until standard error mentions `text`.
    pub async fn wait_stderr(&self, text: &str) {
        self.wait_stderr_count(text, 1).await;
    }

    /// Waits for `count` event lines and gives them.
    pub async fn wait_events(&self, count: usize) -> Vec<Value> {
        eventually(&format!("{count} events printed by listen"), || async {
            let events = self.events();
            (events.len() >= count).then_some(events)
        })
        .await
    }

    /// Waits for `count` forward lines and gives them.
    pub async fn wait_forwards(&self, count: usize) -> Vec<Value> {
        eventually(&format!("{count} forwards printed by listen"), || async {
            let forwards = self.forwards();
            (forwards.len() >= count).then_some(forwards)
        })
        .await
    }

    /// Stops the process.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A free port on a loopback address of its own (127.x.y.z): a server that
/// is stopped and started again on it cannot find another test's server,
/// started in between, on the same address.
pub fn private_loopback_address() -> std::net::SocketAddr {
    let id = uuid::Uuid::new_v4().as_bytes()[..3].to_vec();
    let ip = std::net::Ipv4Addr::new(127, id[0].max(1), id[1], id[2].max(1));
    StdListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on a private loopback address")
}

/// `hookgate serve` as a child process, on a fixed port and data directory
/// so that it can be stopped and started again.
pub struct ChildServer {
    pub base: String,
    addr: std::net::SocketAddr,
    data: TempDir,
    child: Option<Child>,
}

impl ChildServer {
    /// Starts on a free port with a fresh data directory.
    pub async fn start() -> Self {
        let addr = private_loopback_address();
        let mut server = Self {
            base: format!("http://{addr}"),
            addr,
            data: TempDir::new("child-server"),
            child: None,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let listen = self.addr.to_string();
        let child = command(self.data.path())
            .args(["serve", "--listen", &listen, "--data-dir"])
            .arg(self.data.path())
            .env("HOOKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HOOKGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        self.child = Some(child);
        eventually("the child server to answer /healthz", || async {
            let http = reqwest::Client::builder().no_proxy().build().ok()?;
            let answer = http
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .ok()?;
            answer.status().is_success().then_some(())
        })
        .await;
    }

    /// Kills the server (no graceful shutdown) and waits for it to exit.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }
}
