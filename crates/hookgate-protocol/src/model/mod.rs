//! Typed wire models of the bodies the server sends, for receivers that want
//! more than a `serde_json::Value`.
//!
//! - [`event`]: the WaaS 2.0 webhook event envelope and its `data`;
//! - [`transaction`]: the 2.0 `Transaction`, which is also the whole body of
//!   a 2.0 callback message;
//! - [`tss`]: the 2.0 `TSSRequest`;
//! - [`v1`]: the WaaS 1.0 callback bodies, custodial (flat) and MPC (nested).
//!
//! Three rules hold everywhere:
//!
//! - **Enums are open.** A value this crate does not know becomes
//!   `Other(..)`, never a parse error, and is written back unchanged.
//! - **Unknown fields are kept.** Every object has an `extra` map that
//!   collects the fields it does not name, and writes them back.
//! - **Parse after verifying.** Signatures are checked over the raw bytes;
//!   these models are for reading, never for re-signing. Re-serialising a
//!   parsed body gives equal JSON, not equal bytes.
//!
//! Timestamps are Unix milliseconds (`i64`), amounts are decimal strings.
//!
//! Limitation: an explicit `null` in an optional field that is typed here is
//! read as absent and written back as absent (no 2.0 sample carries one).

pub mod event;
pub mod transaction;
pub mod tss;
pub mod v1;

pub use event::{EventData, EventStatus, WebhookEvent};
pub use transaction::{BlockInfo, InitiatorType, Transaction, TransactionStatus, TransactionType};
pub use tss::{TssRequest, TssRequestStatus, TssRequestType};
pub use v1::{CustodialStatus, CustodialTransaction, MpcStatus, MpcTransaction, Side, V1Callback};

/// Extra fields of an object, kept in their original order.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// Defines an open string enum: known wire values get variants, anything
/// else is kept in `Other(String)`. Serialises to and from a JSON string.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Other(value) => value,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $wire => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok($name::from(value.as_ref()))
            }
        }
    };
}

pub(crate) use open_enum;

#[cfg(test)]
pub(crate) mod samples {
    //! The sample bodies shared with the receiver's tests.

    macro_rules! sample {
        ($name:literal) => {
            (
                $name,
                include_str!(concat!("../../../../testdata/samples/", $name)),
            )
        };
    }

    /// WaaS 2.0 webhook events.
    pub const V2_WEBHOOKS: &[(&str, &str)] = &[
        sample!("v2-webhook-contract-call-created.json"),
        sample!("v2-webhook-contract-call-failed.json"),
        sample!("v2-webhook-contract-call-succeeded.json"),
        sample!("v2-webhook-contract-call-updated.json"),
        sample!("v2-webhook-deposit-created.json"),
        sample!("v2-webhook-deposit-failed.json"),
        sample!("v2-webhook-deposit-succeeded.json"),
        sample!("v2-webhook-deposit-updated.json"),
        sample!("v2-webhook-tss-keygen-created.json"),
        sample!("v2-webhook-tss-keygen-failed.json"),
        sample!("v2-webhook-tss-keygen-succeeded.json"),
        sample!("v2-webhook-tss-keygen-updated.json"),
        sample!("v2-webhook-withdrawal-created.json"),
        sample!("v2-webhook-withdrawal-failed.json"),
        sample!("v2-webhook-withdrawal-succeeded.json"),
        sample!("v2-webhook-withdrawal-updated.json"),
    ];

    /// WaaS 2.0 callback messages.
    pub const V2_CALLBACKS: &[(&str, &str)] = &[
        sample!("v2-callback-contract-call.json"),
        sample!("v2-callback-withdrawal.json"),
    ];

    /// WaaS 1.0 callbacks.
    pub const V1: &[(&str, &str)] = &[
        sample!("v1-custodial-deposit-notification.json"),
        sample!("v1-custodial-withdrawal-confirmation.json"),
        sample!("v1-mpc-transaction-notification.json"),
    ];
}
