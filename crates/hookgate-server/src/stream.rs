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
//!
//! With several nodes on one database, a listener is connected to one node
//! and publishes land on any: the hub also follows the store's
//! [`Store::changes`], reads each occurrence another node stored for an
//! organisation that has listeners here, and sends it into the same channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::store::{Change, Cursor, Occurrence, Store};

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

type Channels = Mutex<HashMap<String, broadcast::Sender<Arc<LiveOccurrence>>>>;

/// Per-organisation channels of live occurrences.
pub struct Hub {
    store: Arc<dyn Store>,
    orgs: Arc<Channels>,
}

impl Hub {
    /// An empty hub that looks cursors up in `store` and, when the store is
    /// shared with other nodes, relays their occurrences (this needs a
    /// Tokio runtime).
    pub fn new(store: Arc<dyn Store>) -> Self {
        let orgs = Arc::new(Mutex::new(HashMap::new()));
        if let Some(changes) = store.changes() {
            tokio::spawn(relay_other_nodes(
                store.clone(),
                Arc::downgrade(&orgs),
                changes,
            ));
        }
        Self { store, orgs }
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
        listened(&self.orgs, org_id)
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

fn listened(orgs: &Channels, org_id: &str) -> Option<broadcast::Sender<Arc<LiveOccurrence>>> {
    let orgs = orgs.lock().unwrap_or_else(|e| e.into_inner());
    orgs.get(org_id)
        .filter(|sender| sender.receiver_count() > 0)
        .cloned()
}

/// Sends occurrences that other nodes stored to this node's listeners, until
/// the hub is dropped. An occurrence whose notice was lost reaches a
/// listener when it next resumes from the store.
async fn relay_other_nodes(
    store: Arc<dyn Store>,
    orgs: Weak<Channels>,
    mut changes: broadcast::Receiver<Change>,
) {
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "listeners not told of occurrences from other nodes");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Change::Occurrence { org_id, cursor } = change else {
            continue;
        };
        let Some(orgs) = orgs.upgrade() else { return };
        let Some(sender) = listened(&orgs, &org_id) else {
            continue;
        };

        // Cursors are whole numbers: the first occurrence after the one just
        // before this cursor is the occurrence itself.
        let just_before = Cursor {
            created: cursor.created,
            row: cursor.row - 1,
        };
        match store.occurrences_after(org_id, Some(just_before), 1).await {
            Ok(found) => {
                let live = found
                    .into_iter()
                    .filter(|o| o.cursor == cursor)
                    .find_map(LiveOccurrence::from_stored);
                if let Some(live) = live {
                    let _ = sender.send(Arc::new(live));
                }
            }
            Err(error) => tracing::warn!(%error, "listeners not told of an occurrence"),
        }
    }
}
