//! The importer binary keeps the promises of runtime.md (the runtime contract,
//! outside this repository).

mod common;

use std::time::Duration;

use common::{Stack, completions, leads};
use fa_testkit::service::{self, Binary};

const BINARY: Binary<'static> = Binary {
    name: "importer",
    path: env!("CARGO_BIN_EXE_importer"),
    required: &[("FA_SF_ADMIN_TOKEN", "test-admin-token-0123456789abcdefghij")],
};

#[test]
fn answers_help_and_version() {
    service::answers_help_and_version(&BINARY);
}

#[tokio::test]
async fn serves_health_readiness_metrics_and_exits_0_on_sigterm() {
    service::serves_health_readiness_metrics_and_stops_on_sigterm(&BINARY).await;
}

/// A stop we asked for must not read as a failure: after a run imported a
/// tenant (token requested over RabbitMQ, records published, the scheduler
/// owned by the host running beside the command consumer), SIGTERM stops
/// it with exit 0 and nothing logged at WARN or ERROR.
#[tokio::test]
async fn a_stop_after_an_import_logs_nothing_at_warn_or_error() {
    let mut stack = Stack::start(&[]).await;
    stack.seed("Lead", leads(10, "停止", None)).await;
    stack.start_importer().await;
    stack.connect(&["Lead"]).await;
    let mut seen = Vec::new();
    stack.collect_until(Duration::from_secs(60), &mut seen, |s| !completions(s).is_empty()).await;
    assert_eq!(completions(&seen)[0]["status"], "succeeded", "{seen:?}");
    stack.importer.take().expect("the importer runs").stop_cleanly();
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
    service::names_a_malformed_variable(&BINARY, "FA_SF_IMPORT_INTERVAL", "daily");
    service::names_a_malformed_variable(&BINARY, "FA_SF_IMPORT_MAX_RECORDS_PER_RUN", "lots");
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
