//! A tenant's Salesforce connection (docs/behaviour.md §1): what is stored, what
//! the admin API shows of it (never a secret), and the rows behind it.

use fa_messages::{SObject, TenantId, timestamp::format_utc_millis};
use serde::Serialize;
use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;

use crate::sealed::Sealed;

/// A stored connection, with the sealed private key.
#[derive(Debug, Clone)]
pub struct StoredConnection {
    /// The tenant.
    pub tenant_id: String,
    /// The Connected App's consumer key (not a secret, but shown elided).
    pub consumer_key: String,
    /// The Salesforce username the app is pre-authorised for.
    pub username: String,
    /// Where the token exchange goes.
    pub login_url: String,
    /// Where API calls go, from the last exchange.
    pub instance_url: String,
    /// The org (`00D…`), from the exchange's `id`.
    pub organization_id: Option<String>,
    /// The connection's own user (`005…`): the Task owner fallback.
    pub salesforce_user_id: Option<String>,
    /// What the importer imports.
    pub objects: Vec<SObject>,
    /// The private key, AES-256-GCM under the key named in it.
    pub sealed_key: Sealed,
    /// `connected` or `failing`.
    pub status: String,
    /// The last exchange failure while `failing`.
    pub last_error: Option<serde_json::Value>,
    /// When the connection was registered.
    pub connected_at: OffsetDateTime,
    /// When a token was last obtained.
    pub last_token_at: Option<OffsetDateTime>,
    /// Taken from one sequence each time the row is saved: tokens are minted
    /// for a generation, and retired with it.
    pub generation: i64,
}

/// What a successful registration stores.
#[derive(Debug)]
pub struct NewConnection<'a> {
    /// The Connected App's consumer key.
    pub consumer_key: &'a str,
    /// The Salesforce username.
    pub username: &'a str,
    /// The checked login URL.
    pub login_url: &'a str,
    /// From the exchange.
    pub instance_url: &'a str,
    /// From the exchange.
    pub organization_id: Option<&'a str>,
    /// From the exchange.
    pub salesforce_user_id: Option<&'a str>,
    /// What to import.
    pub objects: &'a [SObject],
    /// The sealed private key.
    pub sealed_key: &'a Sealed,
}

/// The connection as the admin API shows it (admin-api.yaml `Connection`, outside this repository).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectionView {
    tenant_id: String,
    status: String,
    username: String,
    consumer_key_hint: String,
    login_url: String,
    instance_url: String,
    organization_id: Option<String>,
    salesforce_user_id: Option<String>,
    objects: Vec<SObject>,
    connected_at: String,
    last_token_at: Option<String>,
    last_error: Option<serde_json::Value>,
}

impl From<&StoredConnection> for ConnectionView {
    fn from(c: &StoredConnection) -> Self {
        Self {
            tenant_id: c.tenant_id.clone(),
            status: c.status.clone(),
            username: c.username.clone(),
            consumer_key_hint: consumer_key_hint(&c.consumer_key),
            login_url: c.login_url.clone(),
            instance_url: c.instance_url.clone(),
            organization_id: c.organization_id.clone(),
            salesforce_user_id: c.salesforce_user_id.clone(),
            objects: c.objects.clone(),
            connected_at: format_utc_millis(c.connected_at),
            last_token_at: c.last_token_at.map(format_utc_millis),
            last_error: c.last_error.clone(),
        }
    }
}

/// The first 6 and last 4 characters of a consumer key, the rest elided; a
/// key too short to elide shows its first 2 characters only.
pub fn consumer_key_hint(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() > 12 {
        let head: String = chars[..6].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    } else {
        let head: String = chars.iter().take(2).collect();
        format!("{head}…")
    }
}

const COLUMNS: &str = "tenant_id, consumer_key, username, login_url, instance_url, organization_id, \
    salesforce_user_id, objects, key_id, private_key_ciphertext, status, last_error, connected_at, last_token_at, \
    generation";

fn from_row(row: &sqlx::postgres::PgRow) -> Result<StoredConnection, sqlx::Error> {
    let objects: Vec<String> = row.try_get("objects")?;
    let objects = objects
        .iter()
        .map(|o| o.parse::<SObject>().map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect::<Result<_, _>>()?;
    Ok(StoredConnection {
        tenant_id: row.try_get("tenant_id")?,
        consumer_key: row.try_get("consumer_key")?,
        username: row.try_get("username")?,
        login_url: row.try_get("login_url")?,
        instance_url: row.try_get("instance_url")?,
        organization_id: row.try_get("organization_id")?,
        salesforce_user_id: row.try_get("salesforce_user_id")?,
        objects,
        sealed_key: Sealed { key_id: row.try_get("key_id")?, blob: row.try_get("private_key_ciphertext")? },
        status: row.try_get("status")?,
        last_error: row.try_get("last_error")?,
        connected_at: row.try_get("connected_at")?,
        last_token_at: row.try_get("last_token_at")?,
        generation: row.try_get("generation")?,
    })
}

/// The tenant's connection, if any.
pub async fn load(pool: &PgPool, tenant: &TenantId) -> Result<Option<StoredConnection>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM connections WHERE tenant_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str()).fetch_optional(pool).await?;
    row.as_ref().map(from_row).transpose()
}

/// What [`save`] did.
#[derive(Debug)]
pub struct Saved {
    /// The connection as stored now, with its new generation.
    pub stored: StoredConnection,
    /// User links dropped because the org changed.
    pub links_dropped: u64,
    /// The generation of the connection it replaced, if any.
    pub replaced: Option<i64>,
}

/// Stores a registration, replacing an earlier one, under a new generation.
/// User links stay when the org is the same and are dropped when it changed
/// (docs/behaviour.md §1).
pub async fn save(pool: &PgPool, tenant: &TenantId, new: &NewConnection<'_>) -> Result<Saved, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let previous: Option<(Option<String>, i64)> =
        sqlx::query_as("SELECT organization_id, generation FROM connections WHERE tenant_id = $1 FOR UPDATE")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let mut dropped = 0;
    if let Some((previous_org, _)) = &previous {
        let same_org = previous_org.is_some() && previous_org.as_deref() == new.organization_id;
        if !same_org {
            dropped = sqlx::query("DELETE FROM user_links WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
    }
    let objects: Vec<&str> = new.objects.iter().map(|o| o.as_str()).collect();
    let sql = format!(
        "INSERT INTO connections (tenant_id, consumer_key, username, login_url, instance_url, organization_id,
             salesforce_user_id, objects, key_id, private_key_ciphertext, status, last_error, connected_at, last_token_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'connected', NULL, now(), now())
         ON CONFLICT (tenant_id) DO UPDATE SET
             consumer_key = EXCLUDED.consumer_key, username = EXCLUDED.username, login_url = EXCLUDED.login_url,
             instance_url = EXCLUDED.instance_url, organization_id = EXCLUDED.organization_id,
             salesforce_user_id = EXCLUDED.salesforce_user_id, objects = EXCLUDED.objects, key_id = EXCLUDED.key_id,
             private_key_ciphertext = EXCLUDED.private_key_ciphertext, status = 'connected', last_error = NULL,
             connected_at = now(), last_token_at = now(), generation = nextval('connection_generations')
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(new.consumer_key)
        .bind(new.username)
        .bind(new.login_url)
        .bind(new.instance_url)
        .bind(new.organization_id)
        .bind(new.salesforce_user_id)
        .bind(&objects)
        .bind(&new.sealed_key.key_id)
        .bind(&new.sealed_key.blob)
        .fetch_one(&mut *tx)
        .await?;
    let stored = from_row(&row)?;
    tx.commit().await?;
    Ok(Saved { stored, links_dropped: dropped, replaced: previous.map(|(_, generation)| generation) })
}

/// Removes the connection and, with it, its user links. Returns the
/// generation removed, `None` when there was no connection.
pub async fn delete(pool: &PgPool, tenant: &TenantId) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM connections WHERE tenant_id = $1 RETURNING generation")
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await
}

/// The generation of the tenant's connection, `None` when it has none: the
/// check a cached token passes before it is handed out.
pub async fn generation(pool: &PgPool, tenant: &TenantId) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT generation FROM connections WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await
}

/// A token was obtained: the connection works (again).
pub async fn record_token(pool: &PgPool, tenant: &TenantId, instance_url: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET status = 'connected', last_error = NULL, last_token_at = now(), instance_url = $2
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(instance_url)
    .execute(pool)
    .await
    .map(|_| ())
}

/// A token exchange failed: the connection is `failing` with the reason.
pub async fn record_failure(pool: &PgPool, tenant: &TenantId, code: &str, detail: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET status = 'failing',
             last_error = jsonb_build_object('code', $2::text, 'detail', $3::text,
                 'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(code)
    .bind(detail)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Stores the key sealed again (under the current encryption key, bound to
/// its registration), unless the row's key changed meanwhile.
pub async fn reseal(pool: &PgPool, tenant: &TenantId, old_blob: &[u8], sealed: &Sealed) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET key_id = $3, private_key_ciphertext = $4
         WHERE tenant_id = $1 AND private_key_ciphertext = $2",
    )
    .bind(tenant.as_str())
    .bind(old_blob)
    .bind(&sealed.key_id)
    .bind(&sealed.blob)
    .execute(pool)
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_key_hint_shows_six_and_four() {
        let check = |key: &str, expected: &str| assert_eq!(consumer_key_hint(key), expected, "{key}");
        check("3MVG9A2kN3Bn17hsWsLDatw_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123", "3MVG9A…0123");
        check("abcdefghijklm", "abcdef…jklm");
        check("abcdefghijkl", "ab…");
        check("a", "a…");
        check("", "…");
    }
}
