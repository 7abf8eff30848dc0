//! Records read from and written to the store.

use serde::Serialize;
use serde_json::{Map, Value};

/// An organisation: the owner of endpoints, events and API keys.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Org {
    /// Identifier, a UUID.
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// Creation time, Unix ms.
    pub created_timestamp: i64,
}

/// An organisation's API key. The bearer secret itself is never stored.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ApiKey {
    /// Identifier, a UUID.
    pub api_key_id: String,
    /// The organisation it acts for.
    #[serde(skip)]
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// Hex Ed25519 public key for Cobo-style signed requests, when given.
    pub public_key: Option<String>,
    /// Creation time, Unix ms.
    pub created_timestamp: i64,
}

/// Which Cobo API generation an endpoint speaks.
pub mod protocol {
    /// WaaS 2.0 webhooks and callbacks (Ed25519).
    pub const WAAS2: &str = "waas2";
    /// WaaS 1.0 API callbacks (secp256k1).
    pub const WAAS1: &str = "waas1";
}

/// Endpoint statuses, as Cobo names them.
pub mod endpoint_status {
    /// Receiving events.
    pub const ACTIVE: &str = "STATUS_ACTIVE";
    /// Revoked: receives nothing new, permanently.
    pub const INACTIVE: &str = "STATUS_INACTIVE";
}

/// A webhook endpoint.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Endpoint {
    /// Identifier, a UUID.
    pub endpoint_id: String,
    /// Owner.
    #[serde(skip)]
    pub org_id: String,
    /// Where events are posted.
    pub url: String,
    /// Event types it receives.
    pub subscribed_events: Vec<String>,
    /// One of the [`endpoint_status`] values.
    pub status: String,
    /// One of the [`protocol`] values.
    pub protocol: String,
    /// Free text.
    pub description: String,
    /// Creation time, Unix ms.
    pub created_timestamp: i64,
    /// Last change, Unix ms.
    pub updated_timestamp: i64,
}

/// Filters of the endpoint list.
#[derive(Clone, Debug, Default)]
pub struct EndpointQuery {
    /// Owner.
    pub org_id: String,
    /// Only endpoints in this status.
    pub status: Option<String>,
    /// Only endpoints subscribed to this event type.
    pub event_type: Option<String>,
    /// Paging.
    pub page: PageRequest,
}

/// A change to an endpoint.
#[derive(Clone, Debug, Default)]
pub struct EndpointChange {
    /// Owner.
    pub org_id: String,
    /// Which endpoint.
    pub endpoint_id: String,
    /// New subscription, when given.
    pub subscribed_events: Option<Vec<String>>,
    /// New description, when given.
    pub description: Option<String>,
    /// New status, when given (only revocation is allowed).
    pub status: Option<String>,
    /// Time of the change.
    pub now: i64,
}

/// A publish, as the store receives it: validated, with `data` in the shape
/// its event type carries.
#[derive(Clone, Debug)]
pub struct PublishRequest {
    /// Owner.
    pub org_id: String,
    /// Event type, from the catalogue.
    pub event_type: String,
    /// The payload, `data_type` first.
    pub data: Map<String, Value>,
    /// Repeating a publish with the same key creates nothing new.
    pub idempotency_key: Option<String>,
    /// Trigger time, Unix ms: every copy's `created_timestamp`.
    pub now: i64,
    /// When set, the new copies are leased at once to this owner until the
    /// given time, for the publishing node to deliver without a claim.
    pub lease: Option<(String, i64)>,
    /// Attempts each copy gets.
    pub max_attempts: u32,
}

/// What a publish created (or created the first time, for a repeat).
#[derive(Clone, Debug, Serialize)]
pub struct Published {
    /// Identifier of the occurrence.
    pub occurrence_id: String,
    /// One per subscribed endpoint.
    pub events: Vec<PublishedEvent>,
    /// Whether this answers a repeated idempotency key.
    #[serde(skip)]
    pub replayed: bool,
    /// Copies leased to the publishing node (empty for a repeat).
    #[serde(skip)]
    pub jobs: Vec<Job>,
}

/// One event copy of a publish.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PublishedEvent {
    /// The endpoint it goes to.
    pub endpoint_id: String,
    /// Its `event_id`.
    pub event_id: String,
}

/// What kind of thing a delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    /// A WaaS 2.0 webhook event copy: succeeds on 200 or 201.
    Webhook,
    /// A WaaS 2.0 callback message to one callback endpoint: decides on
    /// 200 or 201 with `ok` or `deny`.
    Callback,
    /// A WaaS 1.0 transaction notification: succeeds on 200 or 201 with
    /// `ok`; signed with secp256k1.
    Waas1Notification,
    /// A WaaS 1.0 withdrawal confirmation: decides like a callback; signed
    /// with secp256k1.
    Waas1Confirmation,
}

impl DeliveryKind {
    /// Whether the answer decides an approval (`ok` or `deny`).
    pub fn asks_for_decision(self) -> bool {
        matches!(
            self,
            DeliveryKind::Callback | DeliveryKind::Waas1Confirmation
        )
    }

    /// Whether it is WaaS 1.0 traffic (signed with secp256k1).
    pub fn is_waas1(self) -> bool {
        matches!(
            self,
            DeliveryKind::Waas1Notification | DeliveryKind::Waas1Confirmation
        )
    }

    /// Name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Webhook => "webhook",
            DeliveryKind::Callback => "callback",
            DeliveryKind::Waas1Notification => "waas1_notification",
            DeliveryKind::Waas1Confirmation => "waas1_confirmation",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "webhook" => Some(DeliveryKind::Webhook),
            "callback" => Some(DeliveryKind::Callback),
            "waas1_notification" => Some(DeliveryKind::Waas1Notification),
            "waas1_confirmation" => Some(DeliveryKind::Waas1Confirmation),
            _ => None,
        }
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for an attempt (first or retry), or in flight.
    Pending,
    /// An attempt succeeded.
    Succeeded,
    /// Every attempt failed.
    Failed,
    /// No longer needed: its callback message was decided by another
    /// endpoint's answer.
    Cancelled,
}

impl DeliveryState {
    /// Name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "succeeded" => Some(DeliveryState::Succeeded),
            "failed" => Some(DeliveryState::Failed),
            "cancelled" => Some(DeliveryState::Cancelled),
            _ => None,
        }
    }

    /// The status Cobo shows for a webhook event in this state.
    pub fn webhook_status(self) -> &'static str {
        match self {
            DeliveryState::Pending => "Retrying",
            DeliveryState::Succeeded => "Success",
            DeliveryState::Failed | DeliveryState::Cancelled => "Failed",
        }
    }

    /// The state behind a Cobo webhook event status.
    pub fn from_webhook_status(status: &str) -> Option<Self> {
        match status {
            "Retrying" => Some(DeliveryState::Pending),
            "Success" => Some(DeliveryState::Succeeded),
            "Failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// A delivery as read back.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `event_id` for webhook events.
    pub delivery_id: String,
    /// What it is.
    pub kind: DeliveryKind,
    /// Owner.
    pub org_id: String,
    /// Endpoint it goes to.
    pub target_id: String,
    /// The occurrence it came from.
    pub parent_id: String,
    /// Event type, for webhook events.
    pub event_type: Option<String>,
    /// Where it is posted.
    pub url: String,
    /// The exact bytes signed and sent.
    pub body: Vec<u8>,
    /// Trigger time, Unix ms.
    pub created_timestamp: i64,
    /// Last change, Unix ms.
    pub updated_timestamp: i64,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: i64,
    /// For callback deliveries: the answer, `ok` or `deny`.
    pub result: Option<String>,
}

/// Filters of the event list.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    /// Owner.
    pub org_id: String,
    /// Only events of this endpoint.
    pub endpoint_id: Option<String>,
    /// Only events in one of these states (empty: all).
    pub states: Vec<DeliveryState>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events created at or after this time, Unix ms.
    pub created_from: Option<i64>,
    /// Only events created before this time, Unix ms.
    pub created_until: Option<i64>,
    /// Paging.
    pub page: PageRequest,
}

/// A lease request for due deliveries.
#[derive(Clone, Debug)]
pub struct Claim {
    /// Who takes them.
    pub owner: String,
    /// The time now, Unix ms.
    pub now: i64,
    /// Lease expiry, Unix ms.
    pub lease_until: i64,
    /// At most this many.
    pub limit: usize,
    /// At most this many for one endpoint.
    pub per_target: usize,
    /// Endpoints not to take any for (their in-flight slots are full).
    pub skip_targets: Vec<String>,
}

/// A delivery leased to this node, with what an attempt needs.
#[derive(Clone, Debug)]
pub struct Job {
    /// `event_id` for webhook events.
    pub delivery_id: String,
    /// What it is.
    pub kind: DeliveryKind,
    /// Endpoint it goes to.
    pub target_id: String,
    /// The occurrence or callback message it belongs to.
    pub parent_id: String,
    /// Where it is posted.
    pub url: String,
    /// The exact bytes to sign and send.
    pub body: bytes::Bytes,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Lease holder, for fencing the outcome.
    pub lease_owner: String,
}

/// One attempt, as logged.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub attempt_no: u32,
    /// When it started, Unix ms.
    pub created_timestamp: i64,
    /// Headers sent (signature included; no secret is ever a header).
    pub request_headers: Vec<(String, String)>,
    /// Response status, when a response came.
    pub response_status_code: Option<u16>,
    /// First 64 KiB of the response body, lossily decoded.
    pub response_body: Vec<u8>,
    /// Whether the response body was longer than what is kept.
    pub response_truncated: bool,
    /// Time from send to response end, ms.
    pub response_time: u64,
    /// Whether it succeeded.
    pub success: bool,
    /// Why it failed, when it did.
    pub failure_reason: Option<String>,
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Done: it succeeded.
    Succeeded,
    /// Try again at this time, Unix ms.
    RetryAt(i64),
    /// Done: no attempts left.
    Failed,
}

/// An attempt and its consequence, to record.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    /// Which delivery.
    pub delivery_id: String,
    /// Who held the lease.
    pub lease_owner: String,
    /// The attempt.
    pub attempt: Attempt,
    /// What follows.
    pub next: NextStep,
    /// For callback deliveries: the decision the answer carried.
    pub decision: Option<hookgate_protocol::callback::Decision>,
    /// Time of recording, Unix ms.
    pub now: i64,
}

/// Paging of a list: newest first, opaque cursors.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    /// Items per page (1 to 50).
    pub limit: usize,
    /// Items older than this cursor (the next page).
    pub after: Option<Cursor>,
    /// Items newer than this cursor (the previous page).
    pub before: Option<Cursor>,
}

/// A position in a newest-first list: creation time, then row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time of the item, Unix ms.
    pub created: i64,
    /// Row id of the item, to order items created in the same ms.
    pub row: i64,
}

impl Cursor {
    /// Opaque text form.
    pub fn encode(self) -> String {
        format!("{:x}.{:x}", self.created, self.row)
    }

    /// Parses the text form.
    pub fn decode(text: &str) -> Option<Self> {
        // Encoded as the two's-complement bits, so that the extremes (a
        // listener's "from the start" cursor) come back as they went out.
        let (created, row) = text.split_once('.')?;
        Some(Self {
            created: u64::from_str_radix(created, 16).ok()? as i64,
            row: u64::from_str_radix(row, 16).ok()? as i64,
        })
    }
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Cursor for the newer page, when there is one.
    pub before: Option<Cursor>,
    /// Cursor for the older page, when there is one.
    pub after: Option<Cursor>,
    /// Items matching the filters, all pages.
    pub total_count: u64,
}

/// Callback message statuses, as Cobo names them.
pub mod message_status {
    /// Attempts go on.
    pub const RETRYING: &str = "Retrying";
    /// Every callback endpoint answered `ok`: the transaction may go ahead.
    pub const APPROVED: &str = "Approved";
    /// A callback endpoint answered `deny`.
    pub const DENIED: &str = "Denied";
    /// A callback endpoint ran out of attempts without deciding.
    pub const FAILED: &str = "Failed";
}

/// A callback endpoint: where the customer approves or denies transactions
/// started with one of its API keys.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CallbackEndpoint {
    /// Identifier, a UUID.
    pub callback_endpoint_id: String,
    /// Owner.
    #[serde(skip)]
    pub org_id: String,
    /// The API key whose transactions it decides.
    pub api_key_id: String,
    /// Where callback messages are posted.
    pub url: String,
    /// `STATUS_ACTIVE` or `STATUS_INACTIVE` (revoked).
    pub status: String,
    /// One of the [`protocol`] values.
    pub protocol: String,
    /// Free text.
    pub description: String,
    /// Creation time, Unix ms.
    pub created_timestamp: i64,
    /// Last change, Unix ms.
    pub updated_timestamp: i64,
}

/// A change to a callback endpoint.
#[derive(Clone, Debug, Default)]
pub struct CallbackEndpointChange {
    /// Owner.
    pub org_id: String,
    /// Which one.
    pub callback_endpoint_id: String,
    /// New URL, for messages created from now on.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// `STATUS_INACTIVE` revokes, permanently.
    pub status: Option<String>,
    /// Time of the change.
    pub now: i64,
}

/// A question to the customer: may this transaction go ahead?
#[derive(Clone, Debug)]
pub struct CallbackRequest {
    /// One of the [`protocol`] values: a WaaS 1.0 withdrawal confirmation
    /// goes to the organisation's 1.0 confirmation URL, a 2.0 callback to
    /// the API key's callback endpoints.
    pub protocol: &'static str,
    /// Owner.
    pub org_id: String,
    /// The API key that started the transaction.
    pub api_key_id: String,
    /// `request_id` of the transaction.
    pub request_id: String,
    /// `transaction_id` of the transaction.
    pub transaction_id: String,
    /// `wallet_id` of the transaction.
    pub wallet_id: String,
    /// The exact body: the bare `Transaction`.
    pub body: Vec<u8>,
    /// Time of the request.
    pub now: i64,
    /// Lease for the publishing node, as for webhook events.
    pub lease: Option<(String, i64)>,
    /// Attempts each callback endpoint gets.
    pub max_attempts: u32,
}

/// What asking created.
#[derive(Clone, Debug)]
// Made once per question and moved straight into the answer: boxing the
// large variant would cost an allocation and save nothing.
#[allow(clippy::large_enum_variant)]
pub enum CallbackAsked {
    /// The API key has no active callback endpoint: no check is configured.
    NoEndpoint,
    /// The message, new or (for a repeated question) the existing one.
    Message {
        /// The message.
        message: CallbackMessage,
        /// Deliveries leased to this node (empty for a repeat).
        jobs: Vec<Job>,
    },
}

/// A callback message and where its decision stands.
#[derive(Clone, Debug)]
pub struct CallbackMessage {
    /// Identifier, a UUID.
    pub message_id: String,
    /// Owner.
    pub org_id: String,
    /// The API key that started the transaction.
    pub api_key_id: String,
    /// Of the transaction.
    pub request_id: String,
    /// Of the transaction.
    pub transaction_id: String,
    /// Of the transaction.
    pub wallet_id: String,
    /// The exact body sent.
    pub body: Vec<u8>,
    /// One of the [`message_status`] values.
    pub status: String,
    /// One of the [`protocol`] values.
    pub protocol: String,
    /// `ok` or `deny` once decided.
    pub result: Option<String>,
    /// Creation time, Unix ms.
    pub created_timestamp: i64,
    /// Last change, Unix ms.
    pub updated_timestamp: i64,
}

/// Filters of the callback message list (each list: any of its values).
#[derive(Clone, Debug, Default)]
pub struct CallbackMessageQuery {
    /// Owner.
    pub org_id: String,
    /// Message ids.
    pub message_ids: Vec<String>,
    /// Request ids.
    pub request_ids: Vec<String>,
    /// Transaction ids.
    pub transaction_ids: Vec<String>,
    /// Wallet ids.
    pub wallet_ids: Vec<String>,
    /// Statuses.
    pub statuses: Vec<String>,
    /// Paging.
    pub page: PageRequest,
}

/// An occurrence with its data, as listeners replay it.
#[derive(Clone, Debug)]
pub struct Occurrence {
    /// Position, for resuming after it.
    pub cursor: Cursor,
    /// Identifier.
    pub occurrence_id: String,
    /// Event type.
    pub event_type: String,
    /// The data object, exactly as serialised into its events.
    pub data: Vec<u8>,
    /// Trigger time, Unix ms.
    pub created_timestamp: i64,
}

/// The WaaS 1.0 callback URLs of an organisation.
#[derive(Clone, Debug, Default)]
pub struct Waas1Urls {
    /// Where transaction notifications go.
    pub notification: Option<Endpoint>,
    /// Where withdrawal confirmations go.
    pub confirmation: Option<CallbackEndpoint>,
}

/// Which WaaS 1.0 URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waas1Url {
    /// Transaction notifications.
    Notification,
    /// Withdrawal confirmations.
    Confirmation,
}

/// A WaaS 1.0 transaction notification to push.
#[derive(Clone, Debug)]
pub struct Waas1Notification {
    /// Owner.
    pub org_id: String,
    /// The exact body.
    pub body: Vec<u8>,
    /// Time of the request.
    pub now: i64,
    /// Lease for the publishing node.
    pub lease: Option<(String, i64)>,
    /// Pushes in all.
    pub max_attempts: u32,
}

/// A notification that was stored.
#[derive(Clone, Debug)]
pub struct Waas1Notified {
    /// Its id in the event API.
    pub event_id: String,
    /// The organisation's 1.0 notification endpoint.
    pub endpoint_id: String,
    /// Leased to this node.
    pub jobs: Vec<Job>,
}

/// A signed-in portal session. The cookie holds a random id; the store
/// keeps only its SHA-256, so a copy of the database opens no session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalSession {
    /// Hex SHA-256 of the cookie value.
    pub session_hash: String,
    /// The organisation the pages show.
    pub org_id: String,
    /// The API key signed in with; `None` for the admin token.
    pub api_key_id: Option<String>,
    /// Signed in with the admin token: may switch organisation.
    pub admin: bool,
    /// The token every form of this session carries back.
    pub csrf_token: String,
    /// Sign-in time, Unix ms.
    pub created_timestamp: i64,
    /// End of validity, Unix ms.
    pub expires_timestamp: i64,
}

/// Filters of the portal's event search across all of an organisation's
/// endpoints.
#[derive(Clone, Debug, Default)]
pub struct EventSearch {
    /// Owner.
    pub org_id: String,
    /// Only this event.
    pub event_id: Option<String>,
    /// Only events of endpoints whose URL contains this text.
    pub url_contains: Option<String>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events in one of these states (empty: all).
    pub states: Vec<DeliveryState>,
    /// Only events created at or after this time, Unix ms.
    pub created_from: Option<i64>,
    /// Only events created before this time, Unix ms.
    pub created_until: Option<i64>,
    /// Paging.
    pub page: PageRequest,
}

/// One page found by its cursor alone. Unlike [`Page`] it carries no total:
/// counting every match would cost as much as the list is long.
#[derive(Clone, Debug)]
pub struct Slice<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Cursor for the newer page, when there is one.
    pub before: Option<Cursor>,
    /// Cursor for the older page, when there is one.
    pub after: Option<Cursor>,
}

/// How one endpoint's events created since a given time stand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// The endpoint.
    pub endpoint_id: String,
    /// Delivered.
    pub succeeded: u64,
    /// Out of attempts.
    pub failed: u64,
    /// Attempted at least once and waiting for the next attempt.
    pub retrying: u64,
    /// Not attempted yet.
    pub queued: u64,
}

/// Filters of the portal's callback message search.
#[derive(Clone, Debug, Default)]
pub struct CallbackSearch {
    /// Owner.
    pub org_id: String,
    /// Only this message.
    pub message_id: Option<String>,
    /// Only messages about this transaction.
    pub transaction_id: Option<String>,
    /// Only messages with this request id.
    pub request_id: Option<String>,
    /// Only messages about transactions of this wallet.
    pub wallet_id: Option<String>,
    /// Only messages in one of these [`message_status`] values (empty: all).
    pub statuses: Vec<String>,
    /// Only messages created at or after this time, Unix ms.
    pub created_from: Option<i64>,
    /// Only messages created before this time, Unix ms.
    pub created_until: Option<i64>,
    /// Paging.
    pub page: PageRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_including_the_extremes() {
        for (created, row) in [
            (0, 0),
            (1_741_687_575_067, 42),
            (i64::MIN, i64::MIN),
            (-1, i64::MAX),
        ] {
            let cursor = Cursor { created, row };
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
        assert_eq!(Cursor::decode("zz.1"), None);
        assert_eq!(Cursor::decode("1"), None);
    }
}
