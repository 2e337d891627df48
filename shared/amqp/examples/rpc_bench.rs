//! What a request/reply round trip costs, against the local RabbitMQ in a
//! vhost of its own.
//!
//! A server answers a fixed 200-byte body from memory (as token-broker
//! answers from its cache); a caller on a connection of its own sends
//! RATE requests per second open-loop (one every 1 ms from a ticker, each
//! in a task of its own, whether or not earlier ones have been answered),
//! for a warm-up second and then MEASURED seconds, and reports the latency
//! percentiles (from each request's scheduled time, so a stall counts
//! against every request it delays) and the achieved rate.

use std::time::{Duration, Instant};

use fa_amqp::{Broker, BrokerOptions, RpcClient, RpcHandler, RpcRequest, RpcServerOptions, Topology};
use secrecy::SecretString;

const RATE: u64 = 1_000;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURED: Duration = Duration::from_secs(10);
const QUEUE: &str = "bench.rpc";

struct Cached(Vec<u8>);

impl RpcHandler for Cached {
    async fn handle(&self, _: &RpcRequest) -> Vec<u8> {
        self.0.clone()
    }
}

async fn connected(broker: &Broker) {
    while broker.readiness().is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let vhost = fa_testkit::TestVhost::create()?;
    let url = || SecretString::from(vhost.url.clone());
    let server_side = Broker::start(url(), "bench-server", Topology::new().rpc_queue(QUEUE), BrokerOptions::default());
    let caller_side = Broker::start(url(), "bench-caller", Topology::new(), BrokerOptions::default());
    connected(&server_side).await;
    connected(&caller_side).await;
    let server = server_side.serve_rpc(RpcServerOptions::new(QUEUE), Cached(vec![b'x'; 200]));
    while server.readiness().is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = RpcClient::new(caller_side.clone());
    let request = serde_json::to_vec(&serde_json::json!({ "tenant_id": "acme-jp", "audience": "salesforce" }))?;

    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let started = Instant::now();
    let mut calls = Vec::new();
    loop {
        let scheduled = ticker.tick().await.into_std();
        let since_start = scheduled.duration_since(started);
        if since_start >= WARM_UP + MEASURED {
            break;
        }
        let measured = since_start >= WARM_UP;
        let client = client.clone();
        let body = request.clone();
        calls.push(tokio::spawn(async move {
            let outcome = client.call(QUEUE, body, Some("acme-jp"), Duration::from_secs(5)).await;
            (measured, outcome.is_ok(), scheduled.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for call in calls {
        let (measured, ok, latency) = call.await?;
        if !measured {
            continue;
        }
        if ok {
            latencies.push(latency);
        } else {
            failed += 1;
        }
    }
    server.stop().await;
    server_side.close().await;
    caller_side.close().await;

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "fa-amqp RPC, {}-byte requests, 200-byte replies from memory, RabbitMQ on loopback, classic queue, direct reply-to",
        request.len()
    );
    println!(
        "  open loop at {RATE}/s for {}s after {}s of warm-up: {} answered ({:.0}/s), {failed} failed",
        MEASURED.as_secs(),
        WARM_UP.as_secs(),
        latencies.len(),
        latencies.len() as f64 / MEASURED.as_secs_f64()
    );
    println!(
        "  round trip p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    Ok(())
}
