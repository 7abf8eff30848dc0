//! The `hookgate` command line, run as the real binary against real
//! servers on loopback: listening and forwarding, test triggers, grading a
//! handler, signature checks, the API commands, profiles, and the errors
//! and exit codes of bad input.

mod support;

use std::time::Duration;

use hookgate_receiver::Verifier;
use serde_json::{json, Value};

use support::capture::{Capture, Mode};
use support::cli::{new_org, run, ChildServer, Listening};
use support::server::{TestServer, ADMIN_TOKEN};
use support::{eventually, TempDir, TX_CREATED};

/// The published test key of `hookgate webhook test` (RFC 8032 test 1).
const TEST_PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const TEST_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// Connection flags for `server` and `secret`.
fn connect<'a>(base: &'a str, secret: &'a str) -> Vec<&'a str> {
    vec!["--server", base, "--api-key", secret]
}

fn args<'a>(first: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    first.iter().chain(rest).copied().collect()
}

#[tokio::test]
async fn a_trigger_reaches_a_listener() {
    let server = TestServer::start(|_| {}).await;
    let org = new_org(&server.base, None).await;
    let home = TempDir::new("cli-home");
    let auth = connect(&server.base, &org.secret);

    let listener = Listening::start(home.path(), &auth).await;
    let triggered = run(
        home.path(),
        &args(
            &auth,
            &[
                "webhook",
                "trigger",
                TX_CREATED,
                "--override",
                r#"{"status":"Completed"}"#,
            ],
        ),
    )
    .await;
    assert_eq!(triggered.code, 0, "{triggered:?}");
    assert!(
        triggered.stdout.contains("Triggered"),
        "{}",
        triggered.stdout
    );

    let events = listener.wait_events(1).await;
    assert_eq!(events[0]["event_type"], TX_CREATED);
    let body: Value = serde_json::from_str(events[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], TX_CREATED);
    assert_eq!(body["data"]["status"], "Completed");
    assert_eq!(body["url"], "hookgate-cli://listen");
    listener.stop().await;
}

#[tokio::test]
async fn forwarding_posts_the_exact_bytes_with_signature_headers_path_and_query() {
    let server = TestServer::start(|_| {}).await;
    let org = new_org(&server.base, None).await;
    let capture = Capture::start(Mode::AcceptAll).await;
    let home = TempDir::new("cli-home");
    let forward = capture.url("/hooks/cobo?env=dev&x=1");
    let auth = connect(&server.base, &org.secret);

    let listener = Listening::start(
        home.path(),
        &args(&auth, &["--events", TX_CREATED, "--forward", &forward]),
    )
    .await;
    let mut data = support::transaction("tx-ü-1");
    data["description"] = json!("a/b & <c> \u{2028} 名前");
    server.admin.publish(&org.org_id, TX_CREATED, data).await;
    server
        .admin
        .publish(
            &org.org_id,
            support::WALLET_CREATED,
            support::wallet_info("skip"),
        )
        .await;

    let forwards = listener.wait_forwards(1).await;
    assert_eq!(forwards[0]["status"], 200, "{forwards:?}");
    let printed = listener.events();
    assert_eq!(
        printed.len(),
        1,
        "the filter leaves other types out: {printed:?}"
    );

    let requests = capture.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.uri, "/hooks/cobo?env=dev&x=1");
    assert_eq!(
        request.body.as_ref(),
        printed[0]["body"].as_str().unwrap().as_bytes(),
        "the body is forwarded byte for byte"
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    for name in [
        "biz-timestamp",
        "biz-resp-signature",
        "biz_timestamp",
        "biz_resp_signature",
    ] {
        assert!(request.header(name).is_some(), "{name} is forwarded");
    }
    let verifier = Verifier::cobo_v2(&server.public_key_v2).unwrap();
    verifier
        .verify(&request.headers, &request.body)
        .expect("the forwarded request verifies with the server's public key");

    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["url"], forward, "the body names the forward URL");
    assert_eq!(body["data"]["description"], "a/b & <c> \u{2028} 名前");
    listener.stop().await;
}

#[tokio::test]
async fn a_hung_handler_times_out_without_holding_up_later_events() {
    let server = TestServer::start(|_| {}).await;
    let org = new_org(&server.base, None).await;
    let capture = Capture::start(Mode::HangFirst(Duration::from_secs(30))).await;
    let home = TempDir::new("cli-home");
    let forward = capture.url("/slow");
    let auth = connect(&server.base, &org.secret);

    let listener = Listening::start(
        home.path(),
        &args(&auth, &["--forward", &forward, "--forward-timeout", "2"]),
    )
    .await;
    for i in 0..3 {
        let data = support::transaction(&format!("tx-{i}"));
        server.admin.publish(&org.org_id, TX_CREATED, data).await;
    }

    let forwards = listener.wait_forwards(3).await;
    let answered: Vec<&Value> = forwards.iter().filter(|f| f["status"] == 200).collect();
    assert_eq!(answered.len(), 2, "{forwards:?}");
    let last = &forwards[2];
    assert!(
        last["status"].is_null(),
        "the hung one ends last: {forwards:?}"
    );
    assert!(
        last["error"].as_str().unwrap().contains("timed out"),
        "{forwards:?}"
    );
    listener.stop().await;
}

#[tokio::test]
async fn events_published_while_the_server_restarts_still_reach_the_listener() {
    let mut server = ChildServer::start().await;
    let org = new_org(&server.base, None).await;
    let home = TempDir::new("cli-home");
    let auth = connect(&server.base, &org.secret);
    let admin = support::server::ApiClient::new(&server.base, Some(ADMIN_TOKEN));

    let listener = Listening::start(home.path(), &args(&auth, &["--ping-interval", "0.5"])).await;
    admin
        .publish(&org.org_id, TX_CREATED, support::transaction("before"))
        .await;
    listener.wait_events(1).await;

    server.restart().await;
    admin
        .publish(
            &org.org_id,
            TX_CREATED,
            support::transaction("while-away-1"),
        )
        .await;
    admin
        .publish(
            &org.org_id,
            TX_CREATED,
            support::transaction("while-away-2"),
        )
        .await;
    listener.wait_stderr("connection lost").await;
    listener.wait_stderr_count("connected", 2).await;
    admin
        .publish(&org.org_id, TX_CREATED, support::transaction("after"))
        .await;

    let events = listener.wait_events(4).await;
    let ids: Vec<String> = events
        .iter()
        .map(|e| {
            let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
            body["data"]["transaction_id"].as_str().unwrap().to_owned()
        })
        .collect();
    for wanted in ["before", "while-away-1", "while-away-2", "after"] {
        assert_eq!(
            ids.iter().filter(|id| *id == wanted).count(),
            1,
            "{wanted} arrives exactly once: {ids:?}"
        );
    }
    listener.stop().await;
    server.kill().await;
}

#[tokio::test]
async fn webhook_test_with_tamper_fails_a_lax_handler_and_passes_a_verifying_one() {
    let home = TempDir::new("cli-home");
    let lax = Capture::start(Mode::AcceptAll).await;
    let url = lax.url("/webhooks?from=test");
    let graded = run(
        home.path(),
        &["webhook", "test", "--forward", &url, "--tamper"],
    )
    .await;
    assert_eq!(graded.code, 1, "{graded:?}");
    assert!(graded.stdout.contains("FAIL"), "{}", graded.stdout);
    assert!(
        graded.stdout.contains(TEST_PUBLIC_KEY),
        "the key is printed"
    );
    let requests = lax.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].uri, "/webhooks?from=test");
    let changed = requests[0]
        .body
        .iter()
        .zip(requests[1].body.iter())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(changed, 1, "the forged copy differs by one byte");

    let strict = Capture::start(Mode::Verify(TEST_PUBLIC_KEY.into())).await;
    let url = strict.url("/webhooks");
    let graded = run(
        home.path(),
        &[
            "-o",
            "json",
            "webhook",
            "test",
            "--forward",
            &url,
            "--tamper",
        ],
    )
    .await;
    assert_eq!(graded.code, 0, "{graded:?}");
    let report = graded.json();
    assert_eq!(report["pass"], true);
    assert_eq!(report["checks"][0]["status"], 200);
    assert_eq!(report["checks"][1]["status"], 401);
}

#[tokio::test]
async fn verify_names_the_matching_scheme_or_the_reason() {
    let home = TempDir::new("cli-home");
    let capture = Capture::start(Mode::AcceptAll).await;
    let url = capture.url("/h");
    run(home.path(), &["webhook", "test", "--forward", &url]).await;
    let request = capture.requests().remove(0);

    let body = home.path().join("body.json");
    std::fs::write(&body, &request.body).unwrap();
    let body = body.to_str().unwrap();
    let timestamp = format!(
        "Biz-Timestamp: {}",
        request.header("biz-timestamp").unwrap()
    );
    let signature = format!(
        "Biz-Resp-Signature: {}",
        request.header("biz-resp-signature").unwrap()
    );
    let check = |body: String, key: &'static str| {
        let (timestamp, signature) = (timestamp.clone(), signature.clone());
        let home = home.path().to_owned();
        async move {
            let argv = [
                "verify",
                "--body",
                &body,
                "-H",
                &timestamp,
                "-H",
                &signature,
                "--public-key",
                key,
            ];
            run(&home, &argv).await
        }
    };

    let valid = check(body.to_owned(), TEST_PUBLIC_KEY).await;
    assert_eq!(valid.code, 0, "{valid:?}");
    assert!(valid.stdout.contains("Cobo WaaS 2.0"), "{}", valid.stdout);

    let mut forged = request.body.to_vec();
    forged[10] ^= 1;
    let forged_path = home.path().join("forged.json");
    std::fs::write(&forged_path, forged).unwrap();
    let invalid = check(forged_path.to_str().unwrap().to_owned(), TEST_PUBLIC_KEY).await;
    assert_eq!(invalid.code, 1, "{invalid:?}");
    assert!(
        invalid.stdout.contains("signature does not match"),
        "{}",
        invalid.stdout
    );

    let no_key = run(home.path(), &["verify", "--body", body]).await;
    assert_eq!(no_key.code, 2, "{no_key:?}");
    assert!(no_key.stderr.contains("--public-key"), "{}", no_key.stderr);
}

#[tokio::test]
async fn bad_flags_and_bad_json_are_refused_before_any_request() {
    let home = TempDir::new("cli-home");
    let capture = Capture::start(Mode::AcceptAll).await;
    let base = capture.url("");
    let auth = connect(&base, "secret");

    let cases: [(&[&str], &str); 5] = [
        (
            &["webhook", "trigger", TX_CREATED, "--override", "[1,2]"],
            "must be a JSON object",
        ),
        (
            &["webhook", "trigger", TX_CREATED, "--override", "{status:"],
            "not valid JSON",
        ),
        (
            &["webhook", "trigger", "wallets.transaction.create"],
            "wallets.transaction.created",
        ),
        (
            &["webhook", "listen", "--events", "nope.nothing"],
            "not an event type",
        ),
        (
            &["webhook", "listen", "--forward", "ftp://127.0.0.1/x"],
            "not an http(s) URL",
        ),
    ];
    for (argv, says) in cases {
        let outcome = run(home.path(), &args(&auth, argv)).await;
        assert_eq!(outcome.code, 2, "{argv:?}: {outcome:?}");
        assert!(
            outcome.stderr.contains(says),
            "{argv:?}: {}",
            outcome.stderr
        );
    }
    assert!(capture.requests().is_empty(), "nothing was sent");

    let unknown_flag = run(home.path(), &["webhook", "trigger", "--bogus"]).await;
    assert_eq!(unknown_flag.code, 2);
    let no_server = run(home.path(), &["endpoints", "list"]).await;
    assert_eq!(no_server.code, 2);
    assert!(
        no_server.stderr.contains("--server"),
        "{}",
        no_server.stderr
    );
    let unreachable = run(
        home.path(),
        &[
            "--server",
            "http://127.0.0.1:1",
            "--api-key",
            "k",
            "endpoints",
            "list",
        ],
    )
    .await;
    assert_eq!(unreachable.code, 4, "{unreachable:?}");
}

#[tokio::test]
async fn api_commands_manage_endpoints_and_show_events_with_attempts() {
    let server = TestServer::start(|_| {}).await;
    let org = new_org(&server.base, None).await;
    let capture = Capture::start(Mode::AcceptAll).await;
    let home = TempDir::new("cli-home");
    let auth = connect(&server.base, &org.secret);
    let url = capture.url("/endpoint");

    let created = run(
        home.path(),
        &args(
            &auth,
            &[
                "-o",
                "json",
                "endpoints",
                "create",
                "--url",
                &url,
                "--events",
                TX_CREATED,
            ],
        ),
    )
    .await;
    assert_eq!(created.code, 0, "{created:?}");
    let endpoint_id = created.json()["endpoint_id"].as_str().unwrap().to_owned();

    let listed = run(home.path(), &args(&auth, &["endpoints", "list"])).await;
    assert!(listed.stdout.contains(&endpoint_id), "{}", listed.stdout);
    assert!(
        listed.stdout.starts_with("ENDPOINT ID"),
        "{}",
        listed.stdout
    );

    let published = server
        .admin
        .publish(&org.org_id, TX_CREATED, support::transaction("api-1"))
        .await;
    let event_id = published["events"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the delivery to succeed", || async {
        let shown = run(
            home.path(),
            &args(
                &auth,
                &[
                    "-o",
                    "json",
                    "events",
                    "show",
                    "--endpoint",
                    &endpoint_id,
                    &event_id,
                ],
            ),
        )
        .await;
        (shown.code == 0 && shown.json()["event"]["status"] == "Success").then_some(shown)
    })
    .await;
    let shown = run(
        home.path(),
        &args(
            &auth,
            &["events", "show", "--endpoint", &endpoint_id, &event_id],
        ),
    )
    .await;
    assert!(shown.stdout.contains("attempts:"), "{}", shown.stdout);
    assert!(shown.stdout.contains("200"), "{}", shown.stdout);

    let revoked = run(
        home.path(),
        &args(&auth, &["endpoints", "revoke", &endpoint_id]),
    )
    .await;
    assert_eq!(revoked.code, 0, "{revoked:?}");
    let missing = run(
        home.path(),
        &args(&auth, &["endpoints", "show", "no-such-endpoint"]),
    )
    .await;
    assert_eq!(missing.code, 3, "{missing:?}");
}

#[tokio::test]
async fn signed_requests_and_profiles_authenticate_the_cli() {
    let server = TestServer::start(|_| {}).await;
    let org = new_org(&server.base, Some(TEST_PUBLIC_KEY)).await;
    let home = TempDir::new("cli-home");
    let profiles = home.path().join("hookgate");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("profiles.toml"),
        format!(
            "default = \"signed\"\n\n[profiles.signed]\nserver = \"{}\"\napi_private_key = \"{TEST_SEED}\"\n\n\
             [profiles.wrong]\nserver = \"{}\"\napi_private_key = \"{}\"\n",
            server.base,
            server.base,
            "11".repeat(32)
        ),
    )
    .unwrap();

    let listener = Listening::start(home.path(), &[]).await;
    let triggered = run(home.path(), &["webhook", "trigger", TX_CREATED]).await;
    assert_eq!(triggered.code, 0, "{triggered:?}");
    listener.wait_events(1).await;
    let listed = run(
        home.path(),
        &["endpoints", "list", "--status", "STATUS_ACTIVE"],
    )
    .await;
    assert_eq!(listed.code, 0, "{listed:?}");

    let wrong = run(home.path(), &["--profile", "wrong", "endpoints", "list"]).await;
    assert_eq!(wrong.code, 3, "{wrong:?}");
    assert!(wrong.stderr.contains("401"), "{}", wrong.stderr);
    let missing = run(home.path(), &["--profile", "nope", "endpoints", "list"]).await;
    assert_eq!(missing.code, 2, "{missing:?}");
    let _ = org.org_id;
    listener.stop().await;
}
