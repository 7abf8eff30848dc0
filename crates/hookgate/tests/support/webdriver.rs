//! A headless Chromium driven through chromedriver's WebDriver REST API,
//! with plain HTTP calls: just what the portal's browser tests need.
//!
//! chromedriver listens on a free loopback port and is killed on drop;
//! Chromium runs headless with a fresh profile directory, no sandbox (tests
//! may run as root), and background networking off, so that it talks to
//! nothing but the test server.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::TempDir;

/// The element key of WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the browser and its driver are expected (Debian's packages
/// `chromium` and `chromium-driver`); `HOOKGATE_CHROMIUM` and
/// `HOOKGATE_CHROMEDRIVER` override.
pub fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let find = |var: &str, names: &[&str]| -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(var) {
            return Some(PathBuf::from(path));
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|candidate| candidate.is_file())
    };
    let chromium = find("HOOKGATE_CHROMIUM", &["chromium", "chromium-browser"]);
    let driver = find("HOOKGATE_CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Ok((chromium, driver)),
        _ => Err(
            "headless Chromium and chromedriver are needed for the portal's browser \
                  tests: apt-get install chromium chromium-driver (or set \
                  HOOKGATE_SKIP_BROWSER=1 to skip them)"
                .into(),
        ),
    }
}

/// Whether the browser tests were asked to be skipped.
pub fn skipped() -> bool {
    std::env::var("HOOKGATE_SKIP_BROWSER").is_ok_and(|v| v == "1")
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    _profile: TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Self {
        let (chromium, driver_path) = binaries().unwrap_or_else(|e| panic!("{e}"));
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display()));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("the WebDriver client builds");
        let base = format!("http://127.0.0.1:{port}");

        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not answer on port {port} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let profile = TempDir::new("chromium-profile");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let mut browser = Self {
            http,
            base,
            session: String::new(),
            driver,
            _profile: profile,
        };
        let answer = browser.call("POST", "/session", Some(capabilities)).await;
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let value: Value = response.json().await.expect("chromedriver answers JSON");
        assert!(
            status.is_success(),
            "WebDriver {method} {path} failed: {value}"
        );
        value["value"].clone()
    }

    async fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})))
            .await;
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        let title = self.session_call("GET", "/title", None).await;
        title.as_str().unwrap_or_default().to_owned()
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        let url = self.session_call("GET", "/url", None).await;
        url.as_str().unwrap_or_default().to_owned()
    }

    /// Elements matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        let body = json!({"using": "css selector", "value": css});
        let found = self.session_call("POST", "/elements", Some(body)).await;
        found
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching a CSS selector; panics naming it when
    /// there is none.
    pub async fn find(&self, css: &str) -> String {
        let all = self.find_all(css).await;
        if let Some(first) = all.into_iter().next() {
            return first;
        }
        let url = self.url().await;
        let html = self
            .execute("return document.documentElement.outerHTML.slice(0, 1500)")
            .await;
        panic!("no element matches {css:?} on {url}; the page begins: {html}")
    }

    /// Clicks an element.
    pub async fn click(&self, element: &str) {
        let path = format!("/element/{element}/click");
        self.session_call("POST", &path, Some(json!({}))).await;
    }

    /// Clicks an element that submits a form or follows a link, and waits
    /// until the next page has loaded.
    pub async fn click_and_wait(&self, element: &str) {
        self.execute("window.__hookgateOldPage = true; return null")
            .await;
        self.click(element).await;
        let started = Instant::now();
        loop {
            let loaded = self
                .execute(
                    "return window.__hookgateOldPage === undefined \
                     && document.readyState === 'complete'",
                )
                .await;
            if loaded == Value::Bool(true) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no new page loaded within 20 s of the click"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into an element.
    pub async fn type_into(&self, element: &str, text: &str) {
        let path = format!("/element/{element}/value");
        self.session_call("POST", &path, Some(json!({"text": text})))
            .await;
    }

    /// An element's rendered text.
    pub async fn text(&self, element: &str) -> String {
        let path = format!("/element/{element}/text");
        let text = self.session_call("GET", &path, None).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Whether an element is enabled.
    pub async fn enabled(&self, element: &str) -> bool {
        let path = format!("/element/{element}/enabled");
        self.session_call("GET", &path, None).await.as_bool() == Some(true)
    }

    /// The text of the whole page body.
    pub async fn body_text(&self) -> String {
        let text = self.execute("return document.body.innerText").await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` in the page and gives what it returns.
    pub async fn execute(&self, script: &str) -> Value {
        let body = json!({"script": script, "args": []});
        self.session_call("POST", "/execute/sync", Some(body)).await
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) {
        let body = json!({"width": width, "height": height});
        self.session_call("POST", "/window/rect", Some(body)).await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let data = self.session_call("GET", "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("the screenshot is base64")
    }

    /// Ends the browser session and chromedriver.
    pub async fn quit(mut self) {
        let path = format!("/session/{}", self.session);
        let _ = self
            .http
            .delete(format!("{}{path}", self.base))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    /// Ends the browser session too when a test panicked before
    /// [`Browser::quit`], so that no Chromium outlives the test.
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.driver.try_wait() {
            return;
        }
        let address = self.base.trim_start_matches("http://").to_owned();
        if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n",
                self.session
            );
            let _ = stream.write_all(request.as_bytes());
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
