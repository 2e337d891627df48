//! Links from Front Agent users to Salesforce users of the tenant's org
//! (docs/behaviour.md §2): the activity-writer makes the linked user the owner of
//! the Tasks of that user's calls (§4).

use fa_messages::{TenantId, timestamp::format_utc_millis};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

/// One link, as the admin API shows it (admin-api.yaml `UserLink`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserLink {
    /// The Front Agent user.
    pub user_id: String,
    /// The Salesforce user (`005…`).
    pub salesforce_user_id: String,
    /// Their name when linked.
    pub salesforce_user_name: String,
    /// When linked.
    pub linked_at: String,
}

type Row = (String, String, String, OffsetDateTime);

fn view((user_id, salesforce_user_id, salesforce_user_name, linked_at): Row) -> UserLink {
    UserLink { user_id, salesforce_user_id, salesforce_user_name, linked_at: format_utc_millis(linked_at) }
}

/// All links of the tenant, by Front Agent user id.
pub async fn list(pool: &PgPool, tenant: &TenantId) -> Result<Vec<UserLink>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT user_id, salesforce_user_id, salesforce_user_name, linked_at FROM user_links
         WHERE tenant_id = $1 ORDER BY user_id",
    )
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(view).collect())
}

/// Links `user_id` to the Salesforce user, replacing an earlier link. None
/// when the tenant's connection vanished meanwhile.
pub async fn put(
    pool: &PgPool,
    tenant: &TenantId,
    user_id: &str,
    salesforce_user_id: &str,
    salesforce_user_name: &str,
) -> Result<Option<UserLink>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "INSERT INTO user_links (tenant_id, user_id, salesforce_user_id, salesforce_user_name, linked_at)
         SELECT $1, $2, $3, $4, now() WHERE EXISTS (SELECT 1 FROM connections WHERE tenant_id = $1)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET
             salesforce_user_id = EXCLUDED.salesforce_user_id,
             salesforce_user_name = EXCLUDED.salesforce_user_name,
             linked_at = EXCLUDED.linked_at
         RETURNING user_id, salesforce_user_id, salesforce_user_name, linked_at",
    )
    .bind(tenant.as_str())
    .bind(user_id)
    .bind(salesforce_user_id)
    .bind(salesforce_user_name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(view))
}

/// Removes the link; false when there was none.
pub async fn delete(pool: &PgPool, tenant: &TenantId, user_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM user_links WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant.as_str())
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
