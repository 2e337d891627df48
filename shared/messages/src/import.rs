//! `import.requested.v1` and `import.completed.v1`: starting and reporting the importer's runs.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error_detail::ErrorDetail;
use crate::ids::TenantId;
use crate::sobject::SObject;
use crate::timestamp::{self, format_utc_millis};
use crate::{Message, topology};

/// The error code of a run that a crash or SIGTERM interrupted (docs/behaviour.md §3).
pub const IMPORT_INTERRUPTED: &str = "interrupted";

/// Run an import for a tenant now; consumed by the importer from `importer.commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequestedV1 {
    /// The tenant to import.
    pub tenant_id: TenantId,
    /// Why the run is wanted.
    pub reason: ImportReason,
    /// When it was asked for.
    #[serde(with = "timestamp")]
    pub requested_at: OffsetDateTime,
}

/// Why an import run is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportReason {
    /// The tenant's org was just connected (sent by the token-broker).
    Connected,
    /// The tenant's interval elapsed.
    Scheduled,
    /// An admin or SRE asked for it.
    Manual,
    /// The previous run stopped at the per-run cap and more records remain.
    CatchUp,
}

impl ImportReason {
    /// The reason as it appears in messages, e.g. `"catch_up"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportReason::Connected => "connected",
            ImportReason::Scheduled => "scheduled",
            ImportReason::Manual => "manual",
            ImportReason::CatchUp => "catch_up",
        }
    }
}

impl std::fmt::Display for ImportReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Message for ImportRequestedV1 {
    const TYPE: &'static str = "import.requested.v1";
    const EXCHANGE: &'static str = topology::COMMANDS_EXCHANGE;
    const ROUTING_KEY: &'static str = topology::IMPORT_REQUESTED;

    /// `<tenant_id>:<reason>:<requested_at>`. The contract accepts any unique id; deriving it from
    /// the body means a publisher that retries after a lost confirm sends the same id again.
    fn message_id(&self) -> String {
        format!("{}:{}:{}", self.tenant_id, self.reason, format_utc_millis(self.requested_at))
    }

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}

/// One import run of one tenant has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCompletedV1 {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The run's id, also each of its `customer.upsert`s' `import_run_id`; not empty.
    pub run_id: String,
    /// How the run ended.
    pub status: ImportStatus,
    /// When the run started.
    #[serde(with = "timestamp")]
    pub started_at: OffsetDateTime,
    /// When the run ended.
    #[serde(with = "timestamp")]
    pub finished_at: OffsetDateTime,
    /// Counts per object the run read.
    pub objects: Vec<ObjectCounts>,
    /// The run stopped at the per-run cap; a `catch_up` run follows.
    pub more_pending: bool,
    /// Why the run failed, e.g. code [`IMPORT_INTERRUPTED`].
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

/// How an import run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Every record read was published (or skipped).
    Succeeded,
    /// The run stopped early; what was confirmed stays published.
    Failed,
}

impl ImportStatus {
    /// The status as it appears in messages and in the admin API, e.g. `"succeeded"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Succeeded => "succeeded",
            ImportStatus::Failed => "failed",
        }
    }
}

/// What a run did with one object's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCounts {
    /// The object.
    pub object: SObject,
    /// Records published as `customer.upsert` and confirmed by the broker.
    pub published: u64,
    /// Records read but not published, for having no name.
    pub skipped: u64,
    /// `customer.removed` published (and confirmed) for records deleted, merged or converted.
    /// `None`, which the contract reads as 0, is left out of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
}

impl Message for ImportCompletedV1 {
    const TYPE: &'static str = "import.completed.v1";
    const EXCHANGE: &'static str = topology::SYNC_EXCHANGE;
    const ROUTING_KEY: &'static str = topology::IMPORT_COMPLETED;

    /// The run's id.
    fn message_id(&self) -> String {
        self.run_id.clone()
    }

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_wire_form() {
        for status in [ImportStatus::Succeeded, ImportStatus::Failed] {
            assert_eq!(serde_json::to_value(status).expect("json"), status.as_str());
        }
        for reason in [ImportReason::Connected, ImportReason::Scheduled, ImportReason::Manual, ImportReason::CatchUp] {
            assert_eq!(serde_json::to_value(reason).expect("json"), reason.as_str());
        }
    }
}
