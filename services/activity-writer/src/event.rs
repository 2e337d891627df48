//! Reading an `assist.completed.v1` delivery: a body that is not JSON, or
//! breaks the contract's schema, can never succeed and is refused with a
//! reason a person can act on.

use fa_amqp::{Failure, Incoming};
use fa_messages::AssistCompletedV1;

use crate::verdict::INVALID_EVENT;

/// The schema the body must satisfy.
pub const TYPE: &str = "assist.completed.v1";

/// Most schema complaints quoted in a refusal.
const MAX_COMPLAINTS: usize = 5;

/// The event in `message`, checked against its schema.
///
/// # Errors
/// An `invalid_event` [`Failure`] naming what is wrong.
pub fn parse(message: &Incoming) -> Result<AssistCompletedV1, Failure> {
    let body: serde_json::Value = serde_json::from_slice(&message.body)
        .map_err(|e| Failure::new(INVALID_EVENT, format!("the body is not JSON: {e}")))?;
    if let Err(complaints) = fa_messages::validation::validate(TYPE, &body) {
        let shown: Vec<&str> = complaints.iter().take(MAX_COMPLAINTS).map(String::as_str).collect();
        let more = complaints.len().saturating_sub(MAX_COMPLAINTS);
        let tail = if more > 0 { format!(" (and {more} more)") } else { String::new() };
        return Err(Failure::new(
            INVALID_EVENT,
            format!("the event breaks the {TYPE} schema: {}{tail}", shown.join("; ")),
        ));
    }
    serde_json::from_value(body).map_err(|e| Failure::new(INVALID_EVENT, format!("the event cannot be read: {e}")))
}

/// The tenant a delivery belongs to, for grouping: the body's `tenant_id`
/// (the body is what the Task is written from), else the `tenant_id`
/// header, else empty (such a delivery is refused in its batch).
pub fn tenant_of(message: &Incoming) -> String {
    #[derive(serde::Deserialize)]
    struct Tenant {
        tenant_id: String,
    }
    serde_json::from_slice::<Tenant>(&message.body)
        .ok()
        .map(|t| t.tenant_id)
        .or_else(|| message.tenant_id())
        .unwrap_or_default()
}

/// `event` when its `tenant_id` is the tenant its delivery was grouped by
/// ([`tenant_of`]); a body that says two things (a duplicated key read one
/// way for grouping and another for writing) could otherwise put one
/// tenant's call into another tenant's org.
///
/// # Errors
/// An `invalid_event` [`Failure`].
pub fn same_tenant(event: AssistCompletedV1, message: &Incoming) -> Result<AssistCompletedV1, Failure> {
    if event.tenant_id.as_str() == tenant_of(message) {
        Ok(event)
    } else {
        Err(Failure::new(INVALID_EVENT, "the event's tenant_id is ambiguous (given twice, or unlike its header)"))
    }
}
