//! The exchanges and queues a service declares at start (amqp.md, the AMQP
//! contract outside this repository), again
//! after every reconnection; declaring is idempotent.

use lapin::{
    Channel,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

use crate::retry::{TIERS, tier_label};

/// The exchange types the contract uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    /// Routing keys matched by pattern.
    Topic,
    /// Routing keys matched exactly.
    Direct,
    /// Every bound queue gets every message ([`Broker::broadcast`](crate::Broker::broadcast)).
    Fanout,
}

/// The dead-letter queue of `queue`: the contract's name, written once in fa-messages.
pub use fa_messages::topology::dlq_name;

/// The delay queue of `queue` for one retry tier, e.g. `importer.commands.retry.5s`.
pub fn retry_queue_name(queue: &str, tier: std::time::Duration) -> String {
    format!("{queue}.retry.{}", tier_label(tier))
}

/// How long a request waits on an RPC queue before it expires.
const RPC_REQUEST_TTL_MS: i64 = 30_000;

#[derive(Debug, Clone)]
struct ConsumedQueue {
    name: String,
    bindings: Vec<(String, String)>,
}

/// What one service declares.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    exchanges: Vec<(String, ExchangeKind)>,
    queues: Vec<ConsumedQueue>,
    rpc_queues: Vec<String>,
}

impl Topology {
    /// Nothing declared yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A durable exchange the service publishes to or binds from.
    pub fn exchange(mut self, name: &str, kind: ExchangeKind) -> Self {
        if !self.exchanges.iter().any(|(n, _)| n == name) {
            self.exchanges.push((name.to_owned(), kind));
        }
        self
    }

    /// A queue the service consumes, bound to `(exchange, routing key)`
    /// pairs, with its dead-letter queue and retry delay queues. The
    /// dead-letter exchange `salesforce.dlx` is declared with it.
    pub fn queue(mut self, name: &str, bindings: &[(&str, &str)]) -> Self {
        self = self.exchange(fa_messages::topology::DLX_EXCHANGE, ExchangeKind::Topic);
        self.queues.push(ConsumedQueue {
            name: name.to_owned(),
            bindings: bindings.iter().map(|(e, k)| ((*e).to_owned(), (*k).to_owned())).collect(),
        });
        self
    }

    /// A queue of requests served with [`Broker::serve_rpc`](crate::Broker::serve_rpc);
    /// the replicas of the serving service compete on it.
    ///
    /// Unlike the queues of [`Topology::queue`] it is a classic queue:
    /// requests are ephemeral (their callers wait milliseconds for the
    /// reply), so replicating them through Raft as a quorum queue would only
    /// add latency, and a request lost with a broker node is retried by its
    /// caller. Requests nobody took within 30 s expire (their callers have
    /// long given up) and are not dead-lettered.
    pub fn rpc_queue(mut self, name: &str) -> Self {
        if !self.rpc_queues.iter().any(|q| q == name) {
            self.rpc_queues.push(name.to_owned());
        }
        self
    }

    /// Declares everything on `channel`.
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let durable = || ExchangeDeclareOptions { durable: true, ..Default::default() };
        for (name, kind) in &self.exchanges {
            let kind = match kind {
                ExchangeKind::Topic => lapin::ExchangeKind::Topic,
                ExchangeKind::Direct => lapin::ExchangeKind::Direct,
                ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
            };
            channel.exchange_declare(name.as_str().into(), kind, durable(), FieldTable::default()).await?;
        }
        let dlx = fa_messages::topology::DLX_EXCHANGE;
        for q in &self.queues {
            let mut args = quorum();
            put(&mut args, "x-dead-letter-exchange", text(dlx));
            put(&mut args, "x-dead-letter-routing-key", text(&q.name));
            declare_queue(channel, &q.name, args).await?;
            for (exchange, key) in &q.bindings {
                bind(channel, &q.name, exchange, key).await?;
            }

            let dlq = dlq_name(&q.name);
            declare_queue(channel, &dlq, quorum()).await?;
            bind(channel, &dlq, dlx, &q.name).await?;

            // A parked message expires after the tier's delay and is
            // dead-lettered through the default exchange straight back to
            // its queue. At-least-once dead-lettering keeps it in the delay
            // queue until the queue has it, so a retry is never lost.
            for tier in TIERS {
                let mut args = quorum();
                let ttl_ms = i64::try_from(tier.as_millis()).unwrap_or(i64::MAX);
                put(&mut args, "x-message-ttl", AMQPValue::LongLongInt(ttl_ms));
                put(&mut args, "x-dead-letter-exchange", text(""));
                put(&mut args, "x-dead-letter-routing-key", text(&q.name));
                put(&mut args, "x-dead-letter-strategy", text("at-least-once"));
                put(&mut args, "x-overflow", text("reject-publish"));
                declare_queue(channel, &retry_queue_name(&q.name, tier), args).await?;
            }
        }
        for name in &self.rpc_queues {
            let mut args = std::collections::BTreeMap::new();
            put(&mut args, "x-queue-type", text("classic"));
            put(&mut args, "x-message-ttl", AMQPValue::LongLongInt(RPC_REQUEST_TTL_MS));
            declare_queue(channel, name, args).await?;
        }
        Ok(())
    }

    /// The queues the service consumes.
    pub fn consumed_queues(&self) -> impl Iterator<Item = &str> {
        self.queues.iter().map(|q| q.name.as_str())
    }
}

fn quorum() -> std::collections::BTreeMap<ShortString, AMQPValue> {
    let mut args = std::collections::BTreeMap::new();
    put(&mut args, "x-queue-type", text("quorum"));
    args
}

fn put(args: &mut std::collections::BTreeMap<ShortString, AMQPValue>, key: &str, value: AMQPValue) {
    args.insert(ShortString::from(key), value);
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    args: std::collections::BTreeMap<ShortString, AMQPValue>,
) -> lapin::Result<()> {
    let options = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(name.into(), options, FieldTable::from(args)).await.map(|_| ())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> lapin::Result<()> {
    channel
        .queue_bind(queue.into(), exchange.into(), key.into(), QueueBindOptions::default(), FieldTable::default())
        .await
}
