//! `activity.written.v1` and `activity.failed.v1`: the outcome of one assist event, published by
//! the activity-writer.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error_detail::ErrorDetail;
use crate::ids::{EventId, SalesforceId, TenantId, strict};
use crate::sobject::SalesforceRef;
use crate::{Message, timestamp, topology};

/// The Task for an assist event exists in Salesforce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityWrittenV1 {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The `assist.completed` event the Task is for.
    pub event_id: EventId,
    /// The Task's id; the schema wants the 18-character form with the Task prefix `00T`, and so
    /// does deserialising.
    #[serde(deserialize_with = "strict::task_id")]
    pub task_id: SalesforceId,
    /// The record the Task is on (its `WhoId`, or `WhatId` for an Account).
    pub target: SalesforceRef,
    /// Who owns the Task.
    pub owner: TaskOwner,
    /// When the writer saw the Task exist.
    #[serde(with = "timestamp")]
    pub written_at: OffsetDateTime,
    /// Attempts it took to write the Task, counting the successful one; at least 1.
    pub attempts: NonZeroU32,
}

/// Who owns the Task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOwner {
    /// The owning Salesforce user; 18 characters with the User prefix `005`.
    #[serde(deserialize_with = "strict::user_id")]
    pub salesforce_user_id: SalesforceId,
    /// `true` when the agent has no linked (active) Salesforce user and the connection's own user
    /// owns the Task.
    pub fallback: bool,
}

impl Message for ActivityWrittenV1 {
    const TYPE: &'static str = "activity.written.v1";
    const EXCHANGE: &'static str = topology::SYNC_EXCHANGE;
    const ROUTING_KEY: &'static str = topology::ACTIVITY_WRITTEN;

    /// `written:<event_id>`.
    fn message_id(&self) -> String {
        format!("written:{}", self.event_id)
    }

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}

/// An assist event was dead-lettered and no Task was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityFailedV1 {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The `assist.completed` event that failed.
    pub event_id: EventId,
    /// Why.
    pub error: ErrorDetail<ActivityFailureCode>,
    /// Attempts made before the event was given up; at least 1.
    pub attempts: NonZeroU32,
    /// When it was given up.
    #[serde(with = "timestamp")]
    pub failed_at: OffsetDateTime,
}

/// Why no Task could be written for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityFailureCode {
    /// The event is malformed or breaks its schema.
    InvalidEvent,
    /// The tenant has no Salesforce connection (never made, or deleted).
    NotConnected,
    /// Salesforce refused the data; `salesforce_error_code` says how.
    SalesforceRejected,
    /// Passing failures went on for longer than the writer retries (24 hours).
    RetriesExhausted,
}

impl ActivityFailureCode {
    /// Every code.
    pub const ALL: [Self; 4] =
        [Self::InvalidEvent, Self::NotConnected, Self::SalesforceRejected, Self::RetriesExhausted];

    /// The code whose wire form is `code`, if any.
    pub fn from_wire(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|known| known.as_str() == code)
    }

    /// The code as it appears in messages, e.g. `"not_connected"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActivityFailureCode::InvalidEvent => "invalid_event",
            ActivityFailureCode::NotConnected => "not_connected",
            ActivityFailureCode::SalesforceRejected => "salesforce_rejected",
            ActivityFailureCode::RetriesExhausted => "retries_exhausted",
        }
    }
}

impl std::fmt::Display for ActivityFailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Message for ActivityFailedV1 {
    const TYPE: &'static str = "activity.failed.v1";
    const EXCHANGE: &'static str = topology::SYNC_EXCHANGE;
    const ROUTING_KEY: &'static str = topology::ACTIVITY_FAILED;

    /// `failed:<event_id>`.
    fn message_id(&self) -> String {
        format!("failed:{}", self.event_id)
    }

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_code_reads_back_from_its_wire_form() {
        for code in ActivityFailureCode::ALL {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(ActivityFailureCode::from_wire(code.as_str()), Some(code));
        }
        assert_eq!(ActivityFailureCode::from_wire("handler_bug"), None);
    }
}
