//! The PostgreSQL store: what several server nodes share.
//!
//! Client crate: `sqlx` with only its `postgres` and `runtime-tokio`
//! features (no macros, no TLS, no migration machinery). It brings a pool
//! and, above all, `PgListener`, a LISTEN connection that reconnects by
//! itself; `tokio-postgres` would build a little faster but leaves pooling
//! and the notification stream of a live connection to us.
//!
//! The design follows the SQLite store, table for table, with what running
//! several nodes on one database adds:
//!
//! - **Leases.** A claim picks due deliveries with `FOR UPDATE SKIP LOCKED`,
//!   so concurrent claimers (of this node or of others) never pick the same
//!   row, and sets `lease_owner` and `next_attempt_at` (the lease expiry) in
//!   the same statement. A node that dies leaves its deliveries to become
//!   due again when their leases expire; any node then claims them. An
//!   outcome is recorded only while its node still holds the lease.
//! - **Decisions.** Recording the outcome of a callback delivery locks its
//!   message row first, then settles the message in the same transaction,
//!   so two endpoints answering at once on two nodes are judged one after
//!   the other, and a message is decided at most once. Every transaction
//!   that touches a message and its deliveries locks the message first.
//! - **Migrations.** Versioned files in `migrations_pg/`, recorded in
//!   `schema_migrations`, applied under `pg_advisory_lock` so that nodes
//!   starting together apply each once. A node refuses a schema newer than it
//!   knows, and `ready` says so when another node migrates past it.
//! - **Notifications.** After a commit that other nodes should act on (an
//!   occurrence for their stream listeners, a delivery due now, a callback
//!   message that moved on), a `NOTIFY` on [`CHANNEL`] tells them. They are
//!   sent after the commit, batched by one task, so that a publish never
//!   holds PostgreSQL's notification lock while it flushes its commit; each
//!   node listens on one connection and ignores what it sent itself. A lost
//!   notification costs latency only: claim loops poll, and producers
//!   waiting for a decision re-read it every 250 ms.
//!
//! Durability: every write commits (with the default `synchronous_commit =
//! on`) before the call returns, so the API answers only what is durable.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use hookgate_protocol::envelope;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Row};
use tokio::sync::{broadcast, mpsc};

use super::query::{self, finish_page, merge_branches, Bind, Filter, Part, Window};
use super::sqlite::WAAS1_NOTIFICATION_TYPE;
use super::*;
use crate::error::{Error, Result};
use hookgate_protocol::callback::Decision;

/// Schema migrations, applied in order at start. Never edit a released one:
/// add another.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("migrations_pg/0001_initial.sql"))];

/// The schema version this build reads and writes.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Key of the advisory lock held while migrating ("hookgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6761_7465;

/// The LISTEN/NOTIFY channel nodes tell each other on.
pub const CHANNEL: &str = "hookgate";

/// Most notifications sent in one statement.
const NOTIFY_BATCH: usize = 256;

/// Changes from other nodes buffered for this node's subscribers.
const CHANGE_BUFFER: usize = 4096;

/// PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    pool: PgPool,
    /// Tags this node's notifications, so that it skips its own.
    origin: String,
    notices: mpsc::UnboundedSender<String>,
    changes: broadcast::Sender<Change>,
}

impl PostgresStore {
    /// Connects to `url` with at most `max_connections` pooled connections
    /// (one more is held for listening), brings the schema up to date, and
    /// starts listening to the other nodes.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::Settings(format!("database_url: {e}")))?
            .application_name("hookgate");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| Error::Storage(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate(&pool).await?;

        let origin = uuid::Uuid::new_v4().simple().to_string();
        let (notices, queue) = mpsc::unbounded_channel();
        tokio::spawn(send_notices(pool.clone(), queue));
        let changes = broadcast::channel(CHANGE_BUFFER).0;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        tokio::spawn(listen(listener, origin.clone(), changes.clone()));

        Ok(Self {
            pool,
            origin,
            notices,
            changes,
        })
    }

    /// Tells the other nodes, once the caller has committed.
    fn notify(&self, notice: Notice) {
        let _ = self
            .notices
            .send(format!("{} {}", self.origin, notice.payload()));
    }

    /// Opens a transaction; dropping it uncommitted rolls it back.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

/// What one node tells the others.
enum Notice {
    Due,
    Occurrence { org_id: String, cursor: Cursor },
    CallbackProgress { message_id: String },
}

impl Notice {
    fn payload(&self) -> String {
        match self {
            Notice::Due => "due".into(),
            Notice::Occurrence { org_id, cursor } => {
                format!("occ {org_id} {} {}", cursor.created, cursor.row)
            }
            Notice::CallbackProgress { message_id } => format!("cb {message_id}"),
        }
    }
}

/// Parses a notification: `None` for this node's own and for what this
/// build does not know.
fn parse_notice(payload: &str, own_origin: &str) -> Option<Change> {
    let mut words = payload.split(' ');
    let origin = words.next()?;
    if origin == own_origin {
        return None;
    }
    match words.next()? {
        "due" => Some(Change::Due),
        "occ" => {
            let org_id = words.next()?.to_owned();
            let created = words.next()?.parse().ok()?;
            let row = words.next()?.parse().ok()?;
            Some(Change::Occurrence {
                org_id,
                cursor: Cursor { created, row },
            })
        }
        "cb" => Some(Change::CallbackProgress {
            message_id: words.next()?.to_owned(),
        }),
        _ => None,
    }
}

/// Sends queued notifications, many per statement under load.
async fn send_notices(pool: PgPool, mut queue: mpsc::UnboundedReceiver<String>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < NOTIFY_BATCH {
            match queue.try_recv() {
                Ok(payload) => batch.push(payload),
                Err(_) => break,
            }
        }
        batch.sort();
        batch.dedup();
        let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .bind(CHANNEL)
            .bind(&batch)
            .execute(&pool)
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, "other nodes not told of changes; they will find them by polling");
        }
    }
}

/// Forwards the other nodes' notifications to this node's subscribers.
async fn listen(mut listener: PgListener, origin: String, changes: broadcast::Sender<Change>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Some(change) = parse_notice(notification.payload(), &origin) {
                    let _ = changes.send(change);
                }
            }
            // The connection was lost and is re-opened by the next call:
            // what was sent meanwhile is lost, so everyone looks again.
            Ok(None) => {
                tracing::warn!("the notification connection was lost; reconnecting");
                let _ = changes.send(Change::Due);
            }
            Err(error) => {
                tracing::warn!(%error, "listening for other nodes failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn migrate(pool: &PgPool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let outcome = migrate_locked(&mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    outcome?;
    unlocked?;
    Ok(())
}

async fn migrate_locked(conn: &mut PgConnection) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let current = schema_version(&mut *conn).await?;
    if current > PG_SCHEMA_VERSION {
        return Err(Error::Storage(format!(
            "the database schema is version {current}, newer than this build knows \
             ({PG_SCHEMA_VERSION}); run a newer hookgate"
        )));
    }

    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

async fn schema_version(conn: &mut PgConnection) -> Result<i64> {
    let version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(conn)
            .await?;
    Ok(version)
}

#[async_trait]
impl Store for PostgresStore {
    async fn ready(&self) -> std::result::Result<(), String> {
        let mut conn = self.pool.acquire().await.map_err(|e| e.to_string())?;
        let version = schema_version(&mut conn).await.map_err(|e| e.to_string())?;
        if version != PG_SCHEMA_VERSION {
            return Err(format!(
                "schema is version {version}, this build needs {PG_SCHEMA_VERSION}"
            ));
        }
        Ok(())
    }

    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.changes.subscribe())
    }

    async fn create_org(&self, org: Org) -> Result<Org> {
        sqlx::query("INSERT INTO orgs (org_id, name, created_ts) VALUES ($1, $2, $3)")
            .bind(&org.org_id)
            .bind(&org.name)
            .bind(org.created_timestamp)
            .execute(&self.pool)
            .await?;
        Ok(org)
    }

    async fn create_api_key(&self, key: ApiKey, secret_hash: String) -> Result<ApiKey> {
        let mut tx = self.begin().await?;
        if !org_exists(&mut tx, &key.org_id).await? {
            return Err(Error::NotFound("organisation"));
        }
        sqlx::query(
            "INSERT INTO api_keys (api_key_id, org_id, name, public_key, secret_hash, created_ts)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.api_key_id)
        .bind(&key.org_id)
        .bind(&key.name)
        .bind(&key.public_key)
        .bind(secret_hash)
        .bind(key.created_timestamp)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    async fn api_key_by_secret_hash(&self, secret_hash: String) -> Result<Option<ApiKey>> {
        let row = sqlx::query(
            "SELECT api_key_id, org_id, name, public_key, created_ts
             FROM api_keys WHERE secret_hash = $1",
        )
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn api_key_by_public_key(&self, public_key: String) -> Result<Option<ApiKey>> {
        let row = sqlx::query(
            "SELECT api_key_id, org_id, name, public_key, created_ts
             FROM api_keys WHERE public_key = $1 LIMIT 1",
        )
        .bind(public_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn org(&self, org_id: String) -> Result<Option<Org>> {
        let row = sqlx::query("SELECT org_id, name, created_ts FROM orgs WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(org_from_row).transpose()
    }

    async fn create_endpoint(&self, endpoint: Endpoint) -> Result<Endpoint> {
        let mut tx = self.begin().await?;
        lock_org(&mut tx, &endpoint.org_id).await?;
        refuse_cross_protocol_url(&mut tx, &endpoint.org_id, &endpoint.url, &endpoint.protocol)
            .await?;
        sqlx::query(
            "INSERT INTO endpoints (endpoint_id, org_id, url, subscribed_events, status,
                 description, created_ts, updated_ts, protocol)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&endpoint.endpoint_id)
        .bind(&endpoint.org_id)
        .bind(&endpoint.url)
        .bind(serde_json::to_string(&endpoint.subscribed_events).expect("strings serialise"))
        .bind(&endpoint.status)
        .bind(&endpoint.description)
        .bind(endpoint.created_timestamp)
        .bind(endpoint.updated_timestamp)
        .bind(&endpoint.protocol)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    async fn endpoint(&self, org_id: String, endpoint_id: String) -> Result<Option<Endpoint>> {
        let mut conn = self.pool.acquire().await?;
        load_endpoint(&mut conn, &org_id, &endpoint_id, false).await
    }

    async fn list_endpoints(&self, query: EndpointQuery) -> Result<Page<Endpoint>> {
        let mut filter = Filter::new("org_id = ?", query.org_id);
        if let Some(status) = query.status {
            filter.and("status = ?", status);
        }
        if let Some(event_type) = query.event_type {
            filter.and("jsonb_exists(subscribed_events::jsonb, ?)", event_type);
        }
        let mut conn = self.pool.acquire().await?;
        page(
            &mut conn,
            "endpoints",
            ENDPOINT_COLUMNS,
            filter,
            &query.page,
            endpoint_from_row,
        )
        .await
    }

    async fn update_endpoint(&self, change: EndpointChange) -> Result<Endpoint> {
        let mut tx = self.begin().await?;
        let mut endpoint = load_endpoint(&mut tx, &change.org_id, &change.endpoint_id, true)
            .await?
            .ok_or(Error::NotFound("endpoint"))?;

        if endpoint.status == endpoint_status::INACTIVE {
            return Err(Error::Conflict(
                "the endpoint is revoked; revocation is permanent, register a new endpoint".into(),
            ));
        }
        if let Some(events) = change.subscribed_events {
            if endpoint.protocol != protocol::WAAS2 {
                return Err(Error::Conflict(
                    "a WaaS 1.0 endpoint receives 1.0 notifications only; \
                     it cannot subscribe to 2.0 events"
                        .into(),
                ));
            }
            endpoint.subscribed_events = events;
        }
        if let Some(description) = change.description {
            endpoint.description = description;
        }
        if let Some(status) = change.status {
            endpoint.status = status;
        }
        endpoint.updated_timestamp = change.now;

        sqlx::query(
            "UPDATE endpoints SET subscribed_events = $1, description = $2, status = $3,
                 updated_ts = $4
             WHERE endpoint_id = $5",
        )
        .bind(serde_json::to_string(&endpoint.subscribed_events).expect("strings serialise"))
        .bind(&endpoint.description)
        .bind(&endpoint.status)
        .bind(endpoint.updated_timestamp)
        .bind(&endpoint.endpoint_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    async fn publish(&self, request: PublishRequest) -> Result<Published> {
        let data_json = envelope::data_json(&request.data);
        let mut tx = self.begin().await?;
        let (published, cursor) = publish_in(&mut tx, &request, &data_json).await?;
        tx.commit().await?;

        if let Some(cursor) = cursor {
            let org_id = request.org_id.clone();
            self.notify(Notice::Occurrence { org_id, cursor });
            if request.lease.is_none() && !published.events.is_empty() {
                self.notify(Notice::Due);
            }
        }
        Ok(published)
    }

    async fn claim_due(&self, claim: Claim) -> Result<Vec<Job>> {
        // The window function caps what one endpoint can take of a claim, so
        // a dead endpoint with a deep retry backlog cannot crowd out the
        // others. Rows another claimer holds are skipped, not waited for.
        // Saturated endpoints are left out after the bounded scan, as in the
        // SQLite store (which says why, and what it costs).
        let scan = (claim.limit * 8).max(256) as i64;
        let rows = sqlx::query(
            "WITH due AS (
                 SELECT row_id, target_id, next_attempt_at FROM deliveries
                 WHERE state = 'pending' AND next_attempt_at <= $1
                 ORDER BY next_attempt_at LIMIT $3
                 FOR UPDATE SKIP LOCKED
             ), ranked AS (
                 SELECT row_id, next_attempt_at, row_number() OVER (
                     PARTITION BY target_id ORDER BY next_attempt_at) AS nth
                 FROM due WHERE NOT (target_id = ANY($2))
             ), chosen AS (
                 SELECT row_id FROM ranked WHERE nth <= $4 ORDER BY next_attempt_at LIMIT $5
             )
             UPDATE deliveries AS d SET lease_owner = $6, next_attempt_at = $7
             FROM chosen WHERE d.row_id = chosen.row_id
             RETURNING d.delivery_id, d.kind, d.target_id, d.url, d.body, d.attempts,
                 d.max_attempts, d.parent_id",
        )
        .bind(claim.now)
        .bind(&claim.skip_targets)
        .bind(scan)
        .bind(claim.per_target as i64)
        .bind(claim.limit as i64)
        .bind(&claim.owner)
        .bind(claim.lease_until)
        .fetch_all(&self.pool)
        .await?;

        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(1)?;
                let body: Vec<u8> = r.try_get(4)?;
                Ok(Job {
                    delivery_id: r.try_get(0)?,
                    kind: DeliveryKind::parse(&kind).unwrap_or(DeliveryKind::Webhook),
                    target_id: r.try_get(2)?,
                    url: r.try_get(3)?,
                    body: body.into(),
                    attempts: r.try_get::<i32, _>(5)? as u32,
                    max_attempts: r.try_get::<i32, _>(6)? as u32,
                    parent_id: r.try_get(7)?,
                    lease_owner: claim.owner.clone(),
                })
            })
            .collect()
    }

    async fn next_due(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn record_attempt(&self, record: AttemptOutcome) -> Result<bool> {
        let mut tx = self.begin().await?;
        let progressed = record_in(&mut tx, &record).await?;
        tx.commit().await?;
        if let Some(message_id) = &progressed {
            self.notify(Notice::CallbackProgress {
                message_id: message_id.clone(),
            });
        }
        Ok(progressed.is_some())
    }

    async fn release_leases(
        &self,
        owner: String,
        delivery_ids: Vec<String>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, next_attempt_at = $1
             WHERE delivery_id = ANY($2) AND lease_owner = $3 AND state = 'pending'",
        )
        .bind(now)
        .bind(&delivery_ids)
        .bind(&owner)
        .execute(&self.pool)
        .await?;
        // No notice: their endpoint has no room for them now, on this node
        // or, most likely, on any other.
        Ok(())
    }

    async fn list_events(&self, query: EventQuery) -> Result<Page<Delivery>> {
        let request = query.page.clone();
        let filter = query::event_list(query);
        let mut conn = self.pool.acquire().await?;
        page(
            &mut conn,
            "deliveries",
            DELIVERY_COLUMNS,
            filter,
            &request,
            delivery_from_row,
        )
        .await
    }

    async fn delivery(&self, org_id: String, delivery_id: String) -> Result<Option<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = $1 AND org_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(delivery_id)
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .as_ref()
            .map(delivery_from_row)
            .transpose()?
            .map(|(_, d)| d))
    }

    async fn attempts(&self, delivery_id: String) -> Result<Vec<Attempt>> {
        let rows = sqlx::query(
            "SELECT attempt_no, created_ts, request_headers, response_status, response_body,
                 response_truncated, response_time_ms, success, failure_reason
             FROM attempts WHERE delivery_id = $1 ORDER BY row_id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let headers: String = r.try_get(2)?;
                Ok(Attempt {
                    attempt_no: r.try_get::<i32, _>(0)? as u32,
                    created_timestamp: r.try_get(1)?,
                    request_headers: serde_json::from_str(&headers).unwrap_or_default(),
                    response_status_code: r.try_get::<Option<i32>, _>(3)?.map(|s| s as u16),
                    response_body: r.try_get(4)?,
                    response_truncated: r.try_get(5)?,
                    response_time: r.try_get::<i64, _>(6)? as u64,
                    success: r.try_get(7)?,
                    failure_reason: r.try_get(8)?,
                })
            })
            .collect()
    }

    async fn retry_now(&self, org_id: String, delivery_id: String, now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT state, lease_owner, next_attempt_at FROM deliveries
             WHERE delivery_id = $1 AND org_id = $2 FOR UPDATE",
        )
        .bind(&delivery_id)
        .bind(&org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("event"))?;
        let state: String = row.try_get(0)?;
        let lease_owner: Option<String> = row.try_get(1)?;
        let next_attempt_at: i64 = row.try_get(2)?;

        match DeliveryState::parse(&state) {
            Some(DeliveryState::Succeeded) => {
                return Err(Error::Conflict(
                    "the event was delivered; only Retrying or Failed events can be retried".into(),
                ))
            }
            Some(DeliveryState::Pending) if lease_owner.is_some() && next_attempt_at > now => {
                return Err(Error::Conflict(
                    "an attempt of this event is in flight; retry after it ends".into(),
                ))
            }
            _ => {}
        }

        // A failed delivery gets exactly one more attempt; a pending one
        // keeps the attempts it has left and is simply due now.
        sqlx::query(
            "UPDATE deliveries SET
                 max_attempts = CASE WHEN state = 'failed' THEN attempts + 1
                                     ELSE max_attempts END,
                 state = 'pending', next_attempt_at = $1, lease_owner = NULL, updated_ts = $1
             WHERE delivery_id = $2",
        )
        .bind(now)
        .bind(&delivery_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.notify(Notice::Due);
        Ok(())
    }

    async fn create_callback_endpoint(
        &self,
        endpoint: CallbackEndpoint,
    ) -> Result<CallbackEndpoint> {
        let mut tx = self.begin().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT org_id FROM api_keys WHERE api_key_id = $1")
                .bind(&endpoint.api_key_id)
                .fetch_optional(&mut *tx)
                .await?;
        if owner.as_deref() != Some(endpoint.org_id.as_str()) {
            return Err(Error::NotFound("API key"));
        }
        lock_org(&mut tx, &endpoint.org_id).await?;
        refuse_cross_protocol_url(&mut tx, &endpoint.org_id, &endpoint.url, &endpoint.protocol)
            .await?;
        insert_callback_endpoint(&mut tx, &endpoint).await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    async fn list_callback_endpoints(
        &self,
        org_id: String,
        page_request: PageRequest,
    ) -> Result<Page<CallbackEndpoint>> {
        let filter = Filter::new("org_id = ?", org_id);
        let mut conn = self.pool.acquire().await?;
        page(
            &mut conn,
            "callback_endpoints",
            CALLBACK_ENDPOINT_COLUMNS,
            filter,
            &page_request,
            callback_endpoint_from_row,
        )
        .await
    }

    async fn callback_endpoint(
        &self,
        org_id: String,
        id: String,
    ) -> Result<Option<CallbackEndpoint>> {
        let mut conn = self.pool.acquire().await?;
        load_callback_endpoint(&mut conn, &org_id, &id, false).await
    }

    async fn update_callback_endpoint(
        &self,
        change: CallbackEndpointChange,
    ) -> Result<CallbackEndpoint> {
        let mut tx = self.begin().await?;
        let mut endpoint =
            load_callback_endpoint(&mut tx, &change.org_id, &change.callback_endpoint_id, true)
                .await?
                .ok_or(Error::NotFound("callback endpoint"))?;
        if endpoint.status == endpoint_status::INACTIVE {
            return Err(Error::Conflict(
                "the callback endpoint is revoked; revocation is permanent".into(),
            ));
        }
        if let Some(url) = change.url {
            refuse_cross_protocol_url(&mut tx, &endpoint.org_id, &url, &endpoint.protocol).await?;
            endpoint.url = url;
        }
        if let Some(description) = change.description {
            endpoint.description = description;
        }
        if let Some(status) = change.status {
            endpoint.status = status;
        }
        endpoint.updated_timestamp = change.now;
        sqlx::query(
            "UPDATE callback_endpoints SET url = $1, description = $2, status = $3,
                 updated_ts = $4
             WHERE callback_endpoint_id = $5",
        )
        .bind(&endpoint.url)
        .bind(&endpoint.description)
        .bind(&endpoint.status)
        .bind(endpoint.updated_timestamp)
        .bind(&endpoint.callback_endpoint_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    async fn ask_callback(&self, request: CallbackRequest) -> Result<CallbackAsked> {
        let mut tx = self.begin().await?;
        let asked = ask_in(&mut tx, request).await?;
        tx.commit().await?;
        Ok(asked)
    }

    async fn callback_message(
        &self,
        org_id: Option<String>,
        message_id: String,
    ) -> Result<Option<CallbackMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM callback_messages
             WHERE message_id = $1 AND ($2::text IS NULL OR org_id = $2)"
        );
        let row = sqlx::query(&sql)
            .bind(message_id)
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .as_ref()
            .map(message_from_row)
            .transpose()?
            .map(|(_, m)| m))
    }

    async fn list_callback_messages(
        &self,
        query: CallbackMessageQuery,
    ) -> Result<Page<CallbackMessage>> {
        let request = query.page.clone();
        let filter = query::message_list(query);
        let mut conn = self.pool.acquire().await?;
        page(
            &mut conn,
            "callback_messages",
            MESSAGE_COLUMNS,
            filter,
            &request,
            message_from_row,
        )
        .await
    }

    async fn deliveries_of(&self, parent_id: String) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE parent_id = $1 ORDER BY row_id"
        );
        let rows = sqlx::query(&sql)
            .bind(parent_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| delivery_from_row(r).map(|(_, d)| d))
            .collect()
    }

    async fn retry_callback_message(
        &self,
        org_id: String,
        message_id: String,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        retry_message_in(&mut tx, &org_id, &message_id, now).await?;
        tx.commit().await?;
        self.notify(Notice::Due);
        Ok(())
    }

    async fn occurrences_after(
        &self,
        org_id: String,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Occurrence>> {
        let after = after.unwrap_or(Cursor {
            created: i64::MIN,
            row: i64::MIN,
        });
        let rows = sqlx::query(
            "SELECT row_id, occurrence_id, event_type, data, created_ts FROM occurrences
             WHERE org_id = $1 AND (created_ts, row_id) > ($2, $3) AND data IS NOT NULL
             ORDER BY created_ts, row_id LIMIT $4",
        )
        .bind(org_id)
        .bind(after.created)
        .bind(after.row)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let created: i64 = r.try_get(4)?;
                Ok(Occurrence {
                    cursor: Cursor {
                        created,
                        row: r.try_get(0)?,
                    },
                    occurrence_id: r.try_get(1)?,
                    event_type: r.try_get(2)?,
                    data: r.try_get(3)?,
                    created_timestamp: created,
                })
            })
            .collect()
    }

    async fn waas1_urls(&self, org_id: String) -> Result<Waas1Urls> {
        let mut conn = self.pool.acquire().await?;
        load_waas1_urls(&mut conn, &org_id).await
    }

    async fn set_waas1_url(
        &self,
        org_id: String,
        which: Waas1Url,
        url: Option<String>,
        now: i64,
    ) -> Result<Waas1Urls> {
        let mut tx = self.begin().await?;
        if !lock_org(&mut tx, &org_id).await? {
            return Err(Error::NotFound("organisation"));
        }
        if let Some(url) = &url {
            refuse_cross_protocol_url(&mut tx, &org_id, url, protocol::WAAS1).await?;
        }

        let table = match which {
            Waas1Url::Notification => "endpoints",
            Waas1Url::Confirmation => "callback_endpoints",
        };
        let revoke = format!(
            "UPDATE {table} SET status = $1, updated_ts = $2
             WHERE org_id = $3 AND protocol = 'waas1' AND status = $4"
        );
        sqlx::query(&revoke)
            .bind(endpoint_status::INACTIVE)
            .bind(now)
            .bind(&org_id)
            .bind(endpoint_status::ACTIVE)
            .execute(&mut *tx)
            .await?;

        if let Some(url) = url {
            let id = new_id();
            match which {
                Waas1Url::Notification => {
                    sqlx::query(
                        "INSERT INTO endpoints (endpoint_id, org_id, url, subscribed_events,
                             status, description, created_ts, updated_ts, protocol)
                         VALUES ($1, $2, $3, '[]', $4, 'WaaS 1.0 transaction notifications',
                             $5, $5, 'waas1')",
                    )
                    .bind(id)
                    .bind(&org_id)
                    .bind(url)
                    .bind(endpoint_status::ACTIVE)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Waas1Url::Confirmation => {
                    let endpoint = CallbackEndpoint {
                        callback_endpoint_id: id,
                        org_id: org_id.clone(),
                        api_key_id: String::new(),
                        url,
                        status: endpoint_status::ACTIVE.into(),
                        protocol: protocol::WAAS1.into(),
                        description: "WaaS 1.0 withdrawal confirmations".into(),
                        created_timestamp: now,
                        updated_timestamp: now,
                    };
                    insert_callback_endpoint(&mut tx, &endpoint).await?;
                }
            }
        }
        let urls = load_waas1_urls(&mut tx, &org_id).await?;
        tx.commit().await?;
        Ok(urls)
    }

    async fn notify_waas1(&self, notification: Waas1Notification) -> Result<Option<Waas1Notified>> {
        let unleased = notification.lease.is_none();
        let mut tx = self.begin().await?;
        let notified = notify_waas1_in(&mut tx, notification).await?;
        tx.commit().await?;
        if notified.is_some() && unleased {
            self.notify(Notice::Due);
        }
        Ok(notified)
    }

    async fn occurrence_cursor(
        &self,
        org_id: String,
        occurrence_id: String,
    ) -> Result<Option<Cursor>> {
        let row = sqlx::query(
            "SELECT created_ts, row_id FROM occurrences WHERE occurrence_id = $1 AND org_id = $2",
        )
        .bind(occurrence_id)
        .bind(org_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Cursor {
                created: r.try_get(0)?,
                row: r.try_get(1)?,
            })
        })
        .transpose()
    }

    async fn backlog(&self) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(count as u64)
    }

    async fn list_orgs(&self) -> Result<Vec<Org>> {
        let rows = sqlx::query("SELECT org_id, name, created_ts FROM orgs ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(org_from_row).collect()
    }

    async fn all_endpoints(&self, org_id: String) -> Result<Vec<Endpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE org_id = $1
             ORDER BY created_ts DESC, row_id DESC"
        );
        let rows = sqlx::query(&sql).bind(org_id).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| endpoint_from_row(r).map(|(_, e)| e))
            .collect()
    }

    async fn search_events(&self, search: EventSearch) -> Result<Slice<Delivery>> {
        let branches = query::event_search_branches(&search);
        let mut conn = self.pool.acquire().await?;
        slice(
            &mut conn,
            "deliveries",
            DELIVERY_COLUMNS,
            branches,
            &search.page,
            delivery_from_row,
        )
        .await
    }

    async fn search_callback_messages(
        &self,
        search: CallbackSearch,
    ) -> Result<Slice<CallbackMessage>> {
        let branches = query::callback_search_branches(&search);
        let mut conn = self.pool.acquire().await?;
        slice(
            &mut conn,
            "callback_messages",
            MESSAGE_COLUMNS,
            branches,
            &search.page,
            message_from_row,
        )
        .await
    }

    async fn endpoint_stats(&self, org_id: String, since: i64) -> Result<Vec<EndpointStats>> {
        // Limitation: reads every event of the organisation created since
        // `since`, so it costs in proportion to that much traffic.
        let rows = sqlx::query(
            "SELECT target_id, state, attempts > 0 AS tried, COUNT(*)
             FROM deliveries
             WHERE org_id = $1 AND kind IN ('webhook', 'waas1_notification')
               AND created_ts >= $2
             GROUP BY target_id, state, tried
             ORDER BY target_id",
        )
        .bind(org_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut stats: Vec<EndpointStats> = Vec::new();
        for row in &rows {
            let endpoint_id: String = row.try_get(0)?;
            let state: String = row.try_get(1)?;
            let tried: bool = row.try_get(2)?;
            let count = row.try_get::<i64, _>(3)? as u64;
            if stats.last().is_none_or(|s| s.endpoint_id != endpoint_id) {
                stats.push(EndpointStats {
                    endpoint_id,
                    ..EndpointStats::default()
                });
            }
            let entry = stats.last_mut().expect("pushed above");
            match DeliveryState::parse(&state) {
                Some(DeliveryState::Succeeded) => entry.succeeded += count,
                Some(DeliveryState::Failed | DeliveryState::Cancelled) => entry.failed += count,
                Some(DeliveryState::Pending) if tried => entry.retrying += count,
                Some(DeliveryState::Pending) => entry.queued += count,
                None => {}
            }
        }
        Ok(stats)
    }

    async fn create_portal_session(&self, session: PortalSession) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM portal_sessions WHERE expires_ts <= $1")
            .bind(session.created_timestamp)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO portal_sessions (session_hash, org_id, api_key_id, admin,
                 csrf_token, created_ts, expires_ts)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&session.session_hash)
        .bind(&session.org_id)
        .bind(&session.api_key_id)
        .bind(session.admin)
        .bind(&session.csrf_token)
        .bind(session.created_timestamp)
        .bind(session.expires_timestamp)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn portal_session(
        &self,
        session_hash: String,
        now: i64,
    ) -> Result<Option<PortalSession>> {
        let row = sqlx::query(
            "SELECT session_hash, org_id, api_key_id, admin, csrf_token, created_ts, expires_ts
             FROM portal_sessions WHERE session_hash = $1 AND expires_ts > $2",
        )
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(PortalSession {
                session_hash: r.try_get(0)?,
                org_id: r.try_get(1)?,
                api_key_id: r.try_get(2)?,
                admin: r.try_get(3)?,
                csrf_token: r.try_get(4)?,
                created_timestamp: r.try_get(5)?,
                expires_timestamp: r.try_get(6)?,
            })
        })
        .transpose()
    }

    async fn switch_portal_org(&self, session_hash: String, org_id: String) -> Result<()> {
        let mut tx = self.begin().await?;
        if !org_exists(&mut tx, &org_id).await? {
            return Err(Error::NotFound("organisation"));
        }
        let changed =
            sqlx::query("UPDATE portal_sessions SET org_id = $2 WHERE session_hash = $1 AND admin")
                .bind(session_hash)
                .bind(org_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 0 {
            return Err(Error::NotFound("admin session"));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_portal_session(&self, session_hash: String) -> Result<()> {
        sqlx::query("DELETE FROM portal_sessions WHERE session_hash = $1")
            .bind(session_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn org_from_row(r: &PgRow) -> Result<Org> {
    Ok(Org {
        org_id: r.try_get(0)?,
        name: r.try_get(1)?,
        created_timestamp: r.try_get(2)?,
    })
}

fn api_key_from_row(r: &PgRow) -> Result<ApiKey> {
    Ok(ApiKey {
        api_key_id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        name: r.try_get(2)?,
        public_key: r.try_get(3)?,
        created_timestamp: r.try_get(4)?,
    })
}

async fn org_exists(conn: &mut PgConnection, org_id: &str) -> Result<bool> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM orgs WHERE org_id = $1")
        .bind(org_id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Locks the organisation's row until the transaction ends, so that
/// changes to its URLs (which must not clash across protocols) are made one
/// at a time. Whether it exists.
async fn lock_org(conn: &mut PgConnection, org_id: &str) -> Result<bool> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM orgs WHERE org_id = $1 FOR UPDATE")
        .bind(org_id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Stores the occurrence and its copies; also gives the occurrence's cursor
/// when it was created now (not for a repeated idempotency key).
async fn publish_in(
    conn: &mut PgConnection,
    request: &PublishRequest,
    data_json: &serde_json::value::RawValue,
) -> Result<(Published, Option<Cursor>)> {
    if let Some(key) = &request.idempotency_key {
        if let Some(first) = published_before(conn, request, key, data_json).await? {
            return Ok((first, None));
        }
    }
    if !org_exists(conn, &request.org_id).await? {
        return Err(Error::NotFound("organisation"));
    }

    // A concurrent publish with the same key waits here for the other to
    // commit, then finds its answer.
    let occurrence_id = new_id();
    let inserted = sqlx::query(
        "INSERT INTO occurrences (occurrence_id, org_id, event_type, idempotency_key,
             created_ts, data)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING row_id",
    )
    .bind(&occurrence_id)
    .bind(&request.org_id)
    .bind(&request.event_type)
    .bind(&request.idempotency_key)
    .bind(request.now)
    .bind(data_json.get().as_bytes())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(inserted) = inserted else {
        let key = request.idempotency_key.as_deref().unwrap_or_default();
        let first = published_before(conn, request, key, data_json)
            .await?
            .ok_or_else(|| Error::Storage("an idempotency key clashed but was not found".into()))?;
        return Ok((first, None));
    };
    let cursor = Cursor {
        created: request.now,
        row: inserted.try_get(0)?,
    };

    let (lease_owner, next_attempt_at) = match &request.lease {
        Some((owner, until)) => (Some(owner.as_str()), *until),
        None => (None, request.now),
    };

    let endpoints = subscribed_endpoints(conn, &request.org_id, &request.event_type).await?;
    let mut ids = Vec::with_capacity(endpoints.len());
    let mut targets = Vec::with_capacity(endpoints.len());
    let mut urls = Vec::with_capacity(endpoints.len());
    let mut bodies = Vec::with_capacity(endpoints.len());
    for (endpoint_id, url) in endpoints {
        let event_id = new_id();
        bodies.push(envelope::webhook_body(
            &event_id,
            &url,
            request.now,
            &request.event_type,
            data_json,
        ));
        ids.push(event_id);
        targets.push(endpoint_id);
        urls.push(url);
    }

    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO deliveries (delivery_id, kind, org_id, target_id, parent_id, event_type,
                 url, body, created_ts, updated_ts, state, attempts, max_attempts,
                 next_attempt_at, lease_owner)
             SELECT id, 'webhook', $5, target, $6, $7, url, body, $8, $8, 'pending', 0, $9,
                 $10, $11
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
                 WITH ORDINALITY AS copies (id, target, url, body, nth)
             ORDER BY nth",
        )
        .bind(&ids)
        .bind(&targets)
        .bind(&urls)
        .bind(&bodies)
        .bind(&request.org_id)
        .bind(&occurrence_id)
        .bind(&request.event_type)
        .bind(request.now)
        .bind(request.max_attempts as i32)
        .bind(next_attempt_at)
        .bind(lease_owner)
        .execute(&mut *conn)
        .await?;
    }

    let mut events = Vec::with_capacity(ids.len());
    let mut jobs = Vec::new();
    for (((event_id, endpoint_id), url), body) in ids.into_iter().zip(targets).zip(urls).zip(bodies)
    {
        if let Some(owner) = lease_owner {
            jobs.push(Job {
                delivery_id: event_id.clone(),
                kind: DeliveryKind::Webhook,
                target_id: endpoint_id.clone(),
                parent_id: occurrence_id.clone(),
                url,
                body: body.into(),
                attempts: 0,
                max_attempts: request.max_attempts,
                lease_owner: owner.to_owned(),
            });
        }
        events.push(PublishedEvent {
            endpoint_id,
            event_id,
        });
    }

    let published = Published {
        occurrence_id,
        events,
        replayed: false,
        jobs,
    };
    Ok((published, Some(cursor)))
}

/// The first answer to a publish with this idempotency key, if there was
/// one; refused when that publish was of another event.
async fn published_before(
    conn: &mut PgConnection,
    request: &PublishRequest,
    key: &str,
    data_json: &serde_json::value::RawValue,
) -> Result<Option<Published>> {
    let first = sqlx::query(
        "SELECT occurrence_id, event_type, data FROM occurrences
         WHERE org_id = $1 AND idempotency_key = $2",
    )
    .bind(&request.org_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(first) = first else {
        return Ok(None);
    };
    let occurrence_id: String = first.try_get(0)?;
    let event_type: String = first.try_get(1)?;
    let data: Option<Vec<u8>> = first.try_get(2)?;
    if event_type != request.event_type || data.as_deref() != Some(data_json.get().as_bytes()) {
        return Err(idempotency_conflict());
    }

    let rows = sqlx::query(
        "SELECT target_id, delivery_id FROM deliveries WHERE parent_id = $1 ORDER BY row_id",
    )
    .bind(&occurrence_id)
    .fetch_all(&mut *conn)
    .await?;
    let events = rows
        .iter()
        .map(|r| {
            Ok(PublishedEvent {
                endpoint_id: r.try_get(0)?,
                event_id: r.try_get(1)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(Published {
        occurrence_id,
        events,
        replayed: true,
        jobs: Vec::new(),
    }))
}

async fn subscribed_endpoints(
    conn: &mut PgConnection,
    org_id: &str,
    event_type: &str,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT endpoint_id, url, subscribed_events FROM endpoints
         WHERE org_id = $1 AND status = $2 AND protocol = 'waas2' ORDER BY row_id",
    )
    .bind(org_id)
    .bind(endpoint_status::ACTIVE)
    .fetch_all(conn)
    .await?;

    let mut endpoints = Vec::new();
    for row in &rows {
        let subscribed: String = row.try_get(2)?;
        let subscribed: Vec<String> = serde_json::from_str(&subscribed).unwrap_or_default();
        if subscribed.iter().any(|t| t == event_type) {
            endpoints.push((row.try_get(0)?, row.try_get(1)?));
        }
    }
    Ok(endpoints)
}

/// Logs the attempt and moves the delivery on under its lease. Gives the
/// callback message that moved on, if any; `Some("")` for other kinds of
/// delivery that moved on, `None` when the lease was lost.
async fn record_in(conn: &mut PgConnection, record: &AttemptOutcome) -> Result<Option<String>> {
    let attempt = &record.attempt;
    sqlx::query(
        "INSERT INTO attempts (delivery_id, attempt_no, created_ts, request_headers,
             response_status, response_body, response_truncated, response_time_ms, success,
             failure_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&record.delivery_id)
    .bind(attempt.attempt_no as i32)
    .bind(attempt.created_timestamp)
    .bind(serde_json::to_string(&attempt.request_headers).expect("strings serialise"))
    .bind(attempt.response_status_code.map(i32::from))
    .bind(&attempt.response_body)
    .bind(attempt.response_truncated)
    .bind(attempt.response_time as i64)
    .bind(attempt.success)
    .bind(&attempt.failure_reason)
    .execute(&mut *conn)
    .await?;

    // A callback delivery locks its message before itself, as every
    // transaction touching both does: two answers to one message are judged
    // one after the other, never both against a stale view of the other.
    let parent = sqlx::query("SELECT kind, parent_id FROM deliveries WHERE delivery_id = $1")
        .bind(&record.delivery_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(parent) = parent else {
        return Ok(None);
    };
    let kind: String = parent.try_get(0)?;
    let parent_id: String = parent.try_get(1)?;
    let asks = DeliveryKind::parse(&kind).is_some_and(DeliveryKind::asks_for_decision);
    if asks {
        sqlx::query("SELECT 1 FROM callback_messages WHERE message_id = $1 FOR UPDATE")
            .bind(&parent_id)
            .execute(&mut *conn)
            .await?;
    }

    let (state, next_attempt_at) = match record.next {
        NextStep::Succeeded => (DeliveryState::Succeeded, record.now),
        NextStep::RetryAt(at) => (DeliveryState::Pending, at),
        NextStep::Failed => (DeliveryState::Failed, record.now),
    };
    let result = record.decision.map(|d| d.reply_body());
    let changed = sqlx::query(
        "UPDATE deliveries SET state = $1, next_attempt_at = $2, lease_owner = NULL,
             attempts = GREATEST(attempts, $3), updated_ts = $4, result = COALESCE($7, result)
         WHERE delivery_id = $5 AND lease_owner = $6 AND state = 'pending'",
    )
    .bind(state.as_str())
    .bind(next_attempt_at)
    .bind(attempt.attempt_no as i32)
    .bind(record.now)
    .bind(&record.delivery_id)
    .bind(&record.lease_owner)
    .bind(result)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 0 {
        if asks && record.decision == Some(Decision::Deny) {
            late_deny(conn, record, &parent_id).await?;
        }
        return Ok(None);
    }

    if !asks {
        return Ok(Some(String::new()));
    }
    if state != DeliveryState::Pending {
        settle_message(conn, &parent_id, record.now).await?;
    }
    Ok(Some(parent_id))
}

/// A `deny` that arrives after its message ended `Failed` is kept: the
/// message becomes `Denied` (see the SQLite store's `late_deny`), with its
/// row already locked by the caller.
async fn late_deny(
    conn: &mut PgConnection,
    record: &AttemptOutcome,
    message_id: &str,
) -> Result<()> {
    let kept = sqlx::query(
        "UPDATE deliveries SET result = 'deny', updated_ts = $1
         WHERE delivery_id = $2 AND lease_owner = $3 AND state = 'cancelled'",
    )
    .bind(record.now)
    .bind(&record.delivery_id)
    .bind(&record.lease_owner)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if kept == 1 {
        sqlx::query(
            "UPDATE callback_messages SET status = 'Denied', result = 'deny', updated_ts = $1
             WHERE message_id = $2 AND status = 'Failed'",
        )
        .bind(record.now)
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Applies the approval rule to a message (whose row the caller locked)
/// after one of its deliveries ended; decides it at most once.
async fn settle_message(conn: &mut PgConnection, message_id: &str, now: i64) -> Result<()> {
    use crate::approval::{decide, result_of, EndpointAnswer};

    let rows = sqlx::query(
        "SELECT state, result FROM deliveries
         WHERE parent_id = $1 AND kind IN ('callback', 'waas1_confirmation')",
    )
    .bind(message_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut answers = Vec::with_capacity(rows.len());
    for row in &rows {
        let state: String = row.try_get(0)?;
        let result: Option<String> = row.try_get(1)?;
        answers.push(match (state.as_str(), result.as_deref()) {
            ("succeeded", Some("deny")) => EndpointAnswer::Denied,
            ("succeeded", _) => EndpointAnswer::Approved,
            ("failed", _) => EndpointAnswer::Exhausted,
            _ => EndpointAnswer::Waiting,
        });
    }

    let status = decide(&answers);
    if status == message_status::RETRYING {
        return Ok(());
    }

    let decided = sqlx::query(
        "UPDATE callback_messages SET status = $1, result = $2, updated_ts = $3
         WHERE message_id = $4 AND status = 'Retrying'",
    )
    .bind(status)
    .bind(result_of(status))
    .bind(now)
    .bind(message_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if decided == 1 {
        // The lease stays: an attempt still in flight keeps its endpoint
        // until it ends, even if a manual retry revives the delivery.
        sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', updated_ts = $1
             WHERE parent_id = $2 AND state = 'pending'",
        )
        .bind(now)
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "row_id, endpoint_id, org_id, url, subscribed_events, status, \
                                description, created_ts, updated_ts, protocol";

fn endpoint_from_row(r: &PgRow) -> Result<(i64, Endpoint)> {
    let subscribed: String = r.try_get(4)?;
    Ok((
        r.try_get(0)?,
        Endpoint {
            endpoint_id: r.try_get(1)?,
            org_id: r.try_get(2)?,
            url: r.try_get(3)?,
            subscribed_events: serde_json::from_str(&subscribed).unwrap_or_default(),
            status: r.try_get(5)?,
            description: r.try_get(6)?,
            created_timestamp: r.try_get(7)?,
            updated_timestamp: r.try_get(8)?,
            protocol: r.try_get(9)?,
        },
    ))
}

async fn load_endpoint(
    conn: &mut PgConnection,
    org_id: &str,
    endpoint_id: &str,
    for_update: bool,
) -> Result<Option<Endpoint>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE endpoint_id = $1 AND org_id = $2{lock}"
    );
    let row = sqlx::query(&sql)
        .bind(endpoint_id)
        .bind(org_id)
        .fetch_optional(conn)
        .await?;
    Ok(row
        .as_ref()
        .map(endpoint_from_row)
        .transpose()?
        .map(|(_, e)| e))
}

const DELIVERY_COLUMNS: &str = "row_id, delivery_id, kind, org_id, target_id, parent_id, \
    event_type, url, body, created_ts, updated_ts, state, attempts, max_attempts, \
    next_attempt_at, result";

fn delivery_from_row(r: &PgRow) -> Result<(i64, Delivery)> {
    let kind: String = r.try_get(2)?;
    let state: String = r.try_get(11)?;
    Ok((
        r.try_get(0)?,
        Delivery {
            delivery_id: r.try_get(1)?,
            kind: DeliveryKind::parse(&kind)
                .ok_or_else(|| Error::Storage(format!("unknown delivery kind {kind}")))?,
            org_id: r.try_get(3)?,
            target_id: r.try_get(4)?,
            parent_id: r.try_get(5)?,
            event_type: r.try_get(6)?,
            url: r.try_get(7)?,
            body: r.try_get(8)?,
            created_timestamp: r.try_get(9)?,
            updated_timestamp: r.try_get(10)?,
            state: DeliveryState::parse(&state)
                .ok_or_else(|| Error::Storage(format!("unknown delivery state {state}")))?,
            attempts: r.try_get::<i32, _>(12)? as u32,
            max_attempts: r.try_get::<i32, _>(13)? as u32,
            next_attempt_at: r.try_get(14)?,
            result: r.try_get(15)?,
        },
    ))
}

/// Appends `filter` in PostgreSQL's SQL to `query`, binding its values.
fn push_filter(filter: &Filter, query: &mut QueryBuilder<'static, Postgres>) {
    for (n, part) in filter.parts.iter().enumerate() {
        if n > 0 {
            query.push(" AND ");
        }
        match part {
            Part::Clause(clause, binds) => {
                let mut binds = binds.iter();
                let mut pieces = clause.split('?').peekable();
                while let Some(piece) = pieces.next() {
                    query.push(piece);
                    if pieces.peek().is_some() {
                        match binds.next().cloned() {
                            Some(Bind::Text(text)) => query.push_bind(text),
                            Some(Bind::Int(number)) => query.push_bind(number),
                            None => query.push("NULL"),
                        };
                    }
                }
            }
            Part::AnyOf(column, options) => {
                query.push(format!("{column} = ANY("));
                query.push_bind(options.clone());
                query.push(")");
            }
        }
    }
}

/// The `SELECT` of one [`Window`] of `table` under `filter`.
fn page_query(
    table: &str,
    columns: &str,
    filter: &Filter,
    window: &Window,
) -> QueryBuilder<'static, Postgres> {
    let mut query = QueryBuilder::new(format!("SELECT {columns} FROM {table} WHERE "));
    push_filter(filter, &mut query);
    if let Some((op, cursor)) = window.bound {
        query.push(format!(" AND (created_ts, row_id) {op} ("));
        query.push_bind(cursor.created);
        query.push(", ");
        query.push_bind(cursor.row);
        query.push(")");
    }
    let order = window.order;
    query.push(format!(
        " ORDER BY created_ts {order}, row_id {order} LIMIT "
    ));
    query.push_bind(window.fetch());
    query
}

/// Reads rows of a page query as (cursor, item).
async fn page_items<T>(
    conn: &mut PgConnection,
    mut query: QueryBuilder<'static, Postgres>,
    from_row: fn(&PgRow) -> Result<(i64, T)>,
) -> Result<Vec<(Cursor, T)>> {
    let rows = query.build().fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            let (row_id, item) = from_row(row)?;
            let created: i64 = row.try_get("created_ts")?;
            Ok((
                Cursor {
                    created,
                    row: row_id,
                },
                item,
            ))
        })
        .collect()
}

/// One newest-first page of `table`, with the total count of the filter.
async fn page<T>(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    filter: Filter,
    request: &PageRequest,
    from_row: fn(&PgRow) -> Result<(i64, T)>,
) -> Result<Page<T>> {
    let mut count = QueryBuilder::new(format!("SELECT COUNT(*) FROM {table} WHERE "));
    push_filter(&filter, &mut count);
    let total_count: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;

    let window = Window::of(request);
    let query = page_query(table, columns, &filter, &window);
    let rows = page_items(conn, query, from_row).await?;
    let (items, before, after) = finish_page(rows, request, &window);
    Ok(Page {
        items,
        before,
        after,
        total_count: total_count as u64,
    })
}

/// One newest-first page of `table` matching any of `branches` (which must
/// not overlap), found by cursor alone: each branch reads at most a page
/// and one row more, and the branches are merged.
async fn slice<T>(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    branches: Vec<Filter>,
    request: &PageRequest,
    from_row: fn(&PgRow) -> Result<(i64, T)>,
) -> Result<Slice<T>> {
    let window = Window::of(request);
    let mut rows = Vec::new();
    for filter in &branches {
        let query = page_query(table, columns, filter, &window);
        rows.extend(page_items(&mut *conn, query, from_row).await?);
    }
    merge_branches(&mut rows, &window);
    let (items, before, after) = finish_page(rows, request, &window);
    Ok(Slice {
        items,
        before,
        after,
    })
}

async fn ask_in(conn: &mut PgConnection, request: CallbackRequest) -> Result<CallbackAsked> {
    if let Some(message) = asked_before(conn, &request).await? {
        return Ok(CallbackAsked::Message {
            message,
            jobs: Vec::new(),
        });
    }

    let kind = if request.protocol == protocol::WAAS1 {
        if !org_exists(conn, &request.org_id).await? {
            return Err(Error::NotFound("organisation"));
        }
        DeliveryKind::Waas1Confirmation
    } else {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT org_id FROM api_keys WHERE api_key_id = $1")
                .bind(&request.api_key_id)
                .fetch_optional(&mut *conn)
                .await?;
        if owner.as_deref() != Some(request.org_id.as_str()) {
            return Err(Error::NotFound("API key of this organisation"));
        }
        DeliveryKind::Callback
    };

    // A 2.0 callback goes to the API key's callback endpoints; a 1.0
    // confirmation to the organisation's 1.0 confirmation URL.
    let rows = sqlx::query(
        "SELECT callback_endpoint_id, url FROM callback_endpoints
         WHERE org_id = $1 AND api_key_id = $2 AND status = $3 AND protocol = $4
         ORDER BY row_id",
    )
    .bind(&request.org_id)
    .bind(&request.api_key_id)
    .bind(endpoint_status::ACTIVE)
    .bind(request.protocol)
    .fetch_all(&mut *conn)
    .await?;
    let endpoints = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect::<Result<Vec<_>>>()?;
    if endpoints.is_empty() {
        return Ok(CallbackAsked::NoEndpoint);
    }

    let message = CallbackMessage {
        message_id: new_id(),
        org_id: request.org_id.clone(),
        api_key_id: request.api_key_id.clone(),
        request_id: request.request_id.clone(),
        transaction_id: request.transaction_id.clone(),
        wallet_id: request.wallet_id.clone(),
        body: request.body.clone(),
        status: message_status::RETRYING.into(),
        protocol: request.protocol.into(),
        result: None,
        created_timestamp: request.now,
        updated_timestamp: request.now,
    };
    // The same question asked at once on two nodes: one inserts, the other
    // waits for it to commit and answers with its message.
    let inserted = sqlx::query(
        "INSERT INTO callback_messages (message_id, org_id, api_key_id, request_id,
             transaction_id, wallet_id, body, status, result, created_ts, updated_ts, protocol)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $9, $10)
         ON CONFLICT (org_id, api_key_id, request_id, transaction_id) DO NOTHING",
    )
    .bind(&message.message_id)
    .bind(&message.org_id)
    .bind(&message.api_key_id)
    .bind(&message.request_id)
    .bind(&message.transaction_id)
    .bind(&message.wallet_id)
    .bind(&message.body)
    .bind(&message.status)
    .bind(message.created_timestamp)
    .bind(&message.protocol)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        let message = asked_before(conn, &request)
            .await?
            .ok_or_else(|| Error::Storage("a repeated question was not found".into()))?;
        return Ok(CallbackAsked::Message {
            message,
            jobs: Vec::new(),
        });
    }

    let (lease_owner, next_attempt_at) = match &request.lease {
        Some((owner, until)) => (Some(owner.as_str()), *until),
        None => (None, request.now),
    };
    let mut jobs = Vec::new();
    for (endpoint_id, url) in endpoints {
        let delivery_id = new_id();
        sqlx::query(
            "INSERT INTO deliveries (delivery_id, kind, org_id, target_id, parent_id, event_type,
                 url, body, created_ts, updated_ts, state, attempts, max_attempts,
                 next_attempt_at, lease_owner)
             VALUES ($1, $11, $2, $3, $4, NULL, $5, $6, $7, $7, 'pending', 0, $8, $9, $10)",
        )
        .bind(&delivery_id)
        .bind(&message.org_id)
        .bind(&endpoint_id)
        .bind(&message.message_id)
        .bind(&url)
        .bind(&message.body)
        .bind(request.now)
        .bind(request.max_attempts as i32)
        .bind(next_attempt_at)
        .bind(lease_owner)
        .bind(kind.as_str())
        .execute(&mut *conn)
        .await?;
        if let Some(owner) = lease_owner {
            jobs.push(Job {
                delivery_id,
                kind,
                target_id: endpoint_id,
                parent_id: message.message_id.clone(),
                url,
                body: message.body.clone().into(),
                attempts: 0,
                max_attempts: request.max_attempts,
                lease_owner: owner.to_owned(),
            });
        }
    }
    Ok(CallbackAsked::Message { message, jobs })
}

async fn asked_before(
    conn: &mut PgConnection,
    request: &CallbackRequest,
) -> Result<Option<CallbackMessage>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM callback_messages
         WHERE org_id = $1 AND api_key_id = $2 AND request_id = $3 AND transaction_id = $4"
    );
    let row = sqlx::query(&sql)
        .bind(&request.org_id)
        .bind(&request.api_key_id)
        .bind(&request.request_id)
        .bind(&request.transaction_id)
        .fetch_optional(conn)
        .await?;
    let message = row
        .as_ref()
        .map(message_from_row)
        .transpose()?
        .map(|(_, m)| m);
    match message {
        Some(message) if message.body != request.body => Err(question_conflict()),
        found => Ok(found),
    }
}

async fn retry_message_in(
    conn: &mut PgConnection,
    org_id: &str,
    message_id: &str,
    now: i64,
) -> Result<()> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM callback_messages WHERE message_id = $1 AND org_id = $2 FOR UPDATE",
    )
    .bind(message_id)
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?;
    let status = status.ok_or(Error::NotFound("callback message"))?;

    match status.as_str() {
        message_status::FAILED => {
            // One more attempt for every endpoint that has not approved. A
            // delivery cancelled while its attempt was in flight keeps that
            // attempt's lease: the endpoint is not asked a second time at
            // once, and the attempt's answer, when it comes, counts.
            sqlx::query(
                "UPDATE deliveries SET state = 'pending', max_attempts = attempts + 1,
                     next_attempt_at = CASE WHEN lease_owner IS NOT NULL
                         AND next_attempt_at > $1 THEN next_attempt_at ELSE $1 END,
                     lease_owner = CASE WHEN next_attempt_at > $1 THEN lease_owner END,
                     updated_ts = $1
                 WHERE parent_id = $2 AND state IN ('failed', 'cancelled')",
            )
            .bind(now)
            .bind(message_id)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE callback_messages SET status = 'Retrying', updated_ts = $1
                 WHERE message_id = $2 AND status = 'Failed'",
            )
            .bind(now)
            .bind(message_id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
        message_status::RETRYING => {
            let waiting = sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $1, lease_owner = NULL, updated_ts = $1
                 WHERE parent_id = $2 AND state = 'pending'
                   AND (lease_owner IS NULL OR next_attempt_at <= $1)",
            )
            .bind(now)
            .bind(message_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if waiting == 0 {
                return Err(Error::Conflict(
                    "every attempt of this message is in flight; retry after they end".into(),
                ));
            }
            Ok(())
        }
        decided => Err(Error::Conflict(format!(
            "the message is {decided}; a decision is final and is never asked again"
        ))),
    }
}

const CALLBACK_ENDPOINT_COLUMNS: &str = "row_id, callback_endpoint_id, org_id, api_key_id, url, \
                                         status, description, created_ts, updated_ts, protocol";

fn callback_endpoint_from_row(r: &PgRow) -> Result<(i64, CallbackEndpoint)> {
    Ok((
        r.try_get(0)?,
        CallbackEndpoint {
            callback_endpoint_id: r.try_get(1)?,
            org_id: r.try_get(2)?,
            api_key_id: r.try_get(3)?,
            url: r.try_get(4)?,
            status: r.try_get(5)?,
            description: r.try_get(6)?,
            created_timestamp: r.try_get(7)?,
            updated_timestamp: r.try_get(8)?,
            protocol: r.try_get(9)?,
        },
    ))
}

async fn load_callback_endpoint(
    conn: &mut PgConnection,
    org_id: &str,
    id: &str,
    for_update: bool,
) -> Result<Option<CallbackEndpoint>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!(
        "SELECT {CALLBACK_ENDPOINT_COLUMNS} FROM callback_endpoints
         WHERE callback_endpoint_id = $1 AND org_id = $2{lock}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(org_id)
        .fetch_optional(conn)
        .await?;
    Ok(row
        .as_ref()
        .map(callback_endpoint_from_row)
        .transpose()?
        .map(|(_, e)| e))
}

const MESSAGE_COLUMNS: &str = "row_id, message_id, org_id, api_key_id, request_id, \
    transaction_id, wallet_id, body, status, result, created_ts, updated_ts, protocol";

fn message_from_row(r: &PgRow) -> Result<(i64, CallbackMessage)> {
    Ok((
        r.try_get(0)?,
        CallbackMessage {
            message_id: r.try_get(1)?,
            org_id: r.try_get(2)?,
            api_key_id: r.try_get(3)?,
            request_id: r.try_get(4)?,
            transaction_id: r.try_get(5)?,
            wallet_id: r.try_get(6)?,
            body: r.try_get(7)?,
            status: r.try_get(8)?,
            result: r.try_get(9)?,
            created_timestamp: r.try_get(10)?,
            updated_timestamp: r.try_get(11)?,
            protocol: r.try_get(12)?,
        },
    ))
}

/// Refuses a URL that the organisation already uses with the other
/// protocol: a URL receives either WaaS 1.0 or WaaS 2.0 traffic, never both.
async fn refuse_cross_protocol_url(
    conn: &mut PgConnection,
    org_id: &str,
    url: &str,
    wanted: &str,
) -> Result<()> {
    let clash: Option<String> = sqlx::query_scalar(
        "SELECT protocol FROM endpoints
         WHERE org_id = $1 AND url = $2 AND status = $3 AND protocol <> $4
         UNION ALL
         SELECT protocol FROM callback_endpoints
         WHERE org_id = $1 AND url = $2 AND status = $3 AND protocol <> $4
         LIMIT 1",
    )
    .bind(org_id)
    .bind(url)
    .bind(endpoint_status::ACTIVE)
    .bind(wanted)
    .fetch_optional(conn)
    .await?;
    match clash {
        Some(other) => Err(Error::Conflict(format!(
            "{url} already receives {} traffic; use a separate URL for each API generation",
            if other == protocol::WAAS1 {
                "WaaS 1.0"
            } else {
                "WaaS 2.0"
            }
        ))),
        None => Ok(()),
    }
}

async fn insert_callback_endpoint(
    conn: &mut PgConnection,
    endpoint: &CallbackEndpoint,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO callback_endpoints (callback_endpoint_id, org_id, api_key_id, url,
             status, description, created_ts, updated_ts, protocol)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&endpoint.callback_endpoint_id)
    .bind(&endpoint.org_id)
    .bind(&endpoint.api_key_id)
    .bind(&endpoint.url)
    .bind(&endpoint.status)
    .bind(&endpoint.description)
    .bind(endpoint.created_timestamp)
    .bind(endpoint.updated_timestamp)
    .bind(&endpoint.protocol)
    .execute(conn)
    .await?;
    Ok(())
}

async fn load_waas1_urls(conn: &mut PgConnection, org_id: &str) -> Result<Waas1Urls> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints
         WHERE org_id = $1 AND protocol = 'waas1' AND status = $2 LIMIT 1"
    );
    let row = sqlx::query(&sql)
        .bind(org_id)
        .bind(endpoint_status::ACTIVE)
        .fetch_optional(&mut *conn)
        .await?;
    let notification = row
        .as_ref()
        .map(endpoint_from_row)
        .transpose()?
        .map(|(_, e)| e);

    let sql = format!(
        "SELECT {CALLBACK_ENDPOINT_COLUMNS} FROM callback_endpoints
         WHERE org_id = $1 AND protocol = 'waas1' AND status = $2 LIMIT 1"
    );
    let row = sqlx::query(&sql)
        .bind(org_id)
        .bind(endpoint_status::ACTIVE)
        .fetch_optional(&mut *conn)
        .await?;
    let confirmation = row
        .as_ref()
        .map(callback_endpoint_from_row)
        .transpose()?
        .map(|(_, e)| e);
    Ok(Waas1Urls {
        notification,
        confirmation,
    })
}

async fn notify_waas1_in(
    conn: &mut PgConnection,
    n: Waas1Notification,
) -> Result<Option<Waas1Notified>> {
    if !org_exists(conn, &n.org_id).await? {
        return Err(Error::NotFound("organisation"));
    }
    let Some(endpoint) = load_waas1_urls(conn, &n.org_id).await?.notification else {
        return Ok(None);
    };

    let occurrence_id = new_id();
    sqlx::query(
        "INSERT INTO occurrences (occurrence_id, org_id, event_type, idempotency_key, created_ts)
         VALUES ($1, $2, $3, NULL, $4)",
    )
    .bind(&occurrence_id)
    .bind(&n.org_id)
    .bind(WAAS1_NOTIFICATION_TYPE)
    .bind(n.now)
    .execute(&mut *conn)
    .await?;

    let (lease_owner, next_attempt_at) = match &n.lease {
        Some((owner, until)) => (Some(owner.as_str()), *until),
        None => (None, n.now),
    };
    let event_id = new_id();
    sqlx::query(
        "INSERT INTO deliveries (delivery_id, kind, org_id, target_id, parent_id, event_type,
             url, body, created_ts, updated_ts, state, attempts, max_attempts,
             next_attempt_at, lease_owner)
         VALUES ($1, 'waas1_notification', $2, $3, $4, $5, $6, $7, $8, $8, 'pending', 0, $9,
             $10, $11)",
    )
    .bind(&event_id)
    .bind(&n.org_id)
    .bind(&endpoint.endpoint_id)
    .bind(&occurrence_id)
    .bind(WAAS1_NOTIFICATION_TYPE)
    .bind(&endpoint.url)
    .bind(&n.body)
    .bind(n.now)
    .bind(n.max_attempts as i32)
    .bind(next_attempt_at)
    .bind(lease_owner)
    .execute(&mut *conn)
    .await?;

    let jobs = lease_owner
        .map(|owner| Job {
            delivery_id: event_id.clone(),
            kind: DeliveryKind::Waas1Notification,
            target_id: endpoint.endpoint_id.clone(),
            parent_id: occurrence_id,
            url: endpoint.url.clone(),
            body: n.body.into(),
            attempts: 0,
            max_attempts: n.max_attempts,
            lease_owner: owner.to_owned(),
        })
        .into_iter()
        .collect();
    Ok(Some(Waas1Notified {
        event_id,
        endpoint_id: endpoint.endpoint_id,
        jobs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_ignores_its_own_notifications() {
        assert!(parse_notice("me due", "me").is_none());
        assert!(matches!(parse_notice("other due", "me"), Some(Change::Due)));
    }

    #[test]
    fn notifications_carry_what_listeners_and_waiters_need() {
        let notice = Notice::Occurrence {
            org_id: "org-1".into(),
            cursor: Cursor {
                created: 17,
                row: 4,
            },
        };
        let payload = format!("a {}", notice.payload());
        match parse_notice(&payload, "b") {
            Some(Change::Occurrence { org_id, cursor }) => {
                assert_eq!(org_id, "org-1");
                assert_eq!(
                    cursor,
                    Cursor {
                        created: 17,
                        row: 4
                    }
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let progress = format!(
            "a {}",
            Notice::CallbackProgress {
                message_id: "m".into()
            }
            .payload()
        );
        assert!(matches!(
            parse_notice(&progress, "b"),
            Some(Change::CallbackProgress { message_id }) if message_id == "m"
        ));
        assert!(parse_notice("a unknown", "b").is_none());
    }
}
