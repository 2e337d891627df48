//! The shared AMQP layer against the real RabbitMQ, each test in a vhost of
//! its own.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use fa_amqp::{
    Broker, BrokerOptions, ConsumerOptions, ExchangeKind, Failure, Handler, Incoming, Outcome, Outgoing, Topology,
    retry::RetryPolicy,
};
use fa_messages::{ImportCompletedV1, Message as _, topology::SYNC_EXCHANGE};
use fa_testkit::{TestVhost, eventually};
use support::TestCode;

mod support;
use lapin::{
    Connection, ConnectionProperties,
    options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use secrecy::SecretString;

const WORK: &str = "test-svc.work";
const WAIT: Duration = Duration::from_secs(30);

fn options() -> BrokerOptions {
    BrokerOptions {
        publish_timeout: Duration::from_secs(30),
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        ..BrokerOptions::default()
    }
}

fn work_topology() -> Topology {
    Topology::new().exchange(SYNC_EXCHANGE, ExchangeKind::Topic).queue(WORK, &[(SYNC_EXCHANGE, "work.#")])
}

fn start(vhost: &TestVhost, topology: Topology) -> Broker {
    Broker::start(SecretString::from(vhost.url.clone()), "test-svc", topology, options())
}

async fn connected(broker: &Broker) {
    eventually(WAIT, "the broker to connect", || async { broker.readiness().ok() }).await;
}

fn work_message(id: &str) -> Outgoing {
    Outgoing {
        exchange: SYNC_EXCHANGE.to_owned(),
        routing_key: "work.item".to_owned(),
        body: serde_json::to_vec(&serde_json::json!({ "id": id })).expect("json"),
        message_id: id.to_owned(),
        kind: Some("test.work.v1".to_owned()),
        tenant_id: Some("acme-jp".to_owned()),
        headers: Default::default(),
    }
}

/// A client that is not ours, as Front Agent's own consumer would be.
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

async fn wait_for_message(channel: &lapin::Channel, queue: &str) -> lapin::message::BasicGetMessage {
    eventually(WAIT, &format!("a message on {queue}"), || {
        let channel = channel.clone();
        let queue = queue.to_owned();
        async move { get(&channel, &queue).await }
    })
    .await
}

fn header(properties: &lapin::BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn a_published_message_is_confirmed_and_arrives_with_the_contract_properties() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, Topology::new().exchange(SYNC_EXCHANGE, ExchangeKind::Topic));
    connected(&broker).await;
    let front_agent = raw(&vhost).await;
    front_agent
        .queue_declare("frontagent.sync".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .expect("declare");
    front_agent
        .queue_bind(
            "frontagent.sync".into(),
            SYNC_EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");

    let text = include_str!("../../messages/examples/import.completed.v1.json");
    let message: ImportCompletedV1 = serde_json::from_str(text).expect("example parses");
    broker.publish(&message).await.expect("confirmed");

    let got = wait_for_message(&front_agent, "frontagent.sync").await;
    let p = &got.delivery.properties;
    assert_eq!(got.delivery.routing_key.as_str(), "import.completed");
    assert_eq!(p.content_type().as_ref().map(|s| s.as_str()), Some("application/json"));
    assert_eq!(*p.delivery_mode(), Some(2));
    assert_eq!(p.message_id().as_ref().map(|s| s.as_str()), Some(message.message_id().as_str()));
    assert_eq!(p.kind().as_ref().map(|s| s.as_str()), Some("import.completed.v1"));
    assert_eq!(p.app_id().as_ref().map(|s| s.as_str()), Some("test-svc"));
    assert_eq!(header(p, "tenant_id").as_deref(), Some("acme-jp"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let sent = p.timestamp().expect("timestamp");
    assert!(now.abs_diff(sent) < 60, "timestamp {sent} is not now ({now})");
    let body: serde_json::Value = serde_json::from_slice(&got.delivery.data).expect("json body");
    fa_messages::validation::validate("import.completed.v1", &body).expect("valid against the schema");
    assert_eq!(serde_json::from_value::<ImportCompletedV1>(body).expect("typed"), message);
    broker.close().await;
}

#[tokio::test]
async fn a_message_no_queue_is_bound_for_is_reported_not_lost_silently() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, Topology::new().exchange(SYNC_EXCHANGE, ExchangeKind::Topic));
    connected(&broker).await;
    let err = broker.publish_outgoing(work_message("nobody-listens")).await.expect_err("unroutable");
    assert!(matches!(err, fa_amqp::PublishError::Unroutable { .. }), "{err}");
    broker.close().await;
}

#[tokio::test]
async fn the_consumed_queue_is_a_quorum_queue_dead_lettering_to_its_dlq() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, work_topology());
    connected(&broker).await;
    let queues = vhost.list_queues().expect("list");
    let line = |name: &str| queues.lines().find(|l| l.split('\t').next() == Some(name)).map(str::to_owned);
    let work = line(WORK).unwrap_or_else(|| panic!("{WORK} missing in:\n{queues}"));
    assert!(work.contains("quorum") && work.contains("true"), "{work}");
    assert!(work.contains("salesforce.dlx") && work.contains(WORK), "{work}");
    let dlq = line(&format!("{WORK}.dlq")).unwrap_or_else(|| panic!("dlq missing in:\n{queues}"));
    assert!(dlq.contains("quorum"), "{dlq}");
    for tier in ["1s", "5s", "30s", "2m", "10m", "30m"] {
        assert!(line(&format!("{WORK}.retry.{tier}")).is_some(), "retry queue {tier} missing in:\n{queues}");
    }
    broker.close().await;
}

/// Answers each message by its `id`: `reject*` fail permanently, `retry*`
/// fail once for a passing reason, others succeed.
#[derive(Default)]
struct Scripted {
    calls: Mutex<Vec<(String, u32, Instant)>>,
    done: Mutex<Vec<(String, u32, Instant)>>,
    dead_lettered: Mutex<Vec<(String, Failure)>>,
    always_retry: bool,
}

impl Handler for Scripted {
    async fn handle(&self, message: &Incoming) -> Outcome {
        let body: serde_json::Value = match message.json() {
            Ok(v) => v,
            Err(f) => return Outcome::Reject(f),
        };
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        self.calls.lock().expect("lock").push((id.clone(), message.attempt, Instant::now()));
        if id.starts_with("reject") {
            return Outcome::Reject(Failure::new(TestCode::InvalidEvent, format!("{id} can never succeed")));
        }
        if id.starts_with("retry") && (self.always_retry || message.attempt == 1) {
            return Outcome::Retry {
                failure: Failure::new(TestCode::SalesforceUnavailable, "503 SERVER_UNAVAILABLE"),
                after: None,
            };
        }
        self.done.lock().expect("lock").push((id, message.attempt, Instant::now()));
        Outcome::Done
    }

    async fn dead_lettered(&self, message: &Incoming, failure: &Failure) -> anyhow::Result<()> {
        let body: serde_json::Value = message.json().map_err(|f| anyhow::anyhow!(f.message))?;
        self.dead_lettered
            .lock()
            .expect("lock")
            .push((body["id"].as_str().unwrap_or_default().to_owned(), failure.clone()));
        Ok(())
    }
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_with_its_reason_on_the_first_delivery() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, work_topology());
    let handler = Arc::new(Scripted::default());
    let consumer = broker.consume(ConsumerOptions::new(WORK), handler.clone());
    connected(&broker).await;

    broker.publish_outgoing(work_message("reject-1")).await.expect("confirmed");
    let inspector = raw(&vhost).await;
    let dead = wait_for_message(&inspector, &format!("{WORK}.dlq")).await;

    let error: serde_json::Value =
        serde_json::from_str(&header(&dead.delivery.properties, "x-fa-error").expect("x-fa-error header"))
            .expect("JSON");
    assert_eq!(error["code"], "invalid_event");
    assert_eq!(error["message"], "reject-1 can never succeed");
    // The original body and properties travel with it.
    assert_eq!(dead.delivery.data, work_message("reject-1").body);
    assert_eq!(dead.delivery.properties.message_id().as_ref().map(|s| s.as_str()), Some("reject-1"));
    assert_eq!(header(&dead.delivery.properties, "tenant_id").as_deref(), Some("acme-jp"));
    // First delivery: handled once, never requeued, the follow-up ran once.
    assert_eq!(handler.calls.lock().expect("lock").len(), 1);
    let dead_lettered = handler.dead_lettered.lock().expect("lock").clone();
    assert_eq!(
        dead_lettered,
        vec![("reject-1".to_owned(), Failure::new(TestCode::InvalidEvent, "reject-1 can never succeed"))]
    );
    consumer.stop().await;
    assert!(get(&inspector, WORK).await.is_none(), "the original must be gone from {WORK}");
    broker.close().await;
}

#[tokio::test]
async fn a_malformed_body_is_dead_lettered_not_retried() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, work_topology());
    let handler = Arc::new(Scripted::default());
    let consumer = broker.consume(ConsumerOptions::new(WORK), handler.clone());
    connected(&broker).await;
    let mut garbage = work_message("garbage");
    garbage.body = b"{not json".to_vec();
    broker.publish_outgoing(garbage).await.expect("confirmed");
    let inspector = raw(&vhost).await;
    let dead = wait_for_message(&inspector, &format!("{WORK}.dlq")).await;
    let error = header(&dead.delivery.properties, "x-fa-error").expect("x-fa-error");
    assert!(error.contains("invalid_message"), "{error}");
    assert_eq!(dead.delivery.data, b"{not json");
    consumer.stop().await;
    broker.close().await;
}

#[tokio::test]
async fn a_passing_failure_comes_back_after_a_delay_while_other_messages_flow() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, work_topology());
    let handler = Arc::new(Scripted::default());
    // One delivery at a time: if the failed message held the queue, nothing
    // else could pass it.
    let consumer = broker.consume(ConsumerOptions { prefetch: 1, ..ConsumerOptions::new(WORK) }, handler.clone());
    connected(&broker).await;

    broker.publish_outgoing(work_message("retry-1")).await.expect("confirmed");
    for i in 0..20 {
        broker.publish_outgoing(work_message(&format!("ok-{i}"))).await.expect("confirmed");
    }
    eventually(WAIT, "all 21 messages done", || async {
        (handler.done.lock().expect("lock").len() == 21).then_some(())
    })
    .await;

    let calls = handler.calls.lock().expect("lock").clone();
    let done = handler.done.lock().expect("lock").clone();
    let first_try = calls.iter().find(|(id, a, _)| id == "retry-1" && *a == 1).expect("first attempt");
    let (_, attempt, retried_at) = done.iter().find(|(id, _, _)| id == "retry-1").expect("retried and done");
    assert_eq!(*attempt, 2, "it succeeds on its second attempt");
    assert!(retried_at.duration_since(first_try.2) >= Duration::from_millis(900), "it waited before coming back");
    let last_other = done.iter().filter(|(id, _, _)| id.starts_with("ok-")).map(|(_, _, t)| *t).max().expect("others");
    assert!(last_other < *retried_at, "the other 20 passed while it waited");
    consumer.stop().await;
    broker.close().await;
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_dead_lettered_as_retries_exhausted() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, work_topology());
    let handler = Arc::new(Scripted { always_retry: true, ..Default::default() });
    let retry = RetryPolicy { give_up_after: Duration::from_secs(3600), max_attempts: Some(2) };
    let consumer = broker.consume(ConsumerOptions { retry, ..ConsumerOptions::new(WORK) }, handler.clone());
    connected(&broker).await;
    broker.publish_outgoing(work_message("retry-forever")).await.expect("confirmed");
    let inspector = raw(&vhost).await;
    let dead = wait_for_message(&inspector, &format!("{WORK}.dlq")).await;
    let error: serde_json::Value =
        serde_json::from_str(&header(&dead.delivery.properties, "x-fa-error").expect("x-fa-error")).expect("JSON");
    assert_eq!(error["code"], "retries_exhausted");
    assert!(error["message"].as_str().unwrap_or_default().contains("503 SERVER_UNAVAILABLE"), "{error}");
    assert_eq!(handler.calls.lock().expect("lock").len(), 2);
    consumer.stop().await;
    broker.close().await;
}

#[tokio::test]
async fn closing_every_connection_loses_no_message_and_needs_no_restart() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, work_topology());
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    struct Collect(Arc<Mutex<HashSet<String>>>);
    impl Handler for Collect {
        async fn handle(&self, message: &Incoming) -> Outcome {
            let body: serde_json::Value = message.json().expect("json");
            self.0.lock().expect("lock").insert(body["id"].as_str().unwrap_or_default().to_owned());
            Outcome::Done
        }
    }
    let consumer = broker.consume(ConsumerOptions::new(WORK), Collect(seen.clone()));
    connected(&broker).await;

    // Four publishers without pauses, so the cuts land mid-publish.
    const PUBLISHERS: usize = 4;
    const EACH: usize = 1500;
    const TOTAL: usize = PUBLISHERS * EACH;
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let broker = broker.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    broker.publish_outgoing(work_message(&format!("m-{}", p * EACH + i))).await?;
                }
                Ok::<_, fa_amqp::PublishError>(())
            })
        })
        .collect();
    // Cut every connection twice while messages flow both ways.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let name = vhost.name.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("rabbitmqctl")
                .args(["close_all_connections", "-p", &name, "test: broker went away"])
                .output()
        })
        .await
        .expect("join")
        .expect("rabbitmqctl");
    }
    for publisher in publishers {
        publisher.await.expect("join").expect("every publish confirmed despite the cuts");
    }
    eventually(Duration::from_secs(60), "every message consumed", || async {
        (seen.lock().expect("lock").len() == TOTAL).then_some(())
    })
    .await;
    let missing: Vec<_> =
        (0..TOTAL).map(|i| format!("m-{i}")).filter(|id| !seen.lock().expect("lock").contains(id)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    // Readiness follows the reconnection; it may lag the last delivery.
    eventually(WAIT, "the broker to be ready again", || async { broker.readiness().ok() }).await;
    eventually(WAIT, "the consumer to be subscribed again", || async { consumer.readiness().ok() }).await;
    consumer.stop().await;
    broker.close().await;
}

#[tokio::test]
async fn stopping_hands_unfinished_deliveries_back_to_the_queue() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, work_topology());
    let started = Arc::new(AtomicUsize::new(0));
    struct Stuck(Arc<AtomicUsize>);
    impl Handler for Stuck {
        async fn handle(&self, _: &Incoming) -> Outcome {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Outcome::Done
        }
    }
    let options = ConsumerOptions { drain_timeout: Duration::from_millis(300), ..ConsumerOptions::new(WORK) };
    let consumer = broker.consume(options, Stuck(started.clone()));
    connected(&broker).await;
    broker.publish_outgoing(work_message("in-flight")).await.expect("confirmed");
    eventually(WAIT, "the handler to start", || async { (started.load(Ordering::SeqCst) == 1).then_some(()) }).await;
    consumer.stop().await;
    let inspector = raw(&vhost).await;
    let back = wait_for_message(&inspector, WORK).await;
    assert_eq!(back.delivery.properties.message_id().as_ref().map(|s| s.as_str()), Some("in-flight"));
    broker.close().await;
}

/// Hears nothing; listening is all that matters here.
struct Deaf;

impl fa_amqp::Listener for Deaf {
    fn heard(&self, _: &[u8]) {}
    fn resubscribed(&self) {}
}

/// A service may start before the service that declares the exchange it
/// listens to (the importer before any token-broker): RabbitMQ fails the
/// listening channel, and lapin reports that as an error of the
/// connection. The connection stays: only the listener tries again.
#[tokio::test]
async fn listening_to_an_exchange_nobody_declared_yet_keeps_the_connection() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = start(&vhost, Topology::new());
    connected(&broker).await;
    // rabbitmqctl lists a connection a moment after it is made.
    let before = eventually(WAIT, "one connection listed", || async {
        let listed = vhost.list_connections().ok()?;
        (listed.lines().filter(|l| !l.trim().is_empty()).count() == 1).then_some(listed)
    })
    .await;
    let _listening = broker.listen("nobody.declared.this", Deaf);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(vhost.list_connections().expect("connections"), before, "the connection was made again");
    assert!(broker.readiness().is_ok(), "still ready");
    broker.close().await;
}
