//! The connector's PostgreSQL store: the pool and the schema migrations of
//! every service.
//!
//! All services share one database and one migration history, embedded in
//! the binaries and applied at start. sqlx takes a PostgreSQL advisory lock
//! around the whole run, so replicas that start together apply each
//! migration exactly once and the others wait, then find nothing to do.
//!
//! Rows that several services read have their queries here, one module per
//! noun: [`tenant`] (a tenant's connection and user links, written by the
//! token-broker) and [`customer_index`] (the records the importer
//! published, matched by the activity-writer).

pub mod customer_index;
pub mod tenant;

use std::time::Duration;

use anyhow::Context as _;
use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The embedded migrations.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How the pool is sized; replicas × services × `max_connections` must stay
/// below the server's own limit.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Connections this process opens at most.
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: Duration::from_secs(5) }
    }
}

/// Connects to `url` and applies the migrations.
///
/// The error names `FA_SF_DATABASE_URL` and the reason, never the URL
/// itself (it may carry a password).
pub async fn connect(url: &str, options: PoolOptions) -> anyhow::Result<PgPool> {
    let connect: PgConnectOptions = url.parse().context("FA_SF_DATABASE_URL is not a valid PostgreSQL URL")?;
    let database = connect.get_database().unwrap_or("postgres").to_owned();
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .with_context(|| format!("the database {database:?} at FA_SF_DATABASE_URL cannot be reached"))?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies the migrations not yet applied; safe to run from several
/// processes at once.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("the database schema migrations failed")?;
    Ok(())
}

/// The readiness check of a service's database: one round trip.
pub async fn ping(pool: &PgPool) -> Result<(), String> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ()).map_err(|e| format!("database unreachable: {e}"))
}
