//! The listener hub: occurrences pushed live to command-line clients that
//! listen on the event stream (the WebSocket of `api/stream.rs`).
//!
//! The hub keeps one broadcast channel per organisation that has at least
//! one listener; an organisation nobody listens to costs nothing. Once a
//! publish is committed, [`Hub::publish`] sends the occurrence (with its
//! cursor in [`Store::occurrences_after`] order) into that channel, and each
//! listener reads it at its own pace and signs its own copy.
//!
//! A channel holds the last [`LISTENER_BUFFER`] occurrences. A listener that
//! falls further behind loses its place in the channel, is told how many it
//! missed, and catches up from the store starting after the last cursor it
//! was sent. Whatever a listener does, the server keeps at most
//! [`LISTENER_BUFFER`] occurrences per organisation in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::store::{Cursor, Occurrence, Store};

/// Occurrences a listener may fall behind before it is sent to the store.
pub const LISTENER_BUFFER: usize = 1_000;

/// What every listener's copy of one occurrence shares.
#[derive(Clone, Debug)]
pub struct LiveOccurrence {
    /// Where it stands, to resume after it.
    pub cursor: Cursor,
    /// Identifier; also the `event_id` of every listener's copy.
    pub occurrence_id: String,
    /// Event type.
    pub event_type: String,
    /// The `data` object, exactly as serialised into endpoint copies.
    pub data: Arc<RawValue>,
    /// Trigger time, Unix ms.
    pub created_timestamp: i64,
}

impl LiveOccurrence {
    /// The same occurrence read back from the store (for a replay); `None`
    /// when its stored data is not JSON, which the store never writes.
    pub fn from_stored(occurrence: Occurrence) -> Option<Self> {
        let text = String::from_utf8(occurrence.data).ok()?;
        let data: Box<RawValue> = RawValue::from_string(text).ok()?;
        Some(Self {
            cursor: occurrence.cursor,
            occurrence_id: occurrence.occurrence_id,
            event_type: occurrence.event_type,
            data: Arc::from(data),
            created_timestamp: occurrence.created_timestamp,
        })
    }
}

/// Per-organisation channels of live occurrences.
pub struct Hub {
    store: Arc<dyn Store>,
    orgs: Mutex<HashMap<String, broadcast::Sender<Arc<LiveOccurrence>>>>,
}

impl Hub {
    /// An empty hub that looks cursors up in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            orgs: Mutex::new(HashMap::new()),
        }
    }

    /// Starts receiving the organisation's occurrences published from now.
    pub fn subscribe(&self, org_id: &str) -> broadcast::Receiver<Arc<LiveOccurrence>> {
        let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        orgs.retain(|_, sender| sender.receiver_count() > 0);
        orgs.entry(org_id.to_owned())
            .or_insert_with(|| broadcast::channel(LISTENER_BUFFER).0)
            .subscribe()
    }

    /// Listeners connected now, over all organisations.
    pub fn listeners(&self) -> usize {
        let orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        orgs.values().map(|sender| sender.receiver_count()).sum()
    }

    fn sender(&self, org_id: &str) -> Option<broadcast::Sender<Arc<LiveOccurrence>>> {
        let orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        orgs.get(org_id)
            .filter(|sender| sender.receiver_count() > 0)
            .cloned()
    }

    /// Hands a committed occurrence to the organisation's listeners, if it
    /// has any. Never fails the publish: a listener that misses it here
    /// finds it in the store when it resumes.
    pub async fn publish(
        &self,
        org_id: &str,
        occurrence_id: &str,
        event_type: &str,
        data: &RawValue,
        created_timestamp: i64,
    ) {
        let Some(sender) = self.sender(org_id) else {
            return;
        };
        let cursor = match self
            .store
            .occurrence_cursor(org_id.to_owned(), occurrence_id.to_owned())
            .await
        {
            Ok(Some(cursor)) => cursor,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%occurrence_id, %error, "listeners not told of an occurrence");
                return;
            }
        };
        let occurrence = LiveOccurrence {
            cursor,
            occurrence_id: occurrence_id.to_owned(),
            event_type: event_type.to_owned(),
            data: Arc::from(data.to_owned()),
            created_timestamp,
        };
        let _ = sender.send(Arc::new(occurrence));
    }
}
