//! Request and reply over the real RabbitMQ, each test in a vhost of its
//! own; the caller and the server are two services with a connection each.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use fa_amqp::{
    Broker, BrokerOptions, ConsumerHandle, RpcClient, RpcError, RpcHandler, RpcRequest, RpcServerOptions, Topology,
};
use fa_testkit::{TestVhost, eventually};
use futures_util::StreamExt as _;
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use secrecy::SecretString;

const TOKENS: &str = "test-broker.tokens";
const WAIT: Duration = Duration::from_secs(30);
const CALL: Duration = Duration::from_secs(5);

fn options() -> BrokerOptions {
    BrokerOptions {
        publish_timeout: Duration::from_secs(30),
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        ..BrokerOptions::default()
    }
}

/// The serving service's connection, declaring the request queue.
fn server_broker(vhost: &TestVhost) -> Broker {
    Broker::start(SecretString::from(vhost.url.clone()), "test-server", Topology::new().rpc_queue(TOKENS), options())
}

/// A calling service's connection; it declares nothing.
async fn caller(vhost: &TestVhost) -> (Broker, RpcClient) {
    let broker = Broker::start(SecretString::from(vhost.url.clone()), "test-caller", Topology::new(), options());
    eventually(WAIT, "the caller to connect", || async { broker.readiness().ok() }).await;
    (broker.clone(), RpcClient::new(broker))
}

/// Starts serving with `handler` and waits until it consumes.
async fn serve<H: RpcHandler>(broker: &Broker, handler: H) -> ConsumerHandle {
    let server = broker.serve_rpc(RpcServerOptions::new(TOKENS), handler);
    eventually(WAIT, "the server to consume", || async { server.readiness().ok() }).await;
    server
}

/// Answers `reply to <body> for <tenant>`, and remembers what it saw.
#[derive(Default)]
struct Echo {
    seen: Mutex<Vec<RpcRequest>>,
}

impl RpcHandler for Echo {
    async fn handle(&self, request: &RpcRequest) -> Vec<u8> {
        self.seen.lock().expect("lock").push(request.clone());
        let tenant = request.tenant_id().unwrap_or_else(|| "nobody".to_owned());
        format!("reply to {} for {tenant}", String::from_utf8_lossy(&request.body)).into_bytes()
    }
}

/// A client that is not ours.
async fn raw(vhost: &TestVhost) -> lapin::Channel {
    let conn = Connection::connect(&vhost.url, ConnectionProperties::default()).await.expect("raw connection");
    let channel = conn.create_channel().await.expect("raw channel");
    // Keep the connection open for the channel's lifetime.
    std::mem::forget(conn);
    channel
}

/// The number of messages on `queue` (ready or unacked), `None` if it does
/// not exist.
fn messages_on(vhost: &TestVhost, queue: &str) -> Option<u64> {
    let queues = vhost.list_queues().expect("list queues");
    let line = queues.lines().find(|l| l.split('\t').next() == Some(queue))?;
    line.split('\t').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_gets_its_own_reply() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    let echo = Arc::new(Echo::default());
    let server = serve(&server_side, echo.clone()).await;
    let (caller_side, client) = caller(&vhost).await;

    let reply = client.call(TOKENS, b"token please".to_vec(), Some("acme-jp"), CALL).await.expect("a reply");
    assert_eq!(String::from_utf8_lossy(&reply), "reply to token please for acme-jp");
    let reply = client.call(TOKENS, b"another".to_vec(), None, CALL).await.expect("a second reply");
    assert_eq!(String::from_utf8_lossy(&reply), "reply to another for nobody");

    let seen = echo.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2, "each request handled once");
    assert_eq!(seen[0].tenant_id().as_deref(), Some("acme-jp"));
    assert!(seen[0].correlation_id().is_some(), "a request carries a correlation id");
    assert_ne!(seen[0].correlation_id(), seen[1].correlation_id(), "each call has its own correlation id");
    assert_eq!(seen[0].properties.app_id().as_ref().map(ShortString::as_str), Some("test-caller"));
    assert_eq!(seen[0].user_id(), Some(vhost.user()), "a request names the RabbitMQ user that sent it");
    server.stop().await;
    server_side.close().await;
    caller_side.close().await;
}

/// Replies with the request's body followed by `!`.
struct Bang;

impl RpcHandler for Bang {
    async fn handle(&self, request: &RpcRequest) -> Vec<u8> {
        let mut reply = request.body.clone();
        reply.push(b'!');
        reply
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_each_get_their_own_answer() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    let server = serve(&server_side, Bang).await;
    let (caller_side, client) = caller(&vhost).await;

    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let body = format!("call-{i}");
                let reply =
                    client.call(TOKENS, body.clone().into_bytes(), Some("acme-jp"), Duration::from_secs(20)).await;
                (body, reply)
            })
        })
        .collect();
    for call in calls {
        let (body, reply) = call.await.expect("join");
        let reply = reply.unwrap_or_else(|e| panic!("{body} got no reply: {e}"));
        assert_eq!(String::from_utf8_lossy(&reply), format!("{body}!"), "a caller got someone else's reply");
    }
    server.stop().await;
    server_side.close().await;
    caller_side.close().await;
}

/// Takes a second over the request `slow`, answers the others at once.
struct OneSlow {
    slow_started: AtomicUsize,
}

impl RpcHandler for OneSlow {
    async fn handle(&self, request: &RpcRequest) -> Vec<u8> {
        if request.body == b"slow" {
            self.slow_started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        request.body.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_does_not_hold_up_the_others() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    let handler = Arc::new(OneSlow { slow_started: AtomicUsize::new(0) });
    let server = serve(&server_side, handler.clone()).await;
    let (caller_side, client) = caller(&vhost).await;

    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            let reply = client.call(TOKENS, b"slow".to_vec(), None, CALL).await;
            (reply, Instant::now())
        })
    };
    eventually(WAIT, "the slow request to be in hand", || async {
        (handler.slow_started.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let started = Instant::now();
    let others: Vec<_> = (0..50)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.call(TOKENS, format!("fast-{i}").into_bytes(), None, CALL).await })
        })
        .collect();
    for (i, other) in others.into_iter().enumerate() {
        let reply = other.await.expect("join").expect("a fast reply");
        assert_eq!(reply, format!("fast-{i}").into_bytes());
    }
    let fast_done = Instant::now();
    assert!(
        fast_done - started < Duration::from_millis(500),
        "50 fast calls took {:?} behind the slow one",
        fast_done - started
    );
    let (slow_reply, slow_done) = slow.await.expect("join");
    assert_eq!(slow_reply.expect("the slow reply"), b"slow");
    assert!(fast_done < slow_done, "the fast calls finished before the slow one");
    server.stop().await;
    server_side.close().await;
    caller_side.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_nobody_serves_fails_fast_with_no_server() {
    let vhost = TestVhost::create().expect("vhost");
    let (caller_side, client) = caller(&vhost).await;

    let started = Instant::now();
    let err = client.call("nobody.declared.this", b"hello?".to_vec(), None, Duration::from_secs(10)).await;
    let elapsed = started.elapsed();
    match err {
        Err(RpcError::NoServer { queue }) => assert_eq!(queue, "nobody.declared.this"),
        other => panic!("expected NoServer, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(1), "NoServer took {elapsed:?}, not at once");
    // The channel is still good for the next call.
    let again = client.call("nobody.declared.this", b"hello?".to_vec(), None, Duration::from_secs(10)).await;
    assert!(matches!(again, Err(RpcError::NoServer { .. })), "{again:?}");
    caller_side.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_queue_without_a_server_times_out_and_its_request_expires() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    eventually(WAIT, "the queue to be declared", || async { server_side.readiness().ok() }).await;
    let (caller_side, client) = caller(&vhost).await;

    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let outcome = client.call(TOKENS, b"anyone?".to_vec(), None, timeout).await;
    let elapsed = started.elapsed();
    assert!(matches!(outcome, Err(RpcError::Timeout(t)) if t == timeout), "{outcome:?}");
    assert!(elapsed >= timeout && elapsed < Duration::from_secs(1), "timed out after {elapsed:?}");
    // Nobody will take it now: it expires rather than waiting 30 s.
    eventually(Duration::from_secs(10), "the unanswered request to expire", || async {
        (messages_on(&vhost, TOKENS) == Some(0)).then_some(())
    })
    .await;
    server_side.close().await;
    caller_side.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_queue_is_classic_and_requests_expire_after_30_s_without_dead_lettering() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    eventually(WAIT, "the queue to be declared", || async { server_side.readiness().ok() }).await;
    let queues = vhost.list_queues().expect("list queues");
    let line = queues.lines().find(|l| l.split('\t').next() == Some(TOKENS)).expect("the request queue");
    assert!(line.contains("classic") && line.contains("true"), "durable classic: {line}");
    assert!(line.contains("x-message-ttl") && line.contains("30000"), "{line}");
    assert!(!line.contains("x-dead-letter"), "no dead-lettering: {line}");
    assert!(!queues.contains(&format!("{TOKENS}.dlq")), "no dead-letter queue:\n{queues}");
    server_side.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_reply_to_is_dropped_not_left_on_the_queue() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    let echo = Arc::new(Echo::default());
    let server = serve(&server_side, echo.clone()).await;
    let stranger = raw(&vhost).await;
    stranger
        .basic_publish(
            "".into(),
            TOKENS.into(),
            BasicPublishOptions::default(),
            b"no return address",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
    eventually(WAIT, "the request to be taken and acked", || async {
        (messages_on(&vhost, TOKENS) == Some(0)).then_some(())
    })
    .await;
    assert!(echo.seen.lock().expect("lock").is_empty(), "the handler never ran for it");
    server.stop().await;
    server_side.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_reply_to_names_a_durable_queue_gets_nothing_and_the_queue_stays_empty() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    let echo = Arc::new(Echo::default());
    let server = serve(&server_side, echo.clone()).await;

    // A stranger asks for the answer to be left in a durable queue of its own.
    let stranger = raw(&vhost).await;
    let inbox = "stranger.inbox";
    stranger
        .queue_declare(inbox.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        .await
        .expect("declare the stranger's queue");
    let request = BasicProperties::default()
        .with_reply_to(ShortString::from(inbox))
        .with_correlation_id(ShortString::from("stranger-1"))
        .with_headers(FieldTable::from(std::collections::BTreeMap::from([(
            ShortString::from("tenant_id"),
            AMQPValue::LongString("acme-jp".into()),
        )])));
    stranger
        .basic_publish("".into(), TOKENS.into(), BasicPublishOptions::default(), b"token please", request)
        .await
        .expect("publish");
    eventually(WAIT, "the request to be taken and acked", || async {
        (messages_on(&vhost, TOKENS) == Some(0)).then_some(())
    })
    .await;

    // A caller through direct reply-to is still answered; by the time its
    // reply is back, a reply to the stranger would have been routed too.
    let (caller_side, client) = caller(&vhost).await;
    let reply = client.call(TOKENS, b"token please".to_vec(), Some("acme-jp"), CALL).await.expect("a reply");
    assert_eq!(String::from_utf8_lossy(&reply), "reply to token please for acme-jp");

    assert_eq!(messages_on(&vhost, inbox), Some(0), "nothing was written to the stranger's queue");
    let seen = echo.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "the handler ran only for the direct reply-to caller");
    assert!(seen[0].properties.reply_to().as_ref().is_some_and(|r| r.as_str().starts_with("amq.rabbitmq.reply-to.")));
    server.stop().await;
    server_side.close().await;
    caller_side.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_not_persistent() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    let server = serve(&server_side, Bang).await;

    // A caller that is not ours, using direct reply-to by hand.
    let stranger = raw(&vhost).await;
    let mut replies = stranger
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "stranger".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("consume direct reply-to");
    let request = BasicProperties::default()
        .with_reply_to(ShortString::from("amq.rabbitmq.reply-to"))
        .with_correlation_id(ShortString::from("stranger-42"));
    stranger
        .basic_publish("".into(), TOKENS.into(), BasicPublishOptions::default(), b"secret", request)
        .await
        .expect("publish");
    let reply = tokio::time::timeout(WAIT, replies.next())
        .await
        .expect("a reply in time")
        .expect("the reply stream is open")
        .expect("a reply");
    assert_eq!(reply.data, b"secret!");
    assert_eq!(reply.properties.correlation_id().as_ref().map(ShortString::as_str), Some("stranger-42"));
    assert_eq!(*reply.properties.delivery_mode(), Some(1), "a reply must never be written to disk");
    server.stop().await;
    server_side.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_not_persistent_and_expire_with_their_call() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    eventually(WAIT, "the queue to be declared", || async { server_side.readiness().ok() }).await;
    let (caller_side, client) = caller(&vhost).await;

    // A server that is not ours, answering by hand.
    let stranger = raw(&vhost).await;
    let mut requests = stranger
        .basic_consume(TOKENS.into(), "stranger".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume requests");
    let call = {
        let client = client.clone();
        tokio::spawn(async move { client.call(TOKENS, b"token please".to_vec(), Some("acme-jp"), CALL).await })
    };
    let request = tokio::time::timeout(WAIT, requests.next())
        .await
        .expect("a request in time")
        .expect("the request stream is open")
        .expect("a request");
    let p = &request.properties;
    assert_eq!(*p.delivery_mode(), Some(1), "a request must never be written to disk");
    assert_eq!(p.expiration().as_ref().map(ShortString::as_str), Some("5000"), "it expires with its call");
    // RabbitMQ rewrites direct reply-to into the calling channel's address.
    let reply_to = p.reply_to().clone().expect("reply_to");
    assert!(reply_to.as_str().starts_with("amq.rabbitmq.reply-to."), "{reply_to:?}");
    let tenant = p.headers().as_ref().and_then(|h| h.inner().get("tenant_id").cloned());
    assert!(matches!(tenant, Some(AMQPValue::LongString(s)) if s.to_string() == "acme-jp"));
    let mut answer = BasicProperties::default().with_delivery_mode(1);
    if let Some(id) = p.correlation_id() {
        answer = answer.with_correlation_id(id.clone());
    }
    stranger
        .basic_publish("".into(), reply_to, BasicPublishOptions::default(), b"by hand", answer)
        .await
        .expect("reply");
    request.acker.ack(BasicAckOptions::default()).await.expect("ack");
    assert_eq!(call.await.expect("join").expect("the reply"), b"by hand");
    server_side.close().await;
    caller_side.close().await;
}

/// When a call ended, and its error if it failed.
type Ended = (Instant, Result<(), String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_work_again_after_the_broker_closes_every_connection() {
    let vhost = TestVhost::create().expect("vhost");
    let server_side = server_broker(&vhost);
    let server = serve(&server_side, Bang).await;
    let (caller_side, client) = caller(&vhost).await;
    client.call(TOKENS, b"before".to_vec(), None, CALL).await.expect("a reply before the cut");

    // Callers keep calling through the cut, recording when each call ended
    // and how.
    let timeout = Duration::from_secs(2);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ended: Arc<Mutex<Vec<Ended>>> = Arc::default();
    let callers: Vec<_> = (0..8)
        .map(|c| {
            let (client, stop, ended) = (client.clone(), stop.clone(), ended.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = format!("c{c}-{i}");
                    let started = Instant::now();
                    let outcome = client.call(TOKENS, body.clone().into_bytes(), None, timeout).await;
                    let elapsed = started.elapsed();
                    assert!(elapsed < timeout + Duration::from_millis(500), "{body} hung for {elapsed:?}: {outcome:?}");
                    let outcome = match outcome {
                        Ok(reply) => {
                            assert_eq!(reply, format!("{body}!").into_bytes(), "someone else's reply");
                            Ok(())
                        }
                        Err(e @ (RpcError::Disconnected | RpcError::Timeout(_))) => Err(format!("{e:?}")),
                        Err(e) => panic!("{body}: unexpected {e:?}"),
                    };
                    ended.lock().expect("lock").push((Instant::now(), outcome));
                    i += 1;
                }
            })
        })
        .collect();
    eventually(WAIT, "calls to flow", || async { (ended.lock().expect("lock").len() > 100).then_some(()) }).await;
    let cut = Instant::now();
    tokio::task::block_in_place(|| vhost.close_all_connections()).expect("rabbitmqctl close_all_connections");

    // The cut failed the calls in flight; without restarting anything,
    // calls succeed again.
    let recovered = eventually(WAIT, "calls to succeed again after the cut", || async {
        let ended = ended.lock().expect("lock");
        let last_failure = ended.iter().rposition(|(_, outcome)| outcome.is_err())?;
        let since = &ended[last_failure + 1..];
        (since.len() >= 50 && since.iter().all(|(_, outcome)| outcome.is_ok())).then(|| ended[last_failure].0)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.expect("a caller panicked");
    }
    let ended = ended.lock().expect("lock").clone();
    let failures: Vec<_> = ended.iter().filter_map(|(_, outcome)| outcome.clone().err()).collect();
    eprintln!(
        "{} calls, {} failed during the cut ({failures:?}); the last failure {:?} after the cut",
        ended.len(),
        failures.len(),
        recovered.saturating_duration_since(cut)
    );
    assert!(server.readiness().is_ok());
    let reply = client.call(TOKENS, b"after".to_vec(), None, CALL).await.expect("a reply after the cut");
    assert_eq!(reply, b"after!");
    server.stop().await;
    server_side.close().await;
    caller_side.close().await;
}
