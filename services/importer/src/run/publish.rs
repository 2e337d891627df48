//! Publishing a batch: removals decided against the customer index, the
//! messages sent in read order with confirms, and what the broker
//! confirmed counted and handed over to be written.

use fa_messages::{Message, ObjectCounts, SObject, SalesforceId, SalesforceRef, TenantId};
use fa_store::customer_index;

use super::{
    Importer, RunState,
    reader::Batch,
    record::{Action, Outgoing},
    tally::Tally,
    writes::{Behind, Written},
};
use crate::removal;

impl Importer {
    /// Publishes one batch with confirms, in order, many in flight, and
    /// counts what the broker confirmed. Returns what is left to write (the
    /// index entries of the confirmed records and the removals to forget,
    /// then the watermark past the last record confirmed with all before
    /// it, then the run's counts), and why the broker failed part-way, if
    /// it did.
    pub(super) async fn publish(
        &self,
        tenant: &TenantId,
        organization_id: &str,
        object: SObject,
        batch: Batch,
        run: &mut RunState,
    ) -> anyhow::Result<(Written, Option<String>)> {
        let Batch { mut rows, cursor, .. } = batch;
        let messages: Vec<Outgoing<'_>> =
            rows.iter_mut().filter_map(|(record, _)| record.message(&run.run_id)).collect();
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
    pub(super) async fn publish_in_order(&self, messages: &[Outgoing<'_>]) -> Result<(), (usize, String)> {
        let mut start = 0;
        for stretch in messages.chunk_by(Outgoing::same_kind) {
            let sent = match stretch[0] {
                Outgoing::Upsert(_) => self.publish_stretch(stretch, Outgoing::upsert).await,
                Outgoing::Removed(_) => self.publish_stretch(stretch, Outgoing::removed).await,
            };
            sent.map_err(|(index, e)| (start + index, e))?;
            start += stretch.len();
        }
        Ok(())
    }

    /// Publishes a stretch of messages of one type, `pick` taking each.
    async fn publish_stretch<'m, M: Message + 'm>(
        &self,
        stretch: &[Outgoing<'m>],
        pick: fn(Outgoing<'m>) -> Option<&'m M>,
    ) -> Result<(), (usize, String)> {
        let messages: Vec<&M> = stretch.iter().copied().filter_map(pick).collect();
        self.broker
            .publish_all(messages)
            .await
            .map_err(|(index, e)| (index, format!("publishing {} failed: {e}", M::ROUTING_KEY)))
    }

    /// Decides, for the records of `batch` found gone, whether Front Agent
    /// holds them (the customer index says): those it holds become
    /// `customer.removed`, the others are passed over. The writes of the
    /// batches before are waited for first, so the index is complete.
    pub(super) async fn decide_removals(
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
