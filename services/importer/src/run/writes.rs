//! What a published batch leaves to write (the index, the watermark, the
//! run's counts), and the chain that writes it behind the next batch.

use std::time::Instant;

use anyhow::Context as _;
use fa_messages::{SObject, TenantId};
use fa_store::customer_index;
use sqlx::PgPool;
use tracing::Instrument as _;

use crate::watermark::{self, Watermark};

/// What a published batch leaves to write.
pub(super) struct Written {
    pub(super) pool: PgPool,
    pub(super) tenant: TenantId,
    pub(super) organization_id: String,
    pub(super) object: SObject,
    /// The confirmed records, the overlap too (a version committed late is
    /// new to the index).
    pub(super) entries: Vec<fa_store::customer_index::IndexedRecord>,
    /// The records whose removal was confirmed: Front Agent no longer holds them.
    pub(super) removed_ids: Vec<String>,
    /// Past the last new record confirmed with all before it.
    pub(super) moved: Option<Watermark>,
    pub(super) run_id: String,
    /// The run's counts so far.
    pub(super) counts: serde_json::Value,
}

impl Written {
    /// The index first (one statement), then the watermark: should the
    /// index write fail, the watermark stays where it was and the next run
    /// reads these records again, so the index is never behind the
    /// watermark.
    pub(super) async fn write(self) -> anyhow::Result<()> {
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
        super::row::save_counts(&self.pool, &self.run_id, &self.counts).await?;
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
pub(super) struct Behind {
    last: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Behind {
    /// Writes `next` after everything handed over before it.
    pub(super) fn then(&mut self, next: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
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
    pub(super) async fn wait(&mut self) -> anyhow::Result<()> {
        match self.last.take() {
            Some(last) => last.await.context("a write stopped")?,
            None => Ok(()),
        }
    }
}
