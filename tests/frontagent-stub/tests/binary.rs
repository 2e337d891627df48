//! The stub binds its queue and prints what the connector publishes; its
//! `assist` subcommand publishes events as Front Agent does and reports the
//! Tasks written for them.

use std::{path::Path, time::Duration};

use fa_testkit::{TestVhost, eventually, process::Service};
use futures_util::StreamExt as _;
use lapin::{
    BasicProperties, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use serde_json::{Value, json};

#[tokio::test]
async fn prints_a_line_for_each_message_published_to_salesforce_sync() {
    let vhost = TestVhost::create().expect("vhost");
    let env = [("FA_SF_AMQP_URL".to_owned(), vhost.url.clone())].into_iter().collect();
    let mut stub = Service::start(Path::new(env!("CARGO_BIN_EXE_frontagent-stub")), &[], &env).expect("starts");
    eventually(Duration::from_secs(30), "the queue to be bound", || async {
        stub.stdout().contains("bound").then_some(())
    })
    .await;

    let connection = Connection::connect(&vhost.url, ConnectionProperties::default()).await.expect("amqp");
    let channel = connection.create_channel().await.expect("channel");
    let body = br#"{"source":{"object":"Contact","id":"0035j00000XyZaBAAV"},"customer":{"name":"Suzuki Hanako","company":null,"phones":[]}}"#;
    let options = BasicPublishOptions { mandatory: true, ..Default::default() };
    let confirm = channel
        .basic_publish("salesforce.sync".into(), "customer.upsert".into(), options, body, BasicProperties::default())
        .await
        .expect("published");
    confirm.await.expect("confirmed");
    eventually(Duration::from_secs(30), "the message to be printed", || async {
        stub.stdout().contains("customer.upsert Contact 0035j00000XyZaBAAV Suzuki Hanako (-)").then_some(())
    })
    .await;
    stub.signal("TERM").expect("SIGTERM");
    let (status, _) = stub.wait(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{}", stub.stderr());
}

/// sfsim in-process with a connected org of generated Japanese customers.
async fn demo_org() -> (sfsim::server::Server, String) {
    let server = sfsim::server::Server::start_local().await.expect("sfsim");
    let fixture = sfsim::fixture::connected_org(&server.sim, "Demo Shoji").expect("org");
    sfsim::control::generate_into(&server.sim, &fixture.org, 30, 30, 15, 7, 730);
    let org = fixture.org.id.clone();
    (server, org)
}

fn assist_args<'a>(sfsim_url: &'a str, org: &'a str, timeout: &'a str) -> Vec<&'a str> {
    vec!["assist", "--sfsim-url", sfsim_url, "--org", org, "--tenant", "demo", "--timeout-seconds", timeout]
}

/// Plays the activity-writer's part: a queue bound to frontagent.assist.
async fn writer_queue(url: &str) -> (Connection, lapin::Consumer) {
    let connection = Connection::connect(url, ConnectionProperties::default()).await.expect("amqp");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .exchange_declare(
            "frontagent.assist".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    let queue = "activity-writer.assist";
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("queue");
    channel
        .queue_bind(
            queue.into(),
            "frontagent.assist".into(),
            "assist.completed".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let consumer = channel
        .basic_consume(queue.into(), "test".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume");
    (connection, consumer)
}

#[tokio::test(flavor = "multi_thread")]
async fn assist_publishes_three_valid_events_and_prints_the_task_written_for_each() {
    let vhost = TestVhost::create().expect("vhost");
    let (server, org) = demo_org().await;
    let (_connection, mut deliveries) = writer_queue(&vhost.url).await;
    let env = [("FA_SF_AMQP_URL".to_owned(), vhost.url.clone())].into_iter().collect();
    let mut stub =
        Service::start(Path::new(env!("CARGO_BIN_EXE_frontagent-stub")), &assist_args(&server.url, &org, "60"), &env)
            .expect("starts");

    let http = reqwest::Client::new();
    let mut subjects = Vec::new();
    for _ in 0..3 {
        let delivery = tokio::time::timeout(Duration::from_secs(30), deliveries.next())
            .await
            .unwrap_or_else(|_| panic!("no event published: {}{}", stub.stdout(), stub.stderr()))
            .expect("stream open")
            .expect("delivery");
        let body: Value = serde_json::from_slice(&delivery.data).expect("JSON");
        assert_eq!(fa_messages::validation::validate("assist.completed.v1", &body), Ok(()), "{body:#}");
        let event_id = body["event_id"].as_str().expect("event_id");
        let props = &delivery.properties;
        assert_eq!(props.message_id().as_ref().map(|s| s.as_str()), Some(event_id));
        assert_eq!(props.kind().as_ref().map(|s| s.as_str()), Some("assist.completed.v1"));
        assert_eq!(props.content_type().as_ref().map(|s| s.as_str()), Some("application/json"));
        assert_eq!(*props.delivery_mode(), Some(2));
        assert!(props.timestamp().is_some());
        let tenant = props.headers().as_ref().and_then(|h| h.inner().get("tenant_id").cloned());
        assert_eq!(tenant, Some(AMQPValue::LongString(b"demo".to_vec().into())));
        assert_eq!(body["tenant_id"], "demo");
        // What the writer does, reduced: one Task with the event's id as CallObject.
        let who = body["customer"]["salesforce"]["id"].as_str().map(str::to_owned);
        let subject = format!("Front Agent 通話アシスト: {}", body["customer"]["name"].as_str().unwrap_or("?"));
        let task = json!({"Subject": subject, "CallObject": event_id, "WhoId": who, "ActivityDate": "2026-12-03",
            "Status": "Completed", "Description": body["assist"]["summary"]});
        let response =
            http.post(format!("{}/sfsim/orgs/{org}/records/Task", server.url)).json(&task).send().await.expect("sfsim");
        assert!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        subjects.push((event_id.to_owned(), body));
    }
    let suffixes: Vec<&str> = subjects.iter().filter_map(|(id, _)| id.rsplit('_').next()).collect();
    assert_eq!(suffixes, ["lead", "known", "new"]);
    assert!(subjects[0].1["customer"]["salesforce"]["id"].as_str().is_some_and(|id| id.starts_with("00Q")));
    assert!(subjects[1].1["customer"]["salesforce"].is_null());
    assert_eq!(subjects[2].1["customer"]["name"], "新規 太郎");

    let (status, _) = stub.wait(Duration::from_secs(30)).expect("exits");
    let out = stub.stdout();
    assert!(status.success(), "{out}{}", stub.stderr());
    for (event_id, _) in &subjects {
        assert!(out.contains(&format!("{event_id} → Task 00T")), "{out}");
    }
    assert!(out.contains("all 3 Tasks are in sfsim"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn assist_says_which_tasks_did_not_appear_and_where_to_look() {
    let vhost = TestVhost::create().expect("vhost");
    let (server, org) = demo_org().await;
    // A bound queue nobody works on: the events are accepted, no Task follows.
    let (_connection, _deliveries) = writer_queue(&vhost.url).await;
    let env = [("FA_SF_AMQP_URL".to_owned(), vhost.url.clone())].into_iter().collect();
    let mut stub =
        Service::start(Path::new(env!("CARGO_BIN_EXE_frontagent-stub")), &assist_args(&server.url, &org, "2"), &env)
            .expect("starts");
    let (status, _) = stub.wait(Duration::from_secs(30)).expect("exits");
    let out = stub.stdout();
    assert!(!status.success(), "{out}");
    assert_eq!(out.matches("NO Task for as_").count(), 3, "{out}");
    assert!(out.contains("[activity-writer]"), "{out}");
    assert!(stub.stderr().contains("3 of 3 Tasks did not appear in sfsim within 2 s"), "{}", stub.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn assist_without_an_activity_writer_queue_fails_naming_the_writer() {
    let vhost = TestVhost::create().expect("vhost");
    let (server, org) = demo_org().await;
    let env = [("FA_SF_AMQP_URL".to_owned(), vhost.url.clone())].into_iter().collect();
    let mut stub =
        Service::start(Path::new(env!("CARGO_BIN_EXE_frontagent-stub")), &assist_args(&server.url, &org, "2"), &env)
            .expect("starts");
    let (status, _) = stub.wait(Duration::from_secs(30)).expect("exits");
    assert!(!status.success(), "{}", stub.stdout());
    let err = stub.stderr();
    assert!(err.contains("unroutable") && err.contains("activity-writer"), "{err}");
}
