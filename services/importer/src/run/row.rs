//! A run's record: its row in `import_runs` (written when it starts, its
//! counts after each batch, its end) and the `import.completed` that
//! reports it; how a run ended decides its status and error.

use std::time::Instant;

use fa_messages::{ErrorDetail, ImportCompletedV1, ImportReason, ImportStatus, TenantId};
use sqlx::PgPool;
use time::OffsetDateTime;

use super::{Importer, RunState};
use crate::{org::Failure, run_error::RunErrorCode, schedule};

/// How one run ended.
pub(super) enum End {
    CaughtUp,
    MorePending,
    Paused(String),
    Failed(Failure),
    PublishFailed(String),
}

impl End {
    /// The run's status, whether more is pending, and its error.
    fn outcome(&self) -> (ImportStatus, bool, Option<ErrorDetail>) {
        match self {
            End::CaughtUp => (ImportStatus::Succeeded, false, None),
            End::MorePending | End::Paused(_) => (ImportStatus::Succeeded, true, None),
            End::Failed(failure) => (ImportStatus::Failed, true, Some(failure_detail(failure))),
            End::PublishFailed(message) => {
                (ImportStatus::Failed, true, Some(RunErrorCode::BrokerUnavailable.detail(message.clone())))
            }
        }
    }
}

const INTERRUPTED_MESSAGE: &str =
    "the run was interrupted (the importer stopped or crashed); the next run resumed after the last confirmed record";

fn failure_detail(failure: &Failure) -> ErrorDetail {
    match failure {
        Failure::Permanent { code, message, salesforce_error_code } => ErrorDetail {
            code: code.as_str().to_owned(),
            message: message.clone(),
            salesforce_error_code: salesforce_error_code.clone(),
        },
        Failure::Exhausted { message } => RunErrorCode::SalesforceUnavailable
            .detail(format!("Salesforce kept failing: {message}; the next run tries again")),
        Failure::Stopped => RunErrorCode::Interrupted.detail(
            "the importer was stopped (SIGTERM) at a page boundary; the next run resumes after the last confirmed record"
                .to_owned(),
        ),
        Failure::LockLost => RunErrorCode::Interrupted.detail(
            "the run lost its lock (its database connection closed) and stopped, so that two runs of the tenant never \
             overlap; the next run resumes after the last confirmed record"
                .to_owned(),
        ),
        Failure::Pause { reason } => RunErrorCode::Paused.detail(reason.clone()),
    }
}

/// The run's row, `running`, as it starts.
pub(super) async fn start(
    pool: &PgPool,
    run_id: &str,
    tenant: &TenantId,
    reason: ImportReason,
    started_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO import_runs (run_id, tenant_id, reason, status, started_at) VALUES ($1, $2, $3, 'running', $4)",
    )
    .bind(run_id)
    .bind(tenant.as_str())
    .bind(reason.as_str())
    .bind(started_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The run's counts so far, after a batch is written.
pub(super) async fn save_counts(pool: &PgPool, run_id: &str, counts: &serde_json::Value) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE import_runs SET objects = $2 WHERE run_id = $1")
        .bind(run_id)
        .bind(counts)
        .execute(pool)
        .await?;
    Ok(())
}

impl Importer {
    /// Runs left `running` by a process that died are marked failed
    /// (`interrupted`); the watermark already says where to resume.
    pub(super) async fn close_interrupted(&self, tenant: &TenantId) -> anyhow::Result<()> {
        let rows: Vec<(String, OffsetDateTime, serde_json::Value)> = sqlx::query_as(
            "UPDATE import_runs SET status = 'failed', finished_at = now(), error = $2
             WHERE tenant_id = $1 AND status = 'running' RETURNING run_id, started_at, objects",
        )
        .bind(tenant.as_str())
        .bind(serde_json::to_value(RunErrorCode::Interrupted.detail(INTERRUPTED_MESSAGE.to_owned()))?)
        .fetch_all(&self.pool)
        .await?;
        for (run_id, started_at, objects) in rows {
            tracing::warn!(tenant_id = %tenant, run_id, "a run was interrupted (the process stopped); resuming from the last confirmed record");
            let message = ImportCompletedV1 {
                tenant_id: tenant.clone(),
                run_id,
                status: ImportStatus::Failed,
                started_at,
                finished_at: OffsetDateTime::now_utc(),
                objects: serde_json::from_value(objects).unwrap_or_default(),
                more_pending: true,
                error: Some(RunErrorCode::Interrupted.detail(INTERRUPTED_MESSAGE.to_owned())),
            };
            self.broker.publish(&message).await?;
            metrics::counter!("fa_import_runs_total", "outcome" => ImportStatus::Failed.as_str()).increment(1);
        }
        Ok(())
    }

    /// Ends a run once its batches are written: its row, its
    /// `import.completed`, the tenant's schedule.
    pub(super) async fn finish(
        self,
        tenant: TenantId,
        run: RunState,
        end: End,
        started: Instant,
        (started_at, finished_at): (OffsetDateTime, OffsetDateTime),
    ) -> anyhow::Result<()> {
        let (status, more_pending, error) = end.outcome();
        sqlx::query(
            "UPDATE import_runs SET status = $2, finished_at = $3, objects = $4, more_pending = $5, error = $6
             WHERE run_id = $1",
        )
        .bind(&run.run_id)
        .bind(status.as_str())
        .bind(finished_at)
        .bind(serde_json::to_value(&run.counts)?)
        .bind(more_pending)
        .bind(error.as_ref().map(serde_json::to_value).transpose()?)
        .execute(&self.pool)
        .await?;
        let published: u64 = run.counts.iter().map(|c| c.published).sum();
        let completed = ImportCompletedV1 {
            tenant_id: tenant.clone(),
            run_id: run.run_id,
            status,
            started_at,
            finished_at,
            objects: run.counts,
            more_pending,
            error,
        };
        let sent = self.broker.publish(&completed).await;
        metrics::counter!("fa_import_runs_total", "outcome" => status.as_str()).increment(1);
        metrics::histogram!("fa_import_run_duration_seconds").record(started.elapsed().as_secs_f64());
        self.reschedule(&completed, &end, published, started).await?;
        sent?;
        Ok(())
    }

    /// The tenant's next run after `completed`: paused for its allowance,
    /// retried after a failure, or at its interval (or at once, when more
    /// is pending).
    async fn reschedule(
        &self,
        completed: &ImportCompletedV1,
        end: &End,
        published: u64,
        started: Instant,
    ) -> anyhow::Result<()> {
        let (tenant, run_id) = (&completed.tenant_id, &completed.run_id);
        let paused = |on: bool| {
            metrics::gauge!("fa_tenant_paused", "service" => crate::SERVICE, "tenant" => tenant.to_string())
                .set(if on { 1.0 } else { 0.0 });
        };
        match (end, &completed.error) {
            (End::Paused(why), _) => {
                schedule::pause(&self.pool, tenant, self.settings.pause_for, why).await?;
                paused(true);
                tracing::warn!(tenant_id = %tenant, run_id, reason = %why, published, "paused for the org's API allowance; resuming later");
            }
            (_, Some(error)) => {
                let detail = format!("{}: {}", error.code, error.message);
                tracing::error!(tenant_id = %tenant, run_id, published, error = %detail, "import run failed; the next run resumes after the last confirmed record");
                schedule::failed(&self.pool, tenant).await?;
            }
            (_, None) => {
                paused(false);
                let more_pending = completed.more_pending;
                tracing::info!(tenant_id = %tenant, run_id, published, more_pending, took_ms = started.elapsed().as_millis() as u64, "import run succeeded");
                schedule::finished(&self.pool, tenant, more_pending, self.settings.interval).await?;
            }
        }
        Ok(())
    }
}
