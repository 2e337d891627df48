//! `make bench`: a token request's round trip from the token-broker's cache.
//!
//! Starts sfsim, a database and a vhost of its own, and the token-broker as
//! its own process (the release binary, as it runs in its own pod);
//! connects one org through the admin API; then sends token
//! requests over RabbitMQ at a fixed RATE per second for SECONDS (open loop:
//! one request every 1/RATE s, whether or not earlier ones have answered, so
//! a slow answer cannot hide the queueing behind it) and reports p50, p90,
//! p99 and the maximum. The callers' own cache (`fa_tokens::TokenClient`)
//! is bypassed: every request crosses RabbitMQ to the broker and back.

use std::time::{Duration, Instant};

use fa_amqp::{Broker, BrokerOptions, RpcClient, Topology};
use secrecy::SecretString;

const RATE: u64 = 1_000;
const WARM_UP: Duration = Duration::from_secs(2);
const SECONDS: u64 = 10;
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdefgh";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sfsim = sfsim::server::Server::start_local().await?;
    let org = sfsim::fixture::connected_org(&sfsim.sim, "Bench")?;
    let db = fa_testkit::TestDatabase::create().await?;
    let vhost = fa_testkit::TestVhost::create()?;

    let binary = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/token-broker");
    anyhow::ensure!(binary.exists(), "build it first: cargo build --release -p token-broker");
    let port = fa_testkit::process::free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let env: std::collections::HashMap<String, String> = [
        ("FA_SF_AMQP_URL", vhost.url.as_str()),
        ("FA_SF_DATABASE_URL", db.url.as_str()),
        ("FA_SF_ADMIN_TOKEN", ADMIN_TOKEN),
        ("FA_SF_KEY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ("FA_SF_LOGIN_URL_ALLOWLIST", "127.0.0.1:*"),
        ("FA_SF_HTTP_ADDR", addr.as_str()),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut service = fa_testkit::process::Service::start(&binary, &[], &env)?;

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    fa_testkit::service::wait_ready(port).await;
    let registered = http
        .put(format!("{base}/v1/tenants/bench/salesforce/connection"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({
            "consumer_key": org.consumer_key, "username": org.username, "private_key": org.keys.private_key_pem,
            "login_url": sfsim.url, "objects": ["Lead"],
        }))
        .send()
        .await?;
    anyhow::ensure!(registered.status() == 200, "registration failed: {}", registered.text().await?);

    let broker =
        Broker::start(SecretString::from(vhost.url.clone()), "bench", Topology::new(), BrokerOptions::default());
    let client = RpcClient::new(broker.clone());
    let body = br#"{"tenant_id":"bench"}"#.to_vec();

    let run = |duration: Duration| {
        let client = client.clone();
        let body = body.clone();
        async move {
            let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let started = Instant::now();
            let mut calls = Vec::new();
            while started.elapsed() < duration {
                ticker.tick().await;
                let client = client.clone();
                let body = body.clone();
                calls.push(tokio::spawn(async move {
                    let sent = Instant::now();
                    let reply = client.call(fa_tokens::QUEUE, body, Some("bench"), Duration::from_secs(5)).await;
                    (sent.elapsed(), reply.map(|r| r.starts_with(br#"{"result":"token""#)).unwrap_or(false))
                }));
            }
            let mut latencies = Vec::with_capacity(calls.len());
            let mut failed = 0;
            for call in calls {
                let (took, ok) = call.await?;
                if ok { latencies.push(took) } else { failed += 1 }
            }
            anyhow::Ok((latencies, failed, started.elapsed()))
        }
    };
    run(WARM_UP).await?;
    let (mut latencies, failed, took) = run(Duration::from_secs(SECONDS)).await?;
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!("token request round trip from the broker's cache, open loop at {RATE}/s for {SECONDS}s:");
    println!(
        "  {} answered ({:.0}/s), {failed} failed; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / took.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.90).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
    );
    println!("  token exchanges at Salesforce during the run: {}", sfsim.sim.logins(&org.org.id));

    // What the importer and the writer see: fa_tokens::TokenClient answers
    // from its own cache after the first request.
    let tokens = fa_tokens::TokenClient::new(broker.clone(), Duration::from_secs(5));
    tokens.token("bench").await?;
    let mut local = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let sent = Instant::now();
        tokens.token("bench").await?;
        local.push(sent.elapsed());
    }
    local.sort();
    let at_local = |q: f64| local[((local.len() as f64 - 1.0) * q) as usize];
    println!(
        "  fa_tokens::TokenClient from its local cache: p50 {:.1} µs, p99 {:.1} µs",
        at_local(0.50).as_secs_f64() * 1e6,
        at_local(0.99).as_secs_f64() * 1e6
    );

    service.signal("TERM")?;
    let _ = service.wait(Duration::from_secs(30));
    broker.close().await;
    Ok(())
}
