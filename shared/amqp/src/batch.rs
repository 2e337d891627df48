//! Handling a queue's deliveries in batches of one key (one tenant), for
//! work that costs one remote call per batch rather than per message (the
//! activity-writer writes up to 200 Tasks in one Salesforce request).
//!
//! Batches form without a timer. A key with no batch in flight gets its
//! deliveries handed over at once, together with whatever else the
//! subscription already holds for it; while its batch is in flight, new
//! deliveries of that key wait and become its next batch. So a lone message
//! is never held back waiting for company, and under load batches grow by
//! themselves to the rate the handler keeps up with.
//!
//! Each delivery is still settled on its own (`settle`), by its own
//! [`Outcome`]: a batch is a way to call the handler, not a unit of acking.

use std::{
    collections::{HashMap, HashSet, VecDeque, hash_map::Entry},
    future::Future,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::Instant,
};

use futures_util::FutureExt as _;
use opentelemetry::trace::TraceContextExt as _;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    consume::{Consuming, Incoming, Outcome, Received},
    failure::{Code, Failure},
    settle::settle,
};

/// A service's logic for a queue whose deliveries are handled in batches of
/// one key (e.g. one tenant).
pub trait BatchHandler: Send + Sync + 'static {
    /// The group a delivery belongs to (the tenant). Batches of one key are
    /// handed over one at a time, in delivery order; different keys are
    /// handled in parallel.
    ///
    /// Called on the consumer's own task for every delivery, so it must be
    /// quick and must not block. If it panics, the delivery is retried as
    /// `handler_panicked` without being handed to [`BatchHandler::handle`].
    fn key(&self, message: &Incoming) -> String;

    /// Handles one batch of one key: exactly one [`Outcome`] per message, in
    /// the same order. Must be idempotent per message: a message can arrive
    /// more than once, and after a panic or a miscount the whole batch or
    /// its tail is retried.
    fn handle(&self, batch: &[Incoming]) -> impl Future<Output = Vec<Outcome>> + Send;

    /// As [`Handler::dead_lettered`](crate::Handler::dead_lettered): called
    /// once a message of the batch has been dead-lettered, before it is
    /// acked; an error leaves it to be redelivered.
    fn dead_lettered(&self, message: &Incoming, failure: &Failure) -> impl Future<Output = anyhow::Result<()>> + Send {
        let _ = (message, failure);
        async { Ok(()) }
    }
}

/// A shared handler handles as the handler it shares, so a test or a
/// service can keep a reference to its state.
impl<H: BatchHandler> BatchHandler for Arc<H> {
    fn key(&self, message: &Incoming) -> String {
        (**self).key(message)
    }

    fn handle(&self, batch: &[Incoming]) -> impl Future<Output = Vec<Outcome>> + Send {
        (**self).handle(batch)
    }

    fn dead_lettered(&self, message: &Incoming, failure: &Failure) -> impl Future<Output = anyhow::Result<()>> + Send {
        (**self).dead_lettered(message, failure)
    }
}

/// How deliveries are grouped.
///
/// Deliveries waiting for their key's turn count against the consumer's
/// prefetch, so a prefetch well above `max_batch` is what lets other keys
/// flow while one key's batch is in flight.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Messages in one batch at most (default 200, Salesforce's limit of
    /// records per composite call; never more than the prefetch).
    pub max_batch: usize,
    /// Batches (of different keys) being handled at once, at most (default
    /// 16).
    pub max_concurrent: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self { max_batch: 200, max_concurrent: 16 }
    }
}

/// The limits the consumer loop groups deliveries by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grouping {
    /// Deliveries in one batch at most.
    pub(crate) cap: usize,
    /// Batches in flight at most.
    pub(crate) max_concurrent: usize,
    /// A batch consumer (its batch sizes are worth a metric), not a
    /// [`Handler`](crate::Handler) seen through the grouping loop.
    pub(crate) batched: bool,
}

impl Grouping {
    /// The effective limits of `options` under `prefetch`: a batch larger
    /// than the prefetch could never fill, and zero of anything would stall.
    pub(crate) fn batches(options: BatchOptions, prefetch: u16) -> Self {
        Self {
            cap: options.max_batch.clamp(1, deliveries_in_hand(prefetch)),
            max_concurrent: options.max_concurrent.max(1),
            batched: true,
        }
    }

    /// A single-delivery handler: batches of one, as many at once as the
    /// prefetch lets in.
    pub(crate) fn one_by_one(prefetch: u16) -> Self {
        Self { cap: 1, max_concurrent: deliveries_in_hand(prefetch), batched: false }
    }
}

/// Deliveries the broker lets the consumer hold at once (a prefetch of 0
/// means no limit).
fn deliveries_in_hand(prefetch: u16) -> usize {
    if prefetch == 0 { usize::MAX } else { usize::from(prefetch) }
}

/// Deliveries waiting for their key's turn, and the keys with a batch out.
///
/// Invariants: a key has an entry in `pending` only while it has deliveries
/// waiting; it is in `waiting` exactly when it has an entry in `pending`
/// and no batch out, so `waiting` holds the keys whose batch may start, in
/// the order they became ready.
pub(crate) struct Groups<T> {
    cap: usize,
    max_concurrent: usize,
    pending: HashMap<String, VecDeque<T>>,
    busy: HashSet<String>,
    waiting: VecDeque<String>,
}

impl<T> Groups<T> {
    pub(crate) fn new(grouping: &Grouping) -> Self {
        Self {
            cap: grouping.cap,
            max_concurrent: grouping.max_concurrent,
            pending: HashMap::new(),
            busy: HashSet::new(),
            waiting: VecDeque::new(),
        }
    }

    /// A delivery of `key` arrived.
    pub(crate) fn push(&mut self, key: String, item: T) {
        match self.pending.entry(key) {
            Entry::Occupied(mut queue) => queue.get_mut().push_back(item),
            Entry::Vacant(slot) => {
                if !self.busy.contains(slot.key()) {
                    self.waiting.push_back(slot.key().clone());
                }
                slot.insert(VecDeque::from([item]));
            }
        }
    }

    /// The batch that may start now, if any: the oldest deliveries (up to
    /// the cap) of the key that became ready first, while fewer than
    /// `max_concurrent` batches are out. Its key is out until
    /// [`Groups::finished`].
    pub(crate) fn next_batch(&mut self) -> Option<(String, Vec<T>)> {
        if self.busy.len() >= self.max_concurrent {
            return None;
        }
        let key = self.waiting.pop_front()?;
        let queue = self.pending.get_mut(&key)?;
        let take = queue.len().min(self.cap);
        let batch: Vec<T> = queue.drain(..take).collect();
        if queue.is_empty() {
            self.pending.remove(&key);
        }
        self.busy.insert(key.clone());
        Some((key, batch))
    }

    /// `key`'s batch is settled; its next deliveries, if any, may go.
    pub(crate) fn finished(&mut self, key: &str) {
        if self.busy.remove(key) && self.pending.contains_key(key) {
            self.waiting.push_back(key.to_owned());
        }
    }

    /// Deliveries not handed over yet.
    pub(crate) fn waiting_deliveries(&self) -> usize {
        self.pending.values().map(VecDeque::len).sum()
    }
}

/// Hands one batch of `key` to the handler, then settles each of its
/// deliveries by its own outcome, all at once.
pub(crate) async fn handle<H: BatchHandler>(consuming: Arc<Consuming<H>>, key: String, batch: Vec<Received>) {
    let Consuming { broker, handler, options, grouping } = &*consuming;
    let size = batch.len();
    let (messages, settling): (Vec<Incoming>, Vec<_>) =
        batch.into_iter().map(|r| (r.message, (r.acker, r.span))).unzip();
    // A delivery handled alone is handled in its own span, as single
    // consumers always did; a batch gets one span, linked to the trace of
    // each of its messages.
    let span = match settling.as_slice() {
        [(_, alone)] => alone.clone(),
        _ => {
            let span = tracing::info_span!(parent: None, "amqp.batch", queue = %options.queue, key = %key, size);
            for (_, message) in &settling {
                span.add_link(message.context().span().span_context().clone());
            }
            span
        }
    };

    let started = Instant::now();
    let returned = AssertUnwindSafe(handler.handle(&messages)).catch_unwind().instrument(span.clone()).await.ok();
    metrics::histogram!("fa_amqp_handler_duration_seconds", "service" => broker.service(), "queue" => options.queue.clone())
        .record(started.elapsed().as_secs_f64());
    if grouping.batched {
        metrics::histogram!("fa_amqp_batch_size", "service" => broker.service(), "queue" => options.queue.clone())
            .record(size as f64);
    }
    let outcomes = span.in_scope(|| one_per_message(returned, size));

    let settled = messages.iter().zip(settling).zip(outcomes).map(|((message, (acker, span)), outcome)| {
        async move { settle(broker, handler, &options.retry, message, &acker, outcome).await }.instrument(span)
    });
    futures_util::future::join_all(settled).await;
}

/// Exactly one outcome per message, whatever the handler returned (`None`:
/// it panicked). A panic retries the whole batch; so does a miscount, since
/// outcomes matched by position could then ack a message whose work was
/// not done. Retrying is never wrong: handlers are idempotent.
fn one_per_message(returned: Option<Vec<Outcome>>, size: usize) -> Vec<Outcome> {
    let Some(outcomes) = returned else {
        tracing::error!(size, "the batch handler panicked; every message of the batch is retried");
        return (0..size).map(|_| Outcome::Retry { failure: Failure::handler_panicked(), after: None }).collect();
    };
    if outcomes.len() != size {
        tracing::error!(
            messages = size,
            outcomes = outcomes.len(),
            "the batch handler did not return one outcome per message; the whole batch is retried as handler_bug"
        );
        let bug = || Outcome::Retry {
            failure: Failure::new(Code::HandlerBug, "the batch handler miscounted its outcomes; see the service's log"),
            after: None,
        };
        return (0..size).map(|_| bug()).collect();
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(cap: usize, max_concurrent: usize) -> Groups<&'static str> {
        Groups::new(&Grouping { cap, max_concurrent, batched: true })
    }

    fn batch(key: &str, items: &[&'static str]) -> Option<(String, Vec<&'static str>)> {
        Some((key.to_owned(), items.to_vec()))
    }

    #[test]
    fn a_lone_delivery_is_ready_at_once() {
        let mut g = groups(200, 16);
        g.push("acme".into(), "a1");
        assert_eq!(g.next_batch(), batch("acme", &["a1"]));
        assert_eq!(g.next_batch(), None);
    }

    #[test]
    fn deliveries_of_a_busy_key_form_its_next_batch_up_to_the_cap() {
        let mut g = groups(2, 16);
        g.push("acme".into(), "a1");
        assert_eq!(g.next_batch(), batch("acme", &["a1"]));
        for item in ["a2", "a3", "a4"] {
            g.push("acme".into(), item);
        }
        assert_eq!(g.next_batch(), None, "one batch of a key at a time");
        assert_eq!(g.waiting_deliveries(), 3);
        g.finished("acme");
        assert_eq!(g.next_batch(), batch("acme", &["a2", "a3"]));
        g.finished("acme");
        assert_eq!(g.next_batch(), batch("acme", &["a4"]));
        g.finished("acme");
        assert_eq!(g.next_batch(), None);
        assert_eq!(g.waiting_deliveries(), 0);
    }

    #[test]
    fn keys_run_side_by_side_up_to_the_limit_then_in_the_order_they_became_ready() {
        let mut g = groups(200, 2);
        for (key, item) in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1"), ("d", "d1"), ("b", "b2")] {
            g.push(key.into(), item);
        }
        assert_eq!(g.next_batch(), batch("a", &["a1", "a2"]));
        assert_eq!(g.next_batch(), batch("b", &["b1", "b2"]));
        assert_eq!(g.next_batch(), None, "two batches out at most");
        g.push("a".into(), "a3");
        g.finished("a");
        // c and d were ready before a's next deliveries could go.
        assert_eq!(g.next_batch(), batch("c", &["c1"]));
        g.finished("b");
        assert_eq!(g.next_batch(), batch("d", &["d1"]));
        g.finished("c");
        assert_eq!(g.next_batch(), batch("a", &["a3"]));
    }

    #[test]
    fn the_cap_is_the_smaller_of_max_batch_and_the_prefetch() {
        fn check(max_batch: usize, max_concurrent: usize, prefetch: u16, cap: usize, concurrent: usize) {
            let grouping = Grouping::batches(BatchOptions { max_batch, max_concurrent }, prefetch);
            assert_eq!((grouping.cap, grouping.max_concurrent), (cap, concurrent), "{max_batch}, {prefetch}");
        }
        check(200, 16, 500, 200, 16);
        check(200, 16, 50, 50, 16);
        check(200, 16, 0, 200, 16);
        check(0, 0, 10, 1, 1);
        assert_eq!(Grouping::one_by_one(16), Grouping { cap: 1, max_concurrent: 16, batched: false });
    }

    #[test]
    fn every_message_gets_exactly_one_outcome() {
        fn code(outcome: &Outcome) -> &str {
            match outcome {
                Outcome::Done => "done",
                Outcome::Reject(f) | Outcome::Retry { failure: f, .. } | Outcome::Wait { failure: f, .. } => f.code(),
            }
        }
        fn check(returned: Option<Vec<Outcome>>, size: usize, expected: &[&str]) {
            let outcomes = one_per_message(returned, size);
            assert_eq!(outcomes.iter().map(code).collect::<Vec<_>>(), expected);
        }
        let reject = || Outcome::Reject(Failure::new(Code::InvalidMessage, "no"));
        check(Some(vec![Outcome::Done, reject()]), 2, &["done", "invalid_message"]);
        check(Some(vec![Outcome::Done]), 3, &["handler_bug", "handler_bug", "handler_bug"]);
        check(Some(vec![Outcome::Done, reject(), Outcome::Done]), 2, &["handler_bug", "handler_bug"]);
        check(Some(Vec::new()), 1, &["handler_bug"]);
        check(None, 2, &["handler_panicked", "handler_panicked"]);
    }
}
