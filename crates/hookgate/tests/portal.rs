//! The portal, as a person and as an attacker would use it.
//!
//! - Without a browser: sign-in cookies and their flags, refusal of forms
//!   without the session's token, sign-out, escaping of event data and the
//!   security headers of every page.
//! - In headless Chromium (through chromedriver): sign in, register an
//!   endpoint, send a test event and see it delivered; see a failing
//!   endpoint's event in `Retrying`, press Retry, read the attempt log; and
//!   open an event whose data carries script, which must not run.
//!
//! The browser test fails when Chromium or chromedriver is missing, unless
//! `HOOKGATE_SKIP_BROWSER=1` says to skip it. `scripts/screenshots` runs the
//! ignored `screenshots` test against a running demo.

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

use support::receiver::{Receiver, Reply};
use support::server::TestServer;
use support::{eventually, eventually_within};
use webdriver::Browser;

/// Event data an attacker controls: each payload would change the title
/// or set `window.pwned` if the page ran it.
const SCRIPT_NAME: &str = "<script>window.pwned = 1; document.title = 'pwned'</script>";
const IMG_NAME: &str = "<img src=x onerror=\"window.pwned = 2; document.title = 'pwned'\">";

/// An organisation and its API key secret.
struct OrgKey {
    org_id: String,
    secret: String,
}

async fn new_org(server: &TestServer, name: &str) -> OrgKey {
    let org = server
        .admin
        .post("/producer/orgs", &json!({"name": name}))
        .await
        .expect(201);
    let org_id = org["org_id"].as_str().expect("org_id").to_owned();
    let key = server
        .admin
        .post(
            &format!("/producer/orgs/{org_id}/api_keys"),
            &json!({"name": "portal"}),
        )
        .await
        .expect(201);
    OrgKey {
        org_id,
        secret: key["secret"].as_str().expect("secret").to_owned(),
    }
}

/// Percent-encodes a form value.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A client that follows no redirect and keeps cookies by hand, to see
/// exactly what the portal answers.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

/// An answer: status, headers, body.
struct Seen {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Seen {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value of the first hidden `csrf` field of the page.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.text.find(marker).expect("the page has a form token") + marker.len();
        let end = self.text[start..].find('"').expect("the token ends");
        self.text[start..start + end].to_owned()
    }
}

impl Visitor {
    fn new(server: &TestServer) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("the client builds");
        Self {
            http,
            base: server.base.clone(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        pairs.join("; ")
    }

    fn keep_cookies(&mut self, seen: &Seen) {
        for line in seen.set_cookies() {
            let pair = line.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("a cookie pair");
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Seen {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("the portal answers");
        let seen = Seen {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.expect("the body reads"),
        };
        self.keep_cookies(&seen);
        seen
    }

    async fn get(&mut self, path: &str) -> Seen {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Seen {
        self.post_with(path, fields, &[]).await
    }

    async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Seen {
        let body: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
            .collect();
        let body = body.join("&");
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Signs in with `secret`; gives the sign-in answer.
    async fn sign_in_with(&mut self, secret: &str, headers: &[(&str, &str)]) -> Seen {
        let form = self.get("/portal/signin").await;
        assert_eq!(form.status, 200, "{}", form.text);
        let token = form.csrf();
        let fields = [("csrf", token.as_str()), ("secret", secret)];
        self.post_with("/portal/signin", &fields, headers).await
    }

    async fn sign_in(&mut self, secret: &str) {
        let seen = self.sign_in_with(secret, &[]).await;
        assert_eq!(seen.status, 303, "sign-in failed: {}", seen.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_sets_a_strict_http_only_session_cookie() {
    let server = TestServer::start(|_| {}).await;
    let org = new_org(&server, "Acme").await;

    let mut visitor = Visitor::new(&server);
    let seen = visitor.sign_in_with(&org.secret, &[]).await;
    assert_eq!(seen.status, 303);
    assert_eq!(seen.location(), "/portal/overview");
    let session = seen
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("hookgate_portal="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/portal"] {
        assert!(session.contains(flag), "{flag} missing: {session}");
    }
    assert!(
        !session.contains("Secure"),
        "plain HTTP gets no Secure: {session}"
    );
    let overview = visitor.get("/portal/overview").await;
    assert_eq!(overview.status, 200);
    assert!(overview.text.contains("Acme"), "the organisation is named");

    let mut behind_tls = Visitor::new(&server);
    let proxied = [("x-forwarded-proto", "https")];
    let seen = behind_tls.sign_in_with(&org.secret, &proxied).await;
    let session = seen
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("hookgate_portal="))
        .expect("a session cookie");
    assert!(session.contains("; Secure"), "HTTPS gets Secure: {session}");

    let mut stranger = Visitor::new(&server);
    let refused = stranger.sign_in_with("not-a-secret", &[]).await;
    assert_eq!(refused.status, 401);
    assert!(refused.text.contains("opens nothing"));
    assert_eq!(
        stranger.get("/portal/overview").await.location(),
        "/portal/signin"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_session_token_are_refused() {
    let server = TestServer::start(|_| {}).await;
    let org = new_org(&server, "Acme").await;
    let mut visitor = Visitor::new(&server);

    // The sign-in form needs its own cookie and field, equal.
    let no_cookie = visitor
        .post("/portal/signin", &[("csrf", "x"), ("secret", &org.secret)])
        .await;
    assert_eq!(no_cookie.status, 403);

    visitor.sign_in(&org.secret).await;
    let token = visitor.get("/portal/event-types").await.csrf();
    let trigger = "/portal/event-types/trigger";
    let without = visitor
        .post(trigger, &[("event_type", "wallets.created")])
        .await;
    assert_eq!(without.status, 403, "{}", without.text);
    let wrong = visitor
        .post(
            trigger,
            &[("csrf", "0123"), ("event_type", "wallets.created")],
        )
        .await;
    assert_eq!(wrong.status, 403);
    let right = visitor
        .post(
            trigger,
            &[("csrf", &token), ("event_type", "wallets.created")],
        )
        .await;
    assert_eq!(right.status, 303, "{}", right.text);

    // A form posted with no session at all is refused, not redirected.
    let mut stranger = Visitor::new(&server);
    let anonymous = stranger
        .post(
            trigger,
            &[("csrf", &token), ("event_type", "wallets.created")],
        )
        .await;
    assert_eq!(anonymous.status, 403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_for_good() {
    let server = TestServer::start(|_| {}).await;
    let org = new_org(&server, "Acme").await;
    let mut visitor = Visitor::new(&server);
    visitor.sign_in(&org.secret).await;
    let copied = visitor.cookies.clone();

    let token = visitor.get("/portal/overview").await.csrf();
    let out = visitor.post("/portal/signout", &[("csrf", &token)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/portal/signin");
    assert!(out
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("hookgate_portal=;") && c.contains("Max-Age=0")));

    // Even a copy of the old cookie opens nothing now.
    let mut thief = Visitor::new(&server);
    thief.cookies = copied;
    let page = thief.get("/portal/overview").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/portal/signin");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_escape_event_data_and_forbid_scripts() {
    let server = TestServer::start(|_| {}).await;
    let org = new_org(&server, "<b>Evil & Co</b>").await;
    let receiver = Receiver::start(|_| Reply::Status(200)).await;
    let url = receiver.url("/hooks?<i>x</i>");
    let api = server.client(Some(&org.secret));
    let endpoint = api
        .post(
            "/v2/webhooks/endpoints",
            &json!({"url": url, "subscribed_events": ["wallets.created"],
                    "description": "<svg onload=alert(1)>"}),
        )
        .await
        .expect(201);
    let endpoint_id = endpoint["endpoint_id"].as_str().expect("endpoint_id");
    let data = json!({"wallet_id": "w1", "name": SCRIPT_NAME, "wallet_type": IMG_NAME});
    let published = server
        .admin
        .publish(&org.org_id, "wallets.created", data)
        .await;
    let event_id = published["events"][0]["event_id"]
        .as_str()
        .expect("event_id");

    let mut visitor = Visitor::new(&server);
    visitor.sign_in(&org.secret).await;
    for path in [
        format!("/portal/events/{event_id}"),
        "/portal/events".to_owned(),
        format!("/portal/endpoints/{endpoint_id}"),
        "/portal/endpoints".to_owned(),
        "/portal/overview".to_owned(),
    ] {
        let page = visitor.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        for raw in ["<script", "<img", "<svg onload", "<b>Evil", "<i>x"] {
            assert!(!page.text.contains(raw), "{path} shows {raw:?} unescaped");
        }
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert_eq!(page.headers["referrer-policy"], "same-origin");
    }
    let detail = visitor.get(&format!("/portal/events/{event_id}")).await;
    assert!(
        detail.text.contains("&lt;script&gt;window.pwned"),
        "shown as text"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_can_switch_organisation() {
    let server = TestServer::start(|_| {}).await;
    let first = new_org(&server, "First").await;
    let second = new_org(&server, "Second").await;
    let api = server.client(Some(&second.secret));
    let url = "https://second.example/hooks";
    api.post(
        "/v2/webhooks/endpoints",
        &json!({"url": url, "subscribed_events": ["wallets.created"]}),
    )
    .await
    .expect(201);

    let mut admin = Visitor::new(&server);
    admin.sign_in(support::server::ADMIN_TOKEN).await;
    let page = admin.get("/portal/endpoints").await;
    let token = page.csrf();
    assert!(page.text.contains("First") && page.text.contains("Second"));
    let switched = admin
        .post(
            "/portal/org",
            &[("csrf", &token), ("org_id", &second.org_id)],
        )
        .await;
    assert_eq!(switched.status, 303);
    assert!(admin.get("/portal/endpoints").await.text.contains(url));

    // An API key's session cannot switch.
    let mut user = Visitor::new(&server);
    user.sign_in(&first.secret).await;
    let token = user.get("/portal/overview").await.csrf();
    let refused = user
        .post(
            "/portal/org",
            &[("csrf", &token), ("org_id", &second.org_id)],
        )
        .await;
    assert_eq!(refused.status, 403);
    server.stop().await;
}

/// Reloads `url` until its body text contains `wanted`.
async fn wait_for_text(browser: &Browser, url: &str, wanted: &str) {
    eventually(&format!("{wanted:?} on {url}"), || async {
        browser.goto(url).await;
        browser.body_text().await.contains(wanted).then_some(())
    })
    .await;
}

/// Clicks the submit button of the form posting to `action`.
async fn press(browser: &Browser, css: &str) {
    let button = browser.find(css).await;
    browser.click_and_wait(&button).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_triggers_retries_and_reads_the_log_in_a_browser() {
    if webdriver::skipped() {
        eprintln!("HOOKGATE_SKIP_BROWSER=1: skipping the browser test");
        return;
    }
    if let Err(missing) = webdriver::binaries() {
        panic!("{missing}");
    }

    // Retries wait a minute, so a failed event stays `Retrying` until the
    // Retry button is pressed.
    let server = TestServer::start(|s| s.delivery.webhook_retry_ms = vec![60_000]).await;
    let org = new_org(&server, "Acme Payments").await;
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    let receiver = Receiver::start(move |call| {
        let fail = call.path == "/flaky" && flag.load(Ordering::SeqCst);
        Reply::Status(if fail { 500 } else { 200 })
    })
    .await;
    let base = &server.base;
    let browser = Browser::start(1280, 900).await;

    // Sign in.
    browser.goto(&format!("{base}/portal/signin")).await;
    let secret = browser.find("#secret").await;
    browser.type_into(&secret, &org.secret).await;
    press(&browser, "form[action='/portal/signin'] button").await;
    assert_eq!(browser.title().await, "Overview · Hookgate");

    // Register an endpoint for wallets.created.
    browser.goto(&format!("{base}/portal/endpoints/new")).await;
    let url_field = browser.find("#url").await;
    browser.type_into(&url_field, &receiver.url("/ok")).await;
    let description = browser.find("#description").await;
    browser.type_into(&description, "Ledger sync").await;
    let tick = browser.find("#ev-wallets-created").await;
    browser.click(&tick).await;
    press(
        &browser,
        "form[action='/portal/endpoints'] button[type=submit]",
    )
    .await;
    assert!(browser.body_text().await.contains("Endpoint registered."));

    // Send a test event and see it delivered.
    browser.goto(&format!("{base}/portal/event-types")).await;
    press(&browser, "button[aria-label='Send a test wallets.created']").await;
    assert!(browser
        .body_text()
        .await
        .contains("sent to 1 subscribed endpoint"));
    let delivered = format!("{base}/portal/events?status=Success");
    wait_for_text(&browser, &delivered, "wallets.created").await;
    assert_eq!(receiver.received_at("/ok").len(), 1);

    // An endpoint that answers 500: its event waits in Retrying.
    browser.goto(&format!("{base}/portal/endpoints/new")).await;
    let url_field = browser.find("#url").await;
    browser.type_into(&url_field, &receiver.url("/flaky")).await;
    let tick = browser.find("#ev-wallets-updated").await;
    browser.click(&tick).await;
    press(
        &browser,
        "form[action='/portal/endpoints'] button[type=submit]",
    )
    .await;
    browser.goto(&format!("{base}/portal/event-types")).await;
    press(&browser, "button[aria-label='Send a test wallets.updated']").await;
    let retrying = format!("{base}/portal/events?status=Retrying");
    wait_for_text(&browser, &retrying, "wallets.updated").await;
    let rows = browser.find_all("tbody tr").await.len();
    assert_eq!(rows, 1, "only the failing event is Retrying");

    // Delivered events offer no Retry; the Retrying one does.
    browser.goto(&delivered).await;
    let done = browser.find("tbody form[action$='/retry'] button").await;
    assert!(!browser.enabled(&done).await, "Success cannot be retried");

    failing.store(false, Ordering::SeqCst);
    browser.goto(&retrying).await;
    let retry = browser.find("tbody form[action$='/retry'] button").await;
    assert!(browser.enabled(&retry).await);
    browser.click_and_wait(&retry).await;
    eventually_within(
        Duration::from_secs(20),
        "the retried event to succeed",
        || async { (receiver.received_at("/flaky").len() >= 2).then_some(()) },
    )
    .await;

    // The delivery log shows both attempts: the 500, then the success.
    let flaky_event = receiver.received_at("/flaky")[0]
        .event_id
        .clone()
        .expect("the event has an id");
    let detail = format!("{base}/portal/events/{flaky_event}");
    wait_for_text(&browser, &detail, "Attempt 2").await;
    let log = browser.body_text().await;
    assert!(
        log.contains("status 500"),
        "the first failure is named: {log}"
    );
    assert!(log.contains("Response time"), "{log}");
    let status = browser.find("dl.facts .badge").await;
    assert_eq!(browser.text(&status).await, "Success");

    // Event data with script in it is shown, never run.
    let data = json!({"wallet_id": "w-evil", "name": SCRIPT_NAME, "wallet_type": IMG_NAME});
    let published = server
        .admin
        .publish(&org.org_id, "wallets.created", data)
        .await;
    let evil = published["events"][0]["event_id"]
        .as_str()
        .expect("event_id");
    browser.goto(&format!("{base}/portal/events/{evil}")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(browser.title().await, "Webhook event · Hookgate");
    assert_eq!(
        browser.execute("return typeof window.pwned").await,
        "undefined"
    );
    let images = browser
        .execute("return document.querySelectorAll('main img').length")
        .await;
    assert_eq!(images, json!(0), "no element was made from the data");
    assert!(
        browser.body_text().await.contains(SCRIPT_NAME),
        "shown as text"
    );
    browser
        .goto(&format!("{base}/portal/events?q=wallets.created"))
        .await;
    assert_eq!(
        browser.execute("return typeof window.pwned").await,
        "undefined"
    );

    browser.quit().await;
    server.stop().await;
}

/// Screenshots of every page into `HOOKGATE_SCREENSHOT_DIR`, from a server
/// already running at `HOOKGATE_PORTAL_URL` with an organisation whose API
/// key secret is `HOOKGATE_PORTAL_SECRET` (as `scripts/screenshots` sets
/// up with the demo).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/screenshots against a running demo"]
async fn screenshots() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let base = var("HOOKGATE_PORTAL_URL");
    let secret = var("HOOKGATE_PORTAL_SECRET");
    let dir = std::path::PathBuf::from(var("HOOKGATE_SCREENSHOT_DIR"));
    std::fs::create_dir_all(&dir).expect("the screenshot directory can be made");

    let browser = Browser::start(1280, 900).await;
    let save = |name: &str, png: Vec<u8>| {
        std::fs::write(dir.join(name), png).expect("the screenshot is written");
    };
    browser.goto(&format!("{base}/portal/signin")).await;
    save("signin.png", browser.screenshot().await);
    let field = browser.find("#secret").await;
    browser.type_into(&field, &secret).await;
    press(&browser, "form[action='/portal/signin'] button").await;

    // The first link of a list page, to show one item of it.
    let first_link = |list: String, prefix: &'static str| {
        let browser = &browser;
        let base = base.clone();
        async move {
            browser.goto(&format!("{base}{list}")).await;
            let script =
                format!("const a = document.querySelector(\"tbody a[href^='{prefix}']\"); return a && a.getAttribute('href');");
            browser.execute(&script).await.as_str().map(str::to_owned)
        }
    };
    let mut pages: Vec<(&str, String)> = vec![
        ("overview.png", "/portal/overview".into()),
        ("endpoints.png", "/portal/endpoints".into()),
        ("endpoint-new.png", "/portal/endpoints/new".into()),
        ("events.png", "/portal/events".into()),
        ("callbacks.png", "/portal/callbacks".into()),
        ("event-types.png", "/portal/event-types".into()),
    ];
    // One item of each list: an event that needed retries when there is one.
    let troubled = "/portal/events?status=Retrying&status=Failed".to_owned();
    let event = match first_link(troubled, "/portal/events/").await {
        Some(link) => Some(link),
        None => first_link("/portal/events".into(), "/portal/events/").await,
    };
    let items = [
        ("event.png", event),
        (
            "callback.png",
            first_link("/portal/callbacks".into(), "/portal/callbacks/").await,
        ),
        (
            "endpoint.png",
            first_link("/portal/endpoints".into(), "/portal/endpoints/").await,
        ),
    ];
    for (name, link) in items {
        pages.push((
            name,
            link.unwrap_or_else(|| panic!("no item to show for {name}")),
        ));
    }

    for (name, path) in &pages {
        browser.resize(1280, 900).await;
        browser.goto(&format!("{base}{path}")).await;
        let height = browser
            .execute("return document.documentElement.scrollHeight")
            .await
            .as_u64()
            .unwrap_or(900)
            .clamp(600, 2400);
        browser.resize(1280, height as u32).await;
        save(name, browser.screenshot().await);
    }

    browser.resize(390, 844).await;
    for (name, path) in [
        ("phone-overview.png", "/portal/overview"),
        ("phone-events.png", "/portal/events"),
    ] {
        browser.goto(&format!("{base}{path}")).await;
        save(name, browser.screenshot().await);
    }
    browser.quit().await;
}
