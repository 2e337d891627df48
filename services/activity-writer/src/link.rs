//! The writer's own memory of customers (docs/behaviour.md §4, rules 2 and 4):
//! the record each Front Agent customer was tied to, and the claims that make
//! one new caller one new record.
//!
//! A claim is keyed by the customer's normalized identity (their first
//! E.164 number, else their lower-cased e-mail, else Front Agent's customer
//! id), inserted before the record is created. Whoever inserts it creates
//! the record and fills it in; another writer (another replica, or a later
//! batch) that finds the claim waits for the record and uses it. A claim
//! left unfilled for [`STALE_CLAIM`] (its writer crashed) is taken over.

use std::{collections::HashMap, time::Duration};

use fa_messages::{LinkMethod, SObject, SalesforceId, SalesforceRef};
use sqlx::PgPool;

/// How long an unfilled claim holds before another writer takes it over.
pub const STALE_CLAIM: Duration = Duration::from_secs(120);

/// A customer's link, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Front Agent's customer id.
    pub customer_id: String,
    /// The record.
    pub record: SalesforceRef,
    /// How it was found.
    pub how: LinkMethod,
}

/// The recorded links of `customer_ids`.
pub async fn links(
    pool: &PgPool,
    tenant: &str,
    customer_ids: &[String],
) -> sqlx::Result<HashMap<String, SalesforceRef>> {
    if customer_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT customer_id, object, record_id FROM customer_links WHERE tenant_id = $1 AND customer_id = ANY($2)",
    )
    .bind(tenant)
    .bind(customer_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(|(customer, object, id)| Some((customer, reference(&object, id)?))).collect())
}

/// Records (or replaces) links, in one statement.
pub async fn record(pool: &PgPool, tenant: &str, links: &[Link]) -> sqlx::Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    let customers: Vec<&str> = links.iter().map(|l| l.customer_id.as_str()).collect();
    let objects: Vec<&str> = links.iter().map(|l| l.record.object.as_str()).collect();
    let ids: Vec<&str> = links.iter().map(|l| l.record.id.as_str()).collect();
    let hows: Vec<&str> = links.iter().map(|l| how_text(l.how)).collect();
    sqlx::query(
        "INSERT INTO customer_links (tenant_id, customer_id, object, record_id, how)
         SELECT DISTINCT ON (c) $1, c, o, r, h FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[]) AS u(c, o, r, h)
         ON CONFLICT (tenant_id, customer_id) DO UPDATE
           SET object = EXCLUDED.object, record_id = EXCLUDED.record_id, how = EXCLUDED.how, linked_at = now()",
    )
    .bind(tenant)
    .bind(&customers)
    .bind(&objects)
    .bind(&ids)
    .bind(&hows)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets links that led to a record Salesforce no longer has.
pub async fn forget(pool: &PgPool, tenant: &str, customer_ids: &[String]) -> sqlx::Result<()> {
    if customer_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM customer_links WHERE tenant_id = $1 AND customer_id = ANY($2)")
        .bind(tenant)
        .bind(customer_ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// What a claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This writer holds the claim: create the record.
    Won,
    /// Another writer created (or found) the record already.
    Filled(SalesforceRef, LinkMethod),
    /// Another writer holds the claim and has not finished.
    Held,
}

/// Tries to claim each identity for `writer`; identities whose claim went
/// stale are taken over. A claim of this writer's own is not taken again
/// before then either: a create whose answer was lost may still commit.
pub async fn claim(
    pool: &PgPool,
    tenant: &str,
    writer: &str,
    identities: &[String],
) -> sqlx::Result<HashMap<String, Claim>> {
    if identities.is_empty() {
        return Ok(HashMap::new());
    }
    let stale = STALE_CLAIM.as_secs_f64();
    // Insert new claims and take over stale ones in one statement; then read
    // what the others hold.
    let won: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO customer_claims (tenant_id, identity, claimed_by)
         SELECT $1, i, $2 FROM UNNEST($3::text[]) AS u(i)
         ON CONFLICT (tenant_id, identity) DO UPDATE
           SET claimed_by = EXCLUDED.claimed_by, claimed_at = now()
           WHERE customer_claims.record_id IS NULL
             AND customer_claims.claimed_at < now() - make_interval(secs => $4)
         RETURNING identity",
    )
    .bind(tenant)
    .bind(writer)
    .bind(identities)
    .bind(stale)
    .fetch_all(pool)
    .await?;
    let mut claims: HashMap<String, Claim> = won.into_iter().map(|(i,)| (i, Claim::Won)).collect();
    let others: Vec<String> = identities.iter().filter(|i| !claims.contains_key(*i)).cloned().collect();
    if !others.is_empty() {
        claims.extend(held(pool, tenant, &others).await?);
    }
    Ok(claims)
}

/// The state of claims held by others.
pub async fn held(pool: &PgPool, tenant: &str, identities: &[String]) -> sqlx::Result<HashMap<String, Claim>> {
    type Row = (String, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT identity, object, record_id, how FROM customer_claims WHERE tenant_id = $1 AND identity = ANY($2)",
    )
    .bind(tenant)
    .bind(identities)
    .fetch_all(pool)
    .await?;
    let mut claims: HashMap<String, Claim> = identities.iter().map(|i| (i.clone(), Claim::Held)).collect();
    for (identity, object, id, how) in rows {
        let filled = object
            .zip(id)
            .and_then(|(object, id)| reference(&object, id))
            .map(|record| Claim::Filled(record, how.as_deref().and_then(parse_how).unwrap_or(LinkMethod::Created)));
        if let Some(filled) = filled {
            claims.insert(identity, filled);
        }
    }
    Ok(claims)
}

/// Fills this writer's claims with the records it created or was pointed to.
pub async fn fill(
    pool: &PgPool,
    tenant: &str,
    writer: &str,
    filled: &[(String, SalesforceRef, LinkMethod)],
) -> sqlx::Result<()> {
    if filled.is_empty() {
        return Ok(());
    }
    let identities: Vec<&str> = filled.iter().map(|f| f.0.as_str()).collect();
    let objects: Vec<&str> = filled.iter().map(|f| f.1.object.as_str()).collect();
    let ids: Vec<&str> = filled.iter().map(|f| f.1.id.as_str()).collect();
    let hows: Vec<&str> = filled.iter().map(|f| how_text(f.2)).collect();
    sqlx::query(
        "UPDATE customer_claims AS c SET object = u.o, record_id = u.r, how = u.h
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[]) AS u(i, o, r, h)
         WHERE c.tenant_id = $1 AND c.identity = u.i AND c.claimed_by = $2",
    )
    .bind(tenant)
    .bind(writer)
    .bind(&identities)
    .bind(&objects)
    .bind(&ids)
    .bind(&hows)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives up this writer's unfilled claims (the create failed), so the next
/// attempt, here or elsewhere, can claim them at once.
pub async fn release(pool: &PgPool, tenant: &str, writer: &str, identities: &[String]) -> sqlx::Result<()> {
    if identities.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM customer_claims WHERE tenant_id = $1 AND claimed_by = $2 AND identity = ANY($3) AND record_id IS NULL",
    )
    .bind(tenant)
    .bind(writer)
    .bind(identities)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets filled claims whose record Salesforce no longer has, so the
/// caller's next event creates (or matches) anew.
pub async fn forget_records(pool: &PgPool, tenant: &str, record_ids: &[String]) -> sqlx::Result<()> {
    if record_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM customer_claims WHERE tenant_id = $1 AND record_id = ANY($2)")
        .bind(tenant)
        .bind(record_ids)
        .execute(pool)
        .await?;
    Ok(())
}

fn reference(object: &str, id: String) -> Option<SalesforceRef> {
    Some(SalesforceRef { object: object.parse::<SObject>().ok()?, id: SalesforceId::new(id).ok()? })
}

/// How a link was made, as the tables store it.
pub fn how_text(how: LinkMethod) -> &'static str {
    match how {
        LinkMethod::MatchedPhone => "matched_phone",
        LinkMethod::MatchedEmail => "matched_email",
        LinkMethod::MatchedDuplicateRule => "matched_duplicate_rule",
        LinkMethod::Created => "created",
    }
}

/// A stored `how` read back.
pub fn parse_how(text: &str) -> Option<LinkMethod> {
    match text {
        "matched_phone" => Some(LinkMethod::MatchedPhone),
        "matched_email" => Some(LinkMethod::MatchedEmail),
        "matched_duplicate_rule" => Some(LinkMethod::MatchedDuplicateRule),
        "created" => Some(LinkMethod::Created),
        _ => None,
    }
}
