//! RabbitMQ plumbing shared by every service.
//!
//! - [`Broker`] owns one connection and keeps it alive: when RabbitMQ closes
//!   it (a restart, `rabbitmqctl close_all_connections`, a network cut) it
//!   reconnects with backoff, declares the topology again and resumes the
//!   publishers and consumers that wait on it. Nothing restarts the process.
//! - [`Topology`] declares the contract's exchanges and, for each consumed
//!   queue, the quorum queue, its `<queue>.dlq` and its retry delay queues.
//! - [`Broker::publish`] sends a message with the contract's properties and
//!   returns only once the broker has confirmed it; [`Broker::publish_all`]
//!   publishes many in order with their confirms in flight, on a
//!   connection of its own that encodes a window of messages into one
//!   write (lapin's per-message machinery was most of the importer's CPU).
//! - [`Broker::consume`] runs a [`Handler`] with a bounded prefetch, acks
//!   only after the handler's effect is durable, dead-letters permanent
//!   failures on their first delivery with `x-fa-error`, and schedules
//!   passing failures on a delay queue so the queue behind them keeps
//!   flowing.
//! - [`Broker::consume_batches`] runs a [`BatchHandler`] instead: deliveries
//!   grouped by a key (the tenant), each key's batches one at a time in
//!   delivery order, different keys side by side, and every delivery still
//!   acked, retried or dead-lettered on its own.
//! - [`rpc`]: request and reply for answers a caller waits milliseconds
//!   for: [`Broker::serve_rpc`] runs an [`RpcHandler`] on a classic queue
//!   declared with [`Topology::rpc_queue`], and [`RpcClient::call`] waits
//!   for the reply through direct reply-to. Nothing of it is persisted:
//!   replies carry secrets.
//! - [`Broker::broadcast`] and [`Broker::listen`]: news every process hears
//!   (a fanout exchange, a private queue per listener), such as "this
//!   tenant's connection changed".
//!
//! **Architecture invariant:** a delivery is acked only after its outcome is
//! durable: the handler finished, or the copy on the retry or dead-letter
//! queue was confirmed. Every other path leaves it to be redelivered.
//! (An RPC request has no durable outcome: it is acked once answered, and
//! its caller retries if the answer is lost.)

mod batch;
mod broadcast;
mod broker;
mod bulk;
mod consume;
mod failure;
mod headers;
mod publish;
mod publish_all;
pub mod retry;
pub mod rpc;
mod settle;
mod topology;

pub use batch::{BatchHandler, BatchOptions};
pub use broadcast::{Listener, Listening};
pub use broker::{Broker, BrokerOptions};
pub use consume::{ConsumerHandle, ConsumerOptions, Handler, Incoming, Outcome};
pub use failure::{Code, Failure, FailureCode};
pub use headers::{ATTEMPT_HEADER, ERROR_HEADER, FIRST_ATTEMPT_HEADER, LAST_ERROR_HEADER, TENANT_HEADER};
pub use publish::{Outgoing, PublishError};
pub use rpc::{RpcClient, RpcError, RpcHandler, RpcRequest, RpcServerOptions};
pub use topology::{ExchangeKind, Topology, dlq_name, retry_queue_name};
