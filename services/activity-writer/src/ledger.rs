//! The event ledger: what makes "exactly one Task per `event_id`" hold
//! across redeliveries, crashes and answers lost after Salesforce committed.
//!
//! A row is written `pending` before the sObject Collections call that
//! creates the Task, and `written` with the Task's id once Salesforce
//! answered. The writer reads the ledger for a whole batch first:
//! - `written`: the Task exists; only `activity.written` is published again;
//! - `pending`: an earlier attempt may or may not have created the Task; one
//!   SOQL on `Task.CallObject` for the whole batch settles it before anything
//!   is written again;
//! - no row: no attempt ever reached Salesforce.
//!
//! A row is removed again only when Salesforce's answer said the Task was
//! not created (an item error), so a removed row never hides a Task.
//!
//! Every function is one statement for the whole batch (`UNNEST`).

use std::collections::HashMap;

use fa_messages::{LinkMethod, SObject, SalesforceId, SalesforceRef};
use sqlx::PgPool;
use time::OffsetDateTime;

/// Where an event stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An attempt began; its outcome is unknown.
    Pending {
        /// Attempts begun so far.
        attempts: u32,
        /// The record and owner the attempt asked for, when readable.
        asked: Option<(SalesforceRef, SalesforceId, bool)>,
        /// How the customer was newly tied to the record, if so.
        linked: Option<LinkMethod>,
    },
    /// The Task exists.
    Written(WrittenTask),
}

/// A Task the writer knows exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenTask {
    /// The event.
    pub event_id: String,
    /// The Task's id.
    pub task_id: SalesforceId,
    /// The record it is on.
    pub target: SalesforceRef,
    /// Its owner.
    pub owner: SalesforceId,
    /// True when the connection's own user owns it.
    pub fallback: bool,
    /// Attempts it took.
    pub attempts: u32,
    /// When the writer saw it exist.
    pub written_at: OffsetDateTime,
    /// How the customer was newly tied to the target in the attempt that
    /// wrote it (announced again with the Task on a redelivery).
    pub linked: Option<LinkMethod>,
}

/// An attempt about to create a Task.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The event.
    pub event_id: String,
    /// The record the Task goes on.
    pub target: SalesforceRef,
    /// The owner asked for.
    pub owner: SalesforceId,
    /// True when the connection's own user is the owner.
    pub fallback: bool,
    /// How the customer was newly tied to the target, if so.
    pub linked: Option<LinkMethod>,
}

type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
    i32,
    Option<OffsetDateTime>,
    Option<String>,
);

/// The ledger entries of `event_ids`.
pub async fn entries(pool: &PgPool, tenant: &str, event_ids: &[String]) -> sqlx::Result<HashMap<String, Entry>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT event_id, state, task_id, target_object, target_id, owner_id, owner_fallback, attempts, written_at, linked_how
         FROM activity_ledger WHERE tenant_id = $1 AND event_id = ANY($2)",
    )
    .bind(tenant)
    .bind(event_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(event_id, state, task_id, object, target_id, owner, fallback, attempts, written_at, how)| {
            let attempts = u32::try_from(attempts).unwrap_or(1).max(1);
            let linked = how.as_deref().and_then(crate::link::parse_how);
            let target = object
                .and_then(|o| o.parse::<SObject>().ok())
                .zip(target_id.and_then(|t| SalesforceId::new(t).ok()))
                .map(|(object, id)| SalesforceRef { object, id });
            let owner = owner.and_then(|o| SalesforceId::new(o).ok());
            let fallback = fallback.unwrap_or(false);
            let written = (state == "written")
                .then(|| {
                    Some(WrittenTask {
                        event_id: event_id.clone(),
                        task_id: SalesforceId::new(task_id?).ok()?,
                        target: target.clone()?,
                        owner: owner.clone()?,
                        fallback,
                        attempts,
                        written_at: written_at?,
                        linked,
                    })
                })
                .flatten();
            let entry = match written {
                Some(task) => Entry::Written(task),
                // A row that cannot be read back is treated as unknown: the
                // CallObject query settles it.
                None => Entry::Pending { attempts, asked: target.zip(owner).map(|(t, o)| (t, o, fallback)), linked },
            };
            (event_id, entry)
        })
        .collect())
}

/// How long a pending row is left alone before any writer begins it again:
/// Salesforce may commit a create well after its answer was lost (the
/// writer waits 30 s; Salesforce runs a call up to 10 minutes), and a
/// CallObject query before then may not see the Task yet.
pub const BUSY_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// Marks `attempts` pending for `writer` before the call that creates their
/// Tasks; an event met before counts one more attempt. Returns the attempts
/// of the events that may go on: an event whose pending row was begun less
/// than [`BUSY_FOR`] ago, by any writer, is left out (its Task may still be
/// committed).
pub async fn begin(
    pool: &PgPool,
    tenant: &str,
    writer: &str,
    attempts: &[Attempt],
) -> sqlx::Result<HashMap<String, u32>> {
    let (events, objects, targets, owners, fallbacks) = columns(attempts);
    let hows: Vec<Option<&str>> = attempts.iter().map(|a| a.linked.map(crate::link::how_text)).collect();
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "INSERT INTO activity_ledger (tenant_id, event_id, state, target_object, target_id, owner_id, owner_fallback, writer, linked_how)
         SELECT $1, e, 'pending', o, t, w, f, $7, h
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $9::text[]) AS u(e, o, t, w, f, h)
         ON CONFLICT (tenant_id, event_id) DO UPDATE
           SET attempts = activity_ledger.attempts + 1, target_object = EXCLUDED.target_object,
               target_id = EXCLUDED.target_id, owner_id = EXCLUDED.owner_id,
               owner_fallback = EXCLUDED.owner_fallback, writer = EXCLUDED.writer,
               linked_how = EXCLUDED.linked_how, updated_at = now()
           WHERE activity_ledger.state = 'pending'
             AND activity_ledger.updated_at < now() - make_interval(secs => $8)
         RETURNING event_id, attempts",
    )
    .bind(tenant)
    .bind(&events)
    .bind(&objects)
    .bind(&targets)
    .bind(&owners)
    .bind(&fallbacks)
    .bind(writer)
    .bind(BUSY_FOR.as_secs_f64())
    .bind(&hows)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(e, a)| (e, u32::try_from(a).unwrap_or(1).max(1))).collect())
}

/// Records Tasks that exist.
pub async fn written(pool: &PgPool, tenant: &str, tasks: &[WrittenTask]) -> sqlx::Result<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    let events: Vec<&str> = tasks.iter().map(|t| t.event_id.as_str()).collect();
    let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    let objects: Vec<&str> = tasks.iter().map(|t| t.target.object.as_str()).collect();
    let targets: Vec<&str> = tasks.iter().map(|t| t.target.id.as_str()).collect();
    let owners: Vec<&str> = tasks.iter().map(|t| t.owner.as_str()).collect();
    let fallbacks: Vec<bool> = tasks.iter().map(|t| t.fallback).collect();
    let attempts: Vec<i32> = tasks.iter().map(|t| i32::try_from(t.attempts).unwrap_or(i32::MAX)).collect();
    let at: Vec<OffsetDateTime> = tasks.iter().map(|t| t.written_at).collect();
    let hows: Vec<Option<&str>> = tasks.iter().map(|t| t.linked.map(crate::link::how_text)).collect();
    sqlx::query(
        "INSERT INTO activity_ledger (tenant_id, event_id, state, task_id, target_object, target_id, owner_id,
                                      owner_fallback, attempts, written_at, linked_how)
         SELECT $1, e, 'written', k, o, t, w, f, a, at, h
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::int4[], $9::timestamptz[], $10::text[])
           AS u(e, k, o, t, w, f, a, at, h)
         ON CONFLICT (tenant_id, event_id) DO UPDATE
           SET state = 'written', task_id = EXCLUDED.task_id, target_object = EXCLUDED.target_object,
               target_id = EXCLUDED.target_id, owner_id = EXCLUDED.owner_id,
               owner_fallback = EXCLUDED.owner_fallback, attempts = GREATEST(activity_ledger.attempts, EXCLUDED.attempts),
               written_at = EXCLUDED.written_at, linked_how = COALESCE(EXCLUDED.linked_how, activity_ledger.linked_how),
               updated_at = now()",
    )
    .bind(tenant)
    .bind(&events)
    .bind(&ids)
    .bind(&objects)
    .bind(&targets)
    .bind(&owners)
    .bind(&fallbacks)
    .bind(&attempts)
    .bind(&at)
    .bind(&hows)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes pending rows of events whose Task Salesforce said it did not
/// create, so their next attempt needs no CallObject query.
pub async fn not_created(pool: &PgPool, tenant: &str, event_ids: &[String]) -> sqlx::Result<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM activity_ledger WHERE tenant_id = $1 AND event_id = ANY($2) AND state = 'pending'")
        .bind(tenant)
        .bind(event_ids)
        .execute(pool)
        .await?;
    Ok(())
}

#[allow(clippy::type_complexity)]
fn columns(attempts: &[Attempt]) -> (Vec<&str>, Vec<&str>, Vec<&str>, Vec<&str>, Vec<bool>) {
    (
        attempts.iter().map(|a| a.event_id.as_str()).collect(),
        attempts.iter().map(|a| a.target.object.as_str()).collect(),
        attempts.iter().map(|a| a.target.id.as_str()).collect(),
        attempts.iter().map(|a| a.owner.as_str()).collect(),
        attempts.iter().map(|a| a.fallback).collect(),
    )
}
