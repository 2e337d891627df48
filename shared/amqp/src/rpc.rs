//! Request and reply over RabbitMQ, for answers a caller waits milliseconds
//! for (token-broker serving access tokens to the other services).
//!
//! - A server ([`Broker::serve_rpc`]) consumes a queue declared with
//!   [`Topology::rpc_queue`](crate::Topology::rpc_queue), runs an
//!   [`RpcHandler`] on each request concurrently, sends the reply to the
//!   request's `reply_to` with its `correlation_id`, then acks the request.
//!   Several replicas compete on the one queue. It answers only through
//!   direct reply-to: a request whose `reply_to` names anything else (a
//!   durable queue, say) is logged, acked and dropped without running the
//!   handler.
//! - A client ([`RpcClient::call`]) publishes a request and waits for its
//!   reply, its timeout, or a reason to give up early ([`RpcError`]).
//!
//! Why it is built this way:
//! - **Direct reply-to** (`amq.rabbitmq.reply-to`): replies go straight to
//!   the calling channel without a reply queue to declare, bind, or clean
//!   up after a caller dies, and with nothing written anywhere on the way.
//!   The server insists on it: whoever can publish a request could
//!   otherwise have a secret written into a queue of their choosing.
//! - **A classic request queue:** requests are ephemeral, so the Raft
//!   replication of a quorum queue would only add latency; a request lost
//!   with a broker node is retried by its caller.
//! - **Nothing persistent** (`delivery_mode` 1, both ways): replies carry
//!   secrets such as access tokens and must never be written to disk, and a
//!   request outliving its caller is useless. A request also carries
//!   `expiration` = the caller's timeout, so one nobody took in time
//!   disappears instead of being answered to nobody.
//! - **Mandatory requests with publisher confirms** on the client's channel:
//!   a request to a queue that does not exist comes back (`basic.return`)
//!   and fails at once with [`RpcError::NoServer`] instead of waiting for
//!   the timeout. lapin hands returned messages out only through confirms
//!   (without them it keeps them until `wait_for_confirms`), so confirms are
//!   on; the caller never waits for a confirm before its reply.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{FutureExt as _, StreamExt as _};
use lapin::{
    BasicProperties, Channel, Confirmation, PublisherConfirm,
    options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions},
    types::{FieldTable, ShortString},
};
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument as _;

use crate::{
    broker::{Broker, Link, close_channel},
    consume::{self, ConsumerHandle, ConsumerOptions, Handler, Incoming, Outcome},
    headers,
};

/// The pseudo-queue of RabbitMQ's direct reply-to.
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// How long a server tries to send one reply before it gives up on it; the
/// caller has given up long before.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call got no reply.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No reply came in time. The request expires unanswered if no server
    /// took it.
    #[error("no reply within {0:?}; is a server consuming the queue, and keeping up?")]
    Timeout(Duration),
    /// No queue named `queue` exists, so nothing could take the request.
    #[error("nothing consumes queue {queue}: it does not exist; is its server running?")]
    NoServer {
        /// The queue the request was for.
        queue: String,
    },
    /// The connection or channel to RabbitMQ broke before the reply came
    /// (or RabbitMQ refused the request); it may or may not have been handled. The next call uses the
    /// new connection, so the caller may retry.
    #[error("the connection to RabbitMQ broke before the reply came; retry once it is back")]
    Disconnected,
    /// The broker was closed; no call can succeed any more.
    #[error("the RabbitMQ connection was closed by this service; no more calls can be made")]
    Closed,
}

impl RpcError {
    fn label(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::NoServer { .. } => "no_server",
            Self::Disconnected => "disconnected",
            Self::Closed => "closed",
        }
    }
}

/// One request, as a server's handler sees it.
#[derive(Debug, Clone)]
pub struct RpcRequest {
    /// The body as sent by the caller.
    pub body: Vec<u8>,
    /// The properties as sent by the caller.
    pub properties: BasicProperties,
}

impl RpcRequest {
    /// The `tenant_id` header.
    pub fn tenant_id(&self) -> Option<String> {
        headers::text(self.properties.headers().as_ref(), headers::TENANT_HEADER)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        headers::text(self.properties.headers().as_ref(), name)
    }

    /// The RabbitMQ user that published the request (`user_id`), or `None`
    /// if it carries none. RabbitMQ refuses a publish whose `user_id` is not
    /// the publishing connection's login, so a present value is who sent
    /// it; [`RpcClient`] always sets it.
    pub fn user_id(&self) -> Option<&str> {
        self.properties.user_id().as_ref().map(ShortString::as_str)
    }

    /// The `correlation_id` property the reply carries back.
    pub fn correlation_id(&self) -> Option<&str> {
        self.properties.correlation_id().as_ref().map(ShortString::as_str)
    }
}

/// A service's answers to the requests of one queue.
pub trait RpcHandler: Send + Sync + 'static {
    /// The reply body to `request`. Runs concurrently with other requests;
    /// the caller is waiting, so answer fast or answer with an error body.
    fn handle(&self, request: &RpcRequest) -> impl Future<Output = Vec<u8>> + Send;
}

/// A shared handler handles as the handler it shares, so a test or a
/// service can keep a reference to its state.
impl<H: RpcHandler> RpcHandler for Arc<H> {
    fn handle(&self, request: &RpcRequest) -> impl Future<Output = Vec<u8>> + Send {
        (**self).handle(request)
    }
}

/// How a request queue is served.
#[derive(Debug, Clone)]
pub struct RpcServerOptions {
    /// The queue, declared by the broker's topology with
    /// [`Topology::rpc_queue`](crate::Topology::rpc_queue).
    pub queue: String,
    /// Requests in hand at most (`basic.qos`); they run concurrently.
    pub prefetch: u16,
    /// How long a shutdown waits for requests in hand.
    pub drain_timeout: Duration,
}

impl RpcServerOptions {
    /// `queue` with a prefetch of 256 and 5 s to drain: requests are short,
    /// and their callers stop waiting within seconds anyway.
    pub fn new(queue: &str) -> Self {
        Self { queue: queue.to_owned(), prefetch: 256, drain_timeout: Duration::from_secs(5) }
    }
}

impl Broker {
    /// Starts serving `options.queue` with `handler`: each request runs
    /// concurrently (up to the prefetch), its reply goes to its `reply_to`
    /// with its `correlation_id` and is never persisted, then the request is
    /// acked. A request without `reply_to`, or whose `reply_to` is not direct
    /// reply-to, is acked and dropped unanswered (counted in
    /// `fa_amqp_rpc_requests_refused_total`).
    ///
    /// The returned handle is a consumer's: it reports readiness and stops
    /// by letting the requests in hand finish.
    pub fn serve_rpc<H: RpcHandler>(&self, options: RpcServerOptions, handler: H) -> ConsumerHandle {
        let consumer = ConsumerOptions {
            prefetch: options.prefetch,
            drain_timeout: options.drain_timeout,
            ..ConsumerOptions::new(&options.queue)
        };
        let server = Server { replies: Replies::new(self.clone()), handler };
        consume::start(self.clone(), consumer, server)
    }
}

/// Serving runs on the consumer of `consume.rs` (its own channel per link,
/// resubscribing after reconnections, trace context adopted, draining at
/// shutdown); this is what it does with each delivery.
struct Server<H> {
    replies: Replies,
    handler: H,
}

impl<H: RpcHandler> Handler for Server<H> {
    async fn handle(&self, message: &Incoming) -> Outcome {
        let Some(reply_to) = message.properties.reply_to().as_ref().map(|r| r.as_str().to_owned()) else {
            tracing::warn!(queue = %message.queue, "a request without reply_to: nobody to answer; dropped");
            self.refused(message, "no_reply_to");
            return Outcome::Done;
        };
        if !is_direct_reply_to(&reply_to) {
            // A reply may carry a secret: sent to a named queue, it would sit
            // there (on disk, if the queue is durable) for whoever reads it.
            // So the handler never runs, and the request is dropped: there
            // is no dead-letter queue for requests, and a copy would only
            // tell the sender what it already knows.
            tracing::warn!(
                queue = %message.queue,
                tenant_id = message.tenant_id().unwrap_or_default(),
                app_id = message.properties.app_id().as_ref().map(ShortString::as_str).unwrap_or_default(),
                reply_to = %reply_to,
                "a request whose reply_to is not direct reply-to ({DIRECT_REPLY_TO}); refused unanswered: \
                 callers must call through fa_amqp::RpcClient"
            );
            self.refused(message, "reply_to_not_direct");
            return Outcome::Done;
        }
        let request = RpcRequest { body: message.body.clone(), properties: message.properties.clone() };
        let Ok(body) = AssertUnwindSafe(self.handler.handle(&request)).catch_unwind().await else {
            // A retry would panic again; the caller times out.
            tracing::error!(queue = %message.queue, "the RPC handler panicked; the request is dropped unanswered");
            return Outcome::Done;
        };
        let mut properties = BasicProperties::default().with_delivery_mode(1);
        if let Some(id) = message.properties.correlation_id() {
            properties = properties.with_correlation_id(id.clone());
        }
        self.replies.send(&reply_to, &body, properties).await;
        // Acked whether or not the reply went out: answering twice is
        // pointless, the caller retries if it must.
        Outcome::Done
    }
}

impl<H> Server<H> {
    fn refused(&self, message: &Incoming, reason: &'static str) {
        metrics::counter!("fa_amqp_rpc_requests_refused_total", "service" => self.replies.broker.service(),
            "queue" => message.queue.clone(), "reason" => reason)
        .increment(1);
    }
}

/// Whether `reply_to` is the address RabbitMQ gives a direct reply-to
/// caller (`amq.rabbitmq.reply-to.<channel>`). Nothing else can carry that
/// name: queue names starting with `amq.` are reserved, so no client can
/// declare a queue behind it.
fn is_direct_reply_to(reply_to: &str) -> bool {
    reply_to.strip_prefix(DIRECT_REPLY_TO).is_some_and(|rest| rest.starts_with('.'))
}

/// The channel a server sends its replies on, one per link, without
/// confirms: a reply is fire and forget, and its request is acked at once.
///
/// The broker holds the channel too ([`Broker::hold_channel`]) and closes it
/// when the guard beside it here goes (the channel is replaced, or the
/// server stopped) or the broker closes.
struct Replies {
    broker: Broker,
    current: Mutex<Option<(u64, Channel, DropGuard)>>,
    opening: tokio::sync::Mutex<()>,
}

impl Replies {
    fn new(broker: Broker) -> Self {
        Self { broker, current: Mutex::new(None), opening: tokio::sync::Mutex::new(()) }
    }

    async fn send(&self, reply_to: &str, body: &[u8], properties: BasicProperties) {
        let sent = tokio::time::timeout(REPLY_TIMEOUT, async {
            // Once more on a fresh channel if the cached one just failed.
            for _ in 0..2 {
                let Some(channel) = self.channel().await else { return Err("the broker is closed".to_owned()) };
                // Not mandatory: a caller that is gone is no error of ours.
                let published = channel
                    .basic_publish("".into(), reply_to.into(), BasicPublishOptions::default(), body, properties.clone())
                    .await;
                match published {
                    Ok(_) => return Ok(()),
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot send a reply; trying a new channel");
                        self.forget(&channel);
                    }
                }
            }
            Err("the reply channel keeps failing".to_owned())
        })
        .await
        .unwrap_or_else(|_| Err(format!("no usable connection within {REPLY_TIMEOUT:?}")));
        if let Err(why) = sent {
            tracing::warn!(reason = %why, "a reply was not sent; its caller will time out");
        }
    }

    fn cached(&self, generation: u64) -> Option<Channel> {
        let current = self.current.lock().ok()?;
        current
            .as_ref()
            .filter(|(g, channel, _)| *g == generation && channel.status().connected())
            .map(|(_, channel, _)| channel.clone())
    }

    fn forget(&self, failed: &Channel) {
        if let Ok(mut current) = self.current.lock()
            && current.as_ref().is_some_and(|(_, c, _)| c.id() == failed.id())
        {
            *current = None;
        }
    }

    async fn channel(&self) -> Option<Channel> {
        loop {
            let link = self.broker.link().await?;
            if let Some(channel) = self.cached(link.generation) {
                return Some(channel);
            }
            let _opening = self.opening.lock().await;
            if let Some(channel) = self.cached(link.generation) {
                return Some(channel);
            }
            match link.connection.create_channel().await {
                Ok(channel) => {
                    let held = self.broker.hold_channel(&link, channel.clone(), "replies done");
                    if let Ok(mut current) = self.current.lock() {
                        *current = Some((link.generation, channel.clone(), held));
                    }
                    return Some(channel);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open a channel for replies; waiting for a new connection");
                    link.broken.cancel();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Calls servers and waits for their replies.
///
/// Cheap to clone; all clones share one channel per connection, on which
/// any number of calls wait concurrently.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    broker: Broker,
    session: Mutex<Option<Arc<Session>>>,
    opening: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        if let Some(session) = self.session.get_mut().ok().and_then(Option::take) {
            session.close();
        }
    }
}

type Waiting = HashMap<String, oneshot::Sender<Result<Vec<u8>, RpcError>>>;

/// One channel consuming direct reply-to, and the calls waiting on it.
struct Session {
    link: Arc<Link>,
    channel: Channel,
    /// `None` once closed: a call registering then gets `Disconnected`
    /// instead of waiting for a reply that cannot come.
    waiting: Mutex<Option<Waiting>>,
    closed: CancellationToken,
}

impl Session {
    fn usable(&self) -> bool {
        !self.closed.is_cancelled() && self.link.usable() && self.channel.status().connected()
    }

    fn register(&self, id: &str) -> Result<oneshot::Receiver<Result<Vec<u8>, RpcError>>, RpcError> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock().map_err(|_| RpcError::Disconnected)?;
        waiting.as_mut().ok_or(RpcError::Disconnected)?.insert(id.to_owned(), tx);
        Ok(rx)
    }

    fn settle(&self, id: &str, outcome: Result<Vec<u8>, RpcError>) -> bool {
        let waiter = self.waiting.lock().ok().and_then(|mut w| w.as_mut().and_then(|w| w.remove(id)));
        match waiter {
            Some(tx) => {
                let _ = tx.send(outcome);
                true
            }
            None => false,
        }
    }

    /// Fails every waiting call with `Disconnected` (by dropping its
    /// sender) and refuses new ones.
    fn close(&self) {
        self.closed.cancel();
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.take();
        }
    }
}

/// Removes a call from the waiting calls however it ends (reply, timeout,
/// or the caller dropping the future).
struct Registered<'a> {
    session: &'a Session,
    id: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.session.settle(&self.id, Err(RpcError::Disconnected));
    }
}

impl RpcClient {
    /// A client calling over `broker`'s connection; it opens its channel on
    /// the first call.
    pub fn new(broker: Broker) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                broker,
                session: Mutex::new(None),
                opening: tokio::sync::Mutex::new(()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Sends `body` to the server of `queue` and returns its reply.
    ///
    /// Waits at most `timeout` in all, including for a connection; the
    /// request expires after `timeout` if no server took it. `tenant_id`
    /// travels in the `tenant_id` header, and the current trace continues
    /// in the server's handler.
    pub async fn call(
        &self,
        queue: &str,
        body: Vec<u8>,
        tenant_id: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let started = Instant::now();
        let span = tracing::info_span!("amqp.rpc.call", queue, tenant_id = tenant_id.unwrap_or_default());
        let outcome = tokio::time::timeout(timeout, self.exchange(queue, body, tenant_id, timeout))
            .instrument(span)
            .await
            .unwrap_or(Err(RpcError::Timeout(timeout)));
        let service = self.inner.broker.service();
        let label = match &outcome {
            Ok(_) => "ok",
            Err(e) => e.label(),
        };
        metrics::counter!("fa_amqp_rpc_calls_total", "service" => service, "queue" => queue.to_owned(), "outcome" => label)
            .increment(1);
        metrics::histogram!("fa_amqp_rpc_duration_seconds", "service" => service, "queue" => queue.to_owned())
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn exchange(
        &self,
        queue: &str,
        body: Vec<u8>,
        tenant_id: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcError> {
        let session = self.session().await?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let reply = session.register(&id)?;
        let _registered = Registered { session: &session, id: id.clone() };

        let mut table = BTreeMap::new();
        if let Some(tenant) = tenant_id {
            headers::set_text(&mut table, headers::TENANT_HEADER, tenant);
        }
        headers::inject_trace_context(&mut table);
        let expiration = timeout.as_millis().max(1).to_string();
        let properties = BasicProperties::default()
            .with_reply_to(ShortString::from(DIRECT_REPLY_TO))
            .with_correlation_id(ShortString::from(id.as_str()))
            .with_delivery_mode(1)
            .with_expiration(ShortString::from(expiration))
            .with_app_id(ShortString::from(self.inner.broker.service()))
            .with_headers(FieldTable::from(table));
        // RabbitMQ refuses a `user_id` other than the connection's login, so
        // the server can tell which service is asking.
        let properties = match self.inner.broker.user() {
            Some(user) => properties.with_user_id(ShortString::from(user)),
            None => properties,
        };
        let options = BasicPublishOptions { mandatory: true, ..Default::default() };
        let confirm = match session.channel.basic_publish("".into(), queue.into(), options, &body, properties).await {
            Ok(confirm) => confirm,
            Err(e) => {
                tracing::warn!(error = %e, "cannot send a request; the next call opens a new channel");
                session.close();
                return Err(RpcError::Disconnected);
            }
        };
        // The confirm is awaited aside: the reply usually comes first, and an
        // unawaited confirm would pile up inside lapin.
        tokio::spawn(watch_confirm(session.clone(), confirm, id));
        reply.await.unwrap_or(Err(RpcError::Disconnected))
    }

    /// The current session, or a new one on the current link.
    async fn session(&self) -> Result<Arc<Session>, RpcError> {
        if let Some(session) = self.current() {
            return Ok(session);
        }
        let _opening = self.inner.opening.lock().await;
        loop {
            if let Some(session) = self.current() {
                return Ok(session);
            }
            let link = self.inner.broker.link().await.ok_or(RpcError::Closed)?;
            match open(&self.inner.broker, link.clone()).await {
                Ok(session) => {
                    if let Ok(mut current) = self.inner.session.lock() {
                        *current = Some(session.clone());
                    }
                    return Ok(session);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the channel for calls; waiting for a new connection");
                    link.broken.cancel();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn current(&self) -> Option<Arc<Session>> {
        let current = self.inner.session.lock().ok()?;
        current.as_ref().filter(|s| s.usable()).cloned()
    }
}

/// Opens a channel on `link`, consumes direct reply-to on it (before any
/// request is published on it, as RabbitMQ requires) and starts the task
/// that hands replies to their callers.
async fn open(broker: &Broker, link: Arc<Link>) -> lapin::Result<Arc<Session>> {
    let service = broker.service();
    let channel = link.connection.create_channel().await?;
    let tag = format!("{service}-rpc-{}", uuid::Uuid::new_v4().simple());
    let consumed = async {
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        channel
            .basic_consume(
                DIRECT_REPLY_TO.into(),
                tag.as_str().into(),
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
    }
    .await;
    let replies = match consumed {
        Ok(replies) => replies,
        Err(e) => {
            close_channel(&channel, "cannot consume replies").await;
            return Err(e);
        }
    };
    let session = Arc::new(Session {
        link,
        channel,
        waiting: Mutex::new(Some(HashMap::new())),
        closed: CancellationToken::new(),
    });
    let reading = read_replies(session.clone(), replies, broker.closing().clone());
    // No parent: the reader outlives the call that opened the session, and
    // belongs to no caller's trace.
    broker.spawn_helper(reading.instrument(tracing::info_span!(parent: None, "amqp.rpc.replies", service)));
    Ok(session)
}

/// Hands replies to their callers until the session is closed, its link
/// breaks or the broker closes; then closes the channel (see
/// [`close_channel`]).
async fn read_replies(session: Arc<Session>, mut replies: lapin::Consumer, closing: CancellationToken) {
    loop {
        tokio::select! {
            _ = session.closed.cancelled() => break,
            _ = session.link.broken.cancelled() => break,
            _ = closing.cancelled() => break,
            next = replies.next() => match next {
                Some(Ok(delivery)) => {
                    let id = delivery.properties.correlation_id().as_ref().map(|c| c.as_str().to_owned());
                    let delivered = id.as_deref().is_some_and(|id| session.settle(id, Ok(delivery.data)));
                    if !delivered {
                        // Its caller timed out or went away.
                        tracing::debug!(correlation_id = id.as_deref().unwrap_or(""), "a reply nobody waits for; dropped");
                    }
                }
                Some(Err(e)) => {
                    if closing.is_cancelled() {
                        tracing::debug!(error = %e, "the reply channel closed with the broker");
                    } else {
                        tracing::warn!(error = %e, "the reply channel failed; waiting calls fail as disconnected");
                    }
                    break;
                }
                None => break,
            },
        }
    }
    session.close();
    close_channel(&session.channel, "done").await;
    // Dropped only now: dropping a consumer on an open channel has lapin
    // cancel it in the background, which fails like a dropped channel's
    // close if the connection closes meanwhile.
    drop(replies);
}

/// Fails a call whose request came back unroutable. The returned message is
/// matched to its call by `correlation_id`, not by the confirm it arrived
/// with: lapin attaches returns to confirms in arrival order, which is not
/// necessarily the right one when the broker acks several at once.
async fn watch_confirm(session: Arc<Session>, confirm: PublisherConfirm, id: String) {
    match confirm.await {
        Ok(Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned))) => {
            let queue = returned.delivery.routing_key.as_str().to_owned();
            if let Some(id) = returned.delivery.properties.correlation_id() {
                session.settle(id.as_str(), Err(RpcError::NoServer { queue }));
            }
        }
        // The broker could not take the request (an internal error); the
        // caller need not wait out its timeout.
        Ok(Confirmation::Nack(None)) => {
            tracing::warn!("RabbitMQ refused a request");
            session.settle(&id, Err(RpcError::Disconnected));
        }
        Ok(Confirmation::Ack(None) | Confirmation::NotRequested) => {}
        // The channel broke; the reply reader fails the waiting calls.
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::is_direct_reply_to;

    #[test]
    fn only_the_direct_reply_to_address_of_a_channel_is_answered() {
        let check = |reply_to: &str, answered: bool| assert_eq!(is_direct_reply_to(reply_to), answered, "{reply_to}");
        check("amq.rabbitmq.reply-to.g1h2AA5yZXBseUAyNDc4NTA2NQAAHzsAAAAAXzUdFQ==", true);
        check("amq.rabbitmq.reply-to.x", true);
        // What a caller sets is rewritten by RabbitMQ before any server sees it.
        check("amq.rabbitmq.reply-to", false);
        check("amq.rabbitmq.reply-tox", false);
        check("token-replies", false);
        check("attacker.inbox.amq.rabbitmq.reply-to.x", false);
        check("", false);
    }
}
