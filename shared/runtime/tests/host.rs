//! The order a service stops in ([`Host::serve`]): its consumers first (the
//! delivery in flight finishes and is acked), then the background tasks it
//! owns ([`Host::own`]), then the broker connection, then the database
//! pool; so neither a consumer nor a task ever finds the broker or the pool
//! closed under it. Against the real PostgreSQL and RabbitMQ.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use fa_amqp::{ConsumerOptions, Handler, Incoming, Outcome, Outgoing, Topology};
use fa_runtime::{host::Host, launch::Context};
use fa_testkit::{TestDatabase, TestVhost, eventually};
use tokio::{net::TcpListener, sync::Notify};
use tokio_util::sync::CancellationToken;

mod support;

const WORK: &str = "test-host.work";
const TASK_OUT: &str = "test-host.task-out";
const WAIT: Duration = Duration::from_secs(30);
/// How long the delivery in flight at shutdown still takes.
const DELIVERY: Duration = Duration::from_millis(300);
/// How long the owned task takes to wind down after shutdown: longer than
/// the delivery, so a host that waited for its tasks before stopping its
/// consumers would record the consumer stopping last.
const WIND_DOWN: Duration = Duration::from_millis(700);

/// What happened, in the order it happened.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<&'static str>>>);

impl Events {
    fn push(&self, event: &'static str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(event);
    }

    fn contains(&self, event: &str) -> bool {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&event)
    }

    fn all(&self) -> Vec<&'static str> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Takes [`DELIVERY`] over each delivery; records when the delivery is done
/// and when the consumer is gone (its handler dropped).
struct Slow {
    events: Events,
    started: Arc<Notify>,
}

impl Handler for Slow {
    async fn handle(&self, _: &Incoming) -> Outcome {
        self.started.notify_one();
        tokio::time::sleep(DELIVERY).await;
        self.events.push("the delivery in flight finished");
        Outcome::Done
    }
}

impl Drop for Slow {
    fn drop(&mut self) {
        self.events.push("the consumer stopped");
    }
}

fn message(routing_key: &str, id: &str) -> Outgoing {
    Outgoing {
        exchange: String::new(),
        routing_key: routing_key.to_owned(),
        body: b"{}".to_vec(),
        message_id: id.to_owned(),
        kind: None,
        tenant_id: Some("acme-jp".to_owned()),
        headers: Default::default(),
    }
}

/// The number of messages on `queue` (ready or unacked).
fn messages_on(vhost: &TestVhost, queue: &str) -> Option<u64> {
    let queues = vhost.list_queues().expect("list queues");
    let line = queues.lines().find(|l| l.split('\t').next() == Some(queue))?;
    line.split('\t').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_stop_then_owned_tasks_then_the_broker_then_the_pool() {
    let db = TestDatabase::create().await.expect("database");
    let vhost = TestVhost::create().expect("vhost");
    let common = support::config("test-host", &db, &vhost);
    let topology = Topology::new().queue(WORK, &[]).queue(TASK_OUT, &[]);
    let mut host = Host::start(&common, topology).await.expect("the host starts");
    let events = Events::default();
    let shutdown = CancellationToken::new();

    let started = Arc::new(Notify::new());
    let consumer =
        host.broker.consume(ConsumerOptions::new(WORK), Slow { events: events.clone(), started: started.clone() });

    // A task that still uses the broker and the pool at the end of its
    // wind-down, as the importer's scheduler may.
    let (pool, broker, stop, record) = (host.pool.clone(), host.broker.clone(), shutdown.clone(), events.clone());
    host.own(
        "winding-down",
        tokio::spawn(async move {
            stop.cancelled().await;
            tokio::time::sleep(WIND_DOWN).await;
            let published = broker.publish_outgoing(message(TASK_OUT, "from-the-task")).await;
            let queried = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&pool).await;
            record.push(match (published, queried) {
                (Ok(()), Ok(1)) => "the owned task ended, having used the broker and the pool",
                _ => "the owned task found the broker or the pool closed",
            });
        }),
    );

    eventually(WAIT, "the broker to connect", || async { host.broker.readiness().ok() }).await;
    eventually(WAIT, "the consumer to subscribe", || async { consumer.readiness().ok() }).await;

    // Records the broker and the pool closing, as soon as they do.
    let (broker, pool, record) = (host.broker.clone(), host.pool.clone(), events.clone());
    let watcher = tokio::spawn(async move {
        let (mut broker_closed, mut pool_closed) = (false, false);
        while !(broker_closed && pool_closed) {
            if !broker_closed && broker.readiness().is_err() {
                broker_closed = true;
                record.push("the broker closed");
            }
            if !pool_closed && pool.is_closed() {
                pool_closed = true;
                record.push("the pool closed");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let publisher = host.broker.clone();
    let serving =
        tokio::spawn(host.serve(axum::Router::new(), Context { listener, shutdown: shutdown.clone() }, vec![consumer]));
    publisher.publish_outgoing(message(WORK, "in-flight")).await.expect("the delivery is published");
    tokio::time::timeout(WAIT, started.notified()).await.expect("the delivery reaches the handler");
    assert!(!events.contains("the delivery in flight finished"));
    shutdown.cancel();

    tokio::time::timeout(WAIT, serving)
        .await
        .expect("serve returns after shutdown")
        .expect("serve did not panic")
        .expect("serve succeeds");
    tokio::time::timeout(WAIT, watcher).await.expect("both closed").expect("the watcher did not panic");
    assert_eq!(
        events.all(),
        [
            "the delivery in flight finished",
            "the consumer stopped",
            "the owned task ended, having used the broker and the pool",
            "the broker closed",
            "the pool closed",
        ]
    );
    // RabbitMQ counts a quorum queue's messages a moment late.
    eventually(WAIT, "the delivery in flight acked and the task's last publish on its queue", || async {
        (messages_on(&vhost, WORK) == Some(0) && messages_on(&vhost, TASK_OUT) == Some(1)).then_some(())
    })
    .await;
}
