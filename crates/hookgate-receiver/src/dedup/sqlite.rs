//! A deduplication store in a SQLite file, shared by every process that
//! opens the same file.
//!
//! Marking is one `INSERT OR IGNORE` on a primary key: SQLite serialises
//! writers, so exactly one caller per key inserts the row and is told
//! [`Mark::New`], within one process or across several.
//!
//! Limitation: rows are never removed; call [`SqliteDedupStore::prune`]
//! now and then to drop keys older than any retry can be.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection};

use super::{DedupKey, DedupStore, Mark};
use crate::error::{ReceiverError, Result};
use crate::freshness::unix_ms;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS hookgate_dedup (
    key TEXT PRIMARY KEY NOT NULL,
    first_seen_ms INTEGER NOT NULL
)";

/// Seen keys in the table `hookgate_dedup` of a SQLite database.
#[derive(Debug)]
pub struct SqliteDedupStore {
    connection: Mutex<Connection>,
}

impl SqliteDedupStore {
    /// Opens (and creates if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::with_connection(Connection::open(path).map_err(store_error)?)
    }

    /// A private database in memory, for tests.
    pub fn open_in_memory() -> Result<Self> {
        Self::with_connection(Connection::open_in_memory().map_err(store_error)?)
    }

    fn with_connection(connection: Connection) -> Result<Self> {
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(store_error)?;
        connection.execute_batch(SCHEMA).map_err(store_error)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    /// Removes keys first seen more than `age` ago; returns how many.
    pub fn prune(&self, age: Duration) -> Result<usize> {
        let cutoff = unix_ms(SystemTime::now() - age);
        self.lock()
            .execute(
                "DELETE FROM hookgate_dedup WHERE first_seen_ms < ?1",
                params![cutoff],
            )
            .map_err(store_error)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl DedupStore for SqliteDedupStore {
    fn mark(&self, key: &DedupKey) -> Result<Mark> {
        let inserted = self
            .lock()
            .execute(
                "INSERT OR IGNORE INTO hookgate_dedup (key, first_seen_ms) VALUES (?1, ?2)",
                params![key.storage_key(), unix_ms(SystemTime::now())],
            )
            .map_err(store_error)?;
        Ok(if inserted == 1 {
            Mark::New
        } else {
            Mark::Duplicate
        })
    }

    fn forget(&self, key: &DedupKey) -> Result<()> {
        self.lock()
            .execute(
                "DELETE FROM hookgate_dedup WHERE key = ?1",
                params![key.storage_key()],
            )
            .map_err(store_error)?;
        Ok(())
    }
}

fn store_error(error: rusqlite::Error) -> ReceiverError {
    ReceiverError::DedupStore {
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_reopening_the_file() {
        let path = std::env::temp_dir().join(format!("hookgate-dedup-{}.db", std::process::id()));
        let key = DedupKey::Event("e1".into());
        {
            let store = SqliteDedupStore::open(&path).unwrap();
            assert_eq!(store.mark(&key).unwrap(), Mark::New);
        }
        let store = SqliteDedupStore::open(&path).unwrap();
        assert_eq!(store.mark(&key).unwrap(), Mark::Duplicate);
        store.forget(&key).unwrap();
        assert_eq!(store.mark(&key).unwrap(), Mark::New);
        assert_eq!(store.prune(Duration::from_secs(3600)).unwrap(), 0);
        drop(store);
        std::fs::remove_file(&path).unwrap();
    }
}
