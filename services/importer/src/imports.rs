//! A tenant's imports as the admin API shows them (admin-api.yaml, the admin API contract
//! outside this repository,
//! `GET /v1/tenants/{tenant_id}/imports`): where each object's watermark
//! stands, when the next run is, and the recent runs, newest first. Only
//! read here: [`run`](mod@crate::run) writes the runs' rows, [`crate::schedule`] and
//! [`crate::watermark`] theirs.

use fa_messages::{TenantId, timestamp};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::{schedule, watermark};

/// The answer, field for field.
#[derive(Debug, Serialize)]
pub struct Imports {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The connection's objects, in its order.
    pub objects: Vec<ObjectImport>,
    /// When the next run is due.
    #[serde(with = "timestamp::option")]
    pub next_run_at: Option<OffsetDateTime>,
    /// While the tenant is paused: until when.
    #[serde(with = "timestamp::option")]
    pub paused_until: Option<OffsetDateTime>,
    /// While the tenant is paused: why.
    pub pause_reason: Option<String>,
    /// The newest runs first.
    pub runs: Vec<Run>,
}

/// Where one object's import stands.
#[derive(Debug, Serialize)]
pub struct ObjectImport {
    /// `Lead`, `Contact` or `Account`.
    pub object: String,
    /// The last confirmed record; `None` before the first.
    pub watermark: Option<Mark>,
}

/// A watermark as shown.
#[derive(Debug, Serialize)]
pub struct Mark {
    /// Its `SystemModstamp`.
    #[serde(with = "timestamp")]
    pub modified_at: OffsetDateTime,
    /// Its record id.
    pub id: String,
}

/// One run, as its row in `import_runs` holds it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Run {
    /// The run.
    pub run_id: String,
    /// Why it ran.
    pub reason: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// When it started.
    #[serde(with = "timestamp")]
    pub started_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "timestamp::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Its counts per object.
    pub objects: Value,
    /// It stopped at the per-run cap.
    pub more_pending: bool,
    /// Why it failed.
    pub error: Option<Value>,
}

/// The imports of `tenant`, whose connection imports `objects`: the
/// `limit` newest runs, and a pause only while it lasts.
pub async fn show(pool: &PgPool, tenant: TenantId, objects: &[String], limit: i64) -> Result<Imports, sqlx::Error> {
    let marks = watermark::all(pool, &tenant).await?;
    let objects = objects
        .iter()
        .map(|object| ObjectImport {
            object: object.clone(),
            watermark: marks
                .iter()
                .find(|(o, _)| o == object)
                .map(|(_, w)| Mark { modified_at: w.modified_at, id: w.id.clone() }),
        })
        .collect();
    let schedule = schedule::show(pool, &tenant).await?;
    let runs = recent_runs(pool, &tenant, limit).await?;
    let now = OffsetDateTime::now_utc();
    let (next_run_at, paused_until, pause_reason) = match schedule {
        Some((next, paused, reason)) => (Some(next), paused.filter(|p| *p > now), reason),
        None => (None, None, None),
    };
    let pause_reason = paused_until.and(pause_reason);
    Ok(Imports { tenant_id: tenant, objects, next_run_at, paused_until, pause_reason, runs })
}

/// The tenant's `limit` newest runs.
pub async fn recent_runs(pool: &PgPool, tenant: &TenantId, limit: i64) -> Result<Vec<Run>, sqlx::Error> {
    sqlx::query_as(
        "SELECT run_id, reason, status, started_at, finished_at, objects, more_pending, error FROM import_runs
         WHERE tenant_id = $1 ORDER BY started_at DESC, run_id DESC LIMIT $2",
    )
    .bind(tenant.as_str())
    .bind(limit)
    .fetch_all(pool)
    .await
}
