//! Import runs (docs/behaviour.md §3): read each object oldest change first,
//! publish `customer.upsert` for each record, write what the broker
//! confirmed into the customer index (see [`crate::index`]) and move the
//! watermark past it, stop at the per-run cap and go on with `catch_up`
//! runs until the tenant is caught up.
//!
//! Streaming: while one page is published, the next ones are already being
//! read (each asked for as soon as the cursor's `nextRecordsUrl` is known);
//! at most five pages are in memory, whatever the number of records: one
//! published, two waiting, one being mapped, one being read. A catch-up
//! run continues the cursor of the run before it in the same process, so
//! the pipeline never drains between runs.
//!
//! Writing: once a batch is confirmed, its index entries, its watermark
//! and the run's counts are written while the next batch is published
//! (and a run's row and `import.completed` while the next run's first
//! batch is): those writes take about as long as the publishing itself.
//! They run one after another in the order handed over ([`Behind`]), each
//! only once the one before it succeeded, so the watermark still moves only
//! forward, only past confirmed records already in the index; at most one
//! batch is waiting to be written (the next batch's publishing waits for
//! it to end), a failed write stops the run after that batch, and nothing
//! is left being written when the run gives up the tenant's lock.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use fa_amqp::Broker;
use fa_messages::{
    CustomerRemovedV1, CustomerUpsertV1, ErrorDetail, ImportCompletedV1, ImportReason, ImportStatus, ObjectCounts,
    RemovalReason, SObject, SalesforceId, SalesforceRef, TenantId,
};
use fa_salesforce::ApiUsage;
use fa_store::customer_index;
use fa_tokens::TokenClient;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};
use tracing::Instrument as _;

use crate::{
    index,
    lock::{self, TenantLock},
    mapping::{self, Mapped, Seen},
    org::{self, Failure, Org, PageRequest, describe_usage},
    purged, query, removal, schedule,
    watermark::{self, Fate, Resume, Stamped, Watermark},
};

/// A record read and already mapped (in the task that fetched its page, so
/// mapping, phone normalisation included, runs beside publishing); the run
/// id is filled in when it is published.
struct Prepared {
    modified_at: OffsetDateTime,
    id: String,
    object: SObject,
    action: Action,
}

/// What the run does with a record read.
enum Action {
    /// A live record: publish `customer.upsert`.
    Upsert(CustomerUpsertV1),
    /// A live record without a name: counted as skipped.
    NoName,
    /// A live record whose row could not be mapped: skipped, with a warning.
    Unmappable(mapping::MappingError),
    /// Gone from Salesforce; whether Front Agent must hear of it is decided
    /// per batch, against the customer index ([`Importer::decide_removals`]).
    Gone { reason: RemovalReason, successor: Option<SalesforceRef> },
    /// Gone, and Front Agent holds it: publish `customer.removed`.
    Remove(CustomerRemovedV1),
    /// Gone, and never Front Agent's (first seen gone): nothing to say, not
    /// counted; the watermark still moves past it.
    Unheld,
}

impl Prepared {
    fn new(tenant: &TenantId, seen: Seen) -> Self {
        let Seen { row, life } = seen;
        let (modified_at, id, object) = (row.modified_at(), row.id().to_owned(), row.object());
        let (fate, bad_successor) = life.fate_without_bad_successor(object);
        if let Some(e) = bad_successor {
            tracing::warn!(tenant_id = %tenant, %object, record_id = %id, error = %e,
                "a record left Salesforce naming a successor that is no id; announced without one");
        }
        let action = match fate {
            removal::Fate::Gone { reason, successor } => Action::Gone { reason, successor },
            removal::Fate::Live => match mapping::map_owned(tenant, "", row) {
                Ok(Mapped::Customer(message)) => Action::Upsert(message),
                Ok(Mapped::NoName) => Action::NoName,
                Err(e) => Action::Unmappable(e),
            },
        };
        Self { modified_at, id, object, action }
    }

    /// A record found gone outside the cursor (deleted list, reconciliation).
    fn removed(message: CustomerRemovedV1) -> Self {
        Self {
            modified_at: message.source.modified_at,
            id: message.source.id.as_str().to_owned(),
            object: message.source.object,
            action: Action::Remove(message),
        }
    }

    /// The message to publish, if the record has one.
    fn message(&self) -> Option<Outgoing<'_>> {
        match &self.action {
            Action::Upsert(message) => Some(Outgoing::Upsert(message)),
            Action::Remove(message) => Some(Outgoing::Removed(message)),
            _ => None,
        }
    }
}

/// A message of a batch, in read order.
#[derive(Clone, Copy)]
enum Outgoing<'m> {
    Upsert(&'m CustomerUpsertV1),
    Removed(&'m CustomerRemovedV1),
}

impl<'m> Outgoing<'m> {
    fn upsert(self) -> Option<&'m CustomerUpsertV1> {
        match self {
            Self::Upsert(message) => Some(message),
            Self::Removed(_) => None,
        }
    }

    fn removed(self) -> Option<&'m CustomerRemovedV1> {
        match self {
            Self::Removed(message) => Some(message),
            Self::Upsert(_) => None,
        }
    }

    fn same_kind(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl Stamped for Prepared {
    fn modified_at(&self) -> OffsetDateTime {
        self.modified_at
    }
    fn id(&self) -> &str {
        &self.id
    }
}

/// A page: its records prepared, where it goes on, the allowance it reported.
struct Page {
    records: Vec<Prepared>,
    next_records_url: Option<String>,
    usage: Option<ApiUsage>,
}

/// How the importer runs, from its configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `FA_SF_IMPORT_MAX_RECORDS_PER_RUN`.
    pub max_records_per_run: u64,
    /// `FA_SF_IMPORT_LOOKBACK`.
    pub lookback: Duration,
    /// `FA_SF_IMPORT_INTERVAL`.
    pub interval: Duration,
    /// `FA_SF_SALESFORCE_API_VERSION`.
    pub api_version: String,
    /// How far before the watermark a fresh query re-reads.
    pub overlap: Duration,
    /// How long a tenant pauses for its allowance before the next look.
    pub pause_for: Duration,
    /// Waits between passing Salesforce failures within a run.
    pub backoff: Arc<[Duration]>,
}

/// Everything a run needs.
#[derive(Clone)]
pub struct Importer {
    /// The database.
    pub pool: PgPool,
    /// Where `customer.upsert` and `import.completed` go.
    pub broker: Broker,
    /// Tokens from the token-broker.
    pub tokens: TokenClient,
    /// For Salesforce.
    pub http: reqwest::Client,
    /// From the configuration.
    pub settings: Arc<Settings>,
    /// Cancelled on SIGTERM: runs stop at the next page boundary.
    pub stop: CancellationToken,
}

/// What became of a request to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Runs happened (successful or not: their rows and messages say).
    Ran,
    /// Another run of the tenant holds the lock.
    Busy,
    /// The tenant has no connection.
    NotConnected,
    /// The tenant is paused for its API allowance.
    Paused,
}

/// The tenant's connection as the importer needs it.
struct Connection {
    objects: Vec<SObject>,
    organization_id: String,
}

async fn connection(pool: &PgPool, tenant: &TenantId) -> Result<Option<Connection>, sqlx::Error> {
    let connection = fa_store::tenant::connection(pool, tenant.as_str()).await?;
    Ok(connection.map(|c| Connection {
        objects: c.objects.iter().filter_map(|o| o.parse().ok()).collect(),
        organization_id: c.organization_id.unwrap_or_default(),
    }))
}

/// How one run ended.
enum End {
    CaughtUp,
    MorePending,
    Paused(String),
    Failed(Failure),
    PublishFailed(String),
}

impl Importer {
    /// Runs the tenant now (and its catch-up runs), unless a run of it is
    /// already going on somewhere, or it is paused and the reason is not a
    /// manual request (which re-checks at once).
    pub async fn request(&self, tenant: &TenantId, reason: ImportReason) -> anyhow::Result<Started> {
        let Some(connection) = connection(&self.pool, tenant).await? else { return Ok(Started::NotConnected) };
        if reason == ImportReason::Manual {
            schedule::resume(&self.pool, tenant).await?;
        } else if schedule::paused(&self.pool, tenant).await? {
            tracing::info!(tenant_id = %tenant, %reason, "the tenant is paused for its API allowance; not running now");
            return Ok(Started::Paused);
        }
        let Some(mut lock) = lock::try_lock(&self.pool, tenant).await? else { return Ok(Started::Busy) };
        let outcome = async {
            self.close_interrupted(tenant).await?;
            self.sequence(tenant, &connection, reason, &mut lock).await
        }
        .await;
        lock.release().await;
        outcome.map(|()| Started::Ran)
    }

    /// Runs left `running` by a process that died are marked failed
    /// (`interrupted`); the watermark already says where to resume.
    async fn close_interrupted(&self, tenant: &TenantId) -> anyhow::Result<()> {
        let rows: Vec<(String, OffsetDateTime, serde_json::Value)> = sqlx::query_as(
            "UPDATE import_runs SET status = 'failed', finished_at = now(), error = $2
             WHERE tenant_id = $1 AND status = 'running' RETURNING run_id, started_at, objects",
        )
        .bind(tenant.as_str())
        .bind(serde_json::json!({ "code": fa_messages::IMPORT_INTERRUPTED, "message": INTERRUPTED_MESSAGE }))
        .fetch_all(&self.pool)
        .await?;
        for (run_id, started_at, objects) in rows {
            tracing::warn!(tenant_id = %tenant, run_id, "a run was interrupted (the process stopped); resuming from the last confirmed record");
            let message = ImportCompletedV1 {
                tenant_id: tenant.clone(),
                run_id,
                status: ImportStatus::Failed,
                started_at,
                finished_at: OffsetDateTime::now_utc(),
                objects: serde_json::from_value(objects).unwrap_or_default(),
                more_pending: true,
                error: Some(ErrorDetail {
                    code: fa_messages::IMPORT_INTERRUPTED.to_owned(),
                    message: INTERRUPTED_MESSAGE.to_owned(),
                    salesforce_error_code: None,
                }),
            };
            self.broker.publish(&message).await?;
            metrics::counter!("fa_import_runs_total", "outcome" => ImportStatus::Failed.as_str()).increment(1);
        }
        Ok(())
    }

    /// One run, then its catch-up runs while more is pending.
    async fn sequence(
        &self,
        tenant: &TenantId,
        connection: &Connection,
        reason: ImportReason,
        lock: &mut TenantLock,
    ) -> anyhow::Result<()> {
        let org = Org::new(
            tenant,
            self.tokens.clone(),
            self.http.clone(),
            &self.settings.api_version,
            self.stop.clone(),
            self.settings.backoff.clone(),
        );
        let mut readers: HashMap<SObject, Reader> = HashMap::new();
        let mut behind = Behind::default();
        let outcome = self.runs(tenant, connection, &org, reason, &mut readers, lock, &mut behind).await;
        // Whatever happened, what is still being written lands while the
        // run still holds the tenant's lock.
        let written = behind.wait().await;
        outcome.and(written)
    }

    /// The runs of [`Self::sequence`]. Each run's end (its last batch's
    /// writes, its row, its `import.completed`) is written behind the next
    /// run's first batch while more is pending.
    #[allow(clippy::too_many_arguments)]
    async fn runs(
        &self,
        tenant: &TenantId,
        connection: &Connection,
        org: &Org,
        mut reason: ImportReason,
        readers: &mut HashMap<SObject, Reader>,
        lock: &mut TenantLock,
        behind: &mut Behind,
    ) -> anyhow::Result<()> {
        loop {
            let run_id = format!("run_{}", uuid::Uuid::now_v7().simple());
            let started = Instant::now();
            let started_at = OffsetDateTime::now_utc();
            sqlx::query("INSERT INTO import_runs (run_id, tenant_id, reason, status, started_at) VALUES ($1, $2, $3, 'running', $4)")
                .bind(&run_id)
                .bind(tenant.as_str())
                .bind(reason.as_str())
                .bind(started_at)
                .execute(&self.pool)
                .await?;
            schedule::running(&self.pool, tenant).await?;
            let span = tracing::info_span!("import.run", tenant_id = %tenant, run_id = %run_id, %reason);
            tracing::info!(parent: &span, "import run started");

            let mut run =
                RunState { run_id: run_id.clone(), counts: Vec::new(), budget: self.settings.max_records_per_run };
            let end = self.one_run(tenant, connection, org, readers, &mut run, lock, behind).instrument(span).await?;
            // The run ends here, when its last batch is confirmed: the next
            // one starts after this, though the writes below may still be
            // landing meanwhile.
            let finished_at = OffsetDateTime::now_utc();
            let more = matches!(end, End::MorePending) && !self.stop.is_cancelled();
            let finish = self.clone().finish(tenant.clone(), run, end, started, (started_at, finished_at));
            if more {
                behind.then(finish);
                reason = ImportReason::CatchUp;
            } else {
                behind.wait().await?;
                return finish.await;
            }
        }
    }

    /// Ends a run once its batches are written: its row, its
    /// `import.completed`, the tenant's schedule.
    async fn finish(
        self,
        tenant: TenantId,
        run: RunState,
        end: End,
        started: Instant,
        (started_at, finished_at): (OffsetDateTime, OffsetDateTime),
    ) -> anyhow::Result<()> {
        let run_id = run.run_id;
        let (status, more_pending, error) = match &end {
            End::CaughtUp => (ImportStatus::Succeeded, false, None),
            End::MorePending => (ImportStatus::Succeeded, true, None),
            End::Paused(_) => (ImportStatus::Succeeded, true, None),
            End::Failed(failure) => (ImportStatus::Failed, true, Some(failure_detail(failure))),
            End::PublishFailed(message) => (
                ImportStatus::Failed,
                true,
                Some(ErrorDetail {
                    code: "broker_unavailable".into(),
                    message: message.clone(),
                    salesforce_error_code: None,
                }),
            ),
        };
        sqlx::query(
            "UPDATE import_runs SET status = $2, finished_at = $3, objects = $4, more_pending = $5, error = $6
             WHERE run_id = $1",
        )
        .bind(&run_id)
        .bind(status.as_str())
        .bind(finished_at)
        .bind(serde_json::to_value(&run.counts)?)
        .bind(more_pending)
        .bind(error.as_ref().map(serde_json::to_value).transpose()?)
        .execute(&self.pool)
        .await?;
        let total: u64 = run.counts.iter().map(|c| c.published).sum();
        let completed = ImportCompletedV1 {
            tenant_id: tenant.clone(),
            run_id: run_id.clone(),
            status,
            started_at,
            finished_at,
            objects: run.counts,
            more_pending,
            error: error.clone(),
        };
        let published = self.broker.publish(&completed).await;
        metrics::counter!("fa_import_runs_total", "outcome" => status.as_str()).increment(1);
        metrics::histogram!("fa_import_run_duration_seconds").record(started.elapsed().as_secs_f64());
        let tenant = &tenant;
        match &end {
            End::Paused(why) => {
                schedule::pause(&self.pool, tenant, self.settings.pause_for, why).await?;
                metrics::gauge!("fa_tenant_paused", "service" => crate::SERVICE, "tenant" => tenant.to_string())
                    .set(1.0);
                tracing::warn!(tenant_id = %tenant, run_id, reason = %why, published = total, "paused for the org's API allowance; resuming later");
            }
            End::Failed(_) | End::PublishFailed(_) => {
                let detail = error.as_ref().map(|e| format!("{}: {}", e.code, e.message)).unwrap_or_default();
                tracing::error!(tenant_id = %tenant, run_id, published = total, error = %detail, "import run failed; the next run resumes after the last confirmed record");
                schedule::failed(&self.pool, tenant).await?;
            }
            End::CaughtUp | End::MorePending => {
                metrics::gauge!("fa_tenant_paused", "service" => crate::SERVICE, "tenant" => tenant.to_string())
                    .set(0.0);
                tracing::info!(tenant_id = %tenant, run_id, published = total, more_pending, took_ms = started.elapsed().as_millis() as u64, "import run succeeded");
                schedule::finished(&self.pool, tenant, more_pending, self.settings.interval).await?;
            }
        }
        published?;
        Ok(())
    }

    /// Reads and publishes until the cap, the end of every object, a pause
    /// or a failure; each batch's writes go on behind the next batch.
    #[allow(clippy::too_many_arguments)]
    async fn one_run(
        &self,
        tenant: &TenantId,
        connection: &Connection,
        org: &Org,
        readers: &mut HashMap<SObject, Reader>,
        run: &mut RunState,
        lock: &mut TenantLock,
        behind: &mut Behind,
    ) -> anyhow::Result<End> {
        for &object in &connection.objects {
            // No query after SIGTERM.
            if self.stop.is_cancelled() {
                return Ok(End::Failed(Failure::Stopped));
            }
            let reader = match readers.entry(object) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let watermark = watermark::load(&self.pool, tenant, object, &connection.organization_id).await?;
                    entry.insert(Reader::start(org.clone(), tenant, object, watermark, &self.settings))
                }
            };
            loop {
                if self.stop.is_cancelled() {
                    return Ok(End::Failed(Failure::Stopped));
                }
                if run.budget == 0 {
                    return Ok(End::MorePending);
                }
                let waited = Instant::now();
                // SIGTERM while a page is on its way (a query may take up to
                // two minutes) stops the run now, within the pod's grace.
                let next = tokio::select! {
                    next = reader.next_batch(run.budget) => next,
                    _ = self.stop.cancelled() => return Ok(End::Failed(Failure::Stopped)),
                };
                let batch = match next {
                    Ok(Some(batch)) => batch,
                    // The object is read; a last page that showed the
                    // allowance 90 % used (with nothing left to publish)
                    // still pauses, before any other object is queried.
                    // (Its allowance was not handed out in a batch.)
                    Ok(None) => match org::spent(reader.usage.take()) {
                        Some(usage) => return Ok(End::Paused(describe_usage(usage))),
                        None if reader.looked => break,
                        None => match self.look_for_purged(tenant, connection, org, object, reader, run, behind).await?
                        {
                            Some(end) => return Ok(end),
                            None => break,
                        },
                    },
                    Err(Failure::Pause { reason }) => return Ok(End::Paused(reason)),
                    Err(failure) => return Ok(End::Failed(failure)),
                };
                if !lock.held().await {
                    return Ok(End::Failed(Failure::LockLost));
                }
                let mut batch = batch;
                self.decide_removals(tenant, &connection.organization_id, object, &mut batch, behind).await?;
                let usage = batch.usage;
                let (records, waited) = (batch.rows.len(), waited.elapsed());
                let publishing = Instant::now();
                let (written, failure) = self.publish(tenant, &connection.organization_id, object, batch, run).await?;
                // The previous batch's writes went on while this one was
                // published; they end before this batch's start, so at most
                // one batch waits to be written however slow the database
                // is, and a write that failed fails the run here.
                behind.wait().await?;
                behind.then(written.write());
                tracing::debug!(
                    %object,
                    records,
                    waited_for_page_ms = waited.as_secs_f64() * 1e3,
                    published_ms = publishing.elapsed().as_secs_f64() * 1e3,
                    "batch published"
                );
                if let Some(message) = failure {
                    return Ok(End::PublishFailed(message));
                }
                if let Some(usage) = org::spent(usage) {
                    return Ok(End::Paused(describe_usage(usage)));
                }
            }
        }
        Ok(End::CaughtUp)
    }

    /// Once an object's cursor is read to its end: announces the records
    /// Front Agent holds that were purged before a run saw them deleted
    /// (see [`purged`]), as many as the run's cap allows, and saves where
    /// the look stands once all are confirmed. `Some` when the run ends
    /// here (a failure, a pause, or more found than the cap allows: the
    /// next run looks again, and finds only what is still held).
    #[allow(clippy::too_many_arguments)]
    async fn look_for_purged(
        &self,
        tenant: &TenantId,
        connection: &Connection,
        org: &Org,
        object: SObject,
        reader: &mut Reader,
        run: &mut RunState,
        behind: &mut Behind,
    ) -> anyhow::Result<Option<End>> {
        // The index holds every record confirmed so far.
        behind.wait().await?;
        let organization_id = &connection.organization_id;
        let now = OffsetDateTime::now_utc();
        let found = match purged::look(org, &self.pool, tenant, object, organization_id, reader.queried_at, now).await?
        {
            Ok(found) => found,
            Err(Failure::Pause { reason }) => return Ok(Some(End::Paused(reason))),
            Err(failure) => return Ok(Some(End::Failed(failure))),
        };
        let all = found.gone.len();
        let take = usize::try_from(run.budget).unwrap_or(usize::MAX).min(all);
        if take > 0 {
            let rows =
                found.gone.into_iter().take(take).map(|message| (Prepared::removed(message), Fate::New)).collect();
            let (written, failure) =
                self.publish(tenant, organization_id, object, Batch { rows, usage: None, cursor: false }, run).await?;
            behind.then(written.write());
            if let Some(message) = failure {
                return Ok(Some(End::PublishFailed(message)));
            }
            if take < all {
                return Ok(Some(End::MorePending));
            }
        }
        reader.looked = true;
        let (pool, tenant, organization_id, next) =
            (self.pool.clone(), tenant.clone(), organization_id.clone(), found.next);
        behind.then(
            async move { purged::save(&pool, &tenant, object, &organization_id, &next).await.map_err(Into::into) },
        );
        Ok(None)
    }

    /// Publishes one batch with confirms, in order, many in flight, and
    /// counts what the broker confirmed. Returns what is left to write (the
    /// index entries of the confirmed records and the removals to forget,
    /// then the watermark past the last record confirmed with all before
    /// it, then the run's counts), and why the broker failed part-way, if
    /// it did.
    async fn publish(
        &self,
        tenant: &TenantId,
        organization_id: &str,
        object: SObject,
        batch: Batch,
        run: &mut RunState,
    ) -> anyhow::Result<(Written, Option<String>)> {
        let Batch { mut rows, cursor, .. } = batch;
        for (record, _) in &mut rows {
            match &mut record.action {
                Action::Upsert(message) => message.import_run_id.clone_from(&run.run_id),
                Action::Remove(message) => message.import_run_id.clone_from(&run.run_id),
                _ => {}
            }
        }
        let messages: Vec<Outgoing<'_>> = rows.iter().filter_map(|(record, _)| record.message()).collect();
        // The messages before `unconfirmed` were confirmed, in order.
        let (unconfirmed, failure) = match self.publish_in_order(&messages).await {
            Ok(()) => (usize::MAX, None),
            Err((index, e)) => (index, Some(e)),
        };
        drop(messages);
        let mut tally = Tally::default();
        let (entries, removed_ids) = tally.count(tenant, rows, unconfirmed, cursor);
        let Tally { published, skipped, removed, republished, moved } = tally;
        let counts = match run.counts.iter_mut().find(|c| c.object == object) {
            Some(c) => c,
            None => {
                run.counts.push(ObjectCounts { object, published: 0, skipped: 0, removed: None });
                run.counts.last_mut().ok_or_else(|| anyhow::anyhow!("counts"))?
            }
        };
        counts.published += published;
        counts.skipped += skipped;
        if removed > 0 {
            counts.removed = Some(counts.removed.unwrap_or(0) + removed);
        }
        run.budget = run.budget.saturating_sub(published + skipped + removed);
        metrics::counter!("fa_import_records_total", "object" => object.as_str(), "outcome" => "published")
            .increment(published);
        metrics::counter!("fa_import_records_total", "object" => object.as_str(), "outcome" => "skipped")
            .increment(skipped);
        metrics::counter!("fa_import_records_total", "object" => object.as_str(), "outcome" => "republished")
            .increment(republished);
        let written = Written {
            pool: self.pool.clone(),
            tenant: tenant.clone(),
            organization_id: organization_id.to_owned(),
            object,
            entries,
            removed_ids,
            moved,
            run_id: run.run_id.clone(),
            counts: serde_json::to_value(&run.counts)?,
        };
        Ok((written, failure))
    }

    /// Publishes `messages` in their order with confirms: each stretch of
    /// one message type with many in flight, the next stretch once the one
    /// before it is confirmed (removals are few, so stretches are long).
    /// On failure, the index of the first message not confirmed.
    async fn publish_in_order(&self, messages: &[Outgoing<'_>]) -> Result<(), (usize, String)> {
        let mut start = 0;
        for stretch in messages.chunk_by(Outgoing::same_kind) {
            let sent = match stretch[0] {
                Outgoing::Upsert(_) => {
                    let upserts: Vec<&CustomerUpsertV1> =
                        stretch.iter().copied().filter_map(Outgoing::upsert).collect();
                    self.broker
                        .publish_all(upserts)
                        .await
                        .map_err(|(index, e)| (index, format!("publishing customer.upsert failed: {e}")))
                }
                Outgoing::Removed(_) => {
                    let removals: Vec<&CustomerRemovedV1> =
                        stretch.iter().copied().filter_map(Outgoing::removed).collect();
                    self.broker
                        .publish_all(removals)
                        .await
                        .map_err(|(index, e)| (index, format!("publishing customer.removed failed: {e}")))
                }
            };
            sent.map_err(|(index, e)| (start + index, e))?;
            start += stretch.len();
        }
        Ok(())
    }

    /// Decides, for the records of `batch` found gone, whether Front Agent
    /// holds them (the customer index says): those it holds become
    /// `customer.removed`, the others are passed over. The writes of the
    /// batches before are waited for first, so the index is complete.
    async fn decide_removals(
        &self,
        tenant: &TenantId,
        organization_id: &str,
        object: SObject,
        batch: &mut Batch,
        behind: &mut Behind,
    ) -> anyhow::Result<()> {
        let gone: Vec<String> = batch
            .rows
            .iter()
            .filter(|(record, _)| matches!(record.action, Action::Gone { .. }))
            .map(|(record, _)| record.id.clone())
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        behind.wait().await?;
        let held = customer_index::held(&self.pool, tenant.as_str(), organization_id, object.as_str(), &gone).await?;
        for (record, _) in &mut batch.rows {
            let Action::Gone { reason, successor } = &mut record.action else { continue };
            record.action = match (held.contains_key(&record.id), SalesforceId::new_18(&record.id)) {
                (true, Ok(id)) => Action::Remove(removal::message(
                    tenant,
                    SalesforceRef { object, id },
                    record.modified_at,
                    *reason,
                    successor.take(),
                )),
                _ => Action::Unheld,
            };
        }
        Ok(())
    }
}

/// What a published batch leaves to write.
struct Written {
    pool: PgPool,
    tenant: TenantId,
    organization_id: String,
    object: SObject,
    /// The confirmed records, the overlap too (a version committed late is
    /// new to the index).
    entries: Vec<fa_store::customer_index::IndexedRecord>,
    /// The records whose removal was confirmed: Front Agent no longer holds them.
    removed_ids: Vec<String>,
    /// Past the last new record confirmed with all before it.
    moved: Option<Watermark>,
    run_id: String,
    /// The run's counts so far.
    counts: serde_json::Value,
}

impl Written {
    /// The index first (one statement), then the watermark: should the
    /// index write fail, the watermark stays where it was and the next run
    /// reads these records again, so the index is never behind the
    /// watermark.
    async fn write(self) -> anyhow::Result<()> {
        let writing = Instant::now();
        customer_index::upsert(&self.pool, self.tenant.as_str(), &self.organization_id, &self.entries)
            .await
            .context("writing the customer index")?;
        customer_index::remove(&self.pool, self.tenant.as_str(), self.object.as_str(), &self.removed_ids)
            .await
            .context("forgetting removed records in the customer index")?;
        if let Some(mark) = &self.moved {
            watermark::save(&self.pool, &self.tenant, self.object, &self.organization_id, mark).await?;
        }
        sqlx::query("UPDATE import_runs SET objects = $2 WHERE run_id = $1")
            .bind(&self.run_id)
            .bind(&self.counts)
            .execute(&self.pool)
            .await?;
        tracing::debug!(tenant_id = %self.tenant, object = %self.object, records = self.entries.len(),
            written_ms = writing.elapsed().as_secs_f64() * 1e3, "batch indexed and its watermark saved");
        Ok(())
    }
}

/// Writes of published batches and ended runs, one after another in the
/// order they were handed over, while the run goes on publishing: a write
/// starts only once the one before it succeeded (a failed one stops those
/// after it), so the watermark only moves forward, and only past records
/// already in the index.
#[derive(Default)]
struct Behind {
    last: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Behind {
    /// Writes `next` after everything handed over before it.
    fn then(&mut self, next: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
        let before = self.last.take();
        self.last = Some(tokio::spawn(
            async move {
                if let Some(before) = before {
                    before.await.context("an earlier write stopped")??;
                }
                next.await
            }
            .in_current_span(),
        ));
    }

    /// Waits for every write handed over.
    async fn wait(&mut self) -> anyhow::Result<()> {
        match self.last.take() {
            Some(last) => last.await.context("a write stopped")?,
            None => Ok(()),
        }
    }
}

/// What a batch published, in read order.
#[derive(Default)]
struct Tally {
    published: u64,
    skipped: u64,
    removed: u64,
    republished: u64,
    /// Past the last new record confirmed with all before it.
    moved: Option<Watermark>,
}

impl Tally {
    /// Counts a batch whose messages before `unconfirmed` the broker
    /// confirmed (`usize::MAX`: all), and returns the index entries of the
    /// upserts and the ids of the removals confirmed. The count stops at
    /// the first unconfirmed message, so neither the counts nor the
    /// watermark pass it; only records of the cursor move the watermark.
    fn count(
        &mut self,
        tenant: &TenantId,
        rows: Vec<(Prepared, Fate)>,
        unconfirmed: usize,
        cursor: bool,
    ) -> (Vec<fa_store::customer_index::IndexedRecord>, Vec<String>) {
        let mut entries = Vec::with_capacity(rows.len());
        let mut removed_ids = Vec::new();
        let mut confirmed = 0usize;
        for (record, fate) in rows {
            let mark = Watermark { modified_at: record.modified_at, id: record.id };
            if matches!(record.action, Action::Upsert(_) | Action::Remove(_)) {
                if confirmed == unconfirmed {
                    break;
                }
                confirmed += 1;
            }
            let new = fate == Fate::New;
            match record.action {
                Action::Upsert(message) => {
                    // The overlap too: a version committed late is new to the index.
                    entries.push(index::entry(message));
                    if new {
                        self.published += 1;
                    } else {
                        self.republished += 1;
                    }
                }
                Action::Remove(message) => {
                    metrics::counter!("fa_import_removals_total", "object" => message.source.object.as_str(),
                        "reason" => removal::label(message.reason))
                    .increment(1);
                    tracing::info!(tenant_id = %tenant, object = %message.source.object, record_id = %message.source.id,
                        reason = removal::label(message.reason), successor = ?message.successor.as_ref().map(|s| s.id.as_str()),
                        "customer.removed published");
                    removed_ids.push(mark.id.clone());
                    self.removed += 1;
                }
                Action::NoName => self.skipped += u64::from(new),
                Action::Unmappable(e) => {
                    tracing::warn!(tenant_id = %tenant, object = %record.object, error = %e, "a record could not be mapped; skipped");
                    self.skipped += u64::from(new);
                }
                // Never Front Agent's: nothing to say, nothing to count.
                Action::Unheld | Action::Gone { .. } => {}
            }
            if new && cursor {
                self.moved = Some(mark);
            }
        }
        (entries, removed_ids)
    }
}

const INTERRUPTED_MESSAGE: &str =
    "the run was interrupted (the importer stopped or crashed); the next run resumed after the last confirmed record";

fn failure_detail(failure: &Failure) -> ErrorDetail {
    match failure {
        Failure::Permanent { code, message, salesforce_error_code } => ErrorDetail {
            code: code.clone(),
            message: message.clone(),
            salesforce_error_code: salesforce_error_code.clone(),
        },
        Failure::Exhausted { message } => ErrorDetail {
            code: "salesforce_unavailable".into(),
            message: format!("Salesforce kept failing: {message}; the next run tries again"),
            salesforce_error_code: None,
        },
        Failure::Stopped => ErrorDetail {
            code: fa_messages::IMPORT_INTERRUPTED.into(),
            message: "the importer was stopped (SIGTERM) at a page boundary; the next run resumes after the last confirmed record".into(),
            salesforce_error_code: None,
        },
        Failure::LockLost => ErrorDetail {
            code: fa_messages::IMPORT_INTERRUPTED.into(),
            message: "the run lost its lock (its database connection closed) and stopped, so that two runs of the tenant never overlap; the next run resumes after the last confirmed record".into(),
            salesforce_error_code: None,
        },
        Failure::Pause { reason } => ErrorDetail { code: "paused".into(), message: reason.clone(), salesforce_error_code: None },
    }
}

struct RunState {
    run_id: String,
    counts: Vec<ObjectCounts>,
    budget: u64,
}

/// Records to publish, in read order, and the allowance the page reported.
struct Batch {
    rows: Vec<(Prepared, Fate)>,
    usage: Option<ApiUsage>,
    /// Read by the object's cursor, so the watermark moves past them; not
    /// so for removals a look for purged records found.
    cursor: bool,
}

/// One object's read: the task that reads its pages, and what is decided
/// and not yet published.
struct Reader {
    resume: Resume,
    ready: VecDeque<(Prepared, Fate)>,
    /// Pages in read order; `None` once the last one arrived.
    pages: Option<mpsc::Receiver<Result<Page, Failure>>>,
    /// The allowance of pages not yet handed out in a batch.
    usage: Option<ApiUsage>,
    /// When the cursor's query was sent: what it read is as of then, so the
    /// look for records purged unseen ([`purged`]) ends there.
    queried_at: OffsetDateTime,
    /// Whether this cursor's look for records purged unseen is done.
    looked: bool,
    /// Stops reading when the reader is dropped.
    _reading: AbortOnDropHandle<()>,
}

/// Pages read but not yet taken by the run, beyond the one it publishes and
/// the one being read: what bounds the importer's memory.
const PAGES_AHEAD: usize = 2;

impl Reader {
    /// Starts reading `object` after `watermark` (from the lookback
    /// without one); the first page is requested at once.
    fn start(org: Org, tenant: &TenantId, object: SObject, watermark: Option<Watermark>, settings: &Settings) -> Self {
        let now = OffsetDateTime::now_utc();
        let from = match &watermark {
            Some(w) => w.modified_at - settings.overlap,
            None => now - settings.lookback,
        };
        let (pages, receiver) = mpsc::channel(PAGES_AHEAD);
        let reading = tokio::spawn(read(org, tenant.clone(), PageRequest::QueryAll(query::soql(object, from)), pages));
        Self {
            resume: Resume::new(watermark),
            ready: VecDeque::new(),
            pages: Some(receiver),
            usage: None,
            queried_at: now,
            looked: false,
            _reading: AbortOnDropHandle::new(reading),
        }
    }

    /// Up to `budget` new records (with any overlap before them), or `None`
    /// once the object is read to its end.
    async fn next_batch(&mut self, budget: u64) -> Result<Option<Batch>, Failure> {
        while self.ready.is_empty() {
            let Some(pages) = &mut self.pages else { return Ok(None) };
            let page = match pages.recv().await {
                Some(page) => page?,
                None => return Err(Failure::Exhausted { message: "reading pages stopped unexpectedly".to_owned() }),
            };
            self.usage = page.usage.or(self.usage);
            let more = page.next_records_url.is_some();
            let resume = &mut self.resume;
            self.ready.extend(page.records.into_iter().filter_map(|row| resume.admit(&row).map(|fate| (row, fate))));
            if !more {
                self.pages = None;
            }
        }
        let mut rows = Vec::new();
        let mut new = 0u64;
        while let Some((_, fate)) = self.ready.front() {
            if *fate == Fate::New {
                if new == budget {
                    break;
                }
                new += 1;
            }
            if let Some(entry) = self.ready.pop_front() {
                rows.push(entry);
            }
        }
        Ok(Some(Batch { rows, usage: self.usage.take(), cursor: true }))
    }
}

/// Reads a cursor to its end into `pages`. Each page's successor is asked
/// for as soon as its `nextRecordsUrl` is known, before the page is mapped
/// and while it waits to be published: Salesforce's answer time, not the
/// importer's work, sets the pace. Stops at the first failure (sent on),
/// after a page that shows the org's allowance 90 % used (a pause is sent
/// on), or when the receiver is gone.
async fn read(org: Org, tenant: TenantId, first: PageRequest, pages: mpsc::Sender<Result<Page, Failure>>) {
    let fetch = |request: PageRequest| {
        let org = org.clone();
        AbortOnDropHandle::new(tokio::spawn(async move {
            let asked = Instant::now();
            let page = org.page(&request).await;
            tracing::debug!(tenant_id = %org.tenant(), took_ms = asked.elapsed().as_secs_f64() * 1e3, "page read");
            page
        }))
    };
    let mut next = Some(fetch(first));
    while let Some(fetching) = next.take() {
        let page = match fetching.await {
            Ok(Ok(page)) => page,
            Ok(Err(failure)) => {
                let _ = pages.send(Err(failure)).await;
                return;
            }
            Err(e) => {
                let _ = pages.send(Err(Failure::Exhausted { message: format!("reading a page failed: {e}") })).await;
                return;
            }
        };
        // An org at 90 % of its allowance gets no further call: the run
        // publishes this page and pauses (docs/behaviour.md §5).
        let (usage, spent) = (page.usage, org::spent(page.usage));
        // Decoding and mapping (phone numbers above all) are CPU work: off
        // the async workers, so the publishing goes on. The next page is
        // asked for as soon as the decoding reaches this one's
        // `nextRecordsUrl`, before its rows.
        let (next_url, found) = oneshot::channel();
        let tenant = tenant.clone();
        let mapped = tokio::task::spawn_blocking(move || {
            let mapping = Instant::now();
            let decoded = page.decode::<Seen>(|url| {
                let _ = next_url.send(url.map(str::to_owned));
            });
            let page = decoded.map(|page| Page {
                records: page.records.into_iter().map(|seen| Prepared::new(&tenant, seen)).collect(),
                next_records_url: page.next_records_url,
                usage,
            });
            tracing::debug!(tenant_id = %tenant, mapped_ms = mapping.elapsed().as_secs_f64() * 1e3, "page mapped");
            // A row that is not a record fails the page.
            page.map_err(|error| Failure::Permanent {
                code: "salesforce_rejected".to_owned(),
                message: error.to_string(),
                salesforce_error_code: None,
            })
        });
        // No answer: the page failed to decode, and says why below.
        if let Ok(Some(url)) = found.await
            && spent.is_none()
        {
            next = Some(fetch(PageRequest::More(url)));
        }
        let mapped = mapped.await;
        let page = match mapped {
            Ok(Ok(page)) => page,
            Ok(Err(failure)) => {
                let _ = pages.send(Err(failure)).await;
                return;
            }
            Err(e) => {
                let _ = pages.send(Err(Failure::Exhausted { message: format!("mapping a page failed: {e}") })).await;
                return;
            }
        };
        let more = page.next_records_url.is_some();
        if pages.send(Ok(page)).await.is_err() {
            return;
        }
        if let Some(usage) = spent
            && more
        {
            let _ = pages.send(Err(Failure::Pause { reason: describe_usage(usage) })).await;
            return;
        }
    }
}
