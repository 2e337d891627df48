//! A token-broker process with its own database, vhost and simulated
//! Salesforce org, driven through its admin API and its token queue.

#![allow(dead_code)]

use std::{collections::HashMap, path::Path, time::Duration};

use fa_testkit::{TestDatabase, TestVhost, process::Service};
use serde_json::{Value, json};
use sfsim::{fixture::ConnectedOrg, server::Server};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghij";
pub const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const TENANT: &str = "acme";

pub struct Stack {
    pub sfsim: Server,
    pub org: ConnectedOrg,
    pub db: TestDatabase,
    pub vhost: TestVhost,
    pub port: u16,
    pub service: Service,
    env: HashMap<String, String>,
    pub http: reqwest::Client,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

impl Stack {
    /// sfsim with a connected org, a database, a vhost, and the broker
    /// logging at trace level.
    pub async fn start() -> Self {
        let sfsim = Server::start_local().await.expect("sfsim");
        let org = sfsim::fixture::connected_org(&sfsim.sim, "Acme").expect("org");
        let db = TestDatabase::create().await.expect("database");
        let vhost = TestVhost::create().expect("vhost");
        let port = fa_testkit::process::free_port().expect("port");
        // The broker runs as its own RabbitMQ user with production's rights,
        // and answers the importer's and the writer's users.
        let amqp_url = vhost.service_url("token-broker").expect("the token-broker's RabbitMQ user");
        let requesters = format!("{},{}", vhost.service_user("importer"), vhost.service_user("activity-writer"));
        let env: HashMap<String, String> = [
            ("FA_SF_AMQP_URL", amqp_url.as_str()),
            ("FA_SF_TOKEN_REQUESTERS", requesters.as_str()),
            ("FA_SF_DATABASE_URL", db.url.as_str()),
            ("FA_SF_HTTP_ADDR", &format!("127.0.0.1:{port}")),
            ("FA_SF_ADMIN_TOKEN", ADMIN_TOKEN),
            ("FA_SF_KEY_ENCRYPTION_KEY", KEK),
            ("FA_SF_LOGIN_URL_ALLOWLIST", "login.salesforce.com,test.salesforce.com,*.my.salesforce.com,127.0.0.1:*"),
            ("RUST_LOG", "trace"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let service = launch(&env, port).await;
        Self { sfsim, org, db, vhost, port, service, env, http: reqwest::Client::new() }
    }

    /// Stops the process (SIGTERM) and starts a new one: a cold cache.
    pub async fn restart(&mut self) {
        self.service.signal("TERM").expect("SIGTERM");
        self.service.wait(Duration::from_secs(30)).expect("exits");
        self.service = launch(&self.env, self.port).await;
    }

    /// A second replica of the broker on the same database and vhost, with
    /// its own admin port.
    pub async fn another_replica(&self) -> (Service, u16) {
        let port = fa_testkit::process::free_port().expect("port");
        let mut env = self.env.clone();
        env.insert("FA_SF_HTTP_ADDR".to_owned(), format!("127.0.0.1:{port}"));
        (launch(&env, port).await, port)
    }

    /// Whether sfsim still accepts `token` for an API call.
    pub async fn session_live(&self, token: &str) -> bool {
        let url = format!("{}/services/data/v62.0/limits", self.sfsim.url);
        let status = self.http.get(url).bearer_auth(token).send().await.expect("sfsim answers").status().as_u16();
        assert!(status == 200 || status == 401, "sfsim answered {status}");
        status == 200
    }

    /// Everything the process logged, on both streams.
    pub fn logs(&self) -> String {
        format!("{}\n{}", self.service.stdout(), self.service.stderr())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>, lang: Option<&str>) -> Answer {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(ADMIN_TOKEN);
        if let Some(lang) = lang {
            request = request.header("Accept-Language", lang);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the admin API answers");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
        Answer { status, body, content_type }
    }

    /// The registration an admin who followed the guide sends.
    pub fn registration(&self, private_key: &str) -> Value {
        json!({
            "consumer_key": self.org.consumer_key,
            "username": self.org.username,
            "private_key": private_key,
            "login_url": self.sfsim.url,
            "objects": ["Lead", "Contact"],
        })
    }

    pub async fn register(&self, body: Value, lang: Option<&str>) -> Answer {
        self.call(reqwest::Method::PUT, &format!("/v1/tenants/{TENANT}/salesforce/connection"), Some(body), lang).await
    }

    /// Registers the fixture org's PKCS#8 key and expects success.
    pub async fn connect(&self) -> Value {
        let answer = self.register(self.registration(&self.org.keys.private_key_pem), None).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }

    /// Logins sfsim has granted for the org.
    pub fn logins(&self) -> usize {
        self.sfsim.sim.logins(&self.org.org.id)
    }

    /// A raw token request over the broker's queue.
    pub async fn token_request(&self, client: &fa_amqp::RpcClient, tenant: &str, invalid: Option<&str>) -> Value {
        let mut body = json!({ "tenant_id": tenant });
        if let Some(id) = invalid {
            body["invalid_token_id"] = json!(id);
        }
        let reply = client
            .call(fa_tokens::QUEUE, body.to_string().into_bytes(), Some(tenant), Duration::from_secs(20))
            .await
            .expect("the token-broker answers");
        serde_json::from_slice(&reply).expect("a JSON reply")
    }
}

async fn launch(env: &HashMap<String, String>, port: u16) -> Service {
    let service =
        Service::start(Path::new(env!("CARGO_BIN_EXE_token-broker")), &[], env).expect("the token-broker starts");
    fa_testkit::service::wait_ready(port).await;
    service
}

/// A broker client on the stack's vhost, for token requests, logged in as
/// the importer's RabbitMQ user (with the importer's rights).
pub fn amqp_client(stack: &Stack) -> (fa_amqp::Broker, fa_amqp::RpcClient) {
    amqp_client_as(stack, &stack.vhost.service_url("importer").expect("the importer's RabbitMQ user"))
}

/// A broker client on the stack's vhost logged in with `url`.
pub fn amqp_client_as(stack: &Stack, url: &str) -> (fa_amqp::Broker, fa_amqp::RpcClient) {
    assert!(url.contains(&stack.vhost.name), "a URL of the stack's vhost");
    let broker = fa_amqp::Broker::start(
        secrecy::SecretString::from(url.to_owned()),
        "token-broker-test",
        fa_amqp::Topology::new(),
        fa_amqp::BrokerOptions::default(),
    );
    let client = fa_amqp::RpcClient::new(broker.clone());
    (broker, client)
}

/// The lines of a PEM's body: what must never show up anywhere.
pub fn key_lines(pem: &str) -> Vec<String> {
    pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 40).map(str::to_owned).collect()
}
