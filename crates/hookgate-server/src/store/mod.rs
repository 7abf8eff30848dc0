//! Durable storage behind one interface.
//!
//! Every write that the API acknowledges is committed (and, on SQLite,
//! fsync'd) before the answer leaves. Publishing writes the occurrence and
//! every event copy in one transaction: there is no second step that a crash
//! could skip.
//!
//! Deliveries (webhook event copies, and later callback messages) live in one
//! table and move through one state machine: `pending` until an attempt
//! succeeds (`succeeded`) or the attempts run out (`failed`). A node works on
//! a delivery only under a lease: claiming sets `lease_owner` and pushes
//! `next_attempt_at` to the lease expiry, so a delivery whose node died simply
//! becomes due again when its lease runs out. Recording an outcome is fenced
//! on the lease owner.

mod model;
mod postgres;
mod query;
mod sqlite;

pub use model::*;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;

use crate::error::Result;

/// A change committed by another node, which this node acts on without
/// waiting for its next poll. Notices may be lost (a dropped connection, a
/// subscriber that fell behind): every consumer also polls.
#[derive(Clone, Debug)]
pub enum Change {
    /// A delivery became due now: claim loops should look.
    Due,
    /// An occurrence was stored, at this cursor: stream listeners of the
    /// organisation should be sent it.
    Occurrence {
        /// Owner.
        org_id: String,
        /// Its position in [`Store::occurrences_after`] order.
        cursor: Cursor,
    },
    /// A delivery of this callback message moved on: producers waiting for
    /// its decision should read it again.
    CallbackProgress {
        /// The message.
        message_id: String,
    },
}

/// A new identifier for a stored row (event, occurrence, delivery, message).
///
/// UUIDv7: time-ordered, so that the rows of one group commit land next to
/// each other in every index keyed on an id. Random (v4) ids would dirty one
/// index page per row per index, which costs more than the rows themselves.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The refusal of a publish that repeats an idempotency key with another
/// event type or other data: the first answer would hide that the second
/// event was never stored.
pub fn idempotency_conflict() -> crate::error::Error {
    crate::error::Error::Conflict(
        "this idempotency_key was used for a different event (type or data); \
         use a new key for a new event"
            .into(),
    )
}

/// The refusal of a callback question that repeats a request and
/// transaction id with a different transaction: the first decision must not
/// pass for an answer about other money.
pub fn question_conflict() -> crate::error::Error {
    crate::error::Error::Conflict(
        "this request_id and transaction_id were already asked about with a different \
         transaction; a changed transaction needs new ids"
            .into(),
    )
}

/// What the server needs from its database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the database answers and its schema is the one this build
    /// knows; the reason when not.
    async fn ready(&self) -> std::result::Result<(), String>;

    /// What other nodes sharing the database commit that this node should
    /// act on at once (see [`Change`]). `None` for a store that only one
    /// node uses: then every change is made here and seen directly.
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }

    /// Creates an organisation.
    async fn create_org(&self, org: Org) -> Result<Org>;
    /// Stores an API key (its secret as a hash).
    async fn create_api_key(&self, key: ApiKey, secret_hash: String) -> Result<ApiKey>;
    /// The API key whose secret hashes to `secret_hash`.
    async fn api_key_by_secret_hash(&self, secret_hash: String) -> Result<Option<ApiKey>>;
    /// The API key registered with this hex Ed25519 public key (lowercase),
    /// for signed requests.
    async fn api_key_by_public_key(&self, public_key: String) -> Result<Option<ApiKey>>;
    /// The organisation, if it exists.
    async fn org(&self, org_id: String) -> Result<Option<Org>>;

    /// Registers an endpoint.
    async fn create_endpoint(&self, endpoint: Endpoint) -> Result<Endpoint>;
    /// One endpoint of the organisation.
    async fn endpoint(&self, org_id: String, endpoint_id: String) -> Result<Option<Endpoint>>;
    /// The organisation's endpoints, newest first.
    async fn list_endpoints(&self, query: EndpointQuery) -> Result<Page<Endpoint>>;
    /// Applies a change; revocation is permanent.
    async fn update_endpoint(&self, change: EndpointChange) -> Result<Endpoint>;

    /// Stores an occurrence and one event per subscribed active endpoint, in
    /// one transaction. With an idempotency key already used, returns the
    /// first answer and writes nothing.
    async fn publish(&self, request: PublishRequest) -> Result<Published>;

    /// Leases up to `limit` due deliveries to `owner`.
    async fn claim_due(&self, claim: Claim) -> Result<Vec<Job>>;
    /// When the next pending delivery falls due (leased ones included, at
    /// their lease expiry).
    async fn next_due(&self) -> Result<Option<i64>>;
    /// Logs an attempt and moves the delivery on, if `owner` still holds its
    /// lease. Returns whether the state was changed.
    async fn record_attempt(&self, record: AttemptOutcome) -> Result<bool>;
    /// Gives up `owner`'s leases of these deliveries without attempting
    /// them: each is due again at `now`, for any claim loop to take.
    async fn release_leases(
        &self,
        owner: String,
        delivery_ids: Vec<String>,
        now: i64,
    ) -> Result<()>;

    /// Webhook events of the organisation, newest first.
    async fn list_events(&self, query: EventQuery) -> Result<Page<Delivery>>;
    /// One delivery of the organisation.
    async fn delivery(&self, org_id: String, delivery_id: String) -> Result<Option<Delivery>>;
    /// Every attempt of a delivery, oldest first.
    async fn attempts(&self, delivery_id: String) -> Result<Vec<Attempt>>;
    /// Makes a `pending` or `failed` delivery due now. Refused while an
    /// attempt is in flight or once it succeeded.
    async fn retry_now(&self, org_id: String, delivery_id: String, now: i64) -> Result<()>;

    /// Links a callback endpoint to an API key of the organisation.
    async fn create_callback_endpoint(
        &self,
        endpoint: CallbackEndpoint,
    ) -> Result<CallbackEndpoint>;
    /// The organisation's callback endpoints, newest first.
    async fn list_callback_endpoints(
        &self,
        org_id: String,
        page: PageRequest,
    ) -> Result<Page<CallbackEndpoint>>;
    /// One callback endpoint.
    async fn callback_endpoint(
        &self,
        org_id: String,
        id: String,
    ) -> Result<Option<CallbackEndpoint>>;
    /// Changes or revokes a callback endpoint.
    async fn update_callback_endpoint(
        &self,
        change: CallbackEndpointChange,
    ) -> Result<CallbackEndpoint>;

    /// Stores a callback message and one delivery per active callback
    /// endpoint of the API key, in one transaction; a repeated question
    /// (same API key, request and transaction) returns the first message.
    async fn ask_callback(&self, request: CallbackRequest) -> Result<CallbackAsked>;
    /// One callback message (of the organisation, when given).
    async fn callback_message(
        &self,
        org_id: Option<String>,
        message_id: String,
    ) -> Result<Option<CallbackMessage>>;
    /// The organisation's callback messages, newest first.
    async fn list_callback_messages(
        &self,
        query: CallbackMessageQuery,
    ) -> Result<Page<CallbackMessage>>;
    /// The deliveries of a callback message or an occurrence.
    async fn deliveries_of(&self, parent_id: String) -> Result<Vec<Delivery>>;
    /// Asks again now: a `Failed` message gets one more attempt per
    /// endpoint that did not approve; a `Retrying` one has its waiting
    /// deliveries made due. Refused once decided.
    async fn retry_callback_message(
        &self,
        org_id: String,
        message_id: String,
        now: i64,
    ) -> Result<()>;

    /// The organisation's occurrences after `after` (oldest first), with
    /// their data: what a listener missed while away.
    async fn occurrences_after(
        &self,
        org_id: String,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Occurrence>>;

    /// The organisation's WaaS 1.0 callback URLs.
    async fn waas1_urls(&self, org_id: String) -> Result<Waas1Urls>;
    /// Sets (or with `None` removes) one WaaS 1.0 URL; the previous one is
    /// revoked. Refused when the URL is one of the organisation's 2.0
    /// endpoints: a URL receives one generation's traffic only.
    async fn set_waas1_url(
        &self,
        org_id: String,
        which: Waas1Url,
        url: Option<String>,
        now: i64,
    ) -> Result<Waas1Urls>;
    /// Stores a WaaS 1.0 transaction notification for the organisation's
    /// notification URL; `None` when it has none.
    async fn notify_waas1(&self, notification: Waas1Notification) -> Result<Option<Waas1Notified>>;

    /// The position of one occurrence in [`Store::occurrences_after`]
    /// order, for streaming it live with a cursor to resume from.
    async fn occurrence_cursor(
        &self,
        org_id: String,
        occurrence_id: String,
    ) -> Result<Option<Cursor>>;

    /// Counts for metrics: pending deliveries.
    async fn backlog(&self) -> Result<u64>;

    // The portal.

    /// Every organisation, by name: what an admin may switch between.
    async fn list_orgs(&self) -> Result<Vec<Org>>;
    /// Every endpoint of the organisation (both protocols), newest first.
    async fn all_endpoints(&self, org_id: String) -> Result<Vec<Endpoint>>;
    /// Webhook events across the organisation's endpoints, newest first,
    /// found by cursor without counting every match.
    async fn search_events(&self, search: EventSearch) -> Result<Slice<Delivery>>;
    /// Callback messages, newest first, found by cursor without counting.
    async fn search_callback_messages(
        &self,
        search: CallbackSearch,
    ) -> Result<Slice<CallbackMessage>>;
    /// Per endpoint, how its events created at or after `since` stand.
    async fn endpoint_stats(&self, org_id: String, since: i64) -> Result<Vec<EndpointStats>>;
    /// Stores a new portal session and forgets expired ones.
    async fn create_portal_session(&self, session: PortalSession) -> Result<()>;
    /// The session whose cookie hashes to `session_hash`, unless expired.
    async fn portal_session(&self, session_hash: String, now: i64)
        -> Result<Option<PortalSession>>;
    /// Points an admin session at another organisation.
    async fn switch_portal_org(&self, session_hash: String, org_id: String) -> Result<()>;
    /// Ends a session.
    async fn delete_portal_session(&self, session_hash: String) -> Result<()>;
}
