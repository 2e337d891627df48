//! One batch of one tenant's `assist.completed` events, from the queue to
//! the Tasks in Salesforce and the messages that say so.
//!
//! The stages, each one statement or one Salesforce call for the whole
//! batch (a batch of one takes the same path):
//! 1. read every event (a malformed one is refused on its own);
//! 2. the tenant: paused ([`crate::pause`]), connected, its ledger rows
//!    ([`crate::ledger`]): a Task already written is only announced again,
//!    an attempt of unknown outcome is settled by one SOQL on `CallObject`;
//! 3. where each Task goes ([`crate::resolve`]) and who owns it (the linked
//!    Salesforce user, else the connection's own user, `fallback`);
//! 4. the ledger marks the attempts pending, one Collections call creates
//!    the Tasks, each record's result handled on its own (an inactive owner
//!    is replaced by the connection's user in a second call);
//! 5. the ledger records the Tasks, links are recorded, `customer.linked`
//!    and `activity.written` are published with confirms; only then is an
//!    event's delivery acked.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use fa_amqp::{BatchHandler, Broker, Failure as Refusal, Incoming, Outcome};
use fa_messages::{
    ActivityFailedV1, ActivityFailureCode, ActivityWrittenV1, AssistCompletedV1, CustomerLinkedV1, ErrorDetail,
    EventId, LinkMethod, SObject, SalesforceId, SalesforceRef, TaskOwner, TenantId,
};
use fa_salesforce::{ErrorCode, ItemError, Retry, write::NewRecord};
use fa_tokens::TokenClient;
use futures_util::future::join_all;
use serde::Deserialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use tracing::Instrument as _;

use crate::{
    SERVICE, event, ledger,
    ledger::{Attempt, Entry, WrittenTask},
    link,
    org::{Failure, Org},
    pause::Pauses,
    resolve::{self, Resolution},
    task,
    verdict::{self, WriterCode},
};

/// What the writer needs to run, shared by all its batches.
pub struct Writer {
    /// The database.
    pub pool: PgPool,
    /// The broker, for publishing.
    pub broker: Broker,
    /// Access tokens from the token-broker.
    pub tokens: TokenClient,
    /// The HTTP client for Salesforce.
    pub http: reqwest::Client,
    /// `FA_SF_SALESFORCE_API_VERSION`.
    pub api_version: String,
    /// `FA_SF_TIMEZONE`.
    pub zone: jiff::tz::TimeZone,
    /// This process's name in claims on new callers.
    pub name: String,
    /// Tenants paused for their API allowance.
    pub pauses: Pauses,
}

/// One event of the batch, read.
struct Ev<'a> {
    event: AssistCompletedV1,
    message: &'a Incoming,
}

/// Where one event's Task goes and who owns it.
struct Plan {
    k: usize,
    target: SalesforceRef,
    /// A Contact's Account: the Task's `WhatId`.
    account: Option<SalesforceId>,
    linked: Option<LinkMethod>,
    owner: SalesforceId,
    fallback: bool,
}

/// An event whose earlier attempt's outcome is unknown.
struct Unknown {
    k: usize,
    attempts: u32,
    asked: Option<(SalesforceRef, SalesforceId, bool)>,
    linked: Option<LinkMethod>,
}

/// A Task that exists, ready to be announced.
struct Done {
    k: usize,
    task: WrittenTask,
    linked: Option<LinkMethod>,
    /// Known from an earlier attempt (a redelivery): counted as a duplicate.
    again: bool,
}

/// One tenant's batch on its way through the stages: its events, what
/// became of each so far, and the Tasks that exist, to be announced.
struct Batch<'a> {
    tenant: &'a str,
    evs: &'a [Ev<'a>],
    /// By event, in order: its outcome once decided.
    out: Vec<Option<Outcome>>,
    done: Vec<Done>,
}

/// What one round of Task creates leaves: what to record, and the plans to
/// try again with the connection's own user.
#[derive(Default)]
struct Round {
    again: Vec<Plan>,
    not_created: Vec<String>,
    gone_customers: Vec<String>,
    gone_records: Vec<String>,
    written: Vec<WrittenTask>,
}

impl BatchHandler for Writer {
    fn key(&self, message: &Incoming) -> String {
        event::tenant_of(message)
    }

    async fn handle(&self, batch: &[Incoming]) -> Vec<Outcome> {
        self.write(batch).await
    }

    async fn dead_lettered(&self, message: &Incoming, failure: &Refusal) -> anyhow::Result<()> {
        let code = verdict::failed_code(failure);
        metrics::counter!("fa_activity_events_total", "service" => SERVICE, "outcome" => "dead_lettered").increment(1);
        metrics::counter!("fa_activity_tasks_total", "service" => SERVICE, "outcome" => "failed", "code" => code.as_str())
            .increment(1);
        let Some((tenant_id, event_id)) = ids_of(message) else {
            tracing::warn!(
                code = failure.code(),
                "dead-lettered a message without readable ids; no activity.failed can name it"
            );
            return Ok(());
        };
        let failed = ActivityFailedV1 {
            tenant_id,
            event_id,
            error: ErrorDetail {
                code,
                message: failure.message.clone(),
                salesforce_error_code: failure.salesforce_error_code.clone(),
            },
            attempts: std::num::NonZeroU32::new(message.attempt).unwrap_or(std::num::NonZeroU32::MIN),
            failed_at: OffsetDateTime::now_utc(),
        };
        tracing::warn!(tenant_id = %failed.tenant_id, event_id = %failed.event_id, code = %code, reason = %failure.message,
            "no Task can be written for this event; it is on the dead-letter queue");
        self.broker.publish(&failed).await?;
        Ok(())
    }
}

/// The tenant and event ids a dead-lettered message names: from its body,
/// else from its properties, when they are valid ids.
fn ids_of(message: &Incoming) -> Option<(TenantId, EventId)> {
    #[derive(Deserialize)]
    struct Ids {
        tenant_id: Option<String>,
        event_id: Option<String>,
    }
    let body = serde_json::from_slice::<Ids>(&message.body).ok();
    let tenant = body.as_ref().and_then(|b| b.tenant_id.clone()).or_else(|| message.tenant_id())?;
    let event = body.and_then(|b| b.event_id).or_else(|| message.message_id().map(str::to_owned))?;
    Some((TenantId::new(tenant).ok()?, EventId::new(event).ok()?))
}

impl Writer {
    /// Writes one batch of one tenant: one outcome per delivery, in order.
    pub async fn write(&self, batch: &[Incoming]) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut evs: Vec<Ev<'_>> = Vec::new();
        let mut index: Vec<usize> = Vec::new();
        let mut first: HashMap<String, usize> = HashMap::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (i, message) in batch.iter().enumerate() {
            match event::parse(message).and_then(|e| event::same_tenant(e, message)) {
                Ok(event) => match first.get(event.event_id.as_str()) {
                    // The same event twice in one batch: one Task, both acked alike.
                    Some(k) => repeats.push((i, *k)),
                    None => {
                        first.insert(event.event_id.to_string(), evs.len());
                        index.push(i);
                        evs.push(Ev { event, message });
                    }
                },
                Err(failure) => {
                    tracing::warn!(message_id = message.message_id().unwrap_or(""), "refusing a malformed event");
                    tracing::debug!(message_id = message.message_id().unwrap_or(""), reason = %failure.message, "why");
                    out[i] = Some(Outcome::Reject(failure));
                }
            }
        }
        if let Some(tenant) = evs.first().map(|e| e.event.tenant_id.to_string()) {
            let span = tracing::info_span!("batch", tenant_id = %tenant, events = evs.len());
            let outcomes = match self.write_tenant(&tenant, &evs).instrument(span).await {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    tracing::error!(tenant_id = %tenant, error = format!("{e:#}"), "the batch failed on the database; its events are retried");
                    vec![verdict::internal(WriterCode::DatabaseUnavailable, &format!("{e:#}")); evs.len()]
                }
            };
            for (k, outcome) in outcomes.into_iter().enumerate() {
                out[index[k]] = Some(outcome);
            }
        }
        for (i, k) in repeats {
            out[i] = out[index[k]].clone();
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| verdict::internal(WriterCode::NotHandled, "the event was not handled in its batch"))
            })
            .collect()
    }

    async fn write_tenant(&self, tenant: &str, evs: &[Ev<'_>]) -> anyhow::Result<Vec<Outcome>> {
        let started = std::time::Instant::now();
        let outcomes = self.write_tenant_timed(tenant, evs).await;
        tracing::debug!(
            tenant_id = tenant,
            events = evs.len(),
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "batch handled"
        );
        outcomes
    }

    async fn write_tenant_timed(&self, tenant: &str, evs: &[Ev<'_>]) -> anyhow::Result<Vec<Outcome>> {
        let n = evs.len();
        if let Some(left) = self.pauses.left(tenant) {
            count_retried(n);
            return Ok(vec![verdict::paused(left, "the tenant is paused"); n]);
        }
        let Some(connection) = fa_store::tenant::connection(&self.pool, tenant).await? else {
            let refusal =
                verdict::from_failure(&Failure::NotConnected(format!("tenant {tenant} has no Salesforce connection")));
            return Ok(vec![refusal; n]);
        };

        // What earlier attempts left.
        let ids: Vec<String> = evs.iter().map(|e| e.event.event_id.to_string()).collect();
        let entries = ledger::entries(&self.pool, tenant, &ids).await?;
        let (done, unknown, todo) = sort_by_ledger(&ids, &entries);
        let mut b = Batch { tenant, evs, out: vec![None; n], done };

        if !unknown.is_empty() || !todo.is_empty() {
            self.write_in_org(&mut b, &connection, &unknown, todo).await?;
        }

        self.announce(&mut b).await?;
        let outcomes: Vec<Outcome> = b
            .out
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| verdict::internal(WriterCode::NotHandled, "the event was not handled in its batch"))
            })
            .collect();
        count_retried(outcomes.iter().filter(|o| matches!(o, Outcome::Retry { .. } | Outcome::Wait { .. })).count());
        Ok(outcomes)
    }

    /// Stages 2 to 4 in the tenant's org, for the events with work left; the
    /// calls the batch made are counted, and a spent allowance pauses the
    /// tenant.
    async fn write_in_org(
        &self,
        b: &mut Batch<'_>,
        connection: &fa_store::tenant::TenantConnection,
        unknown: &[Unknown],
        todo: Vec<usize>,
    ) -> anyhow::Result<()> {
        let tenant = b.tenant;
        match Org::open(tenant, self.tokens.clone(), self.http.clone(), &self.api_version).await {
            Ok(mut org) => {
                self.write_with(b, connection, &mut org, unknown, todo).await?;
                metrics::counter!("fa_activity_salesforce_calls_total", "service" => SERVICE)
                    .increment(u64::from(org.calls()));
                if let Some(usage) = org.spent() {
                    self.pauses.pause(tenant, &format!("api-usage={}/{}", usage.used, usage.max));
                }
            }
            Err(failure) => {
                if let Failure::Pause(reason) = &failure {
                    self.pauses.pause(tenant, reason);
                }
                let outcome = verdict::from_failure(&failure);
                for u in unknown {
                    b.out[u.k] = Some(outcome.clone());
                }
                for k in &todo {
                    b.out[*k] = Some(outcome.clone());
                }
            }
        }
        Ok(())
    }

    /// Stages 2 to 4 with the org open.
    async fn write_with(
        &self,
        b: &mut Batch<'_>,
        connection: &fa_store::tenant::TenantConnection,
        org: &mut Org,
        unknown: &[Unknown],
        mut todo: Vec<usize>,
    ) -> anyhow::Result<()> {
        let user_ids: Vec<String> =
            b.evs.iter().map(|e| e.event.user.id.clone()).collect::<HashSet<_>>().into_iter().collect();
        let owners = fa_store::tenant::user_links(&self.pool, b.tenant, &user_ids).await?;
        let connection_user = connection.salesforce_user_id.as_deref().and_then(|u| SalesforceId::new(u).ok());

        // Attempts whose outcome is unknown: did their Task get created?
        if !unknown.is_empty() {
            todo.extend(self.settle_unknown(b, org, unknown, &owners).await?);
        }
        if todo.is_empty() {
            return Ok(());
        }

        // Where each Task goes, and who owns it.
        let plans = self.plan(b, connection, org, todo, &owners, connection_user.as_ref()).await?;
        self.create_tasks(b, org, plans, connection_user.as_ref()).await
    }

    /// Settles the attempts of unknown outcome with one SOQL on `CallObject`:
    /// a Task found is recorded in the ledger, to be announced. Returns the
    /// events no Task was found for, to be written now.
    async fn settle_unknown(
        &self,
        b: &mut Batch<'_>,
        org: &mut Org,
        unknown: &[Unknown],
        owners: &HashMap<String, String>,
    ) -> anyhow::Result<Vec<usize>> {
        let (tenant, evs) = (b.tenant, b.evs);
        let ids: Vec<String> = unknown.iter().map(|u| evs[u.k].event.event_id.to_string()).collect();
        let found = match existing_tasks(org, &ids).await {
            Ok(found) => found,
            Err(failure) => {
                self.note_pause(tenant, &failure);
                let outcome = verdict::from_query_failure(&failure);
                for u in unknown {
                    b.out[u.k] = Some(outcome.clone());
                }
                return Ok(Vec::new());
            }
        };
        let mut todo = Vec::new();
        let mut settled = Vec::new();
        for u in unknown {
            let ev = &evs[u.k];
            let Some(row) = found.get(ev.event.event_id.as_str()) else {
                todo.push(u.k);
                continue;
            };
            // A Task exists: never write another, whatever it
            // carries now.
            match earlier_task(ev, u, row, owners) {
                Some(task) => {
                    tracing::info!(tenant_id = tenant, event_id = %ev.event.event_id, task_id = %task.task_id,
                        "an earlier attempt had created the Task; not writing another");
                    settled.push(task.clone());
                    b.done.push(Done { k: u.k, task, linked: u.linked, again: false });
                }
                None => {
                    b.out[u.k] = Some(verdict::internal(
                        WriterCode::TaskUnreadable,
                        "a Task with this event's CallObject exists but cannot be read back",
                    ));
                }
            }
        }
        ledger::written(&self.pool, tenant, &settled).await?;
        Ok(todo)
    }

    /// Stage 3 for the events at `todo`: where each Task goes
    /// ([`resolve`]) and who owns it (the agent's linked Salesforce user,
    /// else the connection's own).
    async fn plan(
        &self,
        b: &mut Batch<'_>,
        connection: &fa_store::tenant::TenantConnection,
        org: &mut Org,
        todo: Vec<usize>,
        owners: &HashMap<String, String>,
        connection_user: Option<&SalesforceId>,
    ) -> anyhow::Result<Vec<Plan>> {
        let (tenant, evs) = (b.tenant, b.evs);
        let events: Vec<&AssistCompletedV1> = todo.iter().map(|k| &evs[*k].event).collect();
        let ctx = resolve::Context { pool: &self.pool, tenant, connection, writer: &self.name };
        let resolutions = resolve::resolve(&ctx, org, &events).await?;
        let mut plans = Vec::new();
        for (k, resolution) in todo.into_iter().zip(resolutions) {
            let event = &evs[k].event;
            match resolution {
                Resolution::Stop(outcome) => {
                    if let Outcome::Wait { failure, .. } = &outcome {
                        self.pauses.pause(tenant, &failure.message);
                    }
                    b.out[k] = Some(outcome);
                }
                Resolution::Found { target, account, linked } => {
                    let linked_user = owners.get(&event.user.id).and_then(|u| SalesforceId::new(u.as_str()).ok());
                    let (owner, fallback) = match (linked_user, connection_user) {
                        (Some(user), _) => (user, false),
                        (None, Some(own)) => {
                            fallback_owner(tenant, event, "not_linked");
                            (own.clone(), true)
                        }
                        (None, None) => {
                            b.out[k] = Some(verdict::internal(
                                WriterCode::ConnectionIncomplete,
                                "the connection has no Salesforce user of its own yet; register it again",
                            ));
                            continue;
                        }
                    };
                    plans.push(Plan { k, target, account, linked, owner, fallback });
                }
            }
        }
        Ok(plans)
    }

    /// Stage 4: ledger, one Collections call, each result on its own; an
    /// inactive owner is replaced by the connection's user once.
    async fn create_tasks(
        &self,
        b: &mut Batch<'_>,
        org: &mut Org,
        mut plans: Vec<Plan>,
        connection_user: Option<&SalesforceId>,
    ) -> anyhow::Result<()> {
        let mut second_try = false;
        while !plans.is_empty() {
            let begun = self.begin_attempts(b, &mut plans).await?;
            let records = self.task_records(b.evs, &plans);
            let mut round = Round::default();
            for (chunk, records) in plans.chunks(200).zip(records.chunks(200)) {
                match org.create_records(records).await {
                    Ok(created) => {
                        for (p, result) in chunk.iter().zip(created.results) {
                            self.task_result(b, p, result, &begun, connection_user, &mut round);
                        }
                    }
                    Err(failure) => self.chunk_failed(b, chunk, &failure, &mut round),
                }
            }
            self.record_round(b.tenant, &round).await?;
            if second_try {
                for p in round.again {
                    b.out[p.k] = Some(verdict::rejected(
                        "INACTIVE_OWNER_OR_USER",
                        "the connection's own Salesforce user is inactive; register the connection with an active user",
                    ));
                }
                break;
            }
            second_try = true;
            plans = round.again;
        }
        Ok(())
    }

    /// Marks the plans' attempts pending in the ledger, before the call that
    /// creates their Tasks. A plan whose event another attempt began moments
    /// ago is dropped and its event retried. Returns each event's attempts.
    async fn begin_attempts(&self, b: &mut Batch<'_>, plans: &mut Vec<Plan>) -> anyhow::Result<HashMap<String, u32>> {
        let evs = b.evs;
        let attempts: Vec<Attempt> = plans
            .iter()
            .map(|p| Attempt {
                event_id: evs[p.k].event.event_id.to_string(),
                target: p.target.clone(),
                owner: p.owner.clone(),
                fallback: p.fallback,
                linked: p.linked,
            })
            .collect();
        let begun = ledger::begin(&self.pool, b.tenant, &self.name, &attempts).await?;
        plans.retain(|p| {
            let mine = begun.contains_key(evs[p.k].event.event_id.as_str());
            if !mine {
                b.out[p.k] = Some(Outcome::Retry {
                    failure: Refusal::new(
                        WriterCode::AttemptInFlight,
                        "an attempt at this event's Task began moments ago; its outcome is awaited",
                    ),
                    after: Some(ledger::BUSY_FOR),
                });
            }
            mine
        });
        Ok(begun)
    }

    /// The Tasks to create, one per plan, in order.
    fn task_records(&self, evs: &[Ev<'_>], plans: &[Plan]) -> Vec<NewRecord> {
        plans
            .iter()
            .map(|p| {
                let mut fields = task::task_fields(&evs[p.k].event, &p.target, &p.owner, &self.zone);
                // The person and their company: a Contact's Task is
                // related to the Contact's Account (a Lead's may not be).
                if p.target.object == SObject::Contact
                    && let Some(account) = &p.account
                {
                    fields.insert("WhatId".to_owned(), serde_json::Value::from(account.as_str()));
                }
                NewRecord { object: "Task".to_owned(), fields }
            })
            .collect()
    }

    /// A Collections call that failed as a whole: each Task of its chunk
    /// takes the failure's outcome.
    fn chunk_failed(&self, b: &mut Batch<'_>, chunk: &[Plan], failure: &Failure, round: &mut Round) {
        // A passing failure of the write leaves its outcome
        // unknown: the ledger stays pending and the next
        // attempt settles it. Anything else created nothing.
        if !matches!(failure, Failure::Transient(_)) {
            round.not_created.extend(chunk.iter().map(|p| b.evs[p.k].event.event_id.to_string()));
        }
        self.note_pause(b.tenant, failure);
        let outcome = verdict::from_failure(failure);
        for p in chunk {
            b.out[p.k] = Some(outcome.clone());
        }
    }

    /// Salesforce's answer for one Task: created (for the ledger and the
    /// announcements), or refused ([`Writer::task_refused`]).
    fn task_result(
        &self,
        b: &mut Batch<'_>,
        p: &Plan,
        result: Result<String, ItemError>,
        begun: &HashMap<String, u32>,
        connection_user: Option<&SalesforceId>,
        round: &mut Round,
    ) {
        let event = &b.evs[p.k];
        let event_id = event.event.event_id.to_string();
        match result {
            Ok(id) => match SalesforceId::new(id) {
                Ok(task_id) => {
                    let attempts = begun.get(&event_id).copied().unwrap_or(1).max(event.message.attempt);
                    let task = WrittenTask {
                        event_id,
                        task_id,
                        target: p.target.clone(),
                        owner: p.owner.clone(),
                        fallback: p.fallback,
                        attempts,
                        written_at: OffsetDateTime::now_utc(),
                        linked: p.linked,
                    };
                    round.written.push(task.clone());
                    b.done.push(Done { k: p.k, task, linked: p.linked, again: false });
                }
                Err(e) => {
                    b.out[p.k] = Some(verdict::internal(
                        WriterCode::UnreadableTaskId,
                        &format!("Salesforce answered an unreadable Task id: {e}"),
                    ));
                }
            },
            Err(item) => {
                round.not_created.push(event_id);
                if let Some(outcome) = self.task_refused(b.tenant, event, p, &item, connection_user, round) {
                    b.out[p.k] = Some(outcome);
                }
            }
        }
    }

    /// What becomes of a Task Salesforce refused: none yet when an inactive
    /// owner is replaced by the connection's user for the next round; a
    /// retry when its record went away; else as Salesforce's error says.
    fn task_refused(
        &self,
        tenant: &str,
        event: &Ev<'_>,
        p: &Plan,
        item: &ItemError,
        connection_user: Option<&SalesforceId>,
        round: &mut Round,
    ) -> Option<Outcome> {
        if item.code == ErrorCode::InactiveOwnerOrUser
            && !p.fallback
            && let Some(own) = connection_user
        {
            fallback_owner(tenant, &event.event, "inactive_owner");
            round.again.push(Plan {
                k: p.k,
                target: p.target.clone(),
                account: p.account.clone(),
                linked: p.linked,
                owner: own.clone(),
                fallback: true,
            });
            return None;
        }
        if record_gone(item) && event.message.attempt <= MAX_RESOLVE_AGAIN {
            // The record went away since it was found:
            // find it again, do not fail the event.
            tracing::info!(tenant_id = tenant, event_id = %event.event.event_id, record = %p.target.id,
                "the Task's record is gone from Salesforce; resolving the event again");
            round.gone_customers.push(event.event.customer.id.clone());
            round.gone_records.push(p.target.id.to_string());
            return Some(Outcome::Retry {
                failure: Refusal::new(WriterCode::RecordGone, format!("{}: {}", item.code, item.message)),
                after: Some(Duration::from_secs(1)),
            });
        }
        Some(match item.retry() {
            Retry::Transient | Retry::RefreshToken => verdict::transient(&format!("{}: {}", item.code, item.message)),
            Retry::PauseTenant => {
                self.pauses.pause(tenant, &item.message);
                verdict::from_failure(&Failure::Pause(item.message.clone()))
            }
            Retry::Permanent => {
                tracing::warn!(tenant_id = tenant, event_id = %event.event.event_id, code = %item.code,
                    fields = ?item.fields, "Salesforce refused the Task");
                verdict::rejected(item.code.as_str(), &item.message)
            }
        })
    }

    /// What a round of creates leaves, recorded: the Tasks written, the
    /// attempts that created nothing, the links to records gone.
    async fn record_round(&self, tenant: &str, round: &Round) -> anyhow::Result<()> {
        ledger::written(&self.pool, tenant, &round.written).await?;
        ledger::not_created(&self.pool, tenant, &round.not_created).await?;
        link::forget(&self.pool, tenant, &round.gone_customers).await?;
        link::forget_records(&self.pool, tenant, &round.gone_records).await?;
        Ok(())
    }

    /// Stage 5: ledger and links recorded, messages published with
    /// confirms; an event is done only when its messages are confirmed.
    async fn announce(&self, b: &mut Batch<'_>) -> anyhow::Result<()> {
        let (tenant, evs) = (b.tenant, b.evs);
        let done = std::mem::take(&mut b.done);
        if done.is_empty() {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        let (links, linked_messages) = links_of(evs, &done, now);
        link::record(&self.pool, tenant, &links).await?;
        let linked_results = join_all(linked_messages.iter().map(|m| self.broker.publish(m))).await;
        let failed_links: HashSet<&str> = linked_messages
            .iter()
            .zip(&linked_results)
            .filter(|(_, r)| r.is_err())
            .map(|(m, _)| m.customer_id.as_str())
            .collect();

        let written = written_messages(evs, &done);
        let results = join_all(written.iter().map(|m| self.broker.publish(m))).await;
        for ((d, message), result) in done.iter().zip(&written).zip(results) {
            let ev = &evs[d.k];
            let link_failed = d.linked.is_some() && failed_links.contains(ev.event.customer.id.as_str());
            b.out[d.k] = Some(match result {
                Ok(()) if !link_failed => {
                    count_announced(tenant, ev, d, message, now);
                    Outcome::Done
                }
                Ok(()) => verdict::internal(WriterCode::PublishFailed, "customer.linked was not confirmed"),
                Err(e) => {
                    verdict::internal(WriterCode::PublishFailed, &format!("activity.written was not confirmed: {e}"))
                }
            });
        }
        Ok(())
    }

    fn note_pause(&self, tenant: &str, failure: &Failure) {
        if let Failure::Pause(reason) = failure {
            self.pauses.pause(tenant, reason);
        }
    }
}

/// Each event by what the ledger says of it: its Task already written (to
/// be announced again), an attempt of unknown outcome, or none yet.
fn sort_by_ledger(ids: &[String], entries: &HashMap<String, Entry>) -> (Vec<Done>, Vec<Unknown>, Vec<usize>) {
    let mut done: Vec<Done> = Vec::new();
    let mut unknown: Vec<Unknown> = Vec::new();
    let mut todo: Vec<usize> = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        match entries.get(id) {
            Some(Entry::Written(task)) => done.push(Done { k, task: task.clone(), linked: task.linked, again: true }),
            Some(Entry::Pending { attempts, asked, linked }) => {
                unknown.push(Unknown { k, attempts: *attempts, asked: asked.clone(), linked: *linked })
            }
            None => todo.push(k),
        }
    }
    (done, unknown, todo)
}

/// The Task an earlier attempt at `ev` created, found as `row`: as read
/// back, else as the attempt asked for it.
fn earlier_task(ev: &Ev<'_>, u: &Unknown, row: &TaskRow, owners: &HashMap<String, String>) -> Option<WrittenTask> {
    let attempts = u.attempts.max(ev.message.attempt);
    row.written(&ev.event, attempts, owners, u.linked).or_else(|| {
        let (target, owner, fallback) = u.asked.clone()?;
        Some(WrittenTask {
            event_id: ev.event.event_id.to_string(),
            task_id: SalesforceId::new(row.id.clone()).ok()?,
            target,
            owner,
            fallback,
            attempts,
            written_at: OffsetDateTime::now_utc(),
            linked: u.linked,
        })
    })
}

/// The links the Tasks made, and one `customer.linked` per customer.
fn links_of(evs: &[Ev<'_>], done: &[Done], now: OffsetDateTime) -> (Vec<link::Link>, Vec<CustomerLinkedV1>) {
    let mut links = Vec::new();
    let mut announced = HashSet::new();
    let mut linked_messages = Vec::new();
    for d in done {
        if let Some(how) = d.linked {
            let customer = evs[d.k].event.customer.id.clone();
            links.push(link::Link { customer_id: customer.clone(), record: d.task.target.clone(), how });
            if announced.insert(customer.clone()) {
                linked_messages.push(CustomerLinkedV1 {
                    tenant_id: evs[d.k].event.tenant_id.clone(),
                    customer_id: customer,
                    salesforce: d.task.target.clone(),
                    how,
                    linked_at: now,
                });
            }
        }
    }
    (links, linked_messages)
}

/// One `activity.written` per Task.
fn written_messages(evs: &[Ev<'_>], done: &[Done]) -> Vec<ActivityWrittenV1> {
    done.iter()
        .map(|d| ActivityWrittenV1 {
            tenant_id: evs[d.k].event.tenant_id.clone(),
            event_id: evs[d.k].event.event_id.clone(),
            task_id: d.task.task_id.clone(),
            target: d.task.target.clone(),
            owner: TaskOwner { salesforce_user_id: d.task.owner.clone(), fallback: d.task.fallback },
            written_at: d.task.written_at,
            attempts: std::num::NonZeroU32::new(d.task.attempts).unwrap_or(std::num::NonZeroU32::MIN),
        })
        .collect()
}

/// An event whose messages are confirmed, counted; a Task new in this
/// batch (not a redelivery's) also has its latency observed and is logged.
fn count_announced(tenant: &str, ev: &Ev<'_>, d: &Done, message: &ActivityWrittenV1, now: OffsetDateTime) {
    let outcome = if d.again { "duplicate" } else { "written" };
    metrics::counter!("fa_activity_events_total", "service" => SERVICE, "outcome" => outcome).increment(1);
    if !d.again {
        metrics::counter!("fa_activity_tasks_total", "service" => SERVICE, "outcome" => "written").increment(1);
        observe_latency(ev, now);
        tracing::info!(tenant_id = tenant, event_id = %message.event_id, task_id = %message.task_id,
            object = %message.target.object, record = %message.target.id, how = ?d.linked,
            fallback = message.owner.fallback, "Task written");
    }
}

/// A Task of an earlier attempt, as `CallObject` found it.
#[derive(Deserialize)]
struct TaskRow {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "CallObject")]
    call_object: Option<String>,
    #[serde(rename = "WhoId")]
    who: Option<String>,
    #[serde(rename = "WhatId")]
    what: Option<String>,
    #[serde(rename = "OwnerId")]
    owner: Option<String>,
}

impl TaskRow {
    fn written(
        &self,
        event: &AssistCompletedV1,
        attempts: u32,
        owners: &HashMap<String, String>,
        linked: Option<LinkMethod>,
    ) -> Option<WrittenTask> {
        let target = self
            .who
            .as_deref()
            .and_then(|w| resolve::reference(w, SObject::Contact))
            .or_else(|| self.what.as_deref().and_then(|w| resolve::reference(w, SObject::Account)))?;
        let owner = SalesforceId::new(self.owner.clone()?).ok()?;
        let fallback = owners
            .get(&event.user.id)
            .is_none_or(|linked| SalesforceId::new(linked.as_str()).ok().as_ref() != Some(&owner));
        Some(WrittenTask {
            event_id: event.event_id.to_string(),
            task_id: SalesforceId::new(self.id.clone()).ok()?,
            target,
            owner,
            fallback,
            attempts,
            written_at: OffsetDateTime::now_utc(),
            linked,
        })
    }
}

/// The Tasks that exist for `event_ids`, by event id: one SOQL on
/// `CallObject` (filterable) for the whole batch.
async fn existing_tasks(org: &mut Org, event_ids: &[String]) -> Result<HashMap<String, TaskRow>, Failure> {
    let mut found = HashMap::new();
    let terms: Vec<resolve::Term> = event_ids.iter().map(|id| resolve::Term::new("CallObject", id)).collect();
    for chunk in resolve::chunks(terms) {
        let soql = format!(
            "SELECT Id, CallObject, WhoId, WhatId, OwnerId FROM Task WHERE {} ORDER BY CreatedDate",
            resolve::condition(&chunk)
        );
        let rows: Vec<TaskRow> = org.query(&soql).await?;
        for row in rows {
            if let Some(event_id) = row.call_object.clone() {
                // The first Task wins, should a second ever exist.
                found.entry(event_id).or_insert(row);
            }
        }
    }
    Ok(found)
}

/// How many attempts may resolve an event again because its record went
/// away; past that, Salesforce's refusal stands.
const MAX_RESOLVE_AGAIN: u32 = 5;

/// Salesforce says the Task's record went away (deleted, or a Lead
/// converted) between finding it and writing the Task; a bad reference in
/// another field (`OwnerId`) is not that.
fn record_gone(item: &fa_salesforce::ItemError) -> bool {
    let names_target = item.fields.is_empty() || item.fields.iter().any(|f| f == "WhoId" || f == "WhatId");
    match item.code {
        ErrorCode::EntityIsDeleted => true,
        ErrorCode::InvalidCrossReferenceKey => names_target,
        _ => item.code.as_str() == "CANNOT_UPDATE_CONVERTED_LEAD",
    }
}

fn fallback_owner(tenant: &str, event: &AssistCompletedV1, reason: &'static str) {
    let why = match reason {
        "inactive_owner" => "the agent's linked Salesforce user is inactive",
        _ => "the agent has no linked Salesforce user",
    };
    tracing::info!(tenant_id = tenant, event_id = %event.event_id, user_id = %event.user.id, reason,
        "{why}; the connection's own user owns the Task");
    metrics::counter!("fa_activity_owner_fallbacks_total", "service" => SERVICE, "reason" => reason).increment(1);
}

/// Every series of the writer's counters, at zero: a series that appears
/// with its first event hides that event from `increase()` and `rate()`,
/// and so from the alerts that read them.
pub fn zero_counters() {
    for outcome in ["written", "duplicate", "retried", "dead_lettered"] {
        metrics::counter!("fa_activity_events_total", "service" => SERVICE, "outcome" => outcome).absolute(0);
    }
    metrics::counter!("fa_activity_tasks_total", "service" => SERVICE, "outcome" => "written").absolute(0);
    for code in ActivityFailureCode::ALL {
        metrics::counter!("fa_activity_tasks_total", "service" => SERVICE, "outcome" => "failed", "code" => code.as_str())
            .absolute(0);
    }
    for reason in ["not_linked", "inactive_owner"] {
        metrics::counter!("fa_activity_owner_fallbacks_total", "service" => SERVICE, "reason" => reason).absolute(0);
    }
    metrics::counter!("fa_activity_claims_waited_total", "service" => SERVICE).absolute(0);
}

fn count_retried(n: usize) {
    if n > 0 {
        metrics::counter!("fa_activity_events_total", "service" => SERVICE, "outcome" => "retried").increment(n as u64);
    }
}

/// Publish-to-written latency: from the AMQP timestamp (Front Agent's
/// publish) and from the event's `occurred_at`.
fn observe_latency(ev: &Ev<'_>, now: OffsetDateTime) {
    if let Some(published) = ev.message.properties.timestamp()
        && let Some(published) = UNIX_EPOCH.checked_add(Duration::from_secs(*published))
        && let Ok(age) = SystemTime::now().duration_since(published)
    {
        metrics::histogram!("fa_activity_write_latency_seconds", "service" => SERVICE, "from" => "published")
            .record(age.as_secs_f64());
    }
    let since = (now - ev.event.occurred_at).as_seconds_f64();
    if since >= 0.0 {
        metrics::histogram!("fa_activity_write_latency_seconds", "service" => SERVICE, "from" => "occurred")
            .record(since);
    }
}
