//! Approval callbacks in the demo: one withdrawal approved, one denied
//! (above the approval service's limit), and one whose approval service is
//! down until its attempts run out, so that it ends `Failed` and never goes
//! ahead.

use std::net::SocketAddr;

use serde_json::json;

use super::lifecycles::transaction;
use super::text;
use crate::client::ApiClient;

/// Attempts a callback message gets in the demo before it ends `Failed`.
pub const DEMO_CALLBACK_ATTEMPTS: u32 = 4;

/// One approval asked and what came of it.
pub struct Approval {
    what: &'static str,
    expected: &'static str,
    status: String,
    proceed: bool,
}

/// Links callback endpoints to two API keys (one answered by the demo's
/// approval service, one whose service is down) and asks about three
/// withdrawals, waiting for each decision.
pub async fn ask(
    admin: &ApiClient,
    org_client: &ApiClient,
    org_id: &str,
    payouts_key_id: &str,
    receiver_addr: SocketAddr,
) -> anyhow::Result<Vec<Approval>> {
    let link = |url: String, api_key_id: &str, description: &str| json!({"url": url, "api_key_id": api_key_id, "description": description});
    let approvals_url = format!("http://{receiver_addr}/approvals");
    org_client
        .post(
            "/v2/developers/callback_endpoints",
            &link(approvals_url, payouts_key_id, "risk engine"),
        )
        .await?;

    let treasury_key = admin
        .post(
            &format!("/producer/orgs/{org_id}/api_keys"),
            &json!({"name": "treasury bot"}),
        )
        .await?;
    let treasury_key_id = text(&treasury_key["api_key_id"])?;
    let closed_port = std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port();
    let down_url = format!("http://127.0.0.1:{closed_port}/approvals");
    org_client
        .post(
            "/v2/developers/callback_endpoints",
            &link(down_url, &treasury_key_id, "approval service that is down"),
        )
        .await?;

    let cases = [
        (
            payouts_key_id,
            "1250.75",
            "Approved",
            "payout of 1,250.75 USDT",
        ),
        (
            payouts_key_id,
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
        let mut tx = transaction("Withdrawal", "ETH", "ETH_USDT", amount);
        tx.insert("status".into(), json!("PendingAuthorization"));
        tx.insert("sub_status".into(), json!("PendingDoubleCheck"));
        let question = json!({
            "org_id": org_id,
            "api_key_id": api_key_id,
            "transaction": tx,
            "wait_ms": 15_000,
        });
        let asked = admin.post("/producer/v2/callbacks", &question).await?;
        approvals.push(Approval {
            what,
            expected,
            status: text(&asked["status"])?,
            proceed: asked["proceed"].as_bool().unwrap_or(false),
        });
    }
    Ok(approvals)
}

/// Prints the approvals; returns whether each ended as its case expects.
pub fn print(approvals: &[Approval]) -> bool {
    println!();
    println!("  approval callbacks (the customer's answer decides; silence never approves)");
    let mut as_expected = true;
    for a in approvals {
        let verdict = if a.proceed { "goes ahead" } else { "blocked" };
        let note = if a.status == "Failed" {
            format!(" after {DEMO_CALLBACK_ATTEMPTS} unanswered attempts")
        } else {
            String::new()
        };
        println!("  {:<44} {:<9} {verdict}{note}", a.what, a.status);
        as_expected &= a.status == a.expected && a.proceed == (a.expected == "Approved");
    }
    if !as_expected {
        println!("  NOT AS EXPECTED: an approval ended otherwise than its case says");
    }
    as_expected
}
