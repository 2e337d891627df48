//! The token service on RabbitMQ: one exchange per tenant however many ask,
//! one refresh however many report the same dead token, and the failure
//! recorded where the admin sees it.

mod common;

use std::{sync::Arc, time::Duration};

use common::{Stack, TENANT};
use futures_util::future::join_all;
use serde_json::Value;

#[tokio::test]
async fn two_hundred_concurrent_requests_for_a_cold_tenant_cause_one_exchange() {
    let mut stack = Stack::start().await;
    stack.connect().await;
    // A new process: the tenant's token is not cached anywhere.
    stack.restart().await;
    let before = stack.logins();
    let (_broker, client) = common::amqp_client(&stack);
    let client = Arc::new(client);
    let replies: Vec<Value> = join_all((0..200).map(|_| {
        let client = client.clone();
        let stack = &stack;
        async move { stack.token_request(&client, TENANT, None).await }
    }))
    .await;
    assert_eq!(stack.logins() - before, 1, "exactly one token exchange at Salesforce");
    let first = &replies[0];
    assert_eq!(first["result"], "token", "{first}");
    assert!(replies.iter().all(|r| r["access_token"] == first["access_token"]), "everyone got the same token");
    assert_eq!(first["instance_url"], stack.sfsim.url.as_str());
    assert_eq!(first["organization_id"], stack.org.org.id.as_str());
    assert_eq!(first["user_id"], stack.org.user_id.as_str());

    let metrics = reqwest::get(stack.url("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("fa_token_requests_total{outcome=\"cached\"} 199"), "{metrics}");
    assert!(metrics.contains("fa_token_requests_total{outcome=\"exchanged\"} 1"), "{metrics}");
    assert!(metrics.contains("fa_token_exchange_duration_seconds"), "{metrics}");
}

#[tokio::test]
async fn many_callers_reporting_one_dead_token_cause_one_refresh() {
    let stack = Stack::start().await;
    stack.connect().await;
    let (_broker, client) = common::amqp_client(&stack);
    let old = stack.token_request(&client, TENANT, None).await;
    let old_id = old["token_id"].as_str().expect("token_id").to_owned();
    assert_eq!(stack.logins(), 1, "the registration's token is reused");

    stack.sfsim.sim.revoke_sessions(&stack.org.org.id);
    let replies: Vec<Value> =
        join_all((0..50).map(|_| stack.token_request(&client, TENANT, Some(old_id.as_str())))).await;
    assert_eq!(stack.logins(), 2, "one new exchange for fifty reports");
    let new_token = replies[0]["access_token"].as_str().expect("token");
    assert_ne!(new_token, old["access_token"].as_str().expect("old"));
    assert!(replies.iter().all(|r| r["access_token"] == replies[0]["access_token"]));
    // A late report of the same dead token gets the new one, no exchange.
    let late = stack.token_request(&client, TENANT, Some(old_id.as_str())).await;
    assert_eq!(late["access_token"], replies[0]["access_token"]);
    assert_eq!(stack.logins(), 2);
    // The new token works.
    let users = stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/users"), None, None).await;
    assert_eq!(users.status, 200, "{}", users.body);
}

#[tokio::test]
async fn an_unknown_tenant_is_not_connected() {
    let stack = Stack::start().await;
    let (_broker, client) = common::amqp_client(&stack);
    let reply = stack.token_request(&client, "nobody", None).await;
    assert_eq!(reply["result"], "error");
    assert_eq!(reply["code"], "not_connected");
    let reply = stack.token_request(&client, "not a tenant!", None).await;
    assert_eq!(reply["code"], "invalid_request");
}

#[tokio::test]
async fn a_failing_exchange_is_recorded_on_the_connection_and_not_hammered() {
    let stack = Stack::start().await;
    stack.connect().await;
    let (_broker, client) = common::amqp_client(&stack);
    let old = stack.token_request(&client, TENANT, None).await;
    // The admin removes the user's pre-authorisation; the session dies.
    stack.sfsim.sim.approve(&stack.org.consumer_key, &stack.org.user_id, false);
    stack.sfsim.sim.revoke_sessions(&stack.org.org.id);
    let old_id = old["token_id"].as_str().expect("token_id");
    let replies: Vec<Value> = join_all((0..20).map(|_| stack.token_request(&client, TENANT, Some(old_id)))).await;
    assert!(replies.iter().all(|r| r["code"] == "salesforce_rejected"), "{:?}", replies[0]);
    let shown =
        stack.call(reqwest::Method::GET, &format!("/v1/tenants/{TENANT}/salesforce/connection"), None, None).await;
    assert_eq!(shown.body["status"], "failing", "{}", shown.body);
    assert_eq!(shown.body["last_error"]["code"], "salesforce_rejected");
    let detail = shown.body["last_error"]["detail"].as_str().expect("detail");
    assert!(detail.contains("user hasn't approved this consumer"), "{detail}");
    assert!(shown.body["last_error"]["at"].as_str().is_some_and(|a| a.ends_with('Z')));
    let metrics = reqwest::get(stack.url("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(
        metrics.contains("fa_token_exchanges_total{outcome=\"failed\",error=\"user_not_pre_approved\"} 1"),
        "twenty requests during the failure made one exchange: {metrics}"
    );

    // Fixed in Salesforce and registered again: connected, with no error.
    stack.sfsim.sim.approve(&stack.org.consumer_key, &stack.org.user_id, true);
    let again = stack.connect().await;
    assert_eq!(again["status"], "connected");
    assert_eq!(again["last_error"], Value::Null);
}

/// The number of messages on `queue` in the stack's vhost, `None` if it
/// does not exist.
fn messages_on(stack: &Stack, queue: &str) -> Option<u64> {
    let queues = stack.vhost.list_queues().expect("list queues");
    let line = queues.lines().find(|l| l.split('\t').next() == Some(queue))?;
    line.split('\t').nth(1)?.parse().ok()
}

#[tokio::test]
async fn a_token_request_whose_reply_to_names_a_durable_queue_gets_nothing_and_the_queue_stays_empty() {
    use lapin::{
        BasicProperties, Connection, ConnectionProperties,
        options::{BasicPublishOptions, QueueDeclareOptions},
        types::{AMQPValue, FieldTable, ShortString},
    };

    let stack = Stack::start().await;
    stack.connect().await;
    // Anyone on the vhost asks for the tenant's token to be left in a
    // durable queue of its own.
    let connection = Connection::connect(&stack.vhost.url, ConnectionProperties::default()).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let inbox = "stolen.tokens";
    channel
        .queue_declare(inbox.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        .await
        .expect("declare");
    let headers = FieldTable::from(std::collections::BTreeMap::from([(
        ShortString::from("tenant_id"),
        AMQPValue::LongString(TENANT.into()),
    )]));
    let request = BasicProperties::default()
        .with_reply_to(ShortString::from(inbox))
        .with_correlation_id(ShortString::from("1"))
        .with_delivery_mode(2)
        .with_headers(headers);
    let body = serde_json::json!({ "tenant_id": TENANT }).to_string();
    channel
        .basic_publish("".into(), fa_tokens::QUEUE.into(), BasicPublishOptions::default(), body.as_bytes(), request)
        .await
        .expect("publish");
    fa_testkit::eventually(Duration::from_secs(30), "the request to be taken and dropped", || async {
        (messages_on(&stack, fa_tokens::QUEUE) == Some(0)).then_some(())
    })
    .await;

    // Through direct reply-to, the token still comes.
    let (_broker, client) = common::amqp_client(&stack);
    let reply = stack.token_request(&client, TENANT, None).await;
    assert_eq!(reply["result"], "token", "{reply}");
    let token = reply["access_token"].as_str().expect("access_token");

    assert_eq!(messages_on(&stack, inbox), Some(0), "nothing was written to the named queue");
    let logs = stack.logs();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("not direct reply-to")).collect();
    assert_eq!(warnings.len(), 1, "one warning for the refused request:\n{logs}");
    assert!(warnings[0].contains(inbox) && warnings[0].contains(TENANT), "{}", warnings[0]);
    assert!(!logs.contains(token), "the token is never logged");
    let metrics = reqwest::get(stack.url("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("fa_amqp_rpc_requests_refused_total"), "{metrics}");
    let _ = connection.close(200, "done".into()).await;
}

/// The client the importer and the writer use: a local cache, and one retry
/// with a fresh token when Salesforce says the session is invalid.
#[tokio::test]
async fn the_shared_client_caches_and_retries_once_on_an_invalid_session() {
    let stack = Stack::start().await;
    stack.connect().await;
    let (broker, _client) = common::amqp_client(&stack);
    let tokens = fa_tokens::TokenClient::new(broker, Duration::from_secs(20));
    let http = reqwest::Client::new();

    let query = |token: Arc<fa_tokens::AccessToken>| {
        let http = http.clone();
        async move {
            let client = fa_salesforce::Client::new(http, &token.instance_url, token.token.clone());
            fa_salesforce::users::active_users(&client).await
        }
    };
    let users = tokens.with_token(TENANT, query).await.expect("users");
    assert!(users.iter().any(|u| u.id == stack.org.user_id));
    let first = tokens.token(TENANT).await.expect("token");
    assert_eq!(stack.logins(), 1);

    stack.sfsim.sim.revoke_sessions(&stack.org.org.id);
    let users = tokens.with_token(TENANT, query).await.expect("users after the session was revoked");
    assert!(!users.is_empty());
    assert_eq!(stack.logins(), 2, "one fresh token");
    let second = tokens.token(TENANT).await.expect("token");
    assert_ne!(first.token_id, second.token_id, "the local cache holds the fresh token");

    let missing = tokens.token("nobody").await.expect_err("not connected");
    assert_eq!(missing.code(), "not_connected");
}
