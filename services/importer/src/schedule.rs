//! When each tenant runs (docs/behaviour.md §3, §5): every `FA_SF_IMPORT_INTERVAL`
//! after its last run, a few minutes after a failed or interrupted one, and
//! when a pause for the API allowance ends. The schedule lives in
//! PostgreSQL and is claimed with `SKIP LOCKED`, so several replicas share it
//! without asking for the same run twice.

use std::time::Duration;

use fa_amqp::Broker;
use fa_messages::{ImportReason, ImportRequestedV1, TenantId};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// A tenant whose run started is looked at again after this long should the
/// process die mid-run (the run itself sets the real next time at its end).
const RUN_LEASE: Duration = Duration::from_secs(10 * 60);

/// After a failed run, the next try.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5 * 60);

/// A newly connected tenant is scheduled this long after the schedule first
/// sees it, in case the broker's `import.requested` never arrived.
const FIRST_RUN_GRACE: Duration = Duration::from_secs(60);

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A run of the tenant started.
pub async fn running(pool: &PgPool, tenant: &TenantId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO import_schedule (tenant_id, next_run_at) VALUES ($1, now() + make_interval(secs => $2))
         ON CONFLICT (tenant_id) DO UPDATE SET next_run_at = EXCLUDED.next_run_at",
    )
    .bind(tenant.as_str())
    .bind(secs(RUN_LEASE))
    .execute(pool)
    .await
    .map(|_| ())
}

/// The run ended well: the next one after the interval, or at once when
/// more is pending and the process stopped before its catch-up.
pub async fn finished(
    pool: &PgPool,
    tenant: &TenantId,
    more_pending: bool,
    interval: Duration,
) -> Result<(), sqlx::Error> {
    let next = if more_pending { RUN_LEASE } else { interval };
    sqlx::query(
        "UPDATE import_schedule SET next_run_at = now() + make_interval(secs => $2), more_pending = $3,
             paused_until = NULL, pause_reason = NULL
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(secs(next))
    .bind(more_pending)
    .execute(pool)
    .await
    .map(|_| ())
}

/// The run failed: try again in a few minutes, from the watermark.
pub async fn failed(pool: &PgPool, tenant: &TenantId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE import_schedule SET next_run_at = now() + make_interval(secs => $2), more_pending = true
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(secs(RETRY_AFTER_FAILURE))
    .execute(pool)
    .await
    .map(|_| ())
}

/// The org's allowance is (nearly) spent: no run before `for_` has passed.
pub async fn pause(pool: &PgPool, tenant: &TenantId, for_: Duration, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE import_schedule SET paused_until = now() + make_interval(secs => $2), pause_reason = $3,
             next_run_at = now() + make_interval(secs => $2), more_pending = true
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(secs(for_))
    .bind(reason)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Whether the tenant is paused now.
pub async fn paused(pool: &PgPool, tenant: &TenantId) -> Result<bool, sqlx::Error> {
    let row: Option<(bool,)> = sqlx::query_as(
        "SELECT paused_until IS NOT NULL AND paused_until > now() FROM import_schedule WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some_and(|(p,)| p))
}

/// A manual request: look again at once.
pub async fn resume(pool: &PgPool, tenant: &TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE import_schedule SET paused_until = NULL, pause_reason = NULL WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .execute(pool)
        .await
        .map(|_| ())
}

/// The tenant's schedule, for the admin API: next run, paused until, why.
pub async fn show(
    pool: &PgPool,
    tenant: &TenantId,
) -> Result<Option<(time::OffsetDateTime, Option<time::OffsetDateTime>, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT next_run_at, paused_until, pause_reason FROM import_schedule WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await
}

/// Claims the tenants due now and asks for their runs; returns how many.
pub async fn tick(pool: &PgPool, broker: &Broker) -> anyhow::Result<usize> {
    sqlx::query(
        "INSERT INTO import_schedule (tenant_id, next_run_at)
         SELECT tenant_id, now() + make_interval(secs => $1) FROM connections
         ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(secs(FIRST_RUN_GRACE))
    .execute(pool)
    .await?;
    let due: Vec<(String, bool)> = sqlx::query_as(
        "WITH due AS (
             SELECT s.tenant_id FROM import_schedule s JOIN connections c USING (tenant_id)
             WHERE s.next_run_at <= now() AND (s.paused_until IS NULL OR s.paused_until <= now())
             ORDER BY s.next_run_at LIMIT 100 FOR UPDATE OF s SKIP LOCKED)
         UPDATE import_schedule s SET next_run_at = now() + make_interval(secs => $1)
         FROM due WHERE s.tenant_id = due.tenant_id
         RETURNING s.tenant_id, s.more_pending",
    )
    .bind(secs(RUN_LEASE))
    .fetch_all(pool)
    .await?;
    for (tenant, more_pending) in &due {
        let Ok(tenant_id) = TenantId::new(tenant.as_str()) else { continue };
        let reason = if *more_pending { ImportReason::CatchUp } else { ImportReason::Scheduled };
        let request = ImportRequestedV1 { tenant_id, reason, requested_at: time::OffsetDateTime::now_utc() };
        broker.publish(&request).await?;
        tracing::info!(tenant_id = %tenant, %reason, "scheduled an import run");
    }
    Ok(due.len())
}

/// The beat of a background loop: the first beat at once, then one every
/// period (a slow round delays the next instead of bunching them), until
/// the process stops.
pub struct Every {
    ticker: tokio::time::Interval,
    stop: CancellationToken,
}

impl Every {
    /// Beats every `period` until `stop`.
    pub fn new(period: Duration, stop: CancellationToken) -> Self {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { ticker, stop }
    }

    /// Waits for the next beat; false once the process stops.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.ticker.tick() => true,
            _ = self.stop.cancelled() => false,
        }
    }
}

/// Runs [`tick`] every `every` until `stop`.
pub async fn run(pool: PgPool, broker: Broker, every: Duration, stop: CancellationToken) {
    let mut beat = Every::new(every, stop);
    while beat.next().await {
        if let Err(e) = tick(&pool, &broker).await {
            tracing::warn!(error = format!("{e:#}"), "the import schedule could not be checked; trying again");
        }
    }
}
