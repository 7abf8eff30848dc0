//! The PostgreSQL store under concurrency: claimers on several nodes never
//! share a delivery, nodes starting together migrate once, and a schema
//! newer than the build is refused.
//!
//! Each test makes its own database `hookgate_t_<random>` on the server of
//! `HOOKGATE_TEST_DATABASE_URL` and drops it; without the variable each
//! says it is skipped and passes.

use std::collections::HashSet;
use std::sync::Arc;

use hookgate_server::store::{
    endpoint_status, protocol, Claim, Endpoint, Org, PostgresStore, PublishRequest, Store,
};
use sqlx::{Connection, PgConnection};

/// A database made for one test, dropped (with whatever is connected to
/// it) when the test ends.
struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> Option<Self> {
        let Some(admin) = std::env::var("HOOKGATE_TEST_DATABASE_URL").ok() else {
            println!("skipped: HOOKGATE_TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!("hookgate_t_{}", uuid::Uuid::new_v4().simple());
        run(&admin, &format!("CREATE DATABASE {name}")).await;
        let mut url = url::Url::parse(&admin).expect("a database URL");
        url.set_path(&format!("/{name}"));
        Some(Self {
            admin,
            name,
            url: url.to_string(),
        })
    }

    async fn drop(self) {
        run(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

async fn run(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url)
        .await
        .expect("PostgreSQL answers");
    sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
    conn.close().await.expect("closes");
}

/// An organisation with one endpoint and `events` publishes due now.
async fn backlog(store: &PostgresStore, events: usize) {
    let org_id = uuid::Uuid::new_v4().to_string();
    store
        .create_org(Org {
            org_id: org_id.clone(),
            name: "claims".into(),
            created_timestamp: 1,
        })
        .await
        .unwrap();
    for n in 0..4 {
        store
            .create_endpoint(Endpoint {
                endpoint_id: uuid::Uuid::new_v4().to_string(),
                org_id: org_id.clone(),
                url: format!("http://127.0.0.1:9/{n}"),
                subscribed_events: vec!["wallets.created".into()],
                status: endpoint_status::ACTIVE.into(),
                protocol: protocol::WAAS2.into(),
                description: String::new(),
                created_timestamp: 1,
                updated_timestamp: 1,
            })
            .await
            .unwrap();
    }
    for _ in 0..events / 4 {
        store
            .publish(PublishRequest {
                org_id: org_id.clone(),
                event_type: "wallets.created".into(),
                data: serde_json::Map::new(),
                idempotency_key: None,
                now: 1,
                lease: None,
                max_attempts: 3,
            })
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_take_the_same_delivery() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    // Two nodes, each with several claimers at once.
    let nodes = [
        Arc::new(PostgresStore::connect(&db.url, 8).await.unwrap()),
        Arc::new(PostgresStore::connect(&db.url, 8).await.unwrap()),
    ];
    backlog(&nodes[0], 400).await;

    let mut claimers = Vec::new();
    for n in 0..8 {
        let store = nodes[n % 2].clone();
        claimers.push(tokio::spawn(async move {
            let mut taken = Vec::new();
            for _ in 0..200 {
                let now = hookgate_server::now_ms();
                let claim = Claim {
                    owner: format!("claimer-{n}"),
                    now,
                    lease_until: now + 60_000,
                    limit: 7,
                    per_target: 100,
                    skip_targets: Vec::new(),
                };
                let jobs = store.claim_due(claim).await.unwrap();
                if jobs.is_empty() {
                    break;
                }
                taken.extend(jobs.into_iter().map(|j| j.delivery_id));
            }
            taken
        }));
    }

    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a delivery was claimed twice");
    assert_eq!(all.len(), 400, "every due delivery was claimed once");
    drop(nodes);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let starts = (0..4).map(|_| PostgresStore::connect(&db.url, 2));
    let stores: Vec<PostgresStore> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .map(|started| started.expect("every node starts"))
        .collect();
    for store in &stores {
        store.ready().await.expect("the schema is current");
    }

    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let (rows, newest): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), MAX(version) FROM schema_migrations")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows, newest, "each migration is recorded once");
    conn.close().await.unwrap();
    drop(stores);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_build_is_refused() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let running = PostgresStore::connect(&db.url, 2).await.unwrap();
    run(
        &db.url,
        "INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)",
    )
    .await;

    let reason = running.ready().await.expect_err("not ready");
    assert!(reason.contains("9999"), "{reason}");
    let refused = PostgresStore::connect(&db.url, 2)
        .await
        .err()
        .expect("a new node refuses to start");
    assert!(refused.to_string().contains("newer"), "{refused}");
    drop(running);
    db.drop().await;
}
