//! The batch consumer against the real RabbitMQ, each test in a vhost of its
//! own: deliveries grouped by key without a timer, one batch of a key at a
//! time, and every delivery settled by its own outcome.
//!
//! To put chosen messages into one batch without sleeping, a test holds a
//! key's first batch (`hold-*`, released through a oneshot), publishes the
//! messages meant to go together, then a marker of another key: once the
//! marker is handled, everything published before it has reached the
//! consumer (one publishing channel, one queue, deliveries in order), so
//! the held key's messages wait together for its next batch.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use fa_amqp::{
    BatchHandler, BatchOptions, Broker, BrokerOptions, ConsumerHandle, ConsumerOptions, ExchangeKind, Failure,
    Incoming, Outcome, Outgoing, Topology,
};
use fa_messages::topology::SYNC_EXCHANGE;
use fa_testkit::{TestVhost, eventually};
use support::TestCode;

mod support;
use lapin::{Connection, ConnectionProperties, options::BasicGetOptions, types::AMQPValue};
use secrecy::SecretString;
use tokio::sync::oneshot;

const WORK: &str = "test-svc.work";
const WAIT: Duration = Duration::from_secs(30);
const SALESFORCE_CODE: &str = "FIELD_CUSTOM_VALIDATION_EXCEPTION";

fn start(vhost: &TestVhost) -> Broker {
    let topology =
        Topology::new().exchange(SYNC_EXCHANGE, ExchangeKind::Topic).queue(WORK, &[(SYNC_EXCHANGE, "work.#")]);
    let options = BrokerOptions {
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        ..BrokerOptions::default()
    };
    Broker::start(SecretString::from(vhost.url.clone()), "test-svc", topology, options)
}

async fn connected(broker: &Broker) {
    eventually(WAIT, "the broker to connect", || async { broker.readiness().ok() }).await;
}

async fn publish(broker: &Broker, tenant: &str, id: &str) {
    let out = Outgoing {
        exchange: SYNC_EXCHANGE.to_owned(),
        routing_key: "work.item".to_owned(),
        body: serde_json::to_vec(&serde_json::json!({ "id": id })).expect("json"),
        message_id: id.to_owned(),
        kind: Some("test.work.v1".to_owned()),
        tenant_id: Some(tenant.to_owned()),
        headers: Default::default(),
    };
    broker.publish_outgoing(out).await.expect("confirmed");
}

/// One message as a batch handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    tenant: String,
    id: String,
    attempt: u32,
}

/// Groups by tenant and records every batch as it is handed over. Answers
/// each message by its `id`: `reject*` fail permanently (naming a
/// Salesforce code), `retry*` and `panic*` fail once (the latter by
/// panicking, for the whole batch), others succeed. A batch with `hold*`
/// waits for `release` before answering.
#[derive(Default)]
struct Recorder {
    batches: Mutex<Vec<Vec<Seen>>>,
    hold: Mutex<Option<oneshot::Receiver<()>>>,
    dead_lettered: Mutex<Vec<(String, Failure)>>,
}

impl Recorder {
    /// A recorder whose `hold*` batch waits until the returned sender fires.
    fn holding() -> (Arc<Self>, oneshot::Sender<()>) {
        let (release, hold) = oneshot::channel();
        (Arc::new(Self { hold: Mutex::new(Some(hold)), ..Self::default() }), release)
    }

    fn batches(&self) -> Vec<Vec<Seen>> {
        self.batches.lock().expect("lock").clone()
    }

    fn ids(batch: &[Seen]) -> Vec<&str> {
        batch.iter().map(|s| s.id.as_str()).collect()
    }

    /// Every attempt at `id` handed over so far.
    fn attempts(&self, id: &str) -> Vec<u32> {
        self.batches().iter().flatten().filter(|s| s.id == id).map(|s| s.attempt).collect()
    }

    async fn handed_over(&self, what: &str, id: &str, attempt: u32) {
        eventually(WAIT, what, || async { self.attempts(id).contains(&attempt).then_some(()) }).await;
    }
}

impl BatchHandler for Recorder {
    fn key(&self, message: &Incoming) -> String {
        message.tenant_id().unwrap_or_default()
    }

    async fn handle(&self, batch: &[Incoming]) -> Vec<Outcome> {
        let seen: Vec<Seen> = batch
            .iter()
            .map(|m| {
                let body: serde_json::Value = m.json().expect("json body");
                Seen {
                    tenant: m.tenant_id().unwrap_or_default(),
                    id: body["id"].as_str().unwrap_or_default().to_owned(),
                    attempt: m.attempt,
                }
            })
            .collect();
        self.batches.lock().expect("lock").push(seen.clone());
        if seen.iter().any(|s| s.id.starts_with("hold")) {
            let hold = self.hold.lock().expect("lock").take();
            if let Some(hold) = hold {
                let _ = hold.await;
            }
        }
        if seen.iter().any(|s| s.id.starts_with("panic") && s.attempt == 1) {
            panic!("test: the batch handler panics");
        }
        seen.iter()
            .map(|s| {
                if s.id.starts_with("reject") {
                    Outcome::Reject(
                        Failure::new(TestCode::InvalidEvent, format!("{} can never succeed", s.id))
                            .with_salesforce_error_code(SALESFORCE_CODE),
                    )
                } else if s.id.starts_with("retry") && s.attempt == 1 {
                    Outcome::Retry { failure: Failure::new(TestCode::SalesforceUnavailable, "503"), after: None }
                } else {
                    Outcome::Done
                }
            })
            .collect()
    }

    async fn dead_lettered(&self, message: &Incoming, failure: &Failure) -> anyhow::Result<()> {
        let id = message.message_id().unwrap_or_default().to_owned();
        self.dead_lettered.lock().expect("lock").push((id, failure.clone()));
        Ok(())
    }
}

fn consume(broker: &Broker, prefetch: u16, batching: BatchOptions, handler: Arc<Recorder>) -> ConsumerHandle {
    broker.consume_batches(ConsumerOptions { prefetch, ..ConsumerOptions::new(WORK) }, batching, handler)
}

/// Holds `tenant`'s first batch (a `hold` message), publishes `held` of
/// `tenant` behind it, and returns once they wait at the consumer.
async fn hold_then_publish(broker: &Broker, handler: &Recorder, tenant: &str, held: &[&str]) {
    publish(broker, tenant, "hold").await;
    handler.handed_over("the held batch to start", "hold", 1).await;
    for id in held {
        publish(broker, tenant, id).await;
    }
    publish(broker, "marker-tenant", "marker").await;
    handler.handed_over("the marker behind the held messages", "marker", 1).await;
}

/// A client that is not ours, to look into queues.
async fn raw(vhost: &TestVhost) -> lapin::Channel {
    let conn = Connection::connect(&vhost.url, ConnectionProperties::default()).await.expect("raw connection");
    let channel = conn.create_channel().await.expect("raw channel");
    // Keep the connection open for the channel's lifetime.
    std::mem::forget(conn);
    channel
}

async fn get(channel: &lapin::Channel, queue: &str) -> Option<lapin::message::BasicGetMessage> {
    channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.expect("basic.get")
}

fn header(properties: &lapin::BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn messages_of_two_keys_published_together_arrive_grouped_by_key_in_order_within_the_cap() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost);
    connected(&broker).await;
    // Published before anyone consumes, so they reach the consumer together.
    let mut published: Vec<(&str, String)> = Vec::new();
    for i in 0..12 {
        for tenant in ["acme-jp", "globex-jp"] {
            let id = format!("{tenant}-{i:02}");
            publish(&broker, tenant, &id).await;
            published.push((tenant, id));
        }
    }
    let handler = Arc::new(Recorder::default());
    let batching = BatchOptions { max_batch: 5, ..BatchOptions::default() };
    let consumer = consume(&broker, 50, batching, handler.clone());
    eventually(WAIT, "all 24 messages handed over", || async {
        (handler.batches().iter().map(Vec::len).sum::<usize>() == 24).then_some(())
    })
    .await;

    let batches = handler.batches();
    for batch in &batches {
        assert!(batch.iter().all(|s| s.tenant == batch[0].tenant), "a batch mixes keys: {batch:?}");
        assert!(batch.len() <= 5, "a batch larger than max_batch: {batch:?}");
    }
    for tenant in ["acme-jp", "globex-jp"] {
        let handed: Vec<&str> =
            batches.iter().filter(|b| b[0].tenant == tenant).flat_map(|b| Recorder::ids(b)).collect();
        let expected: Vec<&str> = published.iter().filter(|(t, _)| *t == tenant).map(|(_, id)| id.as_str()).collect();
        assert_eq!(handed, expected, "{tenant}'s messages in publish order");
    }
    assert!(batches.iter().any(|b| b.len() > 1), "messages that arrived together were grouped: {batches:?}");
    consumer.stop().await;
    broker.close().await;
}

#[tokio::test]
async fn no_batch_is_larger_than_the_prefetch() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost);
    connected(&broker).await;
    for i in 0..10 {
        publish(&broker, "acme-jp", &format!("m-{i}")).await;
    }
    let handler = Arc::new(Recorder::default());
    let consumer = consume(&broker, 3, BatchOptions::default(), handler.clone());
    eventually(WAIT, "all 10 messages handed over", || async {
        (handler.batches().iter().map(Vec::len).sum::<usize>() == 10).then_some(())
    })
    .await;
    let sizes: Vec<usize> = handler.batches().iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|s| *s <= 3), "batches within a prefetch of 3: {sizes:?}");
    consumer.stop().await;
    broker.close().await;
}

#[tokio::test]
async fn each_message_of_a_batch_is_acked_retried_or_dead_lettered_by_its_own_outcome() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost);
    let (handler, release) = Recorder::holding();
    let consumer = consume(&broker, 50, BatchOptions::default(), handler.clone());
    connected(&broker).await;
    hold_then_publish(&broker, &handler, "acme-jp", &["done-1", "reject-1", "retry-1"]).await;
    release.send(()).expect("the held batch waits");

    handler.handed_over("the retried message to come back", "retry-1", 2).await;
    let acme: Vec<Vec<Seen>> = handler.batches().into_iter().filter(|b| b[0].tenant == "acme-jp").collect();
    assert_eq!(Recorder::ids(&acme[1]), ["done-1", "reject-1", "retry-1"], "one batch: {acme:?}");

    let inspector = raw(&vhost).await;
    let dlq = format!("{WORK}.dlq");
    let dead = eventually(WAIT, "the rejected message on the dlq", || get(&inspector, &dlq)).await;
    assert_eq!(dead.delivery.properties.message_id().as_ref().map(|s| s.as_str()), Some("reject-1"));
    let error: serde_json::Value =
        serde_json::from_str(&header(&dead.delivery.properties, "x-fa-error").expect("x-fa-error")).expect("JSON");
    assert_eq!(
        error,
        serde_json::json!({
            "code": "invalid_event",
            "message": "reject-1 can never succeed",
            "salesforce_error_code": SALESFORCE_CODE,
        })
    );
    let dead_lettered = handler.dead_lettered.lock().expect("lock").clone();
    assert_eq!(dead_lettered.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["reject-1"]);
    assert_eq!(dead_lettered[0].1.salesforce_error_code.as_deref(), Some(SALESFORCE_CODE));

    assert_eq!(handler.attempts("retry-1"), [1, 2]);
    assert_eq!(handler.attempts("done-1"), [1], "the done one is not redelivered");
    assert_eq!(handler.attempts("reject-1"), [1], "the rejected one is not redelivered");
    // Stopping closes the channel: anything not acked would be back on the
    // queue now.
    consumer.stop().await;
    assert!(get(&inspector, WORK).await.is_none(), "nothing is left on {WORK}");
    assert!(get(&inspector, &dlq).await.is_none(), "only the rejected one was dead-lettered");
    broker.close().await;
}

#[tokio::test]
async fn a_lone_message_is_handled_although_no_other_follows() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost);
    let handler = Arc::new(Recorder::default());
    let consumer = consume(&broker, 50, BatchOptions::default(), handler.clone());
    connected(&broker).await;
    eventually(WAIT, "the consumer to subscribe", || async { consumer.readiness().ok() }).await;
    publish(&broker, "acme-jp", "alone").await;
    // No timer waits for company: well within a second, not at a deadline.
    eventually(Duration::from_secs(2), "the lone message handed over", || async {
        (!handler.attempts("alone").is_empty()).then_some(())
    })
    .await;
    assert_eq!(handler.batches(), [vec![Seen { tenant: "acme-jp".into(), id: "alone".into(), attempt: 1 }]]);
    consumer.stop().await;
    broker.close().await;
}

#[tokio::test]
async fn a_stuck_key_holds_up_no_other_key_and_its_waiting_messages_go_together_once_released() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost);
    let (handler, release) = Recorder::holding();
    let consumer = consume(&broker, 50, BatchOptions::default(), handler.clone());
    connected(&broker).await;
    publish(&broker, "stuck-jp", "hold").await;
    handler.handed_over("the stuck batch to start", "hold", 1).await;
    publish(&broker, "stuck-jp", "stuck-1").await;
    for i in 1..=5 {
        publish(&broker, "globex-jp", &format!("globex-{i}")).await;
    }
    publish(&broker, "stuck-jp", "stuck-2").await;
    publish(&broker, "globex-jp", "globex-6").await;

    for i in 1..=6 {
        handler.handed_over("the other key's messages while one is stuck", &format!("globex-{i}"), 1).await;
    }
    assert!(handler.attempts("stuck-1").is_empty(), "nothing of the stuck key goes while its batch is in flight");
    release.send(()).expect("the stuck batch waits");
    handler.handed_over("the stuck key's next batch", "stuck-1", 1).await;
    let stuck: Vec<Vec<Seen>> = handler.batches().into_iter().filter(|b| b[0].tenant == "stuck-jp").collect();
    assert_eq!(stuck.len(), 2, "{stuck:?}");
    assert_eq!(Recorder::ids(&stuck[1]), ["stuck-1", "stuck-2"], "what waited goes together, in order");
    consumer.stop().await;
    broker.close().await;
}

#[tokio::test]
async fn a_panicking_batch_handler_has_every_message_of_the_batch_retried() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost);
    let (handler, release) = Recorder::holding();
    let consumer = consume(&broker, 50, BatchOptions::default(), handler.clone());
    connected(&broker).await;
    hold_then_publish(&broker, &handler, "acme-jp", &["panic-1", "ok-1"]).await;
    release.send(()).expect("the held batch waits");
    handler.handed_over("the panicking message to come back", "panic-1", 2).await;
    handler.handed_over("its batch-mate to come back", "ok-1", 2).await;
    assert_eq!(handler.attempts("ok-1"), [1, 2]);
    consumer.stop().await;
    broker.close().await;
}

#[tokio::test]
async fn stopping_hands_the_batch_in_flight_and_the_waiting_deliveries_back_to_the_queue() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost);
    let (handler, _release) = Recorder::holding();
    let options =
        ConsumerOptions { prefetch: 50, drain_timeout: Duration::from_millis(300), ..ConsumerOptions::new(WORK) };
    let consumer = broker.consume_batches(options, BatchOptions::default(), handler.clone());
    connected(&broker).await;
    hold_then_publish(&broker, &handler, "acme-jp", &["waiting-1", "waiting-2"]).await;
    consumer.stop().await;

    let inspector = raw(&vhost).await;
    let mut back = Vec::new();
    while back.len() < 3 {
        let got = eventually(WAIT, "the unsettled deliveries back on the queue", || get(&inspector, WORK)).await;
        back.push(got.delivery.properties.message_id().as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default());
    }
    back.sort();
    assert_eq!(back, ["hold", "waiting-1", "waiting-2"]);
    assert!(handler.attempts("waiting-1").is_empty(), "a waiting delivery is never handed over after stop");
    broker.close().await;
}
