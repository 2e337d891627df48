//! The activity-writer binary keeps the promises of runtime.md (the runtime contract,
//! outside this repository).

mod common;

use std::time::Duration;

use common::{Stack, event, id_of};
use fa_testkit::service::{self, Binary};
use serde_json::json;

const BINARY: Binary<'static> =
    Binary { name: "activity-writer", path: env!("CARGO_BIN_EXE_activity-writer"), required: &[] };

#[test]
fn answers_help_and_version() {
    service::answers_help_and_version(&BINARY);
}

#[tokio::test]
async fn serves_health_readiness_metrics_and_exits_0_on_sigterm() {
    service::serves_health_readiness_metrics_and_stops_on_sigterm(&BINARY).await;
}

/// A stop we asked for must not read as a failure: after writing an
/// event's Task (its token asked for over RabbitMQ, its result published),
/// SIGTERM stops the writer with exit 0 and nothing logged at WARN or ERROR.
#[tokio::test]
async fn a_stop_after_writing_a_task_logs_nothing_at_warn_or_error() {
    let mut stack = Stack::start(&["Lead"]).await;
    let lead = stack.seed("Lead", json!({ "LastName": "佐藤", "Company": "株式会社サンプル商事" })).await;
    let owner = stack.create_user("山田");
    stack.link_user("u-1001", &owner).await;
    let writer = stack.start_writer().await;
    let e = event(json!({
        "id": "c-1", "name": "佐藤", "company": "株式会社サンプル商事", "phones": ["03-1234-5678"],
        "salesforce": { "object": "Lead", "id": lead[0] },
    }));
    stack.publish(&e).await;
    stack.wait_settled(Duration::from_secs(60), &[id_of(&e)]).await;
    assert!(stack.written(id_of(&e)).is_some(), "the event is written: {:?}", stack.seen);
    stack.writers[writer].0.stop_cleanly();
}

#[tokio::test]
async fn readyz_answers_503_while_rabbitmq_is_unreachable() {
    service::is_not_ready_while_rabbitmq_is_unreachable(&BINARY).await;
}

#[tokio::test]
async fn an_unreachable_database_stops_it_with_one_line() {
    service::stops_with_one_line_when_the_database_is_unreachable(&BINARY).await;
}

#[test]
fn a_missing_or_malformed_variable_is_named() {
    service::names_a_malformed_variable(&BINARY, "FA_SF_SALESFORCE_API_VERSION", "latest");
    service::names_a_malformed_variable(&BINARY, "FA_SF_AMQP_URL", "http://127.0.0.1:5672");
    service::names_a_malformed_variable(&BINARY, "FA_SF_TIMEZONE", "Asia/Tokio");
}

#[test]
fn an_unknown_variable_is_named_with_the_closest_known_one() {
    service::names_an_unknown_variable_and_the_closest_known_one(&BINARY);
}

#[test]
fn an_unknown_file_key_is_named_with_the_closest_known_one() {
    service::names_an_unknown_file_key_and_the_closest_known_one(&BINARY);
}

#[tokio::test]
async fn exports_traces_when_an_otlp_endpoint_is_set() {
    service::exports_traces_when_an_otlp_endpoint_is_set(&BINARY).await;
}
