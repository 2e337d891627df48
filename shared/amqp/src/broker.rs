//! One self-healing connection to RabbitMQ and confirmed publishing over it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt as _;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::{FieldTable, ShortString},
};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::watch;
use tokio_util::{
    sync::{CancellationToken, DropGuard},
    task::TaskTracker,
};
use tracing::Instrument as _;

use crate::{
    batch::{BatchHandler, BatchOptions},
    bulk::Bulk,
    consume::{self, ConsumerHandle, ConsumerOptions, Handler},
    headers,
    publish::{Outgoing, PublishError},
    topology::Topology,
};

/// Tuning of a [`Broker`]; the defaults suit production.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// How long a publish waits for a connection and a confirm, across
    /// reconnections, before it fails.
    pub publish_timeout: Duration,
    /// The first wait between reconnection attempts; it doubles up to
    /// `max_backoff`.
    pub min_backoff: Duration,
    /// The longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// Channels publishes are spread over. RabbitMQ keeps the order of
    /// messages only within one channel, and consumers of `customer.upsert`
    /// rely on a record's versions arriving oldest first, so the default is
    /// one; more only for publishers that do not care about order.
    pub publisher_channels: usize,
    /// For `amqps://`: PEM certificates of the authorities that may sign
    /// RabbitMQ's certificate, trusted besides the system's own (a private
    /// CA, as clusters often use). Not secret.
    pub tls_roots: Option<String>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            publish_timeout: Duration::from_secs(30),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            publisher_channels: 1,
            tls_roots: None,
        }
    }
}

/// A connection to RabbitMQ that reconnects by itself.
///
/// Cheap to clone; all clones share the connection.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    service: &'static str,
    url: SecretString,
    user: Option<String>,
    topology: Topology,
    options: BrokerOptions,
    link: watch::Sender<Option<Arc<Link>>>,
    last_error: std::sync::Mutex<Option<String>>,
    /// Cancelled first by [`Broker::close`]: the helpers close their
    /// channels and end.
    closing: CancellationToken,
    /// The tasks holding channels besides the consumers' (listeners, RPC
    /// reply readers, reply channels); [`Broker::close`] waits for them
    /// before the connection closes.
    helpers: TaskTracker,
    stop: CancellationToken,
    stopped: CancellationToken,
    generations: AtomicU64,
    /// [`Broker::publish_all`]'s connections not in use, the most recently
    /// used last; closed once idle for [`crate::bulk::IDLE_LIMIT`].
    bulk: std::sync::Mutex<Vec<Bulk>>,
}

/// How long [`Broker::close`] waits for the helpers to close their
/// channels before it closes the connection anyway.
const HELPERS_GRACE: Duration = Duration::from_secs(5);

/// How long closing one channel may take.
const CHANNEL_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// One live connection, its publishing channel, and a token cancelled once
/// anything on it fails.
pub(crate) struct Link {
    pub(crate) connection: Connection,
    publishers: Vec<Channel>,
    pub(crate) next_publisher: std::sync::atomic::AtomicUsize,
    pub(crate) broken: CancellationToken,
    pub(crate) generation: u64,
}

impl Link {
    pub(crate) fn usable(&self) -> bool {
        !self.broken.is_cancelled() && self.connection.status().connected()
    }
}

impl Broker {
    /// Starts connecting in the background and returns at once; publishers
    /// and consumers wait for the connection. `topology` is declared on every
    /// (re)connection.
    pub fn start(url: SecretString, service: &'static str, topology: Topology, options: BrokerOptions) -> Self {
        let (link, _) = watch::channel(None);
        let user = connection_user(url.expose_secret());
        let inner = Arc::new(Inner {
            service,
            url,
            user,
            topology,
            options,
            link,
            last_error: std::sync::Mutex::new(None),
            closing: CancellationToken::new(),
            helpers: TaskTracker::new(),
            stop: CancellationToken::new(),
            stopped: CancellationToken::new(),
            generations: AtomicU64::new(0),
            bulk: std::sync::Mutex::new(Vec::new()),
        });
        tokio::spawn(supervise(inner.clone()).instrument(tracing::info_span!("amqp", service)));
        let broker = Self { inner };
        broker.spawn_helper(close_idle_bulk(broker.clone()).instrument(tracing::info_span!("amqp", service)));
        broker
    }

    /// The binary's name, used as `app_id`.
    pub fn service(&self) -> &'static str {
        self.inner.service
    }

    /// The RabbitMQ user the connection logs in as (the URL's user; `guest`
    /// when it names none), or `None` for a URL that does not parse (the
    /// connection then fails, and says why).
    ///
    /// Requests this service sends carry it as `user_id`, which RabbitMQ
    /// checks against the connection's login: a server can trust it.
    pub fn user(&self) -> Option<&str> {
        self.inner.user.as_deref()
    }

    /// The tuning it was started with.
    pub(crate) fn options(&self) -> &BrokerOptions {
        &self.inner.options
    }

    /// Ok while connected with the topology declared; the reason otherwise.
    pub fn readiness(&self) -> Result<(), String> {
        match &*self.inner.link.borrow() {
            Some(link) if link.usable() => Ok(()),
            _ => {
                let why = self.inner.last_error.lock().ok().and_then(|e| e.clone());
                Err(match why {
                    Some(e) => format!("not connected to RabbitMQ: {e}"),
                    None => "not connected to RabbitMQ yet".to_owned(),
                })
            }
        }
    }

    /// Publishes `message` with the contract's properties and waits for the
    /// broker's confirm, reconnecting as needed within the publish timeout.
    pub async fn publish<M: fa_messages::Message>(&self, message: &M) -> Result<(), PublishError> {
        self.publish_outgoing(Outgoing::message(message)?).await
    }

    /// Publishes a prepared message; see [`Broker::publish`]. In a span of
    /// its own, whose trace context the message carries.
    pub async fn publish_outgoing(&self, out: Outgoing) -> Result<(), PublishError> {
        let span = tracing::info_span!("amqp.publish", otel.kind = "producer", exchange = %out.exchange,
            routing_key = %out.routing_key, r#type = out.kind.as_deref().unwrap_or(""));
        self.publish_outgoing_in_span(out).instrument(span).await
    }

    async fn publish_outgoing_in_span(&self, out: Outgoing) -> Result<(), PublishError> {
        let mut headers = out.headers;
        if let Some(tenant) = &out.tenant_id {
            headers::set_text(&mut headers, headers::TENANT_HEADER, tenant);
        }
        headers::inject_trace_context(&mut headers);
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let mut properties = BasicProperties::default()
            .with_content_type(ShortString::from("application/json"))
            .with_delivery_mode(2)
            .with_message_id(ShortString::from(out.message_id.as_str()))
            .with_timestamp(timestamp)
            .with_app_id(ShortString::from(self.inner.service))
            .with_headers(FieldTable::from(headers));
        if let Some(kind) = &out.kind {
            properties = properties.with_type(ShortString::from(kind.as_str()));
        }
        self.publish_with(&out.exchange, &out.routing_key, &out.body, properties).await
    }

    /// Publishes with exactly `properties` (used to copy a delivery to its
    /// retry or dead-letter queue with its original properties).
    pub(crate) async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let started = Instant::now();
        let timeout = self.inner.options.publish_timeout;
        let outcome =
            tokio::time::timeout(timeout, self.publish_until_confirmed(exchange, routing_key, body, properties))
                .await
                .unwrap_or(Err(PublishError::Timeout(timeout)));
        let label = match &outcome {
            Ok(()) => "confirmed",
            Err(PublishError::Nacked) => "nacked",
            Err(PublishError::Unroutable { .. }) => "unroutable",
            Err(_) => "failed",
        };
        let service = self.inner.service;
        zero_failed_publishes(service, exchange, routing_key);
        metrics::counter!("fa_amqp_published_total", "service" => service, "exchange" => exchange.to_owned(),
            "routing_key" => routing_key.to_owned(), "outcome" => label)
        .increment(1);
        metrics::histogram!("fa_amqp_publish_duration_seconds", "service" => service, "exchange" => exchange.to_owned())
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn publish_until_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        loop {
            let link = self.link().await.ok_or(PublishError::Closed)?;
            let options = BasicPublishOptions { mandatory: true, ..Default::default() };
            let index = link.next_publisher.fetch_add(1, Ordering::Relaxed) % link.publishers.len();
            let sent = link.publishers[index]
                .basic_publish(exchange.into(), routing_key.into(), options, body, properties.clone())
                .await;
            let confirmed = match sent {
                Ok(confirm) => confirm.await,
                Err(e) => Err(e),
            };
            match confirmed {
                Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => return Ok(()),
                Ok(Confirmation::Ack(Some(_))) => {
                    return Err(PublishError::Unroutable {
                        exchange: exchange.to_owned(),
                        routing_key: routing_key.to_owned(),
                    });
                }
                Ok(Confirmation::Nack(_)) => return Err(PublishError::Nacked),
                Err(e) => {
                    // The connection or channel broke under us; the message
                    // may or may not have arrived. Send it again on the next
                    // connection: consumers treat messages as possibly
                    // delivered twice, and losing one is not allowed.
                    tracing::warn!(error = %e, exchange, routing_key, "publish interrupted; resending after reconnection");
                    link.broken.cancel();
                }
            }
        }
    }

    /// A usable link, waiting for the supervisor to make one; `None` once
    /// the broker is closed.
    pub(crate) async fn link(&self) -> Option<Arc<Link>> {
        let mut rx = self.inner.link.subscribe();
        loop {
            if self.inner.stopped.is_cancelled() {
                return None;
            }
            if let Some(link) = rx.borrow_and_update().as_ref()
                && link.usable()
            {
                return Some(link.clone());
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return None },
                _ = self.inner.stopped.cancelled() => return None,
                // A link can break without the watch changing (the broker
                // closed it and the supervisor has not noticed yet).
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Starts consuming `options.queue` with `handler`; see [`Handler`].
    pub fn consume<H: Handler>(&self, options: ConsumerOptions, handler: H) -> ConsumerHandle {
        consume::start(self.clone(), options, handler)
    }

    /// Starts consuming `options.queue` with `handler`, in batches of one
    /// key; see [`BatchHandler`].
    ///
    /// A key with no batch in flight gets its deliveries at once, with
    /// whatever else of it the subscription already holds; while its batch
    /// is in flight, its new deliveries wait to form its next one (at most
    /// `min(batching.max_batch, options.prefetch)`). No timer holds a lone
    /// delivery back. Each delivery is settled by its own outcome, as with
    /// [`Broker::consume`]; stopping drains the batches in flight and
    /// hands deliveries not yet handed over back to the queue.
    pub fn consume_batches<H: BatchHandler>(
        &self,
        options: ConsumerOptions,
        batching: BatchOptions,
        handler: H,
    ) -> ConsumerHandle {
        consume::start_batches(self.clone(), options, batching, handler)
    }

    /// A publishing connection for [`Broker::publish_all`]: an idle one,
    /// or a new one.
    pub(crate) async fn take_bulk(&self) -> Result<Bulk, crate::bulk::Lost> {
        loop {
            let idle = self.inner.bulk.lock().ok().and_then(|mut idle| idle.pop());
            match idle {
                Some(bulk) if bulk.idle_since.elapsed() < crate::bulk::IDLE_LIMIT => return Ok(bulk),
                // Not closed in time by `close_idle_bulk` (a busy runtime): closed now, off this path.
                Some(stale) => drop(tokio::spawn(stale.close())),
                None => break,
            }
        }
        let name = format!("{} (bulk publishing)", connection_name(self.inner.service));
        Bulk::connect(self.inner.url.expose_secret(), self.inner.options.tls_roots.as_deref(), &name).await
    }

    /// Gives back a publishing connection with nothing in flight: kept for
    /// the next call, or closed when the broker is closing.
    pub(crate) async fn give_back(&self, mut bulk: Bulk) {
        if self.inner.closing.is_cancelled() {
            bulk.close().await;
            return;
        }
        bulk.idle_since = Instant::now();
        let refused = match self.inner.bulk.lock() {
            Ok(mut idle) => {
                idle.push(bulk);
                None
            }
            Err(_) => Some(bulk),
        };
        if let Some(bulk) = refused {
            bulk.close().await;
        }
    }

    /// Closes the connection. Call it after the consumers have stopped, so
    /// their last acks and publishes go through.
    ///
    /// The channels of listeners, RPC clients and RPC servers' replies are
    /// closed first, each by its owner, and only then the connection: a
    /// stop asked for is an orderly AMQP close that logs nothing above INFO.
    pub async fn close(&self) {
        self.inner.closing.cancel();
        self.inner.helpers.close();
        if tokio::time::timeout(HELPERS_GRACE, self.inner.helpers.wait()).await.is_err() {
            tracing::debug!(
                left = self.inner.helpers.len(),
                "channels still closing after {HELPERS_GRACE:?}; closing the connection under them"
            );
        }
        self.inner.stop.cancel();
        self.inner.stopped.cancelled().await;
    }

    /// Cancelled once [`Broker::close`] has begun: whatever holds a channel
    /// closes it ([`close_channel`]) and stops. A channel failing after
    /// this is part of the stop, not news for the logs.
    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.inner.closing
    }

    /// Runs `task`, a holder of a channel that ends on [`Self::closing`];
    /// [`Broker::close`] waits for it before closing the connection.
    pub(crate) fn spawn_helper<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.helpers.spawn(task);
    }

    /// Keeps `channel` until the returned guard is dropped, `link` breaks or
    /// the broker closes, then closes it with [`close_channel`] (and
    /// [`Broker::close`] waits for that). For a channel with no task of
    /// its own, such as an RPC server's reply channel, which would
    /// otherwise be closed by being dropped.
    pub(crate) fn hold_channel(&self, link: &Arc<Link>, channel: Channel, reason: &'static str) -> DropGuard {
        let done = CancellationToken::new();
        let (closing, released, link) = (self.inner.closing.clone(), done.clone(), link.clone());
        self.spawn_helper(async move {
            tokio::select! {
                _ = released.cancelled() => {}
                _ = closing.cancelled() => {}
                _ = link.broken.cancelled() => {}
            }
            close_channel(&channel, reason).await;
        });
        done.drop_guard()
    }
}

/// Closes `channel` and waits for RabbitMQ's close-ok (at most 2 s); what
/// goes wrong is logged at DEBUG only, since the channel is done with
/// either way.
///
/// Every channel fa-amqp opens is closed this way before its last handle
/// is dropped. lapin closes a channel dropped open in the background, and
/// when the connection closes meanwhile it takes that close's failure for
/// the whole connection's: it logs `ERROR Connection error ... invalid
/// channel state: Closing (channel.close)` (or `invalid connection state:
/// Closed`) and abandons the connection's orderly close. That was the
/// token-broker's ERROR at each Ctrl-C. A close of ours fails to us
/// instead, quietly.
pub(crate) async fn close_channel(channel: &Channel, reason: &str) {
    if !channel.status().connected() {
        return;
    }
    match tokio::time::timeout(CHANNEL_CLOSE_TIMEOUT, channel.close(200, reason.into())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::debug!(error = %e, channel = channel.id(), "closing a channel failed; it is gone anyway")
        }
        Err(_) => tracing::debug!(channel = channel.id(), "no close-ok within {CHANNEL_CLOSE_TIMEOUT:?}"),
    }
}

/// Creates the failed outcomes of `fa_amqp_published_total` for one
/// exchange and routing key at 0 (once created, this is a lookup): a
/// counter that appears at 1 on its first event is invisible to
/// `increase()` and `rate()`, so a first nack, unroutable or failed publish
/// would never alert.
pub(crate) fn zero_failed_publishes(service: &'static str, exchange: &str, routing_key: &str) {
    for outcome in ["nacked", "unroutable", "failed"] {
        metrics::counter!("fa_amqp_published_total", "service" => service, "exchange" => exchange.to_owned(),
            "routing_key" => routing_key.to_owned(), "outcome" => outcome)
        .increment(0);
    }
}

/// Closes [`Broker::publish_all`]'s connections once idle for
/// [`crate::bulk::IDLE_LIMIT`] (they send no heartbeats), and all of them
/// when the broker closes.
async fn close_idle_bulk(broker: Broker) {
    loop {
        let closing = tokio::select! {
            _ = broker.inner.closing.cancelled() => true,
            _ = tokio::time::sleep(crate::bulk::IDLE_LIMIT / 2) => false,
        };
        let stale: Vec<Bulk> = match broker.inner.bulk.lock() {
            Ok(mut idle) if closing => idle.drain(..).collect(),
            Ok(mut idle) => {
                let stale =
                    idle.iter().take_while(|bulk| bulk.idle_since.elapsed() >= crate::bulk::IDLE_LIMIT / 2).count();
                idle.drain(..stale).collect()
            }
            Err(_) => Vec::new(),
        };
        for bulk in stale {
            bulk.close().await;
        }
        if closing {
            return;
        }
    }
}

/// Keeps a link alive until the broker is closed.
async fn supervise(inner: Arc<Inner>) {
    let mut backoff = inner.options.min_backoff;
    let mut ever_connected = false;
    while !inner.stop.is_cancelled() {
        let attempt = tokio::select! {
            r = connect(&inner) => r,
            _ = inner.stop.cancelled() => break,
        };
        match attempt {
            Ok(link) => {
                if ever_connected {
                    metrics::counter!("fa_amqp_reconnects_total", "service" => inner.service).increment(1);
                    tracing::info!(generation = link.generation, "reconnected to RabbitMQ; topology declared again");
                } else {
                    // At 0 from the start, so `increase()` sees the first reconnect.
                    metrics::counter!("fa_amqp_reconnects_total", "service" => inner.service).increment(0);
                    tracing::info!("connected to RabbitMQ; topology declared");
                }
                ever_connected = true;
                backoff = inner.options.min_backoff;
                if let Ok(mut e) = inner.last_error.lock() {
                    *e = None;
                }
                metrics::gauge!("fa_amqp_connection_up", "service" => inner.service).set(1.0);
                inner.link.send_replace(Some(link.clone()));
                let reason = watch_link(&inner, &link).await;
                inner.link.send_replace(None);
                metrics::gauge!("fa_amqp_connection_up", "service" => inner.service).set(0.0);
                link.broken.cancel();
                if let Some(reason) = reason {
                    tracing::warn!(reason = %reason, "lost the RabbitMQ connection; reconnecting");
                    if let Ok(mut e) = inner.last_error.lock() {
                        *e = Some(reason);
                    }
                }
                // Close what is left of it; ignore errors, it is gone anyway.
                let _ = tokio::time::timeout(Duration::from_secs(2), link.connection.close(200, "bye".into())).await;
            }
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(error = %message, retry_in_ms = backoff.as_millis() as u64, "cannot connect to RabbitMQ (FA_SF_AMQP_URL)");
                if let Ok(mut last) = inner.last_error.lock() {
                    *last = Some(message);
                }
                tokio::select! {
                    _ = tokio::time::sleep(jitter(backoff)) => {}
                    _ = inner.stop.cancelled() => break,
                }
                backoff = (backoff * 2).min(inner.options.max_backoff);
            }
        }
    }
    inner.link.send_replace(None);
    metrics::gauge!("fa_amqp_connection_up", "service" => inner.service).set(0.0);
    inner.stopped.cancel();
}

/// What RabbitMQ shows of this process's connections: `SERVICE@POD`.
fn connection_name(service: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    format!("{service}@{host}")
}

async fn connect(inner: &Inner) -> anyhow::Result<Arc<Link>> {
    let properties = ConnectionProperties::default().with_connection_name(connection_name(inner.service).into());
    let tls = lapin::tcp::OwnedTLSConfig { identity: None, cert_chain: inner.options.tls_roots.clone() };
    let connecting =
        Connection::connect_with_config(inner.url.expose_secret(), properties, tls, lapin::runtime::default_runtime()?);
    let connection = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 10s"))??;
    let declare = connection.create_channel().await?;
    let declared = inner.topology.declare(&declare).await;
    close_channel(&declare, "declared").await;
    declared?;
    let mut publishers = Vec::new();
    for _ in 0..inner.options.publisher_channels.max(1) {
        let publisher = connection.create_channel().await?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;
        publishers.push(publisher);
    }
    let generation = inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(Arc::new(Link {
        connection,
        publishers,
        next_publisher: std::sync::atomic::AtomicUsize::new(0),
        broken: CancellationToken::new(),
        generation,
    }))
}

/// Returns when the link is lost (with the reason) or the broker is closed
/// (`None`).
async fn watch_link(inner: &Inner, link: &Link) -> Option<String> {
    let mut events = link.connection.events_listener();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = inner.stop.cancelled() => return None,
            _ = link.broken.cancelled() => return Some("a channel failed".to_owned()),
            event = events.next() => match event {
                // lapin reports a failed channel (a listener's exchange not
                // declared yet, a refused right) as an error of the
                // connection; the connection is lost only if it says so
                // (the tick below), and the channel's owner tries again.
                Some(lapin::Event::Error(e)) if link.connection.status().connected() => {
                    tracing::debug!(error = %e, "a channel failed; the connection stays");
                }
                Some(lapin::Event::Error(e)) => return Some(e.to_string()),
                Some(_) => {}
                None => return Some("the connection ended".to_owned()),
            },
            _ = tick.tick() => {
                if !link.connection.status().connected() {
                    return Some("the connection is closed".to_owned());
                }
                if link.publishers.iter().any(|p| !p.status().connected()) {
                    return Some("the publishing channel is closed".to_owned());
                }
            }
        }
    }
}

/// The user an AMQP URL logs in as, as lapin reads it.
fn connection_user(url: &str) -> Option<String> {
    url.parse::<lapin::uri::AMQPUri>().ok().map(|uri| uri.authority.userinfo.username)
}

fn jitter(d: Duration) -> Duration {
    // Replicas that lost the broker together should not return in lockstep.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    d + d.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::connection_user;

    #[test]
    fn the_user_is_the_one_the_url_logs_in_as() {
        let cases = [
            ("amqp://importer:secret@rabbit:5672/%2f", Some("importer")),
            ("amqps://activity-writer:p%40ss@rabbit.example.internal:5671/fa", Some("activity-writer")),
            ("amqp://fa%2Dsf%20user:x@127.0.0.1/%2f", Some("fa-sf user")),
            ("amqp://127.0.0.1:5672/%2f", Some("guest")),
            ("not a url", None),
        ];
        for (url, user) in cases {
            assert_eq!(connection_user(url).as_deref(), user, "{url}");
        }
    }
}
