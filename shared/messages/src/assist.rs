//! `assist.completed.v1`: Front Agent says a call it assisted has ended.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{EventId, TenantId};
use crate::sobject::SalesforceRef;
use crate::{Message, timestamp, topology};

/// A call assisted by Front Agent has ended; the activity-writer turns each one into exactly one
/// Salesforce Task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistCompletedV1 {
    /// Unique per assist; also the AMQP `message_id` and the Task's `CallObject`.
    pub event_id: EventId,
    /// The tenant whose org gets the Task.
    pub tenant_id: TenantId,
    /// When Front Agent produced the event.
    #[serde(with = "timestamp")]
    pub occurred_at: OffsetDateTime,
    /// The agent who took the call.
    pub user: AssistUser,
    /// The other party.
    pub customer: AssistCustomer,
    /// The call itself.
    pub call: Call,
    /// What Front Agent made of the call.
    pub assist: Assist,
}

/// The Front Agent user (agent) who took the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssistUser {
    /// Front Agent's user id, 1 to 128 characters; the key of the user's link to a Salesforce
    /// user, who then owns the Task.
    pub id: String,
    /// Display name, at most 255 characters.
    #[serde(default)]
    pub name: Option<String>,
}

/// The customer on the call, as Front Agent knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssistCustomer {
    /// Front Agent's customer id, 1 to 128 characters.
    pub id: String,
    /// Family name first (e.g. `佐藤 花子`), at most 255 characters; may be empty for an unknown
    /// caller.
    #[serde(default)]
    pub name: Option<String>,
    /// At most 255 characters.
    #[serde(default)]
    pub company: Option<String>,
    /// At most 320 characters.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone numbers as Front Agent stores them (not necessarily E.164), at most 10, each 1 to 64
    /// characters.
    // The schema allows leaving it out but not `null`, hence skipped when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<String>>,
    /// The Salesforce record, when the customer came from a `customer.upsert` or
    /// `customer.linked` message.
    #[serde(default)]
    pub salesforce: Option<SalesforceRef>,
}

/// The call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Who dialled.
    pub direction: CallDirection,
    /// When the call began; the Task's `ActivityDate` is this date in `FA_SF_TIMEZONE`.
    #[serde(with = "timestamp")]
    pub started_at: OffsetDateTime,
    /// When the call ended.
    #[serde(default, with = "timestamp::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// Length of the call, 0 to 86,400 seconds.
    pub duration_seconds: u32,
    /// The customer's number as dialled or shown, at most 64 characters.
    #[serde(default)]
    pub customer_number: Option<String>,
}

/// Who dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// The customer called in.
    Inbound,
    /// The agent called out.
    Outbound,
}

/// What Front Agent made of the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assist {
    /// The call's summary, at most 100,000 characters.
    pub summary: String,
    /// The conversation, one entry per utterance, at most 20,000.
    // The schema allows leaving it out but not `null`, hence skipped when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Vec<Utterance>>,
}

/// One utterance of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    /// Who spoke.
    pub speaker: Speaker,
    /// What they said.
    pub text: String,
    /// Seconds from the start of the call, not negative.
    // The schema allows leaving it out but not `null`, hence skipped when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_seconds: Option<f64>,
}

/// Who spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The Front Agent user (`担当者:` in the Task).
    Agent,
    /// The customer (`お客様:` in the Task).
    Customer,
}

impl Message for AssistCompletedV1 {
    const TYPE: &'static str = "assist.completed.v1";
    const EXCHANGE: &'static str = topology::ASSIST_EXCHANGE;
    const ROUTING_KEY: &'static str = topology::ASSIST_COMPLETED;

    fn message_id(&self) -> String {
        self.event_id.to_string()
    }

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}
