//! What of a published record goes into the customer index
//! ([`fa_store::customer_index`]), where the activity-writer matches callers
//! without waiting for Salesforce's search index (docs/behaviour.md §4, case 3).
//!
//! The run writes the entries of each batch's confirmed records in one
//! statement, before the watermark moves past them: an index write that
//! fails fails the run as a watermark write does, so the next run reads
//! those records again and the index is never behind the watermark.

use fa_messages::CustomerUpsertV1;
use fa_store::customer_index::IndexedRecord;

/// The index entry of a `customer.upsert` the broker confirmed: its E.164
/// numbers (those that could not be normalised left out), its e-mail
/// (lower-cased by the store), its `SystemModstamp`. The importer reads no
/// converted Lead, so none is marked converted.
/// Takes the message: once confirmed, the run needs nothing else of it.
pub fn entry(message: CustomerUpsertV1) -> IndexedRecord {
    IndexedRecord {
        object: message.source.object.as_str().to_owned(),
        record_id: message.source.id.as_str().to_owned(),
        phones: message.customer.phones.into_iter().filter_map(|phone| phone.e164).collect(),
        email: message.customer.email,
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
        let entry = entry(message.clone());
        assert_eq!(entry.object, message.source.object.as_str());
        assert_eq!(entry.record_id, message.source.id.as_str());
        assert_eq!(entry.modified_at, message.source.modified_at);
        assert_eq!(entry.phones, phones, "{message:?}");
        assert_eq!(entry.email.as_deref(), email, "{message:?}");
        assert!(!entry.converted);
    }

    #[test]
    fn entries_carry_the_e164_numbers_only() {
        let lead = "00Q5j00000AbCdEEAV";
        check(
            message(SObject::Lead, lead, Some("Hanako@Sato.Example"), &[("(03) 1234-5678", Some("+81312345678"))]),
            &["+81312345678"],
            Some("Hanako@Sato.Example"),
        );
        check(message(SObject::Contact, "0035j00000XyZabAAF", None, &[("なし", None)]), &[], None);
        check(message(SObject::Account, "0015j00000QwErTAAV", None, &[]), &[], None);
    }
}
