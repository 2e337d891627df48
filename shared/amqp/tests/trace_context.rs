//! W3C trace context crosses RabbitMQ: a publish inside a trace carries
//! `traceparent`, and the consumer's handler runs inside the same trace.
//! (A test binary of its own: it installs the global subscriber.)

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use fa_amqp::{Broker, BrokerOptions, ConsumerOptions, ExchangeKind, Handler, Incoming, Outcome, Outgoing, Topology};
use fa_testkit::{TestVhost, eventually};
use opentelemetry::trace::{TraceContextExt as _, TraceId, TracerProvider as _};
use secrecy::SecretString;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn current_trace_id() -> TraceId {
    tracing::Span::current().context().span().span_context().trace_id()
}

/// What each delivery's handler saw: its trace and the `traceparent` header.
type Seen = Arc<Mutex<Vec<(TraceId, Option<String>)>>>;

struct Record(Seen);

impl Handler for Record {
    async fn handle(&self, message: &Incoming) -> Outcome {
        self.0.lock().expect("lock").push((current_trace_id(), message.header("traceparent")));
        Outcome::Done
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_started_before_publishing_continues_in_the_consumer() {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).expect("first and only subscriber");

    let vhost = TestVhost::create().expect("vhost");
    let topology = Topology::new().exchange("x", ExchangeKind::Topic).queue("traced", &[("x", "#")]);
    let broker = Broker::start(SecretString::from(vhost.url.clone()), "test-svc", topology, BrokerOptions::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = broker.consume(ConsumerOptions::new("traced"), Record(seen.clone()));

    let span = tracing::info_span!("assist event");
    let trace_id = span.context().span().span_context().trace_id();
    assert_ne!(trace_id, TraceId::INVALID);
    async {
        let out = Outgoing {
            exchange: "x".into(),
            routing_key: "k".into(),
            body: b"{}".to_vec(),
            message_id: "m-1".into(),
            kind: None,
            tenant_id: Some("acme-jp".into()),
            headers: Default::default(),
        };
        broker.publish_outgoing(out).await.expect("confirmed");
    }
    .instrument(span)
    .await;

    let (consumer_trace, traceparent) =
        eventually(Duration::from_secs(30), "the delivery", || async { seen.lock().expect("lock").first().cloned() })
            .await;
    let traceparent = traceparent.expect("traceparent header");
    assert!(traceparent.starts_with("00-") && traceparent.contains(&trace_id.to_string()), "{traceparent}");
    assert_eq!(consumer_trace, trace_id, "the handler runs in the publisher's trace");
    consumer.stop().await;
    broker.close().await;
}
