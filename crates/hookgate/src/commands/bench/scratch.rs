//! A scratch PostgreSQL database for one benchmark run, so that what other
//! runs left behind neither slows this one nor unbalances its ledger.

use anyhow::Context;
use sqlx::{Connection, PgConnection};

/// `hookgate_bench_<random>` on the server the user named.
pub struct Database {
    /// Where the nodes connect.
    pub url: String,
    admin: String,
    name: String,
}

impl Database {
    /// Creates the database on the server of `admin` (any database URL of
    /// a role that may create databases).
    pub async fn create(admin: &str) -> anyhow::Result<Self> {
        let name = format!("hookgate_bench_{}", uuid::Uuid::new_v4().simple());
        let mut url = url::Url::parse(admin).context("--database-url is not a URL")?;
        run(admin, &format!("CREATE DATABASE {name}")).await?;
        url.set_path(&format!("/{name}"));
        eprintln!("scratch database {name} created");
        Ok(Self {
            url: url.to_string(),
            admin: admin.to_owned(),
            name,
        })
    }

    /// Drops it, closing what is still connected.
    pub async fn drop_now(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = run(&self.admin, &sql).await {
            eprintln!(
                "could not drop the scratch database {}: {error:#}",
                self.name
            );
        }
    }
}

async fn run(admin: &str, sql: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin)
        .await
        .context("connecting to --database-url")?;
    sqlx::raw_sql(sql).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}
