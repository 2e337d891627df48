//! What becomes of an event that cannot go on now, decided in one place
//! (docs/behaviour.md §4, "failure policy"; amqp.md): refusals the data or the
//! tenant caused are dead-lettered at once with the contract's code, passing
//! failures wait on the retry queues, a paused tenant's events wait as long
//! as the pause.

use std::time::Duration;

use fa_amqp::{Failure as Refusal, Outcome};
use fa_messages::ActivityFailureCode;

use crate::{org::Failure, pause::PAUSE_FOR};

/// Codes of `activity.failed` (the schema's enum).
pub const NOT_CONNECTED: &str = ActivityFailureCode::NotConnected.as_str();
/// Salesforce refused the data.
pub const SALESFORCE_REJECTED: &str = ActivityFailureCode::SalesforceRejected.as_str();

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
    Outcome::Retry { failure: Refusal::new("salesforce_unavailable", message.to_owned()), after: None }
}

/// The tenant is paused for `left`: wait that long, however long the event
/// has waited already (a pause drops nothing).
pub fn paused(left: Duration, message: &str) -> Outcome {
    Outcome::Wait {
        failure: Refusal::new("tenant_paused", format!("the org's API allowance is (nearly) spent: {message}")),
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
            failure: Refusal::new("salesforce_query_failed", format!("{}: {}", api.code, api.message))
                .with_salesforce_error_code(api.code.as_str()),
            after: None,
        },
        other => from_failure(other),
    }
}

/// A passing failure of our own side (database, publishing).
pub fn internal(code: &str, message: &str) -> Outcome {
    Outcome::Retry { failure: Refusal::new(code, message.to_owned()), after: None }
}
