//! A bearer token is only handed out for an `instance_url` that is `https`
//! on a Salesforce host, or one `FA_SF_LOGIN_URL_ALLOWLIST` admits: a login
//! server answering with any other `instance_url` gets no connection stored
//! and no token handed out.

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::post};
use common::{Stack, TENANT};
use serde_json::{Value, json};

/// A login URL (on the allowlisted loopback) whose token endpoint grants a
/// new token every time, naming whatever `instance_url` holds.
struct LoginServer {
    url: String,
    instance_url: Arc<Mutex<String>>,
    grants: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Grants {
    instance_url: Arc<Mutex<String>>,
    grants: Arc<AtomicUsize>,
}

async fn grant(State(state): State<Grants>) -> Json<Value> {
    let n = state.grants.fetch_add(1, Ordering::SeqCst) + 1;
    let instance_url = state.instance_url.lock().expect("lock").clone();
    Json(json!({
        "access_token": format!("00Dxx0000001gPL!granted-token-number-{n}"),
        "instance_url": instance_url,
        "id": format!("{instance_url}/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS"),
        "scope": "api",
        "token_type": "Bearer",
    }))
}

impl LoginServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let state = Grants { instance_url: Arc::new(Mutex::new(url.clone())), grants: Arc::default() };
        let (instance_url, grants) = (state.instance_url.clone(), state.grants.clone());
        let app = Router::new().route("/services/oauth2/token", post(grant)).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, instance_url, grants }
    }

    fn answer_with(&self, instance_url: &str) {
        *self.instance_url.lock().expect("lock") = instance_url.to_owned();
    }
}

fn registration(stack: &Stack, login: &LoginServer) -> Value {
    let mut body = stack.registration(&stack.org.keys.private_key_pem);
    body["login_url"] = json!(login.url);
    body
}

const REFUSED: [&str; 4] = [
    "http://evil.example.com",
    "https://evil.example.com",
    "http://acme.my.salesforce.com",
    "https://acme.my.salesforce.com.evil.example",
];

#[tokio::test]
async fn a_registration_whose_grant_names_an_http_or_foreign_instance_url_is_refused_and_not_stored() {
    let stack = Stack::start().await;
    let login = LoginServer::start().await;
    let path = format!("/v1/tenants/{TENANT}/salesforce/connection");
    for refused in REFUSED {
        login.answer_with(refused);
        let answer = stack.register(registration(&stack, &login), None).await;
        assert_eq!(answer.status, 502, "{refused}: {}", answer.body);
        assert_eq!(answer.body["code"], "instance_url_not_allowed", "{refused}: {}", answer.body);
        let detail = answer.body["detail"].as_str().expect("detail");
        assert!(detail.contains("login_url") && !detail.contains("granted-token"), "{detail}");
        let shown = stack.call(reqwest::Method::GET, &path, None, None).await;
        assert_eq!(shown.status, 404, "{refused}: nothing stored: {}", shown.body);
    }
    assert_eq!(login.grants.load(Ordering::SeqCst), REFUSED.len(), "each registration made one exchange");
    let answer = stack.register(registration(&stack, &login), Some("ja")).await;
    let detail = answer.body["detail"].as_str().expect("detail");
    assert!(detail.contains("instance_url") && detail.contains("login_url"), "{detail}");

    // The allowlisted loopback (sfsim in development) and Salesforce's own
    // hosts are accepted.
    for accepted in [login.url.as_str(), "https://acme.my.salesforce.com"] {
        login.answer_with(accepted);
        let answer = stack.register(registration(&stack, &login), None).await;
        assert_eq!(answer.status, 200, "{accepted}: {}", answer.body);
        assert_eq!(answer.body["instance_url"], accepted, "{}", answer.body);
    }
    let logs = stack.logs();
    assert!(!logs.contains("granted-token-number"), "no token in the logs");
}

#[tokio::test]
async fn a_fresh_token_naming_a_foreign_instance_url_is_not_handed_out() {
    let stack = Stack::start().await;
    let login = LoginServer::start().await;
    login.answer_with("https://acme.my.salesforce.com");
    let answer = stack.register(registration(&stack, &login), None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (_broker, client) = common::amqp_client(&stack);
    let first = stack.token_request(&client, TENANT, None).await;
    assert_eq!(first["result"], "token", "{first}");
    assert_eq!(first["instance_url"], "https://acme.my.salesforce.com");

    // Salesforce (or whoever answers the stored login URL) now names a
    // foreign host; the caller reports the token dead and asks again.
    login.answer_with("http://evil.example.com");
    let old_id = first["token_id"].as_str().expect("token_id");
    let reply = stack.token_request(&client, TENANT, Some(old_id)).await;
    assert_eq!(reply["result"], "error", "{reply}");
    assert_eq!(reply["code"], "instance_url_not_allowed", "{reply}");
    assert!(reply.get("access_token").is_none(), "{reply}");
    let message = reply["message"].as_str().expect("message");
    assert!(message.contains("evil.example.com") && message.contains("FA_SF_LOGIN_URL_ALLOWLIST"), "{message}");
    assert_eq!(login.grants.load(Ordering::SeqCst), 2, "the registration's and the refused one");

    let shown =
        stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/connection"), None, None).await;
    assert_eq!(shown.body["status"], "failing", "{}", shown.body);
    assert_eq!(shown.body["last_error"]["code"], "instance_url_not_allowed", "{}", shown.body);

    // The admin API does not send it anywhere either.
    let users = stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/users"), None, None).await;
    assert_eq!(users.status, 502, "{}", users.body);
    assert_eq!(users.body["code"], "instance_url_not_allowed", "{}", users.body);

    // The shared client refuses it too (the broker's refusal, passed on).
    let (broker, _client) = common::amqp_client(&stack);
    let tokens = fa_tokens::TokenClient::new(broker, Duration::from_secs(20));
    let err = tokens.token(TENANT).await.expect_err("no token");
    assert_eq!(err.code(), "instance_url_not_allowed");
    assert!(!stack.logs().contains("granted-token-number"), "no token in the logs");
}
