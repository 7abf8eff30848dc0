//! The WaaS 2.0 `TSSRequest`: a key-generation or recovery request of an MPC
//! key share holder group, the `data` of `wallets.mpc.tss_request.*` events.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{open_enum, Extra};

open_enum! {
    /// What a TSS request does.
    pub enum TssRequestType {
        /// Generate a new key.
        KeyGen = "KeyGen",
        /// Generate a key from an existing key share holder group.
        KeyGenFromKeyGroup = "KeyGenFromKeyGroup",
        /// Recover key shares.
        Recovery = "Recovery",
    }
}

open_enum! {
    /// Where a TSS request stands.
    pub enum TssRequestStatus {
        /// Waiting for the key holders to confirm.
        PendingKeyHolderConfirmation = "PendingKeyHolderConfirmation",
        /// The key holders did not confirm: final.
        KeyHolderConfirmationFailed = "KeyHolderConfirmationFailed",
        /// Generating the key.
        KeyGenerating = "KeyGenerating",
        /// The MPC protocol is running.
        MpcProcessing = "MPCProcessing",
        /// Key generation failed: final.
        KeyGeneratingFailed = "KeyGeneratingFailed",
        /// Done: final success.
        Success = "Success",
    }
}

/// A WaaS 2.0 TSS request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TssRequest {
    /// The request's id.
    pub tss_request_id: String,
    /// The group whose shares the request starts from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key_share_holder_group: Option<Value>,
    /// The group the request produces shares for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_key_share_holder_group_id: Option<String>,
    /// What the request does.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<TssRequestType>,
    /// Where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TssRequestStatus>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was created, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_timestamp: Option<i64>,
    /// Every field not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Extra,
}
