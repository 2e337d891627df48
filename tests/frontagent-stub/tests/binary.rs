//! The stub binds its queue and prints what the connector publishes.

use std::{path::Path, time::Duration};

use fa_testkit::{TestVhost, eventually, process::Service};
use lapin::{BasicProperties, Connection, ConnectionProperties, options::BasicPublishOptions};

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
