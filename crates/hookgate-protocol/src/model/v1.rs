//! The WaaS 1.0 callback bodies: the custodial form (flat, `id`, text
//! `status`) and the MPC form (nested details, `cobo_id`, integer `status`).
//!
//! Both kinds of 1.0 callback (transaction notification and withdrawal
//! confirmation) carry one of these two shapes; [`V1Callback`] tells them
//! apart by the presence of `cobo_id`. Amounts are in the token's smallest
//! unit here, unlike 2.0: never compare them across versions unconverted.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{open_enum, Extra};

open_enum! {
    /// Direction of a custodial transaction.
    pub enum Side {
        /// Funds arriving.
        Deposit = "deposit",
        /// Funds leaving.
        Withdraw = "withdraw",
    }
}

open_enum! {
    /// Status of a custodial transaction.
    pub enum CustodialStatus {
        /// Done: final success.
        Success = "success",
        /// Not final yet (confirming, or awaiting a withdrawal confirmation).
        Pending = "pending",
        /// Final failure.
        Failed = "failed",
    }
}

/// Status of an MPC transaction: an integer on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MpcStatus {
    /// `900`: final success.
    Success,
    /// `901`: final failure.
    Failed,
    /// Any other code, kept as sent.
    Other(i64),
}

impl MpcStatus {
    /// The integer as it appears on the wire.
    pub fn code(self) -> i64 {
        match self {
            MpcStatus::Success => 900,
            MpcStatus::Failed => 901,
            MpcStatus::Other(code) => code,
        }
    }
}

impl From<i64> for MpcStatus {
    fn from(code: i64) -> Self {
        match code {
            900 => MpcStatus::Success,
            901 => MpcStatus::Failed,
            other => MpcStatus::Other(other),
        }
    }
}

impl Serialize for MpcStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for MpcStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i64::deserialize(deserializer).map(MpcStatus::from)
    }
}

/// A WaaS 1.0 custodial callback body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustodialTransaction {
    /// The Cobo transaction id; empty in a withdrawal confirmation, which is
    /// asked before the id exists (match those on `request_id`).
    pub id: String,
    /// Cobo's coin code (`BTC`, `ETH_USDT`, ...).
    pub coin: String,
    /// The coin's display code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_code: Option<String>,
    /// The coin's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Decimals of the coin's smallest unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal: Option<u32>,
    /// The wallet's address (destination of a deposit, of a withdrawal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The other party's address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// Direction.
    pub side: Side,
    /// Amount in the smallest unit, as text.
    pub amount: String,
    /// Amount in the main unit, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_amount: Option<String>,
    /// On-chain hash; empty before broadcast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
    /// Output index (UTXO chains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vout_n: Option<u64>,
    /// The withdrawal's request id; `null` for deposits.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Where it stands.
    pub status: CustodialStatus,
    /// Confirmations seen so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_num: Option<u64>,
    /// Confirmations needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirming_threshold: Option<u64>,
    /// Cobo's transaction category (`external`, `internal`, ...).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<String>,
    /// When it was created, Unix ms.
    pub created_time: i64,
    /// When it last changed, Unix ms.
    pub last_time: i64,
    /// Memo or tag, for chains that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// Every field not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A coin as the MPC form describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpcCoinDetail {
    /// Cobo's coin code.
    pub coin: String,
    /// The chain it lives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_code: Option<String>,
    /// Decimals of the smallest unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal: Option<u32>,
    /// Every field not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The amount of an MPC transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpcAmountDetail {
    /// Smallest unit, as text.
    pub amount: String,
    /// Main unit, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_amount: Option<String>,
    /// Every field not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The fee of an MPC transaction, JSON integers in the smallest unit.
///
/// Limitation: the integers are `u64`, which holds fees up to about 18.4 ETH
/// in wei; a larger value fails to parse rather than being rounded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpcFeeDetail {
    /// The coin the fee is paid in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_coin_detail: Option<MpcCoinDetail>,
    /// Gas price, smallest unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_price: Option<u64>,
    /// Gas limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_limit: Option<u64>,
    /// Fee paid, smallest unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_used: Option<u64>,
    /// Every field not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A WaaS 1.0 MPC callback body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpcTransaction {
    /// The Cobo transaction id, shared with 2.0's `data.cobo_id`.
    pub cobo_id: String,
    /// The request id given by the initiator, if any.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Where it stands.
    pub status: MpcStatus,
    /// The coin moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coin_detail: Option<MpcCoinDetail>,
    /// The amount moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_detail: Option<MpcAmountDetail>,
    /// The fee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_detail: Option<MpcFeeDetail>,
    /// On-chain hash, once broadcast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// Confirmations seen so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_number: Option<u64>,
    /// When it was created, Unix ms.
    pub created_time: i64,
    /// When it last changed, Unix ms.
    pub updated_time: i64,
    /// Every field not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A WaaS 1.0 callback body of either form.
#[derive(Clone, Debug, PartialEq)]
pub enum V1Callback {
    /// The flat custodial form.
    Custodial(Box<CustodialTransaction>),
    /// The nested MPC form.
    Mpc(Box<MpcTransaction>),
}

impl V1Callback {
    /// The Cobo transaction id, when the body has a non-empty one.
    pub fn cobo_id(&self) -> Option<&str> {
        let id = match self {
            V1Callback::Custodial(t) => t.id.as_str(),
            V1Callback::Mpc(t) => t.cobo_id.as_str(),
        };
        (!id.is_empty()).then_some(id)
    }

    /// The request id, if any.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            V1Callback::Custodial(t) => t.request_id.as_deref(),
            V1Callback::Mpc(t) => t.request_id.as_deref(),
        }
    }
}

impl<'de> Deserialize<'de> for V1Callback {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let is_mpc = map.contains_key("cobo_id");
        let value = Value::Object(map);

        if is_mpc {
            serde_json::from_value(value)
                .map(|t| V1Callback::Mpc(Box::new(t)))
                .map_err(|e| D::Error::custom(format!("1.0 MPC body: {e}")))
        } else {
            serde_json::from_value(value)
                .map(|t| V1Callback::Custodial(Box::new(t)))
                .map_err(|e| D::Error::custom(format!("1.0 custodial body: {e}")))
        }
    }
}

impl Serialize for V1Callback {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            V1Callback::Custodial(t) => t.serialize(serializer),
            V1Callback::Mpc(t) => t.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::samples::V1;

    fn sample(part: &str) -> &'static str {
        V1.iter().find(|(name, _)| name.contains(part)).unwrap().1
    }

    #[test]
    fn every_v1_sample_parses_without_losing_fields() {
        for (name, text) in V1 {
            let body: V1Callback = serde_json::from_str(text).expect(name);
            let original: Value = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_value(&body).unwrap(), original, "{name}");
        }
    }

    #[test]
    fn mpc_fee_integers_beyond_32_bits_are_read() {
        let body: V1Callback = serde_json::from_str(sample("mpc")).unwrap();
        let V1Callback::Mpc(mpc) = body else {
            panic!("expected the MPC form")
        };
        assert_eq!(mpc.status, MpcStatus::Success);
        assert_eq!(
            mpc.fee_detail.unwrap().fee_used,
            Some(1_184_190_400_276_283)
        );
    }

    #[test]
    fn confirmation_without_id_has_no_cobo_id() {
        let body: V1Callback = serde_json::from_str(sample("withdrawal-confirmation")).unwrap();
        assert_eq!(body.cobo_id(), None);
        assert_eq!(body.request_id(), Some("payout-20250311-000422"));
    }

    #[test]
    fn deposit_with_null_request_id_parses() {
        let body: V1Callback = serde_json::from_str(sample("deposit-notification")).unwrap();
        let V1Callback::Custodial(t) = body else {
            panic!("expected the custodial form")
        };
        assert_eq!(t.request_id, None);
        assert_eq!(t.status, CustodialStatus::Success);
        assert_eq!(t.side, Side::Deposit);
    }

    #[test]
    fn unknown_codes_and_statuses_are_kept() {
        assert_eq!(
            serde_json::from_str::<MpcStatus>("501").unwrap(),
            MpcStatus::Other(501)
        );
        let status: CustodialStatus = serde_json::from_str("\"cancelled\"").unwrap();
        assert_eq!(status.as_str(), "cancelled");
    }
}
