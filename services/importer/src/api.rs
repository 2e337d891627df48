//! The importer's admin API (admin-api.yaml, the admin API contract outside this repository;
//! README.md, "Importing"; paths tagged `importer`):
//! start a run now, and see where each object's import stands and how the
//! recent runs went.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use fa_amqp::Broker;
use fa_messages::{ImportReason, ImportRequestedV1, TenantId, timestamp::format_utc_millis};
use fa_runtime::admin::{AdminToken, Lang, LocalizedProblem, Problem, TenantPath, Text};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::imports;

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

/// The objects of the tenant's connection; 404 `not_connected` without one.
async fn connected(api: &Api, tenant: &TenantId, lang: Lang) -> Result<Vec<String>, LocalizedProblem> {
    let connection = fa_store::tenant::connection(&api.pool, tenant.as_str())
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "reading the connection", &e))?;
    match connection {
        Some(connection) => Ok(connection.objects),
        None => Err(LocalizedProblem::new(Problem::not_connected(tenant.as_str()), lang)),
    }
}

async fn request_import(State(api): Shared, TenantPath(tenant): TenantPath, lang: Lang) -> Answer {
    connected(&api, &tenant, lang).await?;
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

impl Limit {
    /// How many runs to show: 20 unless asked, at most 100.
    fn runs(&self, lang: Lang) -> Result<i64, LocalizedProblem> {
        match self.limit.as_deref().map(str::parse::<i64>) {
            None => Ok(20),
            Some(Ok(n)) if (1..=100).contains(&n) => Ok(n),
            Some(_) => Err(LocalizedProblem::new(
                Problem::invalid_request(Text::new(
                    "limit must be a whole number from 1 to 100.",
                    "limit には 1〜100 の整数を指定してください。",
                )),
                lang,
            )),
        }
    }
}

async fn show_imports(
    State(api): Shared,
    TenantPath(tenant): TenantPath,
    Query(query): Query<Limit>,
    lang: Lang,
) -> Answer {
    let limit = query.runs(lang)?;
    let objects = connected(&api, &tenant, lang).await?;
    let imports = imports::show(&api.pool, tenant, &objects, limit)
        .await
        .map_err(|e| LocalizedProblem::internal(lang, "reading the tenant's imports", &e))?;
    Ok(Json(imports).into_response())
}
