//! The messages the Salesforce connector for Front Agent exchanges over RabbitMQ.
//!
//! Front Agent and the connector's services (token-broker, importer, activity-writer) agree on
//! the message contract in `../shared/contracts/`, beside the checkout and outside this repository
//! (`amqp.md` and `schemas/`; the schemas are copied into `shared/messages/schemas/`). This crate is the Rust
//! side of that contract, so that no service hand-writes a body, a routing key or a
//! `message_id`:
//!
//! - one type per message ([`AssistCompletedV1`], [`CustomerUpsertV1`], [`CustomerRemovedV1`],
//!   [`CustomerLinkedV1`],
//!   [`ActivityWrittenV1`], [`ActivityFailedV1`], [`ImportRequestedV1`], [`ImportCompletedV1`]),
//!   each implementing [`Message`], which names its exchange, routing key, AMQP `type` and
//!   `message_id`;
//! - identifiers ([`TenantId`], [`EventId`], [`SalesforceId`], [`SObject`]) that refuse bad input
//!   when built and when deserialised, so a value that exists is a value the schema accepts;
//! - [`timestamp`], the one way timestamps are written (UTC, milliseconds, `Z`);
//! - [`topology`], the exchange, routing key and queue names;
//! - the schemas themselves ([`schema`]) and [`validation::validate`], so any crate's tests can
//!   prove what it publishes matches the contract.
//!
//! Deserialising ignores unknown fields (a newer publisher may add some) and refuses a body
//! missing a required field, as amqp.md asks.
//!
//! ```
//! use fa_messages::{ImportReason, ImportRequestedV1, Message, TenantId};
//!
//! let request = ImportRequestedV1 {
//!     tenant_id: TenantId::new("acme-jp")?,
//!     reason: ImportReason::Connected,
//!     requested_at: time::macros::datetime!(2026-11-25 00:00 UTC),
//! };
//! assert_eq!(ImportRequestedV1::EXCHANGE, "salesforce.commands");
//! assert_eq!(request.message_id(), "acme-jp:connected:2026-11-25T00:00:00.000Z");
//! assert_eq!(fa_messages::validation::validate_message(&request), Ok(()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod activity;
mod assist;
mod customer;
mod error_detail;
mod ids;
mod import;
mod schema;
mod sobject;
pub mod timestamp;
pub mod topology;
pub mod validation;

pub use activity::{ActivityFailedV1, ActivityFailureCode, ActivityWrittenV1, TaskOwner};
pub use assist::{Assist, AssistCompletedV1, AssistCustomer, AssistUser, Call, CallDirection, Speaker, Utterance};
pub use customer::{
    CustomerFields, CustomerLinkedV1, CustomerPhone, CustomerRemovedV1, CustomerSource, CustomerUpsertV1, LinkMethod,
    RemovalReason, SourceSystem,
};
pub use error_detail::ErrorDetail;
pub use ids::{EventId, InvalidId, SalesforceId, TenantId};
pub use import::{IMPORT_INTERRUPTED, ImportCompletedV1, ImportReason, ImportRequestedV1, ImportStatus, ObjectCounts};
pub use schema::{DEFS, MESSAGE_TYPES, SCHEMAS, schema};
pub use sobject::{SObject, SalesforceRef, UnknownSObject};
pub use timestamp::format_utc_millis;

/// A message of the contract: its body type plus where and how it is published.
pub trait Message: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {
    /// The schema name, also the AMQP `type` property, e.g. "customer.upsert.v1".
    const TYPE: &'static str;
    /// The exchange it is published to, e.g. "salesforce.sync".
    const EXCHANGE: &'static str;
    /// Its routing key, e.g. "customer.upsert".
    const ROUTING_KEY: &'static str;
    /// The AMQP message_id, as amqp.md defines it per message.
    fn message_id(&self) -> String;
    /// The tenant it belongs to (the AMQP header tenant_id).
    fn tenant_id(&self) -> &TenantId;
}
