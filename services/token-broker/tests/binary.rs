//! The token-broker binary keeps the promises of runtime.md (the runtime contract,
//! outside this repository).

mod common;

use common::{Stack, TENANT};
use fa_testkit::service::{self, Binary};

const BINARY: Binary<'static> = Binary {
    name: "token-broker",
    path: env!("CARGO_BIN_EXE_token-broker"),
    required: &[
        ("FA_SF_ADMIN_TOKEN", "test-admin-token-0123456789abcdefghij"),
        ("FA_SF_KEY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
    ],
};

#[test]
fn answers_help_and_version() {
    service::answers_help_and_version(&BINARY);
}

#[tokio::test]
async fn serves_health_readiness_metrics_and_exits_0_on_sigterm() {
    service::serves_health_readiness_metrics_and_stops_on_sigterm(&BINARY).await;
}

/// Ctrl-C of `make run` once made it log `ERROR Connection error ...
/// invalid channel state: Closing`: a stop we asked for must not read as a
/// failure. After serving a token over RabbitMQ (so the request consumer,
/// the reply channel and the connection news listener all hold channels),
/// SIGTERM stops it with exit 0 and nothing at WARN or ERROR.
#[tokio::test]
async fn a_stop_after_serving_a_token_logs_nothing_at_warn_or_error() {
    let mut stack = Stack::start().await;
    stack.connect().await;
    let (broker, client) = common::amqp_client(&stack);
    let reply = stack.token_request(&client, TENANT, None).await;
    assert_eq!(reply["result"], "token", "{reply}");
    let unknown = stack.token_request(&client, "nobody", None).await;
    assert_eq!(unknown["code"], "not_connected", "{unknown}");
    stack.service.stop_cleanly();
    broker.close().await;
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
    service::names_a_missing_variable(&BINARY, "FA_SF_ADMIN_TOKEN");
    // The admin API takes private keys: a guessable token is refused.
    service::names_a_malformed_variable(&BINARY, "FA_SF_ADMIN_TOKEN", "x");
    service::names_a_malformed_variable(&BINARY, "FA_SF_ADMIN_TOKEN", "test-admin-token");
    service::names_a_missing_variable(&BINARY, "FA_SF_KEY_ENCRYPTION_KEY");
    service::names_a_malformed_variable(&BINARY, "FA_SF_KEY_ENCRYPTION_KEY", "c2hvcnQ=");
    service::names_a_malformed_variable(&BINARY, "FA_SF_HTTP_ADDR", "localhost");
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
