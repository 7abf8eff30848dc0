//! A deduplication store in memory: for one process, tests and examples.
//!
//! Limitation: it forgets everything on restart and grows without bound;
//! use the SQLite store (feature `sqlite`) for anything long-running.

use std::collections::HashSet;
use std::sync::Mutex;

use super::{DedupKey, DedupStore, Mark};
use crate::error::Result;

/// Seen keys in a set behind a mutex.
#[derive(Debug, Default)]
pub struct MemoryDedupStore {
    seen: Mutex<HashSet<String>>,
}

impl MemoryDedupStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys are marked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is marked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic elsewhere cannot leave the set half-updated: keep going.
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl DedupStore for MemoryDedupStore {
    fn mark(&self, key: &DedupKey) -> Result<Mark> {
        let inserted = self.lock().insert(key.storage_key());
        Ok(if inserted { Mark::New } else { Mark::Duplicate })
    }

    fn forget(&self, key: &DedupKey) -> Result<()> {
        self.lock().remove(&key.storage_key());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_mark_is_new_then_duplicate_until_forgotten() {
        let store = MemoryDedupStore::new();
        let key = DedupKey::Event("e1".into());
        assert_eq!(store.mark(&key).unwrap(), Mark::New);
        assert_eq!(store.mark(&key).unwrap(), Mark::Duplicate);
        store.forget(&key).unwrap();
        assert_eq!(store.mark(&key).unwrap(), Mark::New);
        assert_eq!(store.len(), 1);
    }
}
