//! What becomes of an event that cannot go on now, decided in one place
//! (docs/behaviour.md §4, "failure policy"; amqp.md, the AMQP contract outside this repository):
//! refusals the data or the
//! tenant caused are dead-lettered at once with the contract's code, passing
//! failures wait on the retry queues, a paused tenant's events wait as long
//! as the pause.

use std::time::Duration;

use fa_amqp::{Failure as Refusal, FailureCode, Outcome};
use fa_messages::ActivityFailureCode;

use crate::{org::Failure, pause::PAUSE_FOR};

/// Why an event did not succeed now: a code of `activity.failed` for what
/// is dead-lettered, or one of the writer's own for what waits and retries.
/// Read back from a dead-lettered message with `Failure::code_as`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterCode {
    /// A code of `activity.failed` (the schema's enum): dead-lettered.
    Failed(ActivityFailureCode),
    /// Salesforce failed in passing.
    SalesforceUnavailable,
    /// A lookup query was refused (a field the API user lost, a cursor).
    SalesforceQueryFailed,
    /// The tenant's API allowance is (nearly) spent.
    TenantPaused,
    /// PostgreSQL failed in passing.
    DatabaseUnavailable,
    /// RabbitMQ did not confirm a message the event caused.
    PublishFailed,
    /// A batch left the event without an outcome (a bug; retried).
    NotHandled,
    /// The event's record could not be found or made in this batch.
    NotResolved,
    /// Another writer is creating this caller's record.
    ClaimPending,
    /// An attempt at the event's Task began moments ago.
    AttemptInFlight,
    /// The Task's record was deleted or merged under it.
    RecordGone,
    /// A Task with this event's CallObject exists but cannot be read back.
    TaskUnreadable,
    /// Salesforce answered a Task id that is not one.
    UnreadableTaskId,
    /// The connection has no Salesforce user of its own yet.
    ConnectionIncomplete,
}

impl FailureCode for WriterCode {
    fn as_str(&self) -> &'static str {
        match self {
            WriterCode::Failed(code) => code.as_str(),
            WriterCode::SalesforceUnavailable => "salesforce_unavailable",
            WriterCode::SalesforceQueryFailed => "salesforce_query_failed",
            WriterCode::TenantPaused => "tenant_paused",
            WriterCode::DatabaseUnavailable => "database_unavailable",
            WriterCode::PublishFailed => "publish_failed",
            WriterCode::NotHandled => "not_handled",
            WriterCode::NotResolved => "not_resolved",
            WriterCode::ClaimPending => "claim_pending",
            WriterCode::AttemptInFlight => "attempt_in_flight",
            WriterCode::RecordGone => "record_gone",
            WriterCode::TaskUnreadable => "task_unreadable",
            WriterCode::UnreadableTaskId => "unreadable_task_id",
            WriterCode::ConnectionIncomplete => "connection_incomplete",
        }
    }
}

/// The event can never succeed: `invalid_event`.
pub const INVALID_EVENT: WriterCode = WriterCode::Failed(ActivityFailureCode::InvalidEvent);
/// The tenant has no connection: `not_connected`.
pub const NOT_CONNECTED: WriterCode = WriterCode::Failed(ActivityFailureCode::NotConnected);
/// Salesforce refused the data: `salesforce_rejected`.
pub const SALESFORCE_REJECTED: WriterCode = WriterCode::Failed(ActivityFailureCode::SalesforceRejected);

/// The code `activity.failed` reports for a dead-lettered `failure`: the
/// verdicts' own contract codes, `retries_exhausted` when fa-amqp gave up,
/// and `invalid_event` for anything else (fa-amqp's `invalid_message` and
/// `handler_bug`), the schema having no other code.
pub fn failed_code(failure: &Refusal) -> ActivityFailureCode {
    match (failure.code_as::<WriterCode>(), failure.code_as::<fa_amqp::Code>()) {
        (Some(WriterCode::Failed(code)), _) => code,
        (_, Some(fa_amqp::Code::RetriesExhausted)) => ActivityFailureCode::RetriesExhausted,
        _ => ActivityFailureCode::InvalidEvent,
    }
}

/// The outcome of an event whose org call failed with `failure`.
pub fn from_failure(failure: &Failure) -> Outcome {
    match failure {
        Failure::Transient(message) => transient(message),
        Failure::Pause(message) => paused(PAUSE_FOR, message),
        Failure::NotConnected(message) => Outcome::Reject(Refusal::new(
            NOT_CONNECTED,
            format!("{message}; connect the org in Front Agent's admin screen and send the event again"),
        )),
        Failure::Rejected(api) => rejected(api.code.as_str(), &api.message),
    }
}

/// Salesforce refused the event's data: dead-letter it with Salesforce's
/// code and words.
pub fn rejected(salesforce_code: &str, message: &str) -> Outcome {
    Outcome::Reject(
        Refusal::new(SALESFORCE_REJECTED, format!("Salesforce refused the data ({salesforce_code}): {message}"))
            .with_salesforce_error_code(salesforce_code),
    )
}

/// A passing failure: try again with growing delay.
pub fn transient(message: &str) -> Outcome {
    Outcome::Retry { failure: Refusal::new(WriterCode::SalesforceUnavailable, message.to_owned()), after: None }
}

/// The tenant is paused for `left`: wait that long, however long the event
/// has waited already (a pause drops nothing).
pub fn paused(left: Duration, message: &str) -> Outcome {
    Outcome::Wait {
        failure: Refusal::new(
            WriterCode::TenantPaused,
            format!("the org's API allowance is (nearly) spent: {message}"),
        ),
        after: left,
    }
}

/// The outcome of an event whose lookup query failed with `failure`: a
/// refused query is not Salesforce refusing the event's data (a field the
/// API user lost access to, an expired cursor), so it is retried, not
/// dead-lettered.
pub fn from_query_failure(failure: &Failure) -> Outcome {
    match failure {
        Failure::Rejected(api) => Outcome::Retry {
            failure: Refusal::new(WriterCode::SalesforceQueryFailed, format!("{}: {}", api.code, api.message))
                .with_salesforce_error_code(api.code.as_str()),
            after: None,
        },
        other => from_failure(other),
    }
}

/// A passing failure of our own side (database, publishing).
pub fn internal(code: WriterCode, message: &str) -> Outcome {
    Outcome::Retry { failure: Refusal::new(code, message.to_owned()), after: None }
}
