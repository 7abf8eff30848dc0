//! Concurrent deliveries of one key: exactly one caller is told `New`, for
//! every store, whether the callers are threads or async tasks.

use std::sync::{Arc, Barrier};

use hookgate_receiver::{DedupKey, DedupStore, Mark, MemoryDedupStore, TransactionState};

const CALLERS: usize = 16;

fn race(store: Arc<dyn DedupStore>, key: DedupKey) -> usize {
    let barrier = Arc::new(Barrier::new(CALLERS));
    let handles: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (store, key, barrier) = (store.clone(), key.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store.mark(&key).unwrap()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|m| *m == Mark::New)
        .count()
}

fn keys() -> Vec<DedupKey> {
    (0..20)
        .flat_map(|i| {
            [
                DedupKey::Event(format!("event-{i}")),
                DedupKey::TransactionState {
                    cobo_id: format!("2025031110051200027725000037{i:04}"),
                    state: TransactionState::Succeeded,
                },
            ]
        })
        .collect()
}

#[test]
fn memory_store_admits_exactly_one_thread_per_key() {
    let store: Arc<dyn DedupStore> = Arc::new(MemoryDedupStore::new());
    for key in keys() {
        assert_eq!(race(store.clone(), key), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_admits_exactly_one_task_per_key() {
    let store = Arc::new(MemoryDedupStore::new());
    let key = DedupKey::Event("shared".into());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.mark(&key).unwrap() })
        })
        .collect();
    let mut new = 0;
    for task in tasks {
        new += usize::from(task.await.unwrap() == Mark::New);
    }
    assert_eq!(new, 1);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use hookgate_receiver::dedup::SqliteDedupStore;

    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        std::env::temp_dir().join(format!("hookgate-{name}-{}-{nanos}.db", std::process::id()))
    }

    #[test]
    fn one_connection_admits_exactly_one_thread_per_key() {
        let store: Arc<dyn DedupStore> = Arc::new(SqliteDedupStore::open_in_memory().unwrap());
        for key in keys() {
            assert_eq!(race(store.clone(), key), 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn separate_connections_to_one_file_admit_exactly_one_task() {
        let path = temp_db("dedup-race");
        let stores: Vec<Arc<SqliteDedupStore>> = (0..4)
            .map(|_| Arc::new(SqliteDedupStore::open(&path).unwrap()))
            .collect();

        for key in keys() {
            let tasks: Vec<_> = (0..CALLERS)
                .map(|i| {
                    let (store, key) = (stores[i % stores.len()].clone(), key.clone());
                    tokio::task::spawn_blocking(move || store.mark(&key).unwrap())
                })
                .collect();
            let mut new = 0;
            for task in tasks {
                new += usize::from(task.await.unwrap() == Mark::New);
            }
            assert_eq!(new, 1, "{key}");
        }

        drop(stores);
        let _ = std::fs::remove_file(&path);
    }
}
