//! `Broker::publish_all` against the real RabbitMQ, each test in a vhost of
//! its own: many messages, in order, each confirmed and carrying the
//! properties `Broker::publish` gives one.

use std::time::Duration;

use fa_amqp::{Broker, BrokerOptions, ExchangeKind, PublishError, Topology};
use fa_messages::{ImportCompletedV1, Message as _, topology::SYNC_EXCHANGE};
use fa_testkit::{TestVhost, eventually};
use lapin::{
    Connection, ConnectionProperties,
    options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use secrecy::SecretString;

const WAIT: Duration = Duration::from_secs(30);
const QUEUE: &str = "frontagent.sync";

async fn started(vhost: &TestVhost) -> Broker {
    let topology = Topology::new().exchange(SYNC_EXCHANGE, ExchangeKind::Topic);
    let broker = Broker::start(SecretString::from(vhost.url.clone()), "test-svc", topology, BrokerOptions::default());
    eventually(WAIT, "the broker to connect", || async { broker.readiness().ok() }).await;
    broker
}

/// Front Agent's side: a queue bound to `routing_key` on the sync exchange.
async fn front_agent(vhost: &TestVhost, routing_key: &str) -> (Connection, lapin::Channel) {
    let connection = Connection::connect(&vhost.url, ConnectionProperties::default()).await.expect("connection");
    let channel = connection.create_channel().await.expect("channel");
    channel.queue_declare(QUEUE.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    channel
        .queue_bind(
            QUEUE.into(),
            SYNC_EXCHANGE.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    (connection, channel)
}

/// `count` import.completed messages, each its own run, of two tenants in turn.
fn messages(count: usize) -> Vec<ImportCompletedV1> {
    let text = include_str!("../../messages/examples/import.completed.v1.json");
    let example: ImportCompletedV1 = serde_json::from_str(text).expect("example parses");
    (0..count)
        .map(|i| {
            let mut message = example.clone();
            message.run_id = format!("run_{i:05}");
            if i % 3 == 2 {
                message.tenant_id = fa_messages::TenantId::new("other-tenant").expect("tenant");
            }
            message
        })
        .collect()
}

fn header(properties: &lapin::BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        _ => None,
    }
}

#[tokio::test]
async fn every_message_is_confirmed_and_arrives_in_order_with_its_properties() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = started(&vhost).await;
    let (_connection, channel) = front_agent(&vhost, "#").await;
    // More than one window's worth, so confirms come back while more go out.
    let sent = messages(1_500);
    broker.publish_all(&sent).await.expect("all confirmed");

    for message in &sent {
        let got = channel
            .basic_get(QUEUE.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
            .expect("every confirmed message is in the queue");
        let p = &got.delivery.properties;
        assert_eq!(p.message_id().as_ref().map(|s| s.as_str()), Some(message.message_id().as_str()), "order");
        assert_eq!(header(p, "tenant_id").as_deref(), Some(message.tenant_id.as_str()));
        assert_eq!(p.kind().as_ref().map(|s| s.as_str()), Some("import.completed.v1"));
        assert_eq!(p.content_type().as_ref().map(|s| s.as_str()), Some("application/json"));
        assert_eq!(p.app_id().as_ref().map(|s| s.as_str()), Some("test-svc"));
        assert_eq!(*p.delivery_mode(), Some(2));
        assert!(p.timestamp().is_some());
        let body: ImportCompletedV1 = serde_json::from_slice(&got.delivery.data).expect("body");
        assert_eq!(&body, message);
    }
    broker.close().await;
}

#[tokio::test]
async fn nothing_to_publish_is_done_at_once() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = started(&vhost).await;
    broker.publish_all(&Vec::<ImportCompletedV1>::new()).await.expect("nothing to confirm");
    broker.close().await;
}

#[tokio::test]
async fn an_unroutable_message_stops_the_call_at_its_position() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = started(&vhost).await;
    // No queue is bound for import.completed: the first message is returned.
    let (index, error) = broker.publish_all(&messages(3)).await.expect_err("unroutable");
    assert_eq!(index, 0);
    assert!(matches!(error, PublishError::Unroutable { .. }), "{error}");
    broker.close().await;
}
