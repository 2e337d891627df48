//! Records Front Agent holds that were purged from the recycle bin before
//! any run saw them deleted (docs/behaviour.md §3): emptied by hand, or by
//! Salesforce after 15 days while the tenant was paused or disconnected.
//! The `queryAll` cursor no longer returns them, so each object's cursor,
//! once read to its end, is followed by a look:
//! 1. the replication API's deleted list, from where the last look ended
//!    to when the cursor's query was sent (one call): the deletions it
//!    names that Front Agent still holds are gone;
//! 2. when the list no longer reaches back to where the last look ended,
//!    or once a day ([`crate::reconcile::due`]), a comparison of every id
//!    Front Agent holds with the ids Salesforce still has (one `queryAll`
//!    cursor of ids, one call per 2,000 records), its cost logged and
//!    counted in metrics.
//!
//! Emptying the bin moves the list's `earliestDateAvailable` to the newest
//! purged deletion (docs/salesforce-facts.md §9), so a record purged by hand is behind
//! the list's reach; the list is then what tells the run to compare ids at
//! once. The window ends when the cursor's query was sent: a record deleted
//! after that is still in the bin, and the next cursor announces it with
//! its reason (a merge names its survivor; the list cannot).
//!
//! A removal found here has no `SystemModstamp` to show: it carries the
//! deletion date the list gives, or, found by comparison, the time the
//! importer learned it (both stable for a record, so a removal announced
//! again has the same message id only when found the same way).

use std::collections::{BTreeMap, HashSet};

use fa_messages::{CustomerRemovedV1, RemovalReason, SObject, SalesforceId, SalesforceRef, TenantId};
use fa_salesforce::replication::DeletedList;
use fa_store::customer_index;
use serde::Deserialize;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

use crate::{
    org::{self, Failure, Org, PageRequest},
    pending::Pending,
    query,
    reconcile::{self, ListAnswer},
    removal,
};

/// The deleted list refuses a window of a minute or less; a shorter one
/// (runs in quick succession) waits for a later run.
const SHORTEST_WINDOW: Duration = Duration::minutes(2);

/// Where an object's look stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// The next deleted list starts here (the last one's `latestDateCovered`).
    pub looked_until: OffsetDateTime,
    /// When ids were last compared.
    pub compared_at: OffsetDateTime,
}

/// What a look found.
#[derive(Debug)]
pub struct Found {
    /// Records Front Agent holds that are gone, oldest first, each as the
    /// `customer.removed` to publish (the run id filled in when published).
    pub gone: Vec<Pending<CustomerRemovedV1>>,
    /// Where the look stands once they are all announced.
    pub next: Look,
}

/// Looks for `object`'s records purged unseen since the last look, up to
/// `end` (when the cursor's query was sent).
///
/// # Errors
/// The database's; a Salesforce failure is the inner `Err`.
pub async fn look(
    org: &Org,
    pool: &PgPool,
    tenant: &TenantId,
    object: SObject,
    organization_id: &str,
    end: OffsetDateTime,
    now: OffsetDateTime,
) -> anyhow::Result<Result<Found, Failure>> {
    let Some(last) = load(pool, tenant, object, organization_id).await? else {
        // The first look: nothing held before it can have been purged
        // unseen (a new tenant), or it would take a day's comparison to
        // know (an older one), which the safety net does tomorrow.
        tracing::info!(tenant_id = %tenant, %object, "first look for purged records: the deleted list is read from here on");
        return Ok(Ok(Found { gone: Vec::new(), next: Look { looked_until: end, compared_at: now } }));
    };
    let mut gone: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
    let mut looked_until = last.looked_until;
    let answer = if end - last.looked_until < SHORTEST_WINDOW {
        None
    } else {
        match org.deleted(object, last.looked_until, end).await {
            Err(failure) => return Ok(Err(failure)),
            Ok(None) => {
                tracing::warn!(tenant_id = %tenant, %object, since = %last.looked_until,
                    "the deleted list no longer reaches back to the last look (the recycle bin was emptied, or more than 15 days passed); comparing ids");
                looked_until = end;
                Some(ListAnswer::Refused)
            }
            Ok(Some(list)) => {
                if let Some(usage) = org::spent(list.usage) {
                    return Ok(Err(Failure::Pause { reason: org::describe_usage(usage) }));
                }
                gone = held_and_deleted(pool, tenant, object, organization_id, &list).await?;
                looked_until = list.latest_date_covered.unwrap_or(end).clamp(last.looked_until, end);
                Some(ListAnswer::Answered { earliest_available: list.earliest_date_available })
            }
        }
    };
    let mut compared_at = last.compared_at;
    let due = reconcile::due(
        answer.unwrap_or(ListAnswer::Answered { earliest_available: None }),
        Some(last.looked_until),
        Some(last.compared_at),
        now,
    );
    if let Some(reason) = due {
        match compare(org, pool, tenant, object, organization_id, reason).await? {
            Ok(missing) => {
                for id in missing {
                    gone.entry(id).or_insert(now);
                }
                compared_at = now;
            }
            Err(failure) => return Ok(Err(failure)),
        }
    }
    Ok(Ok(Found { gone: oldest_first(tenant, object, gone), next: Look { looked_until, compared_at } }))
}

/// The records of the deleted `list` that Front Agent holds, by id, with
/// when they were deleted.
async fn held_and_deleted(
    pool: &PgPool,
    tenant: &TenantId,
    object: SObject,
    organization_id: &str,
    list: &DeletedList,
) -> anyhow::Result<BTreeMap<String, OffsetDateTime>> {
    let ids: Vec<String> = list.deleted_records.iter().map(|d| d.id.clone()).collect();
    let held = customer_index::held(pool, tenant.as_str(), organization_id, object.as_str(), &ids).await?;
    Ok(list
        .deleted_records
        .iter()
        // A version held newer than the deletion was undeleted and
        // published since: not gone.
        .filter(|deleted| held.get(&deleted.id).is_some_and(|at| *at < deleted.deleted_date))
        .map(|deleted| (deleted.id.clone(), deleted.deleted_date))
        .collect())
}

/// The `customer.removed` of each record gone, oldest first.
fn oldest_first(
    tenant: &TenantId,
    object: SObject,
    gone: BTreeMap<String, OffsetDateTime>,
) -> Vec<Pending<CustomerRemovedV1>> {
    let mut gone: Vec<(OffsetDateTime, String)> = gone.into_iter().map(|(id, at)| (at, id)).collect();
    gone.sort();
    gone.into_iter()
        .filter_map(|(at, id)| {
            let id = SalesforceId::new_18(&id).ok()?;
            Some(removal::message(tenant, SalesforceRef { object, id }, at, RemovalReason::Deleted, None))
        })
        .collect()
}

/// An id row of the comparison's cursor.
#[derive(Deserialize)]
struct IdRow {
    #[serde(rename = "Id")]
    id: String,
}

/// The ids Front Agent holds for `object` that Salesforce no longer has,
/// live or in the recycle bin.
async fn compare(
    org: &Org,
    pool: &PgPool,
    tenant: &TenantId,
    object: SObject,
    organization_id: &str,
    reason: reconcile::Reason,
) -> anyhow::Result<Result<Vec<String>, Failure>> {
    let held = customer_index::all_held(pool, tenant.as_str(), organization_id, object.as_str()).await?;
    let mut calls = 0u64;
    let mut still: HashSet<String> = HashSet::with_capacity(held.len());
    if !held.is_empty() {
        let mut request = PageRequest::QueryAll(query::ids_soql(object));
        loop {
            calls += 1;
            let page = match org.page(&request).await {
                Ok(page) => page,
                Err(failure) => {
                    count(object, reason, calls, 0);
                    return Ok(Err(failure));
                }
            };
            let page = page.decode::<IdRow>(|_| ())?;
            still.extend(page.records.into_iter().map(|row| row.id));
            match (page.next_records_url, org::spent(page.usage)) {
                (Some(_), Some(usage)) => {
                    count(object, reason, calls, 0);
                    return Ok(Err(Failure::Pause { reason: org::describe_usage(usage) }));
                }
                (Some(url), None) => request = PageRequest::More(url),
                (None, _) => break,
            }
        }
    }
    let missing: Vec<String> = held.iter().filter(|(id, _)| !still.contains(id)).map(|(id, _)| id.clone()).collect();
    count(object, reason, calls, held.len());
    tracing::info!(tenant_id = %tenant, %object, reason = reason.label(), held = held.len(), in_salesforce = still.len(),
        gone = missing.len(), api_calls = calls,
        "reconciled the ids Front Agent holds with the ids Salesforce still has");
    Ok(Ok(missing))
}

fn count(object: SObject, reason: reconcile::Reason, calls: u64, compared: usize) {
    let object = object.as_str();
    metrics::counter!("fa_import_reconciliations_total", "object" => object, "reason" => reason.label()).increment(1);
    metrics::counter!("fa_import_reconcile_api_calls_total", "object" => object).increment(calls);
    metrics::counter!("fa_import_reconcile_ids_compared_total", "object" => object).increment(compared as u64);
}

/// Where `object`'s look stands, when it was for `organization_id`.
///
/// # Errors
/// The database's.
pub async fn load(
    pool: &PgPool,
    tenant: &TenantId,
    object: SObject,
    organization_id: &str,
) -> sqlx::Result<Option<Look>> {
    let row: Option<(OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "SELECT looked_until, compared_at FROM import_removal_looks
         WHERE tenant_id = $1 AND object = $2 AND organization_id = $3",
    )
    .bind(tenant.as_str())
    .bind(object.as_str())
    .bind(organization_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(looked_until, compared_at)| Look { looked_until, compared_at }))
}

/// Saves where `object`'s look stands.
///
/// # Errors
/// The database's.
pub async fn save(
    pool: &PgPool,
    tenant: &TenantId,
    object: SObject,
    organization_id: &str,
    look: &Look,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO import_removal_looks (tenant_id, object, organization_id, looked_until, compared_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, object) DO UPDATE SET organization_id = EXCLUDED.organization_id,
             looked_until = EXCLUDED.looked_until, compared_at = EXCLUDED.compared_at",
    )
    .bind(tenant.as_str())
    .bind(object.as_str())
    .bind(organization_id)
    .bind(look.looked_until)
    .bind(look.compared_at)
    .execute(pool)
    .await?;
    Ok(())
}
