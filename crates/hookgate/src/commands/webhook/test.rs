//! `hookgate webhook test`: grades a local handler's signature checks.
//!
//! It signs a realistic sample event with a published test key (the RFC
//! 8032 test-1 Ed25519 key pair, so anyone can configure a handler with its
//! public key), posts it, and expects the handler to accept it (2xx). With
//! `--tamper` it then posts the same request with one byte of the body
//! changed and expects a rejection (non-2xx): a handler that accepts both
//! does not check signatures. The exit code is 0 only when every check
//! passes.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hookgate_protocol::headers::{
    BIZ_RESP_SIGNATURE, BIZ_RESP_SIGNATURE_UNDERSCORE, BIZ_TIMESTAMP, BIZ_TIMESTAMP_UNDERSCORE,
};
use hookgate_protocol::signing::cobo_v2;
use hookgate_protocol::{envelope, samples};
use serde_json::{json, Value};

use super::trigger::known_type;
use crate::commands::Context;
use crate::exit::{usage, Failure};
use crate::output::{self, Format};

/// Seed of the published test key (RFC 8032, section 7.1, test 1). Public
/// knowledge: never accept it in production.
pub const TEST_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// Public key of [`TEST_SEED`]: what a handler under test verifies with.
pub const TEST_PUBLIC_KEY: &str =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

/// Options of `hookgate webhook test`.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
hookgate webhook test --forward http://127.0.0.1:3000/webhooks/cobo\n  \
hookgate webhook test --forward http://127.0.0.1:3000/webhooks/cobo --tamper\n\n\
Configure the handler to verify with the published test public key\n  \
d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n\
(RFC 8032 test 1; never accept it in production).\n\
Exit code 0 when the handler passes every check, 1 when it fails one.")]
pub struct Args {
    /// The handler's URL (path and query are kept).
    #[arg(long, value_name = "URL")]
    forward: String,
    /// Also send a copy with one byte of the body changed, which a handler
    /// that checks signatures must reject.
    #[arg(long)]
    tamper: bool,
    /// Event type of the sample.
    #[arg(long, default_value = "wallets.transaction.created")]
    event_type: String,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    timeout: u64,
}

/// A signed sample: body bytes and signature headers.
pub struct SignedSample {
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// Builds and signs a sample event of `event_type` addressed to `url`.
pub fn signed_sample(event_type: &str, url: &str, now_ms: i64) -> SignedSample {
    let entry = hookgate_protocol::catalogue::find(event_type).expect("a catalogue type");
    let data = envelope::normalise_data(entry, samples::sample_data(entry))
        .expect("compiled-in samples are valid");
    let event_id = uuid::Uuid::new_v4().to_string();
    let body = envelope::webhook_body(
        &event_id,
        url,
        now_ms,
        &entry.event_type,
        &envelope::data_json(&data),
    );
    let timestamp = now_ms.to_string();
    let signer = cobo_v2::Signer::from_seed_hex(TEST_SEED).expect("the test seed is valid");
    let signature = signer.sign(&body, &timestamp);
    SignedSample {
        body,
        headers: vec![
            ("Content-Type", "application/json".into()),
            (BIZ_TIMESTAMP, timestamp.clone()),
            (BIZ_RESP_SIGNATURE, signature.clone()),
            (BIZ_TIMESTAMP_UNDERSCORE, timestamp),
            (BIZ_RESP_SIGNATURE_UNDERSCORE, signature),
        ],
    }
}

/// `body` with exactly one byte changed: the first character of the
/// `event_id` value, so that the JSON stays valid and only a signature
/// check can tell.
pub fn tampered(body: &[u8]) -> Vec<u8> {
    let mut copy = body.to_vec();
    let marker = br#""event_id":""#;
    let at = copy
        .windows(marker.len())
        .position(|w| w == marker)
        .map_or(copy.len() / 2, |i| i + marker.len());
    copy[at] = if copy[at] == b'0' { b'1' } else { b'0' };
    copy
}

/// The outcome of one check.
struct Check {
    name: &'static str,
    expect_accept: bool,
    status: Option<u16>,
    latency_ms: u128,
    error: Option<String>,
}

impl Check {
    fn passed(&self) -> bool {
        let accepted = self.status.is_some_and(|s| (200..300).contains(&s));
        match self.expect_accept {
            true => accepted,
            false => self.status.is_some() && !accepted,
        }
    }

    fn json(&self) -> Value {
        json!({
            "check": self.name,
            "expected": if self.expect_accept { "accept" } else { "reject" },
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "pass": self.passed(),
        })
    }

    fn line(&self) -> String {
        let answer = match (&self.status, &self.error) {
            (Some(status), _) => format!("{status} in {} ms", self.latency_ms),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".into(),
        };
        let verdict = match (self.passed(), self.expect_accept) {
            (true, true) => "PASS (accepted)".to_owned(),
            (true, false) => "PASS (rejected)".to_owned(),
            (false, true) => "FAIL: a correctly signed event must be answered with 2xx".to_owned(),
            (false, false) if self.status.is_some() => {
                "FAIL: the handler accepted a forged body; it must verify Biz-Resp-Signature"
                    .to_owned()
            }
            (false, false) => "FAIL: no answer".to_owned(),
        };
        format!("  {:<26} -> {answer:<16} {verdict}", self.name)
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    sample: &SignedSample,
    body: Vec<u8>,
    name: &'static str,
    expect_accept: bool,
) -> Check {
    let mut request = http.post(url).body(body);
    for (header, value) in &sample.headers {
        request = request.header(*header, value);
    }
    let started = Instant::now();
    let result = request.send().await;
    let latency_ms = started.elapsed().as_millis();
    let (status, error) = match result {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(e) if e.is_timeout() => (None, Some("timed out".to_owned())),
        Err(e) => (None, Some(format!("cannot reach the handler: {e}"))),
    };
    Check {
        name,
        expect_accept,
        status,
        latency_ms,
        error,
    }
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let event_type = known_type(&args.event_type)?;
    let url = reqwest::Url::parse(&args.forward)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            usage(format!(
                "--forward {:?} is not an http(s) URL",
                args.forward
            ))
        })?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .build()?;

    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let sample = signed_sample(event_type, url.as_str(), now_ms);
    if context.output == Format::Table {
        println!(
            "Signing with the published test key (RFC 8032 test 1; never trust it in production):"
        );
        println!("  seed        {TEST_SEED}");
        println!("  public key  {TEST_PUBLIC_KEY}");
        println!("Posting to {url}");
    }

    let mut checks = vec![
        post(
            &http,
            url.as_str(),
            &sample,
            sample.body.clone(),
            "signed event",
            true,
        )
        .await,
    ];
    if args.tamper {
        let forged = tampered(&sample.body);
        checks.push(
            post(
                &http,
                url.as_str(),
                &sample,
                forged,
                "one body byte changed",
                false,
            )
            .await,
        );
    }

    let pass = checks.iter().all(Check::passed);
    match context.output {
        Format::Json => output::json::print(&json!({
            "public_key": TEST_PUBLIC_KEY,
            "seed": TEST_SEED,
            "url": url.as_str(),
            "checks": checks.iter().map(Check::json).collect::<Vec<_>>(),
            "pass": pass,
        })),
        Format::Table => {
            for check in &checks {
                println!("{}", check.line());
            }
        }
    }
    if pass {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::Check("the handler failed the test".into()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_key_pair_is_the_published_one() {
        let signer = cobo_v2::Signer::from_seed_hex(TEST_SEED).unwrap();
        assert_eq!(signer.public_key_hex(), TEST_PUBLIC_KEY);
    }

    #[test]
    fn samples_verify_with_the_test_public_key_and_tampering_breaks_them() {
        let sample = signed_sample("wallets.transaction.created", "http://127.0.0.1:1/h", 1);
        let verifier = hookgate_receiver::Verifier::cobo_v2(TEST_PUBLIC_KEY).unwrap();
        let headers: Vec<(&str, &str)> = sample
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        assert!(verifier.verify(&headers, &sample.body).is_ok());

        let forged = tampered(&sample.body);
        let changed = forged
            .iter()
            .zip(&sample.body)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, 1, "exactly one byte differs");
        assert!(
            serde_json::from_slice::<Value>(&forged).is_ok(),
            "still JSON"
        );
        assert!(verifier.verify(&headers, &forged).is_err());
    }
}
