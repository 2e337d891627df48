//! Consuming a queue: bounded prefetch, ack after the effect is durable,
//! dead-letter on permanent failure, delayed retry on passing failure.
//!
//! One loop serves both kinds of handler. It subscribes on a channel of its
//! own per connection, reads deliveries into per-key groups ([`Groups`]) and
//! hands each group's oldest deliveries to a task; a [`Handler`] is the case
//! where every delivery is a group of its own and a batch is one delivery,
//! so single and batch consumers share one subscription, one shutdown and
//! one settling path (`settle`).

use std::{
    collections::HashMap,
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{FutureExt as _, StreamExt as _};
use lapin::{
    Acker, BasicProperties,
    message::Delivery,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::{FieldTable, ShortString},
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    batch::{self, BatchHandler, BatchOptions, Grouping, Groups},
    broker::{Broker, close_channel},
    failure::{Code, Failure},
    headers,
    retry::RetryPolicy,
    settle,
};

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect is durable; ack.
    Done,
    /// A passing failure: try again later, after at least `after` when set.
    Retry { failure: Failure, after: Option<Duration> },
    /// It can never succeed: dead-letter it now.
    Reject(Failure),
    /// It cannot go on yet for a reason that is not a failure (its tenant is
    /// paused for its API allowance): park it for `after`, however long it
    /// has waited already; it is never given up.
    Wait { failure: Failure, after: Duration },
}

/// One received message, as a handler sees it.
#[derive(Debug)]
pub struct Incoming {
    /// The queue it came from.
    pub queue: String,
    /// The body as received.
    pub body: Vec<u8>,
    /// The properties as received.
    pub properties: BasicProperties,
    /// 1 for the first attempt, counting retries through the delay queues.
    pub attempt: u32,
    /// When the first attempt was made.
    pub first_attempt_at: SystemTime,
    /// The broker redelivered it (a consumer before this one did not ack).
    pub redelivered: bool,
}

impl Incoming {
    /// The `message_id` property.
    pub fn message_id(&self) -> Option<&str> {
        self.properties.message_id().as_ref().map(ShortString::as_str)
    }

    /// The `tenant_id` header.
    pub fn tenant_id(&self) -> Option<String> {
        headers::text(self.properties.headers().as_ref(), headers::TENANT_HEADER)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        headers::text(self.properties.headers().as_ref(), name)
    }

    /// The body parsed as JSON into `T`; a body that does not parse can never
    /// succeed, so the error is a ready-made `invalid_message` rejection.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Failure::new(Code::InvalidMessage, format!("the body is not a valid message: {e}")))
    }

    /// How long ago the first attempt was made.
    pub(crate) fn age(&self) -> Duration {
        SystemTime::now().duration_since(self.first_attempt_at).unwrap_or_default()
    }
}

/// A service's logic for one queue.
pub trait Handler: Send + Sync + 'static {
    /// Does the work of one delivery. Must be idempotent: a message can
    /// arrive more than once.
    fn handle(&self, message: &Incoming) -> impl Future<Output = Outcome> + Send;

    /// Called once a message has been dead-lettered (its copy confirmed on
    /// `<queue>.dlq`), before the original is acked; e.g. to publish
    /// `activity.failed`. An error leaves the original to be redelivered.
    fn dead_lettered(&self, message: &Incoming, failure: &Failure) -> impl Future<Output = anyhow::Result<()>> + Send {
        let _ = (message, failure);
        async { Ok(()) }
    }
}

/// A shared handler handles as the handler it shares, so a test or a
/// service can keep a reference to its state.
impl<H: Handler> Handler for Arc<H> {
    fn handle(&self, message: &Incoming) -> impl Future<Output = Outcome> + Send {
        (**self).handle(message)
    }

    fn dead_lettered(&self, message: &Incoming, failure: &Failure) -> impl Future<Output = anyhow::Result<()>> + Send {
        (**self).dead_lettered(message, failure)
    }
}

/// How a queue is consumed.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The queue, declared by the broker's topology.
    pub queue: String,
    /// Deliveries in flight at most (`basic.qos`).
    pub prefetch: u16,
    /// When passing failures give up.
    pub retry: RetryPolicy,
    /// How long a shutdown waits for deliveries in flight.
    pub drain_timeout: Duration,
}

impl ConsumerOptions {
    /// `queue` with a prefetch of 16, the default retry policy and 20 s to
    /// drain (services must exit within 30 s of SIGTERM).
    pub fn new(queue: &str) -> Self {
        Self {
            queue: queue.to_owned(),
            prefetch: 16,
            retry: RetryPolicy::default(),
            drain_timeout: Duration::from_secs(20),
        }
    }
}

/// A running consumer.
///
/// Two questions about it have different answers while RabbitMQ is away:
/// it is not *ready* (not subscribed; [`Self::readiness`]) but it is
/// *alive* (its loop waits for the connection and subscribes again by
/// itself; [`Self::liveness`]). It is dead only once its loop has ended
/// without being asked to stop (it panicked, or its broker was closed
/// under it), since nothing restarts the loop then.
pub struct ConsumerHandle {
    running: Arc<AtomicBool>,
    /// Why the loop ended, set once it ended without [`Self::stop`].
    died: Arc<OnceLock<&'static str>>,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
    queue: String,
}

impl ConsumerHandle {
    /// Ok while subscribed to its queue; the reason otherwise.
    pub fn readiness(&self) -> Result<(), String> {
        if self.running.load(Ordering::Relaxed) { Ok(()) } else { Err(format!("not consuming {}", self.queue)) }
    }

    /// A readiness check that can be moved into a closure.
    pub fn readiness_probe(&self) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
        let running = self.running.clone();
        let queue = self.queue.clone();
        move || if running.load(Ordering::Relaxed) { Ok(()) } else { Err(format!("not consuming {queue}")) }
    }

    /// Ok while its loop runs, subscribed or waiting for RabbitMQ; once the
    /// loop ended without [`Self::stop`], `consumer <queue> stopped: <why>`.
    pub fn liveness(&self) -> Result<(), String> {
        (self.liveness_probe())()
    }

    /// A liveness check that can be moved into a closure.
    pub fn liveness_probe(&self) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
        let died = self.died.clone();
        let queue = self.queue.clone();
        move || match died.get() {
            None => Ok(()),
            Some(why) => Err(format!("consumer {queue} stopped: {why}")),
        }
    }

    /// Stops taking deliveries, lets those in flight finish (up to the drain
    /// timeout) and hands back the rest to the queue.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.done.await;
    }
}

/// Starts consuming with a [`Handler`]: every delivery is a group of its
/// own, so up to `prefetch` deliveries are handled side by side.
pub(crate) fn start<H: Handler>(broker: Broker, options: ConsumerOptions, handler: H) -> ConsumerHandle {
    let grouping = Grouping::one_by_one(options.prefetch);
    spawn(broker, options, grouping, OneByOne { handler, next: AtomicU64::new(0) })
}

/// Starts consuming with a [`BatchHandler`]; see [`Broker::consume_batches`].
pub(crate) fn start_batches<H: BatchHandler>(
    broker: Broker,
    options: ConsumerOptions,
    batching: BatchOptions,
    handler: H,
) -> ConsumerHandle {
    let grouping = Grouping::batches(batching, options.prefetch);
    spawn(broker, options, grouping, handler)
}

fn spawn<H: BatchHandler>(broker: Broker, options: ConsumerOptions, grouping: Grouping, handler: H) -> ConsumerHandle {
    let running = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let queue = options.queue.clone();
    let span = tracing::info_span!("consumer", queue = %queue);
    let consuming = Arc::new(Consuming { broker, handler, options, grouping });
    let died = Arc::new(OnceLock::new());
    let looping = run(consuming, running.clone(), stop.clone());
    let (subscribed, record, asked) = (running.clone(), died.clone(), stop.clone());
    let done = tokio::spawn(
        async move {
            // The loop ends by itself only on stop or once the broker is
            // closed; a panic would leave `running` set: say what happened.
            let why = match AssertUnwindSafe(looping).catch_unwind().await {
                Ok(()) if asked.is_cancelled() => return,
                Ok(()) => "the broker connection was closed",
                // Its message went to stderr through the panic hook.
                Err(_) => "it panicked",
            };
            // Logged by whoever owns the handle (fa-runtime's `/healthz`).
            subscribed.store(false, Ordering::Relaxed);
            let _ = record.set(why);
        }
        .instrument(span),
    );
    ConsumerHandle { running, died, stop, done, queue }
}

/// What every task of one consumer shares.
pub(crate) struct Consuming<H> {
    pub(crate) broker: Broker,
    pub(crate) handler: H,
    pub(crate) options: ConsumerOptions,
    pub(crate) grouping: Grouping,
}

/// One delivery as read from the subscription: the message, the handle
/// that settles it, and the span it is settled in (a child of the trace
/// that published it).
pub(crate) struct Received {
    pub(crate) message: Incoming,
    pub(crate) acker: Acker,
    pub(crate) span: tracing::Span,
}

async fn run<H: BatchHandler>(consuming: Arc<Consuming<H>>, running: Arc<AtomicBool>, stop: CancellationToken) {
    let Consuming { broker, options, grouping, .. } = &*consuming;
    let tag = format!("{}-{}", broker.service(), uuid::Uuid::new_v4().simple());
    while !stop.is_cancelled() {
        let link = tokio::select! {
            link = broker.link() => match link { Some(l) => l, None => break },
            _ = stop.cancelled() => break,
        };
        let subscribed = async {
            let channel = link.connection.create_channel().await?;
            let consumed = async {
                channel.basic_qos(options.prefetch, BasicQosOptions { global: false }).await?;
                channel
                    .basic_consume(
                        options.queue.as_str().into(),
                        tag.as_str().into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
            }
            .await;
            match consumed {
                Ok(consumer) => Ok((channel, consumer)),
                Err(e) => {
                    close_channel(&channel, "cannot subscribe").await;
                    Err(e)
                }
            }
        }
        .await;
        let (channel, mut consumer) = match subscribed {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe; retrying on the next connection");
                link.broken.cancel();
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        running.store(true, Ordering::Relaxed);
        if grouping.batched {
            tracing::info!(
                prefetch = options.prefetch,
                max_batch = grouping.cap,
                max_concurrent = grouping.max_concurrent,
                "consuming in batches"
            );
        } else {
            tracing::info!(prefetch = options.prefetch, "consuming");
        }

        // Deliveries not yet handed over wait in `groups`; tasks handling a
        // group's batch run in `in_flight`, and `batch_keys` says whose.
        let mut groups = Groups::new(grouping);
        let mut in_flight = JoinSet::new();
        let mut batch_keys = HashMap::new();
        let stopping = 'link: loop {
            // Deliveries that arrived together go together: take whatever
            // the subscription already holds before handing batches over,
            // but never wait for more, so a lone delivery is not held back.
            while let Some(next) = consumer.next().now_or_never() {
                match subscription_item(next) {
                    Some(delivery) => accept(&consuming, &mut groups, &mut in_flight, delivery),
                    None => break 'link false,
                }
            }
            while let Some((key, batch)) = groups.next_batch() {
                let task = in_flight.spawn(batch::handle(consuming.clone(), key.clone(), batch));
                batch_keys.insert(task.id(), key);
            }
            tokio::select! {
                _ = stop.cancelled() => break true,
                _ = link.broken.cancelled() => break false,
                Some(joined) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    let id = match joined {
                        Ok((id, ())) => id,
                        Err(e) => {
                            // Its unsettled deliveries go back to the queue
                            // with the channel; the group must not stall.
                            tracing::error!(error = %e, "a delivery task failed");
                            e.id()
                        }
                    };
                    if let Some(key) = batch_keys.remove(&id) {
                        groups.finished(&key);
                    }
                }
                next = consumer.next() => match subscription_item(next) {
                    Some(delivery) => accept(&consuming, &mut groups, &mut in_flight, delivery),
                    None => break false,
                },
            }
        };
        running.store(false, Ordering::Relaxed);
        // Deliveries still waiting in `groups` are never handed over: they
        // stay unacked and go back to the queue when the channel closes.
        if groups.waiting_deliveries() > 0 {
            tracing::info!(left = groups.waiting_deliveries(), "deliveries not handed over go back to the queue");
        }
        drop(groups);
        if stopping {
            // No new deliveries; finish those in hand, then close the
            // channel so whatever is left goes back to the queue.
            let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
            let drained =
                tokio::time::timeout(options.drain_timeout, async { while in_flight.join_next().await.is_some() {} })
                    .await;
            if drained.is_err() {
                tracing::warn!(left = in_flight.len(), "deliveries still in flight at shutdown go back to the queue");
                in_flight.abort_all();
            }
            close_channel(&channel, "shutdown").await;
            break;
        }
        // The link broke: deliveries in hand can no longer be acked and will
        // be redelivered once we subscribe again. Let their handlers finish
        // first, so a redelivery never runs beside its own first attempt.
        if tokio::time::timeout(options.drain_timeout, async { while in_flight.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            in_flight.abort_all();
        }
        close_channel(&channel, "resubscribing").await;
    }
    running.store(false, Ordering::Relaxed);
}

/// The delivery the subscription yielded, or `None` once it failed or
/// ended (the channel closed, the broker cancelled it) and must be made
/// again.
fn subscription_item(next: Option<lapin::Result<Delivery>>) -> Option<Delivery> {
    match next {
        Some(Ok(delivery)) => Some(delivery),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the subscription failed; subscribing again");
            None
        }
        None => {
            tracing::warn!("the subscription ended; subscribing again");
            None
        }
    }
}

/// Puts a delivery in its key's group.
fn accept<H: BatchHandler>(
    consuming: &Arc<Consuming<H>>,
    groups: &mut Groups<Received>,
    in_flight: &mut JoinSet<()>,
    delivery: Delivery,
) {
    let received = receive(&consuming.options.queue, delivery);
    match std::panic::catch_unwind(AssertUnwindSafe(|| consuming.handler.key(&received.message))) {
        Ok(key) => groups.push(key, received),
        Err(_) => {
            // Without a key it belongs to no group. Settled as a panicking
            // handler's delivery is, so a bug that panics on one message
            // neither kills the consumer nor blocks the queue.
            let consuming = consuming.clone();
            let span = received.span.clone();
            let settling = async move {
                tracing::error!("the handler's key panicked on this message; it is retried");
                let Consuming { broker, handler, options, .. } = &*consuming;
                let outcome = Outcome::Retry { failure: Failure::handler_panicked(), after: None };
                settle::settle(broker, handler, &options.retry, &received.message, &received.acker, outcome).await;
            };
            in_flight.spawn(settling.instrument(span));
        }
    }
}

/// Reads a delivery's attempt headers into an [`Incoming`], and opens its
/// span under the trace context it carries.
fn receive(queue: &str, delivery: Delivery) -> Received {
    let headers_table = delivery.properties.headers().clone();
    let attempt = headers::integer(headers_table.as_ref(), headers::ATTEMPT_HEADER)
        .and_then(|a| u32::try_from(a).ok())
        .filter(|a| *a >= 1)
        .unwrap_or(1);
    let first_attempt_at = headers::integer(headers_table.as_ref(), headers::FIRST_ATTEMPT_HEADER)
        .and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .unwrap_or_else(SystemTime::now);
    let message = Incoming {
        queue: queue.to_owned(),
        body: delivery.data,
        properties: delivery.properties,
        attempt,
        first_attempt_at,
        redelivered: delivery.redelivered,
    };
    // No parent in this process: without a trace context in its headers a
    // delivery starts a trace of its own instead of joining the consumer's
    // long-lived span.
    let span = tracing::info_span!(
        parent: None,
        "amqp.deliver",
        queue = %message.queue,
        message_id = message.message_id().unwrap_or(""),
        tenant_id = message.tenant_id().unwrap_or_default(),
        attempt,
    );
    headers::adopt_trace_context(&span, message.properties.headers().as_ref());
    Received { message, acker: delivery.acker, span }
}

/// A [`Handler`] on the grouping loop: each delivery is a key of its own
/// (so a batch is one delivery, and nothing waits for another delivery's
/// handler), keys numbered as they arrive.
struct OneByOne<H> {
    handler: H,
    next: AtomicU64,
}

impl<H: Handler> BatchHandler for OneByOne<H> {
    fn key(&self, _: &Incoming) -> String {
        self.next.fetch_add(1, Ordering::Relaxed).to_string()
    }

    async fn handle(&self, batch: &[Incoming]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for message in batch {
            outcomes.push(self.handler.handle(message).await);
        }
        outcomes
    }

    fn dead_lettered(&self, message: &Incoming, failure: &Failure) -> impl Future<Output = anyhow::Result<()>> + Send {
        self.handler.dead_lettered(message, failure)
    }
}
