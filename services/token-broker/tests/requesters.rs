//! Who may ask for a token: the broker runs as its own RabbitMQ user with
//! production's rights (deploy/rabbitmq/permissions) and answers only the
//! users of FA_SF_TOKEN_REQUESTERS, whoever else can publish on the vhost.

mod common;

use std::time::Duration;

use common::{Stack, TENANT};
use futures_util::StreamExt as _;
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{BasicConsumeOptions, BasicPublishOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

#[tokio::test]
async fn the_importers_user_gets_a_token_and_a_user_not_listed_gets_none() {
    let stack = Stack::start().await;
    stack.connect().await;

    let (_importer, client) = common::amqp_client(&stack);
    let reply = stack.token_request(&client, TENANT, None).await;
    assert_eq!(reply["result"], "token", "the importer's user is answered: {reply}");
    let token = reply["access_token"].as_str().expect("access_token").to_owned();

    // Another process on the vhost, with exactly the importer's rights but
    // its own user, which FA_SF_TOKEN_REQUESTERS does not list.
    let permissions = fa_testkit::service_permissions("importer").expect("the importer's permissions");
    let intruder_url = stack.vhost.user_url("intruder", permissions).expect("a user of its own");
    let (_intruder, client) = common::amqp_client_as(&stack, &intruder_url);
    let reply = stack.token_request(&client, TENANT, None).await;
    assert_eq!(reply["result"], "error", "{reply}");
    assert_eq!(reply["code"], "requester_not_allowed", "{reply}");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(message.contains(&stack.vhost.service_user("intruder")), "names the user: {message}");
    assert!(message.contains("FA_SF_TOKEN_REQUESTERS"), "says what to change: {message}");
    assert!(reply.get("access_token").is_none(), "{reply}");

    let logs = stack.logs();
    assert!(logs.contains("a token request refused"), "the refusal is logged");
    assert!(!logs.contains(&token), "no token in the logs");
    let metrics = reqwest::get(stack.url("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("fa_token_requests_refused_total{reason=\"requester_not_allowed\"} 1"), "{metrics}");
}

/// A token request published by hand, not through `RpcClient`, with its
/// reply awaited on direct reply-to.
async fn raw_request(url: &str, user_id: Option<&str>) -> Result<serde_json::Value, String> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await.map_err(|e| e.to_string())?;
    let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
    let no_ack = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let mut replies = channel
        .basic_consume("amq.rabbitmq.reply-to".into(), "".into(), no_ack, FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    let headers = FieldTable::from(std::collections::BTreeMap::from([(
        ShortString::from("tenant_id"),
        AMQPValue::LongString(TENANT.into()),
    )]));
    let mut properties = BasicProperties::default()
        .with_reply_to(ShortString::from("amq.rabbitmq.reply-to"))
        .with_correlation_id(ShortString::from("raw-1"))
        .with_delivery_mode(1)
        .with_headers(headers);
    if let Some(user) = user_id {
        properties = properties.with_user_id(ShortString::from(user));
    }
    let body = serde_json::json!({ "tenant_id": TENANT }).to_string();
    channel
        .basic_publish("".into(), fa_tokens::QUEUE.into(), BasicPublishOptions::default(), body.as_bytes(), properties)
        .await
        .map_err(|e| e.to_string())?;
    let reply = tokio::time::timeout(Duration::from_secs(10), replies.next())
        .await
        .map_err(|_| "no reply within 10 s".to_owned())?
        .ok_or("the reply stream ended")?
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&reply.data).map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_request_that_names_no_user_or_another_users_name_gets_no_token() {
    let stack = Stack::start().await;
    stack.connect().await;
    let importer_url = stack.vhost.service_url("importer").expect("the importer's user");

    // With the importer's own login, by hand: answered.
    let importer = stack.vhost.service_user("importer");
    let reply = raw_request(&importer_url, Some(&importer)).await.expect("a reply");
    assert_eq!(reply["result"], "token", "{reply}");

    // Without user_id, even on the importer's own login: refused.
    let reply = raw_request(&importer_url, None).await.expect("a reply");
    assert_eq!(reply["code"], "requester_not_allowed", "{reply}");
    assert!(reply["message"].as_str().unwrap_or_default().contains("names no RabbitMQ user"), "{reply}");

    // Claiming to be the importer from another login: RabbitMQ itself
    // refuses the publish, so nothing reaches the broker.
    let permissions = fa_testkit::service_permissions("importer").expect("the importer's permissions");
    let intruder_url = stack.vhost.user_url("intruder", permissions).expect("a user of its own");
    let claimed = raw_request(&intruder_url, Some(&importer)).await;
    assert!(claimed.is_err(), "a forged user_id got an answer: {claimed:?}");
    assert!(!stack.logs().contains("a token request refused: RabbitMQ user"), "the forged request never arrived");
}
