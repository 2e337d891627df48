//! A stop we asked for is no failure: closing a broker that served and made
//! RPC calls and listened to broadcasts logs nothing at WARN or ERROR,
//! lapin's own logs included.
//!
//! lapin closes a channel dropped while open in the background; when the
//! connection closes meanwhile, it logs that close's failure as `ERROR
//! Connection error ... invalid channel state: Closing (channel.close)` (or
//! `invalid connection state: Closed`). That was a race, so the stop is
//! repeated. This file holds one test: it installs the process's
//! subscriber, which sees lapin's I/O thread too.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use fa_amqp::{
    Broker, BrokerOptions, ExchangeKind, Listener, RpcClient, RpcHandler, RpcRequest, RpcServerOptions, Topology,
};
use fa_testkit::{TestVhost, eventually};
use secrecy::SecretString;
use tracing::{Event, Level, Subscriber, field::Visit};
use tracing_subscriber::{
    Layer,
    filter::LevelFilter,
    layer::{Context, SubscriberExt as _},
    util::SubscriberInitExt as _,
};

const TOKENS: &str = "test-shutdown.tokens";
const NEWS: &str = "test-shutdown.news";
const WAIT: Duration = Duration::from_secs(30);
const ROUNDS: usize = 8;

/// Every event at WARN or ERROR, as `LEVEL target: fields`.
#[derive(Clone, Default)]
struct Alarms(Arc<Mutex<Vec<String>>>);

impl<S: Subscriber> Layer<S> for Alarms {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN {
            return;
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let line = format!("{level} {}:{}", event.metadata().target(), fields.0);
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

struct Echo;

impl RpcHandler for Echo {
    async fn handle(&self, request: &RpcRequest) -> Vec<u8> {
        request.body.clone()
    }
}

/// Hears nothing of interest; says when it is subscribed.
#[derive(Clone, Default)]
struct Quiet(Arc<AtomicBool>);

impl Listener for Quiet {
    fn heard(&self, _: &[u8]) {}
    fn resubscribed(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Quiet {
    async fn subscribed(&self) {
        eventually(WAIT, "the listener to subscribe", || async { self.0.load(Ordering::Relaxed).then_some(()) }).await;
    }
}

fn options() -> BrokerOptions {
    BrokerOptions { min_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1), ..Default::default() }
}

/// One round: a server (like the token-broker) and a caller (like the
/// importer) each work a little, then stop the way `Host::serve` stops
/// them.
async fn serve_call_listen_and_stop(vhost: &TestVhost) {
    let topology = Topology::new().rpc_queue(TOKENS).exchange(NEWS, ExchangeKind::Fanout);
    let server_side = Broker::start(SecretString::from(vhost.url.clone()), "test-server", topology, options());
    let server = server_side.serve_rpc(RpcServerOptions::new(TOKENS), Echo);
    eventually(WAIT, "the server to consume", || async { server.readiness().ok() }).await;
    // The token-broker keeps its listener until after the broker closed.
    let (heard_by_server, heard_by_caller) = (Quiet::default(), Quiet::default());
    let server_news = server_side.listen(NEWS, heard_by_server.clone());
    let caller_side = Broker::start(SecretString::from(vhost.url.clone()), "test-caller", Topology::new(), options());
    let client = RpcClient::new(caller_side.clone());
    // A service holding a token client drops it with its consumer's
    // handler, just before the broker closes.
    let caller_news = caller_side.listen(NEWS, heard_by_caller.clone());
    heard_by_server.subscribed().await;
    heard_by_caller.subscribed().await;

    for body in [&b"one"[..], b"two"] {
        let reply = client.call(TOKENS, body.to_vec(), Some("acme-jp"), WAIT).await.expect("a reply");
        assert_eq!(reply, body);
    }
    server_side.broadcast(NEWS, b"{}").await.expect("news sent");

    server.stop().await;
    server_side.close().await;
    drop(server_news);
    drop(client);
    drop(caller_news);
    caller_side.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_after_serving_calling_and_listening_logs_nothing_at_warn_or_error() {
    let alarms = Alarms::default();
    tracing_subscriber::registry().with(alarms.clone().with_filter(LevelFilter::WARN)).init();
    let vhost = TestVhost::create().expect("vhost");
    for round in 0..ROUNDS {
        serve_call_listen_and_stop(&vhost).await;
        let seen = alarms.0.lock().expect("lock").clone();
        assert!(seen.is_empty(), "round {round}: a clean stop logged at WARN or ERROR:\n{}", seen.join("\n"));
    }
}
