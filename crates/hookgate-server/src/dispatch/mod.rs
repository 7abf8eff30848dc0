//! The dispatcher: takes due deliveries, signs and sends them, and records
//! every attempt.
//!
//! Two roads lead to an attempt. A fresh publish is leased to this node in
//! the same transaction that stores it, and handed over in memory right
//! after the commit ([`Dispatcher::submit`]): no extra query stands between
//! a publish and its first attempt. Everything else (retries, manual
//! retries, deliveries whose node died) is found by the claim loop, which
//! leases due deliveries in batches, wakes when something becomes due, and
//! otherwise polls.
//!
//! With several nodes on one database, each runs its own claim loop; a
//! manual retry made on another node, or a callback answer recorded there,
//! reaches this one through the store's [`Store::changes`].
//!
//! Concurrency is bounded twice: a global number of attempts in flight, and
//! a number per endpoint, so that one slow or dead endpoint cannot occupy
//! every slot while healthy endpoints wait. What waits in memory for an
//! endpoint's slots is bounded too: past as many jobs as the endpoint has
//! slots, fresh ones are handed back to the store (their leases released)
//! and claimed when the endpoint has room again, so that a hung endpoint's
//! backlog stays in the database, not in memory.

pub mod client;
pub mod netpolicy;
pub mod policy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use hookgate_protocol::callback::{judge_reply, Decision, UndecidedReply};
use hookgate_protocol::headers;
use http::{HeaderMap, HeaderName, HeaderValue};
use rand::Rng;
use tokio::sync::{broadcast, Notify, Semaphore};

use crate::keys::Keys;
use crate::metrics::{Metrics, OutcomeLabel};
use crate::now_ms;
use crate::settings::{DeliverySettings, LEASE_MARGIN};
use crate::store::{Attempt, AttemptOutcome, Change, Claim, DeliveryKind, Job, NextStep, Store};
use client::{Reply, SendError, Sender};
use policy::RetryPolicy;

/// Most deliveries leased by one claim.
const CLAIM_BATCH: usize = 256;

/// Longest wait after a claim found nothing it could take.
const IDLE_FLOOR: Duration = Duration::from_millis(10);

/// Handle to the running dispatcher.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    sender: Sender,
    keys: Keys,
    owner: String,
    settings: DeliverySettings,
    webhook_policy: RetryPolicy,
    callback_policy: RetryPolicy,
    waas1_notification_policy: RetryPolicy,
    slots: Arc<Semaphore>,
    endpoints: Mutex<HashMap<String, Arc<Gate>>>,
    wake: Notify,
    metrics: Arc<Metrics>,
    /// Ids of callback messages whose deliveries moved on, for requests
    /// waiting for a decision.
    callback_progress: broadcast::Sender<String>,
}

impl Dispatcher {
    /// Starts the claim loop on the current runtime.
    pub fn start(
        store: Arc<dyn Store>,
        sender: Sender,
        keys: Keys,
        settings: DeliverySettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let policy = |gaps: &[u64], max_attempts| RetryPolicy {
            gaps: gaps.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            max_attempts,
            jitter: settings.jitter,
            retry_after_cap: Duration::from_millis(settings.retry_after_cap_ms),
        };
        let webhook_policy = policy(&settings.webhook_retry_ms, settings.webhook_max_attempts);
        let callback_policy = policy(&settings.callback_retry_ms, settings.callback_max_attempts);
        let waas1_notification_policy = policy(
            &settings.waas1_notification_retry_ms,
            settings.waas1_notification_max_attempts,
        );
        tracing::info!(
            attempts = webhook_policy.max_attempts,
            window_secs = webhook_policy.worst_case_window().as_secs(),
            "webhook retry window: a delivery ends Failed at most this long after its first attempt"
        );
        tracing::info!(
            attempts = callback_policy.max_attempts,
            window_secs = callback_policy.worst_case_window().as_secs(),
            "callback retry window: an unanswered message ends Failed at most this long after its first attempt"
        );

        let owner = format!("node-{}", uuid::Uuid::new_v4());
        let inner = Arc::new(Inner {
            store,
            sender,
            keys,
            owner,
            slots: Arc::new(Semaphore::new(settings.max_in_flight)),
            settings,
            webhook_policy,
            callback_policy,
            waas1_notification_policy,
            endpoints: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            metrics,
            callback_progress: broadcast::channel(1024).0,
        });

        if let Some(changes) = inner.store.changes() {
            tokio::spawn(follow_other_nodes(Arc::downgrade(&inner), changes));
        }
        tokio::spawn(claim_loop(inner.clone()));
        Self { inner }
    }

    /// The lease a publish should take for its copies, so that this node
    /// attempts them at once: `None` when the node is saturated, in which
    /// case the claim loop (of any node) will take them.
    pub fn hot_lease(&self) -> Option<(String, i64)> {
        let open = !self.inner.settings.paused && self.inner.slots.available_permits() > 0;
        open.then(|| {
            (
                self.inner.owner.clone(),
                now_ms() + self.inner.settings.lease_ms as i64,
            )
        })
    }

    /// Attempts deliveries already leased to this node. Those for an
    /// endpoint that already has a full queue waiting for its slots are
    /// handed back to the store instead, due now.
    pub fn submit(&self, jobs: Vec<Job>) {
        let mut overflow = Vec::new();
        for job in jobs {
            let gate = self.inner.gate(&job.target_id);
            if gate.waiting.load(Ordering::Relaxed)
                >= self.inner.settings.max_in_flight_per_endpoint
            {
                gate.backlog_in_store.store(true, Ordering::Relaxed);
                overflow.push(job);
            } else {
                spawn_attempt(self.inner.clone(), gate, job);
            }
        }
        if let Some(first) = overflow.first() {
            let owner = first.lease_owner.clone();
            let ids: Vec<String> = overflow.into_iter().map(|job| job.delivery_id).collect();
            let inner = self.inner.clone();
            tokio::spawn(async move {
                let count = ids.len();
                // No wake: the endpoint has no room for them now; its
                // queue wakes the claim loop when it empties.
                match inner.store.release_leases(owner, ids, now_ms()).await {
                    Ok(()) => {}
                    // Still leased: they fall due when the lease ends.
                    Err(e) => tracing::warn!(
                        error = %e,
                        count,
                        "handing deliveries back to the store failed; they wait for their lease to end"
                    ),
                }
            });
        }
    }

    /// Leased deliveries waiting in memory for a slot of their endpoint.
    pub fn waiting(&self) -> usize {
        let endpoints = self.inner.endpoints.lock().expect("endpoint gates lock");
        endpoints
            .values()
            .map(|gate| gate.waiting.load(Ordering::Relaxed))
            .sum()
    }

    /// Tells the claim loop to look for due deliveries now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Webhook attempts each new event gets.
    pub fn webhook_max_attempts(&self) -> u32 {
        self.inner.webhook_policy.max_attempts
    }

    /// Callback attempts each callback endpoint gets per message.
    pub fn callback_max_attempts(&self) -> u32 {
        self.inner.callback_policy.max_attempts
    }

    /// Pushes each WaaS 1.0 transaction notification gets.
    pub fn waas1_notification_max_attempts(&self) -> u32 {
        self.inner.waas1_notification_policy.max_attempts
    }

    /// Ids of callback messages whose deliveries moved on (on this node or,
    /// with a shared database, on another).
    pub fn callback_progress(&self) -> broadcast::Receiver<String> {
        self.inner.callback_progress.subscribe()
    }

    /// Signs `body` now, as an attempt would: the headers that go with it
    /// (content type, `Biz-Timestamp`, `Biz-Resp-Signature` and, when
    /// enabled, the underscore spellings). Used for copies streamed to
    /// listening command-line clients, which post them on themselves.
    pub fn sign_now(&self, body: &[u8]) -> Vec<(String, String)> {
        let timestamp = now_ms().to_string();
        let signature = self.inner.keys.v2.sign(body, &timestamp);
        let underscore = self.inner.settings.underscore_headers;
        header_pairs(&request_headers(&timestamp, &signature, underscore))
    }
}

/// Longest a leased job may wait for a free slot and still be attempted:
/// the lease must outlast the attempt that follows, or the claim loop could
/// lease the delivery again and attempt it a second time while the first
/// attempt is still running.
fn max_slot_wait(settings: &DeliverySettings) -> Duration {
    let lease = Duration::from_millis(settings.lease_ms);
    let attempt = Duration::from_millis(settings.timeout_ms) + LEASE_MARGIN / 2;
    lease.saturating_sub(attempt)
}

/// An endpoint's share of the dispatcher: its attempt slots, and how many
/// jobs wait for one.
struct Gate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// Deliveries of this endpoint may be due in the store (its queue had
    /// no room for them, or a claim took a full share): whenever a slot
    /// frees with nothing queued, the claim loop should look. Cleared when a
    /// claim that could take them found fewer than a full share.
    backlog_in_store: AtomicBool,
}

/// Counts a job as waiting for its endpoint's slot until dropped.
struct Waiting(Arc<Gate>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

fn spawn_attempt(inner: Arc<Inner>, gate: Arc<Gate>, job: Job) {
    let queued = Instant::now();
    gate.waiting.fetch_add(1, Ordering::Relaxed);
    let waiting = Waiting(gate.clone());
    tokio::spawn(async move {
        // The endpoint's slot first: a job queued behind a slow endpoint must
        // not hold one of the global slots while it waits, or a dead
        // endpoint's backlog would take them all and starve healthy ones.
        let Ok(_endpoint_slot) = waiting.0.slots.clone().acquire_owned().await else {
            return;
        };
        drop(waiting);
        let Ok(_slot) = inner.slots.clone().acquire_owned().await else {
            return;
        };
        // A job that waited too long is dropped, not attempted: its delivery
        // falls due when the lease ends and is claimed afresh. Late, but
        // never two attempts of one delivery at once.
        if queued.elapsed() > max_slot_wait(&inner.settings) {
            tracing::debug!(
                event_id = %job.delivery_id,
                endpoint_id = %job.target_id,
                "the lease ran short while waiting for a slot; leaving it to be claimed again"
            );
            return;
        }
        attempt(&inner, job).await;
        drop((_slot, _endpoint_slot));
        // A slot free, nothing queued, and more may be due in the store.
        if gate.waiting.load(Ordering::Relaxed) == 0
            && gate.backlog_in_store.load(Ordering::Relaxed)
        {
            inner.wake.notify_one();
        }
    });
}

impl Inner {
    fn gate(&self, target_id: &str) -> Arc<Gate> {
        let mut endpoints = self.endpoints.lock().expect("endpoint gates lock");
        endpoints
            .entry(target_id.to_owned())
            .or_insert_with(|| {
                Arc::new(Gate {
                    slots: Arc::new(Semaphore::new(self.settings.max_in_flight_per_endpoint)),
                    waiting: AtomicUsize::new(0),
                    backlog_in_store: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// After a claim that was not cut short by the global limit: endpoints
    /// it could take from but that got less than a full share have nothing
    /// more due in the store.
    fn settle_backlog_flags(&self, skipped: &[String], taken: &HashMap<String, usize>) {
        let share = self.settings.max_in_flight_per_endpoint;
        let endpoints = self.endpoints.lock().expect("endpoint gates lock");
        for (id, gate) in endpoints.iter() {
            let full = taken.get(id).is_some_and(|count| *count >= share);
            if !full && !skipped.contains(id) {
                gate.backlog_in_store.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Endpoints whose slots are all taken: not worth claiming for now.
    fn saturated_endpoints(&self) -> Vec<String> {
        let mut endpoints = self.endpoints.lock().expect("endpoint gates lock");
        let limit = self.settings.max_in_flight_per_endpoint;
        endpoints.retain(|_, gate| {
            Arc::strong_count(gate) > 1 || gate.slots.available_permits() < limit
        });
        endpoints
            .iter()
            .filter(|(_, gate)| gate.slots.available_permits() == 0)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

async fn claim_loop(inner: Arc<Inner>) {
    let poll = Duration::from_millis(inner.settings.poll_interval_ms);
    // How long to wait after a claim found due deliveries but could take
    // none (all of saturated endpoints): doubled each time, up to the poll
    // interval, so that a dead endpoint's due backlog is not scanned a
    // hundred times a second. Wakes (new work, a retry, a queue that
    // emptied) still cut the wait short.
    let mut idle = IDLE_FLOOR;
    if inner.settings.paused {
        tracing::warn!("deliveries are paused (delivery.paused): events are stored, not sent");
        return;
    }
    loop {
        let free = inner.slots.available_permits().min(CLAIM_BATCH);
        let mut claimed = 0;
        if free > 0 {
            let now = now_ms();
            let claim = Claim {
                owner: inner.owner.clone(),
                now,
                lease_until: now + inner.settings.lease_ms as i64,
                limit: free,
                per_target: inner.settings.max_in_flight_per_endpoint,
                skip_targets: inner.saturated_endpoints(),
            };
            let skipped = claim.skip_targets.clone();
            match inner.store.claim_due(claim).await {
                Ok(jobs) => {
                    claimed = jobs.len();
                    let mut per_endpoint: HashMap<String, usize> = HashMap::new();
                    for job in jobs {
                        let gate = inner.gate(&job.target_id);
                        let count = per_endpoint.entry(job.target_id.clone()).or_default();
                        *count += 1;
                        // A full share: more may be due for this endpoint.
                        if *count == inner.settings.max_in_flight_per_endpoint {
                            gate.backlog_in_store.store(true, Ordering::Relaxed);
                        }
                        spawn_attempt(inner.clone(), gate, job);
                    }
                    if claimed < free {
                        inner.settle_backlog_flags(&skipped, &per_endpoint);
                    }
                }
                Err(e) => tracing::error!(error = %e, "claiming due deliveries failed"),
            }
        }
        if free > 0 && claimed == free {
            continue;
        }

        let (wait, due_now) = match inner.store.next_due().await {
            Ok(Some(at)) => {
                let ahead = at - now_ms();
                (
                    Duration::from_millis(ahead.max(0) as u64).min(poll),
                    ahead <= 0,
                )
            }
            Ok(None) => (poll, false),
            Err(e) => {
                tracing::error!(error = %e, "reading the next due time failed");
                (poll, false)
            }
        };
        let wait = match (claimed, due_now) {
            (0, true) if free > 0 => {
                let wait = idle;
                idle = (idle * 2).min(poll.max(IDLE_FLOOR));
                wait
            }
            (0, _) => {
                idle = IDLE_FLOOR;
                wait.max(IDLE_FLOOR)
            }
            _ => {
                idle = IDLE_FLOOR;
                wait
            }
        };
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Acts on what other nodes sharing the database committed: a delivery due
/// now wakes the claim loop, and progress of a callback message wakes the
/// producers waiting here for its decision. Notices lost on the way cost
/// latency only: the claim loop polls, and waiting producers re-read.
async fn follow_other_nodes(inner: Weak<Inner>, mut changes: broadcast::Receiver<Change>) {
    loop {
        let change = match changes.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else { return };
        match change {
            Some(Change::CallbackProgress { message_id }) => {
                let _ = inner.callback_progress.send(message_id);
            }
            Some(Change::Due) | None => inner.wake.notify_one(),
            Some(Change::Occurrence { .. }) => {}
        }
    }
}

/// One attempt: sign, send, judge, record.
async fn attempt(inner: &Inner, job: Job) {
    let attempt_no = job.attempts + 1;
    let started = now_ms();
    let timestamp = started.to_string();
    let signature = if job.kind.is_waas1() {
        inner.keys.v1.sign(&job.body, &timestamp)
    } else {
        inner.keys.v2.sign(&job.body, &timestamp)
    };
    let headers = request_headers(&timestamp, &signature, inner.settings.underscore_headers);
    let logged_headers = header_pairs(&headers);

    let clock = Instant::now();
    let result = inner.sender.post(&job.url, headers, job.body.clone()).await;
    let elapsed = clock.elapsed();

    let verdict = judge(job.kind, &result);
    let policy = match job.kind {
        DeliveryKind::Webhook => &inner.webhook_policy,
        DeliveryKind::Callback | DeliveryKind::Waas1Confirmation => &inner.callback_policy,
        DeliveryKind::Waas1Notification => &inner.waas1_notification_policy,
    };
    let next = if verdict.success {
        NextStep::Succeeded
    } else if policy.exhausted(attempt_no, job.max_attempts) {
        NextStep::Failed
    } else {
        let gap = policy.gap_after(
            attempt_no,
            verdict.retry_after,
            rand::thread_rng().gen::<f64>(),
        );
        NextStep::RetryAt(now_ms() + gap.as_millis() as i64)
    };

    let (status, body, truncated) = match result {
        Ok(reply) => (Some(reply.status), reply.body, reply.truncated),
        Err(_) => (None, Vec::new(), false),
    };
    tracing::info!(
        event_id = %job.delivery_id,
        endpoint_id = %job.target_id,
        attempt = attempt_no,
        status = status.unwrap_or(0),
        ms = elapsed.as_millis() as u64,
        outcome = if verdict.success { "success" } else { "failure" },
        reason = verdict.failure_reason.as_deref().unwrap_or(""),
        decision = verdict.decision.map(Decision::reply_body).unwrap_or(""),
        next = ?next,
        "attempt"
    );

    record_metrics(inner, verdict.success, next, elapsed);
    let record = AttemptOutcome {
        delivery_id: job.delivery_id.clone(),
        lease_owner: job.lease_owner,
        attempt: Attempt {
            attempt_no,
            created_timestamp: started,
            request_headers: logged_headers,
            response_status_code: status,
            response_body: body,
            response_truncated: truncated,
            response_time: elapsed.as_millis() as u64,
            success: verdict.success,
            failure_reason: verdict.failure_reason,
        },
        next,
        decision: verdict.decision,
        now: now_ms(),
    };
    match inner.store.record_attempt(record).await {
        Ok(true) => {
            // Wakes a producer waiting for a decision (2.0 or 1.0 alike).
            if job.kind.asks_for_decision() {
                let _ = inner.callback_progress.send(job.parent_id.clone());
            }
        }
        Ok(false) => tracing::warn!(
            event_id = %job.delivery_id,
            "lease lost before the outcome was recorded; another node owns this delivery now"
        ),
        Err(e) => tracing::error!(
            event_id = %job.delivery_id,
            error = %e,
            "recording the attempt failed; the delivery will be attempted again when its lease ends"
        ),
    }
    // A retry due before the claim loop's next poll: it should not wait
    // for it. (Later ones are found by the poll; waking for each of a dead
    // endpoint's failures would only scan its backlog again and again.)
    let poll = Duration::from_millis(inner.settings.poll_interval_ms) + IDLE_FLOOR;
    if matches!(next, NextStep::RetryAt(at) if at - now_ms() < poll.as_millis() as i64) {
        inner.wake.notify_one();
    }
}

fn record_metrics(inner: &Inner, success: bool, next: NextStep, elapsed: Duration) {
    let metrics = &inner.metrics;
    let outcome = if success { "success" } else { "failure" };
    metrics
        .attempts
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
    metrics.attempt_latency.observe(elapsed.as_secs_f64());
    match next {
        NextStep::Succeeded => {
            metrics.delivered.inc();
        }
        NextStep::Failed => {
            metrics.failed.inc();
        }
        NextStep::RetryAt(_) => {}
    }
}

/// How an attempt went.
struct Verdict {
    success: bool,
    decision: Option<Decision>,
    failure_reason: Option<String>,
    retry_after: Option<Duration>,
}

fn judge(kind: DeliveryKind, result: &Result<Reply, SendError>) -> Verdict {
    let reply = match result {
        Ok(reply) => reply,
        Err(e) => {
            return Verdict {
                success: false,
                decision: None,
                failure_reason: Some(e.to_string()),
                retry_after: None,
            }
        }
    };

    // A reply cut at the read limit was never read whole: whatever its first
    // bytes say, it cannot be an answer of exactly `ok` or `deny`.
    let answer = |reply: &Reply| {
        if reply.truncated {
            Err(UndecidedReply::Body)
        } else {
            judge_reply(reply.status, &reply.body)
        }
    };
    let (success, decision, body_problem) = match kind {
        DeliveryKind::Webhook => (policy::webhook_delivered(reply.status), None, false),
        DeliveryKind::Waas1Notification => {
            let acknowledged = answer(reply) == Ok(Decision::Approve);
            (
                acknowledged,
                None,
                policy::webhook_delivered(reply.status) && !acknowledged,
            )
        }
        DeliveryKind::Callback | DeliveryKind::Waas1Confirmation => match answer(reply) {
            Ok(decision) => (true, Some(decision), false),
            Err(UndecidedReply::Body) => (false, None, true),
            Err(UndecidedReply::Status(_)) => (false, None, false),
        },
    };
    let failure_reason = (!success).then(|| match (&reply.location, reply.status) {
        (Some(location), 300..=399) => format!("redirect to {location} (not followed)"),
        (None, 300..=399) => "redirect (not followed)".to_owned(),
        (_, status) if body_problem => {
            let shown: String = String::from_utf8_lossy(&reply.body)
                .chars()
                .take(40)
                .collect();
            let wanted = if kind.asks_for_decision() {
                "ok or deny"
            } else {
                "ok"
            };
            format!("status {status} but the reply is not exactly {wanted}: {shown:?}")
        }
        (_, status) => format!("status {status}"),
    });
    let retry_after = reply
        .retry_after
        .as_deref()
        .filter(|_| policy::honours_retry_after(reply.status))
        .and_then(|value| policy::parse_retry_after(value, SystemTime::now()));
    Verdict {
        success,
        decision,
        failure_reason,
        retry_after,
    }
}

fn request_headers(timestamp: &str, signature: &str, underscore: bool) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(5);
    let value = |text: &str| HeaderValue::from_str(text).expect("digits and hex are valid");
    map.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    map.insert(HeaderName::from_static("biz-timestamp"), value(timestamp));
    map.insert(
        HeaderName::from_static("biz-resp-signature"),
        value(signature),
    );
    if underscore {
        map.insert(HeaderName::from_static("biz_timestamp"), value(timestamp));
        map.insert(
            HeaderName::from_static("biz_resp_signature"),
            value(signature),
        );
    }
    map
}

fn header_pairs(map: &HeaderMap) -> Vec<(String, String)> {
    let display = |name: &HeaderName| match name.as_str() {
        "biz-timestamp" => headers::BIZ_TIMESTAMP.to_owned(),
        "biz-resp-signature" => headers::BIZ_RESP_SIGNATURE.to_owned(),
        "biz_timestamp" => headers::BIZ_TIMESTAMP_UNDERSCORE.to_owned(),
        "biz_resp_signature" => headers::BIZ_RESP_SIGNATURE_UNDERSCORE.to_owned(),
        other => other.to_owned(),
    };
    map.iter()
        .map(|(name, value)| (display(name), value.to_str().unwrap_or_default().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, location: Option<&str>, retry_after: Option<&str>) -> Reply {
        Reply {
            status,
            body: Vec::new(),
            truncated: false,
            location: location.map(str::to_owned),
            retry_after: retry_after.map(str::to_owned),
        }
    }

    #[test]
    fn redirect_is_a_failure_naming_the_location() {
        let verdict = judge(
            DeliveryKind::Webhook,
            &Ok(reply(302, Some("https://elsewhere/"), None)),
        );
        assert!(!verdict.success);
        assert_eq!(
            verdict.failure_reason.as_deref(),
            Some("redirect to https://elsewhere/ (not followed)")
        );
    }

    #[test]
    fn no_content_is_a_failure() {
        let verdict = judge(DeliveryKind::Webhook, &Ok(reply(204, None, None)));
        assert_eq!(verdict.failure_reason.as_deref(), Some("status 204"));
    }

    #[test]
    fn retry_after_counts_only_on_429_and_503() {
        let slow = judge(DeliveryKind::Webhook, &Ok(reply(429, None, Some("120"))));
        assert_eq!(slow.retry_after, Some(Duration::from_secs(120)));
        let broken = judge(DeliveryKind::Webhook, &Ok(reply(500, None, Some("120"))));
        assert_eq!(broken.retry_after, None);
    }

    #[test]
    fn a_cut_reply_never_decides() {
        let mut long = reply(200, None, None);
        long.body = b"ok".to_vec();
        long.truncated = true;
        let verdict = judge(DeliveryKind::Callback, &Ok(long));
        assert!(!verdict.success && verdict.decision.is_none());
    }

    #[test]
    fn callback_decides_only_on_exact_answers() {
        let mut ok = reply(200, None, None);
        ok.body = b"ok\n".to_vec();
        assert_eq!(
            judge(DeliveryKind::Callback, &Ok(ok)).decision,
            Some(Decision::Approve)
        );

        let mut loud = reply(200, None, None);
        loud.body = b"OK".to_vec();
        let verdict = judge(DeliveryKind::Callback, &Ok(loud));
        assert!(!verdict.success && verdict.decision.is_none());
        assert!(verdict
            .failure_reason
            .unwrap()
            .contains("not exactly ok or deny"));

        let mut no_content = reply(204, None, None);
        no_content.body = b"ok".to_vec();
        assert_eq!(
            judge(DeliveryKind::Callback, &Ok(no_content))
                .failure_reason
                .as_deref(),
            Some("status 204")
        );
    }

    #[test]
    fn a_job_waits_for_a_slot_only_while_its_lease_outlasts_the_attempt() {
        let mut settings = DeliverySettings {
            timeout_ms: 2_000,
            lease_ms: 30_000,
            ..DeliverySettings::default()
        };
        assert_eq!(max_slot_wait(&settings), Duration::from_millis(25_500));
        settings.lease_ms = settings.timeout_ms + LEASE_MARGIN.as_millis() as u64;
        assert_eq!(max_slot_wait(&settings), LEASE_MARGIN / 2);
    }

    #[test]
    fn both_header_spellings_are_sent_unless_turned_off() {
        let both = header_pairs(&request_headers("1", "ab", true));
        let names: Vec<_> = both.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"Biz-Timestamp") && names.contains(&"BIZ_RESP_SIGNATURE"));
        let dashed = request_headers("1", "ab", false);
        assert!(dashed.get("biz_timestamp").is_none());
    }
}
