//! Deduplication: booking each delivery, and each transaction outcome, once.
//!
//! Deliveries repeat: a retry after a lost reply delivers the same event
//! copy again, and an organisation running WaaS 1.0 callbacks beside 2.0
//! webhooks hears about one transaction through both. Two kinds of key cover
//! this:
//!
//! - [`DedupKey::Event`]: one 2.0 event copy, by its `event_id` (stable over
//!   all attempts). Use it to process each delivery once.
//! - [`DedupKey::TransactionState`]: one Cobo transaction (1.0 custodial
//!   `id`, 1.0 MPC `cobo_id`, 2.0 `data.cobo_id`) in one
//!   [`TransactionState`]. Use it to book an outcome once, whichever version
//!   reported it first.
//!
//! A store's [`DedupStore::mark`] is atomic: of any number of concurrent
//! callers with one key, exactly one is told [`Mark::New`]. If processing
//! fails after marking, call [`DedupStore::forget`] so that the retry is
//! processed.

pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::fmt;

use crate::error::Result;
use crate::model::{
    CustodialStatus, MpcStatus, Transaction, TransactionStatus, V1Callback, WebhookEvent,
};

pub use memory::MemoryDedupStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteDedupStore;

/// A transaction's state, normalised so that 1.0 and 2.0 reports compare.
///
/// | state | WaaS 2.0 `status` | 1.0 custodial `status` | 1.0 MPC `status` |
/// |---|---|---|---|
/// | `Succeeded` | `Completed` | `success` | `900` |
/// | `Failed` | `Failed`, `Rejected` | `failed` | `901` |
/// | `Pending` | every in-flight status (1) | `pending` | none |
/// | `Other` | any other value, as `v2:<value>` | `v1:<value>` | `v1-mpc:<code>` |
///
/// (1) `Submitted`, `PendingScreening`, `PendingAuthorization`,
/// `PendingSignature`, `Broadcasting`, `Confirming`, `Pending`.
///
/// Unknown values keep their version in the name: they are never taken to
/// be the same state as a value of the other version.
///
/// Limitation: every in-flight 2.0 status is `Pending`, so a
/// `TransactionState` key books "seen pending" once, not every progress
/// update; deduplicate progress updates by [`DedupKey::Event`] instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// Not final yet.
    Pending,
    /// Final success.
    Succeeded,
    /// Final failure, rejection included.
    Failed,
    /// A status this table does not know, prefixed with its version.
    Other(String),
}

impl TransactionState {
    /// The state of a 2.0 transaction status.
    pub fn from_v2(status: &TransactionStatus) -> Self {
        use TransactionStatus as S;
        match status {
            S::Completed => Self::Succeeded,
            S::Failed | S::Rejected => Self::Failed,
            S::Submitted
            | S::PendingScreening
            | S::PendingAuthorization
            | S::PendingSignature
            | S::Broadcasting
            | S::Confirming
            | S::Pending => Self::Pending,
            S::Other(value) => Self::Other(format!("v2:{value}")),
        }
    }

    /// The state of a 1.0 custodial status.
    pub fn from_custodial(status: &CustodialStatus) -> Self {
        match status {
            CustodialStatus::Success => Self::Succeeded,
            CustodialStatus::Failed => Self::Failed,
            CustodialStatus::Pending => Self::Pending,
            CustodialStatus::Other(value) => Self::Other(format!("v1:{value}")),
        }
    }

    /// The state of a 1.0 MPC status code.
    pub fn from_mpc(status: MpcStatus) -> Self {
        match status {
            MpcStatus::Success => Self::Succeeded,
            MpcStatus::Failed => Self::Failed,
            MpcStatus::Other(code) => Self::Other(format!("v1-mpc:{code}")),
        }
    }

    /// The state's name in storage keys.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Other(value) => value,
        }
    }
}

/// What a store deduplicates on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DedupKey {
    /// One 2.0 event copy, by `event_id`.
    Event(String),
    /// One Cobo transaction in one state.
    TransactionState {
        /// The Cobo transaction id.
        cobo_id: String,
        /// The normalised state.
        state: TransactionState,
    },
}

impl DedupKey {
    /// The key of an event copy.
    pub fn for_event(event: &WebhookEvent) -> Self {
        Self::Event(event.event_id.clone())
    }

    /// The transaction-state key of a 2.0 transaction (event data or
    /// callback body); `None` without a `cobo_id` or `status`.
    pub fn for_transaction(transaction: &Transaction) -> Option<Self> {
        let cobo_id = transaction.cobo_id.as_deref().filter(|id| !id.is_empty())?;
        let state = TransactionState::from_v2(transaction.status.as_ref()?);
        Some(Self::TransactionState {
            cobo_id: cobo_id.to_owned(),
            state,
        })
    }

    /// The transaction-state key of a 2.0 event, when it carries a
    /// transaction with a `cobo_id` and `status`.
    pub fn for_event_transaction(event: &WebhookEvent) -> Option<Self> {
        Self::for_transaction(event.data.as_transaction()?)
    }

    /// The transaction-state key of a 1.0 callback; `None` when the body has
    /// no Cobo id yet (a withdrawal confirmation carries `id: ""`; match
    /// those on `request_id` instead).
    pub fn for_v1(callback: &V1Callback) -> Option<Self> {
        let cobo_id = callback.cobo_id()?.to_owned();
        let state = match callback {
            V1Callback::Custodial(t) => TransactionState::from_custodial(&t.status),
            V1Callback::Mpc(t) => TransactionState::from_mpc(t.status),
        };
        Some(Self::TransactionState { cobo_id, state })
    }

    /// The text stored for this key: `event:<event_id>` or
    /// `transaction:<cobo_id>:<state>`.
    pub fn storage_key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DedupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Event(event_id) => write!(f, "event:{event_id}"),
            Self::TransactionState { cobo_id, state } => {
                write!(f, "transaction:{cobo_id}:{}", state.as_str())
            }
        }
    }
}

/// The outcome of marking a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// First time: process it.
    New,
    /// Marked before: skip it (and still answer the sender with success).
    Duplicate,
}

/// Remembers which keys were seen.
pub trait DedupStore: Send + Sync {
    /// Marks `key` as seen. Atomic: of concurrent callers with one key,
    /// exactly one gets [`Mark::New`].
    fn mark(&self, key: &DedupKey) -> Result<Mark>;

    /// Forgets `key`, so that the next delivery with it is processed.
    fn forget(&self, key: &DedupKey) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{parse_callback, parse_event, parse_v1};

    const V1_DEPOSIT: &str =
        include_str!("../../../../testdata/samples/v1-custodial-deposit-notification.json");
    const V2_DEPOSIT: &str =
        include_str!("../../../../testdata/samples/v2-webhook-deposit-succeeded.json");
    const V1_MPC: &str =
        include_str!("../../../../testdata/samples/v1-mpc-transaction-notification.json");
    const V2_WITHDRAWAL: &str =
        include_str!("../../../../testdata/samples/v2-webhook-withdrawal-succeeded.json");
    const V2_CALLBACK: &str =
        include_str!("../../../../testdata/samples/v2-callback-withdrawal.json");
    const V1_CONFIRMATION: &str =
        include_str!("../../../../testdata/samples/v1-custodial-withdrawal-confirmation.json");

    fn v2_key(text: &str) -> DedupKey {
        DedupKey::for_event_transaction(&parse_event(text.as_bytes()).unwrap()).unwrap()
    }

    fn v1_key(text: &str) -> Option<DedupKey> {
        DedupKey::for_v1(&parse_v1(text.as_bytes()).unwrap())
    }

    #[test]
    fn one_outcome_reported_by_both_versions_has_one_key() {
        assert_eq!(v1_key(V1_DEPOSIT).unwrap(), v2_key(V2_DEPOSIT));
        assert_eq!(v1_key(V1_MPC).unwrap(), v2_key(V2_WITHDRAWAL));
        assert_eq!(
            v2_key(V2_DEPOSIT).storage_key(),
            "transaction:20250311114730000640468000557405:succeeded"
        );
    }

    #[test]
    fn a_pending_callback_differs_from_the_completed_outcome() {
        let callback = parse_callback(V2_CALLBACK.as_bytes()).unwrap();
        let key = DedupKey::for_transaction(&callback).unwrap();
        assert_ne!(key, v2_key(V2_WITHDRAWAL));
    }

    #[test]
    fn a_confirmation_without_cobo_id_has_no_transaction_key() {
        assert_eq!(v1_key(V1_CONFIRMATION), None);
    }

    #[test]
    fn unknown_states_never_meet_across_versions() {
        let v2 = TransactionState::from_v2(&TransactionStatus::Other("x".into()));
        let v1 = TransactionState::from_custodial(&CustodialStatus::Other("x".into()));
        assert_ne!(v1, v2);
        assert_eq!(
            TransactionState::from_mpc(MpcStatus::Other(501)).as_str(),
            "v1-mpc:501"
        );
    }

    #[test]
    fn rejected_counts_as_failed() {
        assert_eq!(
            TransactionState::from_v2(&TransactionStatus::Rejected),
            TransactionState::Failed
        );
    }
}
