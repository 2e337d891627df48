//! Publishing many messages in order with their confirms in flight: the
//! importer's page of records, where [`Broker::publish`] one message at a
//! time costs more CPU than the rest of the import.
//!
//! Every message still goes out with the contract's properties and counts
//! only once the broker confirms it. What is paid once per call instead of
//! once per message: the connection (one of [`crate::bulk`]'s, not the
//! broker's lapin channel), the trace context, the properties shared by all
//! (tenant header included, rebuilt only when the tenant changes; the same
//! properties are sent each time with only the id and timestamp set), the
//! publish method's frame, the metric handles, and the timer (one deadline,
//! the oldest unconfirmed message's). Up to [`WINDOW`] messages are encoded
//! into one buffer and written at once; confirms are counted by delivery
//! tag as they are read.

use std::{
    collections::VecDeque,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use amq_protocol::{
    frame::AMQPFrame,
    protocol::{AMQPClass, basic, channel, connection},
};
use fa_messages::Message;
use lapin::{
    BasicProperties,
    types::{FieldTable, ShortString},
};
use tracing::Instrument as _;

use crate::{
    broker::Broker,
    bulk::{self, Bulk, Lost},
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
    /// The connection was lost; what it had not confirmed goes again, in
    /// order.
    Broken(Lost),
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
        let mut backoff = self.options().min_backoff;
        let called = Instant::now();
        loop {
            let Some(first) = again.pop_front().or_else(|| fresh.next()) else { return Ok(()) };
            // A message not yet sent waits from the call on: a connection
            // that cannot be made fails the call in time.
            let deadline = first.first_sent.unwrap_or(called) + timeout;
            // The broker's own connection first: it declares the topology
            // the messages go to, and says when the broker is closed.
            match tokio::time::timeout_at(deadline.into(), self.link()).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err((first.index, PublishError::Closed)),
                Err(_) => return Err((first.index, PublishError::Timeout(timeout))),
            }
            let (lost, what) = match tokio::time::timeout_at(deadline.into(), self.take_bulk()).await {
                Err(_) => return Err((first.index, PublishError::Timeout(timeout))),
                Ok(Err(lost)) => {
                    again.push_front(first);
                    (lost, "cannot open the publishing connection; trying again")
                }
                Ok(Ok(mut bulk)) => {
                    again.push_front(first);
                    match self.pass(&mut bulk, &mut again, &mut fresh).await {
                        Ok(Pass::Done) => {
                            self.give_back(bulk).await;
                            return Ok(());
                        }
                        Ok(Pass::Broken(lost)) => {
                            (lost, "publishing connection lost; resending what is unconfirmed on a new one")
                        }
                        // Unanswered: the connection is in no known state.
                        Err((index, e @ PublishError::Timeout(_))) => return Err((index, e)),
                        // Refused, with the connection sound: it closes in
                        // order, but what it has in flight stays unknown.
                        Err(refused) => {
                            drop(tokio::spawn(bulk.close()));
                            return Err(refused);
                        }
                    }
                }
            };
            // As with `Broker::publish`: what was not confirmed may or may
            // not have arrived; it goes again, in order, on a new connection.
            tracing::warn!(error = %lost, exchange = M::EXCHANGE, routing_key = M::ROUTING_KEY,
                retry_in_ms = backoff.as_millis() as u64, "{what}");
            tokio::time::sleep_until(tokio::time::Instant::from_std(Instant::now() + backoff).min(deadline.into()))
                .await;
            backoff = (backoff * 2).min(self.options().max_backoff);
        }
    }

    /// Sends `again`, then `fresh`, on `bulk` until all are confirmed, one
    /// fails, or the connection is lost (what is unconfirmed is then back
    /// in `again`, in order).
    async fn pass<'m, M: Message + 'm>(
        &self,
        bulk: &mut Bulk,
        again: &mut VecDeque<Pending<'m, M>>,
        fresh: &mut impl Iterator<Item = Pending<'m, M>>,
    ) -> Result<Pass, (usize, PublishError)> {
        let service = self.service();
        let timeout = self.options().publish_timeout;
        crate::broker::zero_failed_publishes(service, M::EXCHANGE, M::ROUTING_KEY);
        let confirmed = metrics::counter!("fa_amqp_published_total", "service" => service, "exchange" => M::EXCHANGE,
            "routing_key" => M::ROUTING_KEY, "outcome" => "confirmed");
        let took =
            metrics::histogram!("fa_amqp_publish_duration_seconds", "service" => service, "exchange" => M::EXCHANGE);
        let failed = |index: usize, error: PublishError, label: &'static str| {
            metrics::counter!("fa_amqp_published_total", "service" => service, "exchange" => M::EXCHANGE,
                "routing_key" => M::ROUTING_KEY, "outcome" => label)
            .increment(1);
            Err((index, error))
        };
        let mut shared = match Shared::new::<M>(service) {
            Ok(shared) => shared,
            Err(e) => return Err((again.front().map_or(0, |p| p.index), PublishError::Encode(e.to_string()))),
        };
        let chunk = bulk.body_chunk();
        // The messages sent and not yet settled, oldest first, their
        // delivery tags consecutive.
        let mut window: VecDeque<InFlight<'m, M>> = VecDeque::with_capacity(WINDOW);
        let mut out = Vec::with_capacity(64 * 1024);
        let mut body = Vec::with_capacity(1024);
        let mut returning = false;
        let broken = |window: VecDeque<InFlight<'m, M>>, again: &mut VecDeque<Pending<'m, M>>, lost| {
            for sent in window.into_iter().rev() {
                again.push_front(sent.pending);
            }
            Ok(Pass::Broken(lost))
        };
        // A message that cannot be encoded ends the call at its position,
        // once those before it are confirmed.
        let mut unencodable: Option<(usize, PublishError)> = None;
        loop {
            while window.len() < WINDOW && unencodable.is_none() {
                let Some(mut pending) = again.pop_front().or_else(|| fresh.next()) else { break };
                body.clear();
                let before = out.len();
                let encoded = serde_json::to_writer(&mut body, pending.message)
                    .map_err(|e| e.to_string())
                    .and_then(|()| shared.append(pending.message, &body, chunk, &mut out).map_err(|e| e.to_string()));
                if let Err(e) = encoded {
                    out.truncate(before);
                    unencodable = Some((pending.index, PublishError::Encode(e)));
                    break;
                }
                let now = Instant::now();
                pending.first_sent.get_or_insert(now);
                bulk.last_tag += 1;
                window.push_back(InFlight { pending, tag: bulk.last_tag, sent: now, returned: false, outcome: None });
            }
            let Some(oldest) = window.front() else { return unencodable.map_or(Ok(Pass::Done), Err) };
            let (index, expires) = (oldest.pending.index, oldest.pending.first_sent.unwrap_or(oldest.sent) + timeout);
            let exchanged = tokio::time::timeout_at(expires.into(), async {
                if !out.is_empty() {
                    bulk.write(&out).await?;
                    out.clear();
                }
                // At least one frame, then whatever else has arrived.
                let mut frames = vec![bulk.next_frame().await?];
                while let Some(frame) = bulk.buffered_frame()? {
                    frames.push(frame);
                }
                Ok::<_, Lost>(frames)
            })
            .await;
            let frames = match exchanged {
                Err(_) => return failed(index, PublishError::Timeout(timeout), "failed"),
                Ok(Err(lost)) => return broken(window, again, lost),
                Ok(Ok(frames)) => frames,
            };
            for frame in frames {
                match frame {
                    AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))) => {
                        settle(&mut window, ack.delivery_tag, ack.multiple, true);
                    }
                    AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Nack(nack))) => {
                        settle(&mut window, nack.delivery_tag, nack.multiple, false);
                    }
                    // RabbitMQ returns an unroutable message (its content
                    // follows) before it confirms it.
                    AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Return(_))) => returning = true,
                    AMQPFrame::Header(_, header) if returning => {
                        returning = false;
                        let id = header.properties.message_id().as_ref().map(|id| id.as_str().to_owned());
                        if let Some(sent) = window
                            .iter_mut()
                            .find(|sent| sent.outcome.is_none() && Some(sent.pending.message.message_id()) == id)
                        {
                            sent.returned = true;
                        }
                    }
                    AMQPFrame::Method(
                        _,
                        close @ (AMQPClass::Channel(channel::AMQPMethod::Close(_))
                        | AMQPClass::Connection(connection::AMQPMethod::Close(_))),
                    ) => {
                        let lost = bulk.closed_by_server(&close).await;
                        return broken(window, again, lost);
                    }
                    AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Blocked(blocked))) => {
                        tracing::warn!(reason = %blocked.reason, "RabbitMQ holds back publishing (connection.blocked)");
                    }
                    AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Unblocked(_))) => {
                        tracing::info!("RabbitMQ takes publishing again (connection.unblocked)");
                    }
                    _ => {}
                }
            }
            while let Some(front) = window.front() {
                match (front.outcome, front.returned) {
                    (None, _) => break,
                    (Some(true), false) => {
                        confirmed.increment(1);
                        took.record(front.sent.elapsed().as_secs_f64());
                        window.pop_front();
                    }
                    (Some(true), true) => {
                        let (exchange, routing_key) = (M::EXCHANGE.to_owned(), M::ROUTING_KEY.to_owned());
                        return failed(
                            front.pending.index,
                            PublishError::Unroutable { exchange, routing_key },
                            "unroutable",
                        );
                    }
                    (Some(false), _) => return failed(front.pending.index, PublishError::Nacked, "nacked"),
                }
            }
        }
    }
}

/// A message sent on the publishing channel and not yet settled.
struct InFlight<'m, M> {
    pending: Pending<'m, M>,
    tag: u64,
    /// When it was sent on this connection.
    sent: Instant,
    /// RabbitMQ returned it: no queue was bound for it.
    returned: bool,
    /// Acked (`true`) or nacked.
    outcome: Option<bool>,
}

/// Marks the messages a confirm of `tag` covers (with `multiple`, every
/// one up to it) as acked or nacked; a message keeps its first outcome.
fn settle<M>(window: &mut VecDeque<InFlight<'_, M>>, tag: u64, multiple: bool, acked: bool) {
    let Some(first) = window.front().map(|sent| sent.tag) else { return };
    let Some(last) = tag.checked_sub(first).map(|last| last as usize) else { return };
    let from = if multiple { 0 } else { last };
    for sent in window.iter_mut().take(last + 1).skip(from) {
        sent.outcome.get_or_insert(acked);
    }
}

/// The properties every message of a call shares, built once, with the
/// tenant header of the last tenant seen.
struct Shared {
    /// The publish method's frame, encoded once.
    method: Vec<u8>,
    template: BasicProperties,
    trace: std::collections::BTreeMap<ShortString, lapin::types::AMQPValue>,
    tenant: Option<String>,
}

impl Shared {
    fn new<M: Message>(service: &'static str) -> Result<Self, Lost> {
        let method = bulk::publish_method(M::EXCHANGE, M::ROUTING_KEY)?;
        let mut trace = std::collections::BTreeMap::new();
        headers::inject_trace_context(&mut trace);
        let template = BasicProperties::default()
            .with_content_type(ShortString::from("application/json"))
            .with_delivery_mode(2)
            .with_app_id(ShortString::from(service))
            .with_type(ShortString::from(M::TYPE));
        Ok(Self { method, template, trace, tenant: None })
    }

    /// Appends `message`'s frames to `out`: the publish method, its
    /// content header (the shared properties, its tenant, its id, now) and
    /// `body` in frames of at most `chunk` bytes.
    fn append<M: Message>(&mut self, message: &M, body: &[u8], chunk: usize, out: &mut Vec<u8>) -> Result<(), Lost> {
        let tenant = message.tenant_id().as_str();
        if self.tenant.as_deref() != Some(tenant) {
            let mut table = self.trace.clone();
            headers::set_text(&mut table, headers::TENANT_HEADER, tenant);
            self.template = std::mem::take(&mut self.template).with_headers(FieldTable::from(table));
            self.tenant = Some(tenant.to_owned());
        }
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        // The template itself is sent, its id and timestamp set in place:
        // nothing of it is copied per message.
        let properties = std::mem::take(&mut self.template)
            .with_message_id(ShortString::from(message.message_id()))
            .with_timestamp(timestamp);
        out.extend_from_slice(&self.method);
        self.template = bulk::encode_header(properties, body.len(), out)?;
        bulk::encode_body(body, chunk, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A confirm: its delivery tag, `multiple`, and whether it acks.
    type Confirm = (u64, bool, bool);

    /// The outcomes of a window of tags 5 to 9 after `confirms`: `A`
    /// acked, `N` nacked, `-` unsettled.
    fn after(confirms: &[Confirm]) -> String {
        let mut window: VecDeque<InFlight<'_, u8>> = (5..=9)
            .map(|tag| InFlight {
                pending: Pending { index: tag as usize, message: &0, first_sent: None },
                tag,
                sent: Instant::now(),
                returned: false,
                outcome: None,
            })
            .collect();
        for &(tag, multiple, acked) in confirms {
            settle(&mut window, tag, multiple, acked);
        }
        window
            .iter()
            .map(|sent| match sent.outcome {
                Some(true) => 'A',
                Some(false) => 'N',
                None => '-',
            })
            .collect()
    }

    #[test]
    fn a_confirm_settles_its_tag_or_with_multiple_every_tag_up_to_it() {
        let cases: &[(&[Confirm], &str)] = &[
            (&[], "-----"),
            (&[(7, true, true)], "AAA--"),
            (&[(7, false, true)], "--A--"),
            (&[(6, false, false)], "-N---"),
            (&[(9, true, false)], "NNNNN"),
            // Before the window: confirms of a call before, ignored.
            (&[(4, true, true)], "-----"),
            (&[(4, false, false)], "-----"),
            // Past the window (RabbitMQ does not send it): what is there.
            (&[(12, true, true)], "AAAAA"),
            (&[(12, false, true)], "-----"),
            // A message keeps its first outcome.
            (&[(6, false, true), (7, true, false)], "NAN--"),
            (&[(5, false, true), (9, false, true), (8, true, true)], "AAAAA"),
        ];
        for (confirms, expected) in cases {
            assert_eq!(after(confirms), *expected, "after {confirms:?}");
        }
    }
}
