//! The embedded SQLite store.
//!
//! One writer thread owns the only write connection and commits in groups:
//! it takes every write waiting in its queue (up to [`GROUP_LIMIT`]), runs
//! each inside its own savepoint, commits them all with one fsync
//! (`synchronous = FULL` in WAL mode), and only then answers each caller. A
//! failing write rolls back to its savepoint and leaves the rest of the group
//! intact. Under load, hundreds of publishes share one fsync; alone, a
//! publish pays one.
//!
//! Reads run on a small pool of read-only connections on the blocking thread
//! pool; WAL lets them proceed while the writer commits. A third thread
//! checkpoints the log into the database file, off the writer's path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

use async_trait::async_trait;
use hookgate_protocol::envelope;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use tokio::sync::{mpsc, oneshot};

use super::query::{self, finish_page, merge_branches, Bind, Filter, Part, Window};
use super::*;
use crate::error::{Error, Result};
use hookgate_protocol::callback::Decision;

/// Most writes committed together.
const GROUP_LIMIT: usize = 1024;

/// Read connections kept open.
const READERS: usize = 4;

/// Schema migrations, applied in order at start. Never edit a released one:
/// add another.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_callbacks.sql")),
    (3, include_str!("migrations/0003_waas1_and_streams.sql")),
    (4, include_str!("migrations/0004_portal.sql")),
    (
        5,
        include_str!("migrations/0005_claims_and_rebuilt_bodies.sql"),
    ),
];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

type Finish = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
type WriteJob = Box<dyn FnOnce(&Connection) -> Finish + Send>;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: mpsc::UnboundedSender<WriteJob>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    /// Where the next claim starts reading the due index, see
    /// [`SqliteStore::claim_due`].
    sweep_from: Arc<Mutex<i64>>,
    /// Keeps the checkpointer thread running while the store lives.
    _alive: Arc<()>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_restarting_after(path, RESTART_AFTER_FRAMES)
    }

    fn open_restarting_after(path: &Path, restart_after_frames: i64) -> Result<Self> {
        let mut conn = open_connection(path)?;
        migrate(&mut conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;

        let alive = Arc::new(());
        let restart = Arc::new(AtomicBool::new(false));
        let (checkpointed, weak) = (path.to_owned(), Arc::downgrade(&alive));
        let asks = restart.clone();
        thread::Builder::new()
            .name("hookgate-sqlite-checkpoint".into())
            .spawn(move || run_checkpointer(checkpointed, weak, asks, restart_after_frames))
            .map_err(|e| Error::Storage(format!("cannot start the checkpointer: {e}")))?;

        let (writer, queue) = mpsc::unbounded_channel();
        thread::Builder::new()
            .name("hookgate-sqlite-writer".into())
            .spawn(move || run_writer(conn, queue, restart))
            .map_err(|e| Error::Storage(format!("cannot start the writer thread: {e}")))?;

        Ok(Self {
            writer,
            readers: Arc::new(Mutex::new(Vec::new())),
            path: path.to_owned(),
            sweep_from: Arc::new(Mutex::new(i64::MIN)),
            _alive: alive,
        })
    }

    /// Runs `f` in the next group commit; answers once it is durable.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = in_savepoint(conn, f);
            Box::new(move |committed| {
                let outcome = committed.map_err(Error::Storage).and(result);
                let _ = answer.send(outcome);
            })
        });

        self.writer
            .send(job)
            .map_err(|_| Error::Unavailable("the store is closed".into()))?;
        answered
            .await
            .map_err(|_| Error::Storage("the writer thread stopped".into()))?
    }

    /// Runs `f` on a read connection.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().expect("reader pool lock").pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&path)?,
            };
            let result = f(&conn);
            let mut pool = readers.lock().expect("reader pool lock");
            if pool.len() < READERS {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| Error::Storage(format!("read task failed: {e}")))?
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| Error::Storage(format!("cannot open {}: {e}", path.display())))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    // Savepoint journals and sorts stay in memory, never in temporary files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
    Ok(conn)
}

/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Longest a connection waits for a lock another holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Log frames (pages) past which the checkpointer asks the writer to start
/// the log again from its beginning: 64 MiB of 4 KiB pages. Even at 1,000
/// events/s the log grows by tens of megabytes a second (each small commit
/// appends whole copies of the pages it touched), so this happens every few
/// seconds under load; each restart holds writes for 0.5 to 3 ms at that
/// rate, 5 to 30 ms at full load.
const RESTART_AFTER_FRAMES: i64 = 16_384;

/// The size past which the log file is cut back when it starts again: well
/// above what it reaches between restarts, so that it is normally never cut.
/// Cutting a file of hundreds of megabytes held the next commit for about
/// 90 ms, and the pages cut off had to be zeroed again as the log regrew;
/// a log that keeps its size is overwritten in place.
const LOG_SIZE_LIMIT: i64 = 256 * 1024 * 1024;

/// Copies committed pages from the write-ahead log into the database file
/// on a thread of its own, so that the writer never pays for it inside a
/// commit (SQLite's automatic checkpoint is turned off on the writer). It
/// stops when the store is dropped.
///
/// A passive checkpoint never waits for the writer, but under a steady
/// stream of commits it never catches up with the end of the log either, and
/// SQLite only starts the log again once a checkpoint has copied all of it:
/// left alone, the log grows by tens of megabytes a second for as long as
/// the load lasts, and every append lands on fresh file pages the kernel
/// must zero first. So once the log is long, the checkpointer asks the
/// writer to start it again ([`restart_log`]) between two commits.
fn run_checkpointer(
    path: PathBuf,
    alive: Weak<()>,
    restart: Arc<AtomicBool>,
    restart_after_frames: i64,
) {
    let conn = match open_connection(&path) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::error!(error = %e, "the checkpointer cannot open the database");
            return;
        }
    };
    while alive.upgrade().is_some() {
        thread::sleep(CHECKPOINT_EVERY);
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) if frames > restart_after_frames => restart.store(true, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "checkpoint failed; the next one retries"),
        }
    }
}

/// Copies what the last passive checkpoint left of the log and makes the
/// next commit write from the start of the log file. Runs on the writer
/// thread, between two commits, so it never waits for the write lock; it
/// gives up at once, to be asked again, when a reader or the checkpointer
/// is in the way. Writes wait while it copies: about one checkpoint
/// interval's worth of pages.
fn restart_log(conn: &Connection) {
    let _ = conn.busy_timeout(Duration::ZERO);
    let restarted = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    match restarted {
        Ok(0) => tracing::debug!("the write-ahead log starts again"),
        Ok(_) => tracing::debug!("the write-ahead log is in use; restarting it later"),
        Err(e) => tracing::warn!(error = %e, "restarting the write-ahead log failed"),
    }
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = open_connection(path)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let current = schema_version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(Error::Storage(format!(
            "the database schema is version {current}, newer than this build knows \
             ({SCHEMA_VERSION}); run a newer hookgate"
        )));
    }

    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, crate::now_ms()],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?)
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    // Cached statements: every write of a group passes here, so parsing
    // these two each time would cost as much as a small insert.
    conn.prepare_cached("SAVEPOINT op")?.execute([])?;
    match f(conn) {
        Ok(value) => {
            conn.prepare_cached("RELEASE op")?.execute([])?;
            Ok(value)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO op; RELEASE op")?;
            Err(e)
        }
    }
}

fn run_writer(
    conn: Connection,
    mut queue: mpsc::UnboundedReceiver<WriteJob>,
    restart: Arc<AtomicBool>,
) {
    while let Some(first) = queue.blocking_recv() {
        if restart.swap(false, Ordering::Relaxed) {
            restart_log(&conn);
        }
        let mut group = vec![first];
        while group.len() < GROUP_LIMIT {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }

        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let reason = format!("cannot begin a transaction: {e}");
            for job in group {
                job(&conn)(Err(reason.clone()));
            }
            continue;
        }

        let finishes: Vec<Finish> = group.into_iter().map(|job| job(&conn)).collect();
        let committed = conn
            .execute_batch("COMMIT")
            .map_err(|e| format!("commit failed: {e}"));
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for finish in finishes {
            finish(committed.clone());
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> std::result::Result<(), String> {
        let version = self.read(schema_version).await.map_err(|e| e.to_string())?;
        if version != SCHEMA_VERSION {
            return Err(format!(
                "schema is version {version}, this build needs {SCHEMA_VERSION}"
            ));
        }
        Ok(())
    }

    async fn create_org(&self, org: Org) -> Result<Org> {
        self.write(move |conn| {
            conn.prepare_cached("INSERT INTO orgs (org_id, name, created_ts) VALUES (?1, ?2, ?3)")?
                .execute(params![org.org_id, org.name, org.created_timestamp])?;
            Ok(org)
        })
        .await
    }

    async fn create_api_key(&self, key: ApiKey, secret_hash: String) -> Result<ApiKey> {
        self.write(move |conn| {
            if !org_exists(conn, &key.org_id)? {
                return Err(Error::NotFound("organisation"));
            }
            conn.prepare_cached(
                "INSERT INTO api_keys (api_key_id, org_id, name, public_key, secret_hash, created_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                key.api_key_id,
                key.org_id,
                key.name,
                key.public_key,
                secret_hash,
                key.created_timestamp
            ])?;
            Ok(key)
        })
        .await
    }

    async fn api_key_by_secret_hash(&self, secret_hash: String) -> Result<Option<ApiKey>> {
        self.read(move |conn| api_key_where(conn, "secret_hash", &secret_hash))
            .await
    }

    async fn api_key_by_public_key(&self, public_key: String) -> Result<Option<ApiKey>> {
        self.read(move |conn| api_key_where(conn, "public_key", &public_key))
            .await
    }

    async fn org(&self, org_id: String) -> Result<Option<Org>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT org_id, name, created_ts FROM orgs WHERE org_id = ?1")?
                .query_row([org_id], |r| {
                    Ok(Org {
                        org_id: r.get(0)?,
                        name: r.get(1)?,
                        created_timestamp: r.get(2)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn create_endpoint(&self, endpoint: Endpoint) -> Result<Endpoint> {
        self.write(move |conn| {
            refuse_cross_protocol_url(conn, &endpoint.org_id, &endpoint.url, &endpoint.protocol)?;
            conn.prepare_cached(
                "INSERT INTO endpoints (endpoint_id, org_id, url, subscribed_events, status,
                     description, created_ts, updated_ts, protocol)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                endpoint.endpoint_id,
                endpoint.org_id,
                endpoint.url,
                serde_json::to_string(&endpoint.subscribed_events).expect("strings serialise"),
                endpoint.status,
                endpoint.description,
                endpoint.created_timestamp,
                endpoint.updated_timestamp,
                endpoint.protocol
            ])?;
            Ok(endpoint)
        })
        .await
    }

    async fn endpoint(&self, org_id: String, endpoint_id: String) -> Result<Option<Endpoint>> {
        self.read(move |conn| load_endpoint(conn, &org_id, &endpoint_id))
            .await
    }

    async fn list_endpoints(&self, query: EndpointQuery) -> Result<Page<Endpoint>> {
        self.read(move |conn| {
            let mut filter = Filter::new("org_id = ?", query.org_id);
            if let Some(status) = query.status {
                filter.and("status = ?", status);
            }
            if let Some(event_type) = query.event_type {
                filter.and(
                    "EXISTS (SELECT 1 FROM json_each(subscribed_events) WHERE value = ?)",
                    event_type,
                );
            }
            page(
                conn,
                "endpoints",
                ENDPOINT_COLUMNS,
                filter,
                &query.page,
                endpoint_from_row,
            )
        })
        .await
    }

    async fn update_endpoint(&self, change: EndpointChange) -> Result<Endpoint> {
        self.write(move |conn| {
            let mut endpoint = load_endpoint(conn, &change.org_id, &change.endpoint_id)?
                .ok_or(Error::NotFound("endpoint"))?;

            if endpoint.status == endpoint_status::INACTIVE {
                return Err(Error::Conflict(
                    "the endpoint is revoked; revocation is permanent, register a new endpoint"
                        .into(),
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

            conn.prepare_cached(
                "UPDATE endpoints SET subscribed_events = ?1, description = ?2, status = ?3,
                     updated_ts = ?4
                 WHERE endpoint_id = ?5",
            )?
            .execute(params![
                serde_json::to_string(&endpoint.subscribed_events).expect("strings serialise"),
                endpoint.description,
                endpoint.status,
                endpoint.updated_timestamp,
                endpoint.endpoint_id
            ])?;
            Ok(endpoint)
        })
        .await
    }

    async fn publish(&self, request: PublishRequest) -> Result<Published> {
        let data_json = envelope::data_json(&request.data);
        self.write(move |conn| publish_in(conn, &request, &data_json))
            .await
    }

    async fn claim_due(&self, claim: Claim) -> Result<Vec<Job>> {
        // The scan of the due index runs on a reader, beside the writer; the
        // write only leases the rows chosen, by their keys. The index holds
        // the endpoint, so the scan walks past the rows of saturated
        // endpoints (a dead endpoint's retries at the head of the index)
        // without reading the table, and finds the due rows of the others;
        // it walks at most `window` entries, so that a claim stays cheap
        // however deep a saturated endpoint's backlog. When a window holds
        // too few rows of other endpoints, the next claim reads the window
        // after it, and so on to the end of the due rows and back to the
        // head: every due row is looked at within a few claims, whatever
        // lies before it.
        let (now, scan) = (claim.now, (claim.limit * 8).max(256) as i64);
        let window = scan * 16;
        let skip = serde_json::to_string(&claim.skip_targets).expect("strings serialise");
        let from = *self.sweep_from.lock().expect("sweep lock");
        let (due, next_from): (Vec<(i64, String)>, i64) = self
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT row_id, target_id FROM (
                         SELECT row_id, target_id, next_attempt_at FROM deliveries
                         WHERE state = 'pending' AND next_attempt_at <= ?1
                             AND next_attempt_at >= ?5
                         ORDER BY next_attempt_at LIMIT ?4)
                     WHERE target_id NOT IN (SELECT value FROM json_each(?3))
                     ORDER BY next_attempt_at LIMIT ?2",
                )?;
                let rows = statement.query_map(params![now, scan, skip, window, from], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                let due: Vec<(i64, String)> = rows.collect::<rusqlite::Result<_>>()?;
                if due.len() as i64 == scan {
                    return Ok((due, from));
                }
                // Too few: where did a full window end, if it was full?
                let end: Option<i64> = conn
                    .prepare_cached(
                        "SELECT next_attempt_at FROM deliveries
                         WHERE state = 'pending' AND next_attempt_at <= ?1
                             AND next_attempt_at >= ?2
                         ORDER BY next_attempt_at LIMIT 1 OFFSET ?3",
                    )?
                    .query_row(params![now, from, window - 1], |r| r.get(0))
                    .optional()?;
                // A full window: the next claim goes on after it (past rows
                // sharing its last due time, should a whole window share
                // one); otherwise the end was reached, and the next claim
                // starts at the head again.
                let next = match end {
                    Some(end) if end > from => end,
                    Some(_) => from.saturating_add(1),
                    None => i64::MIN,
                };
                Ok((due, next))
            })
            .await?;
        *self.sweep_from.lock().expect("sweep lock") = next_from;
        let chosen = query::choose_claimable(due, &claim);
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| claim_in(conn, &claim, &chosen))
            .await
    }

    async fn next_due(&self) -> Result<Option<i64>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'",
                )?
                .query_row([], |r| r.get(0))?)
        })
        .await
    }

    async fn record_attempt(&self, record: AttemptOutcome) -> Result<bool> {
        self.write(move |conn| record_in(conn, &record)).await
    }

    async fn release_leases(
        &self,
        owner: String,
        delivery_ids: Vec<String>,
        now: i64,
    ) -> Result<()> {
        self.write(move |conn| {
            let mut release = conn.prepare_cached(
                "UPDATE deliveries SET lease_owner = NULL, next_attempt_at = ?1
                 WHERE delivery_id = ?2 AND lease_owner = ?3 AND state = 'pending'",
            )?;
            for delivery_id in &delivery_ids {
                release.execute(params![now, delivery_id, owner])?;
            }
            Ok(())
        })
        .await
    }

    async fn list_events(&self, query: EventQuery) -> Result<Page<Delivery>> {
        self.read(move |conn| {
            let request = query.page.clone();
            let filter = query::event_list(query);
            page(
                conn,
                "deliveries",
                DELIVERY_COLUMNS,
                filter,
                &request,
                delivery_from_row,
            )
        })
        .await
    }

    async fn delivery(&self, org_id: String, delivery_id: String) -> Result<Option<Delivery>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = ?1 AND org_id = ?2"
            );
            Ok(conn
                .prepare_cached(&sql)?
                .query_row([delivery_id, org_id], |r| Ok(delivery_from_row(r)))
                .optional()?
                .transpose()?
                .map(|(_, d)| d))
        })
        .await
    }

    async fn attempts(&self, delivery_id: String) -> Result<Vec<Attempt>> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT attempt_no, created_ts, request_headers, response_status, response_body,
                     response_truncated, response_time_ms, success, failure_reason
                 FROM attempts WHERE delivery_id = ?1 ORDER BY row_id",
            )?;
            let rows = statement.query_map([delivery_id], |r| {
                let headers: String = r.get(2)?;
                Ok(Attempt {
                    attempt_no: r.get(0)?,
                    created_timestamp: r.get(1)?,
                    request_headers: serde_json::from_str(&headers).unwrap_or_default(),
                    response_status_code: r.get(3)?,
                    response_body: r.get(4)?,
                    response_truncated: r.get(5)?,
                    response_time: r.get(6)?,
                    success: r.get(7)?,
                    failure_reason: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn retry_now(&self, org_id: String, delivery_id: String, now: i64) -> Result<()> {
        self.write(move |conn| {
            let row: Option<(String, Option<String>, i64)> = conn
                .prepare_cached(
                    "SELECT state, lease_owner, next_attempt_at FROM deliveries
                     WHERE delivery_id = ?1 AND org_id = ?2",
                )?
                .query_row([&delivery_id, &org_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let (state, lease_owner, next_attempt_at) = row.ok_or(Error::NotFound("event"))?;

            match DeliveryState::parse(&state) {
                Some(DeliveryState::Succeeded) => {
                    return Err(Error::Conflict(
                        "the event was delivered; only Retrying or Failed events can be retried"
                            .into(),
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
            conn.prepare_cached(
                "UPDATE deliveries SET
                     max_attempts = CASE WHEN state = 'failed' THEN attempts + 1
                                         ELSE max_attempts END,
                     state = 'pending', next_attempt_at = ?1, lease_owner = NULL, updated_ts = ?1
                 WHERE delivery_id = ?2",
            )?
            .execute(params![now, delivery_id])?;
            Ok(())
        })
        .await
    }

    async fn create_callback_endpoint(
        &self,
        endpoint: CallbackEndpoint,
    ) -> Result<CallbackEndpoint> {
        self.write(move |conn| {
            let owner: Option<String> = conn
                .prepare_cached("SELECT org_id FROM api_keys WHERE api_key_id = ?1")?
                .query_row([&endpoint.api_key_id], |r| r.get(0))
                .optional()?;
            if owner.as_deref() != Some(endpoint.org_id.as_str()) {
                return Err(Error::NotFound("API key"));
            }
            refuse_cross_protocol_url(conn, &endpoint.org_id, &endpoint.url, &endpoint.protocol)?;
            insert_callback_endpoint(conn, &endpoint)?;
            Ok(endpoint)
        })
        .await
    }

    async fn list_callback_endpoints(
        &self,
        org_id: String,
        page_request: PageRequest,
    ) -> Result<Page<CallbackEndpoint>> {
        self.read(move |conn| {
            let filter = Filter::new("org_id = ?", org_id);
            page(
                conn,
                "callback_endpoints",
                CALLBACK_ENDPOINT_COLUMNS,
                filter,
                &page_request,
                callback_endpoint_from_row,
            )
        })
        .await
    }

    async fn callback_endpoint(
        &self,
        org_id: String,
        id: String,
    ) -> Result<Option<CallbackEndpoint>> {
        self.read(move |conn| load_callback_endpoint(conn, &org_id, &id))
            .await
    }

    async fn update_callback_endpoint(
        &self,
        change: CallbackEndpointChange,
    ) -> Result<CallbackEndpoint> {
        self.write(move |conn| {
            let mut endpoint =
                load_callback_endpoint(conn, &change.org_id, &change.callback_endpoint_id)?
                    .ok_or(Error::NotFound("callback endpoint"))?;
            if endpoint.status == endpoint_status::INACTIVE {
                return Err(Error::Conflict(
                    "the callback endpoint is revoked; revocation is permanent".into(),
                ));
            }
            if let Some(url) = change.url {
                refuse_cross_protocol_url(conn, &endpoint.org_id, &url, &endpoint.protocol)?;
                endpoint.url = url;
            }
            if let Some(description) = change.description {
                endpoint.description = description;
            }
            if let Some(status) = change.status {
                endpoint.status = status;
            }
            endpoint.updated_timestamp = change.now;
            conn.prepare_cached(
                "UPDATE callback_endpoints SET url = ?1, description = ?2, status = ?3,
                     updated_ts = ?4
                 WHERE callback_endpoint_id = ?5",
            )?
            .execute(params![
                endpoint.url,
                endpoint.description,
                endpoint.status,
                endpoint.updated_timestamp,
                endpoint.callback_endpoint_id
            ])?;
            Ok(endpoint)
        })
        .await
    }

    async fn ask_callback(&self, request: CallbackRequest) -> Result<CallbackAsked> {
        self.write(move |conn| ask_in(conn, request)).await
    }

    async fn callback_message(
        &self,
        org_id: Option<String>,
        message_id: String,
    ) -> Result<Option<CallbackMessage>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM callback_messages
                 WHERE message_id = ?1 AND (?2 IS NULL OR org_id = ?2)"
            );
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(params![message_id, org_id], |r| Ok(message_from_row(r)))
                .optional()?
                .transpose()?
                .map(|(_, m)| m))
        })
        .await
    }

    async fn list_callback_messages(
        &self,
        query: CallbackMessageQuery,
    ) -> Result<Page<CallbackMessage>> {
        self.read(move |conn| {
            let request = query.page.clone();
            let filter = query::message_list(query);
            page(
                conn,
                "callback_messages",
                MESSAGE_COLUMNS,
                filter,
                &request,
                message_from_row,
            )
        })
        .await
    }

    async fn deliveries_of(&self, parent_id: String) -> Result<Vec<Delivery>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE parent_id = ?1 ORDER BY row_id"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let mut rows = statement.query([parent_id])?;
            let mut deliveries = Vec::new();
            while let Some(row) = rows.next()? {
                deliveries.push(delivery_from_row(row)?.1);
            }
            Ok(deliveries)
        })
        .await
    }

    async fn retry_callback_message(
        &self,
        org_id: String,
        message_id: String,
        now: i64,
    ) -> Result<()> {
        self.write(move |conn| retry_message_in(conn, &org_id, &message_id, now))
            .await
    }

    async fn occurrences_after(
        &self,
        org_id: String,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Occurrence>> {
        self.read(move |conn| {
            let after = after.unwrap_or(Cursor {
                created: i64::MIN,
                row: i64::MIN,
            });
            let mut statement = conn.prepare_cached(
                "SELECT row_id, occurrence_id, event_type, data, created_ts FROM occurrences
                 WHERE org_id = ?1 AND (created_ts, row_id) > (?2, ?3) AND data IS NOT NULL
                 ORDER BY created_ts, row_id LIMIT ?4",
            )?;
            let rows = statement.query_map(
                params![org_id, after.created, after.row, limit as i64],
                |r| {
                    let created: i64 = r.get(4)?;
                    Ok(Occurrence {
                        cursor: Cursor {
                            created,
                            row: r.get(0)?,
                        },
                        occurrence_id: r.get(1)?,
                        event_type: r.get(2)?,
                        data: r.get(3)?,
                        created_timestamp: created,
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn waas1_urls(&self, org_id: String) -> Result<Waas1Urls> {
        self.read(move |conn| load_waas1_urls(conn, &org_id)).await
    }

    async fn set_waas1_url(
        &self,
        org_id: String,
        which: Waas1Url,
        url: Option<String>,
        now: i64,
    ) -> Result<Waas1Urls> {
        self.write(move |conn| {
            if !org_exists(conn, &org_id)? {
                return Err(Error::NotFound("organisation"));
            }
            if let Some(url) = &url {
                refuse_cross_protocol_url(conn, &org_id, url, protocol::WAAS1)?;
            }

            let table = match which {
                Waas1Url::Notification => "endpoints",
                Waas1Url::Confirmation => "callback_endpoints",
            };
            let revoke = format!(
                "UPDATE {table} SET status = ?1, updated_ts = ?2
                 WHERE org_id = ?3 AND protocol = 'waas1' AND status = ?4"
            );
            conn.prepare_cached(&revoke)?.execute(params![
                endpoint_status::INACTIVE,
                now,
                org_id,
                endpoint_status::ACTIVE
            ])?;

            let Some(url) = url else {
                return load_waas1_urls(conn, &org_id);
            };
            let id = new_id();
            match which {
                Waas1Url::Notification => {
                    conn.prepare_cached(
                        "INSERT INTO endpoints (endpoint_id, org_id, url, subscribed_events,
                             status, description, created_ts, updated_ts, protocol)
                         VALUES (?1, ?2, ?3, '[]', ?4, 'WaaS 1.0 transaction notifications',
                             ?5, ?5, 'waas1')",
                    )?
                    .execute(params![
                        id,
                        org_id,
                        url,
                        endpoint_status::ACTIVE,
                        now
                    ])?;
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
                    insert_callback_endpoint(conn, &endpoint)?;
                }
            }
            load_waas1_urls(conn, &org_id)
        })
        .await
    }

    async fn notify_waas1(&self, notification: Waas1Notification) -> Result<Option<Waas1Notified>> {
        self.write(move |conn| notify_waas1_in(conn, notification))
            .await
    }

    async fn occurrence_cursor(
        &self,
        org_id: String,
        occurrence_id: String,
    ) -> Result<Option<Cursor>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT created_ts, row_id FROM occurrences
                     WHERE occurrence_id = ?1 AND org_id = ?2",
                )?
                .query_row([occurrence_id, org_id], |r| {
                    Ok(Cursor {
                        created: r.get(0)?,
                        row: r.get(1)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn backlog(&self) -> Result<u64> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")?
                .query_row([], |r| r.get(0))?)
        })
        .await
    }

    async fn list_orgs(&self) -> Result<Vec<Org>> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT org_id, name, created_ts FROM orgs ORDER BY name")?;
            let rows = statement.query_map([], |r| {
                Ok(Org {
                    org_id: r.get(0)?,
                    name: r.get(1)?,
                    created_timestamp: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn all_endpoints(&self, org_id: String) -> Result<Vec<Endpoint>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE org_id = ?1
                 ORDER BY created_ts DESC, row_id DESC"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let mut rows = statement.query([org_id])?;
            let mut endpoints = Vec::new();
            while let Some(row) = rows.next()? {
                endpoints.push(endpoint_from_row(row)?.1);
            }
            Ok(endpoints)
        })
        .await
    }

    async fn search_events(&self, search: EventSearch) -> Result<Slice<Delivery>> {
        self.read(move |conn| {
            let branches = query::event_search_branches(&search);
            slice(
                conn,
                "deliveries",
                DELIVERY_COLUMNS,
                branches,
                &search.page,
                delivery_from_row,
            )
        })
        .await
    }

    async fn search_callback_messages(
        &self,
        search: CallbackSearch,
    ) -> Result<Slice<CallbackMessage>> {
        self.read(move |conn| {
            let branches = query::callback_search_branches(&search);
            let table = "callback_messages";
            slice(
                conn,
                table,
                MESSAGE_COLUMNS,
                branches,
                &search.page,
                message_from_row,
            )
        })
        .await
    }

    async fn endpoint_stats(&self, org_id: String, since: i64) -> Result<Vec<EndpointStats>> {
        self.read(move |conn| endpoint_stats_in(conn, &org_id, since))
            .await
    }

    async fn create_portal_session(&self, session: PortalSession) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM portal_sessions WHERE expires_ts <= ?1")?
                .execute([session.created_timestamp])?;
            conn.prepare_cached(
                "INSERT INTO portal_sessions (session_hash, org_id, api_key_id, admin,
                     csrf_token, created_ts, expires_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                session.session_hash,
                session.org_id,
                session.api_key_id,
                session.admin,
                session.csrf_token,
                session.created_timestamp,
                session.expires_timestamp
            ])?;
            Ok(())
        })
        .await
    }

    async fn portal_session(
        &self,
        session_hash: String,
        now: i64,
    ) -> Result<Option<PortalSession>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT session_hash, org_id, api_key_id, admin, csrf_token, created_ts,
                         expires_ts
                     FROM portal_sessions WHERE session_hash = ?1 AND expires_ts > ?2",
                )?
                .query_row(params![session_hash, now], |r| {
                    Ok(PortalSession {
                        session_hash: r.get(0)?,
                        org_id: r.get(1)?,
                        api_key_id: r.get(2)?,
                        admin: r.get(3)?,
                        csrf_token: r.get(4)?,
                        created_timestamp: r.get(5)?,
                        expires_timestamp: r.get(6)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn switch_portal_org(&self, session_hash: String, org_id: String) -> Result<()> {
        self.write(move |conn| {
            if !org_exists(conn, &org_id)? {
                return Err(Error::NotFound("organisation"));
            }
            let changed = conn
                .prepare_cached(
                    "UPDATE portal_sessions SET org_id = ?2 WHERE session_hash = ?1 AND admin = 1",
                )?
                .execute([session_hash, org_id])?;
            if changed == 0 {
                return Err(Error::NotFound("admin session"));
            }
            Ok(())
        })
        .await
    }

    async fn delete_portal_session(&self, session_hash: String) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM portal_sessions WHERE session_hash = ?1")?
                .execute([session_hash])?;
            Ok(())
        })
        .await
    }
}

/// The API key whose `column` (a unique credential column) holds `value`.
fn api_key_where(conn: &Connection, column: &str, value: &str) -> Result<Option<ApiKey>> {
    let sql = format!(
        "SELECT api_key_id, org_id, name, public_key, created_ts FROM api_keys WHERE {column} = ?1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([value], |r| {
            Ok(ApiKey {
                api_key_id: r.get(0)?,
                org_id: r.get(1)?,
                name: r.get(2)?,
                public_key: r.get(3)?,
                created_timestamp: r.get(4)?,
            })
        })
        .optional()?)
}

fn org_exists(conn: &Connection, org_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM orgs WHERE org_id = ?1")?
        .query_row([org_id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn publish_in(
    conn: &Connection,
    request: &PublishRequest,
    data_json: &serde_json::value::RawValue,
) -> Result<Published> {
    if let Some(key) = &request.idempotency_key {
        if let Some(first) = published_before(conn, request, key, data_json.get().as_bytes())? {
            return Ok(first);
        }
    }
    if !org_exists(conn, &request.org_id)? {
        return Err(Error::NotFound("organisation"));
    }

    let occurrence_id = new_id();
    conn.prepare_cached(
        "INSERT INTO occurrences (occurrence_id, org_id, event_type, idempotency_key, created_ts,
             data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        occurrence_id,
        request.org_id,
        request.event_type,
        request.idempotency_key,
        request.now,
        data_json.get().as_bytes()
    ])?;

    let (lease_owner, next_attempt_at) = match &request.lease {
        Some((owner, until)) => (Some(owner.as_str()), *until),
        None => (None, request.now),
    };

    let mut events = Vec::new();
    let mut jobs = Vec::new();
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (delivery_id, kind, org_id, target_id, parent_id, event_type,
             url, body, created_ts, updated_ts, state, attempts, max_attempts,
             next_attempt_at, lease_owner)
         VALUES (?1, 'webhook', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 'pending', 0, ?9, ?10, ?11)",
    )?;

    for (endpoint_id, url) in subscribed_endpoints(conn, &request.org_id, &request.event_type)? {
        let event_id = new_id();
        let body =
            envelope::webhook_body(&event_id, &url, request.now, &request.event_type, data_json);
        insert.execute(params![
            event_id,
            request.org_id,
            endpoint_id,
            occurrence_id,
            request.event_type,
            url,
            REBUILT_BODY,
            request.now,
            request.max_attempts,
            next_attempt_at,
            lease_owner
        ])?;

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

    Ok(Published {
        occurrence_id,
        events,
        replayed: false,
        jobs,
    })
}

/// The first answer to a publish with this idempotency key, if there was
/// one; refused when that publish was of another event.
fn published_before(
    conn: &Connection,
    request: &PublishRequest,
    key: &str,
    data: &[u8],
) -> Result<Option<Published>> {
    let first: Option<(String, String, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT occurrence_id, event_type, data FROM occurrences
             WHERE org_id = ?1 AND idempotency_key = ?2",
        )?
        .query_row([&request.org_id, key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((occurrence_id, event_type, first_data)) = first else {
        return Ok(None);
    };
    if event_type != request.event_type || first_data.as_deref() != Some(data) {
        return Err(idempotency_conflict());
    }

    let mut statement = conn.prepare_cached(
        "SELECT target_id, delivery_id FROM deliveries WHERE parent_id = ?1 ORDER BY row_id",
    )?;
    let events = statement
        .query_map([&occurrence_id], |r| {
            Ok(PublishedEvent {
                endpoint_id: r.get(0)?,
                event_id: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(Published {
        occurrence_id,
        events,
        replayed: true,
        jobs: Vec::new(),
    }))
}

fn subscribed_endpoints(
    conn: &Connection,
    org_id: &str,
    event_type: &str,
) -> Result<Vec<(String, String)>> {
    let mut statement = conn.prepare_cached(
        "SELECT endpoint_id, url, subscribed_events FROM endpoints
         WHERE org_id = ?1 AND status = ?2 AND protocol = 'waas2' ORDER BY row_id",
    )?;
    let rows = statement.query_map(params![org_id, endpoint_status::ACTIVE], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;

    let mut endpoints = Vec::new();
    for row in rows {
        let (endpoint_id, url, subscribed) = row?;
        let subscribed: Vec<String> = serde_json::from_str(&subscribed).unwrap_or_default();
        if subscribed.iter().any(|t| t == event_type) {
            endpoints.push((endpoint_id, url));
        }
    }
    Ok(endpoints)
}

/// Leases the rows `chosen` from the due index, those still due: the hot
/// path of a publish, a manual retry or another claim may have moved one on
/// since it was read.
fn claim_in(conn: &Connection, claim: &Claim, chosen: &[i64]) -> Result<Vec<Job>> {
    let mut statement = conn.prepare_cached(&format!(
        "UPDATE deliveries SET lease_owner = ?1, next_attempt_at = ?2
         WHERE row_id = ?3 AND state = 'pending' AND next_attempt_at <= ?4
         RETURNING delivery_id, kind, target_id, url, body, attempts, max_attempts, parent_id,
             created_ts, event_type, {OCCURRENCE_DATA}"
    ))?;
    let mut claimed = Vec::with_capacity(chosen.len());
    for row_id in chosen {
        let values = params![claim.owner, claim.lease_until, row_id, claim.now];
        if let Some(job) = statement
            .query_row(values, |r| Ok(job_from_row(r, claim)))
            .optional()?
        {
            match job {
                Ok(job) => claimed.push(job),
                // One broken row must not stop every other delivery: it stays
                // leased, and is claimed (and reported) again when that ends.
                Err(e) => tracing::error!(error = %e, "a claimed delivery cannot be sent"),
            }
        }
    }
    Ok(claimed)
}

fn job_from_row(r: &Row<'_>, claim: &Claim) -> Result<Job> {
    let kind: String = r.get(1)?;
    let (delivery_id, url): (String, String) = (r.get(0)?, r.get(3)?);
    let body = stored_body(
        r.get(4)?,
        &delivery_id,
        &url,
        r.get(8)?,
        r.get::<_, Option<String>>(9)?.as_deref(),
        r.get(10)?,
    )?;
    Ok(Job {
        kind: DeliveryKind::parse(&kind).unwrap_or(DeliveryKind::Webhook),
        target_id: r.get(2)?,
        body: body.into(),
        attempts: r.get(5)?,
        max_attempts: r.get(6)?,
        parent_id: r.get(7)?,
        lease_owner: claim.owner.clone(),
        delivery_id,
        url,
    })
}

fn record_in(conn: &Connection, record: &AttemptOutcome) -> Result<bool> {
    let attempt = &record.attempt;
    conn.prepare_cached(
        "INSERT INTO attempts (delivery_id, attempt_no, created_ts, request_headers,
             response_status, response_body, response_truncated, response_time_ms, success,
             failure_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        record.delivery_id,
        attempt.attempt_no,
        attempt.created_timestamp,
        serde_json::to_string(&attempt.request_headers).expect("strings serialise"),
        attempt.response_status_code,
        attempt.response_body,
        attempt.response_truncated,
        attempt.response_time,
        attempt.success,
        attempt.failure_reason
    ])?;

    let (state, next_attempt_at) = match record.next {
        NextStep::Succeeded => (DeliveryState::Succeeded, record.now),
        NextStep::RetryAt(at) => (DeliveryState::Pending, at),
        NextStep::Failed => (DeliveryState::Failed, record.now),
    };
    let result = record.decision.map(|d| d.reply_body());
    let changed: Option<(String, String)> = conn
        .prepare_cached(
            "UPDATE deliveries SET state = ?1, next_attempt_at = ?2, lease_owner = NULL,
                 attempts = MAX(attempts, ?3), updated_ts = ?4, result = COALESCE(?7, result)
             WHERE delivery_id = ?5 AND lease_owner = ?6 AND state = 'pending'
             RETURNING kind, parent_id",
        )?
        .query_row(
            params![
                state.as_str(),
                next_attempt_at,
                attempt.attempt_no,
                record.now,
                record.delivery_id,
                record.lease_owner,
                result
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;

    let Some((kind, parent_id)) = changed else {
        if record.decision == Some(Decision::Deny) {
            late_deny(conn, record)?;
        }
        return Ok(false);
    };
    let asks = DeliveryKind::parse(&kind).is_some_and(DeliveryKind::asks_for_decision);
    if asks && state != DeliveryState::Pending {
        settle_message(conn, &parent_id, record.now)?;
    }
    Ok(true)
}

/// A `deny` that arrives after its message ended `Failed` (another endpoint
/// ran out of attempts while this one was still answering) is kept: the
/// message becomes `Denied`, so that no manual retry can later approve what
/// an approver refused. Both statuses block the transaction; only `Denied`
/// says that someone refused it.
fn late_deny(conn: &Connection, record: &AttemptOutcome) -> Result<()> {
    let message_id: Option<String> = conn
        .prepare_cached(
            "UPDATE deliveries SET result = 'deny', updated_ts = ?1
             WHERE delivery_id = ?2 AND lease_owner = ?3 AND state = 'cancelled'
             RETURNING parent_id",
        )?
        .query_row(
            params![record.now, record.delivery_id, record.lease_owner],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(message_id) = message_id {
        conn.prepare_cached(
            "UPDATE callback_messages SET status = 'Denied', result = 'deny', updated_ts = ?1
             WHERE message_id = ?2 AND status = 'Failed'",
        )?
        .execute(params![record.now, message_id])?;
    }
    Ok(())
}

/// Applies the approval rule to a message after one of its deliveries
/// ended; decides it at most once.
fn settle_message(conn: &Connection, message_id: &str, now: i64) -> Result<()> {
    use crate::approval::{decide, result_of, EndpointAnswer};

    let mut statement = conn.prepare_cached(
        "SELECT state, result FROM deliveries
         WHERE parent_id = ?1 AND kind IN ('callback', 'waas1_confirmation')",
    )?;
    let answers = statement
        .query_map([message_id], |r| {
            let state: String = r.get(0)?;
            let result: Option<String> = r.get(1)?;
            Ok(match (state.as_str(), result.as_deref()) {
                ("succeeded", Some("deny")) => EndpointAnswer::Denied,
                ("succeeded", _) => EndpointAnswer::Approved,
                ("failed", _) => EndpointAnswer::Exhausted,
                _ => EndpointAnswer::Waiting,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;

    let status = decide(&answers);
    if status == message_status::RETRYING {
        return Ok(());
    }

    let decided = conn
        .prepare_cached(
            "UPDATE callback_messages SET status = ?1, result = ?2, updated_ts = ?3
             WHERE message_id = ?4 AND status = 'Retrying'",
        )?
        .execute(params![status, result_of(status), now, message_id])?;
    if decided == 1 {
        // The lease stays: an attempt still in flight keeps its endpoint
        // until it ends, even if a manual retry revives the delivery.
        conn.prepare_cached(
            "UPDATE deliveries SET state = 'cancelled', updated_ts = ?1
             WHERE parent_id = ?2 AND state = 'pending'",
        )?
        .execute(params![now, message_id])?;
    }
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "row_id, endpoint_id, org_id, url, subscribed_events, status, \
                                description, created_ts, updated_ts, protocol";

fn endpoint_from_row(r: &Row<'_>) -> Result<(i64, Endpoint)> {
    let subscribed: String = r.get(4)?;
    Ok((
        r.get(0)?,
        Endpoint {
            endpoint_id: r.get(1)?,
            org_id: r.get(2)?,
            url: r.get(3)?,
            subscribed_events: serde_json::from_str(&subscribed).unwrap_or_default(),
            status: r.get(5)?,
            description: r.get(6)?,
            created_timestamp: r.get(7)?,
            updated_timestamp: r.get(8)?,
            protocol: r.get(9)?,
        },
    ))
}

fn load_endpoint(conn: &Connection, org_id: &str, endpoint_id: &str) -> Result<Option<Endpoint>> {
    let sql =
        format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE endpoint_id = ?1 AND org_id = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([endpoint_id, org_id], |r| Ok(endpoint_from_row(r)))
        .optional()?
        .transpose()?
        .map(|(_, e)| e))
}

/// The data of the occurrence of a `deliveries` row whose body is rebuilt.
macro_rules! occurrence_data {
    () => {
        "(SELECT o.data FROM occurrences o \
         WHERE o.occurrence_id = deliveries.parent_id AND length(deliveries.body) = 0)"
    };
}
const OCCURRENCE_DATA: &str = occurrence_data!();

const DELIVERY_COLUMNS: &str = concat!(
    "row_id, delivery_id, kind, org_id, target_id, parent_id, event_type, url, body, \
     created_ts, updated_ts, state, attempts, max_attempts, next_attempt_at, result, ",
    occurrence_data!()
);

/// What a webhook copy's body column holds: nothing. Its body is the
/// envelope around its occurrence's data, and that data is stored once, with
/// the occurrence, however many endpoints get it; the body is rebuilt from
/// it, byte for byte, whenever it is read ([`stored_body`]). Every other
/// body (callbacks, WaaS 1.0 pushes, and webhook copies stored before this
/// layout) is kept whole, and is never empty.
const REBUILT_BODY: &[u8] = b"";

/// The body to send and show: the stored bytes, or the envelope rebuilt
/// around the occurrence's data.
fn stored_body(
    body: Vec<u8>,
    delivery_id: &str,
    url: &str,
    created: i64,
    event_type: Option<&str>,
    occurrence_data: Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    if !body.is_empty() {
        return Ok(body);
    }
    let broken = |why: &str| Error::Storage(format!("the body of {delivery_id} {why}"));
    let data = occurrence_data.ok_or_else(|| broken("has no occurrence data"))?;
    let data =
        String::from_utf8(data).map_err(|_| broken("has occurrence data that is not text"))?;
    let data = serde_json::value::RawValue::from_string(data)
        .map_err(|_| broken("has occurrence data that is not JSON"))?;
    let event_type = event_type.ok_or_else(|| broken("has no event type"))?;
    Ok(envelope::webhook_body(
        delivery_id,
        url,
        created,
        event_type,
        &data,
    ))
}

fn delivery_from_row(r: &Row<'_>) -> Result<(i64, Delivery)> {
    let kind: String = r.get(2)?;
    let state: String = r.get(11)?;
    let (delivery_id, url): (String, String) = (r.get(1)?, r.get(7)?);
    let event_type: Option<String> = r.get(6)?;
    let created = r.get(9)?;
    let body = stored_body(
        r.get(8)?,
        &delivery_id,
        &url,
        created,
        event_type.as_deref(),
        r.get(16)?,
    )?;
    Ok((
        r.get(0)?,
        Delivery {
            delivery_id,
            kind: DeliveryKind::parse(&kind)
                .ok_or_else(|| Error::Storage(format!("unknown delivery kind {kind}")))?,
            org_id: r.get(3)?,
            target_id: r.get(4)?,
            parent_id: r.get(5)?,
            event_type,
            url,
            body,
            created_timestamp: created,
            updated_timestamp: r.get(10)?,
            state: DeliveryState::parse(&state)
                .ok_or_else(|| Error::Storage(format!("unknown delivery state {state}")))?,
            attempts: r.get(12)?,
            max_attempts: r.get(13)?,
            next_attempt_at: r.get(14)?,
            result: r.get(15)?,
        },
    ))
}

/// A [`Filter`] in SQLite's SQL, with its values in order.
fn render(filter: &Filter) -> (String, Vec<SqlValue>) {
    let mut clauses = Vec::with_capacity(filter.parts.len());
    let mut values = Vec::new();
    for part in &filter.parts {
        match part {
            Part::Clause(clause, binds) => {
                clauses.push(clause.clone());
                values.extend(binds.iter().map(|bind| match bind {
                    Bind::Text(text) => SqlValue::Text(text.clone()),
                    Bind::Int(number) => SqlValue::Integer(*number),
                }));
            }
            Part::AnyOf(column, options) => {
                let marks = vec!["?"; options.len()].join(", ");
                clauses.push(format!("{column} IN ({marks})"));
                values.extend(options.iter().cloned().map(SqlValue::Text));
            }
        }
    }
    (clauses.join(" AND "), values)
}

/// Reads the rows of one [`Window`] of `table` under `filter`, as
/// (cursor, item), in the window's order.
fn window_rows<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    filter: &Filter,
    window: &Window,
    from_row: fn(&Row<'_>) -> Result<(i64, T)>,
) -> Result<Vec<(Cursor, T)>> {
    let (mut where_sql, mut values) = render(filter);
    if let Some((op, cursor)) = window.bound {
        where_sql.push_str(&format!(" AND (created_ts, row_id) {op} (?, ?)"));
        values.extend([
            SqlValue::Integer(cursor.created),
            SqlValue::Integer(cursor.row),
        ]);
    }
    values.push(SqlValue::Integer(window.fetch()));
    let order = window.order;
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE {where_sql}
         ORDER BY created_ts {order}, row_id {order} LIMIT ?"
    );

    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(values))?;
    let mut items = Vec::new();
    while let Some(row) = rows.next()? {
        let (row_id, item) = from_row(row)?;
        let created: i64 = row.get("created_ts")?;
        items.push((
            Cursor {
                created,
                row: row_id,
            },
            item,
        ));
    }
    Ok(items)
}

/// One newest-first page of `table`, with the total count of the filter.
fn page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    filter: Filter,
    request: &PageRequest,
    from_row: fn(&Row<'_>) -> Result<(i64, T)>,
) -> Result<Page<T>> {
    let (where_sql, values) = render(&filter);
    let count_sql = format!("SELECT COUNT(*) FROM {table} WHERE {where_sql}");
    let total_count: u64 = conn
        .prepare_cached(&count_sql)?
        .query_row(params_from_iter(values), |r| r.get(0))?;

    let window = Window::of(request);
    let rows = window_rows(conn, table, columns, &filter, &window, from_row)?;
    let (items, before, after) = finish_page(rows, request, &window);
    Ok(Page {
        items,
        before,
        after,
        total_count,
    })
}

fn ask_in(conn: &Connection, request: CallbackRequest) -> Result<CallbackAsked> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM callback_messages
         WHERE org_id = ?1 AND api_key_id = ?2 AND request_id = ?3 AND transaction_id = ?4"
    );
    let existing = conn
        .prepare_cached(&sql)?
        .query_row(
            params![
                request.org_id,
                request.api_key_id,
                request.request_id,
                request.transaction_id
            ],
            |r| Ok(message_from_row(r)),
        )
        .optional()?
        .transpose()?;
    if let Some((_, message)) = existing {
        if message.body != request.body {
            return Err(question_conflict());
        }
        return Ok(CallbackAsked::Message {
            message,
            jobs: Vec::new(),
        });
    }

    let kind = if request.protocol == protocol::WAAS1 {
        if !org_exists(conn, &request.org_id)? {
            return Err(Error::NotFound("organisation"));
        }
        DeliveryKind::Waas1Confirmation
    } else {
        let owner: Option<String> = conn
            .prepare_cached("SELECT org_id FROM api_keys WHERE api_key_id = ?1")?
            .query_row([&request.api_key_id], |r| r.get(0))
            .optional()?;
        if owner.as_deref() != Some(request.org_id.as_str()) {
            return Err(Error::NotFound("API key of this organisation"));
        }
        DeliveryKind::Callback
    };

    // A 2.0 callback goes to the API key's callback endpoints; a 1.0
    // confirmation to the organisation's 1.0 confirmation URL.
    let mut statement = conn.prepare_cached(
        "SELECT callback_endpoint_id, url FROM callback_endpoints
         WHERE org_id = ?1 AND api_key_id = ?2 AND status = ?3 AND protocol = ?4
         ORDER BY row_id",
    )?;
    let endpoints = statement
        .query_map(
            params![
                request.org_id,
                request.api_key_id,
                endpoint_status::ACTIVE,
                request.protocol
            ],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if endpoints.is_empty() {
        return Ok(CallbackAsked::NoEndpoint);
    }

    let message = CallbackMessage {
        message_id: new_id(),
        org_id: request.org_id,
        api_key_id: request.api_key_id,
        request_id: request.request_id,
        transaction_id: request.transaction_id,
        wallet_id: request.wallet_id,
        body: request.body,
        status: message_status::RETRYING.into(),
        protocol: request.protocol.into(),
        result: None,
        created_timestamp: request.now,
        updated_timestamp: request.now,
    };
    conn.prepare_cached(
        "INSERT INTO callback_messages (message_id, org_id, api_key_id, request_id,
             transaction_id, wallet_id, body, status, result, created_ts, updated_ts, protocol)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, ?9, ?10)",
    )?
    .execute(params![
        message.message_id,
        message.org_id,
        message.api_key_id,
        message.request_id,
        message.transaction_id,
        message.wallet_id,
        message.body,
        message.status,
        message.created_timestamp,
        message.protocol
    ])?;

    let (lease_owner, next_attempt_at) = match &request.lease {
        Some((owner, until)) => (Some(owner.as_str()), *until),
        None => (None, request.now),
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (delivery_id, kind, org_id, target_id, parent_id, event_type,
             url, body, created_ts, updated_ts, state, attempts, max_attempts,
             next_attempt_at, lease_owner)
         VALUES (?1, ?11, ?2, ?3, ?4, NULL, ?5, ?6, ?7, ?7, 'pending', 0, ?8, ?9, ?10)",
    )?;
    let mut jobs = Vec::new();
    for (endpoint_id, url) in endpoints {
        let delivery_id = new_id();
        insert.execute(params![
            delivery_id,
            message.org_id,
            endpoint_id,
            message.message_id,
            url,
            message.body,
            request.now,
            request.max_attempts,
            next_attempt_at,
            lease_owner,
            kind.as_str()
        ])?;
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

fn retry_message_in(conn: &Connection, org_id: &str, message_id: &str, now: i64) -> Result<()> {
    let status: Option<String> = conn
        .prepare_cached(
            "SELECT status FROM callback_messages WHERE message_id = ?1 AND org_id = ?2",
        )?
        .query_row([message_id, org_id], |r| r.get(0))
        .optional()?;
    let status = status.ok_or(Error::NotFound("callback message"))?;

    match status.as_str() {
        message_status::FAILED => {
            // One more attempt for every endpoint that has not approved. A
            // delivery cancelled while its attempt was in flight keeps that
            // attempt's lease: the endpoint is not asked a second time at
            // once, and the attempt's answer, when it comes, counts.
            conn.prepare_cached(
                "UPDATE deliveries SET state = 'pending', max_attempts = attempts + 1,
                     next_attempt_at = CASE WHEN lease_owner IS NOT NULL
                         AND next_attempt_at > ?1 THEN next_attempt_at ELSE ?1 END,
                     lease_owner = CASE WHEN next_attempt_at > ?1 THEN lease_owner END,
                     updated_ts = ?1
                 WHERE parent_id = ?2 AND state IN ('failed', 'cancelled')",
            )?
            .execute(params![now, message_id])?;
            conn.prepare_cached(
                "UPDATE callback_messages SET status = 'Retrying', updated_ts = ?1
                 WHERE message_id = ?2 AND status = 'Failed'",
            )?
            .execute(params![now, message_id])?;
            Ok(())
        }
        message_status::RETRYING => {
            let waiting = conn
                .prepare_cached(
                    "UPDATE deliveries SET next_attempt_at = ?1, lease_owner = NULL, updated_ts = ?1
                     WHERE parent_id = ?2 AND state = 'pending'
                       AND (lease_owner IS NULL OR next_attempt_at <= ?1)",
                )?
                .execute(params![now, message_id])?;
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

fn callback_endpoint_from_row(r: &Row<'_>) -> Result<(i64, CallbackEndpoint)> {
    Ok((
        r.get(0)?,
        CallbackEndpoint {
            callback_endpoint_id: r.get(1)?,
            org_id: r.get(2)?,
            api_key_id: r.get(3)?,
            url: r.get(4)?,
            status: r.get(5)?,
            description: r.get(6)?,
            created_timestamp: r.get(7)?,
            updated_timestamp: r.get(8)?,
            protocol: r.get(9)?,
        },
    ))
}

fn load_callback_endpoint(
    conn: &Connection,
    org_id: &str,
    id: &str,
) -> Result<Option<CallbackEndpoint>> {
    let sql = format!(
        "SELECT {CALLBACK_ENDPOINT_COLUMNS} FROM callback_endpoints
         WHERE callback_endpoint_id = ?1 AND org_id = ?2"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id, org_id], |r| Ok(callback_endpoint_from_row(r)))
        .optional()?
        .transpose()?
        .map(|(_, e)| e))
}

const MESSAGE_COLUMNS: &str = "row_id, message_id, org_id, api_key_id, request_id, \
    transaction_id, wallet_id, body, status, result, created_ts, updated_ts, protocol";

fn message_from_row(r: &Row<'_>) -> Result<(i64, CallbackMessage)> {
    Ok((
        r.get(0)?,
        CallbackMessage {
            message_id: r.get(1)?,
            org_id: r.get(2)?,
            api_key_id: r.get(3)?,
            request_id: r.get(4)?,
            transaction_id: r.get(5)?,
            wallet_id: r.get(6)?,
            body: r.get(7)?,
            status: r.get(8)?,
            result: r.get(9)?,
            created_timestamp: r.get(10)?,
            updated_timestamp: r.get(11)?,
            protocol: r.get(12)?,
        },
    ))
}

/// Refuses a URL that the organisation already uses with the other
/// protocol: a URL receives either WaaS 1.0 or WaaS 2.0 traffic, never both.
fn refuse_cross_protocol_url(
    conn: &Connection,
    org_id: &str,
    url: &str,
    wanted: &str,
) -> Result<()> {
    let clash: Option<String> = conn
        .prepare_cached(
            "SELECT protocol FROM endpoints
             WHERE org_id = ?1 AND url = ?2 AND status = ?3 AND protocol <> ?4
             UNION ALL
             SELECT protocol FROM callback_endpoints
             WHERE org_id = ?1 AND url = ?2 AND status = ?3 AND protocol <> ?4
             LIMIT 1",
        )?
        .query_row(params![org_id, url, endpoint_status::ACTIVE, wanted], |r| {
            r.get(0)
        })
        .optional()?;
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

fn insert_callback_endpoint(conn: &Connection, endpoint: &CallbackEndpoint) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO callback_endpoints (callback_endpoint_id, org_id, api_key_id, url,
             status, description, created_ts, updated_ts, protocol)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        endpoint.callback_endpoint_id,
        endpoint.org_id,
        endpoint.api_key_id,
        endpoint.url,
        endpoint.status,
        endpoint.description,
        endpoint.created_timestamp,
        endpoint.updated_timestamp,
        endpoint.protocol
    ])?;
    Ok(())
}

fn load_waas1_urls(conn: &Connection, org_id: &str) -> Result<Waas1Urls> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints
         WHERE org_id = ?1 AND protocol = 'waas1' AND status = ?2"
    );
    let notification = conn
        .prepare_cached(&sql)?
        .query_row([org_id, endpoint_status::ACTIVE], |r| {
            Ok(endpoint_from_row(r))
        })
        .optional()?
        .transpose()?
        .map(|(_, e)| e);

    let sql = format!(
        "SELECT {CALLBACK_ENDPOINT_COLUMNS} FROM callback_endpoints
         WHERE org_id = ?1 AND protocol = 'waas1' AND status = ?2"
    );
    let confirmation = conn
        .prepare_cached(&sql)?
        .query_row([org_id, endpoint_status::ACTIVE], |r| {
            Ok(callback_endpoint_from_row(r))
        })
        .optional()?
        .transpose()?
        .map(|(_, e)| e);
    Ok(Waas1Urls {
        notification,
        confirmation,
    })
}

fn notify_waas1_in(conn: &Connection, n: Waas1Notification) -> Result<Option<Waas1Notified>> {
    if !org_exists(conn, &n.org_id)? {
        return Err(Error::NotFound("organisation"));
    }
    let Some(endpoint) = load_waas1_urls(conn, &n.org_id)?.notification else {
        return Ok(None);
    };

    let occurrence_id = new_id();
    conn.prepare_cached(
        "INSERT INTO occurrences (occurrence_id, org_id, event_type, idempotency_key, created_ts)
         VALUES (?1, ?2, ?3, NULL, ?4)",
    )?
    .execute(params![
        occurrence_id,
        n.org_id,
        WAAS1_NOTIFICATION_TYPE,
        n.now
    ])?;

    let (lease_owner, next_attempt_at) = match &n.lease {
        Some((owner, until)) => (Some(owner.as_str()), *until),
        None => (None, n.now),
    };
    let event_id = new_id();
    conn.prepare_cached(
        "INSERT INTO deliveries (delivery_id, kind, org_id, target_id, parent_id, event_type,
             url, body, created_ts, updated_ts, state, attempts, max_attempts,
             next_attempt_at, lease_owner)
         VALUES (?1, 'waas1_notification', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 'pending', 0, ?9,
             ?10, ?11)",
    )?
    .execute(params![
        event_id,
        n.org_id,
        endpoint.endpoint_id,
        occurrence_id,
        WAAS1_NOTIFICATION_TYPE,
        endpoint.url,
        n.body,
        n.now,
        n.max_attempts,
        next_attempt_at,
        lease_owner
    ])?;

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

/// The `type` WaaS 1.0 transaction notifications are listed under.
pub const WAAS1_NOTIFICATION_TYPE: &str = "waas1.transaction_notification";

/// One newest-first page of `table` matching any of `branches` (which must
/// not overlap), found by cursor alone: each branch reads at most a page
/// and one row more, and the branches are merged.
fn slice<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    branches: Vec<Filter>,
    request: &PageRequest,
    from_row: fn(&Row<'_>) -> Result<(i64, T)>,
) -> Result<Slice<T>> {
    let window = Window::of(request);
    let mut rows = Vec::new();
    for filter in &branches {
        rows.extend(window_rows(
            conn, table, columns, filter, &window, from_row,
        )?);
    }
    merge_branches(&mut rows, &window);
    let (items, before, after) = finish_page(rows, request, &window);
    Ok(Slice {
        items,
        before,
        after,
    })
}

/// Limitation: reads every event of the organisation created since
/// `since`, so it costs in proportion to the last day's traffic.
fn endpoint_stats_in(conn: &Connection, org_id: &str, since: i64) -> Result<Vec<EndpointStats>> {
    let mut statement = conn.prepare_cached(
        "SELECT target_id, state, CASE WHEN attempts > 0 THEN 1 ELSE 0 END AS tried, COUNT(*)
         FROM deliveries
         WHERE org_id = ?1 AND kind IN ('webhook', 'waas1_notification') AND created_ts >= ?2
         GROUP BY target_id, state, tried
         ORDER BY target_id",
    )?;
    let mut rows = statement.query(params![org_id, since])?;
    let mut stats: Vec<EndpointStats> = Vec::new();
    while let Some(row) = rows.next()? {
        let endpoint_id: String = row.get(0)?;
        let state: String = row.get(1)?;
        let tried: i64 = row.get(2)?;
        let count: u64 = row.get(3)?;
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
            Some(DeliveryState::Pending) if tried > 0 => entry.retrying += count,
            Some(DeliveryState::Pending) => entry.queued += count,
            None => {}
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use futures_util::future::try_join_all;

    use super::*;

    /// A store in a scratch directory, with one organisation: (directory,
    /// store, organisation id).
    async fn scratch() -> (PathBuf, SqliteStore, String) {
        let dir = std::env::temp_dir().join(format!("hookgate-sqlite-{}", new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("hookgate.db")).unwrap();
        let org = Org {
            org_id: new_id(),
            name: "o".into(),
            created_timestamp: 1,
        };
        let org_id = store.create_org(org).await.unwrap().org_id;
        (dir, store, org_id)
    }

    async fn endpoint_for(store: &SqliteStore, org_id: &str, event_type: &str) -> String {
        let endpoint = Endpoint {
            endpoint_id: new_id(),
            org_id: org_id.to_owned(),
            url: format!("https://receiver.test/{event_type}"),
            subscribed_events: vec![event_type.to_owned()],
            status: endpoint_status::ACTIVE.into(),
            protocol: protocol::WAAS2.into(),
            description: String::new(),
            created_timestamp: 1,
            updated_timestamp: 1,
        };
        store.create_endpoint(endpoint).await.unwrap().endpoint_id
    }

    /// A publish of empty data, due at `now` and leased to no one.
    fn unleased(org_id: &str, event_type: &str, now: i64) -> PublishRequest {
        PublishRequest {
            org_id: org_id.to_owned(),
            event_type: event_type.into(),
            data: serde_json::Map::new(),
            idempotency_key: None,
            now,
            lease: None,
            max_attempts: 3,
        }
    }

    #[tokio::test]
    async fn a_webhook_body_is_stored_once_and_rebuilt_byte_for_byte() {
        let (dir, store, org_id) = scratch().await;
        for _ in 0..3 {
            endpoint_for(&store, &org_id, "wallets.created").await;
        }
        let data = serde_json::json!({"data_type": "Wallet", "name": "caf\u{e9} \u{2028}", "n": 12345678901234567890u64});
        let published = store
            .publish(PublishRequest {
                org_id: org_id.clone(),
                event_type: "wallets.created".into(),
                data: data.as_object().unwrap().clone(),
                idempotency_key: None,
                now: 1_700_000_000_123,
                lease: Some(("node".into(), 0)),
                max_attempts: 3,
            })
            .await
            .unwrap();
        assert_eq!(published.jobs.len(), 3);

        let stored: i64 = store
            .read(|conn| {
                Ok(conn.query_row("SELECT sum(length(body)) FROM deliveries", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(stored, 0, "copies keep no body of their own");

        // What was sent at once is what the API shows and what a later
        // claim sends again.
        let claim = Claim {
            owner: "other".into(),
            now: 1,
            lease_until: 60_000,
            limit: 10,
            per_target: 10,
            skip_targets: Vec::new(),
        };
        let claimed = store.claim_due(claim).await.unwrap();
        assert_eq!(claimed.len(), 3);
        for job in &published.jobs {
            let shown = store
                .delivery(org_id.clone(), job.delivery_id.clone())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(shown.body, job.body.to_vec());
            let again = claimed.iter().find(|c| c.delivery_id == job.delivery_id);
            assert_eq!(again.unwrap().body, job.body);
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_claim_finds_due_rows_behind_a_saturated_endpoints_backlog() {
        let (dir, store, org_id) = scratch().await;
        let dead = endpoint_for(&store, &org_id, "wallets.created").await;
        let alive = endpoint_for(&store, &org_id, "wallets.updated").await;
        let publish = |event_type, now| unleased(&org_id, event_type, now);
        // More due rows of the dead endpoint than one claim reads, all due
        // before the one of the live endpoint.
        for n in 0..300 {
            store
                .publish(publish("wallets.created", 1_000 + n))
                .await
                .unwrap();
        }
        store
            .publish(publish("wallets.updated", 2_000))
            .await
            .unwrap();

        let claim = Claim {
            owner: "node".into(),
            now: 3_000,
            lease_until: 60_000,
            limit: 10,
            per_target: 10,
            skip_targets: vec![dead],
        };
        let claimed = store.claim_due(claim).await.unwrap();
        let targets: Vec<_> = claimed.iter().map(|job| job.target_id.clone()).collect();
        assert_eq!(targets, vec![alive]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claims_sweep_past_a_backlog_longer_than_their_window() {
        let (dir, store, org_id) = scratch().await;
        let dead = endpoint_for(&store, &org_id, "wallets.created").await;
        let alive = endpoint_for(&store, &org_id, "wallets.updated").await;
        let publish = |event_type, now| unleased(&org_id, event_type, now);
        // A claim of 10 reads windows of 4,096 due rows: 5,000 of the dead
        // endpoint come first.
        let backlog = (0..5_000).map(|n| store.publish(publish("wallets.created", 1_000 + n / 4)));
        try_join_all(backlog).await.unwrap();
        store
            .publish(publish("wallets.updated", 2_500))
            .await
            .unwrap();

        let claim = || Claim {
            owner: "node".into(),
            now: 3_000,
            lease_until: 60_000,
            limit: 10,
            per_target: 10,
            skip_targets: vec![dead.clone()],
        };
        let first = store.claim_due(claim()).await.unwrap();
        assert!(
            first.is_empty(),
            "the first window holds the dead endpoint's rows only"
        );
        let second = store.claim_due(claim()).await.unwrap();
        let targets: Vec<_> = second.iter().map(|job| job.target_id.clone()).collect();
        assert_eq!(targets, vec![alive.clone()]);
        // Past the end, the sweep starts at the head again.
        assert!(store.claim_due(claim()).await.unwrap().is_empty());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_log_starts_again_instead_of_growing() {
        let dir = std::env::temp_dir().join(format!("hookgate-wal-{}", new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hookgate.db");
        let store = SqliteStore::open_restarting_after(&path, 256).unwrap();

        // Commits without pause, each adding a page or so to the log, for
        // long enough that the checkpointer looks at it several times.
        let started = Instant::now();
        let mut logged = 0;
        while started.elapsed() < Duration::from_secs(2) || logged < 8 << 20 {
            let writes = (0..32).map(|_| {
                store.write(|conn| {
                    conn.execute(
                        "INSERT INTO orgs (org_id, name, created_ts) VALUES (?1, ?2, 0)",
                        params![new_id(), "x".repeat(3000)],
                    )?;
                    Ok(())
                })
            });
            try_join_all(writes).await.unwrap();
            logged += 32 * 4096;
        }

        let log = std::fs::metadata(dir.join("hookgate.db-wal"))
            .unwrap()
            .len();
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            log < logged / 2,
            "the log holds {log} bytes after {logged} bytes of pages were written to it"
        );
    }
}
