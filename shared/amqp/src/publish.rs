//! What is published, and how publishing fails.

use std::collections::BTreeMap;

use fa_messages::Message;
use lapin::types::{AMQPValue, ShortString};

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The exchange; `""` is the default exchange (routing key = queue).
    pub exchange: String,
    /// The routing key.
    pub routing_key: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// The `message_id` property.
    pub message_id: String,
    /// The `type` property, the schema name.
    pub kind: Option<String>,
    /// The `tenant_id` header.
    pub tenant_id: Option<String>,
    /// Further headers (copied originals, `x-fa-*`).
    pub headers: BTreeMap<ShortString, AMQPValue>,
}

impl Outgoing {
    /// `message` with the properties amqp.md (the AMQP contract, outside this repository) gives its type.
    pub fn message<M: Message>(message: &M) -> Result<Self, PublishError> {
        let body = serde_json::to_vec(message).map_err(|e| PublishError::Encode(e.to_string()))?;
        Ok(Self {
            exchange: M::EXCHANGE.to_owned(),
            routing_key: M::ROUTING_KEY.to_owned(),
            body,
            message_id: message.message_id(),
            kind: Some(M::TYPE.to_owned()),
            tenant_id: Some(message.tenant_id().as_str().to_owned()),
            headers: BTreeMap::new(),
        })
    }
}

/// Why a message was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The message could not be serialised.
    #[error("the message cannot be encoded: {0}")]
    Encode(String),
    /// No queue is bound for the routing key (a permanent problem of the
    /// topology, not of the message).
    #[error("no queue is bound to exchange {exchange:?} for routing key {routing_key:?}: the message was returned")]
    Unroutable { exchange: String, routing_key: String },
    /// The broker refused to take responsibility for the message.
    #[error("the broker did not accept the message (nack)")]
    Nacked,
    /// No confirmation arrived in time; RabbitMQ may be unreachable.
    #[error("not confirmed within {0:?}: RabbitMQ is unreachable or too slow (FA_SF_AMQP_URL)")]
    Timeout(std::time::Duration),
    /// The broker is shutting down.
    #[error("the broker connection is closed for shutdown")]
    Closed,
}

impl PublishError {
    /// True when trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Nacked | Self::Timeout(_))
    }
}
