//! The names amqp.md (the AMQP contract, outside this repository) fixes: exchanges, routing keys and the
//! queues the services consume.
//!
//! Declaring them (types, arguments, bindings) is `fa-amqp`'s business; these are only the names,
//! kept in one place so a typo cannot route messages into the void.

/// Topic exchange Front Agent publishes `assist.completed` to.
pub const ASSIST_EXCHANGE: &str = "frontagent.assist";
/// Topic exchange the connector publishes its results to, for Front Agent.
pub const SYNC_EXCHANGE: &str = "salesforce.sync";
/// Direct exchange for commands to the connector (`import.requested`).
pub const COMMANDS_EXCHANGE: &str = "salesforce.commands";
/// Topic exchange RabbitMQ dead-letters to, with the queue's name as routing key.
pub const DLX_EXCHANGE: &str = "salesforce.dlx";

/// Routing key of `assist.completed.v1`.
pub const ASSIST_COMPLETED: &str = "assist.completed";
/// Routing key of `customer.upsert.v1`.
pub const CUSTOMER_UPSERT: &str = "customer.upsert";
/// Routing key of `customer.removed.v1`.
pub const CUSTOMER_REMOVED: &str = "customer.removed";
/// Routing key of `customer.linked.v1`.
pub const CUSTOMER_LINKED: &str = "customer.linked";
/// Routing key of `activity.written.v1`.
pub const ACTIVITY_WRITTEN: &str = "activity.written";
/// Routing key of `activity.failed.v1`.
pub const ACTIVITY_FAILED: &str = "activity.failed";
/// Routing key of `import.requested.v1`.
pub const IMPORT_REQUESTED: &str = "import.requested";
/// Routing key of `import.completed.v1`.
pub const IMPORT_COMPLETED: &str = "import.completed";

/// The activity-writer's queue, bound to [`ASSIST_EXCHANGE`] with [`ASSIST_COMPLETED`].
pub const ACTIVITY_WRITER_ASSIST_QUEUE: &str = "activity-writer.assist";
/// The importer's queue, bound to [`COMMANDS_EXCHANGE`] with [`IMPORT_REQUESTED`].
pub const IMPORTER_COMMANDS_QUEUE: &str = "importer.commands";

/// Dead-letter queue of [`ACTIVITY_WRITER_ASSIST_QUEUE`].
pub const ACTIVITY_WRITER_ASSIST_DLQ: &str = "activity-writer.assist.dlq";
/// Dead-letter queue of [`IMPORTER_COMMANDS_QUEUE`].
pub const IMPORTER_COMMANDS_DLQ: &str = "importer.commands.dlq";

/// The dead-letter queue of `queue`: `<queue>.dlq`, bound to [`DLX_EXCHANGE`] with key `queue`.
pub fn dlq_name(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// Header naming the tenant a message belongs to, on every message.
pub const TENANT_ID_HEADER: &str = "tenant_id";
/// Header a service adds to the copy it sends to a dead-letter queue: a JSON string
/// `{"code": "...", "message": "..."}`.
pub const ERROR_HEADER: &str = "x-fa-error";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_queues_are_named_after_their_queue() {
        assert_eq!(dlq_name(ACTIVITY_WRITER_ASSIST_QUEUE), ACTIVITY_WRITER_ASSIST_DLQ);
        assert_eq!(dlq_name(IMPORTER_COMMANDS_QUEUE), IMPORTER_COMMANDS_DLQ);
    }
}
