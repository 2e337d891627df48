//! One run at a time per tenant, across every importer replica: a
//! PostgreSQL session advisory lock, held on a connection of its own for
//! the length of the run. A crashed process's connection closes and the
//! lock goes with it; nothing in memory decides.

use fa_messages::TenantId;
use sqlx::{Connection as _, PgConnection, PgPool};

/// The tenant's run lock, while held.
pub struct TenantLock {
    connection: PgConnection,
    tenant: String,
}

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtext('fa-importer'), hashtext($1))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtext('fa-importer'), hashtext($1))";

/// Takes the tenant's lock, or `None` when a run of the tenant holds it.
pub async fn try_lock(pool: &PgPool, tenant: &TenantId) -> Result<Option<TenantLock>, sqlx::Error> {
    // Detached from the pool: a lock must never go back to the pool with
    // its connection, and dropping the connection releases it.
    let mut connection = pool.acquire().await?.detach();
    let (taken,): (bool,) = sqlx::query_as(TRY_LOCK).bind(tenant.as_str()).fetch_one(&mut connection).await?;
    if taken {
        Ok(Some(TenantLock { connection, tenant: tenant.as_str().to_owned() }))
    } else {
        let _ = connection.close().await;
        Ok(None)
    }
}

/// How long the check of a held lock may take before it counts as lost.
const CHECK_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

impl TenantLock {
    /// Whether the lock is still held: its connection answers (if the
    /// connection died, say in a database failover, the lock went with it
    /// and another replica may take the tenant).
    pub async fn held(&mut self) -> bool {
        let ping = sqlx::query("SELECT 1").execute(&mut self.connection);
        matches!(tokio::time::timeout(CHECK_WITHIN, ping).await, Ok(Ok(_)))
    }

    /// Releases the lock.
    pub async fn release(mut self) {
        let _ = sqlx::query(UNLOCK).bind(&self.tenant).execute(&mut self.connection).await;
        let _ = self.connection.close().await;
    }
}
