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
//!
//! This module is the run itself (a sequence of runs of one tenant, each
//! object's batches until the cap); its nouns are apart: [`reader`] (an
//! object's pages), [`record`] (a record read and decided), [`publish`]
//! (a batch to the broker), [`tally`] (what the broker confirmed),
//! [`writes`] (what is written behind), [`row`] (the run's row, its
//! `import.completed`, its error codes).

mod publish;
mod reader;
mod record;
mod row;
mod tally;
mod writes;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use fa_amqp::Broker;
use fa_messages::{ImportReason, ObjectCounts, SObject, TenantId};
use fa_tokens::TokenClient;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use self::{
    reader::{Batch, Reader},
    record::Prepared,
    row::End,
    writes::Behind,
};
use crate::{
    lock::{self, TenantLock},
    org::{self, Failure, Org, describe_usage},
    purged, schedule,
    watermark::{self, Fate},
};

/// A run going on: its id, its counts so far, what is left of its cap.
struct RunState {
    run_id: String,
    counts: Vec<ObjectCounts>,
    budget: u64,
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
            self.pool.clone(),
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
            row::start(&self.pool, &run_id, tenant, reason, started_at).await?;
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
            let reader = self.reader(readers, tenant, connection, org, object).await?;
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
                if let Some(end) =
                    self.publish_batch(tenant, connection, object, batch, waited, run, lock, behind).await?
                {
                    return Ok(end);
                }
            }
        }
        Ok(End::CaughtUp)
    }

    /// The object's reader: the one an earlier run of this sequence left
    /// going (a catch-up run goes on with its cursor), or a new one from
    /// the watermark.
    async fn reader<'r>(
        &self,
        readers: &'r mut HashMap<SObject, Reader>,
        tenant: &TenantId,
        connection: &Connection,
        org: &Org,
        object: SObject,
    ) -> anyhow::Result<&'r mut Reader> {
        Ok(match readers.entry(object) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let watermark = watermark::load(&self.pool, tenant, object, &connection.organization_id).await?;
                entry.insert(Reader::start(org.clone(), tenant, object, watermark, &self.settings))
            }
        })
    }

    /// Publishes one batch of the cursor (its removals decided first) and
    /// hands its writes over; `Some` when the run ends after it.
    #[allow(clippy::too_many_arguments)]
    async fn publish_batch(
        &self,
        tenant: &TenantId,
        connection: &Connection,
        object: SObject,
        mut batch: Batch,
        waited: Instant,
        run: &mut RunState,
        lock: &mut TenantLock,
        behind: &mut Behind,
    ) -> anyhow::Result<Option<End>> {
        if !lock.held().await {
            return Ok(Some(End::Failed(Failure::LockLost)));
        }
        self.decide_removals(tenant, &connection.organization_id, object, &mut batch, behind).await?;
        let usage = batch.usage;
        let (records, waited) = (batch.rows.len(), waited.elapsed());
        let publishing = Instant::now();
        let (written, failure) = self.publish(tenant, &connection.organization_id, object, batch, run).await?;
        // The previous batch's writes went on while this one was published;
        // they end before this batch's start, so at most one batch waits to
        // be written however slow the database is, and a write that failed
        // fails the run here.
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
            return Ok(Some(End::PublishFailed(message)));
        }
        Ok(org::spent(usage).map(|usage| End::Paused(describe_usage(usage))))
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
}
