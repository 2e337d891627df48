//! `make bench`: what the shared AMQP layer costs, against the local
//! RabbitMQ in a vhost of its own.
//!
//! Publishes MESSAGES messages with publisher confirms from CONCURRENCY tasks
//! (as a service's handlers do) and reports the rate and the confirm latency
//! (p50, p99); then consumes them all through a [`Handler`] that acks each,
//! and reports the rate.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use fa_amqp::{Broker, BrokerOptions, ConsumerOptions, ExchangeKind, Handler, Incoming, Outcome, Outgoing, Topology};
use secrecy::SecretString;

const MESSAGES: usize = 20_000;
const CONCURRENCY: usize = 32;
const QUEUE: &str = "bench.work";

struct Count(Arc<AtomicUsize>);

impl Handler for Count {
    async fn handle(&self, _: &Incoming) -> Outcome {
        self.0.fetch_add(1, Ordering::Relaxed);
        Outcome::Done
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let vhost = fa_testkit::TestVhost::create()?;
    let topology = Topology::new().exchange("bench.x", ExchangeKind::Topic).queue(QUEUE, &[("bench.x", "work")]);
    let broker = Broker::start(SecretString::from(vhost.url.clone()), "bench", topology, BrokerOptions::default());
    while broker.readiness().is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "tenant_id": "acme-jp", "customer": { "name": "佐藤 花子", "phones": [{ "number": "03-1234-5678", "e164": "+81312345678" }] }
    }))?;

    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|t| {
            let broker = broker.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(MESSAGES / CONCURRENCY);
                for i in (t..MESSAGES).step_by(CONCURRENCY) {
                    let out = Outgoing {
                        exchange: "bench.x".into(),
                        routing_key: "work".into(),
                        body: body.clone(),
                        message_id: format!("m-{i}"),
                        kind: Some("bench.v1".into()),
                        tenant_id: Some("acme-jp".into()),
                        headers: Default::default(),
                    };
                    let sent = Instant::now();
                    broker.publish_outgoing(out).await?;
                    latencies.push(sent.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(MESSAGES);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let publish_secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];

    let consumed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let consumer =
        broker.consume(ConsumerOptions { prefetch: 64, ..ConsumerOptions::new(QUEUE) }, Count(consumed.clone()));
    while consumed.load(Ordering::Relaxed) < MESSAGES {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let consume_secs = started.elapsed().as_secs_f64();
    consumer.stop().await;
    broker.close().await;

    println!("fa-amqp, {MESSAGES} messages of {} bytes, RabbitMQ on loopback, quorum queue", body.len());
    println!(
        "  publish with confirms ({CONCURRENCY} concurrent publishers): {:.0} msg/s; confirm latency p50 {:.2} ms, p99 {:.2} ms",
        MESSAGES as f64 / publish_secs,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    println!("  consume and ack (prefetch 64): {:.0} msg/s", MESSAGES as f64 / consume_secs);
    Ok(())
}
