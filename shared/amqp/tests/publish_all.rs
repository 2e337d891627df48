//! `Broker::publish_all` against the real RabbitMQ, each test in a vhost of
//! its own: many messages, in order, each confirmed and carrying the
//! properties `Broker::publish` gives one.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use fa_amqp::{Broker, BrokerOptions, ExchangeKind, PublishError, Topology};
use fa_messages::{ImportCompletedV1, Message as _, topology::SYNC_EXCHANGE};
use fa_testkit::{TestVhost, eventually};
use lapin::{
    Connection, ConnectionProperties,
    options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

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

#[tokio::test]
async fn a_message_the_queue_refuses_is_nacked_at_its_position() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = started(&vhost).await;
    // A queue that takes one message and refuses the rest: RabbitMQ nacks them.
    let connection = Connection::connect(&vhost.url, ConnectionProperties::default()).await.expect("connection");
    let channel = connection.create_channel().await.expect("channel");
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(1));
    arguments.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
    channel.queue_declare(QUEUE.into(), QueueDeclareOptions::default(), arguments).await.expect("declare");
    channel
        .queue_bind(QUEUE.into(), SYNC_EXCHANGE.into(), "#".into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .expect("bind");
    let (index, error) = broker.publish_all(&messages(3)).await.expect_err("nacked");
    assert_eq!(index, 1, "the first message fits, the second is refused: {error}");
    assert!(matches!(error, PublishError::Nacked), "{error}");
    broker.close().await;
}

/// A TCP front for the local RabbitMQ that fails as a network does: on
/// [`Front::fail`], the connections it carries stop passing the client's
/// bytes on (read and thrown away), then are cut. Connections made after
/// that pass everything.
struct Front {
    port: u16,
    current: Mutex<Generation>,
}

/// What the connections made since the last failure share.
#[derive(Default, Clone)]
struct Generation {
    black_hole: CancellationToken,
    cut: CancellationToken,
}

impl Front {
    async fn start() -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let front = Arc::new(Self { port: listener.local_addr().expect("addr").port(), current: Mutex::default() });
        let serving = front.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(rabbit) = tokio::net::TcpStream::connect("127.0.0.1:5672").await else { continue };
                let Generation { black_hole, cut } = serving.current.lock().expect("lock").clone();
                let (mut client_in, mut client_out) = client.into_split();
                let (mut rabbit_in, mut rabbit_out) = rabbit.into_split();
                let cut_in = cut.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    loop {
                        let n = tokio::select! {
                            n = client_in.read(&mut buffer) => n.unwrap_or(0),
                            () = cut_in.cancelled() => 0,
                        };
                        if n == 0 || (!black_hole.is_cancelled() && rabbit_out.write_all(&buffer[..n]).await.is_err()) {
                            return;
                        }
                    }
                });
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::io::copy(&mut rabbit_in, &mut client_out) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        front
    }

    /// The vhost's URL through the front.
    fn url(&self, vhost: &TestVhost) -> String {
        let (credentials, rest) = vhost.url.trim_start_matches("amqp://").split_once('@').expect("user@host");
        let (_, vhost_path) = rest.split_once('/').expect("host/vhost");
        format!("amqp://{credentials}@127.0.0.1:{}/{vhost_path}", self.port)
    }

    /// What the clients connected now send stops reaching RabbitMQ; after
    /// `lasting`, their connections are cut.
    async fn fail(&self, lasting: Duration) {
        let failing = std::mem::take(&mut *self.current.lock().expect("lock"));
        failing.black_hole.cancel();
        tokio::time::sleep(lasting).await;
        failing.cut.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_call_resends_what_was_unconfirmed_and_loses_nothing() {
    let vhost = TestVhost::create().expect("vhost");
    let front = Front::start().await;
    let options = BrokerOptions {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..Default::default()
    };
    let topology = Topology::new().exchange(SYNC_EXCHANGE, ExchangeKind::Topic);
    let broker = Broker::start(SecretString::from(front.url(&vhost)), "test-svc", topology, options);
    eventually(WAIT, "the broker to connect", || async { broker.readiness().ok() }).await;
    // Front Agent reads the queue straight from RabbitMQ, not through the front.
    let (_connection, channel) = front_agent(&vhost, "#").await;
    let sent = messages(30_000);
    let publishing = tokio::spawn({
        let (broker, sent) = (broker.clone(), sent.clone());
        async move { broker.publish_all(&sent).await.map_err(|(index, e)| format!("{index}: {e}")) }
    });
    eventually(WAIT, "the first messages in the queue", || {
        let channel = channel.clone();
        async move {
            let passive = QueueDeclareOptions { passive: true, ..Default::default() };
            let queue = channel.queue_declare(QUEUE.into(), passive, FieldTable::default()).await.ok()?;
            (queue.message_count() > 0).then_some(())
        }
    })
    .await;
    // Messages sent in the next 300 ms never reach RabbitMQ, and their
    // confirms never come: only sending them again gets them there.
    front.fail(Duration::from_millis(300)).await;
    assert_eq!(publishing.await.expect("task"), Ok(()), "confirmed across the reconnection");

    let position: HashMap<String, usize> = sent.iter().enumerate().map(|(i, m)| (m.message_id(), i)).collect();
    // Each message's first arrival, in the order they arrived.
    let mut first_arrivals = Vec::new();
    let mut seen = HashSet::new();
    while let Some(got) = channel.basic_get(QUEUE.into(), BasicGetOptions { no_ack: true }).await.expect("basic.get") {
        let id = got.delivery.properties.message_id().as_ref().map(|s| s.to_string()).expect("message_id");
        let at = *position.get(&id).expect("a message of the call");
        if seen.insert(at) {
            first_arrivals.push(at);
        }
    }
    assert_eq!(first_arrivals.len(), sent.len(), "every message arrived at least once");
    assert!(first_arrivals.windows(2).all(|w| w[0] < w[1]), "first arrivals keep the order of the call");
    broker.close().await;
}

#[tokio::test]
async fn the_publishing_connection_is_closed_once_idle_and_when_the_broker_closes() {
    let vhost = TestVhost::create().expect("vhost");
    let broker = started(&vhost).await;
    let _front_agent = front_agent(&vhost, "#").await;
    let connections = || vhost.list_connections().expect("list connections").lines().count();
    // Front Agent's, the broker's, and the one publish_all opened.
    broker.publish_all(&messages(10)).await.expect("confirmed");
    assert_eq!(connections(), 3);
    // Kept for the next call, then closed once idle.
    broker.publish_all(&messages(10)).await.expect("confirmed");
    assert_eq!(connections(), 3, "the next call uses the same connection");
    eventually(WAIT, "the idle publishing connection to close", || async { (connections() == 2).then_some(()) }).await;
    // Opened again when needed, and closed with the broker.
    broker.publish_all(&messages(10)).await.expect("confirmed");
    assert_eq!(connections(), 3);
    broker.close().await;
    eventually(WAIT, "the broker's connections to close", || async { (connections() == 1).then_some(()) }).await;
}
