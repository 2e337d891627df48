//! The importer's admin API (admin-api.yaml, paths tagged `importer`):
//! start a run now, and see where each object's import stands and how the
//! recent runs went.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use fa_amqp::Broker;
use fa_messages::{ImportReason, ImportRequestedV1, TenantId, timestamp::format_utc_millis};
use fa_runtime::admin::{AdminToken, Lang, LocalizedProblem, Problem, Text};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::{schedule, watermark};

/// What the handlers share.
pub struct Api {
    /// The database.
    pub pool: PgPool,
    /// For `import.requested`.
    pub broker: Broker,
}

type Shared = State<Arc<Api>>;
type Answer = Result<Response, LocalizedProblem>;

/// The routes, behind the admin token.
pub fn router(api: Arc<Api>, token: AdminToken) -> Router {
    let routes =
        Router::new().route("/v1/tenants/{tenant_id}/imports", post(request_import).get(show_imports)).with_state(api);
    fa_runtime::admin::protect(routes, token)
}

async fn connected(api: &Api, tenant_id: &str, lang: Lang) -> Result<(TenantId, Vec<String>), LocalizedProblem> {
    let tenant =
        TenantId::new(tenant_id).map_err(|e| LocalizedProblem::new(Problem::invalid_tenant_id(e.reason()), lang))?;
    let connection = fa_store::tenant::connection(&api.pool, tenant.as_str())
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "reading the connection", &e))?;
    match connection {
        Some(connection) => Ok((tenant, connection.objects)),
        None => Err(LocalizedProblem::new(Problem::not_connected(tenant.as_str()), lang)),
    }
}

async fn request_import(State(api): Shared, Path(tenant_id): Path<String>, lang: Lang) -> Answer {
    let (tenant, _) = connected(&api, &tenant_id, lang).await?;
    let requested_at = OffsetDateTime::now_utc();
    let request = ImportRequestedV1 { tenant_id: tenant.clone(), reason: ImportReason::Manual, requested_at };
    api.broker.publish(&request).await.map_err(|e| {
        tracing::error!(tenant_id = %tenant, error = %e, "could not publish import.requested");
        LocalizedProblem::new(
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "broker_unavailable",
                "RabbitMQ unavailable",
                Text::new(
                    "The import could not be requested because RabbitMQ is unavailable; try again in a minute.",
                    "RabbitMQ に接続できないため取り込みを開始できませんでした。1 分ほどしてからもう一度お試しください。",
                ),
            ),
            lang,
        )
    })?;
    tracing::info!(tenant_id = %tenant, "manual import requested");
    Ok((StatusCode::ACCEPTED, Json(json!({ "requested_at": format_utc_millis(requested_at) }))).into_response())
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<String>,
}

async fn show_imports(
    State(api): Shared,
    Path(tenant_id): Path<String>,
    Query(query): Query<Limit>,
    lang: Lang,
) -> Answer {
    let limit: i64 = match query.limit.as_deref() {
        None => 20,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(LocalizedProblem::new(
                    Problem::invalid_request(Text::new(
                        "limit must be a whole number from 1 to 100.",
                        "limit には 1〜100 の整数を指定してください。",
                    )),
                    lang,
                ));
            }
        },
    };
    let (tenant, objects) = connected(&api, &tenant_id, lang).await?;
    let marks = watermark::all(&api.pool, &tenant)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "reading watermarks", &e))?;
    let objects: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mark = marks
                .iter()
                .find(|(o, _)| o == object)
                .map(|(_, w)| json!({ "modified_at": format_utc_millis(w.modified_at), "id": w.id }));
            json!({ "object": object, "watermark": mark })
        })
        .collect();
    let schedule = schedule::show(&api.pool, &tenant)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "reading the schedule", &e))?;
    type RunRow = (String, String, String, OffsetDateTime, Option<OffsetDateTime>, Value, bool, Option<Value>);
    let runs: Vec<RunRow> = sqlx::query_as(
        "SELECT run_id, reason, status, started_at, finished_at, objects, more_pending, error FROM import_runs
         WHERE tenant_id = $1 ORDER BY started_at DESC, run_id DESC LIMIT $2",
    )
    .bind(tenant.as_str())
    .bind(limit)
    .fetch_all(&api.pool)
    .await
    .map_err(|e| LocalizedProblem::internal(lang, "reading runs", &e))?;
    let runs: Vec<Value> = runs
        .into_iter()
        .map(|(run_id, reason, status, started_at, finished_at, objects, more_pending, error)| {
            json!({
                "run_id": run_id, "reason": reason, "status": status,
                "started_at": format_utc_millis(started_at), "finished_at": finished_at.map(format_utc_millis),
                "objects": objects, "more_pending": more_pending, "error": error,
            })
        })
        .collect();
    let now = OffsetDateTime::now_utc();
    let (next_run_at, paused_until, pause_reason) = match schedule {
        Some((next, paused, reason)) => (Some(next), paused.filter(|p| *p > now), reason),
        None => (None, None, None),
    };
    Ok(Json(json!({
        "tenant_id": tenant.as_str(),
        "objects": objects,
        "next_run_at": next_run_at.map(format_utc_millis),
        "paused_until": paused_until.map(format_utc_millis),
        "pause_reason": paused_until.and(pause_reason),
        "runs": runs,
    }))
    .into_response())
}
