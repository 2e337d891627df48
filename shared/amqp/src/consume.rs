//! Consuming a queue: bounded prefetch, ack after the effect is durable,
//! dead-letter on permanent failure, delayed retry on passing failure.

use std::{
    collections::BTreeMap,
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{FutureExt as _, StreamExt as _};
use lapin::{
    BasicProperties,
    message::Delivery,
    options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    broker::Broker,
    headers,
    retry::{Plan, RetryPolicy},
    topology::{dlq_name, retry_queue_name},
};

/// Why a delivery did not succeed, as written into `x-fa-error`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// A stable machine-readable code, e.g. `invalid_event`.
    pub code: String,
    /// What happened and, where it helps, what to do.
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect is durable; ack.
    Done,
    /// A passing failure: try again later, after at least `after` when set.
    Retry { failure: Failure, after: Option<Duration> },
    /// It can never succeed: dead-letter it now.
    Reject(Failure),
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
            .map_err(|e| Failure::new("invalid_message", format!("the body is not a valid message: {e}")))
    }

    fn age(&self) -> Duration {
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
pub struct ConsumerHandle {
    running: Arc<AtomicBool>,
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

    /// Stops taking deliveries, lets those in flight finish (up to the drain
    /// timeout) and hands back the rest to the queue.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.done.await;
    }
}

pub(crate) fn start<H: Handler>(broker: Broker, options: ConsumerOptions, handler: H) -> ConsumerHandle {
    let running = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let queue = options.queue.clone();
    let span = tracing::info_span!("consumer", queue = %queue);
    let done = tokio::spawn(run(broker, options, Arc::new(handler), running.clone(), stop.clone()).instrument(span));
    ConsumerHandle { running, stop, done, queue }
}

async fn run<H: Handler>(
    broker: Broker,
    options: ConsumerOptions,
    handler: Arc<H>,
    running: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let tag = format!("{}-{}", broker.service(), uuid::Uuid::new_v4().simple());
    while !stop.is_cancelled() {
        let link = tokio::select! {
            link = broker.link() => match link { Some(l) => l, None => break },
            _ = stop.cancelled() => break,
        };
        let subscribed = async {
            let channel = link.connection.create_channel().await?;
            channel.basic_qos(options.prefetch, BasicQosOptions { global: false }).await?;
            let consumer = channel
                .basic_consume(
                    options.queue.as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            lapin::Result::Ok((channel, consumer))
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
        tracing::info!(prefetch = options.prefetch, "consuming");

        let mut in_flight = JoinSet::new();
        let stopping = loop {
            tokio::select! {
                _ = stop.cancelled() => break true,
                _ = link.broken.cancelled() => break false,
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        let ctx = (broker.clone(), handler.clone(), options.clone());
                        in_flight.spawn(async move { process(ctx.0, ctx.1, &ctx.2, delivery).await });
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the subscription failed; subscribing again");
                        break false;
                    }
                    None => break false,
                },
            }
        };
        running.store(false, Ordering::Relaxed);
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
            let _ = channel.close(200, "shutdown".into()).await;
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
        let _ = channel.close(200, "resubscribing".into()).await;
    }
    running.store(false, Ordering::Relaxed);
}

async fn process<H: Handler>(broker: Broker, handler: Arc<H>, options: &ConsumerOptions, delivery: Delivery) {
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
        queue: options.queue.clone(),
        body: delivery.data,
        properties: delivery.properties,
        attempt,
        first_attempt_at,
        redelivered: delivery.redelivered,
    };
    let acker = delivery.acker;
    let span = tracing::info_span!(
        "amqp.deliver",
        queue = %message.queue,
        message_id = message.message_id().unwrap_or(""),
        tenant_id = message.tenant_id().unwrap_or_default(),
        attempt,
    );
    headers::adopt_trace_context(&span, message.properties.headers().as_ref());

    async {
        let started = std::time::Instant::now();
        let outcome = AssertUnwindSafe(handler.handle(&message)).catch_unwind().await.unwrap_or_else(|_| Outcome::Retry {
            failure: Failure::new("handler_panicked", "the handler panicked; see the service's log"),
            after: None,
        });
        metrics::histogram!("fa_amqp_handler_duration_seconds", "service" => broker.service(), "queue" => message.queue.clone())
            .record(started.elapsed().as_secs_f64());

        let settled = match outcome {
            Outcome::Done => Settle::Ack("acked"),
            Outcome::Reject(failure) => dead_letter(&broker, &*handler, &message, failure).await,
            Outcome::Retry { failure, after } => match options.retry.plan(attempt, message.age(), after) {
                Plan::Delay(tier) => park(&broker, &message, tier, &failure).await,
                Plan::GiveUp => {
                    let failure = Failure::new(
                        "retries_exhausted",
                        format!(
                            "gave up after {attempt} attempts over {}s; last failure {}: {}",
                            message.age().as_secs(),
                            failure.code,
                            failure.message
                        ),
                    );
                    dead_letter(&broker, &*handler, &message, failure).await
                }
            },
        };
        let label = match settled {
            Settle::Ack(label) => {
                if let Err(e) = acker.ack(BasicAckOptions::default()).await {
                    // The channel is gone; the broker will redeliver.
                    tracing::warn!(error = %e, "ack failed; the message will be redelivered");
                }
                label
            }
            Settle::Requeue => {
                // Could not make the outcome durable: hand it back, after a
                // pause so a broken broker is not hammered.
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
                "requeued"
            }
        };
        metrics::counter!("fa_amqp_deliveries_total", "service" => broker.service(), "queue" => message.queue.clone(), "outcome" => label)
            .increment(1);
    }
    .instrument(span)
    .await;
}

enum Settle {
    Ack(&'static str),
    Requeue,
}

async fn dead_letter<H: Handler>(broker: &Broker, handler: &H, message: &Incoming, failure: Failure) -> Settle {
    let error = serde_json::to_string(&failure).unwrap_or_default();
    tracing::warn!(code = %failure.code, reason = %failure.message, "dead-lettering the message");
    let properties = with_headers(&message.properties, |h| headers::set_text(h, headers::ERROR_HEADER, &error));
    let dlq = dlq_name(&message.queue);
    if let Err(e) = broker.publish_with("", &dlq, &message.body, properties).await {
        tracing::error!(error = %e, queue = %dlq, "cannot dead-letter the message; it stays on its queue");
        return Settle::Requeue;
    }
    if let Err(e) = handler.dead_lettered(message, &failure).await {
        tracing::error!(error = format!("{e:#}"), "dead-letter follow-up failed; the message will be redelivered");
        return Settle::Requeue;
    }
    Settle::Ack("dead_lettered")
}

async fn park(broker: &Broker, message: &Incoming, tier: Duration, failure: &Failure) -> Settle {
    let first_ms = message.first_attempt_at.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let last_error = serde_json::to_string(failure).unwrap_or_default();
    let next_attempt = message.attempt.saturating_add(1);
    tracing::info!(code = %failure.code, reason = %failure.message, retry_in_s = tier.as_secs(), "passing failure; retrying later");
    let properties = with_headers(&message.properties, |h| {
        h.insert(ShortString::from(headers::ATTEMPT_HEADER), AMQPValue::LongLongInt(i64::from(next_attempt)));
        h.insert(
            ShortString::from(headers::FIRST_ATTEMPT_HEADER),
            AMQPValue::LongLongInt(i64::try_from(first_ms).unwrap_or(i64::MAX)),
        );
        headers::set_text(h, headers::LAST_ERROR_HEADER, &last_error);
    });
    let queue = retry_queue_name(&message.queue, tier);
    match broker.publish_with("", &queue, &message.body, properties).await {
        Ok(()) => Settle::Ack("retried"),
        Err(e) => {
            tracing::error!(error = %e, queue = %queue, "cannot park the message for a retry; it stays on its queue");
            Settle::Requeue
        }
    }
}

/// The original properties with headers changed by `edit`; headers the
/// broker adds on dead-lettering (`x-death`) are dropped, so the copy does
/// not look like it came through a dead-letter exchange.
fn with_headers(
    original: &BasicProperties,
    edit: impl FnOnce(&mut BTreeMap<ShortString, AMQPValue>),
) -> BasicProperties {
    let mut headers: BTreeMap<ShortString, AMQPValue> = original
        .headers()
        .as_ref()
        .map(|h| {
            h.inner()
                .iter()
                .filter(|(k, _)| {
                    !k.as_str().starts_with("x-death")
                        && !k.as_str().starts_with("x-first-death")
                        && !k.as_str().starts_with("x-last-death")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    edit(&mut headers);
    let mut properties = original.clone().with_headers(FieldTable::from(headers));
    if properties.delivery_mode().is_none() {
        properties = properties.with_delivery_mode(2);
    }
    properties
}
