//! An activity-writer process with the token-broker (in-process), a
//! database, a vhost and a simulated org. Events are published to
//! `frontagent.assist` as Front Agent publishes them; what the writer
//! publishes is read from a queue of the test's own bound to
//! `salesforce.sync`, as Front Agent binds its queues; the Tasks are read
//! back from sfsim.

#![allow(dead_code)]

use std::{collections::HashMap, path::Path, time::Duration};

use fa_testkit::{TestDatabase, TestVhost, process::Service};
use futures_util::StreamExt as _;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use serde_json::{Value, json};
use sfsim::{fixture::ConnectedOrg, server::Server};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const ADMIN_TOKEN: &str = "test-admin-token-writer-0123456789ab";
pub const TENANT: &str = "acme";

pub struct Stack {
    pub sfsim: Server,
    pub org: ConnectedOrg,
    pub db: TestDatabase,
    pub vhost: TestVhost,
    pub broker_port: u16,
    pub writers: Vec<(Service, u16)>,
    env: HashMap<String, String>,
    broker_stop: CancellationToken,
    pub http: reqwest::Client,
    /// Everything published to `salesforce.sync`, as (routing key, body).
    pub sync: mpsc::UnboundedReceiver<(String, Value)>,
    /// Every message read from `sync` so far.
    pub seen: Vec<(String, Value)>,
    publisher: Channel,
    _channel: Channel,
    _connection: Connection,
}

impl Stack {
    /// Starts sfsim, the token-broker, the database and the vhost, and
    /// connects the org for `objects`; no writer yet.
    pub async fn start(objects: &[&str]) -> Self {
        let sfsim = Server::start_local().await.expect("sfsim");
        let org = sfsim::fixture::connected_org(&sfsim.sim, "Acme").expect("org");
        Self::start_with(sfsim, org, objects).await
    }

    pub async fn start_with(sfsim: Server, org: ConnectedOrg, objects: &[&str]) -> Self {
        let db = TestDatabase::create().await.expect("database");
        let vhost = TestVhost::create().expect("vhost");

        let connection = Connection::connect(&vhost.url, ConnectionProperties::default()).await.expect("amqp");
        let channel = connection.create_channel().await.expect("channel");
        for (exchange, kind) in
            [("salesforce.sync", lapin::ExchangeKind::Topic), ("frontagent.assist", lapin::ExchangeKind::Topic)]
        {
            channel
                .exchange_declare(
                    exchange.into(),
                    kind,
                    lapin::options::ExchangeDeclareOptions { durable: true, ..Default::default() },
                    FieldTable::default(),
                )
                .await
                .expect("exchange");
        }
        channel
            .queue_declare("frontagent.test".into(), QueueDeclareOptions::default(), FieldTable::default())
            .await
            .expect("queue");
        channel
            .queue_bind(
                "frontagent.test".into(),
                "salesforce.sync".into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        let mut consumer = channel
            .basic_consume(
                "frontagent.test".into(),
                "test".into(),
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let (tx, sync) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let key = delivery.routing_key.as_str().to_owned();
                let body: Value = serde_json::from_slice(&delivery.data).expect("JSON");
                if tx.send((key, body)).is_err() {
                    break;
                }
            }
        });
        let publisher = connection.create_channel().await.expect("channel");
        publisher.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let broker_port = listener.local_addr().expect("addr").port();
        // Each service logs in as its own RabbitMQ user with production's
        // rights (deploy/rabbitmq/permissions).
        let broker_amqp = vhost.service_url("token-broker").expect("the token-broker's RabbitMQ user");
        let service_amqp = vhost.service_url("activity-writer").expect("the activity-writer's RabbitMQ user");
        let requesters = vhost.service_user("activity-writer");
        let broker_env: HashMap<String, String> = [
            ("FA_SF_AMQP_URL", broker_amqp.as_str()),
            ("FA_SF_TOKEN_REQUESTERS", requesters.as_str()),
            ("FA_SF_DATABASE_URL", db.url.as_str()),
            ("FA_SF_ADMIN_TOKEN", ADMIN_TOKEN),
            ("FA_SF_KEY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
            ("FA_SF_LOGIN_URL_ALLOWLIST", "127.0.0.1:*"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config =
            token_broker::Config::from_settings(&fa_runtime::Settings::from_env_map(broker_env).expect("settings"))
                .expect("config");
        // As production's launch does before the service starts: without the
        // recorder installed, what the broker counts before its first scrape
        // (the token exchange at connect) is lost, and `fa_build_info` is
        // never set.
        fa_runtime::metrics::start("token-broker", env!("CARGO_PKG_VERSION"));
        let broker_stop = CancellationToken::new();
        let ctx = fa_runtime::launch::Context { listener, shutdown: broker_stop.clone() };
        tokio::spawn(async move {
            if let Err(e) = token_broker::run(config, ctx).await {
                eprintln!("token-broker stopped: {e:#}");
            }
        });

        let env: HashMap<String, String> = [
            ("FA_SF_AMQP_URL", service_amqp.as_str()),
            ("FA_SF_DATABASE_URL", db.url.as_str()),
            ("RUST_LOG", "info,activity_writer=debug"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let stack = Self {
            sfsim,
            org,
            db,
            vhost,
            broker_port,
            writers: Vec::new(),
            env,
            broker_stop,
            http: reqwest::Client::new(),
            sync,
            seen: Vec::new(),
            publisher,
            _channel: channel,
            _connection: connection,
        };
        fa_testkit::service::wait_ready(broker_port).await;
        stack.connect(objects).await;
        stack
    }

    /// Starts one more writer process; its index in `writers`.
    pub async fn start_writer(&mut self) -> usize {
        let port = fa_testkit::process::free_port().expect("port");
        let mut env = self.env.clone();
        env.insert("FA_SF_HTTP_ADDR".to_owned(), format!("127.0.0.1:{port}"));
        let service =
            Service::start(Path::new(env!("CARGO_BIN_EXE_activity-writer")), &[], &env).expect("the writer starts");
        fa_testkit::service::wait_ready(port).await;
        self.writers.push((service, port));
        self.writers.len() - 1
    }

    /// `kill -9` of writer `i`: no goodbye.
    pub fn kill_writer(&mut self, i: usize) {
        let (service, _) = &mut self.writers[i];
        service.signal("KILL").expect("kill -9");
        let _ = service.wait(Duration::from_secs(10));
    }

    /// Stops writer `i` as Kubernetes does (SIGTERM) and waits for it.
    pub fn stop_writer(&mut self, i: usize) {
        let (service, _) = &mut self.writers[i];
        service.signal("TERM").expect("SIGTERM");
        let _ = service.wait(Duration::from_secs(30));
    }

    /// `/metrics` of writer `i`.
    pub async fn metrics(&self, i: usize) -> String {
        let port = self.writers[i].1;
        let response = self.http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.expect("metrics");
        response.text().await.expect("text")
    }

    /// Writer `i`'s `/metrics` once every line of `expected` is in it: the
    /// writer counts an event after it has published its result and acked
    /// it, so a test that has just read the result waits a moment for the
    /// count. Panics, with the text, after 10 s.
    pub async fn metrics_with(&self, i: usize, expected: &[&str]) -> String {
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let metrics = self.metrics(i).await;
            let missing: Vec<&&str> = expected.iter().filter(|e| !metrics.lines().any(|l| l == **e)).collect();
            if missing.is_empty() {
                return metrics;
            }
            assert!(tokio::time::Instant::now() < until, "{missing:?} missing from\n{metrics}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn writer_logs(&self) -> String {
        self.writers.iter().map(|(s, _)| format!("{}\n{}", s.stdout(), s.stderr())).collect::<Vec<_>>().join("\n----\n")
    }

    /// Changes the org's faults (latency, injected errors).
    pub fn faults(&self, change: impl FnOnce(&mut sfsim::store::Faults)) {
        let org = self.sfsim.sim.org(&self.org.org.id).expect("org");
        change(&mut org.faults.lock().expect("faults"));
    }

    /// Connects the org through the token-broker's admin API.
    pub async fn connect(&self, objects: &[&str]) {
        self.connect_as(TENANT, &self.org, objects).await;
    }

    /// Another org in the same sfsim, connected as `tenant`.
    pub async fn other_tenant(&self, tenant: &str, name: &str, objects: &[&str]) -> ConnectedOrg {
        let org = sfsim::fixture::connected_org(&self.sfsim.sim, name).expect("org");
        self.connect_as(tenant, &org, objects).await;
        org
    }

    /// Connects `org` as `tenant` through the token-broker's admin API.
    pub async fn connect_as(&self, tenant: &str, org: &ConnectedOrg, objects: &[&str]) {
        let response = self
            .http
            .put(format!("http://127.0.0.1:{}/v1/tenants/{tenant}/salesforce/connection", self.broker_port))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({
                "consumer_key": org.consumer_key, "username": org.username,
                "private_key": org.keys.private_key_pem, "login_url": self.sfsim.url, "objects": objects,
            }))
            .send()
            .await
            .expect("the broker answers");
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    }

    /// Links Front Agent user `user_id` to Salesforce user `salesforce_user_id`.
    pub async fn link_user(&self, user_id: &str, salesforce_user_id: &str) {
        let response = self
            .http
            .put(format!("http://127.0.0.1:{}/v1/tenants/{TENANT}/user-links/{user_id}", self.broker_port))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "salesforce_user_id": salesforce_user_id }))
            .send()
            .await
            .expect("the broker answers");
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    }

    /// A new active Standard user of the org; its id.
    pub fn create_user(&self, last_name: &str) -> String {
        let user = sfsim::store::NewUser {
            username: format!("{}@acme.example.com", uuid::Uuid::new_v4().simple()),
            first_name: Some("営業".to_owned()),
            last_name: last_name.to_owned(),
            email: Some("sales@acme.example.com".to_owned()),
            active: true,
            user_type: "Standard".to_owned(),
        };
        self.sfsim.sim.create_user(&self.org.org, &user).expect("user")
    }

    /// Seeds records straight into the org; their ids.
    pub async fn seed(&self, object: &str, records: Value) -> Vec<String> {
        self.seed_in(&self.org.org.id, object, records).await
    }

    /// Seeds records straight into org `org_id`; their ids.
    pub async fn seed_in(&self, org_id: &str, object: &str, records: Value) -> Vec<String> {
        let response = self
            .http
            .post(format!("{}/sfsim/orgs/{org_id}/records/{object}", self.sfsim.url))
            .json(&records)
            .send()
            .await
            .expect("sfsim answers");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(status, 201, "{body}");
        body["ids"].as_array().expect("ids").iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
    }

    /// Every record of `object` in the org, as sfsim holds them.
    pub async fn records(&self, object: &str) -> Vec<Value> {
        self.records_in(&self.org.org.id, object).await
    }

    /// Every record of `object` in org `org_id`.
    pub async fn records_in(&self, org_id: &str, object: &str) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/sfsim/orgs/{org_id}/records/{object}", self.sfsim.url))
            .send()
            .await
            .expect("sfsim answers");
        let body: Value = response.json().await.expect("JSON");
        match body {
            Value::Array(items) => items,
            other => other["records"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// The org's live Tasks (not deleted).
    pub async fn tasks(&self) -> Vec<Value> {
        self.tasks_in(&self.org.org.id).await
    }

    /// The live Tasks of org `org_id`.
    pub async fn tasks_in(&self, org_id: &str) -> Vec<Value> {
        self.records_in(org_id, "Task").await.into_iter().filter(|t| t["IsDeleted"] != json!(true)).collect()
    }

    /// Changes the faults of org `org_id`.
    pub fn faults_of(&self, org_id: &str, change: impl FnOnce(&mut sfsim::store::Faults)) {
        let org = self.sfsim.sim.org(org_id).expect("org");
        change(&mut org.faults.lock().expect("faults"));
    }

    /// Publishes an event as Front Agent does (persistent, `message_id` the
    /// event id, `tenant_id` header), confirmed.
    pub async fn publish(&self, event: &Value) {
        let id = event["event_id"].as_str().unwrap_or("no-id").to_owned();
        let tenant = event["tenant_id"].as_str().unwrap_or(TENANT).to_owned();
        self.publish_raw(&serde_json::to_vec(event).expect("JSON"), &id, &tenant).await;
    }

    /// Publishes any body to `frontagent.assist`.
    pub async fn publish_raw(&self, body: &[u8], message_id: &str, tenant: &str) {
        self.publish_with_headers(body, message_id, tenant, &[]).await;
    }

    /// Publishes `event` as Front Agent does inside a trace: with W3C
    /// `traceparent`.
    pub async fn publish_traced(&self, event: &Value, traceparent: &str) {
        let id = event["event_id"].as_str().unwrap_or("no-id").to_owned();
        let tenant = event["tenant_id"].as_str().unwrap_or(TENANT).to_owned();
        let body = serde_json::to_vec(event).expect("JSON");
        self.publish_with_headers(&body, &id, &tenant, &[("traceparent", traceparent)]).await;
    }

    /// Sets a variable of the writers started from now on.
    pub fn set_writer_env(&mut self, name: &str, value: &str) {
        self.env.insert(name.to_owned(), value.to_owned());
    }

    /// Publishes any body to `frontagent.assist` with `extra` headers.
    pub async fn publish_with_headers(&self, body: &[u8], message_id: &str, tenant: &str, extra: &[(&str, &str)]) {
        let mut headers = FieldTable::default();
        headers.insert(ShortString::from("tenant_id"), AMQPValue::LongString(tenant.into()));
        for (name, value) in extra {
            headers.insert(ShortString::from(*name), AMQPValue::LongString((*value).into()));
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(message_id.into())
            .with_type("assist.completed.v1".into())
            .with_timestamp(now)
            .with_headers(headers);
        let confirm = self
            .publisher
            .basic_publish(
                "frontagent.assist".into(),
                "assist.completed".into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .expect("publish");
        confirm.await.expect("confirmed");
    }

    /// Reads published messages until `done` says enough, or the deadline.
    pub async fn wait_for(&mut self, deadline: Duration, what: &str, mut done: impl FnMut(&[(String, Value)]) -> bool) {
        let until = tokio::time::Instant::now() + deadline;
        while !done(&self.seen) {
            match tokio::time::timeout_at(until, self.sync.recv()).await {
                Ok(Some(message)) => self.seen.push(message),
                Ok(None) => panic!("the test's consumer stopped"),
                Err(_) => panic!(
                    "timed out after {deadline:?} waiting for {what}; seen {:?}\nwriter logs:\n{}",
                    self.seen.iter().map(|(k, b)| format!("{k} {b}")).collect::<Vec<_>>(),
                    self.writer_logs()
                ),
            }
        }
    }

    /// Waits until `activity.written` or `activity.failed` arrived for every
    /// one of `event_ids`.
    pub async fn wait_settled(&mut self, deadline: Duration, event_ids: &[&str]) {
        let ids: Vec<String> = event_ids.iter().map(|s| (*s).to_owned()).collect();
        self.wait_for(deadline, "every event's outcome", |seen| {
            ids.iter().all(|id| {
                seen.iter()
                    .any(|(k, b)| (k == "activity.written" || k == "activity.failed") && b["event_id"] == id.as_str())
            })
        })
        .await;
    }

    /// The bodies published with `routing_key`.
    pub fn published(&self, routing_key: &str) -> Vec<&Value> {
        self.seen.iter().filter(|(k, _)| k == routing_key).map(|(_, b)| b).collect()
    }

    /// The `activity.written` of `event_id`.
    pub fn written(&self, event_id: &str) -> Option<&Value> {
        self.published("activity.written").into_iter().find(|b| b["event_id"] == event_id)
    }

    /// The `activity.failed` of `event_id`.
    pub fn failed(&self, event_id: &str) -> Option<&Value> {
        self.published("activity.failed").into_iter().find(|b| b["event_id"] == event_id)
    }

    /// The messages on the dead-letter queue, as (x-fa-error, body), read
    /// without removing them for good (they are requeued... no: consumed).
    pub async fn dead_letters(&self) -> Vec<(Value, Value)> {
        let channel = self._connection.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(message) = channel
            .basic_get("activity-writer.assist.dlq".into(), lapin::options::BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
        {
            let error = message
                .delivery
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("x-fa-error").cloned())
                .and_then(|v| match v {
                    AMQPValue::LongString(s) => serde_json::from_slice(s.as_bytes()).ok(),
                    _ => None,
                })
                .unwrap_or(Value::Null);
            let body = serde_json::from_slice(&message.delivery.data).unwrap_or(Value::Null);
            out.push((error, body));
        }
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.broker_stop.cancel();
        for (service, _) in &self.writers {
            let _ = service.signal("TERM");
        }
    }
}

/// An `assist.completed.v1` event for `customer`, with an id of its own.
pub fn event(customer: Value) -> Value {
    event_of(TENANT, customer)
}

/// An `assist.completed.v1` event of `tenant` for `customer`.
pub fn event_of(tenant: &str, customer: Value) -> Value {
    let id = format!("as_{}", uuid::Uuid::new_v4().simple());
    json!({
        "event_id": id,
        "tenant_id": tenant,
        "occurred_at": "2026-11-25T01:12:30Z",
        "user": { "id": "u-1001", "name": "山田 太郎" },
        "customer": customer,
        "call": {
            "direction": "outbound",
            "started_at": "2026-11-25T01:05:00Z",
            "ended_at": "2026-11-25T01:12:12Z",
            "duration_seconds": 432,
        },
        "assist": {
            "summary": "新プランの見積りを希望。来週火曜に再架電の約束。",
            "transcript": [
                { "speaker": "agent", "text": "お世話になっております。サンプルテックの山田です。", "offset_seconds": 0.4 },
                { "speaker": "customer", "text": "はい、佐藤です。先日の資料を拝見しました。", "offset_seconds": 3.9 },
            ]
        }
    })
}

/// The event id of an event.
pub fn id_of(event: &Value) -> &str {
    event["event_id"].as_str().expect("event_id")
}

/// The Tasks whose `CallObject` is `event_id`.
pub fn tasks_for<'a>(tasks: &'a [Value], event_id: &str) -> Vec<&'a Value> {
    tasks.iter().filter(|t| t["CallObject"] == event_id).collect()
}
