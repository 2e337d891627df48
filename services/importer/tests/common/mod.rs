//! An importer process with the token-broker (in-process), a database, a
//! vhost and a simulated org; what the importer publishes is read from a
//! queue of the test's own, bound as Front Agent binds its queues.

#![allow(dead_code)]

use std::{collections::HashMap, path::Path, time::Duration};

use fa_testkit::{TestDatabase, TestVhost, process::Service};
use futures_util::StreamExt as _;
use lapin::{
    Channel, Connection, ConnectionProperties,
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use serde_json::{Value, json};
use sfsim::{fixture::ConnectedOrg, server::Server};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const ADMIN_TOKEN: &str = "test-admin-token-importer-0123456789";
pub const TENANT: &str = "acme";

pub struct Stack {
    pub sfsim: Server,
    pub org: ConnectedOrg,
    pub db: TestDatabase,
    pub vhost: TestVhost,
    pub broker_port: u16,
    pub port: u16,
    pub importer: Option<Service>,
    env: HashMap<String, String>,
    broker_stop: CancellationToken,
    pub http: reqwest::Client,
    /// Everything published to `salesforce.sync`, as (routing key, body).
    pub sync: mpsc::UnboundedReceiver<(String, Value)>,
    _channel: Channel,
    _connection: Connection,
}

impl Stack {
    /// Starts everything but the importer; `extra` sets importer variables.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let sfsim = Server::start_local().await.expect("sfsim");
        let org = sfsim::fixture::connected_org(&sfsim.sim, "Acme").expect("org");
        let db = TestDatabase::create().await.expect("database");
        let vhost = TestVhost::create().expect("vhost");

        // Front Agent's side: a queue bound to everything on salesforce.sync.
        let connection = Connection::connect(&vhost.url, ConnectionProperties::default()).await.expect("amqp");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .exchange_declare(
                "salesforce.sync".into(),
                lapin::ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("exchange");
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

        // The token-broker, in-process.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let broker_port = listener.local_addr().expect("addr").port();
        // Each service logs in as its own RabbitMQ user with production's
        // rights (deploy/rabbitmq/permissions).
        let broker_amqp = vhost.service_url("token-broker").expect("the token-broker's RabbitMQ user");
        let service_amqp = vhost.service_url("importer").expect("the importer's RabbitMQ user");
        let requesters = vhost.service_user("importer");
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
        let broker_stop = CancellationToken::new();
        let ctx = fa_runtime::launch::Context { listener, shutdown: broker_stop.clone() };
        tokio::spawn(async move {
            if let Err(e) = token_broker::run(config, ctx).await {
                eprintln!("token-broker stopped: {e:#}");
            }
        });

        let port = fa_testkit::process::free_port().expect("port");
        let mut env: HashMap<String, String> = [
            ("FA_SF_AMQP_URL", service_amqp.as_str()),
            ("FA_SF_DATABASE_URL", db.url.as_str()),
            ("FA_SF_HTTP_ADDR", &format!("127.0.0.1:{port}")),
            ("FA_SF_ADMIN_TOKEN", ADMIN_TOKEN),
            ("FA_SF_IMPORT_INTERVAL", "1h"),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let stack = Self {
            sfsim,
            org,
            db,
            vhost,
            broker_port,
            port,
            importer: None,
            env,
            broker_stop,
            http: reqwest::Client::new(),
            sync,
            _channel: channel,
            _connection: connection,
        };
        fa_testkit::service::wait_ready(broker_port).await;
        stack
    }

    pub async fn start_importer(&mut self) {
        let service =
            Service::start(Path::new(env!("CARGO_BIN_EXE_importer")), &[], &self.env).expect("importer starts");
        fa_testkit::service::wait_ready(self.port).await;
        self.importer = Some(service);
    }

    /// Another importer process (a second replica) on the same database and
    /// vhost, with its own admin port.
    pub async fn start_replica(&self) -> (Service, u16) {
        let port = fa_testkit::process::free_port().expect("port");
        let mut env = self.env.clone();
        env.insert("FA_SF_HTTP_ADDR".to_owned(), format!("127.0.0.1:{port}"));
        let service = Service::start(Path::new(env!("CARGO_BIN_EXE_importer")), &[], &env).expect("replica starts");
        fa_testkit::service::wait_ready(port).await;
        (service, port)
    }

    /// Changes the org's faults (latency, injected errors, permissions).
    pub fn faults(&self, change: impl FnOnce(&mut sfsim::store::Faults)) {
        let org = self.sfsim.sim.org(&self.org.org.id).expect("org");
        change(&mut org.faults.lock().expect("faults"));
    }

    /// SIGTERM, as Kubernetes stops a pod; the importer's exit status.
    pub fn terminate_importer(&mut self) -> std::process::ExitStatus {
        let mut service = self.importer.take().expect("an importer runs");
        service.signal("TERM").expect("SIGTERM");
        let (status, _) = service.wait(Duration::from_secs(30)).expect("the importer exits within 30 s");
        status
    }

    /// `kill -9`: no goodbye, no shutdown.
    pub fn kill_importer(&mut self) {
        if let Some(mut service) = self.importer.take() {
            service.signal("KILL").expect("kill -9");
            let _ = service.wait(Duration::from_secs(10));
        }
    }

    pub fn importer_logs(&self) -> String {
        self.importer.as_ref().map(|s| format!("{}\n{}", s.stdout(), s.stderr())).unwrap_or_default()
    }

    /// Connects the org through the token-broker's admin API.
    pub async fn connect(&self, objects: &[&str]) {
        self.connect_to(&self.org, objects).await;
    }

    /// Connects the tenant to `org` (a re-connect when it was connected).
    pub async fn connect_to(&self, org: &ConnectedOrg, objects: &[&str]) {
        let response = self
            .http
            .put(format!("http://127.0.0.1:{}/v1/tenants/{TENANT}/salesforce/connection", self.broker_port))
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

    /// Seeds records straight into the org (with explicit stamps if given).
    pub async fn seed(&self, object: &str, records: Value) -> Vec<String> {
        self.seed_in(&self.org.org.id, object, records).await
    }

    /// Seeds records straight into the org `org_id`.
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

    pub async fn admin(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        self.admin_at(self.port, method, path).await
    }

    /// The admin API of the importer listening on `port`.
    pub async fn admin_at(&self, port: u16, method: reqwest::Method, path: &str) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("http://127.0.0.1:{port}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the importer answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON") })
    }

    pub async fn request_import(&self) {
        let (status, body) = self.admin(reqwest::Method::POST, &format!("/v1/tenants/{TENANT}/imports")).await;
        assert_eq!(status, 202, "{body}");
    }

    /// Reads published messages until a run says the tenant is caught up
    /// (`succeeded`, nothing more pending).
    pub async fn collect_until_caught_up(&mut self, seen: &mut Vec<(String, Value)>) {
        self.collect_until(Duration::from_secs(120), seen, |s| {
            completions(s).last().is_some_and(|c| c["status"] == "succeeded" && c["more_pending"] == false)
        })
        .await;
    }

    /// Reads published messages until `done` says enough, or the deadline.
    pub async fn collect_until(
        &mut self,
        deadline: Duration,
        seen: &mut Vec<(String, Value)>,
        mut done: impl FnMut(&[(String, Value)]) -> bool,
    ) {
        let until = tokio::time::Instant::now() + deadline;
        while !done(seen) {
            match tokio::time::timeout_at(until, self.sync.recv()).await {
                Ok(Some(message)) => seen.push(message),
                Ok(None) => panic!("the test's consumer stopped"),
                Err(_) => panic!(
                    "timed out after {deadline:?}: {} messages so far; importer logs:\n{}",
                    seen.len(),
                    self.importer_logs()
                ),
            }
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.broker_stop.cancel();
        if let Some(service) = &self.importer {
            let _ = service.signal("TERM");
        }
    }
}

/// The `customer.upsert` bodies among `seen`.
pub fn upserts(seen: &[(String, Value)]) -> Vec<&Value> {
    seen.iter().filter(|(k, _)| k == "customer.upsert").map(|(_, b)| b).collect()
}

/// The record ids of the `customer.upsert`s among `seen`.
pub fn ids(seen: &[(String, Value)]) -> std::collections::HashSet<String> {
    upserts(seen).iter().filter_map(|m| m["source"]["id"].as_str().map(str::to_owned)).collect()
}

/// The `import.completed` bodies among `seen`.
pub fn completions(seen: &[(String, Value)]) -> Vec<&Value> {
    seen.iter().filter(|(k, _)| k == "import.completed").map(|(_, b)| b).collect()
}

/// Leads for seeding: `n` of them, stamped `stamp` (RFC 3339) when given.
pub fn leads(n: usize, prefix: &str, stamp: Option<&str>) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                let mut lead = json!({
                    "LastName": format!("{prefix}{i:05}"), "FirstName": "太郎", "Company": "株式会社テスト",
                    "Phone": format!("03-{:04}-{:04}", i / 10000 + 1000, i % 10000),
                });
                if let Some(stamp) = stamp {
                    lead["SystemModstamp"] = json!(stamp);
                }
                lead
            })
            .collect(),
    )
}
