//! A record as the run handles it: read, mapped (off the async workers,
//! beside the publishing) and decided: upsert, skip, or removal.

use fa_messages::{CustomerRemovedV1, CustomerUpsertV1, RemovalReason, SObject, SalesforceRef, TenantId};
use time::OffsetDateTime;

use crate::{
    mapping::{self, Mapped, Seen},
    pending::Pending,
    removal,
    watermark::Stamped,
};

/// A record read and already mapped (in the task that fetched its page, so
/// mapping, phone normalisation included, runs beside publishing); its
/// message names the run that publishes it ([`Prepared::message`]).
pub(super) struct Prepared {
    pub(super) modified_at: OffsetDateTime,
    pub(super) id: String,
    pub(super) object: SObject,
    pub(super) action: Action,
}

/// What the run does with a record read.
pub(super) enum Action {
    /// A live record: publish `customer.upsert`.
    Upsert(Pending<CustomerUpsertV1>),
    /// A live record without a name: counted as skipped.
    NoName,
    /// A live record whose row could not be mapped: skipped, with a warning.
    Unmappable(mapping::MappingError),
    /// Gone from Salesforce; whether Front Agent must hear of it is decided
    /// per batch, against the customer index ([`Importer::decide_removals`]).
    Gone { reason: RemovalReason, successor: Option<SalesforceRef> },
    /// Gone, and Front Agent holds it: publish `customer.removed`.
    Remove(Pending<CustomerRemovedV1>),
    /// Gone, and never Front Agent's (first seen gone): nothing to say, not
    /// counted; the watermark still moves past it.
    Unheld,
}

impl Prepared {
    pub(super) fn new(tenant: &TenantId, seen: Seen) -> Self {
        let Seen { row, life } = seen;
        let (modified_at, id, object) = (row.modified_at(), row.id().to_owned(), row.object());
        let (fate, bad_successor) = life.fate_without_bad_successor(object);
        if let Some(e) = bad_successor {
            tracing::warn!(tenant_id = %tenant, %object, record_id = %id, error = %e,
                "a record left Salesforce naming a successor that is no id; announced without one");
        }
        let action = match fate {
            removal::Fate::Gone { reason, successor } => Action::Gone { reason, successor },
            removal::Fate::Live => match mapping::map_owned(tenant, row) {
                Ok(Mapped::Customer(message)) => Action::Upsert(message),
                Ok(Mapped::NoName) => Action::NoName,
                Err(e) => Action::Unmappable(e),
            },
        };
        Self { modified_at, id, object, action }
    }

    /// A record found gone outside the cursor (deleted list, reconciliation).
    pub(super) fn removed(message: Pending<CustomerRemovedV1>) -> Self {
        let source = &message.content().source;
        Self {
            modified_at: source.modified_at,
            id: source.id.as_str().to_owned(),
            object: source.object,
            action: Action::Remove(message),
        }
    }

    /// The message run `run_id` publishes for the record, if it has one.
    pub(super) fn message(&mut self, run_id: &str) -> Option<Outgoing<'_>> {
        match &mut self.action {
            Action::Upsert(message) => Some(Outgoing::Upsert(message.in_run(run_id))),
            Action::Remove(message) => Some(Outgoing::Removed(message.in_run(run_id))),
            _ => None,
        }
    }
}

/// A message of a batch, in read order.
#[derive(Clone, Copy)]
pub(super) enum Outgoing<'m> {
    Upsert(&'m CustomerUpsertV1),
    Removed(&'m CustomerRemovedV1),
}

impl<'m> Outgoing<'m> {
    pub(super) fn upsert(self) -> Option<&'m CustomerUpsertV1> {
        match self {
            Self::Upsert(message) => Some(message),
            Self::Removed(_) => None,
        }
    }

    pub(super) fn removed(self) -> Option<&'m CustomerRemovedV1> {
        match self {
            Self::Removed(message) => Some(message),
            Self::Upsert(_) => None,
        }
    }

    pub(super) fn same_kind(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl Stamped for Prepared {
    fn modified_at(&self) -> OffsetDateTime {
        self.modified_at
    }
    fn id(&self) -> &str {
        &self.id
    }
}
