//! Merging duplicate Leads, Contacts or Accounts, as Salesforce's merge does
//! (in the UI, SOAP `merge()` or Apex; the REST API has no merge resource,
//! so sfsim offers it through the control API). docs/salesforce-facts.md §9, "Merges":
//!
//! - one master and one or two others, all of the same object;
//! - the others are deleted (`IsDeleted = true`, in the recycle bin, in the
//!   delete log) with `MasterRecordId` set to the master, and a new
//!   `SystemModstamp`;
//! - related records move to the master: Tasks' `WhoId` (Lead, Contact)
//!   or `WhatId` and derived `AccountId` (Account), Contacts' `AccountId`
//!   (Account);
//! - the master's `SystemModstamp` changes.
//!
//! Assumed: the master keeps its own field values (SOAP lets the caller
//! pick fields from the others; sfsim does not), converted Leads cannot be
//! merged, Lead conversion fields pointing at a loser are left as they
//! are, and each related record moved gets a new `SystemModstamp` (§9 says
//! so of the master only).

use time::OffsetDateTime;

use crate::{recycle_bin, schema::ObjectSchema, store::OrgData, value::Value};

/// Objects Salesforce merges.
pub const MERGEABLE: [&str; 3] = ["Lead", "Contact", "Account"];

/// What a merge did, as SOAP's MergeResult reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The master's id.
    pub id: String,
    /// The records merged into it (now deleted).
    pub merged_ids: Vec<String>,
    /// Related records moved to the master.
    pub updated_related_ids: Vec<String>,
}

/// Why a merge was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Not a Lead, Contact or Account.
    #[error("{0} records cannot be merged; only Lead, Contact and Account can")]
    NotMergeable(String),
    /// Not one or two records to merge into the master.
    #[error("a merge takes one master and one or two others; got {0} others")]
    WrongCount(usize),
    /// The master is among the others, or an id is given twice.
    #[error("record {0} is given twice")]
    Repeated(String),
    /// No live record of the object with that id.
    #[error("no live {object} with id {id}")]
    NotFound {
        /// The merged object.
        object: &'static str,
        /// The id looked for.
        id: String,
    },
    /// A converted Lead.
    #[error("lead {0} is converted and cannot be merged")]
    Converted(String),
}

/// Merges `others` into `master` at `now`.
pub(crate) fn merge(
    data: &mut OrgData,
    object: &'static ObjectSchema,
    master: &str,
    others: &[String],
    now: OffsetDateTime,
) -> Result<Merged, MergeError> {
    if !MERGEABLE.contains(&object.name) {
        return Err(MergeError::NotMergeable(object.name.to_owned()));
    }
    if others.is_empty() || others.len() > 2 {
        return Err(MergeError::WrongCount(others.len()));
    }
    let mut seen = vec![master];
    for id in others {
        if seen.contains(&id.as_str()) {
            return Err(MergeError::Repeated(id.clone()));
        }
        seen.push(id);
    }
    for id in &seen {
        let live = data
            .records
            .get(*id)
            .filter(|r| r.object.name == object.name && !matches!(r.get("IsDeleted"), Value::Bool(true)));
        match live {
            None => return Err(MergeError::NotFound { object: object.name, id: (*id).to_owned() }),
            Some(r) if matches!(r.get("IsConverted"), Value::Bool(true)) => {
                return Err(MergeError::Converted((*id).to_owned()));
            }
            Some(_) => {}
        }
    }

    let master_account = data.records.get(master).and_then(|m| m.get("AccountId").as_text().map(str::to_owned));
    let is_loser = |value: &Value| value.as_text().is_some_and(|v| others.iter().any(|o| o == v));
    let mut updated_related_ids = Vec::new();
    for record in data.records.values_mut() {
        let mut moved = false;
        match (object.name, record.object.name) {
            ("Lead" | "Contact", "Task") if is_loser(record.get("WhoId")) => {
                record.fields.insert("WhoId", Value::Text(master.to_owned()));
                if object.name == "Contact" && record.get("WhatId").is_null() {
                    // A Task's AccountId follows its Contact's Account.
                    record.fields.insert("AccountId", master_account.clone().map_or(Value::Null, Value::Text));
                }
                moved = true;
            }
            ("Account", "Task") => {
                for field in ["WhatId", "AccountId"] {
                    if is_loser(record.get(field)) {
                        record.fields.insert(field, Value::Text(master.to_owned()));
                        moved = true;
                    }
                }
            }
            ("Account", "Contact") if is_loser(record.get("AccountId")) => {
                record.fields.insert("AccountId", Value::Text(master.to_owned()));
                moved = true;
            }
            _ => {}
        }
        if moved {
            record.fields.insert("SystemModstamp", Value::DateTime(now));
            record.fields.insert("LastModifiedDate", Value::DateTime(now));
            updated_related_ids.push(record.id().to_owned());
        }
    }
    updated_related_ids.sort();

    for id in others {
        recycle_bin::delete(data, id, now);
        if let Some(loser) = data.records.get_mut(id) {
            loser.fields.insert("MasterRecordId", Value::Text(master.to_owned()));
        }
    }
    if let Some(master) = data.records.get_mut(master) {
        master.fields.insert("SystemModstamp", Value::DateTime(now));
        master.fields.insert("LastModifiedDate", Value::DateTime(now));
    }
    Ok(Merged { id: master.to_owned(), merged_ids: others.to_vec(), updated_related_ids })
}
