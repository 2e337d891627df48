//! Counting a published batch: what the broker confirmed, in read order,
//! and how far the watermark may move.

use fa_messages::TenantId;

use super::record::{Action, Prepared};
use crate::{
    index, removal,
    watermark::{Fate, Watermark},
};

/// What a batch published, in read order.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) published: u64,
    pub(super) skipped: u64,
    pub(super) removed: u64,
    pub(super) republished: u64,
    /// Past the last new record confirmed with all before it.
    pub(super) moved: Option<Watermark>,
}

impl Tally {
    /// Counts a batch whose messages before `unconfirmed` the broker
    /// confirmed (`usize::MAX`: all), and returns the index entries of the
    /// upserts and the ids of the removals confirmed. The count stops at
    /// the first unconfirmed message, so neither the counts nor the
    /// watermark pass it; only records of the cursor move the watermark.
    pub(super) fn count(
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
                    entries.push(index::entry(message.into_content()));
                    if new {
                        self.published += 1;
                    } else {
                        self.republished += 1;
                    }
                }
                Action::Remove(message) => {
                    let message = message.content();
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
