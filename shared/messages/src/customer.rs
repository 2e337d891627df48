//! `customer.upsert.v1`, `customer.removed.v1` and `customer.linked.v1`: what the connector tells
//! Front Agent about its customers.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{SalesforceId, TenantId, strict};
use crate::sobject::{SObject, SalesforceRef};
use crate::timestamp::{self, format_utc_millis};
use crate::{Message, topology};

/// Create or update one Front Agent customer from a Salesforce record; published by the importer.
///
/// Front Agent upserts by `(tenant_id, source.object, source.id)`, so sending a record twice is
/// harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUpsertV1 {
    /// The tenant whose org the record is in.
    pub tenant_id: TenantId,
    /// The import run that read the record (its `import.completed` has the same `run_id`); not
    /// empty.
    pub import_run_id: String,
    /// Where the customer comes from.
    pub source: CustomerSource,
    /// The customer, mapped from the record as docs/behaviour.md §3 says.
    pub customer: CustomerFields,
}

/// The Salesforce record a customer comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerSource {
    /// Always `"salesforce"`.
    pub system: SourceSystem,
    /// The record's object.
    pub object: SObject,
    /// The record's id; the schema wants the 18-character form, so a 15-character one is
    /// refused here instead of being converted.
    #[serde(deserialize_with = "strict::exactly_18")]
    pub id: SalesforceId,
    /// The record's `SystemModstamp`.
    #[serde(with = "timestamp")]
    pub modified_at: OffsetDateTime,
}

impl CustomerSource {
    /// `<tenant_id>:<object>:<id>:<tag><modified_at>`: the `message_id` of
    /// one version of the record (amqp.md, the AMQP contract outside this repository).
    fn version_id(&self, tenant_id: &TenantId, tag: &str) -> String {
        format!("{tenant_id}:{}:{}:{tag}{}", self.object, self.id, format_utc_millis(self.modified_at))
    }
}

/// The system a customer comes from; the schema knows only one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceSystem {
    /// Salesforce.
    #[default]
    #[serde(rename = "salesforce")]
    Salesforce,
}

/// The customer's fields.
///
/// `company` and `email` (and a phone's `e164`) are required but may be `null`: they are written
/// as `null` when `None`, and a body that leaves them out is refused, as the schema does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerFields {
    /// Family name first; not empty (records without a name are skipped, not published).
    pub name: String,
    /// The company, or `None` (e.g. a Contact without an Account).
    // `deserialize_with` makes serde treat a missing field as an error instead of `None`.
    #[serde(deserialize_with = "Option::deserialize")]
    pub company: Option<String>,
    /// The e-mail address, or `None` (always for an Account).
    #[serde(deserialize_with = "Option::deserialize")]
    pub email: Option<String>,
    /// The record's phone numbers; may be empty.
    pub phones: Vec<CustomerPhone>,
}

/// A phone number of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerPhone {
    /// As stored in Salesforce; not empty.
    pub number: String,
    /// Its E.164 form (`^\+[1-9][0-9]{6,14}$`), or `None` when it cannot be normalised.
    #[serde(deserialize_with = "Option::deserialize")]
    pub e164: Option<String>,
}

impl Message for CustomerUpsertV1 {
    const TYPE: &'static str = "customer.upsert.v1";
    const EXCHANGE: &'static str = topology::SYNC_EXCHANGE;
    const ROUTING_KEY: &'static str = topology::CUSTOMER_UPSERT;

    /// `<tenant_id>:<object>:<id>:<modified_at>`: one id per version of a record, so a record
    /// re-read by an overlapping run is recognisably the same message.
    fn message_id(&self) -> String {
        self.source.version_id(&self.tenant_id, "")
    }

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}

/// A record Front Agent holds as a customer is gone from Salesforce; published by the importer.
///
/// Front Agent removes (or archives) the customer `(tenant_id, source.object, source.id)` and
/// moves what it keeps about them to `successor`, when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRemovedV1 {
    /// The tenant whose org the record was in.
    pub tenant_id: TenantId,
    /// The import run that saw the record gone; not empty.
    pub import_run_id: String,
    /// The record that is gone. Its `modified_at` is the record's `SystemModstamp` when it was
    /// seen gone, or, for a record no longer visible at all, when the importer learned it was.
    pub source: CustomerSource,
    /// Why the record is gone.
    pub reason: RemovalReason,
    /// The record the customer became: the merge's master, or the Contact (else the Account) a
    /// Lead was converted into; `None` for a deletion. Written as `null`, never left out.
    #[serde(deserialize_with = "Option::deserialize")]
    pub successor: Option<SalesforceRef>,
}

/// Why a record left Front Agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// In the recycle bin, or purged from it.
    Deleted,
    /// Deleted by a merge into another record (`MasterRecordId`).
    Merged,
    /// A Lead converted into a Contact (and Account).
    Converted,
}

impl Message for CustomerRemovedV1 {
    const TYPE: &'static str = "customer.removed.v1";
    const EXCHANGE: &'static str = topology::SYNC_EXCHANGE;
    const ROUTING_KEY: &'static str = topology::CUSTOMER_REMOVED;

    /// `<tenant_id>:<object>:<id>:removed:<modified_at>`: never equal to an upsert's id, and the
    /// same for a removal announced again by an overlapping run.
    fn message_id(&self) -> String {
        self.source.version_id(&self.tenant_id, "removed:")
    }

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}

/// A Front Agent customer is now tied to a Salesforce record; published by the activity-writer
/// when it matched or created the record for a customer the event did not tie to Salesforce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerLinkedV1 {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Front Agent's customer id; not empty.
    pub customer_id: String,
    /// The record the customer is now tied to.
    pub salesforce: SalesforceRef,
    /// How the record was found.
    pub how: LinkMethod,
    /// When the link was recorded.
    #[serde(with = "timestamp")]
    pub linked_at: OffsetDateTime,
}

/// How the activity-writer found the record for a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMethod {
    /// A record's phone number equals one of the customer's, compared in E.164.
    MatchedPhone,
    /// A record's e-mail equals the customer's, ignoring case.
    MatchedEmail,
    /// Creating a record hit the org's duplicate rules, which named this record.
    MatchedDuplicateRule,
    /// The writer created the record.
    Created,
}

impl Message for CustomerLinkedV1 {
    const TYPE: &'static str = "customer.linked.v1";
    const EXCHANGE: &'static str = topology::SYNC_EXCHANGE;
    const ROUTING_KEY: &'static str = topology::CUSTOMER_LINKED;

    /// `<tenant_id>:<customer id>:<salesforce id>`.
    fn message_id(&self) -> String {
        format!("{}:{}:{}", self.tenant_id, self.customer_id, self.salesforce.id)
    }

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}
