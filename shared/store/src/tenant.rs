//! A tenant's connection and user links, as the services that use them read
//! them (docs/behaviour.md §1, §2).
//!
//! The token-broker writes these rows (`connections`, `user_links`); the
//! importer and the activity-writer read them here, in one place, so a
//! change of the tables is a change of this module.

use std::collections::HashMap;

use sqlx::PgPool;

/// What a tenant's connection tells the other services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantConnection {
    /// The objects the admin chose to import (`Lead`, `Contact`, `Account`),
    /// in the order chosen.
    pub objects: Vec<String>,
    /// The org (`00D…`), as the broker's token exchange reported it.
    pub organization_id: Option<String>,
    /// The connection's own Salesforce user (`005…`): the owner of Tasks
    /// whose Front Agent user has no link.
    pub salesforce_user_id: Option<String>,
}

/// The tenant's connection; `None` when the tenant is not connected.
pub async fn connection(pool: &PgPool, tenant: &str) -> sqlx::Result<Option<TenantConnection>> {
    let row: Option<(Vec<String>, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT objects, organization_id, salesforce_user_id FROM connections WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(objects, organization_id, salesforce_user_id)| TenantConnection {
        objects,
        organization_id,
        salesforce_user_id,
    }))
}

/// Salesforce user id per Front Agent user id, for those of `user_ids` that
/// are linked.
pub async fn user_links(pool: &PgPool, tenant: &str, user_ids: &[String]) -> sqlx::Result<HashMap<String, String>> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT user_id, salesforce_user_id FROM user_links WHERE tenant_id = $1 AND user_id = ANY($2)")
            .bind(tenant)
            .bind(user_ids)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}
