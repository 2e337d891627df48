//! The recycle bin and the delete log: what a deleted record leaves behind,
//! as Salesforce keeps it (docs/salesforce-facts.md §9, "getDeleted" and "Merges"; the
//! SOAP API guide's getDeleted() rules).
//!
//! - A deleted record (by a delete or as the loser of a merge) stays, with
//!   `IsDeleted = true`, visible to `queryAll`, in the recycle bin until the
//!   bin is emptied by hand or the record has been there 15 days on the
//!   org's clock. Then it is purged: gone from every query.
//! - Every deletion is also written to its object's delete log, which the
//!   replication API's `deleted` resource reads ([`crate::replication`]).
//!   The log keeps a deletion for the 15 days that resource reaches back,
//!   even when the record was purged or undeleted since.
//! - A purge moves the object's [`RecycleBin::newest_purged`] forward: the
//!   deletion date of the newest record physically deleted, which the
//!   `deleted` resource reports as `earliestDateAvailable`.
//!
//! Not modelled: the delete log's size-triggered purge (every two hours,
//! above 15,000 × licences), and cascades (deleting an Account does not
//! delete its Contacts here).

use std::collections::{BTreeSet, HashMap};

use time::{Duration, OffsetDateTime};

use crate::{store::OrgData, value::Value};

/// How long a deleted record stays in the recycle bin, and how far back the
/// delete log reaches: 15 days.
pub const RETENTION: Duration = Duration::days(15);

/// One deletion in the delete log.
#[derive(Debug, Clone, PartialEq)]
pub struct Deletion {
    /// The deleted record's id.
    pub id: String,
    /// When it was deleted (its `SystemModstamp` at deletion).
    pub deleted_at: OffsetDateTime,
}

/// An org's recycle bin and delete log (kept in [`OrgData`], under the same
/// lock as the records, so a deletion and its log entry are one change).
#[derive(Debug, Default)]
pub struct RecycleBin {
    /// Records in the bin: id to deletion instant.
    binned: HashMap<String, OffsetDateTime>,
    /// The same, oldest first, to find what is due without a scan.
    queue: BTreeSet<(OffsetDateTime, String)>,
    /// Deletions per object, in the order they happened.
    log: HashMap<&'static str, Vec<Deletion>>,
    /// Per object: the deletion instant of the newest record purged.
    newest_purged: HashMap<&'static str, OffsetDateTime>,
}

impl RecycleBin {
    /// True when some record has been in the bin for [`RETENTION`] at `now`.
    pub fn expiry_due(&self, now: OffsetDateTime) -> bool {
        self.queue.first().is_some_and(|(at, _)| *at + RETENTION <= now)
    }

    /// When a record went into the bin, if it is there.
    pub fn deleted_at(&self, id: &str) -> Option<OffsetDateTime> {
        self.binned.get(id).copied()
    }

    /// Every record in the bin, oldest deletion first.
    pub fn entries(&self) -> impl Iterator<Item = (&str, OffsetDateTime)> + '_ {
        self.queue.iter().map(|(at, id)| (id.as_str(), *at))
    }

    /// The object's deletions (purged and undeleted ones included) still in
    /// the log, in the order they happened.
    pub fn log(&self, object: &str) -> &[Deletion] {
        self.log.get(object).map_or(&[], Vec::as_slice)
    }

    /// The deletion instant of the newest record of `object` purged so far.
    pub fn newest_purged(&self, object: &str) -> Option<OffsetDateTime> {
        self.newest_purged.get(object).copied()
    }

    fn take(&mut self, id: &str) -> Option<OffsetDateTime> {
        let at = self.binned.remove(id)?;
        self.queue.remove(&(at, id.to_owned()));
        Some(at)
    }
}

/// Where the delete log stops reaching back at `now`.
pub fn log_start(now: OffsetDateTime) -> OffsetDateTime {
    now - RETENTION
}

/// Deletes a live record: `IsDeleted`, a new `SystemModstamp`, into the bin
/// and the delete log. False when there is no such live record.
pub(crate) fn delete(data: &mut OrgData, id: &str, now: OffsetDateTime) -> bool {
    let Some(record) = data.records.get_mut(id) else { return false };
    if matches!(record.get("IsDeleted"), Value::Bool(true)) {
        return false;
    }
    record.fields.insert("IsDeleted", Value::Bool(true));
    record.fields.insert("SystemModstamp", Value::DateTime(now));
    let object = record.object.name;
    let bin = &mut data.recycle_bin;
    bin.binned.insert(id.to_owned(), now);
    bin.queue.insert((now, id.to_owned()));
    bin.log.entry(object).or_default().push(Deletion { id: id.to_owned(), deleted_at: now });
    true
}

/// Puts a record seeded already deleted (`IsDeleted = true`) into the bin
/// and the delete log, deleted at its `SystemModstamp` (or `fallback`).
pub(crate) fn admit_seeded(data: &mut OrgData, id: &str, fallback: OffsetDateTime) {
    let Some(record) = data.records.get(id) else { return };
    if !matches!(record.get("IsDeleted"), Value::Bool(true)) || data.recycle_bin.binned.contains_key(id) {
        return;
    }
    let at = match record.get("SystemModstamp") {
        Value::DateTime(at) => *at,
        _ => fallback,
    };
    let object = record.object.name;
    let bin = &mut data.recycle_bin;
    bin.binned.insert(id.to_owned(), at);
    bin.queue.insert((at, id.to_owned()));
    let log = bin.log.entry(object).or_default();
    log.push(Deletion { id: id.to_owned(), deleted_at: at });
    log.sort_by_key(|d| d.deleted_at);
}

/// Why a record cannot be undeleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndeleteError {
    /// No record with that id (never existed, or purged).
    NotFound,
    /// The record is live.
    NotDeleted,
}

/// Brings a record in the bin back live (Salesforce's `undelete`, in SOAP,
/// Apex and the UI): `IsDeleted = false`, no `MasterRecordId`, a new
/// `SystemModstamp`. The delete log keeps its deletion.
pub(crate) fn undelete(data: &mut OrgData, id: &str, now: OffsetDateTime) -> Result<(), UndeleteError> {
    let Some(record) = data.records.get_mut(id) else { return Err(UndeleteError::NotFound) };
    if data.recycle_bin.take(id).is_none() {
        return Err(UndeleteError::NotDeleted);
    }
    record.fields.insert("IsDeleted", Value::Bool(false));
    if record.object.field("MasterRecordId").is_some() {
        record.fields.insert("MasterRecordId", Value::Null);
    }
    record.fields.insert("SystemModstamp", Value::DateTime(now));
    Ok(())
}

/// Purges records from the bin for good: the given ones, or all. Returns
/// the ids purged; ids not in the bin are skipped.
pub(crate) fn purge(data: &mut OrgData, ids: Option<&[String]>) -> Vec<String> {
    let chosen: Vec<String> = match ids {
        Some(ids) => ids.iter().filter(|id| data.recycle_bin.binned.contains_key(*id)).cloned().collect(),
        None => data.recycle_bin.queue.iter().map(|(_, id)| id.clone()).collect(),
    };
    for id in &chosen {
        let Some(at) = data.recycle_bin.take(id) else { continue };
        if let Some(record) = data.remove(id) {
            let newest = data.recycle_bin.newest_purged.entry(record.object.name).or_insert(at);
            *newest = (*newest).max(at);
        }
    }
    chosen
}

/// Purges what has been in the bin for [`RETENTION`] at `now`, and drops
/// log entries the `deleted` resource no longer reaches.
pub(crate) fn expire(data: &mut OrgData, now: OffsetDateTime) {
    let due: Vec<String> =
        data.recycle_bin.queue.iter().take_while(|(at, _)| *at + RETENTION <= now).map(|(_, id)| id.clone()).collect();
    purge(data, Some(&due));
    let start = log_start(now);
    for deletions in data.recycle_bin.log.values_mut() {
        deletions.retain(|d| d.deleted_at >= start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{schema, value::Record};

    fn org_with_leads(n: usize) -> (OrgData, Vec<String>) {
        let lead = schema::object("Lead").expect("Lead");
        let mut data = OrgData::default();
        let ids: Vec<String> = (0..n).map(|i| format!("00Q5j00000{i:08}AAA")).collect();
        for id in &ids {
            let mut fields = crate::write::initial_fields(lead);
            fields.insert("Id", Value::Text(id.clone()));
            data.insert(Record { object: lead, fields });
        }
        (data, ids)
    }

    #[test]
    fn a_deletion_stays_in_the_log_after_undelete_and_purge() {
        let (mut data, ids) = org_with_leads(2);
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert!(delete(&mut data, &ids[0], t0));
        assert!(delete(&mut data, &ids[1], t0 + Duration::minutes(1)));
        assert!(!delete(&mut data, &ids[0], t0), "already deleted");
        assert_eq!(undelete(&mut data, &ids[0], t0 + Duration::minutes(2)), Ok(()));
        assert_eq!(undelete(&mut data, &ids[0], t0), Err(UndeleteError::NotDeleted));
        assert_eq!(purge(&mut data, None), vec![ids[1].clone()]);
        assert!(!data.records.contains_key(&ids[1]));
        assert_eq!(undelete(&mut data, &ids[1], t0), Err(UndeleteError::NotFound));
        let logged: Vec<&str> = data.recycle_bin.log("Lead").iter().map(|d| d.id.as_str()).collect();
        assert_eq!(logged, [ids[0].as_str(), ids[1].as_str()]);
        assert_eq!(data.recycle_bin.newest_purged("Lead"), Some(t0 + Duration::minutes(1)));
    }

    #[test]
    fn the_bin_empties_itself_after_fifteen_days() {
        let (mut data, ids) = org_with_leads(2);
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        delete(&mut data, &ids[0], t0);
        delete(&mut data, &ids[1], t0 + Duration::days(1));
        let check = |data: &OrgData, at: OffsetDateTime, due: bool| assert_eq!(data.recycle_bin.expiry_due(at), due);
        check(&data, t0 + RETENTION - Duration::seconds(1), false);
        check(&data, t0 + RETENTION, true);
        expire(&mut data, t0 + RETENTION + Duration::minutes(1));
        assert!(!data.records.contains_key(&ids[0]));
        assert!(data.records.contains_key(&ids[1]));
        assert_eq!(data.recycle_bin.log("Lead").len(), 1, "the first deletion left the log with the window");
    }
}
