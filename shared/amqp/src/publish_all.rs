//! Publishing many messages in order with their confirms in flight: the
//! importer's page of records, where [`Broker::publish`] one message at a
//! time costs more CPU than the rest of the import.
//!
//! Every message still goes out with the contract's properties and counts
//! only once the broker confirms it; what is paid once per call instead of
//! once per message is the link, the channel, the trace context, the
//! properties shared by all (tenant header included, rebuilt only when the
//! tenant changes), the metric handles, and the timer: one deadline, the
//! oldest unconfirmed message's, re-armed only when it fires.

use std::{
    collections::VecDeque,
    future::{Future, poll_fn},
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Waker},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use fa_messages::Message;
use futures_util::future::maybe_done;
use lapin::{
    BasicProperties, Confirmation,
    options::BasicPublishOptions,
    types::{FieldTable, ShortString},
};

use tracing::Instrument as _;

use crate::{
    broker::{Broker, Link},
    headers,
    publish::PublishError,
};

/// Messages sent and not yet confirmed at once. RabbitMQ confirms in
/// batches (`multiple`), so a deep window keeps the channel busy while
/// confirms come back.
const WINDOW: usize = 512;

/// A message of the call: its position, the message, and when it was
/// first sent (its publish timeout runs from then, across reconnections).
struct Pending<'m, M> {
    index: usize,
    message: &'m M,
    first_sent: Option<Instant>,
}

/// How a pass over one link ended.
enum Pass {
    /// Everything confirmed.
    Done,
    /// The link broke; these were not confirmed and go again, in order.
    Broken,
}

impl Broker {
    /// Publishes `messages` in their order on one channel, with the
    /// properties [`Broker::publish`] gives each, up to 512 of them sent and
    /// not yet confirmed at once.
    ///
    /// `Ok` once the broker has confirmed every one. `Err((i, e))`: the
    /// messages before `i` were confirmed, message `i` was not (`e` says
    /// why: nacked, unroutable, not confirmed within the publish timeout,
    /// or the broker closed), and those after it may or may not have been
    /// sent. A connection lost on the way is not a failure: what was not
    /// yet confirmed is sent again, in order, on the next connection (so it
    /// may arrive twice, as with [`Broker::publish`]).
    pub async fn publish_all<'m, M: Message + 'm>(
        &self,
        messages: impl IntoIterator<Item = &'m M>,
    ) -> Result<(), (usize, PublishError)> {
        // One span for the call (not one per message: the importer sends
        // thousands); the messages carry its trace context.
        let span = tracing::info_span!(
            "amqp.publish",
            otel.kind = "producer",
            exchange = M::EXCHANGE,
            routing_key = M::ROUTING_KEY,
            r#type = M::TYPE
        );
        self.publish_all_in_span(messages).instrument(span).await
    }

    async fn publish_all_in_span<'m, M: Message + 'm>(
        &self,
        messages: impl IntoIterator<Item = &'m M>,
    ) -> Result<(), (usize, PublishError)> {
        let mut fresh =
            messages.into_iter().enumerate().map(|(index, message)| Pending { index, message, first_sent: None });
        let mut again: VecDeque<Pending<'m, M>> = VecDeque::new();
        let timeout = self.options().publish_timeout;
        loop {
            let Some(first) = again.pop_front().or_else(|| fresh.next()) else { return Ok(()) };
            let deadline = first.first_sent.unwrap_or_else(Instant::now) + timeout;
            let link = match tokio::time::timeout_at(deadline.into(), self.link()).await {
                Ok(Some(link)) => link,
                Ok(None) => return Err((first.index, PublishError::Closed)),
                Err(_) => return Err((first.index, PublishError::Timeout(timeout))),
            };
            again.push_front(first);
            match self.pass(&link, &mut again, &mut fresh).await? {
                Pass::Done => return Ok(()),
                Pass::Broken => link.broken.cancel(),
            }
        }
    }

    /// Sends `again`, then `fresh`, on one channel of `link` until all are
    /// confirmed, one fails, or the link breaks (what is unconfirmed is
    /// then back in `again`, in order).
    async fn pass<'m, M: Message + 'm>(
        &self,
        link: &Arc<Link>,
        again: &mut VecDeque<Pending<'m, M>>,
        fresh: &mut impl Iterator<Item = Pending<'m, M>>,
    ) -> Result<Pass, (usize, PublishError)> {
        let service = self.service();
        let timeout = self.options().publish_timeout;
        let publishers = link.publishers();
        let channel = &publishers[link.next_publisher.fetch_add(1, Ordering::Relaxed) % publishers.len()];
        crate::broker::zero_failed_publishes(service, M::EXCHANGE, M::ROUTING_KEY);
        let confirmed = metrics::counter!("fa_amqp_published_total", "service" => service, "exchange" => M::EXCHANGE,
            "routing_key" => M::ROUTING_KEY, "outcome" => "confirmed");
        let took =
            metrics::histogram!("fa_amqp_publish_duration_seconds", "service" => service, "exchange" => M::EXCHANGE);
        let mut shared = Shared::new(service, M::TYPE);
        let mut sent: VecDeque<Pending<'m, M>> = VecDeque::with_capacity(WINDOW);
        // The messages sent and not yet confirmed, oldest first. Each is
        // polled once when it is made, which queues its frames (lapin does
        // that before its first await), with a waker that wakes nothing;
        // after that only the oldest is polled, with this task's waker.
        // Confirms arrive in bursts (`multiple`): a burst wakes this task
        // once, for the oldest, and the rest are found done as they come
        // to the front, instead of each confirm waking it.
        let mut in_flight = VecDeque::with_capacity(WINDOW);
        let mut body_size = 256;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            while in_flight.len() < WINDOW {
                let Some(mut pending) = again.pop_front().or_else(|| fresh.next()) else { break };
                // Sized like the last body, so serialising does not grow it step by step.
                let mut body = Vec::with_capacity(body_size);
                if let Err(e) = serde_json::to_writer(&mut body, pending.message) {
                    return Err((pending.index, PublishError::Encode(e.to_string())));
                }
                body_size = body.len().next_power_of_two();
                let properties = shared.properties(pending.message);
                let now = Instant::now();
                pending.first_sent.get_or_insert(now);
                sent.push_back(pending);
                let mut message = maybe_done(Box::pin(async move {
                    let options = BasicPublishOptions { mandatory: true, ..Default::default() };
                    let sent = channel
                        .basic_publish(M::EXCHANGE.into(), M::ROUTING_KEY.into(), options, &body, properties)
                        .await;
                    let outcome = match sent {
                        Ok(confirm) => confirm.await,
                        Err(e) => Err(e),
                    };
                    (outcome, now)
                }));
                let _ = Pin::new(&mut message).poll(&mut Context::from_waker(Waker::noop()));
                in_flight.push_back(message);
            }
            let (Some(front), Some(oldest)) = (in_flight.front_mut(), sent.front()) else { return Ok(Pass::Done) };
            let (outcome, at) = tokio::select! {
                biased;
                () = poll_fn(|cx| Pin::new(&mut *front).poll(cx)) => match Pin::new(front).take_output() {
                    Some(outcome) => outcome,
                    // Not reached: a future that answered has its output.
                    // Were it reached, the message is not known confirmed.
                    None => return Err((oldest.index, PublishError::Closed)),
                },
                () = &mut deadline => {
                    let expires = oldest.first_sent.unwrap_or_else(Instant::now) + timeout;
                    if expires <= Instant::now() {
                        let label = "failed";
                        metrics::counter!("fa_amqp_published_total", "service" => service, "exchange" => M::EXCHANGE,
                            "routing_key" => M::ROUTING_KEY, "outcome" => label).increment(1);
                        return Err((oldest.index, PublishError::Timeout(timeout)));
                    }
                    deadline.as_mut().reset(expires.into());
                    continue;
                }
            };
            in_flight.pop_front();
            let Some(done) = sent.pop_front() else { return Ok(Pass::Done) };
            let failed = |error: PublishError, label: &'static str| {
                metrics::counter!("fa_amqp_published_total", "service" => service, "exchange" => M::EXCHANGE,
                    "routing_key" => M::ROUTING_KEY, "outcome" => label)
                .increment(1);
                Err((done.index, error))
            };
            match outcome {
                Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => {
                    confirmed.increment(1);
                    took.record(at.elapsed().as_secs_f64());
                }
                Ok(Confirmation::Ack(Some(_))) => {
                    let (exchange, routing_key) = (M::EXCHANGE.to_owned(), M::ROUTING_KEY.to_owned());
                    return failed(PublishError::Unroutable { exchange, routing_key }, "unroutable");
                }
                Ok(Confirmation::Nack(_)) => return failed(PublishError::Nacked, "nacked"),
                Err(e) => {
                    // As in `Broker::publish`: the message may or may not
                    // have arrived; it and everything after it go again on
                    // the next connection.
                    tracing::warn!(error = %e, exchange = M::EXCHANGE, routing_key = M::ROUTING_KEY,
                        "publish interrupted; resending what is unconfirmed after reconnection");
                    drop(in_flight);
                    for pending in sent.into_iter().rev() {
                        again.push_front(pending);
                    }
                    again.push_front(done);
                    return Ok(Pass::Broken);
                }
            }
        }
    }
}

/// The properties every message of a call shares, built once, with the
/// tenant header of the last tenant seen.
struct Shared {
    template: BasicProperties,
    trace: std::collections::BTreeMap<ShortString, lapin::types::AMQPValue>,
    tenant: Option<String>,
}

impl Shared {
    fn new(service: &'static str, kind: &'static str) -> Self {
        let mut trace = std::collections::BTreeMap::new();
        headers::inject_trace_context(&mut trace);
        let template = BasicProperties::default()
            .with_content_type(ShortString::from("application/json"))
            .with_delivery_mode(2)
            .with_app_id(ShortString::from(service))
            .with_type(ShortString::from(kind));
        Self { template, trace, tenant: None }
    }

    /// `message`'s properties: the shared ones, its tenant, its id, now.
    fn properties<M: Message>(&mut self, message: &M) -> BasicProperties {
        let tenant = message.tenant_id().as_str();
        if self.tenant.as_deref() != Some(tenant) {
            let mut table = self.trace.clone();
            headers::set_text(&mut table, headers::TENANT_HEADER, tenant);
            self.template = self.template.clone().with_headers(FieldTable::from(table));
            self.tenant = Some(tenant.to_owned());
        }
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        self.template.clone().with_message_id(ShortString::from(message.message_id())).with_timestamp(timestamp)
    }
}
