//! What of a published record goes into the customer index
//! ([`fa_store::customer_index`]), where the activity-writer matches callers
//! without waiting for Salesforce's search index (behaviour.md §4, case 3),
//! and the [`Writer`] that puts it there while a batch is published.
//!
//! The index is written before the watermark moves past the records: an
//! index write that fails fails the run as a watermark write does, so the
//! next run reads those records again and the index is never behind the
//! watermark.

use std::mem;

use fa_messages::CustomerUpsertV1;
use fa_store::customer_index::{self, IndexedRecord};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

/// Records per statement: as many as the run publishes at once.
const CHUNK: usize = 512;

/// Writes a batch's confirmed records into the index, one statement per
/// [`CHUNK`] records, in order, on a task of its own: each chunk is written
/// as soon as it is confirmed, while the rest of the batch is still being
/// published, so only the batch's last chunk waits for its publishing to
/// end. (A batch is a page, up to 2,000 records.)
pub struct Writer {
    pending: Vec<IndexedRecord>,
    chunks: mpsc::UnboundedSender<Vec<IndexedRecord>>,
    writing: AbortOnDropHandle<sqlx::Result<()>>,
}

impl Writer {
    /// A writer for records of `tenant` read from `organization_id`.
    pub fn new(pool: PgPool, tenant: &str, organization_id: &str) -> Self {
        let (chunks, mut receiver) = mpsc::unbounded_channel::<Vec<IndexedRecord>>();
        let (tenant, organization_id) = (tenant.to_owned(), organization_id.to_owned());
        let writing = tokio::spawn(async move {
            while let Some(chunk) = receiver.recv().await {
                customer_index::upsert(&pool, &tenant, &organization_id, &chunk).await?;
            }
            Ok(())
        });
        Self { pending: Vec::with_capacity(CHUNK), chunks, writing: AbortOnDropHandle::new(writing) }
    }

    /// Adds a confirmed record; a full chunk goes to be written at once.
    pub fn push(&mut self, entry: IndexedRecord) {
        self.pending.push(entry);
        if self.pending.len() == CHUNK {
            // Should the task have stopped, finish reports why.
            let _ = self.chunks.send(mem::replace(&mut self.pending, Vec::with_capacity(CHUNK)));
        }
    }

    /// Writes what is left and waits for every chunk: once it returns
    /// `Ok`, every record pushed is in the index.
    ///
    /// # Errors
    /// The first statement that failed.
    pub async fn finish(self) -> anyhow::Result<()> {
        let Self { pending, chunks, writing } = self;
        let _ = chunks.send(pending);
        drop(chunks);
        writing.await??;
        Ok(())
    }
}

/// The index entry of a `customer.upsert` the broker confirmed: its E.164
/// numbers (those that could not be normalised left out), its e-mail
/// (lower-cased by the store), its `SystemModstamp`. The importer reads no
/// converted Lead, so none is marked converted.
pub fn entry(message: &CustomerUpsertV1) -> IndexedRecord {
    IndexedRecord {
        object: message.source.object.as_str().to_owned(),
        record_id: message.source.id.as_str().to_owned(),
        phones: message.customer.phones.iter().filter_map(|phone| phone.e164.clone()).collect(),
        email: message.customer.email.clone(),
        modified_at: message.source.modified_at,
        converted: false,
    }
}

#[cfg(test)]
mod tests {
    use fa_messages::{CustomerFields, CustomerPhone, CustomerSource, SObject, SalesforceId, SourceSystem, TenantId};
    use time::macros::datetime;

    use super::*;

    fn message(object: SObject, id: &str, email: Option<&str>, phones: &[(&str, Option<&str>)]) -> CustomerUpsertV1 {
        CustomerUpsertV1 {
            tenant_id: TenantId::new("acme").expect("tenant"),
            import_run_id: "run_1".to_owned(),
            source: CustomerSource {
                system: SourceSystem::Salesforce,
                object,
                id: SalesforceId::new_18(id).expect("id"),
                modified_at: datetime!(2026-11-20 01:02:03 UTC),
            },
            customer: CustomerFields {
                name: "佐藤 花子".to_owned(),
                company: None,
                email: email.map(str::to_owned),
                phones: phones
                    .iter()
                    .map(|(number, e164)| CustomerPhone { number: (*number).to_owned(), e164: e164.map(str::to_owned) })
                    .collect(),
            },
        }
    }

    fn check(message: CustomerUpsertV1, phones: &[&str], email: Option<&str>) {
        let entry = entry(&message);
        assert_eq!(entry.object, message.source.object.as_str());
        assert_eq!(entry.record_id, message.source.id.as_str());
        assert_eq!(entry.modified_at, message.source.modified_at);
        assert_eq!(entry.phones, phones, "{message:?}");
        assert_eq!(entry.email.as_deref(), email, "{message:?}");
        assert!(!entry.converted);
    }

    #[test]
    fn entries_carry_the_e164_numbers_only() {
        let lead = "00Q5j00000AbCdEAAV";
        check(
            message(SObject::Lead, lead, Some("Hanako@Sato.Example"), &[("(03) 1234-5678", Some("+81312345678"))]),
            &["+81312345678"],
            Some("Hanako@Sato.Example"),
        );
        check(message(SObject::Contact, "0035j00000XyZabAAB", None, &[("なし", None)]), &[], None);
        check(message(SObject::Account, "0015j00000QwErTAAZ", None, &[]), &[], None);
    }
}
