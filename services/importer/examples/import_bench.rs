//! `make bench`: records per second from Salesforce to confirmed publish,
//! and the importer's peak memory.
//!
//! sfsim holds RECORDS Leads (`IMPORT_BENCH_RECORDS` to change it, e.g. to
//! see that peak memory does not grow with it) and adds PAGE_LATENCY to
//! every API call; the
//! token-broker runs in-process; the importer runs as its own process (the
//! release binary, so its peak RSS is its own). `customer.upsert` goes to a
//! queue that keeps the newest 1,000 (Front Agent's consumers are not what
//! is measured); the records counted are the confirmed ones each run's
//! `import.completed` reports as published. The org is connected, and
//! the clock runs from the connection to the `import.completed` that says
//! nothing more is pending: the first run and its catch-up runs, 2,000
//! records each. The page latency alone bounds the rate at 2,000 per
//! PAGE_LATENCY.
//!
//! In the same run, before and after the importer, a bare reader pages the
//! same query of the same org with the same latency (the query, then each
//! `nextRecordsUrl` as soon as it is known, the records thrown away): what
//! Salesforce's pace allows on this machine. The bench prints the
//! importer's rate as a share of the reader's (the mean of the two reads),
//! and the importer's CPU per 100,000 records (user plus system time of
//! its process from the registration to the end).
//!
//! `IMPORT_BENCH_IMPORTER=<path>` measures another build of the importer
//! (e.g. an older commit's) against the same org.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use futures_util::StreamExt as _;
use lapin::{
    Connection, ConnectionProperties,
    options::{BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use serde::de::IgnoredAny;
use tokio_util::sync::CancellationToken;

const RECORDS: usize = 100_000;
const PAGE_LATENCY_MS: u64 = 100;
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdefgh";
/// The importer's default `FA_SF_IMPORT_LOOKBACK`, so the reader's query is the importer's.
const LOOKBACK: Duration = Duration::from_secs(365 * 24 * 3600);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // IMPORT_BENCH_IMPORTER runs another build of the importer (an older
    // commit's, to compare side by side in one session on the same machine).
    let binary = match std::env::var_os("IMPORT_BENCH_IMPORTER") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/importer"),
    };
    anyhow::ensure!(
        binary.exists(),
        "{} does not exist: build it first with cargo build --release -p importer",
        binary.display()
    );
    let sfsim = sfsim::server::Server::start_local().await?;
    let org = sfsim::fixture::connected_org(&sfsim.sim, "Bench")?;
    let records = match std::env::var("IMPORT_BENCH_RECORDS") {
        Ok(n) => n.parse().map_err(|_| anyhow::anyhow!("IMPORT_BENCH_RECORDS={n:?} is not a number of records"))?,
        Err(_) => RECORDS,
    };
    sfsim::control::generate_into(&sfsim.sim, &org.org, records, 0, 0, 7, 300);
    let db = fa_testkit::TestDatabase::create().await?;
    let vhost = fa_testkit::TestVhost::create()?;

    // Front Agent's side, reduced to what the bench needs.
    let connection = Connection::connect(&vhost.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            "salesforce.sync".into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    // customer.upsert lands in a queue that keeps only the newest 1,000
    // (Front Agent's consumers are not what is measured); import.completed
    // in a queue this bench reads.
    let mut bounded = FieldTable::default();
    bounded.insert("x-max-length".into(), lapin::types::AMQPValue::LongLongInt(1000));
    channel.queue_declare("bench.upserts".into(), QueueDeclareOptions::default(), bounded).await?;
    channel
        .queue_bind(
            "bench.upserts".into(),
            "salesforce.sync".into(),
            "customer.upsert".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel.queue_declare("bench.completed".into(), QueueDeclareOptions::default(), FieldTable::default()).await?;
    channel
        .queue_bind(
            "bench.completed".into(),
            "salesforce.sync".into(),
            "import.completed".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            "bench.completed".into(),
            "bench".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let broker_port = listener.local_addr()?.port();
    let env = |extra: &[(&str, String)]| -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [
            ("FA_SF_AMQP_URL", vhost.url.clone()),
            ("FA_SF_DATABASE_URL", db.url.clone()),
            ("FA_SF_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            ("FA_SF_KEY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned()),
            ("FA_SF_LOGIN_URL_ALLOWLIST", "127.0.0.1:*".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    };
    let config = token_broker::Config::from_settings(&fa_runtime::Settings::from_env_map(env(&[]))?)?;
    let stop = CancellationToken::new();
    tokio::spawn(token_broker::run(config, fa_runtime::launch::Context { listener, shutdown: stop.clone() }));
    let importer_port = fa_testkit::process::free_port()?;
    let mut importer = fa_testkit::process::Service::start(
        &binary,
        &[],
        &env(&[
            ("FA_SF_HTTP_ADDR", format!("127.0.0.1:{importer_port}")),
            ("RUST_LOG", std::env::var("IMPORT_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned())),
        ]),
    )?;
    let http = reqwest::Client::new();
    for port in [broker_port, importer_port] {
        fa_testkit::service::wait_ready(port).await;
    }
    sfsim
        .sim
        .org(&org.org.id)
        .ok_or_else(|| anyhow::anyhow!("org"))?
        .faults
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .latency_ms = PAGE_LATENCY_MS;

    let before = bare_read(&sfsim, &org).await?;
    let pid = importer.pid();
    let cpu_before = cpu_seconds(&format!("/proc/{pid}/stat")).unwrap_or_default();
    let started = Instant::now();
    let registered = http
        .put(format!("http://127.0.0.1:{broker_port}/v1/tenants/bench/salesforce/connection"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({
            "consumer_key": org.consumer_key, "username": org.username, "private_key": org.keys.private_key_pem,
            "login_url": sfsim.url, "objects": ["Lead"],
        }))
        .send()
        .await?;
    anyhow::ensure!(registered.status() == 200, "registration failed: {}", registered.text().await?);

    let mut upserts = 0usize;
    let mut runs = 0usize;
    let mut peak_kib = 0u64;
    let mut sample = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            delivery = consumer.next() => {
                let Some(Ok(delivery)) = delivery else { anyhow::bail!("the consumer stopped") };
                runs += 1;
                let body: serde_json::Value = serde_json::from_slice(&delivery.data)?;
                anyhow::ensure!(body["status"] == "succeeded", "a run failed: {body}");
                upserts += body["objects"].as_array().map(|o| o.iter().filter_map(|c| c["published"].as_u64()).sum::<u64>()).unwrap_or(0) as usize;
                if body["more_pending"] == false { break }
            }
            _ = sample.tick() => peak_kib = peak_kib.max(vm_hwm_kib(pid).unwrap_or(0)),
        }
    }
    let took = started.elapsed();
    let cpu = cpu_seconds(&format!("/proc/{pid}/stat"))
        .map(|after| Cpu { user: after.user - cpu_before.user, system: after.system - cpu_before.system });
    peak_kib = peak_kib.max(vm_hwm_kib(pid).unwrap_or(0));
    let after = bare_read(&sfsim, &org).await?;
    let rate = upserts as f64 / took.as_secs_f64();
    let reader = (before.rate() + after.rate()) / 2.0;
    println!("import of {records} Leads, sfsim adding {PAGE_LATENCY_MS} ms to every call:");
    println!(
        "  {upserts} customer.upsert confirmed in {runs} runs, {:.1} s: {:.0} records/s (page latency bound: {} records/s)",
        took.as_secs_f64(),
        rate,
        2000 * 1000 / PAGE_LATENCY_MS
    );
    println!(
        "  bare reader of the same query: {:.0} records/s before, {:.0} after ({} records each)",
        before.rate(),
        after.rate(),
        before.records
    );
    println!("  importer rate / bare reader rate: {:.1} %", rate / reader * 100.0);
    println!("  importer peak RSS: {:.1} MiB", peak_kib as f64 / 1024.0);
    if let Some(Cpu { user, system }) = cpu {
        let cpu = user + system;
        println!(
            "  importer CPU: {cpu:.2} s over the run (user {user:.2}, system {system:.2}), {:.2} CPU-s per 100,000 \
             records ({:.1} µs a record; the rest of the 2 cores: RabbitMQ, sfsim, this consumer)",
            cpu / upserts as f64 * 100_000.0,
            cpu / upserts as f64 * 1e6
        );
    }
    importer.signal("TERM")?;
    let _ = importer.wait(Duration::from_secs(30));
    if std::env::var_os("IMPORT_BENCH_LOG").is_some() {
        let log = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/import_bench.log");
        std::fs::write(&log, importer.stdout())?;
        println!("  importer log: {}", log.display());
    }
    stop.cancel();
    Ok(())
}

/// What a bare read of the cursor took.
struct Read {
    records: usize,
    took: Duration,
}

impl Read {
    fn rate(&self) -> f64 {
        self.records as f64 / self.took.as_secs_f64()
    }
}

/// Pages the importer's query of `org` to its end as fast as Salesforce
/// answers: the query, then each `nextRecordsUrl` the moment its page is
/// read, the records thrown away. The session is sfsim's own, so no token
/// exchange is timed.
async fn bare_read(sfsim: &sfsim::server::Server, org: &sfsim::fixture::ConnectedOrg) -> anyhow::Result<Read> {
    let token = sfsim.sim.open_session(&org.org.id, &org.user_id);
    let client = fa_salesforce::Client::new(fa_salesforce::http_client()?, &sfsim.sim.instance_url(), token.into());
    let soql = importer::query::soql(fa_messages::SObject::Lead, time::OffsetDateTime::now_utc() - LOOKBACK);
    let started = Instant::now();
    let mut page = client.query_all::<IgnoredAny>(&soql).await?;
    let mut records = page.records.len();
    while let Some(url) = page.next_records_url {
        page = client.query_more::<IgnoredAny>(&url).await?;
        records += page.records.len();
    }
    Ok(Read { records, took: started.elapsed() })
}

/// CPU time of a process, in seconds.
#[derive(Default)]
struct Cpu {
    user: f64,
    system: f64,
}

/// User and system CPU time of a process, from its `/proc/<pid>/stat`.
fn cpu_seconds(path: &str) -> Option<Cpu> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let seconds = |field: usize| Some(fields.get(field)?.parse::<f64>().ok()? / 100.0);
    Some(Cpu { user: seconds(11)?, system: seconds(12)? })
}

/// The process's peak resident set size (`VmHWM`), in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
