//! Settling one delivery by its [`Outcome`]: ack, dead-letter, or park for a
//! retry, and only then ack.
//!
//! The one path every consumer takes, whether its handler saw the delivery
//! alone ([`Handler`](crate::Handler)) or in a batch
//! ([`BatchHandler`]): a delivery's fate depends on its own outcome, never
//! on its batch's.

use std::{
    collections::BTreeMap,
    time::{Duration, UNIX_EPOCH},
};

use lapin::{
    Acker, BasicProperties,
    options::{BasicAckOptions, BasicNackOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

use crate::{
    batch::BatchHandler,
    broker::Broker,
    consume::{Incoming, Outcome},
    failure::{Code, Failure},
    headers,
    retry::{self, Plan, RetryPolicy},
    topology::{dlq_name, retry_queue_name},
};

/// Makes `outcome` durable for `message`, then acks it; when that cannot be
/// done (RabbitMQ refused the copy, the follow-up failed) the delivery is
/// handed back to its queue instead. Counted in `fa_amqp_deliveries_total`.
pub(crate) async fn settle<H: BatchHandler>(
    broker: &Broker,
    handler: &H,
    retry: &RetryPolicy,
    message: &Incoming,
    acker: &Acker,
    outcome: Outcome,
) {
    let settled = match outcome {
        Outcome::Done => Settle::Ack("acked"),
        Outcome::Reject(failure) => dead_letter(broker, handler, message, failure).await,
        Outcome::Retry { failure, after } => match retry.plan(message.attempt, message.age(), after) {
            Plan::Delay(tier) => park(broker, message, tier, &failure).await,
            Plan::GiveUp => dead_letter(broker, handler, message, exhausted(message, failure)).await,
        },
        // Waiting is not failing: no limit of the policy applies.
        Outcome::Wait { failure, after } => park(broker, message, retry::tier_for(after), &failure).await,
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

enum Settle {
    Ack(&'static str),
    Requeue,
}

/// The failure a message is dead-lettered with once its retries are spent.
/// It keeps the last failure's Salesforce code, so whoever reads the
/// dead-letter queue still sees which code Salesforce answered.
fn exhausted(message: &Incoming, last: Failure) -> Failure {
    let failure = Failure::new(
        Code::RetriesExhausted,
        format!(
            "gave up after {} attempts over {}s; last failure {}: {}",
            message.attempt,
            message.age().as_secs(),
            last.code(),
            last.message
        ),
    );
    match last.salesforce_error_code {
        Some(code) => failure.with_salesforce_error_code(code),
        None => failure,
    }
}

async fn dead_letter<H: BatchHandler>(broker: &Broker, handler: &H, message: &Incoming, failure: Failure) -> Settle {
    let error = serde_json::to_string(&failure).unwrap_or_default();
    // The message may quote customer data (Salesforce's words about a
    // value): it goes to x-fa-error, and to the log only at debug.
    tracing::warn!(
        code = failure.code(),
        salesforce_error_code = failure.salesforce_error_code.as_deref(),
        "dead-lettering the message"
    );
    tracing::debug!(code = failure.code(), reason = %failure.message, "why it was dead-lettered");
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
    tracing::info!(code = failure.code(), retry_in_s = tier.as_secs(), "passing failure; retrying later");
    tracing::debug!(code = failure.code(), reason = %failure.message, "why it is retried");
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn message(attempt: u32) -> Incoming {
        Incoming {
            queue: "q".to_owned(),
            body: Vec::new(),
            properties: BasicProperties::default(),
            attempt,
            first_attempt_at: SystemTime::now(),
            redelivered: false,
        }
    }

    #[test]
    fn giving_up_keeps_the_last_salesforce_error_code() {
        fn check(last: Failure, expected_code: Option<&str>) {
            let failure = exhausted(&message(3), last);
            assert_eq!(failure.code_as::<Code>(), Some(Code::RetriesExhausted));
            assert!(failure.message.starts_with("gave up after 3 attempts"), "{}", failure.message);
            assert_eq!(failure.salesforce_error_code.as_deref(), expected_code);
        }
        check(Failure::new(Code::HandlerPanicked, "503"), None);
        check(
            Failure::new(Code::HandlerPanicked, "UNABLE_TO_LOCK_ROW").with_salesforce_error_code("UNABLE_TO_LOCK_ROW"),
            Some("UNABLE_TO_LOCK_ROW"),
        );
    }
}
