//! `hookgate verify`: checks the signature of a captured request (its raw
//! body and headers) and says which scheme matched, or exactly why none
//! did. The checks are the receiver library's, the same a Rust handler
//! built on it runs.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use hookgate_receiver::{Scheme, Verifier};
use serde_json::json;

use super::Context;
use crate::exit::{usage, Failure};
use crate::output::{self, Format};

/// Options of `hookgate verify`.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
hookgate verify --body body.json --header 'Biz-Timestamp: 1701396866000' \\\n    \
--header 'Biz-Resp-Signature: 3f1c...' --public-key d75a9801...511a\n  \
curl -s ... | hookgate verify --body - --header @headers.txt --secret whsec_...\n\n\
The body file must hold the exact bytes received (never re-serialised JSON).\n\
Exit code 0 when a key verifies the request, 1 when none does.")]
pub struct Args {
    /// File with the raw body as received ('-' reads standard input).
    #[arg(long, value_name = "FILE")]
    body: PathBuf,
    /// A request header, 'Name: value' (repeat for each header), or
    /// '@FILE' for a file of such lines.
    #[arg(long = "header", short = 'H', value_name = "HEADER")]
    headers: Vec<String>,
    /// Cobo WaaS 2.0 Ed25519 public key (64 hex).
    #[arg(long, value_name = "HEX")]
    public_key: Vec<String>,
    /// Cobo WaaS 1.0 secp256k1 public key (66 hex, compressed).
    #[arg(long, value_name = "HEX")]
    v1_public_key: Vec<String>,
    /// Standard Webhooks secret (whsec_...) or public key (whpk_...).
    #[arg(long, value_name = "SECRET")]
    secret: Vec<String>,
    /// Also refuse a timestamp further than this many seconds from now.
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,
}

fn scheme_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::CoboV2 => "Cobo WaaS 2.0 (Ed25519)",
        Scheme::CoboV1 => "Cobo WaaS 1.0 (secp256k1)",
        Scheme::StandardWebhooks => "Standard Webhooks",
    }
}

/// Parses `Name: value` lines.
pub fn parse_headers(specs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    for spec in specs {
        if let Some(file) = spec.strip_prefix('@') {
            let text = std::fs::read_to_string(file)
                .map_err(|e| usage(format!("cannot read the header file {file}: {e}")))?;
            let lines: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            headers.extend(parse_headers(&lines)?);
            continue;
        }
        let (name, value) = spec
            .split_once(':')
            .ok_or_else(|| usage(format!("--header {spec:?} is not 'Name: value'")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(headers)
}

fn verifiers(args: &Args) -> anyhow::Result<Vec<Verifier>> {
    let mut all = Vec::new();
    let bad = |flag: &str, e: hookgate_receiver::ReceiverError| usage(format!("{flag}: {e}"));
    for key in &args.public_key {
        all.push(Verifier::cobo_v2(key).map_err(|e| bad("--public-key", e))?);
    }
    for key in &args.v1_public_key {
        all.push(Verifier::cobo_v1(key).map_err(|e| bad("--v1-public-key", e))?);
    }
    for secret in &args.secret {
        let verifier = if secret.starts_with("whpk_") {
            Verifier::standard_public_key(secret)
        } else {
            Verifier::standard_secret(secret)
        };
        all.push(verifier.map_err(|e| bad("--secret", e))?);
    }
    if all.is_empty() {
        return Err(usage(
            "give the key to check with: --public-key HEX, --v1-public-key HEX or --secret whsec_...",
        ));
    }
    let window = args.max_age.map(Duration::from_secs);
    Ok(all
        .into_iter()
        .map(|v| match window {
            Some(window) => v.with_freshness(window),
            None => v.without_freshness(),
        })
        .collect())
}

pub async fn run(context: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let headers = parse_headers(&args.headers)?;
    let verifiers = verifiers(&args)?;
    let body = if args.body.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading the body from standard input")?;
        bytes
    } else {
        std::fs::read(&args.body)
            .map_err(|e| usage(format!("cannot read the body {}: {e}", args.body.display())))?
    };

    let mut failures = Vec::new();
    for verifier in &verifiers {
        let scheme = scheme_name(verifier.scheme());
        match verifier.verify(&headers, &body) {
            Ok(verified) => {
                let answer = json!({
                    "valid": true,
                    "scheme": scheme,
                    "timestamp": verified.timestamp,
                    "body_bytes": body.len(),
                });
                match context.output {
                    Format::Json => output::json::print(&answer),
                    Format::Table => println!(
                        "valid: {scheme} signature over {} body bytes, timestamp {}",
                        body.len(),
                        verified.timestamp
                    ),
                }
                return Ok(ExitCode::SUCCESS);
            }
            Err(error) => failures.push((scheme, error.to_string())),
        }
    }

    match context.output {
        Format::Json => output::json::print(&json!({
            "valid": false,
            "body_bytes": body.len(),
            "failures": failures
                .iter()
                .map(|(scheme, reason)| json!({"scheme": scheme, "reason": reason}))
                .collect::<Vec<_>>(),
        })),
        Format::Table => {
            println!("invalid: no key verifies these {} body bytes", body.len());
            for (scheme, reason) in &failures {
                println!("  {scheme}: {reason}");
            }
        }
    }
    Err(Failure::Check("the signature did not verify".into()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_at_the_first_colon() {
        let parsed = parse_headers(&["Biz-Timestamp: 17".into(), "X-A:b:c".into()]).unwrap();
        assert_eq!(parsed[0], ("Biz-Timestamp".into(), "17".into()));
        assert_eq!(parsed[1], ("X-A".into(), "b:c".into()));
        assert!(parse_headers(&["no colon".into()]).is_err());
    }
}
