//! Links from Front Agent users to Salesforce users of the tenant's org
//! (docs/behaviour.md §2): the activity-writer makes the linked user the owner of
//! the Tasks of that user's calls (§4).

use fa_messages::{SalesforceId, TenantId, timestamp::format_utc_millis};
use fa_salesforce::users::User;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;

/// Why a link was not made or removed. Its words for the admin are
/// [`crate::hints::link_hint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The path's Front Agent user id is not 1 to 128 characters without
    /// control characters.
    UserId,
    /// The body is not `{"salesforce_user_id": "005…"}` (serde's words).
    Body(String),
    /// `salesforce_user_id`, as sent, is not the id of a Salesforce user.
    NotAUserId(String),
    /// The org has no such user.
    Unknown(SalesforceId),
    /// The user is inactive.
    Inactive {
        /// Their id.
        id: String,
        /// Their name.
        name: String,
    },
    /// The Front Agent user has no link to remove.
    NotLinked(String),
}

/// The key prefix of Salesforce's User ids.
const USER_PREFIX: &str = "005";

/// The Front Agent user id of a path.
pub fn user_id(text: &str) -> Result<&str, Refusal> {
    let length = text.chars().count();
    if (1..=128).contains(&length) && !text.chars().any(char::is_control) { Ok(text) } else { Err(Refusal::UserId) }
}

#[derive(Deserialize)]
struct LinkRequest {
    salesforce_user_id: String,
}

/// The Salesforce user a link request's body names (15 or 18 characters,
/// starting with `005`), in its 18-character form.
pub fn requested(body: &[u8]) -> Result<SalesforceId, Refusal> {
    let request: LinkRequest = serde_json::from_slice(body).map_err(|e| Refusal::Body(e.to_string()))?;
    let wanted = request.salesforce_user_id.trim();
    SalesforceId::new(wanted)
        .ok()
        .filter(|id| id.key_prefix() == USER_PREFIX)
        .ok_or_else(|| Refusal::NotAUserId(wanted.to_owned()))
}

/// The user the org has for `wanted`, when a link may name them: one that
/// exists and is active.
pub fn linkable(found: Option<User>, wanted: &SalesforceId) -> Result<User, Refusal> {
    match found {
        None => Err(Refusal::Unknown(wanted.clone())),
        Some(user) if !user.active => Err(Refusal::Inactive { id: user.id, name: user.name }),
        Some(user) => Ok(user),
    }
}

/// One link, as the admin API shows it (admin-api.yaml `UserLink`, outside this repository).
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
