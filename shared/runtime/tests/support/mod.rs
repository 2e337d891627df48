//! What the Host tests share.

use fa_runtime::{CommonConfig, config::LogFormat};
use fa_testkit::{TestDatabase, TestVhost};
use secrecy::SecretString;

/// The configuration of a service `service` on the test's own database
/// and vhost, serving on any free port, logging JSON, exporting no traces.
pub fn config(service: &'static str, db: &TestDatabase, vhost: &TestVhost) -> CommonConfig {
    CommonConfig {
        service,
        amqp_url: SecretString::from(vhost.url.clone()),
        amqp_tls_roots: None,
        database_url: SecretString::from(db.url.clone()),
        http_addr: "127.0.0.1:0".parse().expect("address"),
        log_format: LogFormat::Json,
        log_filter: "info".to_owned(),
        otlp_endpoint: None,
    }
}
