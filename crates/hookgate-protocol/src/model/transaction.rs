//! The WaaS 2.0 `Transaction`: the `data` of transaction events (beside
//! `data_type`) and, with no envelope at all, the body of a callback message.
//!
//! The polymorphic parts (`source`, `destination`, `fee`) are kept as JSON
//! values: their shape depends on `source_type`, `destination_type` and
//! `fee_type`, and a receiver usually reads one or two fields of them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{open_enum, Extra};

open_enum! {
    /// What kind of transaction this is.
    pub enum TransactionType {
        /// Funds arriving in a wallet.
        Deposit = "Deposit",
        /// Funds leaving a wallet.
        Withdrawal = "Withdrawal",
        /// A smart-contract call.
        ContractCall = "ContractCall",
        /// A message signature.
        MessageSign = "MessageSign",
    }
}

open_enum! {
    /// Where a transaction stands.
    pub enum TransactionStatus {
        /// Accepted, not yet processed.
        Submitted = "Submitted",
        /// Under risk screening.
        PendingScreening = "PendingScreening",
        /// Waiting for approval (the step a callback answers).
        PendingAuthorization = "PendingAuthorization",
        /// Waiting for signing.
        PendingSignature = "PendingSignature",
        /// Being broadcast to the chain.
        Broadcasting = "Broadcasting",
        /// On chain, collecting confirmations.
        Confirming = "Confirming",
        /// Done: final success.
        Completed = "Completed",
        /// Final failure.
        Failed = "Failed",
        /// Refused before reaching the chain: final.
        Rejected = "Rejected",
        /// Waiting for something not listed above.
        Pending = "Pending",
    }
}

impl TransactionStatus {
    /// Whether no later status can follow this one.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TransactionStatus::Completed | TransactionStatus::Failed | TransactionStatus::Rejected
        )
    }
}

open_enum! {
    /// Who started a transaction.
    pub enum InitiatorType {
        /// Through the API.
        Api = "API",
        /// In the web console.
        Web = "Web",
        /// In the mobile app.
        App = "App",
        /// From outside the organisation (deposits).
        External = "External",
    }
}

/// A WaaS 2.0 transaction.
///
/// Only `transaction_id` is required. The server always sends the fields
/// Cobo's SDK requires (`wallet_id`, `source`, `destination`, the two
/// timestamps, ...), but a receiver that refused a signed body for lacking
/// one would only make the sender retry it, so they are optional here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Cobo's 2.0 id of the transaction (a UUID).
    pub transaction_id: String,
    /// The Cobo transaction id shared with WaaS 1.0 callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cobo_id: Option<String>,
    /// The id the initiator gave the request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The wallet the transaction belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<String>,
    /// The kind of transaction.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<TransactionType>,
    /// Where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TransactionStatus>,
    /// A finer status (`PendingDoubleCheck`, `FailedOnChain`, ...), kept as
    /// text: the list is long and changes often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_status: Option<String>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_reason: Option<String>,
    /// The chain (`ETH`, `BTC`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<String>,
    /// The token (`ETH_USDT`, `BTC`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// Where the funds come from; shape depends on `source_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    /// Where the funds go; shape depends on `destination_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Value>,
    /// The fee; shape depends on `fee_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<Value>,
    /// The API key or user that started it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// Who started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator_type: Option<InitiatorType>,
    /// Confirmations seen so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_num: Option<u64>,
    /// Confirmations needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirming_threshold: Option<u64>,
    /// The on-chain hash, once broadcast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_hash: Option<String>,
    /// The block that holds it, once mined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_info: Option<BlockInfo>,
    /// Free text given by the initiator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was created, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_timestamp: Option<i64>,
    /// When it last changed, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_timestamp: Option<i64>,
    /// Every field not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The block holding a transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// Block height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_number: Option<u64>,
    /// Block time, Unix ms (whole seconds, as chains give them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_timestamp: Option<i64>,
    /// Block hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<String>,
    /// Every field not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::samples::V2_CALLBACKS;

    #[test]
    fn callback_samples_parse_and_round_trip() {
        for (name, text) in V2_CALLBACKS {
            let transaction: Transaction = serde_json::from_str(text).expect(name);
            assert_eq!(
                transaction.status,
                Some(TransactionStatus::PendingAuthorization)
            );
            assert!(
                transaction.extra.contains_key("transaction_process_type"),
                "{name}"
            );

            let original: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                serde_json::to_value(&transaction).unwrap(),
                original,
                "{name}"
            );
        }
    }

    #[test]
    fn a_transaction_with_only_its_id_parses() {
        let transaction: Transaction =
            serde_json::from_str(r#"{"transaction_id":"t","x":1}"#).unwrap();
        assert_eq!(transaction.wallet_id, None);
        assert_eq!(transaction.extra["x"], 1);
    }

    #[test]
    fn unknown_status_is_kept() {
        let status: TransactionStatus = serde_json::from_str("\"Frozen\"").unwrap();
        assert_eq!(status, TransactionStatus::Other("Frozen".into()));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"Frozen\"");
        assert!(!status.is_final());
    }
}
