//! Whether a record the `queryAll` cursor returns has left Salesforce, why,
//! and whether Front Agent must hear of it (docs/behaviour.md §3, "Customers
//! leave Front Agent when their record leaves Salesforce").
//!
//! Pure, like [`crate::mapping`]: the run reads each row's [`Life`] beside
//! its fields, asks [`Life::fate`] whether the record is still a customer,
//! and publishes `customer.removed.v1` only for what [`announce`] lets
//! through. Why the rules are what they are:
//! - A merge deletes the losers and names the survivor in `MasterRecordId`
//!   (docs/salesforce-facts.md §9, "Merges"): Front Agent moves the call history there.
//! - A converted Lead is not deleted; it stays read-only with
//!   `IsConverted = true` and names the Contact (and Account) it became.
//!   The Contact is the person, so it is the successor; the Account only
//!   when no Contact was made.
//! - Anything else deleted is `deleted`, with no successor.
//! - A record Front Agent never received (first seen already gone, or
//!   never imported) is not announced: there is nothing to remove, and a
//!   removal of an unknown id would only puzzle its consumers.

use fa_messages::{
    CustomerRemovedV1, CustomerSource, InvalidId, RemovalReason, SObject, SalesforceId, SalesforceRef, SourceSystem,
    TenantId,
};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::pending::Pending;

/// The fields that say whether a record still lives, as `queryAll` returns
/// them; a field the object does not have (`IsConverted` on a Contact) is
/// absent and reads as false or `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Life {
    /// `IsDeleted`: in the recycle bin (deleted by hand or by a merge).
    #[serde(rename = "IsDeleted", default)]
    pub is_deleted: bool,
    /// `MasterRecordId`: the survivor of the merge that deleted it.
    #[serde(rename = "MasterRecordId", default)]
    pub master_record_id: Option<String>,
    /// `IsConverted` (Leads): converted into a Contact and Account.
    #[serde(rename = "IsConverted", default)]
    pub is_converted: bool,
    /// `ConvertedContactId` (Leads).
    #[serde(rename = "ConvertedContactId", default)]
    pub converted_contact_id: Option<String>,
    /// `ConvertedAccountId` (Leads).
    #[serde(rename = "ConvertedAccountId", default)]
    pub converted_account_id: Option<String>,
}

/// What became of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Still a customer: published as `customer.upsert`.
    Live,
    /// Gone from Salesforce.
    Gone {
        /// Why.
        reason: RemovalReason,
        /// The record the customer became, if any.
        successor: Option<SalesforceRef>,
    },
}

impl Life {
    /// Why a record of `object` with this life left, if it did. A merge
    /// wins over everything (a merged loser is also deleted); a conversion
    /// over a later deletion of the converted Lead, since it still says
    /// where the person went.
    fn reason(&self, object: SObject) -> Option<RemovalReason> {
        if self.is_deleted && non_blank(&self.master_record_id).is_some() {
            Some(RemovalReason::Merged)
        } else if object == SObject::Lead && self.is_converted {
            Some(RemovalReason::Converted)
        } else if self.is_deleted {
            Some(RemovalReason::Deleted)
        } else {
            None
        }
    }

    /// What became of a record of `object` with this life.
    ///
    /// # Errors
    /// [`InvalidId`] when a successor id Salesforce gave is not an id.
    pub fn fate(&self, object: SObject) -> Result<Fate, InvalidId> {
        let Some(reason) = self.reason(object) else { return Ok(Fate::Live) };
        let successor = match reason {
            RemovalReason::Merged => non_blank(&self.master_record_id)
                .map(|master| SalesforceId::new(master).map(|id| SalesforceRef { object, id }))
                .transpose()?,
            RemovalReason::Converted => {
                match (non_blank(&self.converted_contact_id), non_blank(&self.converted_account_id)) {
                    (Some(contact), _) => {
                        Some(SalesforceRef { object: SObject::Contact, id: SalesforceId::new(contact)? })
                    }
                    (None, Some(account)) => {
                        Some(SalesforceRef { object: SObject::Account, id: SalesforceId::new(account)? })
                    }
                    (None, None) => None,
                }
            }
            RemovalReason::Deleted => None,
        };
        Ok(Fate::Gone { reason, successor })
    }

    /// [`Self::fate`], with a successor that is no id left out rather than
    /// failing: the record has left all the same, and Front Agent must hear
    /// of it. The bad id is returned for the caller to log.
    pub fn fate_without_bad_successor(&self, object: SObject) -> (Fate, Option<InvalidId>) {
        match self.fate(object) {
            Ok(fate) => (fate, None),
            Err(e) => {
                let reason = self.reason(object).unwrap_or(RemovalReason::Deleted);
                (Fate::Gone { reason, successor: None }, Some(e))
            }
        }
    }
}

/// Whether a record whose fate is `fate` is published, and as what:
/// `Some(true)` an upsert, `Some(false)` a removal, `None` nothing.
/// `held` says whether Front Agent may hold the record (the importer
/// published it before, as its customer index records).
pub fn announce(fate: &Fate, held: bool) -> Option<bool> {
    match fate {
        Fate::Live => Some(true),
        Fate::Gone { .. } if held => Some(false),
        Fate::Gone { .. } => None,
    }
}

/// The `customer.removed` of `record`, seen gone at `modified_at` (its
/// `SystemModstamp`, or when the importer learned it), for the run that
/// publishes it to name itself in.
pub fn message(
    tenant: &TenantId,
    record: SalesforceRef,
    modified_at: OffsetDateTime,
    reason: RemovalReason,
    successor: Option<SalesforceRef>,
) -> Pending<CustomerRemovedV1> {
    Pending::new(CustomerRemovedV1 {
        tenant_id: tenant.clone(),
        import_run_id: String::new(),
        source: CustomerSource { system: SourceSystem::Salesforce, object: record.object, id: record.id, modified_at },
        reason,
        successor,
    })
}

/// A reason's wire form, for logs and metric labels.
pub fn label(reason: RemovalReason) -> &'static str {
    match reason {
        RemovalReason::Deleted => "deleted",
        RemovalReason::Merged => "merged",
        RemovalReason::Converted => "converted",
    }
}

fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "00Q5j00000AbCdEEAV";
    const CONTACT: &str = "0035j00000XyZabAAF";
    const ACCOUNT: &str = "0015j00000QrStUAAR";

    fn reference(object: SObject, id: &str) -> Option<SalesforceRef> {
        Some(SalesforceRef { object, id: SalesforceId::new(id).expect("a valid id") })
    }

    fn gone(reason: RemovalReason, successor: Option<SalesforceRef>) -> Fate {
        Fate::Gone { reason, successor }
    }

    #[test]
    fn each_way_of_leaving_has_its_reason_and_successor() {
        let cases: Vec<(&str, SObject, serde_json::Value, Fate)> = vec![
            ("a live Lead", SObject::Lead, serde_json::json!({ "IsDeleted": false, "IsConverted": false }), Fate::Live),
            (
                "a live Contact (no IsConverted field)",
                SObject::Contact,
                serde_json::json!({ "IsDeleted": false }),
                Fate::Live,
            ),
            (
                "a Lead in the recycle bin",
                SObject::Lead,
                serde_json::json!({ "IsDeleted": true, "MasterRecordId": null }),
                gone(RemovalReason::Deleted, None),
            ),
            (
                "a merged Lead names its master",
                SObject::Lead,
                serde_json::json!({ "IsDeleted": true, "MasterRecordId": MASTER }),
                gone(RemovalReason::Merged, reference(SObject::Lead, MASTER)),
            ),
            (
                "a merged Contact's master is a Contact",
                SObject::Contact,
                serde_json::json!({ "IsDeleted": true, "MasterRecordId": CONTACT }),
                gone(RemovalReason::Merged, reference(SObject::Contact, CONTACT)),
            ),
            (
                "a merged Account",
                SObject::Account,
                serde_json::json!({ "IsDeleted": true, "MasterRecordId": ACCOUNT }),
                gone(RemovalReason::Merged, reference(SObject::Account, ACCOUNT)),
            ),
            (
                "a blank MasterRecordId is a plain deletion",
                SObject::Contact,
                serde_json::json!({ "IsDeleted": true, "MasterRecordId": " " }),
                gone(RemovalReason::Deleted, None),
            ),
            (
                "a converted Lead became its Contact",
                SObject::Lead,
                serde_json::json!({ "IsConverted": true, "ConvertedContactId": CONTACT, "ConvertedAccountId": ACCOUNT }),
                gone(RemovalReason::Converted, reference(SObject::Contact, CONTACT)),
            ),
            (
                "converted without a Contact: its Account",
                SObject::Lead,
                serde_json::json!({ "IsConverted": true, "ConvertedContactId": null, "ConvertedAccountId": ACCOUNT }),
                gone(RemovalReason::Converted, reference(SObject::Account, ACCOUNT)),
            ),
            (
                "converted, then deleted: still says where the person went",
                SObject::Lead,
                serde_json::json!({ "IsDeleted": true, "IsConverted": true, "ConvertedContactId": CONTACT }),
                gone(RemovalReason::Converted, reference(SObject::Contact, CONTACT)),
            ),
            (
                "IsConverted means nothing on a Contact",
                SObject::Contact,
                serde_json::json!({ "IsConverted": true, "ConvertedContactId": CONTACT }),
                Fate::Live,
            ),
        ];
        for (what, object, row, expected) in cases {
            let life: Life = serde_json::from_value(row).expect(what);
            assert_eq!(life.fate(object).expect(what), expected, "{what}");
        }
    }

    #[test]
    fn a_successor_that_is_no_id_is_an_error_not_a_guess() {
        let life = Life { is_deleted: true, master_record_id: Some("not an id".to_owned()), ..Life::default() };
        assert!(life.fate(SObject::Lead).is_err());
        let (fate, bad) = life.fate_without_bad_successor(SObject::Lead);
        assert_eq!(fate, gone(RemovalReason::Merged, None), "it left all the same");
        assert!(bad.is_some());
        let converted = Life { is_converted: true, converted_contact_id: Some("003".to_owned()), ..Life::default() };
        assert_eq!(converted.fate_without_bad_successor(SObject::Lead).0, gone(RemovalReason::Converted, None));
    }

    #[test]
    fn labels_are_the_wire_form() {
        for reason in [RemovalReason::Deleted, RemovalReason::Merged, RemovalReason::Converted] {
            assert_eq!(serde_json::to_value(reason).expect("json"), label(reason));
        }
    }

    #[test]
    fn only_what_front_agent_may_hold_is_announced_gone() {
        let deleted = gone(RemovalReason::Deleted, None);
        let cases = [
            (Fate::Live, false, Some(true)),
            (Fate::Live, true, Some(true)),
            (deleted.clone(), true, Some(false)),
            (deleted, false, None),
        ];
        for (fate, held, expected) in cases {
            assert_eq!(announce(&fate, held), expected, "{fate:?} held={held}");
        }
    }
}
