//! News every process must hear, not one consumer of many: a fanout
//! exchange, and in each listening process a private queue bound to it.
//!
//! The token-broker uses it to say "this tenant's connection changed" to
//! its other replicas and to every service caching a token. A private queue
//! (server-named, exclusive, auto-deleted) lives only as long as its
//! connection, so news sent while a process was disconnected is lost to it:
//! [`Listener::resubscribed`] tells the listener after every new
//! subscription, and it must assume it missed something (drop its caches).
//! Nothing here is persisted, and what is sent must carry no secret.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt as _;
use lapin::{
    BasicProperties,
    options::{BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{FieldTable, ShortString},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{Broker, PublishError, broker::close_channel};

/// What a listening process does with the news.
pub trait Listener: Send + Sync + 'static {
    /// One message as sent.
    fn heard(&self, body: &[u8]);
    /// A new subscription is in place (the first, or after a lost
    /// connection): anything sent before it may have been missed.
    fn resubscribed(&self);
}

/// Stops its listener when dropped.
pub struct Listening {
    stop: CancellationToken,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Broker {
    /// Listens to the fanout exchange `exchange` with a private queue,
    /// resubscribing on every new connection. The exchange is its sender's
    /// to declare (a listener needs no right to configure it); until it
    /// exists the listener keeps trying, once a second.
    pub fn listen(&self, exchange: &'static str, listener: impl Listener) -> Listening {
        let stop = CancellationToken::new();
        let span = tracing::info_span!("amqp.listen", exchange);
        self.spawn_helper(listen(self.clone(), exchange, Arc::new(listener), stop.clone()).instrument(span));
        Listening { stop }
    }

    /// Sends `body` to every process listening on `exchange`, waiting for
    /// the broker's confirm. Nobody listening is not an error: nobody then
    /// holds anything the news is about.
    pub async fn broadcast(&self, exchange: &str, body: &[u8]) -> Result<(), PublishError> {
        let properties = BasicProperties::default()
            .with_content_type(ShortString::from("application/json"))
            .with_delivery_mode(1)
            .with_app_id(ShortString::from(self.service()));
        match self.publish_with(exchange, "", body, properties).await {
            Err(PublishError::Unroutable { .. }) => Ok(()),
            other => other,
        }
    }
}

/// Listens until `stop` (the [`Listening`] dropped) or the broker closes,
/// subscribing again on every new connection. Its channel is closed by
/// [`close_channel`] whenever it is done with, never by being dropped.
async fn listen(broker: Broker, exchange: &'static str, listener: Arc<dyn Listener>, stop: CancellationToken) {
    let closing = broker.closing().clone();
    loop {
        let link = tokio::select! {
            link = broker.link() => match link { Some(l) => l, None => return },
            _ = stop.cancelled() => return,
            _ = closing.cancelled() => return,
        };
        let subscribed = async {
            let channel = link.connection.create_channel().await?;
            match subscribe(&channel, exchange).await {
                Ok(consumer) => Ok((channel, consumer)),
                Err(e) => {
                    close_channel(&channel, "cannot listen").await;
                    Err(e)
                }
            }
        }
        .await;
        let (channel, mut consumer) = match subscribed {
            Ok(pair) => pair,
            Err(e) => {
                if closing.is_cancelled() {
                    return;
                }
                // A missing exchange or a refused right closes only this
                // channel; a broken connection is the supervisor's to see.
                tracing::warn!(error = %e, "cannot listen yet; trying again in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => return,
                    _ = closing.cancelled() => return,
                }
                continue;
            }
        };
        listener.resubscribed();
        tracing::debug!("listening");
        let done = loop {
            tokio::select! {
                _ = stop.cancelled() => break true,
                _ = closing.cancelled() => break true,
                _ = link.broken.cancelled() => break false,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => listener.heard(&delivery.data),
                    Some(Err(e)) => {
                        if closing.is_cancelled() {
                            tracing::debug!(error = %e, "the listening channel closed with the broker");
                            break true;
                        }
                        tracing::warn!(error = %e, "the listening channel failed; listening again");
                        break false;
                    }
                    None => break closing.is_cancelled(),
                },
            }
        };
        close_channel(&channel, "done listening").await;
        // Dropped only now, after its channel: see `close_channel`.
        drop(consumer);
        if done {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.cancelled() => return,
            _ = closing.cancelled() => return,
        }
    }
}

/// Declares `exchange` exists, binds a private queue to it and consumes
/// that queue on `channel`.
async fn subscribe(channel: &lapin::Channel, exchange: &'static str) -> lapin::Result<lapin::Consumer> {
    let exists = ExchangeDeclareOptions { passive: true, ..Default::default() };
    channel.exchange_declare(exchange.into(), lapin::ExchangeKind::Fanout, exists, FieldTable::default()).await?;
    let private = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
    let queue = channel.queue_declare("".into(), private, FieldTable::default()).await?;
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let no_ack = BasicConsumeOptions { no_ack: true, exclusive: true, ..Default::default() };
    channel.basic_consume(queue.name().clone(), "".into(), no_ack, FieldTable::default()).await
}
