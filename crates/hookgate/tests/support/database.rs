//! Which database the in-process test servers keep their data in.
//!
//! `HOOKGATE_TEST_BACKEND` chooses, for every test that starts its server
//! through [`super::server::base_settings`]:
//!
//! - unset or `sqlite` (the default): the embedded SQLite database in the
//!   server's data directory;
//! - `postgres`: a fresh PostgreSQL database per data directory, named
//!   `hookgate_t_<random>`, created on the server that
//!   `HOOKGATE_TEST_DATABASE_URL` points at and dropped with the directory.
//!
//! `scripts/test` runs the whole suite on SQLite and, when
//! `HOOKGATE_TEST_DATABASE_URL` is set (as on CI), runs the integration
//! tests of this crate a second time with `HOOKGATE_TEST_BACKEND=postgres`,
//! so that both backends pass the same tests. Tests written for PostgreSQL
//! alone (`tests/cluster.rs`) use [`fresh_database`] and skip when the
//! variable is unset.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sqlx::Connection;

/// The PostgreSQL server the tests may create databases on.
pub fn test_database_url() -> Option<String> {
    std::env::var("HOOKGATE_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// Whether in-process test servers run on PostgreSQL.
pub fn postgres_backend() -> bool {
    match std::env::var("HOOKGATE_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("HOOKGATE_TEST_BACKEND={other}: use sqlite or postgres"),
    }
}

/// Databases created for data directories, to drop with them.
static CREATED: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

/// The database URL a test server with this data directory uses: `None`
/// for SQLite. The same directory always gets the same database, so that a
/// restarted server finds its data.
pub fn database_url_for(data_dir: &Path) -> Option<String> {
    if !postgres_backend() {
        return None;
    }
    let admin = test_database_url()
        .expect("HOOKGATE_TEST_BACKEND=postgres needs HOOKGATE_TEST_DATABASE_URL");
    let mut created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    let known = created
        .iter()
        .find(|(dir, _)| dir == data_dir)
        .map(|(_, name)| name.clone());
    let name = match known {
        Some(name) => name,
        None => {
            let name = new_database(&admin);
            created.push((data_dir.to_owned(), name.clone()));
            name
        }
    };
    Some(url_of(&admin, &name))
}

/// Drops the databases made for directories at or under `dir`.
pub fn drop_databases_under(dir: &Path) {
    let mut created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    let (gone, kept): (Vec<_>, Vec<_>) = created.drain(..).partition(|(d, _)| d.starts_with(dir));
    *created = kept;
    drop(created);
    if let Some(admin) = test_database_url() {
        for (_, name) in gone {
            drop_database(&admin, &name);
        }
    }
}

/// A new empty database on the test server; its URL and name.
pub fn fresh_database(admin: &str) -> (String, String) {
    let name = new_database(admin);
    (url_of(admin, &name), name)
}

/// Creates `hookgate_t_<random>` and gives its name.
fn new_database(admin: &str) -> String {
    let name = format!("hookgate_t_{}", uuid::Uuid::new_v4().simple());
    run_admin_sql(admin, format!("CREATE DATABASE {name}"));
    name
}

/// Drops a database made by [`fresh_database`], closing whatever is still
/// connected to it.
pub fn drop_database(admin: &str, name: &str) {
    assert!(
        name.starts_with("hookgate_"),
        "only test databases are dropped"
    );
    run_admin_sql(
        admin,
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

fn url_of(admin: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin).expect("HOOKGATE_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Runs one statement on the test server, from a thread of its own so that
/// it works inside and outside a runtime, and in `Drop`.
fn run_admin_sql(admin: &str, sql: String) {
    let admin = admin.to_owned();
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime builds");
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::raw_sql(&sql).execute(&mut conn).await?;
            conn.close().await
        })
    })
    .join()
    .expect("the database thread does not panic");
    outcome.expect("the test PostgreSQL server accepts the statement");
}
