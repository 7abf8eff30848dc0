//! Realistic transactions and the events of their lifecycles.
//!
//! Each transaction is created, updated three times while confirming (with
//! a rising `confirmed_num`), then succeeds or fails. Its final outcome is
//! also pushed as a WaaS 1.0 transaction notification, as an organisation
//! that runs both generations side by side would receive it: the MPC form
//! for withdrawals, the custodial form for deposits, with the amount in the
//! token's smallest unit (2.0 uses the main unit).

use anyhow::Context;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::client::ApiClient;

/// One planned transaction.
#[derive(Clone, Copy)]
pub struct Plan {
    /// `Withdrawal` or `Deposit`.
    pub kind: &'static str,
    /// Chain id.
    pub chain: &'static str,
    /// Token id.
    pub token: &'static str,
    /// Decimal places of the token.
    pub decimals: u32,
    /// Amount in the main unit, as a decimal string.
    pub amount: &'static str,
    /// Whether it ends `Completed` (else `Failed`).
    pub succeeds: bool,
}

/// Three withdrawals and two deposits, two of which fail.
pub const PLANS: [Plan; 5] = [
    Plan {
        kind: "Withdrawal",
        chain: "ETH",
        token: "ETH_USDT",
        decimals: 6,
        amount: "1250.75",
        succeeds: true,
    },
    Plan {
        kind: "Withdrawal",
        chain: "ETH",
        token: "ETH_USDT",
        decimals: 6,
        amount: "842.10",
        succeeds: false,
    },
    Plan {
        kind: "Withdrawal",
        chain: "TRON",
        token: "TRON_USDT",
        decimals: 6,
        amount: "19.99",
        succeeds: true,
    },
    Plan {
        kind: "Deposit",
        chain: "BTC",
        token: "BTC",
        decimals: 8,
        amount: "0.0421735",
        succeeds: true,
    },
    Plan {
        kind: "Deposit",
        chain: "BTC",
        token: "BTC",
        decimals: 8,
        amount: "0.5",
        succeeds: false,
    },
];

/// What publishing the lifecycles sent.
pub struct Published {
    /// WaaS 2.0 occurrences.
    pub occurrences: usize,
    /// WaaS 1.0 notifications.
    pub waas1_notifications: usize,
}

/// Publishes every plan's lifecycle, plans concurrently, steps in order.
pub async fn publish_all(admin: &ApiClient, org_id: &str) -> anyhow::Result<Published> {
    let mut tasks = Vec::new();
    for plan in &PLANS {
        let admin = admin.clone();
        let org_id = org_id.to_owned();
        let tx = transaction(plan.kind, plan.chain, plan.token, plan.amount);
        let plan = *plan;
        tasks.push(tokio::spawn(async move {
            publish_one(&admin, &org_id, tx, &plan).await
        }));
    }

    let mut published = Published {
        occurrences: 0,
        waas1_notifications: 0,
    };
    for task in tasks {
        published.occurrences += task.await.context("a publishing task failed")??;
        published.waas1_notifications += 1;
    }
    Ok(published)
}

/// A fresh `Transaction` with random ids, shaped after the catalogue sample.
pub fn transaction(kind: &str, chain: &str, token: &str, amount: &str) -> Map<String, Value> {
    let mut tx = hookgate_protocol::samples::sample_data(
        hookgate_protocol::catalogue::find("wallets.transaction.updated").expect("core type"),
    );
    tx.remove("data_type");

    let mut rng = rand::thread_rng();
    let cobo_id: String = (0..32)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect();
    let request_id = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let now = hookgate_server::now_ms();
    let initiator = if kind == "Deposit" { "External" } else { "API" };

    tx.insert(
        "transaction_id".into(),
        json!(uuid::Uuid::new_v4().to_string()),
    );
    tx.insert("cobo_id".into(), json!(cobo_id));
    tx.insert("request_id".into(), json!(request_id));
    tx.insert("type".into(), json!(kind));
    tx.insert("chain_id".into(), json!(chain));
    tx.insert("token_id".into(), json!(token));
    tx.insert("initiator_type".into(), json!(initiator));
    tx.insert("created_timestamp".into(), json!(now));
    tx.insert("updated_timestamp".into(), json!(now));
    if let Some(output) = tx
        .get_mut("destination")
        .and_then(|d| d.get_mut("account_output"))
    {
        output["amount"] = json!(amount);
    }
    tx
}

async fn publish_one(
    admin: &ApiClient,
    org_id: &str,
    mut tx: Map<String, Value>,
    plan: &Plan,
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
    steps.push(if plan.succeeds {
        ("succeeded", "Completed", "", 12)
    } else {
        ("failed", "Failed", "FailedOnChain", 3)
    });

    for (step, status, sub_status, confirmed) in &steps {
        tx.insert("status".into(), json!(status));
        tx.insert("sub_status".into(), json!(sub_status));
        tx.insert("confirmed_num".into(), json!(confirmed));
        tx.insert("updated_timestamp".into(), json!(hookgate_server::now_ms()));
        let transaction_id = tx["transaction_id"].as_str().unwrap_or_default();
        let body = json!({
            "org_id": org_id,
            "type": format!("wallets.transaction.{step}"),
            "data": tx,
            "idempotency_key": format!("{transaction_id}-{step}-{confirmed}"),
        });
        admin.post("/producer/v2/events", &body).await?;
    }

    let notification = json!({
        "org_id": org_id,
        "kind": "transaction",
        "body": waas1_body(&tx, plan),
    });
    admin
        .post("/producer/v1/notifications", &notification)
        .await?;
    Ok(steps.len())
}

/// The WaaS 1.0 notification of a transaction's final state.
fn waas1_body(tx: &Map<String, Value>, plan: &Plan) -> Value {
    let text = |name: &str| {
        tx.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let smallest = to_smallest_unit(plan.amount, plan.decimals);
    let created = tx["created_timestamp"].clone();
    let updated = tx["updated_timestamp"].clone();

    if plan.kind == "Withdrawal" {
        json!({
            "cobo_id": text("cobo_id"),
            "request_id": text("request_id"),
            "status": if plan.succeeds { 900 } else { 901 },
            "coin_detail": {"coin": plan.token, "chain_code": plan.chain, "decimal": plan.decimals},
            "amount_detail": {"amount": smallest, "abs_amount": plan.amount},
            "tx_hash": text("transaction_hash"),
            "created_time": created,
            "updated_time": updated,
        })
    } else {
        json!({
            "id": text("cobo_id"),
            "coin": plan.token,
            "display_code": plan.token,
            "description": "Bitcoin",
            "address": "bc1qxz6mje2cam2wyjuczzdzzcykhkxe5m7wrd0egv",
            "source_address": "bc1qymzqkkl5r9qnzna9nu3dq6nrkwr3nnl5fgqx9m",
            "side": "deposit",
            "amount": smallest,
            "decimal": plan.decimals,
            "abs_amount": plan.amount,
            "txid": text("transaction_hash"),
            "vout_n": 0,
            "request_id": null,
            "status": if plan.succeeds { "success" } else { "failed" },
            "created_time": created,
            "last_time": updated,
            "memo": "",
            "confirming_threshold": 12,
            "confirmed_num": if plan.succeeds { 12 } else { 3 },
            "type": "external",
        })
    }
}

/// `"1250.75"` with 6 decimals is `"1250750000"`: exact, in text, never
/// through floating point.
pub fn to_smallest_unit(amount: &str, decimals: u32) -> String {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let mut digits = whole.to_owned();
    let mut fraction = fraction.to_owned();
    fraction.truncate(decimals as usize);
    digits.push_str(&format!("{fraction:0<width$}", width = decimals as usize));
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_convert_to_the_smallest_unit_exactly() {
        assert_eq!(to_smallest_unit("1250.75", 6), "1250750000");
        assert_eq!(to_smallest_unit("0.0421735", 8), "4217350");
        assert_eq!(to_smallest_unit("0.5", 8), "50000000");
        assert_eq!(to_smallest_unit("19.99", 6), "19990000");
        assert_eq!(to_smallest_unit("0", 6), "0");
    }
}
