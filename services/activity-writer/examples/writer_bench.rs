//! `make bench`: the activity-writer at saturation, and the same binary
//! with batching off as the baseline.
//!
//! Ten tenants, each its own org in sfsim (in this process, adding
//! LATENCY_MS to every API call); the token-broker in-process; the writer as
//! its own release process, so its peak RSS is its own. RabbitMQ and
//! PostgreSQL are the machine's, in a vhost and a database of their own.
//!
//! The load: EVENTS `assist.completed` offered open-loop at RATE per
//! second over the ten tenants, 70 % naming a Lead, 20 % a caller whose
//! number a Contact holds in another form, 10 % new callers; then a
//! trickle of one event a second for TRICKLE seconds
//! (`WRITER_BENCH_TRICKLE` to change it), in the same mix. Each event carries
//! a five-minute call's transcript (about 9 KB). The clock runs from
//! the first publish to the last `activity.written`; latency is from each
//! publish (before the broker's confirm) to its `activity.written`
//! arriving at this process, as Front Agent would see it.
//!
//! Then a backlog, as after an org outage: EVENTS more queued while no
//! writer runs, then one starts; the clock runs from its start. This is
//! saturation: full batches, and the writer's peak RSS with EVENTS queued.
//!
//! Checked, not only measured: every event gets exactly one Task, on the
//! Lead it names, the Contact whose number it gives, or a new Lead of its
//! own; the writer publishes no `activity.failed`.
//!
//! With `WRITER_BENCH_LOG` (a `RUST_LOG` filter, e.g.
//! `activity_writer=debug,fa_salesforce=debug`) each writer's log is kept
//! in `target/writer_bench-<pid>.log`: every Salesforce call and every
//! batch with its time.
//!
//! The baseline is the same binary with `FA_SF_WRITER_MAX_BATCH=1` and the
//! same mix, BASELINE_EVENTS of them (`WRITER_BENCH_BASELINE_EVENTS`): at
//! one event per batch it needs minutes for a thousand.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use fa_testkit::{TestDatabase, TestVhost, process::Service};
use futures_util::StreamExt as _;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{
        BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};
use serde_json::{Value, json};
use sfsim::{fixture::ConnectedOrg, server::Server};
use tokio_util::sync::CancellationToken;

const TENANTS: usize = 10;
const EVENTS: usize = 10_000;
const RATE: usize = 1_500;
const TRICKLE: usize = 30;
const BASELINE_EVENTS: usize = 1_000;
const LATENCY_MS: u64 = 150;
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdefgh";
/// Records seeded per tenant: enough Leads and Contacts for every event of
/// both runs to name or match one of its own.
const SEEDED: usize = 1_600;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/activity-writer");
    anyhow::ensure!(binary.exists(), "build it first: cargo build --release -p activity-writer");
    let baseline_events = match std::env::var("WRITER_BENCH_BASELINE_EVENTS") {
        Ok(n) => n.parse().map_err(|_| anyhow::anyhow!("WRITER_BENCH_BASELINE_EVENTS={n:?} is not a number"))?,
        Err(_) => BASELINE_EVENTS,
    };
    let trickle = match std::env::var("WRITER_BENCH_TRICKLE") {
        Ok(n) => n.parse().map_err(|_| anyhow::anyhow!("WRITER_BENCH_TRICKLE={n:?} is not a number of seconds"))?,
        Err(_) => TRICKLE,
    };
    let bench = Bench::start().await?;
    println!(
        "activity-writer: {TENANTS} tenants on sfsim adding {LATENCY_MS} ms to every API call, \
         {EVENTS} events offered at {RATE}/s (70 % naming a Lead, 20 % matched by phone, 10 % new), \
         then one a second for {trickle} s"
    );

    let batched = bench.run(&binary, 200, EVENTS, Mode::Live { trickle }).await?;
    batched.print("batched (cap 200)");
    let backlog = bench.run(&binary, 200, EVENTS, Mode::Backlog).await?;
    backlog.print(&format!("backlog: {EVENTS} events queued, then the writer started (cap 200)"));
    let baseline = bench.run(&binary, 1, baseline_events, Mode::Live { trickle: 0 }).await?;
    baseline.print(&format!("baseline, batching off (cap 1), {baseline_events} events"));
    println!(
        "batched / baseline: {:.0}x the events per second, {:.0}x fewer API calls per event",
        batched.rate / baseline.rate,
        baseline.calls_per_event / batched.calls_per_event
    );
    bench.stop.cancel();
    Ok(())
}

/// What one run printed.
struct Figures {
    events: usize,
    rate: f64,
    load: Option<Latencies>,
    trickle: Option<Latencies>,
    /// The slowest events of the trickle: latency, tenant, who called.
    trickle_slowest: Vec<(Duration, usize, &'static str)>,
    calls_per_event: f64,
    tasks_per_event: f64,
    wrong: usize,
    failed: usize,
    peak_mib: f64,
    cpu_s: Option<f64>,
    /// API calls by route, over the ten orgs.
    routes: BTreeMap<String, u64>,
}

impl Figures {
    fn print(&self, title: &str) {
        println!("{title}:");
        match &self.load {
            Some(load) => {
                println!("  sustained: {:.0} events/s (first publish to last activity.written)", self.rate);
                println!("  publish to written under load: {load}");
            }
            None => println!("  drained: {:.0} events/s (writer start to last activity.written)", self.rate),
        }
        if let Some(trickle) = &self.trickle {
            println!("  publish to written at the trickle: {trickle}");
            let slowest: Vec<String> = self
                .trickle_slowest
                .iter()
                .map(|(took, t, who)| format!("{} ms ({who}, tenant {t})", took.as_millis()))
                .collect();
            println!("  slowest at the trickle: {}", slowest.join(", "));
        }
        println!("  API calls per event, as the orgs count them: {:.4} ({} events)", self.calls_per_event, self.events);
        println!(
            "  Tasks per event: {:.4} (events without exactly one Task, or with one on the wrong record: {}; activity.failed: {})",
            self.tasks_per_event, self.wrong, self.failed
        );
        let routes: Vec<String> = self.routes.iter().map(|(route, n)| format!("{route} {n}")).collect();
        println!("  of which: {}", routes.join(", "));
        println!("  writer peak RSS: {:.1} MiB", self.peak_mib);
        if let Some(cpu) = self.cpu_s {
            println!("  writer CPU: {cpu:.1} s ({:.0} µs per event)", cpu * 1e6 / self.events as f64);
        }
    }
}

struct Latencies {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Latencies {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| samples.get(((samples.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
        Self { p50: at(0.5), p99: at(0.99), max: samples.last().copied().unwrap_or_default() }
    }
}

impl std::fmt::Display for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {} ms, p99 {} ms, max {} ms", self.p50.as_millis(), self.p99.as_millis(), self.max.as_millis())
    }
}

/// How the events reach the writer.
#[derive(Clone, Copy)]
enum Mode {
    /// Published at RATE while the writer runs, then `trickle` one a second.
    Live { trickle: usize },
    /// All queued before the writer starts (a backlog after an outage).
    Backlog,
}

/// Who an event is for, and where its Task must go.
#[derive(Clone)]
enum Expect {
    /// The Lead the event names.
    Record(String),
    /// A new Lead with this number.
    NewLead(String),
}

struct Tenant {
    name: String,
    org: ConnectedOrg,
    leads: Vec<String>,
    contacts: Vec<(String, String)>,
    next_lead: Mutex<usize>,
    next_contact: Mutex<usize>,
}

struct Bench {
    sfsim: Server,
    tenants: Vec<Tenant>,
    db: TestDatabase,
    vhost: TestVhost,
    stop: CancellationToken,
    publisher: Channel,
    /// Arrival time of each event's outcome, by event id: (routing key, when).
    arrived: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    _connection: Connection,
    serial: Mutex<usize>,
}

impl Bench {
    async fn start() -> anyhow::Result<Self> {
        let sfsim = Server::start_local().await?;
        let db = TestDatabase::create().await?;
        let vhost = TestVhost::create()?;

        let connection = Connection::connect(&vhost.url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        for (exchange, kind) in
            [("salesforce.sync", lapin::ExchangeKind::Topic), ("frontagent.assist", lapin::ExchangeKind::Topic)]
        {
            channel
                .exchange_declare(
                    exchange.into(),
                    kind,
                    ExchangeDeclareOptions { durable: true, ..Default::default() },
                    FieldTable::default(),
                )
                .await?;
        }
        channel.queue_declare("bench.outcomes".into(), QueueDeclareOptions::default(), FieldTable::default()).await?;
        for key in ["activity.written", "activity.failed"] {
            channel
                .queue_bind(
                    "bench.outcomes".into(),
                    "salesforce.sync".into(),
                    key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        // customer.linked goes to a queue that keeps the newest 1,000: the
        // publish is mandatory, so something must be bound.
        let mut bounded = FieldTable::default();
        bounded.insert("x-max-length".into(), AMQPValue::LongLongInt(1000));
        channel.queue_declare("bench.linked".into(), QueueDeclareOptions::default(), bounded).await?;
        channel
            .queue_bind(
                "bench.linked".into(),
                "salesforce.sync".into(),
                "customer.linked".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut consumer = channel
            .basic_consume(
                "bench.outcomes".into(),
                "bench".into(),
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
        let arrived: Arc<Mutex<HashMap<String, (String, Instant)>>> = Arc::default();
        let sink = arrived.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let when = Instant::now();
                let key = delivery.routing_key.as_str().to_owned();
                let Ok(body) = serde_json::from_slice::<Value>(&delivery.data) else { continue };
                if let Some(id) = body["event_id"].as_str()
                    && let Ok(mut arrived) = sink.lock()
                {
                    arrived.entry(id.to_owned()).or_insert((key, when));
                }
            }
        });
        let publisher = connection.create_channel().await?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let broker_port = listener.local_addr()?.port();
        let config = token_broker::Config::from_settings(&fa_runtime::Settings::from_env_map(env(
            &vhost,
            &db,
            &[
                ("FA_SF_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
                ("FA_SF_KEY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned()),
                ("FA_SF_LOGIN_URL_ALLOWLIST", "127.0.0.1:*".to_owned()),
            ],
        ))?)?;
        let stop = CancellationToken::new();
        tokio::spawn(token_broker::run(config, fa_runtime::launch::Context { listener, shutdown: stop.clone() }));
        fa_testkit::service::wait_ready(broker_port).await;

        let http = reqwest::Client::new();
        let mut tenants = Vec::new();
        for t in 0..TENANTS {
            let name = format!("bench-{t}");
            let org = sfsim::fixture::connected_org_with(
                &sfsim.sim,
                &format!("Bench{t}"),
                sfsim::store::Locale::JaJp,
                Some(1_000_000),
            )?;
            let admin = |path: String| {
                http.put(format!("http://127.0.0.1:{broker_port}/v1/tenants/{name}/{path}")).bearer_auth(ADMIN_TOKEN)
            };
            let response = admin("salesforce/connection".to_owned())
                .json(&json!({
                    "consumer_key": org.consumer_key, "username": org.username, "private_key": org.keys.private_key_pem,
                    "login_url": sfsim.url, "objects": ["Lead", "Contact", "Account"],
                }))
                .send()
                .await?;
            anyhow::ensure!(response.status() == 200, "connecting {name}: {}", response.text().await?);
            let user = sfsim
                .sim
                .create_user(
                    &org.org,
                    &sfsim::store::NewUser {
                        username: format!("sales@bench{t}.example.com"),
                        first_name: Some("営業".to_owned()),
                        last_name: "担当".to_owned(),
                        email: Some(format!("sales@bench{t}.example.com")),
                        active: true,
                        user_type: "Standard".to_owned(),
                    },
                )
                .map_err(|e| anyhow::anyhow!("creating a user: {e}"))?;
            let response =
                admin("user-links/u-1001".to_owned()).json(&json!({ "salesforce_user_id": user })).send().await?;
            anyhow::ensure!(response.status() == 200, "linking a user of {name}: {}", response.text().await?);
            let leads = seed(
                &http,
                &sfsim.url,
                &org.org.id,
                "Lead",
                (0..SEEDED)
                    .map(|i| json!({ "LastName": format!("見込{i}"), "Company": format!("株式会社ベンチ{t}"), "Phone": format!("06-6{t}{:02}-{:04}", i % 100, 1000 + i) }))
                    .collect(),
            )
            .await?;
            let numbers: Vec<String> = (0..SEEDED).map(|i| format!("03-5{t}{:02}-{:04}", i % 100, 1000 + i)).collect();
            let contact_ids = seed(
                &http,
                &sfsim.url,
                &org.org.id,
                "Contact",
                numbers
                    .iter()
                    .enumerate()
                    .map(|(i, n)| json!({ "LastName": format!("顧客{i}"), "Phone": n }))
                    .collect(),
            )
            .await?;
            let contacts = contact_ids.into_iter().zip(numbers.iter().map(|n| e164(n))).collect();
            tenants.push(Tenant { name, org, leads, contacts, next_lead: Mutex::new(0), next_contact: Mutex::new(0) });
        }
        for tenant in &tenants {
            sfsim
                .sim
                .org(&tenant.org.org.id)
                .ok_or_else(|| anyhow::anyhow!("org"))?
                .faults
                .lock()
                .map_err(|_| anyhow::anyhow!("faults"))?
                .latency_ms = LATENCY_MS;
        }
        Ok(Self { sfsim, tenants, db, vhost, stop, publisher, arrived, _connection: connection, serial: Mutex::new(0) })
    }

    /// The next event of the mix: its body and where its Task must go.
    fn next_event(&self) -> anyhow::Result<(Value, usize, Expect)> {
        let n = {
            let mut serial = self.serial.lock().map_err(|_| anyhow::anyhow!("serial"))?;
            *serial += 1;
            *serial
        };
        let t = n % TENANTS;
        let tenant = &self.tenants[t];
        let id = format!("as_bench{n:07}");
        // Each tenant's events go through the mix in turn, and so does
        // every run of ten consecutive events (the trickle's too: three of
        // its thirty are new callers, as in the load).
        let (customer, number, expect) = match (n / TENANTS + t) % 10 {
            0..=6 => {
                let mut next = tenant.next_lead.lock().map_err(|_| anyhow::anyhow!("lead"))?;
                let lead = tenant.leads.get(*next).ok_or_else(|| anyhow::anyhow!("seed more Leads"))?.clone();
                *next += 1;
                (
                    json!({ "id": format!("c-lead-{n}"), "name": "見込 客", "salesforce": { "object": "Lead", "id": lead } }),
                    None,
                    Expect::Record(lead),
                )
            }
            7 | 8 => {
                let mut next = tenant.next_contact.lock().map_err(|_| anyhow::anyhow!("contact"))?;
                let (contact, number) =
                    tenant.contacts.get(*next).ok_or_else(|| anyhow::anyhow!("seed more Contacts"))?.clone();
                *next += 1;
                (
                    json!({ "id": format!("c-known-{n}"), "name": "顧客 様", "phones": [number] }),
                    Some(number),
                    Expect::Record(contact),
                )
            }
            _ => {
                // A valid mobile number (070-1nnn-nnnn), so the caller is looked
                // for in Salesforce first, as a real new caller is.
                let number = format!("+81701{:07}", n);
                (
                    json!({ "id": format!("c-new-{n}"), "name": format!("新規 {n}"), "phones": [number] }),
                    Some(number.clone()),
                    Expect::NewLead(number),
                )
            }
        };
        let mut call = json!({
            "direction": "inbound",
            "started_at": "2026-12-03T00:55:00Z",
            "ended_at": "2026-12-03T01:00:00Z",
            "duration_seconds": 300,
        });
        if let Some(number) = number {
            call["customer_number"] = json!(number);
        }
        let event = json!({
            "event_id": id,
            "tenant_id": tenant.name,
            "occurred_at": "2026-12-03T01:00:00Z",
            "user": { "id": "u-1001", "name": "山田 太郎" },
            "customer": customer,
            "call": call,
            "assist": {
                "summary": "料金プランの見直しを希望。来週火曜に見積りを送付する。",
                "transcript": transcript(),
            }
        });
        Ok((event, t, expect))
    }

    async fn publish(&self, event: &Value) -> anyhow::Result<lapin::PublisherConfirm> {
        let id = event["event_id"].as_str().unwrap_or_default();
        let tenant = event["tenant_id"].as_str().unwrap_or_default();
        let mut headers = FieldTable::default();
        headers.insert(ShortString::from("tenant_id"), AMQPValue::LongString(tenant.into()));
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(id.into())
            .with_type("assist.completed.v1".into())
            .with_headers(headers);
        let body = serde_json::to_vec(event)?;
        Ok(self
            .publisher
            .basic_publish(
                "frontagent.assist".into(),
                "assist.completed".into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await?)
    }

    /// One writer process with batch cap `max_batch`: `events` at RATE,
    /// then `trickle` one a second.
    /// Starts a writer process with batch cap `max_batch`.
    async fn start_writer(&self, binary: &Path, max_batch: usize) -> anyhow::Result<Service> {
        let port = fa_testkit::process::free_port()?;
        let writer = Service::start(
            binary,
            &[],
            &env(
                &self.vhost,
                &self.db,
                &[
                    ("FA_SF_HTTP_ADDR", format!("127.0.0.1:{port}")),
                    ("FA_SF_WRITER_MAX_BATCH", max_batch.to_string()),
                    ("RUST_LOG", std::env::var("WRITER_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned())),
                ],
            ),
        )?;
        fa_testkit::service::wait_ready(port).await;
        Ok(writer)
    }

    /// One writer process with batch cap `max_batch`: `events` at RATE,
    /// then `trickle` one a second; or, for a backlog, `events` queued
    /// before the writer starts.
    async fn run(&self, binary: &Path, max_batch: usize, events: usize, mode: Mode) -> anyhow::Result<Figures> {
        let used_before: u64 = self.usage()?;
        let routes_before = self.routes()?;
        let mut writer = match mode {
            Mode::Live { .. } => Some(self.start_writer(binary, max_batch).await?),
            Mode::Backlog => None,
        };
        let trickle = match mode {
            Mode::Live { trickle } => trickle,
            Mode::Backlog => 0,
        };

        // The load, open-loop: a tick every 10 ms publishes its share;
        // confirms are awaited elsewhere, never one at a time. A backlog
        // is published as fast as the broker confirms.
        let mut sent: Vec<(String, Instant, usize, Expect)> = Vec::with_capacity(events + trickle);
        let (confirms_tx, mut confirms_rx) = tokio::sync::mpsc::unbounded_channel::<lapin::PublisherConfirm>();
        let confirmed = tokio::spawn(async move {
            let mut n = 0usize;
            while let Some(confirm) = confirms_rx.recv().await {
                confirm.await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
        let per_tick = match mode {
            Mode::Live { .. } => RATE / 100,
            Mode::Backlog => events,
        };
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut peak_kib = 0u64;
        while sent.len() < events {
            tick.tick().await;
            for _ in 0..per_tick.min(events - sent.len()) {
                let (event, t, expect) = self.next_event()?;
                let id = event["event_id"].as_str().unwrap_or_default().to_owned();
                let at = Instant::now();
                confirms_tx.send(self.publish(&event).await?).map_err(|_| anyhow::anyhow!("confirms"))?;
                sent.push((id, at, t, expect));
            }
            if let Some(writer) = &writer
                && sent.len().is_multiple_of(300)
            {
                peak_kib = peak_kib.max(vm_hwm_kib(writer.pid()).unwrap_or(0));
            }
        }
        let mut first = sent.first().map(|s| s.1).unwrap_or_else(Instant::now);
        let writer = match writer.take() {
            Some(writer) => writer,
            None => {
                // Every event queued, then the writer starts: the clock
                // runs from its start.
                drop(confirms_tx);
                let confirmed = confirmed.await??;
                anyhow::ensure!(confirmed == events, "{confirmed} of {events} publishes confirmed");
                first = Instant::now();
                let writer = self.start_writer(binary, max_batch).await?;
                return self.finish(writer, first, sent, events, used_before, routes_before).await;
            }
        };
        let pid = writer.pid();
        let ids: Vec<String> = sent.iter().map(|s| s.0.clone()).collect();
        let last = self.wait_for(&ids, pid, &mut peak_kib).await?;
        let rate = events as f64 / (last - first).as_secs_f64();
        let load = Latencies::of(self.latencies(&sent)?);

        let mut trickled = Vec::new();
        for _ in 0..trickle {
            let (event, t, expect) = self.next_event()?;
            let id = event["event_id"].as_str().unwrap_or_default().to_owned();
            let at = Instant::now();
            confirms_tx.send(self.publish(&event).await?).map_err(|_| anyhow::anyhow!("confirms"))?;
            trickled.push((id, at, t, expect));
            tokio::time::sleep_until((at + Duration::from_secs(1)).into()).await;
        }
        if !trickled.is_empty() {
            let ids: Vec<String> = trickled.iter().map(|s| s.0.clone()).collect();
            self.wait_for(&ids, pid, &mut peak_kib).await?;
        }
        drop(confirms_tx);
        let confirmed = confirmed.await??;
        anyhow::ensure!(confirmed == events + trickle, "{confirmed} of {} publishes confirmed", events + trickle);
        let trickle_latencies =
            (!trickled.is_empty()).then(|| self.latencies(&trickled)).transpose()?.map(Latencies::of);
        let mut trickle_slowest: Vec<(Duration, usize, &'static str)> = {
            let arrived = self.arrived.lock().map_err(|_| anyhow::anyhow!("arrived"))?;
            trickled
                .iter()
                .filter_map(|(id, at, t, expect)| {
                    let who = match expect {
                        Expect::Record(_) => "known caller",
                        Expect::NewLead(_) => "new caller",
                    };
                    arrived.get(id).map(|a| (a.1.saturating_duration_since(*at), *t, who))
                })
                .collect()
        };
        trickle_slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
        trickle_slowest.truncate(3);
        sent.extend(trickled);
        let mut figures = self.finish(writer, first, sent, events, used_before, routes_before).await?;
        figures.rate = rate;
        figures.load = Some(load);
        figures.trickle = trickle_latencies;
        figures.trickle_slowest = trickle_slowest;
        Ok(figures)
    }

    /// Waits for every event of `sent`, stops the writer and checks the
    /// Tasks; the rate is from `first` to the last outcome, latencies are
    /// the caller's to add.
    async fn finish(
        &self,
        mut writer: Service,
        first: Instant,
        sent: Vec<(String, Instant, usize, Expect)>,
        events: usize,
        used_before: u64,
        routes_before: BTreeMap<String, u64>,
    ) -> anyhow::Result<Figures> {
        let pid = writer.pid();
        let mut peak_kib = vm_hwm_kib(pid).unwrap_or(0);
        let ids: Vec<String> = sent.iter().map(|s| s.0.clone()).collect();
        let last = self.wait_for(&ids, pid, &mut peak_kib).await?;
        let rate = events as f64 / (last - first).as_secs_f64();
        let calls = self.usage()? - used_before;
        let mut routes = self.routes()?;
        for (route, n) in routes_before {
            if let Some(now) = routes.get_mut(&route) {
                *now -= n;
            }
        }
        routes.retain(|_, n| *n > 0);
        peak_kib = peak_kib.max(vm_hwm_kib(pid).unwrap_or(0));
        let cpu_s = cpu_seconds(pid);
        writer.signal("TERM")?;
        let _ = writer.wait(Duration::from_secs(30));
        if std::env::var_os("WRITER_BENCH_LOG").is_some() {
            let log = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/writer_bench-{pid}.log"));
            std::fs::write(&log, writer.stdout())?;
            eprintln!("  writer log: {}", log.display());
        }

        let failed = {
            let arrived = self.arrived.lock().map_err(|_| anyhow::anyhow!("arrived"))?;
            sent.iter().filter(|s| arrived.get(&s.0).is_some_and(|(key, _)| key == "activity.failed")).count()
        };
        let (tasks, wrong) = self.check_tasks(&sent).await?;
        Ok(Figures {
            events: sent.len(),
            rate,
            load: None,
            trickle: None,
            trickle_slowest: Vec::new(),
            calls_per_event: calls as f64 / sent.len() as f64,
            tasks_per_event: tasks as f64 / sent.len() as f64,
            wrong,
            failed,
            peak_mib: peak_kib as f64 / 1024.0,
            cpu_s,
            routes,
        })
    }

    /// Waits until every one of `ids` has an outcome; when the last came.
    async fn wait_for(&self, ids: &[String], pid: u32, peak_kib: &mut u64) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(1800);
        let mut report = Instant::now();
        loop {
            let (missing, last) = {
                let arrived = self.arrived.lock().map_err(|_| anyhow::anyhow!("arrived"))?;
                let missing = ids.iter().filter(|id| !arrived.contains_key(*id)).count();
                let last = ids.iter().filter_map(|id| arrived.get(id).map(|a| a.1)).max();
                (missing, last)
            };
            *peak_kib = (*peak_kib).max(vm_hwm_kib(pid).unwrap_or(0));
            if missing == 0 {
                return last.ok_or_else(|| anyhow::anyhow!("no events"));
            }
            anyhow::ensure!(Instant::now() < deadline, "{missing} events without an outcome after 30 minutes");
            if report.elapsed() > Duration::from_secs(10) {
                eprintln!("  ... {} of {} events settled", ids.len() - missing, ids.len());
                report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn latencies(&self, sent: &[(String, Instant, usize, Expect)]) -> anyhow::Result<Vec<Duration>> {
        let arrived = self.arrived.lock().map_err(|_| anyhow::anyhow!("arrived"))?;
        Ok(sent
            .iter()
            .filter_map(|(id, at, _, _)| arrived.get(id).map(|a| a.1.saturating_duration_since(*at)))
            .collect())
    }

    /// API calls the ten orgs have counted so far.
    fn usage(&self) -> anyhow::Result<u64> {
        self.tenants
            .iter()
            .map(|t| Ok(self.sfsim.sim.org(&t.org.org.id).ok_or_else(|| anyhow::anyhow!("org"))?.usage().0))
            .sum()
    }

    /// API calls so far by route, over the ten orgs.
    fn routes(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut all = BTreeMap::new();
        for tenant in &self.tenants {
            let org = self.sfsim.sim.org(&tenant.org.org.id).ok_or_else(|| anyhow::anyhow!("org"))?;
            for (route, n) in org.calls() {
                *all.entry(route).or_default() += n;
            }
        }
        Ok(all)
    }

    /// Tasks written for `sent`, and how many events do not have exactly
    /// one, on the record they must be on.
    async fn check_tasks(&self, sent: &[(String, Instant, usize, Expect)]) -> anyhow::Result<(usize, usize)> {
        let http = reqwest::Client::new();
        let mut by_event: HashMap<String, Vec<String>> = HashMap::new();
        let mut lead_phone: HashMap<String, String> = HashMap::new();
        for tenant in &self.tenants {
            for task in records(&http, &self.sfsim.url, &tenant.org.org.id, "Task").await? {
                if let (Some(call), Some(who)) = (task["CallObject"].as_str(), task["WhoId"].as_str()) {
                    by_event.entry(call.to_owned()).or_default().push(who.to_owned());
                }
            }
            for lead in records(&http, &self.sfsim.url, &tenant.org.org.id, "Lead").await? {
                if let (Some(id), Some(phone)) = (lead["Id"].as_str(), lead["Phone"].as_str()) {
                    lead_phone.insert(id.to_owned(), phone.to_owned());
                }
            }
        }
        let mut tasks = 0;
        let mut wrong = 0;
        for (id, _, _, expect) in sent {
            let whos = by_event.get(id).map(Vec::as_slice).unwrap_or_default();
            tasks += whos.len();
            let right = match (whos, expect) {
                ([who], Expect::Record(record)) => who == record,
                ([who], Expect::NewLead(number)) => lead_phone.get(who).is_some_and(|p| e164(p) == *number),
                _ => false,
            };
            if !right {
                wrong += 1;
            }
        }
        Ok((tasks, wrong))
    }
}

/// A five-minute call's transcript: 60 turns, about 2,400 characters,
/// about 9 KB of the event's body, as Front Agent sends them.
fn transcript() -> Value {
    let turns: Vec<Value> = (0..60)
        .map(|i| {
            let (speaker, text) = if i % 2 == 0 {
                ("agent", "お世話になっております。先日お送りした料金プランの資料はご覧いただけましたでしょうか。")
            } else {
                ("customer", "はい、拝見しました。現在の契約と比べてどのくらい変わるのか教えていただけますか。")
            };
            json!({ "speaker": speaker, "text": text, "offset_seconds": f64::from(i) * 5.0 })
        })
        .collect();
    Value::Array(turns)
}

/// The environment of the token-broker and the writer.
fn env(vhost: &TestVhost, db: &TestDatabase, extra: &[(&str, String)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("FA_SF_AMQP_URL", vhost.url.clone()),
        ("FA_SF_DATABASE_URL", db.url.clone()),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

/// `03-1234-5678` as `+81312345678`.
fn e164(national: &str) -> String {
    let digits: String = national.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix('0') {
        Some(rest) => format!("+81{rest}"),
        None => format!("+{digits}"),
    }
}

/// Seeds records through sfsim's control API; their ids.
async fn seed(
    http: &reqwest::Client,
    url: &str,
    org: &str,
    object: &str,
    records: Vec<Value>,
) -> anyhow::Result<Vec<String>> {
    let response = http.post(format!("{url}/sfsim/orgs/{org}/records/{object}")).json(&records).send().await?;
    anyhow::ensure!(response.status() == 201, "seeding {object}: {}", response.text().await?);
    let body: Value = response.json().await?;
    Ok(body["ids"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}

/// Every record of `object` in the org, through sfsim's control API.
async fn records(http: &reqwest::Client, url: &str, org: &str, object: &str) -> anyhow::Result<Vec<Value>> {
    let body: Value = http.get(format!("{url}/sfsim/orgs/{org}/records/{object}")).send().await?.json().await?;
    Ok(match body {
        Value::Array(items) => items,
        other => other["records"].as_array().cloned().unwrap_or_default(),
    })
}

/// User plus system CPU time of a process, from its `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The process's peak resident set size (`VmHWM`), in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
