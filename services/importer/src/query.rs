//! The SOQL the importer sends to read one object's customers (docs/behaviour.md §3, docs/salesforce-facts.md §9).
//!
//! A run reads each object oldest change first, from a point in time on: the lookback on the
//! first run, the watermark less a short overlap on later ones. The run pages through the
//! answer with `nextRecordsUrl` and stops itself at its record cap, so the query has no LIMIT.
//! What it selects is exactly what [`crate::mapping`] reads from a row.

use fa_messages::SObject;
use fa_salesforce::datetime::soql_literal_seconds;
use time::OffsetDateTime;

/// The query reading `object`'s records changed at or after `from`, oldest first, live or not:
/// the run sends it to `queryAll`, so records in the recycle bin (deleted, or merged away) and
/// converted Leads come back beside the live ones, with what says how they left
/// ([`crate::removal::Life`]).
///
/// The filter is `SystemModstamp >= from` with `from` as a whole-second literal, rounded down,
/// so the record at the watermark itself and every record sharing its second are read again;
/// the run skips what it has already published. Ordering by `(SystemModstamp, Id)` gives a
/// total order, so records sharing one timestamp come back in a stable sequence, and a removal
/// is never overtaken by an older upsert of the same record.
pub fn soql(object: SObject, from: OffsetDateTime) -> String {
    let fields = match object {
        SObject::Lead => {
            "Id, FirstName, LastName, Company, Email, Phone, SystemModstamp, IsDeleted, MasterRecordId, \
             IsConverted, ConvertedContactId, ConvertedAccountId"
        }
        SObject::Contact => {
            "Id, FirstName, LastName, Email, Phone, Account.Name, SystemModstamp, IsDeleted, MasterRecordId"
        }
        SObject::Account => "Id, Name, Phone, SystemModstamp, IsDeleted, MasterRecordId",
    };
    format!(
        "SELECT {fields} FROM {object} WHERE SystemModstamp >= {} ORDER BY SystemModstamp ASC, Id ASC",
        soql_literal_seconds(from)
    )
}

/// The query a reconciliation sends to `queryAll` to list every id of `object` Salesforce still
/// has, live or in the recycle bin (a record in the bin is not purged: the cursor announces it
/// with its reason). Ids only, so each page carries 2,000 of them: the comparison costs one call
/// per 2,000 records of the object.
pub fn ids_soql(object: SObject) -> String {
    format!("SELECT Id FROM {object}")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use fa_messages::TenantId;
    use sfsim::soql::{self, EvalContext, Lookup};
    use sfsim::value::{Record, Value};
    use time::macros::{datetime, offset};

    use super::*;
    use crate::{
        mapping::{self, Mapped, Seen},
        removal,
    };

    fn check(object: SObject, from: OffsetDateTime, expected: &str) {
        assert_eq!(soql(object, from), expected, "{object} from {from}");
    }

    #[test]
    fn each_object_is_read_oldest_change_first_from_a_whole_second() {
        check(
            SObject::Lead,
            datetime!(2026-11-20 01:02:03 UTC),
            "SELECT Id, FirstName, LastName, Company, Email, Phone, SystemModstamp, IsDeleted, MasterRecordId, \
             IsConverted, ConvertedContactId, ConvertedAccountId FROM Lead \
             WHERE SystemModstamp >= 2026-11-20T01:02:03Z ORDER BY SystemModstamp ASC, Id ASC",
        );
        check(
            SObject::Contact,
            datetime!(2026-11-20 01:02:03 UTC),
            "SELECT Id, FirstName, LastName, Email, Phone, Account.Name, SystemModstamp, IsDeleted, MasterRecordId \
             FROM Contact \
             WHERE SystemModstamp >= 2026-11-20T01:02:03Z ORDER BY SystemModstamp ASC, Id ASC",
        );
        check(
            SObject::Account,
            datetime!(2026-11-20 01:02:03 UTC),
            "SELECT Id, Name, Phone, SystemModstamp, IsDeleted, MasterRecordId FROM Account \
             WHERE SystemModstamp >= 2026-11-20T01:02:03Z ORDER BY SystemModstamp ASC, Id ASC",
        );
        // Milliseconds are rounded down, never up: the watermark's own second is read again.
        check(
            SObject::Account,
            datetime!(2026-11-20 01:02:03.999 UTC),
            "SELECT Id, Name, Phone, SystemModstamp, IsDeleted, MasterRecordId FROM Account \
             WHERE SystemModstamp >= 2026-11-20T01:02:03Z ORDER BY SystemModstamp ASC, Id ASC",
        );
        // Any offset is written in UTC.
        check(
            SObject::Contact,
            datetime!(2026-11-20 10:02:03.5 +09:00),
            "SELECT Id, FirstName, LastName, Email, Phone, Account.Name, SystemModstamp, IsDeleted, MasterRecordId \
             FROM Contact \
             WHERE SystemModstamp >= 2026-11-20T01:02:03Z ORDER BY SystemModstamp ASC, Id ASC",
        );
    }

    /// A few records of an org, for sfsim's SOQL engine.
    #[derive(Default)]
    struct Org(HashMap<String, Record>);

    impl Org {
        fn add(&mut self, object: &str, fields: &[(&str, Value)]) {
            let schema = sfsim::schema::object(object).expect("known object");
            let fields: BTreeMap<&'static str, Value> = fields
                .iter()
                .map(|(name, value)| (schema.field(name).expect("known field").name, value.clone()))
                .collect();
            let record = Record { object: schema, fields };
            self.0.insert(record.id().to_owned(), record);
        }
    }

    impl Lookup for Org {
        fn record(&self, id: &str) -> Option<&Record> {
            self.0.get(id)
        }
    }

    fn text(value: &str) -> Value {
        Value::Text(value.to_owned())
    }

    fn at(value: &str) -> Value {
        Value::DateTime(sfsim::value::parse_datetime(value).expect("datetime"))
    }

    /// Runs the importer's query for `object` from `from` as `queryAll` would and reads each row
    /// as the run does: `(id, name)` for a live record (`None`: skipped for having no name), or
    /// `(id, "gone: <reason>")` for one that left.
    fn read(org: &Org, object: SObject, from: OffsetDateTime) -> Vec<(String, Option<String>)> {
        let text = soql(object, from);
        let query = match soql::parse(&text) {
            Ok(query) => query,
            Err(e) => panic!("sfsim refuses {text}: {e}"),
        };
        let ctx = EvalContext { now: datetime!(2026-11-21 00:00:00 UTC), user_offset: offset!(+09:00) };
        let tenant = TenantId::new("acme").expect("tenant");
        query
            .run(org.0.values().filter(|r| r.object.name == object.as_str()), org, &ctx)
            .into_iter()
            .map(|record| {
                let json = query.row(record, org, "v61.0");
                let Seen { row, life } = serde_json::from_value(json).expect("a row the run reads");
                assert_eq!(row.object(), object);
                let id = row.id().to_owned();
                if let removal::Fate::Gone { reason, .. } = life.fate(object).expect("a fate") {
                    return (id, Some(format!("gone: {reason:?}")));
                }
                let name = match mapping::map(&tenant, "run-1", &row).expect("maps") {
                    Mapped::Customer(customer) => Some(customer.customer.name),
                    Mapped::NoName => None,
                };
                (id, name)
            })
            .collect()
    }

    #[test]
    fn every_query_runs_on_sfsim_and_its_rows_map() {
        let mut org = Org::default();
        let old = at("2026-11-19T00:00:00.000+0000");
        let watermark = at("2026-11-20T01:02:03.456+0000");
        let same_second = at("2026-11-20T01:02:03.001+0000");
        let later = at("2026-11-20T05:00:00.000+0000");
        for (id, first, last, stamp, converted) in [
            ("00Q5j00000AbCdEEAV", "花子", "山田", &later, false),
            ("00Q5j00000AbCdFEAV", "太郎", "鈴木", &same_second, false),
            ("00Q5j00000AbCdGEAV", "次郎", "佐藤", &watermark, true),
            ("00Q5j00000AbCdHEAV", "三郎", "田中", &old, false),
        ] {
            org.add(
                "Lead",
                &[
                    ("Id", text(id)),
                    ("FirstName", text(first)),
                    ("LastName", text(last)),
                    ("Company", text("株式会社テスト")),
                    ("Phone", text("03-1234-5678")),
                    ("IsConverted", Value::Bool(converted)),
                    ("SystemModstamp", stamp.clone()),
                ],
            );
        }
        org.add(
            "Account",
            &[
                ("Id", text("0015j00000QwErTAAV")),
                ("Name", text("株式会社テスト")),
                ("SystemModstamp", watermark.clone()),
            ],
        );
        org.add("Account", &[("Id", text("0015j00000QwErUAAV")), ("Name", text("古い会社")), ("SystemModstamp", old)]);
        org.add(
            "Contact",
            &[
                ("Id", text("0035j00000XyZabAAF")),
                ("LastName", text("山田")),
                ("AccountId", text("0015j00000QwErTAAV")),
                ("SystemModstamp", later.clone()),
            ],
        );
        org.add(
            "Contact",
            &[("Id", text("0035j00000XyZacAAF")), ("LastName", text("　")), ("SystemModstamp", same_second.clone())],
        );

        let from = datetime!(2026-11-20 01:02:03.456 UTC);
        let some = |id: &str, name: &str| (id.to_owned(), Some(name.to_owned()));
        assert_eq!(
            read(&org, SObject::Lead, from),
            vec![
                some("00Q5j00000AbCdFEAV", "鈴木 太郎"),
                some("00Q5j00000AbCdGEAV", "gone: Converted"),
                some("00Q5j00000AbCdEEAV", "山田 花子")
            ],
            "the watermark's whole second is read again, a converted Lead too (it left); older Leads are not"
        );
        assert_eq!(
            read(&org, SObject::Contact, from),
            vec![("0035j00000XyZacAAF".to_owned(), None), some("0035j00000XyZabAAF", "山田")]
        );
        assert_eq!(read(&org, SObject::Account, from), vec![some("0015j00000QwErTAAV", "株式会社テスト")]);
    }
}
